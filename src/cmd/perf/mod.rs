//! perf: pipelined throughput and per-request latency on the master, with
//! what the load did to memory, eviction and the replicas.
//!
//! The measuring loop is the hand-written engine in `crate::perf`; this module
//! plans the phases (prefill, warm-up, rounds), guards user data, and builds
//! the report.

mod baseline;
mod details;
pub(crate) mod figures;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::{PerfArgs, PerfWorkload};
use crate::client::{Conn, Info};
use crate::ctx::Ctx;
use crate::perf::engine::{self, EngineConfig, EngineResult, Stop, Workload};
use crate::perf::tls;
use crate::report::{Check, Report};
use crate::stats::LatencyUs;
use crate::survey::{require_master, NodeState};
use crate::topology::Node;
use std::future::Future;
use std::pin::Pin;

pub use baseline::read as read_baseline;
pub use details::{CatchUp, Memory, PerfDetails, Round};

/// The plain config the engine phases are planned from.
pub struct Config {
    pub args: PerfArgs,
    pub workload: Workload,
    pub stop: Stop,
}

impl Config {
    pub fn from_args(args: &PerfArgs, replicas: usize) -> Result<Config> {
        let workload = match args.workload {
            PerfWorkload::Set => Workload::Set,
            PerfWorkload::Get => Workload::Get,
            PerfWorkload::Mixed => Workload::Mixed {
                sets: args.ratio.0,
                gets: args.ratio.1,
            },
            PerfWorkload::SetWait => {
                if replicas == 0 {
                    bail!("--workload set-wait needs replicas to wait for; this topology has none");
                }
                Workload::SetWait {
                    replicas: replicas as u32,
                    timeout_ms: args.wait_timeout.as_millis().max(1) as u64,
                }
            }
        };
        let stop = match args.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Requests(args.requests),
        };
        if args.rounds == 0 || args.pipeline == 0 || args.connections == 0 {
            bail!("--rounds, --pipeline and --connections must be at least 1");
        }
        if matches!(stop, Stop::Requests(0)) {
            bail!("-n/--requests must be at least 1");
        }
        if let Some(path) = &args.baseline {
            baseline::read(path)?;
        }
        if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
            bail!("--tolerance must be a percentage >= 0");
        }
        Ok(Config {
            args: args.clone(),
            workload,
            stop,
        })
    }

    /// The smoke test `check` runs: 1000 SETs pipelined 1000 deep, one round.
    pub fn smoke(baseline: Option<std::path::PathBuf>, tolerance: f64) -> Config {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: PerfArgs,
        }
        // clap holds the defaults; parsing them keeps one source of truth.
        let mut args =
            <Defaults as clap::Parser>::parse_from(["perf", "--rounds", "1", "--warmup", "0"]).args;
        args.baseline = baseline;
        args.tolerance = tolerance;
        Config {
            args,
            workload: Workload::Set,
            stop: Stop::Requests(1000),
        }
    }

    /// Keys read by get/mixed must exist first.
    fn prefill(&self) -> Option<u64> {
        match self.workload {
            Workload::Get | Workload::Mixed { .. } => {
                Some(self.args.keyspace.unwrap_or(match self.stop {
                    Stop::Requests(n) => n,
                    Stop::Duration(_) => 100_000,
                }))
            }
            _ => None,
        }
    }

    /// Reads of keys that were never written would only measure misses.
    fn keyspace(&self) -> Option<u64> {
        match (self.prefill(), self.args.keyspace) {
            (_, Some(k)) => Some(k),
            (Some(p), None) if matches!(self.stop, Stop::Duration(_)) => Some(p),
            _ => None,
        }
    }

    /// Upper bound on bytes the run stores (key + value + ~64 B of overhead each).
    fn bytes_estimate(&self, prefix_len: usize) -> u64 {
        let keys = match (self.keyspace(), &self.stop) {
            (Some(k), _) => k,
            (None, Stop::Requests(n)) => *n,
            // Open loop knows its rate; closed loop: assume a fast server.
            (None, Stop::Duration(d)) => {
                (d.as_secs_f64() * self.args.rate.unwrap_or(2_000_000.0)) as u64
            }
        };
        keys.saturating_add(self.args.warmup)
            * (prefix_len as u64 + 20 + self.args.data_size.1 as u64 + 64)
    }
}

