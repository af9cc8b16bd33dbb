//! The throughput probe (perf's measurement, check's `throughput` step):
//! pipelined throughput and per-request latency on the master, with what the
//! load did to memory, eviction and the replicas.
//!
//! The measuring loop is the hand-written engine in `crate::loadgen`; this module
//! plans the phases (prefill, warm-up, rounds), guards user data, and measures:
//! `measure(..) -> PerfDetails`, then `checks(&PerfDetails)`. `cmd::perf`
//! composes them into perf's report.

pub(crate) mod baseline;
pub(crate) mod details;
pub(crate) mod figures;
mod guard;
pub mod merged;
mod phase;
pub mod reads;
mod replicas;
mod room;
pub mod split;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::latency::LatencyUs;
use crate::loadgen::engine::{EngineConfig, EngineResult, Stop, Workload};
use crate::loadgen::multi;
use crate::report::{Check, Verdict};
use crate::run::Ctx;
use crate::survey::{Master, Survey};
use crate::timings::timed;
use crate::topology::Node;

pub use details::{CatchUp, PerfDetails};
use phase::{engine_base, phase, phase_parts, run_bar, Shown};
pub use replicas::Resyncs;

/// What each request does, as the user chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Set,
    Get,
    /// SETs and GETs in this ratio.
    Mixed {
        sets: u32,
        gets: u32,
    },
    SetWait,
}

/// Where the measured requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Every request to the master.
    #[default]
    Master,
    /// GETs to the replicas, -c and --rate shared out among them (the keys
    /// are filled on the master, the replicas waited for first).
    Replicas,
}

/// Defaults shared with the command line (one source of truth).
pub const DEFAULT_REQUESTS: u64 = 1000;
pub const DEFAULT_PIPELINE: usize = 1000;
pub const DEFAULT_WARMUP: u64 = 1000;
pub const DEFAULT_ROUNDS: u32 = 5;

/// The options of a perf run, as given.
#[derive(Debug, Clone)]
pub struct Options {
    pub workload: WorkloadKind,
    pub requests: u64,
    pub duration: Option<Duration>,
    pub pipeline: usize,
    pub connections: usize,
    pub data_size: (usize, usize),
    pub keyspace: Option<u64>,
    pub seed: u64,
    pub warmup: u64,
    pub rounds: u32,
    pub rate: Option<f64>,
    pub wait_timeout: Duration,
    pub hdr_out: Option<std::path::PathBuf>,
    pub keep_keys: bool,
    pub allow_eviction: bool,
    pub baseline: Option<std::path::PathBuf>,
    pub tolerance: f64,
    pub settle: Duration,
    /// Every key written carries this TTL (SET .. PX); None: no TTL.
    pub key_ttl: Option<Duration>,
    /// How often each replica's offset lag is sampled during the rounds.
    pub lag_interval: Duration,
    /// Engine instances per master, each on a thread of its own with its own
    /// connections and its share of the requests, connections and rate.
    pub threads: usize,
    /// On a cluster: `threads` per shard master (--threads-per-shard), each
    /// a thread of its own; otherwise `threads` in all, each driving every
    /// shard's connections. Nothing else reads it.
    pub threads_per_shard: bool,
    /// On a cluster: the shard's seat among the shared engine threads.
    pub pool: Option<Arc<crate::loadgen::pool::Seat>>,
    /// --read-from: where --workload get sends its measured GETs.
    pub read_from: ReadFrom,
    /// --client K/N: this run is share K of a load split among N clients
    /// (the options above already this share's); None: the whole load.
    pub split: Option<split::Split>,
    /// --start-at: the measured rounds start at this time (the clients of a
    /// split load start together).
    pub start_at: Option<std::time::SystemTime>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workload: WorkloadKind::Set,
            requests: DEFAULT_REQUESTS,
            duration: None,
            pipeline: DEFAULT_PIPELINE,
            connections: 1,
            data_size: (3, 3),
            keyspace: None,
            seed: 0,
            warmup: DEFAULT_WARMUP,
            rounds: DEFAULT_ROUNDS,
            rate: None,
            wait_timeout: Duration::from_secs(1),
            hdr_out: None,
            keep_keys: false,
            allow_eviction: false,
            baseline: None,
            tolerance: 20.0,
            settle: Duration::from_secs(5),
            key_ttl: None,
            lag_interval: Duration::from_millis(100),
            threads: 1,
            threads_per_shard: false,
            pool: None,
            read_from: ReadFrom::Master,
            split: None,
            start_at: None,
        }
    }
}

/// The plain config the engine phases are planned from.
pub struct Config {
    pub opts: Options,
    pub workload: Workload,
    pub stop: Stop,
}

