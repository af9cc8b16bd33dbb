//! compare: is every replica's data the same as the master's, right now?
//! The measurement is `crate::probe::consistency` (the engine itself is
//! `crate::compare`); this is the subcommand around it.

use anyhow::Result;

pub use crate::probe::consistency::*;
use crate::report::Report;
use crate::run::Ctx;

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<CompareDetails>> {
    let spinner = ctx.progress.spinner("connecting");
    let survey = ctx.survey().await?;
    spinner.finish();
    let master = survey.master()?;
    let details = measure(&cfg, ctx, master.state, survey.replicas(), true).await?;
    let mut checks = vec![crate::replication::count_check(&ctx.topology, &master)];
    checks.extend(self::checks(&details));
    Ok(Report::new(
        "compare",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}
