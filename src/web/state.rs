//! What the page's handlers and loops share: the nodes (with their
//! connections), the latest snapshot, the cached entries, the expiries seen.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::Config;
use crate::client::{Conn, NodeError};
use crate::discover::cluster::Cluster;
use crate::run::{Ctx, Ledger};
use crate::topology::{Node, Role};

/// Lag points kept for the chart: five minutes at one per push.
pub const HISTORY: usize = 1200;
/// Expiries kept for the page.
const EXPIRIES_KEPT: usize = 20;

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One node of the topology, with a connection kept across ticks (made
/// again after it broke).
pub struct NodeSlot {
    pub node: Node,
    conn: Mutex<Option<Conn>>,
    timeout: Duration,
    /// What the last reading found, for the snapshot.
    pub view: Mutex<NodeView>,
    /// When the reading in flight was sent (None: none in flight).
    pub pending_since: Mutex<Option<Instant>>,
}

impl NodeSlot {
    pub fn is_master(&self) -> bool {
        self.node.role == Role::Master
    }

    /// The kept connection, or a new one.
    pub async fn conn(&self) -> Result<Conn, NodeError> {
        if let Some(c) = lock(&self.conn).clone() {
            return Ok(c);
        }
        let c = Conn::connect(&self.node, self.timeout).await?;
        *lock(&self.conn) = Some(c.clone());
        Ok(c)
    }

    /// The connection failed: the next use connects again.
    pub fn broken(&self) {
        *lock(&self.conn) = None;
    }

    /// The current status as the last snapshot shows it.
    pub fn up(&self) -> bool {
        lock(&self.view).status == crate::client::Status::Up
    }
}

/// One topology (a cluster's shard, or the whole replication topology).
pub struct Shard {
    /// `shard1`, ... on a cluster.
    pub name: Option<String>,
    /// Every key of the page on this shard starts with it.
    pub prefix: String,
    pub ledger: Ledger,
    /// Keys already in the ledger (a key written again is listed once).
    pub listed: Mutex<HashSet<String>>,
    /// Index of its master in `State::nodes`; its replicas follow it.
    pub master: usize,
    pub replicas: Vec<usize>,
    /// A write happened since the sampler last told the safety layer.
    pub wrote: AtomicBool,
}

impl Shard {
    pub fn new(ctx: &Ctx) -> Shard {
        Shard {
            name: ctx.shard.as_ref().map(|s| s.name.clone()),
            prefix: ctx.prefix(),
            ledger: ctx.ledger.clone(),
            listed: Mutex::new(HashSet::new()),
            master: 0,
            replicas: Vec::new(),
            wrote: AtomicBool::new(false),
        }
    }

    /// Put `key` in the run's ledger (once): the run's cleanup removes it.
    pub fn own(&self, key: &str) {
        if lock(&self.listed).insert(key.to_string()) {
            self.ledger.add(key.to_string());
        }
        self.wrote.store(true, Ordering::Relaxed);
    }
}

/// A cached entry the page wrote, until its expiry was seen everywhere or it was cleared.
#[derive(Debug, Clone)]
pub struct Entry {
    pub query: String,
    pub shard: usize,
    /// When it was written plus its TTL.
    pub expires_at: Instant,
    pub expires_at_unix_ms: u64,
    /// Bumped on every write of the key: an expiry watch of an older write gives up.
    pub generation: u64,
}

/// One node as a card shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    /// host:port.
    pub address: String,
    /// The cluster shard, when there is one.
    pub shard: Option<String>,
    /// `master` or `replica`: its place in the topology redlab was given.
    pub expected_role: Role,
    /// `up`, `down` (no answer), `loading`, `syncing`, `link-down`, or `unknown` before the first reading.
    pub status: crate::client::Status,
    /// The role it reports (`master`, `slave`).
    pub role: Option<String>,
    /// Keys in its database (INFO keyspace).
    pub keys: Option<u64>,
    /// `used_memory_human`.
    pub memory: Option<String>,
    pub used_memory_bytes: Option<u64>,
    pub uptime_s: Option<u64>,
    /// Replicas: how long the last heartbeat write took to be readable here, ms.
    pub lag_ms: Option<f64>,
    /// Why it is not up.
    pub error: Option<String>,
    /// Since when (unix ms) it has been down.
    pub down_since_ms: Option<u64>,
}

/// A cached entry as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub query: String,
    pub key: String,
    pub shard: Option<String>,
    /// Time left when the snapshot was taken, ms.
    pub ttl_ms: i64,
}

