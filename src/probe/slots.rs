//! Where a shard's slots are served now: the slot map as the shard's nodes
//! see it, and the master that serves the shard's hash tag after a failover
//! (perf follows it mid-run, cleanup at the end).

use crate::run::Ctx;
use crate::topology::slot;

/// The slot map as the first of `seeds` that answers sees it.
pub async fn slot_map<'a>(
    seeds: impl Iterator<Item = &'a crate::topology::Node>,
    timeout: std::time::Duration,
) -> Option<Vec<crate::discover::cluster::Member>> {
    for node in seeds {
        let Ok(mut c) = crate::client::Conn::connect(node, timeout).await else {
            continue;
        };
        if let Ok((m, _)) = crate::discover::cluster::members_of(&mut c, node.tls()).await {
            return Some(m);
        }
    }
    None
}

/// The master that serves `ctx`'s shard slot (its hash tag's) in `members`,
/// as a node named like `current`; None when that is still `current`, or
/// when no master serves it (or `ctx` is not a shard's).
pub fn master_now(
    members: &[crate::discover::cluster::Member],
    ctx: &Ctx,
    current: &crate::topology::Node,
) -> Option<crate::topology::Node> {
    let scope = ctx.shard.as_ref()?;
    let s = slot::key_slot(scope.tag.as_bytes());
    let now = members
        .iter()
        .find(|m| m.is_master() && m.slots.iter().any(|(a, b)| (*a..=*b).contains(&s)))?;
    if now.port == current.port() && crate::topology::same_host(&now.host, current.host()) {
        return None;
    }
    Some(current.sibling(&current.name, &now.host, now.port))
}
