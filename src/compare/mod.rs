//! compare: is every replica's *data* the same as the master's, right now,
//! without stopping writes? Read-only (no write, no KEYS, no Lua), capped in
//! commands per second per node, bounded in memory whatever the keyspace.
//!
//! The engine: given the master and the replicas (with their settle outcome,
//! `settle::settle`), it compares by `DEBUG DIGEST` where every node allows it
//! and the digests agree, else key by key (`pass`), then re-checks what
//! differed (`rounds`). It never prints: progress is in `Live`, and a caller
//! that drops `run` (Ctrl-C) still gets the partial result from `result`.

pub mod digest;
pub mod fingerprint;
pub mod groups;
pub mod limit;
pub mod modules;
mod observe;
mod pass;
pub mod result;
pub mod rounds;
pub mod scan;
pub mod settle;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::client::{Conn, DbCounts, NodeError};
use crate::topology::Node;
use limit::{Limiter, NodeIo};
pub use result::{CompareResult, KeySample, Kind, Path, ReplicaResult, SampleInfo};
use rounds::Tracker;
pub use scan::Sample;
pub use settle::{settle, Endpoint, Settle};

/// How to compare (plain data; the subcommand fills it from its flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Rounds in all: the first pass, then re-checks of what differed.
    pub rounds: u32,
    /// Pause before each re-check round.
    pub interval: Duration,
    /// Allowed difference between two expiry times (plus the time between the reads).
    pub ttl_tolerance: Duration,
    /// Differing keys named per kind per replica.
    pub show: usize,
    /// Show the first bytes of differing values.
    pub show_values: bool,
    /// Commands per second per node (None: no cap).
    pub max_ops: Option<u64>,
    /// Every key, or a sample.
    pub sample: Sample,
    /// Keys sampled for the TTL check after equal digests.
    pub ttl_sample: u64,
    /// SCAN's COUNT, and keys per pipelined batch.
    pub scan_count: u64,
    /// Try DEBUG DIGEST first.
    pub digest: bool,
    /// Only when no node holds more keys than this (None: whatever the size):
    /// the digest blocks each server for as long as it takes.
    pub digest_max_keys: Option<u64>,
    /// Bound on connecting and on every command.
    pub timeout: Duration,
    /// Bound on one reply of a chunked read, bytes.
    pub chunk_bytes: u64,
    /// Differing keys kept for re-checks, all replicas together.
    pub recheck_cap: usize,
    /// The nodes are a cluster shard's: a command names keys of one slot
    /// only (a multi-key command across slots is refused with CROSSSLOT).
    pub cluster: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rounds: 3,
            interval: Duration::from_secs(1),
            ttl_tolerance: Duration::from_millis(250),
            show: 10,
            show_values: false,
            max_ops: None,
            sample: Sample::All,
            ttl_sample: 10_000,
            scan_count: 1000,
            digest: true,
            digest_max_keys: Some(100_000),
            timeout: Duration::from_secs(3),
            chunk_bytes: 1 << 20,
            recheck_cap: 100_000,
            cluster: false,
        }
    }
}

/// What a caller may watch while the comparison runs.
#[derive(Debug, Default)]
pub struct Live {
    /// Keys the passes expect to read (from INFO keyspace and the sample).
    pub total_keys: AtomicU64,
    /// Keys read so far.
    pub done_keys: AtomicU64,
    /// What it is doing, in a few words.
    pub phase: Mutex<String>,
}

impl Live {
    fn phase(&self, s: impl Into<String>) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = s.into();
    }
}

/// Per replica, while it runs.
#[derive(Debug, Default)]
struct Per {
    compared: u64,
    path: Option<Path>,
    path_reason: String,
    error: Option<String>,
    ttl_checked: Option<u64>,
    /// After equal digests: streams whose consumer groups were compared key by key.
    streams_checked: Option<u64>,
}

/// Everything found so far: kept outside `run`'s future so that a caller
/// that drops it still has the partial result.
struct Acc {
    started: Option<Instant>,
    /// When the passes ended and the re-check rounds began.
    passes_done: Option<Instant>,
    finished: Option<Instant>,
    dbs: Vec<u32>,
    master_digest: Option<String>,
    digest_unavailable: Option<String>,
    /// Why entries-read is not compared (see `groups::entries_read_replicated`).
    streams_note: Option<String>,
    sample: SampleInfo,
    rounds_used: u32,
    per: Vec<Per>,
    tracker: Tracker,
}

