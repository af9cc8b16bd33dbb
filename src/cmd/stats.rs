//! stats: for every node, what the workshop's page showed (status, role, keys,
//! memory, uptime) and what an operator looks at next (ops/s, hit rate,
//! expired and evicted keys, replication offset and lag). `--watch` refreshes
//! it until Ctrl-C or `--count`.

use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use crate::probe::stats::{checks, collect, sections, NodeStats};
use crate::report::{render_sections, Details, Report, Section};
use crate::run::Ctx;
use crate::survey::Survey;
use crate::ui::narrate::{self, Narrator};

#[derive(Clone)]
pub struct Config {
    pub watch: Option<Duration>,
    pub count: Option<u64>,
    /// Frames go to stdout unless a machine format owns it; then to stderr.
    pub frames_to_stdout: bool,
    /// How a frame's table is shown.
    pub view: crate::report::View,
    pub narrate: Narrator,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsDetails {
    /// Snapshots taken (1 without --watch).
    pub refreshes: u64,
    /// The --watch interval, ms; null without --watch.
    pub interval_ms: Option<f64>,
    /// The last snapshot, one entry per node, master first.
    pub nodes: Vec<NodeStats>,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<StatsDetails>> {
    run_many(cfg, std::slice::from_ref(ctx)).await
}

/// Stats of several topologies in one table: a cluster's shards, each
/// shard's nodes together (`shard1.master`, `shard1.replica1`, `shard2.master`, ...).
pub async fn run_many(cfg: Config, ctxs: &[Ctx]) -> Result<Report<StatsDetails>> {
    let Some(interval) = cfg.watch else {
        let spinner = ctxs[0].progress.spinner("reading INFO on every node");
        let (surveys, nodes) = collect_many(ctxs).await?;
        spinner.finish();
        return Ok(report(ctxs, &surveys, nodes, 1, None));
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Ctrl-C (any ending signal: the run's cancel token) ends the watch
    // normally: the last snapshot is the report, exit 0.
    let cancelled = ctxs[0].cancel.cancelled();
    tokio::pin!(cancelled);
    let mut last = None;
    let mut refreshes = 0u64;
    loop {
        let snap = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            s = async { ticker.tick().await; collect_many(ctxs).await } => s?,
        };
        refreshes += 1;
        let text = format!(
            "redlab stats: refresh {refreshes}, every {} (Ctrl-C to stop)\n{}",
            humantime::format_duration(interval),
            render_sections(&sections(&snap.1), crate::report::Format::Table, cfg.view)
        );
        last = Some(snap);
        if cfg.frames_to_stdout {
            // Stdout closed (`| head -1`): the watch is over, nothing more is written.
            if narrate::frame(&text).is_err() {
                break;
            }
        } else {
            cfg.narrate.line(&text);
        }
        if cfg.count.is_some_and(|n| refreshes >= n) {
            break;
        }
    }
    let (surveys, nodes) = match last {
        Some(s) => s,
        None => collect_many(ctxs).await?,
    };
    Ok(report(
        ctxs,
        &surveys,
        nodes,
        refreshes.max(1),
        Some(crate::duration::ms(interval)),
    ))
}

/// `collect` on every topology at once, the nodes in topology order.
async fn collect_many(ctxs: &[Ctx]) -> Result<(Vec<Survey>, Vec<NodeStats>)> {
    let all = futures_util::future::join_all(ctxs.iter().map(collect)).await;
    let mut surveys = Vec::new();
    let mut nodes = Vec::new();
    for r in all {
        let (s, n) = r?;
        surveys.push(s);
        nodes.extend(n);
    }
    Ok((surveys, nodes))
}

fn report(
    ctxs: &[Ctx],
    surveys: &[Survey],
    nodes: Vec<NodeStats>,
    refreshes: u64,
    interval_ms: Option<f64>,
) -> Report<StatsDetails> {
    let mut checks = Vec::new();
    for (ctx, survey) in ctxs.iter().zip(surveys) {
        if let Ok(m) = survey.master() {
            checks.push(crate::replication::count_check(&ctx.topology, &m));
        }
    }
    checks.extend(self::checks(&nodes));
    Report::new(
        "stats",
        ctxs[0].manifest(),
        surveys.iter().flat_map(Survey::infos).collect(),
        checks,
        StatsDetails {
            refreshes,
            interval_ms,
            nodes,
        },
    )
}

impl Details for StatsDetails {
    fn sections(&self) -> Vec<Section> {
        sections(&self.nodes)
    }
}