impl Config {
    pub fn from_options(args: &Options, replicas: usize) -> Result<Config> {
        let workload = match args.workload {
            WorkloadKind::Set => Workload::Set,
            WorkloadKind::Get => Workload::Get,
            WorkloadKind::Mixed { sets, gets } => Workload::Mixed { sets, gets },
            WorkloadKind::SetWait => {
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
        if args.threads == 0 {
            bail!("--threads must be at least 1");
        }
        if args.connections < args.threads {
            bail!(
                "--threads {} needs at least {} connections (-c {}): each thread has its own",
                args.threads,
                args.threads,
                args.connections
            );
        }
        if args.read_from == ReadFrom::Replicas {
            refuse_replica_reads(args, replicas)?;
        }
        if matches!(stop, Stop::Requests(0)) {
            bail!("-n/--requests must be at least 1");
        }
        if let Some(r) = args.rate.filter(|r| !(r.is_finite() && *r >= 1.0)) {
            bail!("--rate {r} is below 1 request per second: give at least --rate 1");
        }
        let fds = open_files_limit();
        if let Some(max) = fds.filter(|m| args.connections as u64 + 64 > *m) {
            bail!(
                "-c {} needs {} sockets but this process may open only {max} files (ulimit -n): \
                 raise it (ulimit -n {}) or use fewer connections",
                args.connections,
                args.connections,
                args.connections + 64
            );
        }
        if let Some(path) = &args.baseline {
            let base = baseline::read(path)?;
            base.refuse_unlike(&baseline::Shape::of(args))?;
            if (args.rounds as usize) < baseline::MIN_ROUNDS {
                bail!(
                    "--baseline needs at least {} rounds to measure its own noise (--rounds {})",
                    baseline::MIN_ROUNDS,
                    args.rounds
                );
            }
        }
        if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
            bail!("--tolerance must be a percentage >= 0");
        }
        Ok(Config {
            opts: args.clone(),
            workload,
            stop,
        })
    }

    /// The smoke test `check` runs: 1000 SETs pipelined 1000 deep, one
    /// round; with a baseline, the baseline's own shape and round count (a
    /// gate compares like with like, over rounds long enough to mean it).
    pub fn smoke(baseline: Option<std::path::PathBuf>, tolerance: f64) -> Result<Options> {
        let mut args = Options {
            rounds: 1,
            warmup: 0,
            tolerance,
            // check's keys expire by themselves, like every key redlab writes
            // outside a perf measurement.
            key_ttl: Some(crate::run::key_ttl(Duration::ZERO)),
            ..Options::default()
        };
        if let Some(path) = &baseline {
            let base = baseline::read(path)?;
            base.shape.apply(&mut args, base.rounds() as u32)?;
            args.warmup = DEFAULT_WARMUP;
        }
        args.baseline = baseline;
        Ok(args)
    }

    /// What the run will do, said before it starts: how much load in all,
    /// and that -n/--duration are per round.
    pub fn plan(&self) -> String {
        let rounds = self.opts.rounds;
        let each = match self.stop {
            Stop::Requests(n) => format!(
                "{} each (-n is per round)",
                crate::report::plural(n, "request")
            ),
            Stop::Duration(d) => format!(
                "{} each (--duration is per round): {} of load in all",
                humantime::format_duration(d),
                humantime::format_duration(d * rounds)
            ),
        };
        let warm = match self.opts.warmup {
            0 => String::new(),
            n => format!(", after {} of warm-up", crate::report::plural(n, "request")),
        };
        format!(
            "perf: {} of {each}{warm}",
            crate::report::plural(rounds as u64, "round")
        )
    }

    /// Keys read by get/mixed must exist first.
    fn prefill(&self) -> Option<u64> {
        match self.workload {
            Workload::Get | Workload::Mixed { .. } => {
                Some(self.opts.keyspace.unwrap_or(match self.stop {
                    Stop::Requests(n) => n,
                    Stop::Duration(_) => 100_000,
                }))
            }
            _ => None,
        }
    }

    /// Reads of keys that were never written would only measure misses.
    fn keyspace(&self) -> Option<u64> {
        match (self.prefill(), self.opts.keyspace) {
            (_, Some(k)) => Some(k),
            (Some(p), None) if matches!(self.stop, Stop::Duration(_)) => Some(p),
            _ => None,
        }
    }
}

/// What --read-from replicas cannot do, said before anything is written.
pub(crate) fn refuse_replica_reads(args: &Options, replicas: usize) -> Result<()> {
    if args.workload != WorkloadKind::Get {
        bail!(
            "--read-from replicas measures GETs only: use --workload get (set, mixed and set-wait \
             write, and a replica is read-only)"
        );
    }
    if replicas == 0 {
        bail!("--read-from replicas needs replicas to read from; this topology has none");
    }
    if args.connections < replicas {
        bail!(
            "--read-from replicas needs at least one connection per replica: -c {} for {}",
            args.connections,
            crate::report::plural(replicas as u64, "replica")
        );
    }
    if args.baseline.is_some() {
        bail!(
            "--read-from replicas does not take --baseline: a baseline is of the master's figures"
        );
    }
    if args.threads > 1 {
        bail!(
            "--read-from replicas runs one engine per replica: it does not take --threads {}",
            args.threads
        );
    }
    if args.duration.is_none() && args.requests < replicas as u64 {
        bail!(
            "--read-from replicas needs at least one request per replica: -n {} for {}",
            args.requests,
            crate::report::plural(replicas as u64, "replica")
        );
    }
    if let Some(r) = args.rate.filter(|r| *r < replicas as f64) {
        bail!(
            "--rate {r} is below 1 request per second per replica ({}): --rate is shared out among them",
            crate::report::plural(replicas as u64, "replica")
        );
    }
    Ok(())
}

/// The soft limit on open files, where the OS says.
fn open_files_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Refuse -c beyond what the master still accepts (maxclients).
async fn refuse_beyond_maxclients(cfg: &Config, master: &Master<'_>) -> Result<()> {
    // Read with the survey's INFO (`survey::SURVEY_CONFIG`); asked again
    // only where that visit did not get it.
    let max = match master.state.config.get("maxclients") {
        Some(v) => Some(v.clone()),
        None => master
            .conn
            .clone()
            .config_get("maxclients")
            .await
            .ok()
            .flatten(),
    };
    let max: Option<u64> = max.and_then(|v| v.parse().ok());
    // maxclients counts every connection: clients and the replicas' links.
    let clients = master.info.u64("connected_clients").unwrap_or(0);
    let replicas = master.info.u64("connected_slaves").unwrap_or(0);
    let in_use = clients + replicas;
    // Besides -c: the lag sampler's own connection, when there are replicas.
    let need = cfg.opts.connections as u64 + u64::from(replicas > 0);
    if let Some(max) = max {
        let free = max.saturating_sub(in_use);
        if need > free {
            bail!(
                "{}: -c {} is more than the master accepts now: maxclients {max}, {in_use} in use \
                 ({clients} clients, {replicas} replica links), so {free} more, and redlab needs {need}; \
                 use fewer connections or raise maxclients",
                master.node().label(),
                cfg.opts.connections
            );
        }
    }
    Ok(())
}

/// The whole measurement on a survey whose master answered: prefill,
/// warm-up, rounds (watching the replicas' links), replica catch-up, cleanup.
/// An error once the rounds began carries the rounds measured so far
/// (`run::Measured`), for the report of the run it ends.
pub async fn measure(
    cfg: &Config,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
) -> Result<PerfDetails> {
    let mut partial = None;
    let measured = measure_noting(cfg, ctx, survey, master, &mut partial).await;
    measured.map_err(|e| match partial {
        Some(p) => crate::run::Measured::partial(p, e),
        None => e,
    })
}

/// `measure`, noting in `partial` how far it got.
async fn measure_noting(
    cfg: &Config,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
    partial: &mut Option<serde_json::Value>,
) -> Result<PerfDetails> {
    let before = master.info.clone();
    let prefix = ctx.key(&split::key_suffix(&cfg.opts));
    refuse_beyond_maxclients(cfg, master).await?;
    let (limit, consented) = gate(cfg, ctx, master, prefix.len()).await?;
    let output_limit = guard::replica_output_limit(master).await;
    // --read-from replicas: the replicas the rounds read from, known before
    // anything is written.
    let readers = match cfg.opts.read_from {
        ReadFrom::Master => None,
        ReadFrom::Replicas => Some(reads::readers(ctx, survey).await?),
    };
    if cfg.opts.threads > 1 && ctx.topology.master.tls() {
        bail!(
            "--threads {} needs the plain TCP engine; a rediss:// master takes the TLS path, \
             which runs on one thread",
            cfg.opts.threads
        );
    }
    // --allow-eviction consents to filling maxmemory; the host's room is
    // guarded always, by a watch of its own unless everything this run can
    // write fits in half the room left (a short -n run on a roomy master).
    let watched = limit
        .filter(|_| !consented)
        .filter(|l| !guard::fits_easily(cfg, prefix.len(), l.left()));
    let base = engine_base(cfg, &ctx.topology.master, ctx.timeout, &prefix);
    let watch = async {
        match watched {
            Some(l) => room::Watch::start(&ctx.topology.master, ctx.timeout, l).await,
            None => None,
        }
    };
    // Both connect: at once.
    let (base, watch) = timed("engine set-up, memory watch", async {
        tokio::join!(base, watch)
    })
    .await;
    let mut base = base?;
    base.halt = watch.as_ref().map(|w| w.halt.clone());
    let started = Instant::now();

    before_rounds(cfg, ctx, &base, &prefix, readers.as_deref()).await?;
    if readers.is_some() {
        // The keys were filled on the master: read them once the replicas
        // have them (a replica still behind shows as misses, per replica).
        let caught = replicas::catch_up(master, survey, cfg.opts.settle).await;
        if let Some(c) = caught.iter().find(|c| c.catch_up_ms.is_none()) {
            ctx.say.line(&format!(
                "redlab: {} did not catch up with the filled keys within --settle {}: \
                 its misses will say how far behind it was",
                c.name,
                humantime::format_duration(cfg.opts.settle)
            ));
        }
    }
    // --start-at: every client's rounds start together (after each one's
    // own set-up, prefill and warm-up); Ctrl-C ends the wait.
    let late_ms = match cfg.opts.start_at {
        Some(at) => {
            if ctx.shard.as_ref().is_none_or(|s| s.name == "shard1") {
                ctx.say.line(&format!(
                    "redlab: waiting until {} (--start-at) to start the rounds",
                    split::rfc3339(at)
                ));
            }
            Some(split::wait_until(at).await)
        }
        None => None,
    };
    let mut round_starts_ms = Vec::new();
    // --read-from replicas: each round's results per replica.
    let mut per_replica: Vec<Vec<EngineResult>> = Vec::new();
    let mut results = Vec::new();
    let mut resyncs = Resyncs::default();
    // The master's resync counters as the survey read them (its INFO has
    // the stats section): no round trip, and the prefill and warm-up count.
    let links = timed(
        "replica links",
        replicas::Links::read(master, survey, Some(master.info)),
    )
    .await;
    let bar = run_bar(ctx, &cfg.stop, cfg.opts.rounds);
    // Each replica's offset lag over the measured rounds (one series, from
    // the first round's start to the replicas' catch-up after the last).
    let sampler = (!survey.replicas().is_empty()).then(|| {
        let replicas = survey.replicas().iter().map(|s| s.node.clone()).collect();
        let opts = crate::replication::lag::LagOptions {
            interval: cfg.opts.lag_interval,
            settle: cfg.opts.settle,
        };
        crate::replication::lag::Sampler::start(
            ctx.topology.master.clone(),
            replicas,
            opts,
            ctx.timeout,
        )
    });
    // An error in the first round still leaves a report that says how far
    // the run got.
    *partial = Some(serde_json::json!({
        "rounds_completed": 0,
        "rounds_planned": cfg.opts.rounds,
    }));
    let per_round = match &cfg.stop {
        Stop::Requests(n) => *n,
        Stop::Duration(d) => d.as_millis() as u64,
    };
    // Where the rounds go: the master, until MOVED replies say its slot moved.
    let mut current = ctx.topology.master.clone();
    let mut moved = None;
    for r in 0..cfg.opts.rounds {
        // --threads N: N engine instances, each its share of the load, its
        // own keys (prefix or seed) and its own progress counter.
        let instances = match &readers {
            None => multi::split(&base, cfg.opts.threads)?,
            Some(rs) => reads::instances(&base, rs, ctx.shard.is_some())?,
        };
        // Instances that stop at a request count: once the counter says all
        // of them were answered, nothing more was sent (`Ledger::settle`).
        let mut counted = Vec::new();
        for inst in &instances {
            if let (Stop::Requests(n), Some(p)) = (&inst.stop, &inst.progress) {
                counted.push((p.clone(), *n));
            }
            // The requests sent: their keys are what cleanup removes (a pure
            // function of keyspace, seed and request number), whatever --keyspace is.
            // A run the memory guard stops sends fewer than -n: the counter
            // says how many, plus what can be in flight past it (a batch per
            // connection, or the open loop's in-flight window).
            let (upto, slack) = match (&inst.stop, &inst.progress) {
                (_, Some(p)) => (p.clone(), inst.max_in_flight()),
                (Stop::Requests(n), None) => (Arc::new(AtomicU64::new(*n)), 0),
                (Stop::Duration(_), None) => unreachable!("split gives each a counter"),
            };
            ctx.ledger
                .add_range(&inst.key_prefix, upto, slack, inst.keyspace, inst.seed);
        }
        ctx.registry_refresh().await;
        let label = format!("round {}/{}", r + 1, cfg.opts.rounds);
        let shown = Shown::Run(&bar, per_round.saturating_mul(r as u64));
        let result = match &readers {
            None => timed(&label, phase(ctx, instances, &label, shown)).await?,
            Some(_) => {
                let parts = phase_parts(ctx, instances, &label, shown).await?;
                per_replica.push(parts.iter().map(|(r, _)| r.clone()).collect());
                multi::merge_timed(parts)
            }
        };
        for (p, n) in &counted {
            ctx.ledger.settle(p, *n);
        }
        // The round's start on the wall clock, for a merge of clients' reports.
        let ended = split::unix_ms(std::time::SystemTime::now());
        round_starts_ms.push(ended - result.elapsed_ns as f64 / 1e6);
        // Replicas answer MOVED only when READONLY was not sent: nothing to follow.
        let redirected =
            readers.is_none() && result.moved + result.ask + redirects(&result.errors) > 0;
        results.push(result);
        if watch.as_ref().is_some_and(room::Watch::halted) {
            break;
        }
        // Should a later round end the run with an error, its report still
        // has the rounds measured so far.
        *partial = Some(serde_json::json!({
            "rounds_completed": results.len(),
            "rounds_planned": cfg.opts.rounds,
            "rounds_ops_per_sec": results.iter().map(EngineResult::ops_per_sec).collect::<Vec<_>>(),
        }));
        if redirected {
            if let Some((node, addr)) = follow_slot(ctx, &current).await {
                ctx.say.line(&format!(
                    "redlab: {} moved from {} to {} (MOVED replies): the next rounds go there",
                    current.name,
                    current.addr(),
                    node.addr()
                ));
                moved = Some(format!("{} -> {}", current.addr(), node.addr()));
                base.addr = addr;
                current = node;
            }
        }
    }
    bar.finish();
    let client = split::ClientRun::new(
        &cfg.opts,
        &round_starts_ms,
        split::unix_ms(std::time::SystemTime::now()),
        late_ms,
    );
    if let Some(ttl) = cfg.opts.key_ttl {
        // The last keys were written now: none outlives now + ttl, which a
        // later run reading this run's registry entry can rely on.
        ctx.safety.expiring(ttl);
    }
    let load_ms = crate::duration::ms(started.elapsed());
    // The series ends at most one ACK period (replicas acknowledge once a
    // second) after perf's own wait for the replicas: long enough for the
    // master to see the ones that caught up, not waiting out --settle on
    // one that stalled.
    let (caught_up, waited) = tokio::sync::oneshot::channel::<()>();
    let lag = async {
        match sampler {
            Some(s) => s
                .finish_until(async {
                    if waited.await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                    }
                })
                .await
                .map(|(series, _)| series),
            None => None,
        }
    };
    // The cleanup, with the INFO after the load when there is one: both go
    // on the survey's connection (the cleanup's is that one too), INFO
    // first, so the server answers INFO before it runs the UNLINKs (the
    // memory after the load is read before the keys go) and both cost one
    // round trip instead of two. `join` polls in order: INFO is queued first.
    let cleanup = async {
        if cfg.opts.keep_keys {
            keep_measured_keys(ctx, &prefix)
        } else {
            timed("cleanup", ctx.cleanup(std::future::pending()))
                .await
                .removed
        }
    };
    // The report's figures from the histograms (each round's encoding, the
    // percentiles) are CPU work: done while the last round trips (INFO after
    // the load, the cleanup) are in flight, not while the replicas' catch-up
    // is timed. It yields first so that the connections' tasks send those
    // requests before it takes the thread.
    let median = median_round(&results);
    let figures = async {
        tokio::task::yield_now().await;
        let building = Instant::now();
        let f = details::figures(&results, median, &round_starts_ms);
        crate::timings::record("report: percentiles (during cleanup)", building);
        f
    };
    let (caught, lag, after, keys_removed, figures) = if moved.is_none() {
        let catching_up = async {
            let c = replicas::catch_up(master, survey, cfg.opts.settle).await;
            let _ = caught_up.send(());
            c
        };
        let (mut caught, lag) = tokio::join!(catching_up, lag);
        // After the catch-up: a replica dropped during the load may resync only
        // once it reconnects, after the load.
        // What the report compares with `before`: used_memory and evicted_keys;
        // its stats section has the resync counters too.
        let mut conn = master.conn.clone();
        let after = conn.info_sections(&["memory", "stats"]);
        let after = timed("after the load: INFO memory, stats", after);
        let (after, keys_removed, figures) =
            futures_util::future::join3(after, cleanup, figures).await;
        let after = after?;
        let after_links = replicas::Links::read(master, survey, Some(&after)).await;
        links.add_changes(&after_links, survey, &mut resyncs);
        for c in &mut caught {
            c.reconnected = resyncs.replicas_reconnected.contains(&c.name);
        }
        (caught, lag, after, keys_removed, figures)
    } else {
        // The master moved: the replicas followed another master, whose
        // memory is not the one `before` measured. Neither is reported.
        drop(caught_up);
        drop(lag.await);
        let (keys_removed, figures) = futures_util::future::join(cleanup, figures).await;
        (Vec::new(), None, before.clone(), keys_removed, figures)
    };
    // The rest of the details: a step of its own, or --timings shows a gap
    // before the registry's end.
    let building = Instant::now();
    if let Some(path) = &cfg.opts.hdr_out {
        crate::report::write_file(path, &crate::latency::hgrm_ms(&results[median].latency_ns))?;
    }
    let mut d = details::build(details::Measured {
        cfg,
        master,
        results: &results,
        median,
        before: &before,
        after: &after,
        replicas: caught,
        resyncs,
        output_limit,
        prefix: &prefix,
        keys_removed,
        load_ms,
        figures,
    });
    d.client = Some(client);
    d.replica_lag = lag;
    d.master_moved = moved;
    d.stopped_early = watch.as_ref().and_then(room::Watch::stopped);
    if let Some(rs) = &readers {
        d.replica_reads = reads::per_replica(rs, &per_replica, median, cfg.opts.connections);
    }
    if let Some(path) = &cfg.opts.baseline {
        d.baseline = Some(baseline::compare(path, &d, cfg.opts.tolerance)?);
    }
    crate::timings::record("report: details", building);
    Ok(d)
}

