//! Which keys to compare, in batches: every key of a db (SCAN, never KEYS), or
//! a random sample. Key names flow through; only a sample's names are
//! remembered (to draw distinct keys), as 128-bit hashes.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rand::{Rng, SeedableRng};
use redis::Value;

use super::fingerprint::{bytes, cursor_reply, key_hash};
use super::limit::{cost, NodeIo};
use super::Comparison;
use crate::client::{DbCounts, ErrorKind, NodeError};

/// What to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// Every key.
    All,
    /// About this many keys in all, spread over the dbs by their sizes.
    Keys(u64),
    /// This fraction of every db.
    Ratio(f64),
}

/// How one db's keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// SCAN, every key.
    All,
    /// SCAN, each key kept with this probability: cheap when the sample is a
    /// large part of the db.
    Scan(f64),
    /// RANDOMKEY until this many distinct keys: cheap whatever the db's size
    /// when the sample is a small part of it.
    Random(u64),
    /// SCAN ... TYPE stream: every stream (their consumer groups, which the
    /// digest does not see).
    Streams,
}

impl Plan {
    /// The plan for a db of `db_keys` keys out of `total_keys` on the node.
    pub fn for_db(sample: Sample, db_keys: u64, total_keys: u64) -> Plan {
        let want = match sample {
            Sample::All => return Plan::All,
            Sample::Keys(n) => (n as f64 * db_keys as f64 / total_keys.max(1) as f64).ceil() as u64,
            Sample::Ratio(r) => (r * db_keys as f64).ceil() as u64,
        };
        if want >= db_keys {
            Plan::All
        } else if want.saturating_mul(4) >= db_keys {
            Plan::Scan(want as f64 / db_keys as f64)
        } else {
            Plan::Random(want.max(1))
        }
    }

    /// Keys it is expected to yield from a db of `db_keys`.
    pub fn expected(&self, db_keys: u64) -> u64 {
        match self {
            Plan::All => db_keys,
            Plan::Scan(p) => (p * db_keys as f64).round() as u64,
            Plan::Random(n) => *n,
            // How many are streams is not known before the scan.
            Plan::Streams => 0,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Plan::All => "all",
            Plan::Scan(_) => "scan",
            Plan::Random(_) => "random",
            Plan::Streams => "streams",
        }
    }
}

/// Batches of key names from one node's db.
pub struct Keys<'a> {
    io: &'a NodeIo,
    plan: Plan,
    count: u64,
    cursor: u64,
    done: bool,
    seen: HashSet<u128>,
    drawn: u64,
    rng: rand::rngs::StdRng,
}

/// redlab's own keys (run records, heartbeats, another run's probes) come
/// and go while compare reads: they are not the user's data and are not
/// compared.
pub fn is_redlabs(key: &[u8]) -> bool {
    crate::namespace::owns(key)
}

impl<'a> Keys<'a> {
    /// `count`: SCAN's COUNT, and RANDOMKEYs per pipeline.
    pub fn new(io: &'a NodeIo, plan: Plan, count: u64) -> Keys<'a> {
        Keys {
            io,
            plan,
            count: count.max(1),
            cursor: 0,
            done: false,
            seen: HashSet::new(),
            drawn: 0,
            rng: rand::rngs::StdRng::from_rng(&mut rand::rng()),
        }
    }

    /// The next batch, or None at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<Vec<u8>>>, NodeError> {
        while !self.done {
            let batch = match self.plan {
                Plan::All | Plan::Streams => self.scan(1.0).await?,
                Plan::Scan(p) => self.scan(p).await?,
                Plan::Random(n) => self.random(n).await?,
            };
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    async fn scan(&mut self, keep: f64) -> Result<Vec<Vec<u8>>, NodeError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor).arg("COUNT").arg(self.count);
        if self.plan == Plan::Streams {
            cmd.arg("TYPE").arg("stream");
        }
        let reply: Value = self.io.query(&cmd, cost(1, 0)).await?;
        let (cursor, found) = cursor_reply(reply).ok_or_else(|| self.odd("SCAN"))?;
        self.io.debit(found.len() as u64);
        self.cursor = cursor;
        self.done = cursor == 0;
        Ok(found
            .iter()
            .filter_map(|k| bytes(k).map(<[u8]>::to_vec))
            .filter(|k| !is_redlabs(k))
            .filter(|_| keep >= 1.0 || self.rng.random::<f64>() < keep)
            .collect())
    }

