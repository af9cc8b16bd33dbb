//! replicate-check: the master has the replicas it should, each follows
//! this master with its link up, and a write on the master becomes readable
//! on it within --max-lag (a probe seen later is a failure, not a slow pass).
//! The measurement is `crate::probe::propagation`.

use anyhow::Result;

pub use crate::probe::propagation::*;
use crate::report::Report;
use crate::run::Ctx;

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<ReplicateDetails>> {
    cfg.validate()?;
    let r = measure(&cfg, ctx).await?;
    Ok(Report::new(
        "replicate-check",
        ctx.manifest(),
        r.survey.infos(),
        r.checks,
        r.details,
    ))
}
