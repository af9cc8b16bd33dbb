//! The ledger of what a run wrote on the master, so that it is removed at
//! the end, also on Ctrl-C.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    pub(super) fn unlinks(&self) -> Box<dyn Iterator<Item = redis::Cmd> + '_> {
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
                        crate::loadgen::resp::push_u64(&mut key, i);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