/// The safety gate (a cache full by design, a run that could evict: refused
/// with its reason), then what is certain not to fit. Returns the master's
/// memory limit, and whether evictions were consented to (--allow-eviction
/// on a maxmemory master), for the live guard.
async fn gate(
    cfg: &Config,
    ctx: &Ctx,
    master: &Master<'_>,
    prefix_len: usize,
) -> Result<(Option<room::Limit>, bool)> {
    let need = guard::need_bytes(cfg, prefix_len);
    // The safety gate first: a cache full by design, or a run that could
    // evict, is refused there with its own reason (and --allow-eviction).
    // Registered by the first registry_refresh below, with the first load's
    // range in its record: one registry write instead of two.
    let gate = ctx.prepare_writes_unregistered(master, need);
    timed("write gate (room, delete permission)", gate)
        .await
        .map_err(|e| {
            use crate::run::safety::RefusedKind;
            // The hint about room only where room was the reason.
            match RefusedKind::of(&e) {
                Some(RefusedKind::WouldEvict | RefusedKind::NoRoom) => {
                    anyhow::anyhow!("{e:#}; {}", guard::ROOM_HINT)
                }
                _ => e,
            }
        })?;
    // Then, up front, only what is certain not to fit; the rest is the live
    // guard's (`room`): it stops the load before the room is used. Evictions
    // consented to (--allow-eviction on a maxmemory master) make room.
    let consented = ctx.allow_eviction && master.info.u64("maxmemory").unwrap_or(0) > 0;
    let limit = room::Limit::of(master.info);
    if let Some(l) = limit.as_ref().filter(|l| !consented && need > l.left()) {
        bail!(
            "{}: this run needs ~{} at once (the keys it must fill and its requests in flight), \
             more than the room left ({}: {}); refused before any write; {}",
            master.node().label(),
            crate::report::human_bytes(need),
            crate::report::human_bytes_or_zero(l.left()),
            l.room,
            guard::ROOM_HINT
        );
    }
    Ok((limit, consented))
}

