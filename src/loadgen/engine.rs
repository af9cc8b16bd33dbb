//! The `redlab perf` load engine: many pipelined connections on one
//! current-thread tokio runtime.
//!
//! Why hand-written: the redis crate's pipeline API cost ~0.32 s of client CPU
//! per million SETs here, 5x redis-benchmark. This engine writes RESP from a
//! reused buffer and counts replies straight out of the read buffer. A
//! current-thread runtime beat the multi-thread one in every measured case:
//! with the server on the same box, a second client thread only steals CPU.
//!
//! Model (closed loop): each connection claims the next batch of up to P
//! request numbers from a shared counter, writes them, and waits for all
//! replies before the next batch (like redis-benchmark). Open loop: a pacer
//! (`pacer.rs`) releases each batch at its intended time and the connection
//! writes it whether or not earlier replies are in (`open.rs`).
//!
//! Everything lives in one engine instance (`Shared`, the pacer, the
//! encoder): nothing is process-global, so N engines can run on N threads.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;

use super::conn::Sizes;
pub use super::keys::{expected_value, key_index, value_len};
use super::pacer::{Pacer, Schedule, Total};
use super::template::KeyEncoder;

/// What each request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    Set,
    /// GET of keys the caller pre-filled (nil replies are counted as misses).
    Get,
    /// SETs and GETs interleaved evenly in the ratio sets:gets.
    Mixed {
        sets: u32,
        gets: u32,
    },
    /// SET batches, each followed by `WAIT replicas timeout_ms`.
    SetWait {
        replicas: u32,
        timeout_ms: u64,
    },
}

/// When the run ends; both are totals across all connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Exactly this many requests are sent (like redis-benchmark -n).
    Requests(u64),
    /// No new batch starts after this; in-flight batches complete. Open
    /// loop: requests due before it that were not sent by then are missed.
    Duration(Duration),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub addr: SocketAddr,
    /// (username, password): AUTH on connect.
    pub auth: Option<(Option<String>, String)>,
    /// SELECT if != 0.
    pub db: i64,
    /// READONLY on connect: reads served by a cluster replica (which
    /// otherwise answers MOVED to its master). Never on a non-cluster node.
    pub readonly: bool,
    pub workload: Workload,
    pub stop: Stop,
    /// Pipeline depth P (max commands per batch; 0 is treated as 1).
    pub pipeline: usize,
    /// Connections c (0 is treated as 1).
    pub connections: usize,
    /// Value length min..=max; equal = fixed. See `value_len`.
    pub data_size: (usize, usize),
    /// Some(K): seeded-random keys in 0..K; None: key index = request number.
    pub keyspace: Option<u64>,
    pub seed: u64,
    /// Key = prefix + decimal index.
    pub key_prefix: String,
    /// Open-loop total ops/s; None = closed loop.
    pub rate: Option<f64>,
    /// Bound on connect and on every wait for the server; exceeding it ends
    /// the run with an error naming `addr`. SetWait adds its WAIT timeout.
    pub timeout: Duration,
    /// Completed requests so far, for the caller to poll (engine never prints).
    pub progress: Option<Arc<AtomicU64>>,
    /// Set to stop early (Ctrl-C): no new batch starts, in-flight ones complete.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Set from outside the phase to stop it early, like `cancel` (perf's
    /// memory guard): it outlives the phase, so later phases stop at once.
    pub halt: Option<Arc<AtomicBool>>,
    /// Every SET carries `PX <ms>` (whole ms, at least 1): the keys expire
    /// by themselves. Encoded once in the command template.
    pub key_ttl: Option<Duration>,
    /// A cluster's shared engine threads: this instance runs on the pool's
    /// thread for its lane (`multi::split` numbers them), next to the other
    /// shards' lanes. None: a thread of its own.
    pub pool: Option<Arc<super::pool::Seat>>,
    /// Which of its load's instances this is (0 for the first).
    pub lane: usize,
}