pub async fn run(args: &PerfArgs, ctx: &Ctx) -> Result<Report<PerfDetails>> {
    let cfg = Config::from_args(args, ctx.topology.replicas.len())?;
    let states = ctx.survey().await;
    require_master(&states[0])?;
    let d = measure(&cfg, ctx, &states).await?;
    let checks = checks(&d);
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new("perf", ctx.manifest(), nodes, checks, d))
}

/// The whole measurement on an existing survey (the master passed
/// `require_master`): prefill, warm-up, rounds, replica catch-up, cleanup.
pub async fn measure(cfg: &Config, ctx: &Ctx, states: &[NodeState]) -> Result<PerfDetails> {
    let before = states[0].info.clone().expect("checked by require_master");
    let prefix = ctx.key("perf:");
    eviction_guard(cfg, &before, prefix.len())?;
    let base = engine_base(cfg, &ctx.topology.master, ctx.timeout, &prefix).await?;
    let started = Instant::now();

    if let Some(n) = cfg.prefill() {
        let fill = EngineConfig {
            workload: Workload::Set,
            stop: Stop::Requests(n),
            keyspace: None,
            pipeline: cfg.args.pipeline.max(100),
            rate: None,
            ..base.clone()
        };
        ctx.ledger
            .add_range(&prefix, Arc::new(AtomicU64::new(n)), 0);
        phase(ctx, fill, "filling keys to read").await?;
    }
    if cfg.args.warmup > 0 {
        let warm_prefix = ctx.key("perf-warm:");
        // Distinct keys 0..warmup, closed loop: exactly the range recorded below.
        let warm = EngineConfig {
            key_prefix: warm_prefix.clone(),
            stop: Stop::Requests(cfg.args.warmup),
            keyspace: None,
            rate: None,
            ..base.clone()
        };
        let upto = Arc::new(AtomicU64::new(cfg.args.warmup));
        ctx.ledger.add_range(&warm_prefix, upto, 0);
        phase(ctx, warm, "warming up").await?;
    }
    let mut results = Vec::new();
    for r in 0..cfg.args.rounds {
        let round = EngineConfig {
            progress: Some(Arc::new(AtomicU64::new(0))),
            ..base.clone()
        };
        let upto = match (round.keyspace, &round.stop) {
            (Some(k), _) => Arc::new(AtomicU64::new(k)),
            (None, Stop::Requests(n)) => Arc::new(AtomicU64::new(*n)),
            (None, Stop::Duration(_)) => round.progress.clone().expect("set above"),
        };
        // Only a timed run can have batches in flight past its counter.
        let slack = match round.stop {
            Stop::Duration(_) if round.keyspace.is_none() => {
                (round.pipeline * round.connections) as u64
            }
            _ => 0,
        };
        ctx.ledger.add_range(&prefix, upto, slack);
        results.push(phase(ctx, round, &format!("round {}/{}", r + 1, cfg.args.rounds)).await?);
    }
    let load_ms = crate::duration::ms(started.elapsed());
    let replicas = catch_up(states, cfg.args.settle).await;
    let mut mconn = states[0].conn.clone().expect("reachable master");
    // What the report compares with `before`: used_memory and evicted_keys.
    let after = mconn.info_sections(&["memory", "stats"]).await?;
    let keys_removed = if cfg.args.keep_keys {
        keep_measured_keys(ctx, &prefix)
    } else {
        ctx.cleanup_on(states[0].conn.clone()).await?
    };
    let median = median_round(&results);
    if let Some(path) = &cfg.args.hdr_out {
        crate::report::write_file(path, &crate::stats::hgrm_ms(&results[median].latency_ns))?;
    }
    let mut d = details::build(
        cfg,
        states,
        &results,
        median,
        &before,
        &after,
        replicas,
        &prefix,
        keys_removed,
        load_ms,
    );
    if let Some(path) = &cfg.args.baseline {
        d.baseline = Some(baseline::compare(path, &d, cfg.args.tolerance)?);
    }
    Ok(d)
}

