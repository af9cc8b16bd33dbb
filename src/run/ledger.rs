//! The ledger of what a run wrote on the master, so that it is removed at
//! the end, also on Ctrl-C, and so that a later run can tell how much a dead
//! one left (its registry record carries the ledger's description).
//!
//! Keys written by a load are not listed one by one: a range is described by
//! the request numbers sent, and the key of request r is a pure function of
//! (keyspace, seed, r) (`loadgen::keys::key_index`). Cleanup therefore takes
//! time proportional to what was written, never to the size of --keyspace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::loadgen::keys::key_index;

/// Keys are deleted in batches this large: bounded commands, few round trips.
pub const CLEANUP_BATCH: u64 = 1000;

/// Something this run wrote on the master.
#[derive(Debug, Clone)]
pub enum Owned {
    Key(String),
    /// The keys of requests `0 .. upto + slack` of a load: `prefix` plus
    /// `key_index(keyspace, seed, r)`; `upto` may grow while the load runs.
    Range {
        prefix: String,
        upto: Arc<AtomicU64>,
        slack: u64,
        keyspace: Option<u64>,
        seed: u64,
    },
}

/// A range as a registry record keeps it (plain numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRecord {
    pub prefix: String,
    /// Requests sent (at least), slack included.
    pub requests: u64,
    pub keyspace: Option<u64>,
    pub seed: u64,
}

impl RangeRecord {
    /// How many distinct key indices the range can hold, at most.
    pub fn bound(&self) -> u64 {
        match self.keyspace {
            Some(k) => k.min(self.requests),
            None => self.requests,
        }
    }

    /// The name of key `i` of the range.
    pub fn key(&self, i: u64) -> Vec<u8> {
        let mut key = self.prefix.as_bytes().to_vec();
        crate::loadgen::resp::push_u64(&mut key, i);
        key
    }

    /// The key indices written, each once where the whole keyspace is
    /// covered; otherwise in request order (a repeat is harmless to UNLINK).
    pub fn indices(&self) -> Box<dyn Iterator<Item = u64> + Send + '_> {
        match self.keyspace {
            Some(k) if self.requests >= k => Box::new(0..k),
            ks => {
                let seed = self.seed;
                Box::new((0..self.requests).map(move |r| key_index(ks, seed, r)))
            }
        }
    }

    /// As `batches`, on a cluster: a range whose prefix has no hash tag
    /// spreads over slots, and a multi-key command across slots is refused
    /// (CROSSSLOT), so its names are grouped by slot, each batch one slot's.
    /// A tagged prefix (every key redlab writes on a cluster) is one slot.
    pub fn batches_in(&self, verb: &'static str, cluster: bool) -> Vec<redis::Cmd> {
        if !cluster || crate::topology::slot::prefix_has_tag(self.prefix.as_bytes()) {
            return self.batches(verb).collect();
        }
        let mut out = Vec::new();
        let mut groups: std::collections::BTreeMap<u16, redis::Cmd> = Default::default();
        let mut sizes: std::collections::BTreeMap<u16, usize> = Default::default();
        let mut key = self.prefix.as_bytes().to_vec();
        for i in self.indices() {
            key.truncate(self.prefix.len());
            crate::loadgen::resp::push_u64(&mut key, i);
            let slot = crate::topology::slot::key_slot(&key);
            groups
                .entry(slot)
                .or_insert_with(|| redis::cmd(verb))
                .arg(&key[..]);
            let n = sizes.entry(slot).or_default();
            *n += 1;
            if *n == CLEANUP_BATCH as usize {
                out.extend(groups.remove(&slot));
                sizes.remove(&slot);
            }
        }
        out.extend(groups.into_values());
        out
    }

    /// The key names, batch by batch, as UNLINK (or EXISTS) arguments.
    pub fn batches(&self, verb: &'static str) -> impl Iterator<Item = redis::Cmd> + '_ {
        let mut it = self.indices().peekable();
        std::iter::from_fn(move || {
            it.peek()?;
            let mut cmd = redis::cmd(verb);
            let mut key = self.prefix.as_bytes().to_vec();
            for i in it.by_ref().take(CLEANUP_BATCH as usize) {
                key.truncate(self.prefix.len());
                crate::loadgen::resp::push_u64(&mut key, i);
                cmd.arg(&key[..]);
            }
            Some(cmd)
        })
    }
}