/// What the rounds need written first: the keys to read (a read workload's
/// prefill) and the warm-up (on the replicas with --read-from replicas),
/// each recorded in the ledger and the registry before it is written.
async fn before_rounds(
    cfg: &Config,
    ctx: &Ctx,
    base: &EngineConfig,
    prefix: &str,
    readers: Option<&[reads::Reader]>,
) -> Result<()> {
    if let Some(n) = cfg.prefill() {
        let fill = EngineConfig {
            workload: Workload::Set,
            stop: Stop::Requests(n),
            keyspace: None,
            pipeline: cfg.opts.pipeline.max(100),
            rate: None,
            ..base.clone()
        };
        ctx.ledger
            .add_range(prefix, Arc::new(AtomicU64::new(n)), 0, None, 0);
        ctx.registry_refresh().await;
        phase(ctx, vec![fill], "filling keys to read", Shown::Own).await?;
    }
    if cfg.opts.warmup > 0 {
        let warm_prefix = ctx.key("perf-warm:");
        // Distinct keys 0..warmup, closed loop: exactly the range recorded below.
        let warm = EngineConfig {
            key_prefix: warm_prefix.clone(),
            stop: Stop::Requests(cfg.opts.warmup),
            keyspace: None,
            rate: None,
            ..base.clone()
        };
        let upto = Arc::new(AtomicU64::new(cfg.opts.warmup));
        ctx.ledger.add_range(&warm_prefix, upto, 0, None, 0);
        ctx.registry_refresh().await;
        // --read-from replicas: the replicas are what is warmed up.
        let warm = match readers {
            None => vec![warm],
            Some(rs) => reads::instances(&warm, rs, ctx.shard.is_some())?,
        };
        phase(ctx, warm, "warm-up (not measured)", Shown::Own).await?;
    }
    Ok(())
}