/// The engine settings every phase shares.
async fn engine_base(
    cfg: &Config,
    master: &Node,
    timeout: Duration,
    prefix: &str,
) -> Result<EngineConfig> {
    // The TLS path connects through the redis crate from the node itself.
    let addr = if master.tls() {
        std::net::SocketAddr::from(([0, 0, 0, 0], master.port()))
    } else {
        tokio::net::lookup_host((master.host(), master.port()))
            .await
            .with_context(|| format!("resolving {}", master.label()))?
            .next()
            .with_context(|| format!("{}: the host name resolves to no address", master.label()))?
    };
    let settings = master.info.redis_settings();
    Ok(EngineConfig {
        auth: settings
            .password()
            .map(|p| (settings.username().map(String::from), p.to_string())),
        db: settings.db(),
        workload: cfg.workload.clone(),
        stop: cfg.stop.clone(),
        pipeline: cfg.args.pipeline,
        connections: cfg.args.connections,
        data_size: cfg.args.data_size,
        keyspace: cfg.keyspace(),
        seed: cfg.args.seed,
        key_prefix: prefix.to_string(),
        rate: cfg.args.rate,
        timeout,
        progress: None,
        ..EngineConfig::new(addr)
    })
}

/// Run one engine phase off the async threads, with a progress bar.
async fn phase(ctx: &Ctx, mut cfg: EngineConfig, label: &str) -> Result<EngineResult> {
    let progress = cfg
        .progress
        .get_or_insert_with(|| Arc::new(AtomicU64::new(0)))
        .clone();
    let guard = StopOnDrop::new(ctx.timeout * 2);
    cfg.cancel = Some(guard.cancel.clone());
    let bar = match cfg.stop {
        Stop::Requests(n) => ctx.progress.bar(n, label.to_string()),
        Stop::Duration(d) => ctx
            .progress
            .spinner(format!("{label} for {}", humantime::format_duration(d))),
    };
    let job: Pin<Box<dyn Future<Output = Result<EngineResult>> + Send>> =
        if ctx.topology.master.tls() {
            // Its tasks are aborted with its future: nothing to wait for on drop.
            guard.finished();
            let node = ctx.topology.master.clone();
            Box::pin(async move { tls::run(&node, &cfg).await })
        } else {
            let done = guard.done.clone();
            match engine::start(&cfg, move || signal_done(&done)) {
                Ok(rx) => Box::pin(async move { rx.await.context("the perf engine stopped")? }),
                Err(e) => {
                    guard.finished();
                    Box::pin(std::future::ready(Err(e)))
                }
            }
        };
    tokio::pin!(job);
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => bar.set_position(progress.load(Ordering::Relaxed)),
        }
    };
    bar.finish();
    result
}

/// If a phase is abandoned (Ctrl-C drops its future), tell the engine to stop
/// and wait, bounded, until it has: the key cleanup that follows must not race
/// with writes still going out.
struct StopOnDrop {
    cancel: Arc<AtomicBool>,
    done: Arc<(Mutex<bool>, Condvar)>,
    bound: Duration,
}

impl StopOnDrop {
    fn new(bound: Duration) -> StopOnDrop {
        StopOnDrop {
            cancel: Arc::default(),
            done: Arc::default(),
            bound,
        }
    }
}

impl StopOnDrop {
    fn finished(&self) {
        signal_done(&self.done);
    }
}

fn signal_done(done: &(Mutex<bool>, Condvar)) {
    let (lock, cv) = done;
    *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
    cv.notify_all();
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let (lock, cv) = &*self.done;
        let finished = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(finished, self.bound, |done| !*done);
    }
}

/// Refuse a run that could make the master evict user keys.
/// Refuse a run that could push the master to its memory limit: there it
/// would evict user keys (`allkeys-*`, `volatile-*`) or refuse the users'
/// own writes (`noeviction`).
fn eviction_guard(cfg: &Config, info: &Info, prefix_len: usize) -> Result<()> {
    let max = info.u64("maxmemory").unwrap_or(0);
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    if max == 0 || cfg.args.allow_eviction {
        return Ok(());
    }
    let used = info.u64("used_memory").unwrap_or(0);
    let need = cfg.bytes_estimate(prefix_len);
    let harm = if policy == "noeviction" {
        "which could fill it and make it refuse the users' writes (OOM)"
    } else {
        "which could evict user keys"
    };
    // Allocator overhead and fragmentation: keep a 10 % margin below maxmemory.
    if used.saturating_add(need) > max / 10 * 9 {
        bail!(
            "refusing to start: this run may store ~{} MiB on a master at {} of {} MiB with maxmemory-policy {policy}, \
             {harm}. Bound the keys with --keyspace (a --duration run writes a new key per request), \
             use fewer requests or a smaller --data-size, or pass --allow-eviction",
            need >> 20,
            format_args!("{} MiB", used >> 20),
            max >> 20
        );
    }
    Ok(())
}