/// One comparison of the master with its replicas.
pub struct Comparison {
    cfg: Config,
    /// The master, then the replicas in order.
    nodes: Vec<Node>,
    settles: Vec<Settle>,
    /// The master's connection (its URL's db), with its cap.
    master: NodeIo,
    /// Per replica: the same, or None when it is not compared.
    replicas: Vec<Option<NodeIo>>,
    /// Connections to other dbs, opened as needed.
    dbio: Mutex<HashMap<(usize, u32), NodeIo>>,
    /// Per replica: it failed during the run and is compared no further.
    failed: Vec<AtomicBool>,
    acc: Mutex<Acc>,
}

impl Comparison {
    /// `replicas` with the outcome of `settle` for each: only those that
    /// settled (caught up or lagging) are compared.
    pub fn new(
        cfg: Config,
        master: &Node,
        master_conn: &Conn,
        replicas: Vec<(Endpoint, Settle)>,
    ) -> Comparison {
        let io = |conn: Conn| NodeIo {
            conn,
            limit: Arc::new(Limiter::new(cfg.max_ops)),
            ops: Arc::new(AtomicU64::new(0)),
        };
        let mut nodes = vec![master.clone()];
        let mut ios = Vec::new();
        let mut settles = Vec::new();
        for (e, s) in replicas {
            ios.push(match (&e.conn, s.comparable()) {
                (Ok(c), true) => Some(io(c.clone())),
                _ => None,
            });
            nodes.push(e.node);
            settles.push(s);
        }
        let n = settles.len();
        let acc = Acc {
            started: None,
            passes_done: None,
            finished: None,
            dbs: Vec::new(),
            master_digest: None,
            digest_unavailable: None,
            streams_note: None,
            sample: SampleInfo {
                method: "all".into(),
                requested_keys: match cfg.sample {
                    Sample::Keys(k) => Some(k),
                    _ => None,
                },
                requested_ratio: match cfg.sample {
                    Sample::Ratio(r) => Some(r),
                    _ => None,
                },
                master_keys_sampled: 0,
                master_keys_total: 0,
            },
            rounds_used: 0,
            per: (0..n).map(|_| Per::default()).collect(),
            tracker: Tracker::new(n, cfg.recheck_cap),
        };
        Comparison {
            failed: (0..n).map(|_| AtomicBool::new(false)).collect(),
            master: io(master_conn.clone()),
            cfg,
            nodes,
            settles,
            replicas: ios,
            dbio: Mutex::new(HashMap::new()),
            acc: Mutex::new(acc),
        }
    }

    fn acc(&self) -> MutexGuard<'_, Acc> {
        self.acc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `n`'s own connection: 0 the master, r + 1 replica r.
    fn base(&self, n: usize) -> Option<&NodeIo> {
        match n {
            0 => Some(&self.master),
            _ => self.replicas.get(n - 1)?.as_ref(),
        }
    }