/// Requests that failed on a MOVED or ASK reply the engine could not follow.
pub(crate) fn redirects(errors: &std::collections::BTreeMap<String, u64>) -> u64 {
    ["MOVED", "ASK"].iter().filter_map(|k| errors.get(*k)).sum()
}

/// After a round that saw MOVED or ASK: the master that serves this shard's
/// slot now, as the slot map says (read from the shard's own nodes), and
/// its address; None when it is still `current`, or not on a cluster.
async fn follow_slot(ctx: &Ctx, current: &Node) -> Option<(Node, std::net::SocketAddr)> {
    let seeds: Vec<Node> = std::iter::once(current.clone())
        .chain(std::iter::once(ctx.topology.master.clone()))
        .chain(ctx.topology.replicas.iter().cloned())
        .collect();
    let tag = &ctx.shard.as_ref()?.tag;
    let members = crate::discover::cluster::slot_map(seeds.iter(), ctx.timeout).await?;
    let node = crate::discover::cluster::master_now(&members, tag, current)?;
    let addr = tokio::net::lookup_host((node.host(), node.port()))
        .await
        .ok()?
        .next()?;
    // Cleanup (and the registry's notes) go to the new master too.
    let conn = crate::client::Conn::connect(&node, ctx.timeout)
        .await
        .ok()?;
    ctx.safety.set_master_conn(conn);
    Some((node, addr))
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

/// --keep-keys: leave the measured keys (every thread's: `prefix`, and the
/// `<prefix><i>.` of the threads after the first), still remove the warm-up's.
fn keep_measured_keys(ctx: &Ctx, prefix: &str) -> u64 {
    let _ = ctx.ledger.take_ranges(prefix);
    0
}

/// `perf.requests`: what was done, and what failed. A request is done when
/// it got a non-error reply (a redirected one when its resend did); an
/// error reply is a failed request, never in ops/s or the latencies, and
/// any failed request fails the run: the load measured was not the one
/// asked for.
pub(crate) fn requests_check(completed: u64, failed: u64, summary: String) -> Check {
    if completed == 0 && failed == 0 {
        Check::fail("perf.requests", "no request completed")
    } else if failed > 0 {
        Check::fail(
            "perf.requests",
            format!(
                "{} failed (error replies), {completed} done: {summary}",
                crate::report::plural(failed, "request")
            ),
        )
    } else {
        Check::pass("perf.requests", summary)
    }
}

pub fn checks(d: &PerfDetails) -> Vec<Check> {
    let mut out = Vec::new();
    let total: u64 = d.round_results.iter().map(|r| r.completed).sum();
    let summary = format!(
        "{} in {}, median {:.0} ops/s, p99 {}",
        crate::report::plural(total, "request"),
        crate::report::plural(d.round_results.len() as u64, "round"),
        d.throughput_ops_per_sec,
        crate::latency::fmt_us(d.latency.p99_us)
    );
    let errors: u64 = d.errors.values().sum();
    out.push(requests_check(total, errors, summary));
    if d.errors.is_empty() {
        out.push(Check::pass("perf.errors", "no error replies"));
    } else {
        let kinds: Vec<String> = d.errors.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        out.push(Check::fail(
            "perf.errors",
            format!(
                "error replies: {} ({:.1} % of the requests sent): those requests failed",
                kinds.join(", "),
                errors as f64 * 100.0 / (total + errors).max(1) as f64
            ),
        ));
    }
    if let Some(c) = rate_check(d) {
        out.push(c);
    }
    if let Some(limit) = d.replica_output_limit_bytes.filter(|l| *l > 0) {
        if d.data_size_max_bytes as u64 > limit {
            out.push(Check::warn(
                "perf.output-buffer",
                format!(
                    "values of {} exceed the replicas' output-buffer hard limit of {} \
                     (client-output-buffer-limit replica): the master drops a replica that \
                     falls that far behind, and it resyncs in full",
                    crate::report::human_bytes(d.data_size_max_bytes as u64),
                    crate::report::human_bytes(limit)
                ),
            ));
        }
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
            Check::warn("perf.wait", reason)
        });
    }
    let resynced = d.resyncs.full + d.resyncs.partial;
    for r in &d.replicas {
        out.push(catch_up_check(r, &d.resyncs, d.replicas.len()));
    }
    // Resyncs the master counted that no replica's link accounts for (a
    // replica whose link redlab could not see) still fail the run.
    if resynced > 0 && d.resyncs.replicas_reconnected.is_empty() {
        out.push(Check::fail(
            "master.resyncs",
            format!(
                "{} during the load: the load broke replication (a replica's output buffer over its limit?)",
                resync_words(&d.resyncs)
            ),
        ));
    }
    if let Some(why) = &d.stopped_early {
        out.push(Check::warn("perf.memory", why.clone()));
    }
    if let Some(m) = &d.master_moved {
        out.push(Check::warn(
            "perf.failover",
            format!(
                "the master moved during the run ({m}, MOVED replies): the later rounds went to \
                 the new master; the replicas' catch-up and the memory after are not measured"
            ),
        ));
    }
    out.extend(reads::checks(&d.replica_reads));
    if let Some(b) = &d.baseline {
        out.push(baseline::check(b));
    }
    out
}