impl EngineConfig {
    /// Defaults: SET, 100k requests, P=1, c=50, 3-byte values, distinct keys.
    pub fn new(addr: SocketAddr) -> Self {
        EngineConfig {
            addr,
            auth: None,
            db: 0,
            readonly: false,
            workload: Workload::Set,
            stop: Stop::Requests(100_000),
            pipeline: 1,
            connections: 50,
            data_size: (3, 3),
            keyspace: None,
            seed: 0,
            key_prefix: format!("{}perf:", crate::namespace::root()),
            rate: None,
            timeout: Duration::from_secs(5),
            progress: None,
            cancel: None,
            halt: None,
            key_ttl: None,
            pool: None,
            lane: 0,
        }
    }

    /// The most requests that can be written and not yet answered at any
    /// moment (closed loop: a batch per connection; open loop: the pacer's
    /// in-flight window). A run that ends on an error may have written this
    /// many keys beyond its completed count.
    pub fn max_in_flight(&self) -> u64 {
        let (c, p) = (self.connections.max(1) as u64, self.pipeline.max(1) as u64);
        match self.rate {
            Some(_) => super::pacer::window(c, p) * c,
            None => p * c,
        }
    }

    /// `key_ttl` in whole ms as sent with PX (0 would be an error reply).
    pub fn key_ttl_ms(&self) -> Option<u64> {
        self.key_ttl.map(|t| (t.as_millis() as u64).max(1))
    }
}

#[derive(Debug, Clone)]
pub struct EngineResult {
    /// Per completed request (ns): error replies are not in it.
    pub latency_ns: Histogram<u64>,
    /// SetWait: latency of each WAIT reply (from its batch's write start;
    /// open loop: from the batch's intended send time).
    pub wait_latency_ns: Option<Histogram<u64>>,
    /// SetWait: number of replicas each WAIT reported.
    pub wait_acked: Option<Histogram<u64>>,
    /// Requests done: answered without an error (a redirected request
    /// once, when its resend is answered; WAIT excluded).
    pub completed: u64,
    /// Failed requests by the first word of their error reply ("OOM",
    /// "READONLY", ...; "MOVED"/"ASK" when a redirect could not be
    /// followed); never fatal to the run, never counted as completed.
    pub errors: BTreeMap<String, u64>,
    /// MOVED replies followed (the request sent again to the named node).
    pub moved: u64,
    /// ASK replies followed (sent again after ASKING).
    pub ask: u64,
    /// GET replies that were nil.
    pub misses: u64,
    pub elapsed_ns: u64,
    /// Completed ops in each second of the run (last partial second included).
    pub per_second: Vec<u64>,
    pub open_loop: bool,
    /// Latency of the replies read in each second and 100 ms (empty on the TLS path).
    pub latency_timeline: crate::series::LatencyTimeline,
    /// Open loop: requests due before the run ended (the deadline, or a
    /// cancel) that were never sent. 0 in closed loop.
    pub missed: u64,
    /// Open loop: per request, actual minus intended send time (ns), the
    /// scheduler's own lateness. A request that also waited for the
    /// in-flight window (the server answering too slowly) counts from when
    /// the window had room: that wait is the server's and is in the latency.
    /// High here means the client, not the server, limits the run. None in
    /// closed loop.
    pub send_error_ns: Option<Histogram<u64>>,
}

impl EngineResult {
    /// Completed ops per second over the whole run; 0 if nothing elapsed.
    pub fn ops_per_sec(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.completed as f64 * 1e9 / self.elapsed_ns as f64
    }
}

/// Run the benchmark to completion and wait for it: for sync code (a plain
/// thread, `spawn_blocking`). Async code awaits `start` instead.
pub fn run(cfg: &EngineConfig) -> Result<EngineResult> {
    start(cfg, || {})?
        .blocking_recv()
        .map_err(|_| anyhow!("perf engine thread panicked"))?
}

