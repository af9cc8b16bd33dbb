//! The fast path: `DEBUG DIGEST`, one command per node. Equal digests mean
//! the same keys with the same types and values in every db, and the same
//! keys having an expire, but not the same expiry times: a digest records
//! whether a key has an expire, not its value (TTLs are checked after it).
//!
//! DEBUG is disabled by default since Redis 7.0 (`enable-debug-command no`;
//! `local` allows it from loopback), often denied to ACL users, and renamed
//! away by many providers: each of those is a reason, not an error, and the
//! key-level path runs instead. The digest walks the whole dataset inside
//! the server, blocking it meanwhile (measured: docs/benchmarks.md), which
//! is why `--no-digest` exists.

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

/// How much longer than the timeout DEBUG DIGEST may take: it is one
/// command over the whole dataset.
pub const DIGEST_EXTRA: Duration = Duration::from_secs(30);

/// `DEBUG DIGEST` on one node. A refusal is `Unavailable` with the reason;
/// a lost or silent node is an error.
pub async fn digest(io: &NodeIo) -> Result<Digest, NodeError> {
    let cmd = redis::cmd("DEBUG").arg("DIGEST").clone();
    match io.query_slow::<String>(&cmd, DIGEST_EXTRA).await {
        Ok(hex) => Ok(Digest::Hex(hex)),
        Err(e) => match unavailable(&e) {
            Some(why) => Ok(Digest::Unavailable(why)),
            None => Err(e),
        },
    }
}

/// Why DEBUG cannot be used here, when the error says it is refused.
fn unavailable(e: &NodeError) -> Option<String> {
    let m = e.message.to_ascii_lowercase();
    if e.kind == ErrorKind::NoPermission {
        Some("the ACL user may not run DEBUG".into())
    } else if m.contains("not allowed") {
        Some("DEBUG is disabled (enable-debug-command no, the default since Redis 7.0)".into())
    } else if m.contains("unknown command") {
        Some("DEBUG is not available (renamed or removed by the provider)".into())
    } else if e.kind == ErrorKind::Other {
        Some(format!("DEBUG DIGEST refused: {}", e.message))
    } else {
        None
    }
}

impl Comparison {
    /// DEBUG DIGEST on every node at once: replicas whose digest equals the
    /// master's need only their TTLs checked; the others are compared key by key.
    pub(super) async fn choose_paths(
        &self,
        live: &Live,
        total: u64,
    ) -> Result<(Vec<usize>, Vec<usize>), NodeError> {
        let active = self.active();
        let set = |r: usize, path: Path, why: String| {
            let mut acc = self.acc();
            acc.per[r].path = Some(path);
            acc.per[r].path_reason = why;
            if path == Path::Digest {
                acc.per[r].compared = total;
                acc.per[r].ttl_checked = Some(0);
            }
        };
        // A digest walks the whole dataset inside the server: not for a sample.
        let skip = match (self.cfg.digest, self.cfg.sample) {
            (false, _) => Some("not run (--no-digest)"),
            (true, Sample::All) => None,
            (true, _) => Some("not run for a sample (it walks the whole dataset)"),
        };
        if let Some(why) = skip {
            self.acc().digest_unavailable = Some(format!("DEBUG DIGEST {why}"));
            for &r in &active {
                set(r, Path::Keys, format!("key by key: DEBUG DIGEST {why}"));
            }
            return Ok((Vec::new(), active));
        }
        live.phase("DEBUG DIGEST on every node");
        let (master, replicas) = tokio::join!(
            digest(&self.master),
            join_all(active.iter().filter_map(|&r| {
                let io = self.replicas[r].clone()?;
                Some(async move { (r, digest(&io).await) })
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
                    set(r, Path::Digest, "DEBUG DIGEST equal to the master's: same keys, types and values; expiry times checked on a sample".into());
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
            ErrorKind::Other,
            "DEBUG failed: ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", ...",
        );
        assert!(unavailable(&off)
            .unwrap()
            .contains("enable-debug-command no"));
        let acl = err(ErrorKind::NoPermission, "the ACL user may not run DEBUG");
        assert!(unavailable(&acl).unwrap().contains("ACL"));
        let renamed = err(
            ErrorKind::Other,
            "DEBUG failed: ERR unknown command 'DEBUG'",
        );
        assert!(unavailable(&renamed).unwrap().contains("renamed"));
        assert_eq!(unavailable(&err(ErrorKind::Timeout, "no answer")), None);
        assert_eq!(unavailable(&err(ErrorKind::Closed, "lost")), None);
    }
}