/// check's `throughput` line when every check passed.
pub fn summary(d: &PerfDetails) -> String {
    format!(
        "{} pipelined SETs at {:.0} ops/s, p99 {}",
        d.requests_per_round.unwrap_or(0),
        d.throughput_ops_per_sec,
        crate::latency::fmt_us(d.latency.p99_us)
    )
}

/// `throughput.floor`: the measured rate against a floor (check's --min-ops).
pub fn floor_check(d: &PerfDetails, min: f64) -> Check {
    let reason = format!(
        "{:.0} ops/s, floor {min:.0} (--min-ops)",
        d.throughput_ops_per_sec
    );
    if d.throughput_ops_per_sec >= min {
        Check::pass("throughput.floor", reason)
    } else {
        Check::fail("throughput.floor", format!("below the floor: {reason}"))
    }
}

fn resync_words(r: &Resyncs) -> String {
    let mut parts = Vec::new();
    if r.full > 0 {
        parts.push(crate::report::plural(r.full, "full resync"));
    }
    if r.partial > 0 {
        parts.push(crate::report::plural(r.partial, "partial resync"));
    }
    if parts.is_empty() {
        "a reconnection".into()
    } else {
        parts.join(" and ")
    }
}

/// `replicaN.catch_up`: caught up after the load, and never lost its link
/// to the master while redlab wrote.
fn catch_up_check(r: &CatchUp, resyncs: &Resyncs, replicas: usize) -> Check {
    let name = format!("{}.catch_up", r.name);
    if r.reconnected {
        // The master's counters are for all replicas; with one, they are its.
        let counted = if replicas == 1 || resyncs.replicas_reconnected.len() == 1 {
            format!(" ({} on the master)", resync_words(resyncs))
        } else {
            String::new()
        };
        return Check::fail(
            name,
            format!(
                "lost its link to the master during the load and resynced{counted}: the load broke replication \
                 (output buffer over client-output-buffer-limit replica?)"
            ),
        );
    }
    match (r.catch_up_ms, &r.error) {
        (Some(ms), _) => Check::pass(
            name,
            format!(
                "{} behind after the load, caught up in {ms:.1} ms",
                r.offset_lag_bytes_after_load
                    .map_or("-".into(), crate::report::human_bytes_or_zero)
            ),
        ),
        (None, e) => Check::fail(name, e.clone().unwrap_or_else(|| "did not catch up".into())),
    }
}

