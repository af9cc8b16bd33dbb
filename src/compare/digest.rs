//! The fast path: `DEBUG DIGEST`, one command per node. Equal digests mean
//! the same keys with the same types and values in every db, and the same
//! keys having an expire, but not the same expiry times: a digest records
//! whether a key has an expire, not its value (TTLs are checked after it).
//!
//! DEBUG is disabled by default since Redis 7.0 (`enable-debug-command no`;
//! `local` allows it from loopback), often denied to ACL users, and renamed
//! away by many providers: each of those is a reason, not an error, and the
//! key-level path runs instead.
//!
//! A digest is one command but not a cheap one: it walks the whole dataset
//! inside the server, blocking it meanwhile (about 3 us a key measured here,
//! seconds for a million keys: docs/benchmarks.md). So it runs only when
//! every node holds at most `digest_max_keys` keys, never for a sample, and
//! not at all with `--no-digest`.

use std::time::Duration;

use futures_util::future::join_all;

use super::limit::NodeIo;
use super::{Comparison, Live, Path, Sample};
use crate::client::{ErrorKind, NodeError};

/// A node's digest, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digest {
    Hex(String),
    Unavailable(String),
}

/// How much longer than the timeout DEBUG DIGEST may take on a node of
/// `keys` keys: it is one command over the whole dataset, about 3 us a key
/// when the machine is idle, 20 us and more when its cores are shared.
pub fn digest_extra(keys: u64) -> Duration {
    Duration::from_secs(10)
        + Duration::from_micros(50).saturating_mul(keys.min(u32::MAX as u64) as u32)
}

/// `DEBUG DIGEST` on one node, on a connection whose response timeout allows
/// for it (`Comparison::digest_io`). A refusal is `Unavailable` with the
/// reason; a lost or silent node is an error.
pub async fn digest(io: &NodeIo, extra: Duration) -> Result<Digest, NodeError> {
    let cmd = redis::cmd("DEBUG").arg("DIGEST").clone();
    match io.query_slow::<String>(&cmd, extra).await {
        Ok(hex) => Ok(Digest::Hex(hex)),
        Err(e) => match unavailable(&e) {
            Some(why) => Ok(Digest::Unavailable(why)),
            None => Err(e),
        },
    }
}

/// The modules a node has loaded, from `INFO modules` (else `MODULE
/// LIST`); Err with the reason when it will not say.
async fn modules_of(io: &NodeIo) -> Result<Vec<String>, String> {
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("module:"))
            .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("name=")))
            .map(String::from)
            .collect()
    };
    match io
        .query::<String>(redis::cmd("INFO").arg("modules"), 1)
        .await
    {
        // A server that hides the section answers without its header.
        Ok(text) if text.contains("# Modules") => return Ok(names(&text)),
        _ => {}
    }
    let list: redis::Value = io
        .query(redis::cmd("MODULE").arg("LIST"), 1)
        .await
        .map_err(|e| e.restricted("MODULE LIST").unwrap_or(e.message))?;
    let redis::Value::Array(mods) = list else {
        return Ok(Vec::new());
    };
    Ok(mods
        .iter()
        .filter_map(|m| {
            crate::client::pairs(m)
                .into_iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v)
        })
        .collect())
}

/// Why DEBUG cannot be used here, when the error says it is refused
/// (disabled, renamed, denied: `NodeError::restricted`) or not understood.
fn unavailable(e: &NodeError) -> Option<String> {
    if let Some(why) = e.restricted("DEBUG DIGEST") {
        Some(why)
    } else if e.kind == ErrorKind::Other {
        Some(format!("DEBUG DIGEST refused: {}", e.message))
    } else {
        None
    }
}

impl Comparison {
    /// Node `n` on a connection of its own whose replies may take `extra`
    /// longer than the timeout (the client's response timeout would cut a
    /// long digest short otherwise), sharing the node's cap.
    async fn digest_io(&self, n: usize, extra: Duration) -> Result<NodeIo, NodeError> {
        let node = &self.nodes[n];
        let base = self.base(n).cloned().ok_or_else(|| {
            NodeError::new(&node.name, &node.addr(), ErrorKind::Other, "not compared")
        })?;
        let t = self.cfg.timeout;
        let conn = crate::client::Conn::connect_with_response_timeout(node, t, t + extra).await?;
        Ok(base.with_conn(conn))
    }

    /// Why the digest cannot certify this topology's data: a module loaded
    /// on the master or a replica (module types need not feed DEBUG DIGEST,
    /// so equal digests prove nothing about their values), or no way to
    /// tell. None when no node has a module.
    async fn modules_loaded(&self) -> Option<String> {
        let nodes: Vec<usize> = std::iter::once(0)
            .chain(self.active().into_iter().map(|r| r + 1))
            .collect();
        let seen = join_all(nodes.iter().map(|&n| async move {
            let name = self.nodes[n].name.clone();
            match self.base(n) {
                Some(io) => (name, modules_of(io).await),
                None => (name, Ok(Vec::new())),
            }
        }))
        .await;
        let mut found = Vec::new();
        for (name, mods) in seen {
            match mods {
                Ok(m) if m.is_empty() => {}
                Ok(m) => found.push(format!("{name}: {}", m.join(", "))),
                Err(why) => {
                    return Some(format!(
                        "not run: cannot tell whether {name} has modules loaded ({why}), and module types need not feed the digest"
                    ))
                }
            }
        }
        (!found.is_empty()).then(|| {
            format!(
                "not run: modules loaded ({}); module types need not feed the digest, so every key is compared by its value (module values by DUMP where it is stable, else by the module's own read commands)",
                found.join("; ")
            )
        })
    }

