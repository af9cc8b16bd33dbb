//! keycount: wait until the replicas have caught up, then compare key counts
//! per database across every node (the parity probe, `crate::probe::parity`),
//! after the replica count.

use anyhow::Result;

pub use crate::probe::parity::*;
use crate::replication;
use crate::report::Report;
use crate::run::Ctx;

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<KeycountDetails>> {
    let spinner = ctx.progress.spinner("waiting for the replicas to settle");
    let survey = ctx.survey().await?;
    let master = survey.master()?;
    let details = measure(&cfg, ctx, &survey, &master, &spinner).await?;
    let views = replication::views(&survey, master.info, &ctx.topology);
    let chained = replication::chained_count(&views);
    let mut checks = vec![replication::count_check_chained(
        &ctx.topology,
        &master,
        chained,
    )];
    checks.extend(self::checks(&details));
    spinner.finish();
    Ok(Report::new(
        "keycount",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}
