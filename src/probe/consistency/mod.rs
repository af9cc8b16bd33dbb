//! The consistency probe (compare's measurement, check's `consistency` step):
//! is every replica's data the same as the master's, right now? Settle, then
//! the engine (`crate::compare`), then one `.consistency` check per replica.
//! `check` runs the same on a sample (`gate_checks`).

mod report;

use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use crate::client::{ErrorKind, NodeError};
use crate::compare::{self, CompareResult, Comparison, Endpoint, Live, Sample};
use crate::report::Check;
use crate::run::Ctx;
use crate::survey::NodeState;

pub use report::checks;

/// --max-ops by default: a million keys (about 3.1 commands per key and node)
/// within a minute, and, measured with the master on a core of its own
/// (docs/benchmarks.md), its latency for a concurrent `redis-benchmark -P 1
/// -c 10 -t get` at 1.0x (p50) and 1.5x (p99) of idle.
pub const DEFAULT_MAX_OPS: u64 = 100_000;

/// The sample `check` compares by default.
pub const CHECK_SAMPLE: u64 = 10_000;

#[derive(Clone)]
pub struct Config {
    pub engine: compare::Config,
    /// Bound on waiting for the replicas to catch up.
    pub settle: Duration,
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

#[derive(Debug, Serialize, Deserialize)]
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

/// `check`'s `consistency` step's checks: `checks`, unless there was
/// nothing to compare (no replica, whose count is reachability's to judge in
/// the gate; or no key of the user's), which skips the step, saying why.
pub fn gate_checks(details: &CompareDetails) -> Vec<Check> {
    if details.result.replicas.is_empty() {
        return vec![Check::skip(
            "consistency",
            "not run: no replica to compare with the master",
        )];
    }
    let keyed = details
        .result
        .replicas
        .iter()
        .any(|r| r.path == Some(crate::compare::Path::Keys));
    if keyed && details.result.sample.master_keys_sampled == 0 && !details.result.interrupted {
        // Nothing of the user's was compared: a pass would be over nothing.
        return vec![Check::skip(
            "consistency",
            format!(
                "not run: the master holds no key but redlab's own ({}), so there is no data to compare",
                crate::run::namespace::pattern()
            ),
        )];
    }
    checks(details)
}

/// The gate's one line when every replica passed.
pub fn summary(details: &CompareDetails) -> String {
    let s = &details.result.sample;
    format!(
        "a sample of {} of the master's {} keys is identical on every replica",
        s.master_keys_sampled, s.master_keys_total
    )
}

/// Settle, then compare; with `interruptible`, SIGINT/SIGTERM/SIGHUP end the
/// comparison with what it found so far, marked interrupted (check's gate
/// runs it on its own survey, not interruptible: Ctrl-C is the gate's).
pub async fn measure(
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
    let settles = compare::settle(&conn, &endpoints, &ctx.topology, cfg.settle).await?;
    spinner.finish();
    let engine = compare::Config {
        timeout: ctx.timeout,
        cluster: ctx.shard.is_some(),
        scan_count: master.info.as_ref().map_or(cfg.engine.scan_count, |i| {
            memory_safe_batch(i, cfg.engine.scan_count)
        }),
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
    let work = cmp.run(&live);
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let interrupted = loop {
        tokio::select! {
            biased;
            _ = async {
                match interruptible {
                    true => ctx.cancel.cancelled().await,
                    false => std::future::pending().await,
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

/// Keys per batch the master's headroom holds. Reading values pipelined
/// fills the master's output buffer for redlab, which counts toward
/// maxmemory: on a master near its limit with an eviction policy, a big batch
/// makes it evict user keys, a read-only compare or not. A batch's replies
/// are kept to a quarter of the headroom, at the dataset's average key size.
fn memory_safe_batch(info: &crate::client::Info, want: u64) -> u64 {
    let max = info.u64("maxmemory").unwrap_or(0);
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    if max == 0 || policy == "noeviction" {
        return want;
    }
    let used = info.u64("used_memory").unwrap_or(0);
    let keys: u64 = info.keyspace().values().map(|c| c.keys).sum();
    let avg = (used / keys.max(1)).max(64);
    let fits = max.saturating_sub(used) / 4 / avg;
    want.min(fits.max(1))
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