/// What every tab is pushed each tick.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When it was taken, unix ms.
    pub t_ms: u64,
    pub nodes: Vec<NodeView>,
    pub entries: Vec<EntryView>,
}

/// One point of the lag chart: each replica's lag_ms, in node order (null: no reading).
#[derive(Debug, Clone, Serialize)]
pub struct LagPoint {
    pub t_ms: u64,
    pub lag_ms: Vec<Option<f64>>,
}

pub struct State {
    pub cfg: Config,
    pub shards: Vec<Shard>,
    /// Every node, each shard's master followed by its replicas.
    pub nodes: Vec<NodeSlot>,
    pub cluster: Option<Cluster>,
    pub run_timeout: Duration,
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    /// Pushed to every tab besides the snapshots: `query` and `expiry` events (name, JSON).
    pub events: broadcast::Sender<(&'static str, Arc<String>)>,
    pub entries: Mutex<BTreeMap<String, Entry>>,
    pub expiries: Mutex<VecDeque<serde_json::Value>>,
    pub history: Mutex<VecDeque<LagPoint>>,
    /// Round robin over the replicas for reads.
    pub next_read: AtomicUsize,
    /// Expiry watches running (bounded).
    pub watches: AtomicUsize,
    pub generation: std::sync::atomic::AtomicU64,
}

impl State {
    pub fn new(
        cfg: Config,
        mut shards: Vec<Shard>,
        cluster: Option<Cluster>,
        ctxs: &[Ctx],
    ) -> State {
        let mut nodes = Vec::new();
        for (shard, ctx) in shards.iter_mut().zip(ctxs) {
            shard.master = nodes.len();
            for n in ctx.topology.nodes() {
                if n.role == Role::Replica {
                    shard.replicas.push(nodes.len());
                }
                nodes.push(NodeSlot {
                    node: n.clone(),
                    conn: Mutex::new(None),
                    timeout: ctx.timeout,
                    view: Mutex::new(NodeView {
                        name: n.name.clone(),
                        address: n.addr(),
                        shard: shard.name.clone(),
                        expected_role: n.role,
                        status: crate::client::Status::Unknown,
                        role: None,
                        keys: None,
                        memory: None,
                        used_memory_bytes: None,
                        uptime_s: None,
                        lag_ms: None,
                        error: None,
                        down_since_ms: None,
                    }),
                    pending_since: Mutex::new(None),
                });
            }
        }
        State {
            cfg,
            shards,
            nodes,
            cluster,
            run_timeout: ctxs[0].timeout,
            snapshot: watch::channel(Arc::new(Snapshot::default())).0,
            events: broadcast::channel(64).0,
            entries: Mutex::new(BTreeMap::new()),
            expiries: Mutex::new(VecDeque::new()),
            history: Mutex::new(VecDeque::new()),
            next_read: AtomicUsize::new(0),
            watches: AtomicUsize::new(0),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Push an event to every open tab.
    pub fn publish(&self, name: &'static str, v: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(v) {
            let _ = self.events.send((name, Arc::new(text)));
        }
    }

    pub fn add_expiry(&self, v: serde_json::Value) {
        let mut e = lock(&self.expiries);
        e.push_front(v.clone());
        e.truncate(EXPIRIES_KEPT);
        drop(e);
        self.publish("expiry", &v);
    }

    /// The shard a query's entry lives on: on a cluster, the one serving the
    /// query's slot (its key carries that shard's tag), else the only one.
    pub fn shard_for(&self, query: &str) -> usize {
        self.cluster
            .as_ref()
            .and_then(|c| c.shard_of_key(query.as_bytes()))
            .filter(|k| *k < self.shards.len())
            .unwrap_or(0)
    }

    /// What the page shows before the first event: the topology and the settings.
    pub fn hello(&self) -> serde_json::Value {
        let history: Vec<LagPoint> = lock(&self.history).iter().cloned().collect();
        let expiries: Vec<serde_json::Value> = lock(&self.expiries).iter().cloned().collect();
        serde_json::json!({
            "prefix": self.shards.first().map(|s| s.prefix.clone()),
            "ttl_ms": self.cfg.ttl.as_millis() as u64,
            "source_delay_ms": self.cfg.source_delay.as_millis() as u64,
            "tick_ms": super::PUSH.as_millis() as u64,
            "cluster": self.cluster.is_some(),
            "nodes": self.nodes.iter().map(|n| lock(&n.view).clone()).collect::<Vec<_>>(),
            "replicas": self.nodes.iter().filter(|n| !n.is_master()).map(|n| n.node.name.clone()).collect::<Vec<_>>(),
            "history": history,
            "expiries": expiries,
        })
    }
}