/// Start the benchmark on its own thread (one thread, with its own
/// current-thread runtime) and return at once; the result arrives on the
/// channel. `finished` runs on that thread once the engine has stopped
/// writing, before the result is sent (and also if it panicked).
pub fn start(
    cfg: &EngineConfig,
    finished: impl FnOnce() + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<Result<EngineResult>>> {
    validate(cfg)?;
    let cfg = cfg.clone();
    on_thread(finished, move || run_local(cfg), |r| r.and_then(|r| r))
}

/// Several engine instances on one thread (one runtime, their connections
/// side by side): a cluster load where one thread drives every shard's
/// connections, as redis-benchmark --cluster's one thread does. Each
/// instance keeps its own counter, keys, slot map and results (in order).
pub fn start_many(
    cfgs: Vec<EngineConfig>,
    finished: impl FnOnce() + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<Vec<Result<EngineResult>>>> {
    for cfg in &cfgs {
        validate(cfg)?;
    }
    let n = cfgs.len();
    on_thread(
        finished,
        move || futures_util::future::join_all(cfgs.into_iter().map(run_local)),
        move |r: Result<Vec<Result<EngineResult>>>| match r {
            Ok(v) => v,
            Err(e) => (0..n).map(|_| Err(anyhow!("{e:#}"))).collect(),
        },
    )
}

/// Run `work` on a thread of its own with a current-thread runtime; its
/// output (or the runtime's failure, through `wrap`) arrives on the channel.
fn on_thread<F, Fut, T, O>(
    finished: impl FnOnce() + Send + 'static,
    work: F,
    wrap: impl FnOnce(Result<T>) -> O + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<O>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    O: Send + 'static,
    T: 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("redlab-perf".into())
        .spawn(move || {
            struct Finished<F: FnOnce()>(Option<F>);
            impl<F: FnOnce()> Drop for Finished<F> {
                fn drop(&mut self) {
                    if let Some(f) = self.0.take() {
                        f();
                    }
                }
            }
            let finished = Finished(Some(finished));
            // Sockets and timers only: the process and signal drivers would
            // run on every turn of the loop (the open-loop pacer's spin turns
            // it continuously) for nothing the engine uses.
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .context("building the perf runtime")
                .map(|rt| {
                    let local = tokio::task::LocalSet::new();
                    rt.block_on(local.run_until(work()))
                });
            drop(finished);
            // The receiver may be gone (the run was abandoned): nothing to do.
            let _ = tx.send(wrap(result));
        })
        .context("spawning the perf thread")?;
    Ok(rx)
}

fn validate(cfg: &EngineConfig) -> Result<()> {
    if cfg.data_size.0 > cfg.data_size.1 {
        return Err(anyhow!(
            "data size min {} > max {}",
            cfg.data_size.0,
            cfg.data_size.1
        ));
    }
    if let Some(r) = cfg.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(anyhow!("rate must be a positive number of ops/s, got {r}"));
        }
    }
    if cfg.keyspace == Some(0) {
        return Err(anyhow!("keyspace must be at least 1"));
    }
    if cfg.timeout.is_zero() {
        return Err(anyhow!("timeout must be positive"));
    }
    Ok(())
}

/// Marks a connection that is not waiting on the server (see `Shared::busy`).
pub(crate) const IDLE: u64 = u64::MAX;