/// Open loop: the rate asked for must have been met (95 %); a schedule the
/// client or server could not keep is a failed measurement, not a pass.
fn rate_check(d: &PerfDetails) -> Option<Check> {
    let target = d.target_rate_ops_per_sec?;
    let achieved = d.throughput_ops_per_sec;
    let m = d.round_results.get(d.median_round)?;
    let due = (target * m.elapsed_ms / 1e3).round() as u64;
    let backlog = due.saturating_sub(m.completed);
    let missed = match d.missed_requests {
        0 => String::new(),
        n => format!(
            "; {} due before the end were never sent",
            crate::report::plural(n, "request")
        ),
    };
    let reason = format!(
        "target {target:.0} ops/s, achieved {achieved:.0} ops/s ({:.1} %)",
        achieved / target * 100.0
    );
    // The schedule's own lateness: a request sent later than the interval
    // between one connection's requests is a schedule the client did not keep.
    let connections = d.connections.max(1) as f64;
    let interval_us = connections / target * 1e6;
    let late = d
        .scheduler_send_error
        .as_ref()
        .filter(|e| e.count > 0 && e.p99_us > interval_us);
    let lateness = |e: &LatencyUs| {
        format!(
            "the client's own send-time error p99 {} is above the {} between one \
             connection's requests (-c {} at {target:.0} ops/s)",
            crate::latency::fmt_us(e.p99_us),
            crate::latency::fmt_us(interval_us),
            d.connections
        )
    };
    Some(if achieved >= 0.95 * target {
        match late {
            Some(e) => Check::warn(
                "perf.rate",
                format!(
                    "{reason}, but {}: the client, not only the server, was late, and the \
                     latencies include its lateness; add connections (-c) or --threads, or \
                     lower --rate",
                    lateness(e)
                ),
            ),
            None => Check::pass("perf.rate", reason),
        }
    } else {
        Check::new(
            "perf.rate",
            Verdict::Fail,
            format!(
                "rate not met: {reason}; the schedule fell {backlog} requests behind{missed}{}, so the \
                 latencies measure a backlog, not the server: lower --rate, or add connections (-c)",
                late.map(|e| format!("; {}", lateness(e))).unwrap_or_default()
            ),
        )
    })
}

