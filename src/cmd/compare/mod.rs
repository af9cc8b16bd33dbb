//! compare: is every replica's data the same as the master's, right now?
//! Settle, then the engine (`crate::compare`), then one `.consistency` check
//! per replica. `check` runs the same on a sample (`consistency_step`).

mod report;

use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::cli::CompareArgs;
use crate::client::{ErrorKind, NodeError};
use crate::compare::{self, CompareResult, Comparison, Endpoint, Live, Sample};
use crate::ctx::Ctx;
use crate::report::{Check, Report, Verdict};
use crate::survey::{require_master, NodeState};

pub use report::checks;

/// --max-ops by default: a million keys (about 3.1 commands per key and node)
/// within a minute, and, measured with the master on a core of its own
/// (docs/benchmarks.md), its latency for a concurrent `redis-benchmark -P 1
/// -c 10 -t get` at 1.0x (p50) and 1.5x (p99) of idle.
pub const DEFAULT_MAX_OPS: u64 = 100_000;

/// The sample `check` compares by default.
pub const CHECK_SAMPLE: u64 = 10_000;

pub struct Config {
    pub engine: compare::Config,
    /// Bound on waiting for the replicas to catch up.
    pub settle: Duration,
}

impl From<&CompareArgs> for Config {
    fn from(a: &CompareArgs) -> Config {
        let sample = match (a.sample, a.sample_ratio) {
            (Some(n), _) => Sample::Keys(n),
            (None, Some(r)) => Sample::Ratio(r),
            (None, None) => Sample::All,
        };
        Config {
            engine: compare::Config {
                rounds: a.rounds,
                interval: a.interval,
                ttl_tolerance: a.ttl_tolerance,
                show: a.show,
                show_values: a.show_values,
                max_ops: (a.max_ops > 0).then_some(a.max_ops),
                sample,
                scan_count: a.scan_count,
                digest: !a.no_digest,
                digest_max_keys: Some(a.digest_max_keys),
                ..compare::Config::default()
            },
            settle: a.settle,
        }
    }
}