/// State shared by the connection tasks. Everything runs on one thread, so
/// plain Cell/RefCell suffice: no atomics or locks on the hot path.
pub(crate) struct Shared {
    pub cfg: EngineConfig,
    /// The one key encoder: encoding never awaits, so connections take turns
    /// (one per connection was ~250 bytes each, and consecutive batches are
    /// consecutive keys, which the encoder makes cheap).
    pub enc: RefCell<KeyEncoder>,
    /// Per-connection buffer sizes.
    pub sizes: Sizes,
    /// Open loop: when each batch is due.
    pub pacer: Option<Pacer>,
    pub start: Instant,
    /// Next request number to hand out.
    pub next: Cell<u64>,
    /// Per connection: ns (since start) of the last progress while waiting on
    /// the server, or IDLE. Polled by the watchdog instead of arming a timer
    /// on every read (a per-read timer is a measurable cost at P=1).
    pub busy: Vec<Cell<u64>>,
    pub stats: RefCell<Stats>,
    /// The slot map: the node that serves this instance's keys (they carry
    /// one hash tag, so one slot). `cfg.addr` until a MOVED reply names
    /// another; connections move there between batches.
    pub route: Cell<SocketAddr>,
}

impl Shared {
    /// ns elapsed since the run started.
    #[inline]
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    pub fn cancelled(&self) -> bool {
        let set =
            |f: &Option<Arc<AtomicBool>>| f.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        set(&self.cfg.cancel) || set(&self.cfg.halt)
    }

    /// Claim up to `max` request numbers; None when the run is over.
    pub fn claim(&self, max: usize, now: Instant) -> Option<(u64, usize)> {
        if self.cancelled() {
            return None;
        }
        let first = self.next.get();
        let n = match self.cfg.stop {
            Stop::Requests(total) => (total.saturating_sub(first)).min(max as u64) as usize,
            Stop::Duration(d) if now.saturating_duration_since(self.start) >= d => 0,
            Stop::Duration(_) => max,
        };
        if n == 0 {
            return None;
        }
        self.next.set(first + n as u64);
        Some((first, n))
    }
}

/// Aggregated results: one histogram for all connections (they share a
/// thread), which is equivalent to merging per-connection ones but uses one
/// allocation instead of c.
pub(crate) struct Stats {
    pub latency: Histogram<u64>,
    pub send_error: Option<Histogram<u64>>,
    pub wait_latency: Option<Histogram<u64>>,
    pub wait_acked: Option<Histogram<u64>>,
    pub completed: u64,
    pub misses: u64,
    pub errors: BTreeMap<String, u64>,
    pub moved: u64,
    pub ask: u64,
    pub per_second: Vec<u64>,
    /// Latency over time, next to the whole run's histogram.
    pub latency_timeline: crate::series::LatencyRecorder,
}

impl Stats {
    fn new(set_wait: bool, open_loop: bool) -> Stats {
        // Growing histograms: they start small and size themselves to the
        // largest value seen. A fixed 1 ns .. 1 h range costs 270 KiB zeroed
        // up front (~70 page faults), which a short run notices.
        let hist = crate::latency::histogram;
        Stats {
            latency: hist(),
            send_error: open_loop.then(hist),
            wait_latency: set_wait.then(hist),
            wait_acked: set_wait.then(hist),
            completed: 0,
            misses: 0,
            errors: BTreeMap::new(),
            moved: 0,
            ask: 0,
            per_second: Vec::new(),
            latency_timeline: Default::default(),
        }
    }

    /// Record `n` replies of `latency_ns` read at `now_ns` (since start), in
    /// the run's histogram and in the current second's.
    #[inline]
    pub fn record_latency(&mut self, now_ns: u64, latency_ns: u64, n: u64) {
        crate::latency::record_n(&mut self.latency, latency_ns, n);
        self.latency_timeline.record(now_ns, latency_ns, n);
    }

    /// Count `n` completions that arrived at `now_ns` (since start).
    #[inline]
    pub fn add_completed(&mut self, now_ns: u64, n: u64) {
        self.completed += n;
        let sec = (now_ns / 1_000_000_000) as usize;
        if sec >= self.per_second.len() {
            self.per_second.resize(sec + 1, 0);
        }
        self.per_second[sec] += n;
    }
}

