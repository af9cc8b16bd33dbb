//! perf: pipelined throughput and per-request latency on the master, with
//! what the load did to memory, eviction and the replicas. The measurement is
//! the throughput probe (`crate::probe::throughput`); this module composes it
//! into perf's report, and runs it on a cluster or merges `--clients` runs.

pub mod merge;
pub mod on_cluster;

use anyhow::Result;

// perf's paths (`cmd::perf::Options`, `cmd::perf::split`, ...) stay where
// their users look for them.
pub use crate::probe::throughput::*;
use crate::report::Report;
use crate::run::Ctx;

pub async fn run(opts: Options, ctx: &Ctx) -> Result<Report<PerfDetails>> {
    let cfg = Config::from_options(&opts, ctx.topology.replicas.len())?;
    let survey = ctx.survey().await?;
    let master = survey.master()?;
    // On a cluster's shard the cluster's plan was said once, in totals.
    if ctx.shard.is_none() {
        ctx.say.line(&cfg.plan());
    }
    let mut checks = vec![crate::replication::count_check_for_load(
        &ctx.topology,
        &master,
    )];
    let d = measure(&cfg, ctx, &survey, &master).await?;
    checks.extend(self::checks(&d));
    Ok(Report::new(
        "perf",
        ctx.manifest(),
        survey.infos(),
        checks,
        d,
    ))
}
