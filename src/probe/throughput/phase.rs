//! Running one engine phase (prefill, warm-up, a round) off the async
//! thread, with a progress bar, stopping it cleanly when abandoned.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;

use super::Config;
use crate::loadgen::engine::{self, EngineConfig, EngineResult, Stop};
use crate::loadgen::tls;
use crate::loadgen::{multi, pool};
use crate::run::Ctx;
use crate::topology::Node;
use crate::ui::progress::Task;

/// The engine settings every phase shares.
pub(super) async fn engine_base(
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
        pipeline: cfg.opts.pipeline,
        connections: cfg.opts.connections,
        data_size: cfg.opts.data_size,
        keyspace: cfg.keyspace(),
        seed: cfg.opts.seed,
        key_prefix: prefix.to_string(),
        rate: cfg.opts.rate,
        timeout,
        progress: None,
        key_ttl: cfg.opts.key_ttl,
        pool: cfg.opts.pool.clone(),
        ..EngineConfig::new(addr)
    })
}

/// Run one engine phase off the async threads, with a progress bar.
/// Where a phase shows its progress: a bar of its own, or the run's bar (one
/// bar for every round, so its ETA is the whole run's) from `offset` on.
pub(super) enum Shown<'a> {
    Own,
    Run(&'a Task, u64),
}

/// The run's bar: every round's requests, or every round's time (ms).
pub(super) fn run_bar(ctx: &Ctx, stop: &Stop, rounds: u32) -> Task {
    match stop {
        Stop::Requests(n) => ctx.progress.bar(n.saturating_mul(rounds as u64), "perf"),
        Stop::Duration(d) => ctx
            .progress
            .timed_bar(d.as_millis() as u64 * rounds as u64, "perf"),
    }
}

/// Run one phase as `instances` (one, or `--threads` of them: each engine
/// on a thread of its own with its own connections), their results merged
/// (histograms exactly, see `loadgen::multi`).
pub(super) async fn phase(
    ctx: &Ctx,
    instances: Vec<EngineConfig>,
    label: &str,
    shown: Shown<'_>,
) -> Result<EngineResult> {
    let parts = phase_parts(ctx, instances, label, shown).await?;
    Ok(multi::merge_timed(parts))
}

/// `phase`, each instance's result apart (in the order of `instances`),
/// with the moment it ended.
pub(super) async fn phase_parts(
    ctx: &Ctx,
    mut instances: Vec<EngineConfig>,
    label: &str,
    shown: Shown<'_>,
) -> Result<Vec<(EngineResult, Instant)>> {
    let guard = StopOnDrop::new(ctx.timeout * 2, instances.len());
    let mut counters = Vec::with_capacity(instances.len());
    for cfg in &mut instances {
        counters.push(
            cfg.progress
                .get_or_insert_with(|| Arc::new(AtomicU64::new(0)))
                .clone(),
        );
        cfg.cancel = Some(guard.cancel.clone());
    }
    let own;
    let (bar, offset) = match shown {
        Shown::Run(bar, offset) => {
            bar.set_message(label.to_string());
            (bar, offset)
        }
        Shown::Own => {
            let stop = instances.first().map(|c| c.stop.clone());
            own = match stop {
                Some(Stop::Duration(d)) => ctx
                    .progress
                    .spinner(format!("{label} for {}", humantime::format_duration(d))),
                _ => {
                    let n = instances
                        .iter()
                        .map(|c| match c.stop {
                            Stop::Requests(n) => n,
                            Stop::Duration(_) => 0,
                        })
                        .sum();
                    ctx.progress.bar(n, label.to_string())
                }
            };
            (&own, 0)
        }
    };
    let started = std::time::Instant::now();
    let timed = matches!(instances.first().map(|c| &c.stop), Some(Stop::Duration(_)));
    type Job = Pin<Box<dyn Future<Output = (Result<EngineResult>, Instant)> + Send>>;
    let mut jobs: Vec<Job> = Vec::with_capacity(instances.len());
    // A cluster's shards share their engine threads: the phase goes to the
    // pool, and starts with the other shards' (`loadgen::pool`).
    let seat = instances.first().and_then(|c| c.pool.clone());
    let seat = seat.filter(|_| !ctx.topology.master.tls());
    let (pooled_instances, own) = match seat {
        Some(_) => (instances, Vec::new()),
        None => (Vec::new(), instances),
    };
    if let Some(seat) = seat {
        let instances = pooled_instances;
        let mut pooled = Vec::with_capacity(instances.len());
        for cfg in instances {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let done = guard.done.clone();
            pooled.push(pool::Job {
                cfg,
                result: tx,
                finished: Box::new(move || signal_done(&done)),
            });
            jobs.push(Box::pin(async move {
                let r = rx.await.context("the perf engine stopped");
                (r.and_then(|r| r), Instant::now())
            }));
        }
        seat.submit(pooled);
    }
    for cfg in own {
        let job: Job = if ctx.topology.master.tls() {
            // Its tasks are aborted with its future: nothing to wait for on drop.
            guard.finished();
            let node = ctx.topology.master.clone();
            Box::pin(async move { (tls::run(&node, &cfg).await, Instant::now()) })
        } else {
            let done = guard.done.clone();
            match engine::start(&cfg, move || signal_done(&done)) {
                Ok(rx) => Box::pin(async move {
                    let r = rx.await.context("the perf engine stopped");
                    (r.and_then(|r| r), Instant::now())
                }),
                Err(e) => {
                    guard.finished();
                    Box::pin(std::future::ready((Err(e), Instant::now())))
                }
            }
        };
        jobs.push(job);
    }
    let all = join_all(jobs);
    tokio::pin!(all);
    let results = loop {
        tokio::select! {
            r = &mut all => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let done = if timed {
                    started.elapsed().as_millis() as u64
                } else {
                    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
                };
                bar.set_position(offset + done);
            }
        }
    };
    let mut timed_results = Vec::with_capacity(results.len());
    for (r, at) in results {
        timed_results.push((r?, at));
    }
    Ok(timed_results)
}

/// If a phase is abandoned (Ctrl-C drops its future), tell the engine to stop
/// and wait, bounded, until it has: the key cleanup that follows must not race
/// with writes still going out.
struct StopOnDrop {
    cancel: Arc<AtomicBool>,
    /// Engines that have stopped, of `engines`.
    done: Arc<(Mutex<usize>, Condvar)>,
    engines: usize,
    bound: Duration,
}

impl StopOnDrop {
    fn new(bound: Duration, engines: usize) -> StopOnDrop {
        StopOnDrop {
            cancel: Arc::default(),
            done: Arc::default(),
            engines,
            bound,
        }
    }
}

impl StopOnDrop {
    fn finished(&self) {
        signal_done(&self.done);
    }
}

/// One engine (or the TLS path) has stopped writing.
fn signal_done(done: &(Mutex<usize>, Condvar)) {
    let (lock, cv) = done;
    *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    cv.notify_all();
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let (lock, cv) = &*self.done;
        let finished = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(finished, self.bound, |done| *done < self.engines);
    }
}