    /// Replicas (by index) still being compared.
    fn active(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|r| self.replicas[*r].is_some() && !self.failed[*r].load(Ordering::Relaxed))
            .collect()
    }

    /// A replica's error ends its comparison, not the others'.
    fn fail_replica(&self, r: usize, e: &NodeError) {
        self.failed[r].store(true, Ordering::Relaxed);
        let mut acc = self.acc();
        if acc.per[r].error.is_none() {
            acc.per[r].error = Some(e.to_string());
        }
    }

    /// Whether an error is the master's (which ends the whole comparison).
    fn is_master(&self, e: &NodeError) -> bool {
        e.node == self.nodes[0].name
    }

    /// Node `n`'s connection to `db` (opened once, sharing the node's cap).
    async fn io(&self, n: usize, db: u32) -> Result<NodeIo, NodeError> {
        let node = &self.nodes[n];
        let base = self.base(n).cloned().ok_or_else(|| {
            NodeError::new(
                &node.name,
                &node.addr(),
                crate::client::ErrorKind::Other,
                "not compared",
            )
        })?;
        if node.db() == db as i64 {
            return Ok(base);
        }
        if let Some(io) = self
            .dbio
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(n, db))
        {
            return Ok(io.clone());
        }
        let settings = node.info.redis_settings().clone().set_db(db as i64);
        let at_db = Node {
            info: node.info.clone().set_redis_settings(settings),
            ..node.clone()
        };
        let io = base.with_conn(Conn::connect(&at_db, self.cfg.timeout).await?);
        self.dbio
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((n, db), io.clone());
        Ok(io)
    }

    /// Compare. A master error ends it (Err); a replica's error ends only that
    /// replica's comparison (in its result). Dropping the future stops it; the
    /// counts so far stay in `result`.
    pub async fn run(&self, live: &Live) -> Result<(), NodeError> {
        let epoch = Instant::now();
        self.acc().started = Some(epoch);
        live.phase("reading key counts");
        let counts = self.keyspaces().await?;
        let master_counts = counts.get(&0).cloned().unwrap_or_default();
        let dbs: BTreeSet<u32> = counts.values().flat_map(|ks| ks.keys().copied()).collect();
        let total: u64 = master_counts.values().map(|c| c.keys).sum();
        {
            let mut acc = self.acc();
            acc.dbs = dbs.iter().copied().collect();
            acc.sample.master_keys_total = total;
        }
        let largest = counts
            .values()
            .map(|ks| ks.values().map(|c| c.keys).sum::<u64>())
            .max()
            .unwrap_or(0);
        let (by_digest, by_keys) = self.choose_paths(live, total, largest).await?;
        let plans = self.plans(&counts, &dbs, &by_keys, &by_digest);
        live.total_keys.store(plans.expected, Ordering::Relaxed);
        let cx = pass::Cx {
            cfg: &self.cfg,
            live,
            epoch,
            cmp: self,
        };
        for &db in &dbs {
            if !by_keys.is_empty() {
                if let Some(plan) = plans.master.get(&db) {
                    pass::master_pass(&cx, db, *plan, &by_keys, pass::Mode::Values).await?;
                }
                pass::extra_passes(&cx, db, &plans.replicas, &by_keys).await?;
            }
            if let Some(plan) = plans.ttl.get(&db).filter(|_| !by_digest.is_empty()) {
                pass::master_pass(&cx, db, *plan, &by_digest, pass::Mode::Ttl).await?;
            }
            // The digest does not see consumer groups: every stream is read for them.
            if !by_digest.is_empty() {
                let plan = scan::Plan::Streams;
                pass::master_pass(&cx, db, plan, &by_digest, pass::Mode::Streams).await?;
            }
        }
        {
            let mut acc = self.acc();
            acc.rounds_used = 1;
            acc.passes_done = Some(Instant::now());
        }
        for round in 2..=self.cfg.rounds.max(1) {
            let open = self.acc().tracker.open();
            if open == 0 {
                break;
            }
            live.phase(format!(
                "{} differing: re-checking, round {round}/{}",
                crate::report::plural(open as u64, "key"),
                self.cfg.rounds
            ));
            tokio::time::sleep(self.cfg.interval).await;
            pass::recheck(&cx).await?;
            self.acc().rounds_used = round;
        }
        self.acc().finished = Some(Instant::now());
        Ok(())
    }

    /// INFO keyspace of the master (0) and of every compared replica (r + 1).
    async fn keyspaces(&self) -> Result<BTreeMap<usize, BTreeMap<u32, DbCounts>>, NodeError> {
        let mut out = BTreeMap::new();
        let master = self
            .master
            .conn
            .clone()
            .info_sections(&["keyspace", "server"])
            .await?;
        self.acc().streams_note = groups::entries_read_replicated(&master)
            .err()
            .map(|why| format!("entries-read of consumer groups not compared: {why}"));
        out.insert(0, master.keyspace());
        let active = self.active();
        let infos = join_all(active.iter().filter_map(|&r| {
            let mut conn = self.replicas[r].as_ref()?.conn.clone();
            Some(async move { (r, conn.info("keyspace").await) })
        }))
        .await;
        for (r, info) in infos {
            match info {
                Ok(i) => {
                    out.insert(r + 1, i.keyspace());
                }
                Err(e) => self.fail_replica(r, &e),
            }
        }
        Ok(out)
    }
}
