//! What every subcommand gets: the topology, the bounds, the run id, progress,
//! and the ledger of keys it wrote (so they are removed even on Ctrl-C).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::client::{Conn, NodeError};
use crate::progress::Progress;
use crate::report::Manifest;
use crate::survey::{self, NodeState};
use crate::topology::Topology;

pub struct Ctx {
    pub topology: Topology,
    pub timeout: Duration,
    pub run_id: String,
    pub progress: Progress,
    pub ledger: Ledger,
    pub started: SystemTime,
    pub started_at: Instant,
    /// The command line with secrets replaced.
    pub args: Vec<String>,
    /// The master as discovery found it, for the first survey to reuse.
    pub discovered: Mutex<Option<NodeState>>,
}

impl Ctx {
    /// `redlab:<run-id>:` — every key redlab writes starts with this.
    pub fn prefix(&self) -> String {
        format!("redlab:{}:", self.run_id)
    }

    /// Every node's state (`survey::survey`), the first time reusing the
    /// master's visit from discovery.
    pub async fn survey(&self) -> Vec<NodeState> {
        let known = self.discovered.lock().map(|mut d| d.take()).unwrap_or(None);
        survey::survey_reusing(&self.topology, self.timeout, known).await
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }

    pub fn manifest(&self) -> Manifest {
        Manifest {
            redlab_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: humantime::format_rfc3339_millis(self.started).to_string(),
            duration_ms: (self.started_at.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            host: hostname(),
            args: self.args.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// Remove every key in the ledger from the master, then wait (bounded) for
    /// the replicas to apply the deletes.
    pub async fn cleanup(&self) -> Result<u64, NodeError> {
        self.cleanup_on(None).await
    }

    /// `cleanup` on a live master connection where the caller has one.
    pub async fn cleanup_on(&self, conn: Option<Conn>) -> Result<u64, NodeError> {
        // Entries leave the ledger only once deleted: an error or a Ctrl-C in
        // the middle leaves the rest for the next attempt (or the hint).
        let owned = self.ledger.snapshot();
        if owned.is_empty() {
            return Ok(0);
        }
        let mut conn = match conn {
            Some(c) => c,
            None => Conn::connect(&self.topology.master, self.timeout).await?,
        };
        let mut removed = 0u64;
        for entry in &owned {
            for cmd in entry.unlinks() {
                removed += conn.query::<u64>(&cmd).await?;
            }
            self.ledger.remove(entry);
        }
        let n = self.topology.replicas.len();
        if n > 0 {
            let wait_ms = self.timeout.as_millis().max(1) as u64;
            // Best effort: a down replica is reported by the check itself.
            let _ = conn
                .query_for::<u64>(redis::cmd("WAIT").arg(n).arg(wait_ms), self.timeout)
                .await;
        }
        Ok(removed)
    }
}

/// Keys are deleted in batches this large: bounded commands, few round trips.
const CLEANUP_BATCH: u64 = 1000;

/// Something this run wrote on the master.
#[derive(Debug, Clone)]
pub enum Owned {
    Key(String),
    /// `prefix0` .. `prefix{upto + slack - 1}`; `upto` may grow while a load runs.
    Range {
        prefix: String,
        upto: Arc<AtomicU64>,
        slack: u64,
    },
}

impl Owned {
    fn same(&self, other: &Owned) -> bool {
        match (self, other) {
            (Owned::Key(a), Owned::Key(b)) => a == b,
            (
                Owned::Range {
                    upto: a, prefix: p, ..
                },
                Owned::Range {
                    upto: b, prefix: q, ..
                },
            ) => Arc::ptr_eq(a, b) && p == q,
            _ => false,
        }
    }

    /// `UNLINK` commands for the keys, at most `CLEANUP_BATCH` keys each.
    /// Range keys are written straight into the command (no `String` per
    /// key: a million-key cleanup should not cost a million allocations).
    fn unlinks(&self) -> Box<dyn Iterator<Item = redis::Cmd> + '_> {
        match self {
            Owned::Key(k) => Box::new(std::iter::once(redis::cmd("UNLINK").arg(k).clone())),
            Owned::Range {
                prefix,
                upto,
                slack,
            } => {
                let end = upto.load(Ordering::Relaxed) + slack;
                Box::new((0..end).step_by(CLEANUP_BATCH as usize).map(move |start| {
                    let mut cmd = redis::cmd("UNLINK");
                    let mut key = prefix.as_bytes().to_vec();
                    for i in start..(start + CLEANUP_BATCH).min(end) {
                        key.truncate(prefix.len());
                        crate::perf::resp::push_u64(&mut key, i);
                        cmd.arg(&key[..]);
                    }
                    cmd
                }))
            }
        }
    }
}

/// What this run wrote on the master, to be removed at the end (also on Ctrl-C).
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Owned>>>);

impl Ledger {
    pub fn add(&self, key: impl Into<String>) {
        self.lock().push(Owned::Key(key.into()));
    }
    /// Keys `prefix + i` for i below `upto` (read at cleanup time) plus `slack`.
    pub fn add_range(&self, prefix: &str, upto: Arc<AtomicU64>, slack: u64) {
        self.lock().push(Owned::Range {
            prefix: prefix.to_string(),
            upto,
            slack,
        });
    }
    /// Drop the ranges under `prefix` (they are to be kept), returning them.
    pub fn take_ranges(&self, prefix: &str) -> Vec<Owned> {
        let mut all = self.lock();
        let (taken, kept) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|o| matches!(o, Owned::Range { prefix: p, .. } if p == prefix));
        *all = kept;
        taken
    }
    pub fn snapshot(&self) -> Vec<Owned> {
        self.lock().clone()
    }
    /// Forget one entry (the same key, or the same range by identity).
    pub fn remove(&self, entry: &Owned) {
        let mut all = self.lock();
        if let Some(i) = all.iter().position(|o| o.same(entry)) {
            all.remove(i);
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Owned>> {
        // A panic elsewhere must not stop the cleanup.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// A short unique id: time and pid, in base 36.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut n = (nanos ^ ((std::process::id() as u128) << 64)) % 36u128.pow(10);
    let mut s = String::new();
    for _ in 0..10 {
        let d = (n % 36) as u32;
        s.push(std::char::from_digit(d, 36).expect("digit < 36"));
        n /= 36;
    }
    s
}

/// The command line with passwords in URLs and after --password removed.
pub fn redacted_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".into());
            hide_next = false;
        } else if a == "--password" {
            out.push(a.clone());
            hide_next = true;
        } else if let Some(rest) = a.strip_prefix("--password=") {
            let _ = rest;
            out.push("--password=***".into());
        } else {
            out.push(crate::topology::redact_url(a));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_manifest() {
        let args: Vec<String> = [
            "redlab",
            "--password",
            "hunter2",
            "--master",
            "redis://:pw@h:1",
            "--password=x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redacted_args(&args).join(" ");
        assert!(
            !r.contains("hunter2") && !r.contains(":pw@") && !r.contains("=x"),
            "{r}"
        );
    }

    #[test]
    fn keys_are_removed_in_bounded_batches() {
        let upto = Arc::new(AtomicU64::new(2400));
        let r = Owned::Range {
            prefix: "p:".into(),
            upto: upto.clone(),
            slack: 1,
        };
        upto.store(2500, Ordering::Relaxed);
        let args = |c: &redis::Cmd| -> Vec<Vec<u8>> {
            c.args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => b.to_vec(),
                    _ => Vec::new(),
                })
                .collect()
        };
        let b: Vec<Vec<Vec<u8>>> = r.unlinks().map(|c| args(&c)).collect();
        // "UNLINK" and then the keys.
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1001, 1001, 502]
        );
        assert_eq!(b[0][0], b"UNLINK");
        assert_eq!(b[0][1], b"p:0");
        assert_eq!(b[0][1000], b"p:999");
        assert_eq!(b[1][1], b"p:1000");
        assert_eq!(b[2][501], b"p:2500");
        let one = Owned::Key("k".into());
        assert_eq!(
            one.unlinks().map(|c| args(&c)).collect::<Vec<_>>(),
            vec![vec![b"UNLINK".to_vec(), b"k".to_vec()]]
        );
    }

    #[test]
    fn run_ids_are_short_and_distinct() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(1));
        let b = new_run_id();
        assert_eq!(a.len(), 10);
        assert_ne!(a, b);
    }
}