async fn run_local(cfg: EngineConfig) -> Result<EngineResult> {
    let conns = cfg.connections.max(1);
    let set_wait = matches!(cfg.workload, Workload::SetWait { .. });
    // Connect everything before the clock starts: setup is not load.
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(super::net::connect(&cfg).await?);
    }
    let pacer = cfg.rate.map(|rate| {
        let (total, deadline) = match cfg.stop {
            Stop::Requests(n) => (Total::Requests(n), None),
            Stop::Duration(d) => (Total::Before(d), Some(d)),
        };
        Pacer::new(Schedule::new(rate, conns, cfg.pipeline, total), deadline)
    });
    let shared = Rc::new(Shared {
        enc: RefCell::new(KeyEncoder::with_ttl(
            cfg.key_prefix.as_bytes(),
            cfg.key_ttl_ms(),
        )),
        sizes: Sizes::of(&cfg),
        start: Instant::now(),
        next: Cell::new(0),
        busy: (0..conns).map(|_| Cell::new(IDLE)).collect(),
        stats: RefCell::new(Stats::new(set_wait, pacer.is_some())),
        route: Cell::new(cfg.addr),
        pacer,
        cfg,
    });
    let mut set = tokio::task::JoinSet::new();
    for (id, stream) in streams.into_iter().enumerate() {
        if shared.pacer.is_some() {
            set.spawn_local(super::open::drive(stream, shared.clone(), id));
        } else {
            set.spawn_local(super::conn::drive(stream, shared.clone(), id));
        }
    }
    let all_done = async {
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| anyhow!("perf connection task failed: {e}"))??;
        }
        Ok::<(), anyhow::Error>(())
    };
    let pacing = async {
        match &shared.pacer {
            Some(p) => p.run(&shared).await,
            None => Ok(()),
        }
    };
    tokio::select! {
        r = async { tokio::try_join!(all_done, pacing) } => { r?; }
        e = watchdog(&shared) => return Err(e),
    }
    let elapsed_ns = shared.ns(Instant::now()).max(1);
    finish(&shared, elapsed_ns)
}

/// Ends the run when any connection has waited on the server longer than the
/// timeout. Returns only with that error.
async fn watchdog(shared: &Shared) -> anyhow::Error {
    let extra = match shared.cfg.workload {
        Workload::SetWait { timeout_ms, .. } => Duration::from_millis(timeout_ms),
        _ => Duration::ZERO,
    };
    let limit = shared.cfg.timeout + extra;
    let tick = (shared.cfg.timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(100));
    let limit_ns = limit.as_nanos() as u64;
    loop {
        tokio::time::sleep(tick).await;
        let now = shared.ns(Instant::now());
        let stuck = shared.busy.iter().any(|b| {
            let since = b.get();
            since != IDLE && now.saturating_sub(since) > limit_ns
        });
        if stuck {
            return anyhow!("{}: no reply within {:?}", shared.route.get(), limit);
        }
    }
}

fn finish(shared: &Shared, elapsed_ns: u64) -> Result<EngineResult> {
    let mut stats = shared.stats.borrow_mut();
    let mut per_second = std::mem::take(&mut stats.per_second);
    let whole_secs = elapsed_ns.div_ceil(1_000_000_000) as usize;
    if per_second.len() < whole_secs {
        per_second.resize(whole_secs, 0);
    }
    Ok(EngineResult {
        latency_ns: std::mem::replace(&mut stats.latency, crate::latency::histogram()),
        wait_latency_ns: stats.wait_latency.take(),
        wait_acked: stats.wait_acked.take(),
        completed: stats.completed,
        errors: std::mem::take(&mut stats.errors),
        moved: stats.moved,
        ask: stats.ask,
        misses: stats.misses,
        elapsed_ns,
        per_second,
        open_loop: shared.cfg.rate.is_some(),
        latency_timeline: std::mem::take(&mut stats.latency_timeline).finish(),
        missed: shared
            .pacer
            .as_ref()
            .map_or(0, |p| p.missed(shared.next.get())),
        send_error_ns: stats.send_error.take(),
    })
}