    /// DEBUG DIGEST on every node at once: replicas whose digest equals the
    /// master's need only their TTLs checked; the others are compared key by key.
    /// `total`: the master's keys; `largest`: the most keys any node holds.
    pub(super) async fn choose_paths(
        &self,
        live: &Live,
        total: u64,
        largest: u64,
    ) -> Result<(Vec<usize>, Vec<usize>), NodeError> {
        let active = self.active();
        let set = |r: usize, path: Path, why: String| {
            let mut acc = self.acc();
            acc.per[r].path = Some(path);
            acc.per[r].path_reason = why;
            if path == Path::Digest {
                acc.per[r].compared = total;
                acc.per[r].ttl_checked = Some(0);
                acc.per[r].streams_checked = Some(0);
            }
        };
        // A digest walks the whole dataset inside the server, blocking it
        // meanwhile: not for a sample, nor past the size bound.
        let skip = match (self.cfg.digest, self.cfg.sample, self.cfg.digest_max_keys) {
            (false, _, _) => Some("not run (--no-digest)".to_string()),
            (true, Sample::All, Some(max)) if largest > max => Some(format!(
                "not run: {largest} keys on a node, above --digest-max-keys {max} (it blocks each server while it walks the dataset)"
            )),
            (true, Sample::All, _) => None,
            (true, _, _) => Some("not run for a sample (it walks the whole dataset)".into()),
        };
        let skip = match skip {
            Some(why) => Some(why),
            None => self.modules_loaded().await,
        };
        if let Some(why) = skip {
            self.acc().digest_unavailable = Some(format!("DEBUG DIGEST {why}"));
            for &r in &active {
                set(r, Path::Keys, format!("key by key: DEBUG DIGEST {why}"));
            }
            return Ok((Vec::new(), active));
        }
        live.phase("DEBUG DIGEST on every node");
        let extra = digest_extra(largest);
        let (master, replicas) = tokio::join!(
            async { digest(&self.digest_io(0, extra).await?, extra).await },
            join_all(active.iter().map(|&r| async move {
                let d = match self.digest_io(r + 1, extra).await {
                    Ok(io) => digest(&io, extra).await,
                    Err(e) => Err(e),
                };
                (r, d)
            }))
        );
        let master = match master? {
            Digest::Hex(h) => h,
            Digest::Unavailable(why) => {
                for &r in &active {
                    set(
                        r,
                        Path::Keys,
                        format!("key by key: no digest from the master ({why})"),
                    );
                }
                self.acc().digest_unavailable = Some(why);
                return Ok((Vec::new(), active));
            }
        };
        self.acc().master_digest = Some(master.clone());
        let (mut by_digest, mut by_keys) = (Vec::new(), Vec::new());
        for (r, d) in replicas {
            match d {
                Ok(Digest::Hex(h)) if h == master => {
                    set(r, Path::Digest, "DEBUG DIGEST equal to the master's: same keys, types and values; expiry times checked on a sample, and every stream's consumer groups key by key (the digest does not see them)".into());
                    by_digest.push(r);
                }
                Ok(Digest::Hex(_)) => {
                    set(
                        r,
                        Path::Keys,
                        "key by key: its DEBUG DIGEST differs from the master's".into(),
                    );
                    by_keys.push(r);
                }
                Ok(Digest::Unavailable(why)) => {
                    set(
                        r,
                        Path::Keys,
                        format!("key by key: no digest from this replica ({why})"),
                    );
                    by_keys.push(r);
                }
                Err(e) => self.fail_replica(r, &e),
            }
        }
        Ok((by_digest, by_keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, msg: &str) -> NodeError {
        NodeError::new("master", "127.0.0.1:6379", kind, msg)
    }

    #[test]
    fn refusals_are_reasons_and_failures_are_errors() {
        let off = err(
            ErrorKind::CommandDisabled,
            "DEBUG failed: ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", ...",
        );
        assert!(unavailable(&off)
            .unwrap()
            .contains("enable-debug-command no"));
        let acl = err(ErrorKind::NoPermission, "the ACL user may not run DEBUG");
        assert!(unavailable(&acl).unwrap().contains("ACL"));
        let renamed = err(
            ErrorKind::UnknownCommand,
            "DEBUG failed: ERR unknown command 'DEBUG'",
        );
        assert!(unavailable(&renamed).unwrap().contains("renamed"));
        assert_eq!(unavailable(&err(ErrorKind::Timeout, "no answer")), None);
        assert_eq!(unavailable(&err(ErrorKind::Closed, "lost")), None);
    }
}