impl Config {
    /// `check`'s consistency step: a random sample of `keys` (so no DEBUG
    /// DIGEST, which walks the whole dataset), defaults otherwise.
    pub fn sampled(keys: u64, settle: Duration) -> Config {
        Config {
            engine: compare::Config {
                sample: Sample::Keys(keys),
                ttl_sample: keys,
                max_ops: Some(DEFAULT_MAX_OPS),
                ..compare::Config::default()
            },
            settle,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CompareDetails {
    /// The comparison: per replica, counts per kind, differing keys, the path
    /// taken; the sample, rounds, digests.
    #[serde(flatten)]
    pub result: CompareResult,
    /// Bound on waiting for the replicas to catch up, ms.
    pub settle_ms: f64,
    /// Pause before each re-check round, ms.
    pub interval_ms: f64,
    /// Cap on redlab's commands per second per node (null: no cap).
    pub max_ops_per_sec: Option<u64>,
    /// Differing keys named per kind and replica at most (--show).
    pub show_per_kind: usize,
    /// Whether differing values were shown (--show-values).
    pub show_values: bool,
    /// redlab's own peak resident memory, bytes (VmHWM; null where unknown).
    pub redlab_peak_rss_bytes: Option<u64>,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<CompareDetails>> {
    let spinner = ctx.progress.spinner("connecting");
    let states = ctx.survey().await;
    spinner.finish();
    let (master, replicas) = states
        .split_first()
        .ok_or_else(|| anyhow!("the topology has no master"))?;
    require_master(master)?;
    let details = measure(&cfg, ctx, master, replicas, true).await?;
    let checks = checks(&details);
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new(
        "compare",
        ctx.manifest(),
        nodes,
        checks,
        details,
    ))
}

/// Emit the report; an interrupted comparison then exits 130 (its partial
/// report is out).
pub fn exit(
    g: &crate::cli::GlobalArgs,
    report: Report<CompareDetails>,
    emit: fn(&crate::cli::GlobalArgs, Report<CompareDetails>) -> Result<Verdict>,
) -> Result<Verdict> {
    let interrupted = report.details.result.interrupted;
    let verdict = emit(g, report)?;
    if interrupted {
        return Err(crate::StoppedBySignal.into());
    }
    Ok(verdict)
}

/// `check`'s `consistency` step: the same comparison on a sample, on the
/// gate's survey (Ctrl-C is the gate's to handle).
pub async fn consistency_step(
    cfg: &Config,
    ctx: &Ctx,
    states: &[NodeState],
) -> Result<(Vec<Check>, CompareDetails)> {
    let (master, replicas) = states
        .split_first()
        .ok_or_else(|| anyhow!("the topology has no master"))?;
    let details = measure(cfg, ctx, master, replicas, false).await?;
    if details.result.replicas.is_empty() {
        // In the gate the replica count is reachability's to judge.
        let warn = Check::new(
            "consistency",
            Verdict::Warn,
            "no replica to compare with the master: nothing compared",
        );
        return Ok((vec![warn], details));
    }
    Ok((checks(&details), details))
}

/// Settle, then compare; with `interruptible`, SIGINT/SIGTERM/SIGHUP end the
/// comparison with what it found so far, marked interrupted.
async fn measure(
    cfg: &Config,
    ctx: &Ctx,
    master: &NodeState,
    replicas: &[NodeState],
    interruptible: bool,
) -> Result<CompareDetails> {
    let conn = master
        .conn
        .clone()
        .ok_or_else(|| anyhow!("{}: not connected", master.node.label()))?;
    let endpoints: Vec<Endpoint> = replicas
        .iter()
        .map(|s| Endpoint {
            node: s.node.clone(),
            conn: match (&s.conn, &s.error) {
                (Some(c), _) => Ok(c.clone()),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => Err(NodeError::new(
                    &s.node.name,
                    &s.node.addr(),
                    ErrorKind::Other,
                    "not reached",
                )),
            },
        })
        .collect();
    let spinner = ctx.progress.spinner("waiting for the replicas to settle");
    let settles = compare::settle(&conn, &endpoints, cfg.settle).await?;
    spinner.finish();
    let engine = compare::Config {
        timeout: ctx.timeout,
        ..cfg.engine.clone()
    };
    let cmp = Comparison::new(
        engine,
        &master.node,
        &conn,
        endpoints.into_iter().zip(settles).collect(),
    );
    let interrupted = drive(&cmp, ctx, interruptible).await?;
    Ok(CompareDetails {
        result: cmp.result(interrupted),
        settle_ms: crate::duration::ms(cfg.settle),
        interval_ms: crate::duration::ms(cfg.engine.interval),
        max_ops_per_sec: cfg.engine.max_ops,
        show_per_kind: cfg.engine.show,
        show_values: cfg.engine.show_values,
        redlab_peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Run the comparison with a progress bar; true when a signal stopped it.
async fn drive(cmp: &Comparison, ctx: &Ctx, interruptible: bool) -> Result<bool> {
    let live = Live::default();
    let bar = ctx.progress.bar(0, "comparing");
    let mut signals = if interruptible {
        Some(crate::Signals::new()?)
    } else {
        None
    };
    let work = cmp.run(&live);
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let interrupted = loop {
        tokio::select! {
            biased;
            _ = async {
                match signals.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            } => break true,
            r = &mut work => { r?; break false }
            _ = tick.tick() => {
                use std::sync::atomic::Ordering::Relaxed;
                bar.set_length(live.total_keys.load(Relaxed).max(1));
                bar.set_position(live.done_keys.load(Relaxed));
                bar.set_message(live.phase.lock().map(|p| p.clone()).unwrap_or_default());
            }
        }
    };
    bar.finish();
    Ok(interrupted)
}

/// VmHWM from /proc/self/status.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