    async fn random(&mut self, want: u64) -> Result<Vec<Vec<u8>>, NodeError> {
        let got = self.seen.len() as u64;
        // A small db repeats keys: stop after drawing three times the sample.
        let budget = want.saturating_mul(3) + 100;
        if got >= want || self.drawn >= budget {
            self.done = true;
            return Ok(Vec::new());
        }
        let n = (want - got).min(self.count).min(budget - self.drawn);
        let mut p = redis::pipe();
        for _ in 0..n {
            p.cmd("RANDOMKEY");
        }
        let replies: Vec<Value> = self.io.pipe(&p, cost(n, 0)).await?;
        self.drawn += n;
        let mut out = Vec::new();
        for r in replies {
            match bytes(&r) {
                Some(k) if is_redlabs(k) => {}
                Some(k) if self.seen.len() < want as usize => {
                    if self.seen.insert(key_hash(k)) {
                        out.push(k.to_vec());
                    }
                }
                Some(_) => {}
                // Nil: the db is empty.
                None => self.done = true,
            }
        }
        Ok(out)
    }

    fn odd(&self, op: &str) -> NodeError {
        self.io.conn.error(
            ErrorKind::Other,
            format!("{op} answered something that is not a cursor reply"),
        )
    }
}

/// Which keys each pass reads, per db.
pub(super) struct Plans {
    /// The master's keys, compared key by key.
    pub master: BTreeMap<u32, Plan>,
    /// The master's keys whose expiry times are checked after equal digests.
    pub ttl: BTreeMap<u32, Plan>,
    /// Each replica's own keys, looked up on the master: (replica, db).
    pub replicas: BTreeMap<(usize, u32), Plan>,
    /// Keys all passes are expected to read, for progress.
    pub expected: u64,
}

impl Comparison {
    pub(super) fn plans(
        &self,
        counts: &BTreeMap<usize, BTreeMap<u32, DbCounts>>,
        dbs: &BTreeSet<u32>,
        by_keys: &[usize],
        by_digest: &[usize],
    ) -> Plans {
        let none = BTreeMap::new();
        let keys_of = |n: usize, db: u32| {
            counts
                .get(&n)
                .and_then(|k| k.get(&db))
                .copied()
                .unwrap_or_default()
        };
        let total_of = |n: usize| {
            counts
                .get(&n)
                .unwrap_or(&none)
                .values()
                .map(|c| c.keys)
                .sum::<u64>()
        };
        let ttl_sample = match self.cfg.sample {
            Sample::All => Sample::Keys(self.cfg.ttl_sample),
            s => s,
        };
        let mut p = Plans {
            master: BTreeMap::new(),
            ttl: BTreeMap::new(),
            replicas: BTreeMap::new(),
            expected: 0,
        };
        let mut methods = BTreeSet::new();
        for &db in dbs {
            let m = keys_of(0, db);
            if !by_keys.is_empty() && m.keys > 0 {
                let plan = Plan::for_db(self.cfg.sample, m.keys, total_of(0));
                p.expected += plan.expected(m.keys);
                methods.insert(plan.method());
                p.master.insert(db, plan);
            }
            for &r in by_keys {
                let k = keys_of(r + 1, db);
                if k.keys > 0 {
                    let plan = Plan::for_db(self.cfg.sample, k.keys, total_of(r + 1));
                    p.expected += plan.expected(k.keys);
                    p.replicas.insert((r, db), plan);
                }
            }
            if !by_digest.is_empty() && m.expires > 0 {
                let plan = Plan::for_db(ttl_sample, m.keys, total_of(0));
                p.expected += plan.expected(m.keys);
                p.ttl.insert(db, plan);
            }
        }
        let method: Vec<&str> = methods.into_iter().collect();
        self.acc().sample.method = if method.is_empty() {
            "all".into()
        } else {
            method.join("+")
        };
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheaper_way_to_draw_a_sample() {
        assert_eq!(Plan::for_db(Sample::All, 10, 10), Plan::All);
        // 10,000 of 1M keys, all in one db: RANDOMKEY.
        assert_eq!(
            Plan::for_db(Sample::Keys(10_000), 1_000_000, 1_000_000),
            Plan::Random(10_000)
        );
        // Half of a db: SCAN keeping one key in two.
        assert_eq!(
            Plan::for_db(Sample::Ratio(0.5), 1000, 1000),
            Plan::Scan(0.5)
        );
        // More than the db holds: everything.
        assert_eq!(Plan::for_db(Sample::Keys(10_000), 23, 69), Plan::All);
        // Spread by size: a db with a tenth of the keys gets a tenth of the sample.
        assert_eq!(
            Plan::for_db(Sample::Keys(1000), 100_000, 1_000_000),
            Plan::Random(100)
        );
        assert_eq!(Plan::Random(100).expected(100_000), 100);
    }
}
