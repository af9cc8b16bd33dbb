//! ttl-watch: a key's TTL read on every node as it counts down, the moment
//! each node stops serving it, and the moment it leaves each replica's
//! keyspace. The measurement is `crate::probe::expiry`.

use anyhow::Result;

pub use crate::probe::expiry::*;
use crate::report::Report;
use crate::run::Ctx;

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<TtlWatchDetails>> {
    let survey = ctx.survey().await?;
    let master = survey.master()?;
    let details = measure(&cfg, ctx, &survey, &master).await?;
    let mut checks = vec![crate::replication::count_check(&ctx.topology, &master)];
    checks.extend(self::checks(&details));
    Ok(Report::new(
        "ttl-watch",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}