impl Owned {
    pub(crate) fn same(&self, other: &Owned) -> bool {
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

    /// The range as plain numbers, read now.
    pub fn record(&self) -> Option<RangeRecord> {
        match self {
            Owned::Key(_) => None,
            Owned::Range {
                prefix,
                upto,
                slack,
                keyspace,
                seed,
            } => Some(RangeRecord {
                prefix: prefix.clone(),
                requests: upto.load(Ordering::Relaxed) + slack,
                keyspace: *keyspace,
                seed: *seed,
            }),
        }
    }

    /// How many keys it may hold.
    pub fn bound(&self) -> u64 {
        self.record().map_or(1, |r| r.bound())
    }

    /// `UNLINK` (or `DEL`) commands for the keys, at most `CLEANUP_BATCH`
    /// keys each. Range keys are written straight into the command (no
    /// `String` per key).
    pub fn unlinks(&self, verb: &'static str) -> Vec<redis::Cmd> {
        match self {
            Owned::Key(k) => vec![redis::cmd(verb).arg(k).clone()],
            Owned::Range { .. } => {
                let r = self.record().expect("a range has a record");
                r.batches(verb).collect()
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
    /// The keys of requests `0 .. upto + slack` of a load (`upto` read at
    /// cleanup time), with `keyspace`/`seed` as the load chose them.
    pub fn add_range(
        &self,
        prefix: &str,
        upto: Arc<AtomicU64>,
        slack: u64,
        keyspace: Option<u64>,
        seed: u64,
    ) {
        self.lock().push(Owned::Range {
            prefix: prefix.to_string(),
            upto,
            slack,
            keyspace,
            seed,
        });
    }
    /// Drop the ranges under `prefix` (they are to be kept), returning them:
    /// every range whose prefix starts with it (a perf run's threads write
    /// `<prefix>` and `<prefix><i>.`).
    pub fn take_ranges(&self, prefix: &str) -> Vec<Owned> {
        let mut all = self.lock();
        let (taken, kept) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|o| matches!(o, Owned::Range { prefix: p, .. } if p.starts_with(prefix)));
        *all = kept;
        taken
    }
    /// The range counted by `upto` had `n` requests to send and all `n` were
    /// answered: nothing past them was sent, so its slack (what may be in
    /// flight past the counter) is dropped, and cleanup does not delete
    /// names that were never written.
    pub fn settle(&self, upto: &Arc<AtomicU64>, n: u64) {
        if upto.load(Ordering::SeqCst) < n {
            return;
        }
        for o in self.lock().iter_mut() {
            if let Owned::Range { upto: u, slack, .. } = o {
                if Arc::ptr_eq(u, upto) {
                    *slack = 0;
                }
            }
        }
    }
    pub fn snapshot(&self) -> Vec<Owned> {
        self.lock().clone()
    }
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
    /// The ranges as plain numbers, one per (prefix, keyspace, seed): rounds
    /// of one load write the same names, so the longest stands for all.
    pub fn ranges(&self) -> Vec<RangeRecord> {
        merge(self.lock().iter().filter_map(Owned::record))
    }
    /// How many keys it may still hold (an upper bound).
    pub fn bound(&self) -> u64 {
        let all = self.lock();
        let keys = all.iter().filter(|o| matches!(o, Owned::Key(_))).count() as u64;
        drop(all);
        self.ranges()
            .iter()
            .map(RangeRecord::bound)
            .fold(keys, u64::saturating_add)
    }
    /// Forget every range that `r` covers (same prefix, keyspace and seed,
    /// no more requests): its keys were just removed.
    pub fn remove_covered(&self, r: &RangeRecord) {
        self.lock().retain(|o| match o.record() {
            Some(x) => {
                !(x.prefix == r.prefix
                    && x.keyspace == r.keyspace
                    && x.seed == r.seed
                    && x.requests <= r.requests)
            }
            None => true,
        });
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

/// One record per (prefix, keyspace, seed), with the most requests.
fn merge(records: impl Iterator<Item = RangeRecord>) -> Vec<RangeRecord> {
    let mut out: Vec<RangeRecord> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|x| x.prefix == r.prefix && x.keyspace == r.keyspace && x.seed == r.seed)
        {
            Some(x) => x.requests = x.requests.max(r.requests),
            None => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &redis::Cmd) -> Vec<Vec<u8>> {
        c.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn keys_are_removed_in_bounded_batches() {
        let upto = Arc::new(AtomicU64::new(2400));
        let r = Owned::Range {
            prefix: "p:".into(),
            upto: upto.clone(),
            slack: 1,
            keyspace: None,
            seed: 0,
        };
        upto.store(2500, Ordering::Relaxed);
        let b: Vec<Vec<Vec<u8>>> = r.unlinks("UNLINK").iter().map(args).collect();
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
            one.unlinks("UNLINK").iter().map(args).collect::<Vec<_>>(),
            vec![vec![b"UNLINK".to_vec(), b"k".to_vec()]]
        );
    }

    #[test]
    fn a_huge_keyspace_costs_what_was_written() {
        // 1000 requests into a keyspace of 10^12: 1000 names, the ones written.
        let r = RangeRecord {
            prefix: "p:".into(),
            requests: 1000,
            keyspace: Some(1_000_000_000_000),
            seed: 7,
        };
        assert_eq!(r.bound(), 1000);
        let names: Vec<u64> = r.indices().collect();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[3], key_index(Some(1_000_000_000_000), 7, 3));
        assert_eq!(r.batches("UNLINK").count(), 1);
        // On a cluster an untagged prefix is split by slot; a tagged one is not.
        let by_slot = r.batches_in("UNLINK", true);
        assert!(by_slot.len() > 100, "{}", by_slot.len());
        for c in &by_slot {
            let keys: Vec<Vec<u8>> = args(c).into_iter().skip(1).collect();
            let slot = crate::topology::slot::key_slot(&keys[0]);
            assert!(keys
                .iter()
                .all(|k| crate::topology::slot::key_slot(k) == slot));
        }
        let n: usize = by_slot.iter().map(|c| args(c).len() - 1).sum();
        assert_eq!(n, 1000);
        let tagged = RangeRecord {
            prefix: "p:{t}:".into(),
            ..r.clone()
        };
        assert_eq!(tagged.batches_in("UNLINK", true).len(), 1);
        // A small keyspace fully covered: each key once.
        let small = RangeRecord {
            keyspace: Some(10),
            ..r
        };
        assert_eq!(
            small.indices().collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    }
}