fn median_round(results: &[EngineResult]) -> usize {
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|a, b| {
        results[*a]
            .ops_per_sec()
            .total_cmp(&results[*b].ops_per_sec())
    });
    order[order.len() / 2]
}

/// --keep-keys: leave the measured keys, still remove the warm-up's.
fn keep_measured_keys(ctx: &Ctx, prefix: &str) -> u64 {
    let _ = ctx.ledger.take_ranges(prefix);
    0
}

/// Per replica: offset lag right after the load and the time to catch up.
async fn catch_up(states: &[NodeState], settle: Duration) -> Vec<CatchUp> {
    let Some(mut master) = states[0].conn.clone().filter(|_| states.len() > 1) else {
        return Vec::new();
    };
    let target = match master.info("replication").await {
        Ok(i) => i.repl_offset(),
        Err(_) => return Vec::new(),
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for st in &states[1..] {
        let conn = st.conn.clone();
        tasks.push((
            st.node.name.clone(),
            st.node.addr(),
            tokio::spawn(track(conn, target, start, settle)),
        ));
    }
    let mut out = Vec::new();
    for (name, address, t) in tasks {
        let (lag, ms, error) = t.await.unwrap_or((None, None, Some("task failed".into())));
        out.push(CatchUp {
            name,
            address,
            offset_lag_bytes_after_load: lag,
            catch_up_ms: ms,
            error,
        });
    }
    out
}

async fn track(
    conn: Option<Conn>,
    target: u64,
    start: Instant,
    settle: Duration,
) -> (Option<u64>, Option<f64>, Option<String>) {
    let Some(mut c) = conn else {
        return (None, None, Some("not reachable".into()));
    };
    let mut first_lag = None;
    loop {
        match c.info("replication").await {
            Err(e) => return (first_lag, None, Some(e.message)),
            Ok(i) => {
                let off = i.u64("slave_repl_offset").unwrap_or(0);
                first_lag.get_or_insert(target.saturating_sub(off));
                if off >= target {
                    return (first_lag, Some(crate::duration::ms(start.elapsed())), None);
                }
            }
        }
        if start.elapsed() > settle {
            return (
                first_lag,
                None,
                Some(format!(
                    "not caught up within {}",
                    humantime::format_duration(settle)
                )),
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn checks(d: &PerfDetails) -> Vec<Check> {
    let mut out = Vec::new();
    let total: u64 = d.round_results.iter().map(|r| r.completed).sum();
    let summary = format!(
        "{total} requests in {} round(s), median {:.0} ops/s, p99 {}",
        d.round_results.len(),
        d.throughput_ops_per_sec,
        crate::stats::fmt_us(d.latency.p99_us)
    );
    out.push(if total > 0 {
        Check::pass("perf.requests", summary)
    } else {
        Check::fail("perf.requests", "no request completed")
    });
    if d.errors.is_empty() {
        out.push(Check::pass("perf.errors", "no error replies"));
    } else {
        let kinds: Vec<String> = d.errors.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        out.push(Check::new(
            "perf.errors",
            crate::report::Verdict::Warn,
            format!("error replies: {}", kinds.join(", ")),
        ));
    }
    if let Some(acked) = &d.wait_acked {
        let want = d.replicas.len() as u64;
        let reason = format!(
            "WAIT acknowledged by {}..{} of {want} replicas",
            acked.min, acked.max
        );
        out.push(if acked.min >= want {
            Check::pass("perf.wait", reason)
        } else {
            Check::new("perf.wait", crate::report::Verdict::Warn, reason)
        });
    }
    for r in &d.replicas {
        let name = format!("{}.catch_up", r.name);
        out.push(match (r.catch_up_ms, &r.error) {
            (Some(ms), _) => Check::pass(
                name,
                format!(
                    "{} bytes behind after the load, caught up in {ms:.1} ms",
                    crate::report::opt(&r.offset_lag_bytes_after_load)
                ),
            ),
            (None, e) => Check::fail(name, e.clone().unwrap_or_else(|| "did not catch up".into())),
        });
    }
    if let Some(b) = &d.baseline {
        out.push(baseline::check(b));
    }
    out
}

/// Summary of the latency for renderers.
pub fn latency_of(r: &EngineResult) -> LatencyUs {
    LatencyUs::from_ns(&r.latency_ns)
}