/// Summary of the latency for renderers.
pub fn latency_of(r: &EngineResult) -> LatencyUs {
    LatencyUs::from_ns(&r.latency_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The saved golden report's details, open loop at `rate` over `c`
    /// connections, achieving `achieved` with this send-time error p99.
    fn open_loop(rate: f64, c: usize, achieved: f64, send_p99_us: f64) -> PerfDetails {
        let saved: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/golden/reports/perf.json")).unwrap();
        let mut d: PerfDetails = serde_json::from_value(saved["details"].clone()).unwrap();
        d.target_rate_ops_per_sec = Some(rate);
        d.throughput_ops_per_sec = achieved;
        d.connections = c;
        d.missed_requests = 0;
        d.scheduler_send_error = Some(LatencyUs {
            count: 1000,
            p50_us: send_p99_us / 4.0,
            p99_us: send_p99_us,
            ..LatencyUs::default()
        });
        d
    }

    #[test]
    fn a_rate_met_by_a_late_client_is_a_warning_with_the_figure() {
        // 100k/s over 10 connections: one connection's requests 100 µs apart.
        let c = rate_check(&open_loop(100_000.0, 10, 100_000.0, 252.0)).unwrap();
        assert_eq!(c.verdict, Verdict::Warn, "{}", c.reason);
        assert!(
            c.reason.contains("send-time error p99 252") && c.reason.contains("100"),
            "{}",
            c.reason
        );
        let c = rate_check(&open_loop(100_000.0, 10, 100_000.0, 48.0)).unwrap();
        assert_eq!(c.verdict, Verdict::Pass, "{}", c.reason);
        // Not met: a failure, the lateness said too.
        let c = rate_check(&open_loop(100_000.0, 10, 50_000.0, 900.0)).unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.reason.contains("send-time error p99"), "{}", c.reason);
    }
}
