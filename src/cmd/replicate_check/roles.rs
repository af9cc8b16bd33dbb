//! What replicate-check learns from one survey, before any write: roles,
//! links, and whether each replica follows this master.

use super::{MasterResult, ReplicaResult};
use crate::client::{Info, ReplicaLine};
use crate::report::Check;
use crate::run::Ctx;
use crate::survey::NodeState;
use crate::topology::{same_host, Node};

pub(super) fn master_check(m: &MasterResult) -> Check {
    let reason = format!(
        "role master, {} connected replicas, {} expected",
        m.connected_replicas, m.expected_replicas
    );
    if m.connected_replicas as usize == m.expected_replicas {
        Check::pass("master", reason)
    } else {
        Check::fail("master", reason)
    }
}

pub(crate) fn line_for<'a>(node: &Node, lines: &'a [ReplicaLine]) -> Option<&'a ReplicaLine> {
    lines
        .iter()
        .find(|l| l.port == node.port() && same_host(&l.ip, node.host()))
        .or_else(|| {
            // Inside Docker the master may see another ip; a unique port still identifies it.
            let same_port: Vec<_> = lines.iter().filter(|l| l.port == node.port()).collect();
            (same_port.len() == 1).then(|| same_port[0])
        })
}

impl ReplicaResult {
    pub(super) fn set_verdict(&mut self) {
        self.verdict = if self.problems.is_empty() {
            "pass"
        } else {
            "fail"
        }
        .into();
    }
}

/// Everything INFO says about one replica, before any probe.
pub(super) fn inspect(
    st: &NodeState,
    minfo: &Info,
    lines: &[ReplicaLine],
    ctx: &Ctx,
) -> ReplicaResult {
    let mut r = ReplicaResult {
        name: st.node.name.clone(),
        address: st.node.addr(),
        ..Default::default()
    };
    let line = line_for(&st.node, lines);
    r.listed_by_master = line.is_some();
    if let Some(l) = line {
        r.offset_lag_bytes = Some(minfo.repl_offset().saturating_sub(l.offset));
        r.lag_s = Some(l.lag_s);
    }
    let Some(info) = &st.info else {
        let e = st.error.as_ref().expect("no info means an error");
        r.problems.push(e.message.clone());
        return r;
    };
    r.role = Some(info.role().to_string());
    r.link_status = info.get("master_link_status").map(String::from);
    r.syncing = info.syncing();
    let follows = info.follows();
    r.follows = follows.as_ref().map(|(h, p)| describe(ctx, h, *p));
    if info.role() != "slave" {
        r.problems.push(format!(
            "role is {}: it follows no master (promoted, or never made a replica), not this one",
            info.role()
        ));
        return r;
    }
    let target = r.follows.clone().unwrap_or_else(|| "nothing".into());
    if r.syncing {
        r.problems.push(syncing_reason(info));
    } else if !info.link_up() {
        r.problems.push(format!(
            "link to {target} is {} (master_link_down_since_seconds {}, master_last_io_seconds_ago {}): \
             wrong masterauth, or the master unreachable from the replica? its log says why",
            info.get("master_link_status").unwrap_or("unknown"),
            info.get("master_link_down_since_seconds").unwrap_or("-"),
            info.get("master_last_io_seconds_ago").unwrap_or("-"),
        ));
    }
    let same_id = info.get("master_replid") == minfo.get("master_replid");
    let follows_ours = follows
        .as_ref()
        .and_then(|(h, p)| ctx.topology.name_of(h, *p))
        == Some(ctx.topology.master.name.as_str());
    if info.link_up() && !same_id {
        r.problems.push(format!(
            "follows {target}, which is another master (different replication id), not this one"
        ));
    } else if info.link_up() && line.is_none() {
        r.problems.push(format!(
            "follows {target} but is not among the master's own replicas: chained behind another replica, or following another master"
        ));
    } else if !info.link_up() && !follows_ours {
        r.problems
            .push(format!("follows {target}, not this master"));
    }
    r
}

/// A replica in a full sync or loading: say how far along, never a verdict on its data.
fn syncing_reason(info: &Info) -> String {
    let progress = if info.flag("loading") {
        format!(
            "loading the dataset ({}% loaded)",
            info.get("loading_loaded_perc").unwrap_or("?")
        )
    } else {
        let read = info.get("master_sync_read_bytes").unwrap_or("?");
        match info.get("master_sync_total_bytes") {
            // A diskless sync does not know its size in advance.
            Some("-1") | None => format!("full sync in progress ({read} bytes received so far)"),
            Some(total) => format!("full sync in progress ({read} of {total} bytes received)"),
        }
    };
    format!("syncing: {progress}; its data is not complete yet, so it is not compared")
}

/// `127.0.0.1:6380 (replica1)` where the address is one of ours.
fn describe(ctx: &Ctx, host: &str, port: u16) -> String {
    match ctx.topology.name_of(host, port) {
        Some(name) => format!("{host}:{port} ({name})"),
        None => format!("{host}:{port}"),
    }
}

/// `.reachable` when it could not be reached, else `.replication`: role,
/// link, and whether it follows this master.
pub(super) fn role_check(r: &ReplicaResult) -> Check {
    if r.role.is_none() {
        let mut reason = r.problems.join("; ");
        if r.listed_by_master {
            reason.push_str(&format!(
                "; the master sees it {} bytes behind, last ACK {} s ago",
                crate::report::opt(&r.offset_lag_bytes),
                crate::report::opt(&r.lag_s)
            ));
        }
        return Check::fail(format!("{}.reachable", r.name), reason);
    }
    let name = format!("{}.replication", r.name);
    if r.problems.is_empty() {
        Check::pass(
            name,
            format!(
                "role {}, link {}, follows {}",
                r.role.as_deref().unwrap_or("-"),
                r.link_status.as_deref().unwrap_or("-"),
                r.follows.as_deref().unwrap_or("-")
            ),
        )
    } else {
        Check::fail(name, r.problems.join("; "))
    }
}
