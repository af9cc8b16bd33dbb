//! Every subcommand on a Redis Cluster: per shard (all shards at once, the
//! reports merged by `sharded::merge`), by key (`ttl-watch --key` and
//! `demo` run on the shard that owns the key's slot), whole (`perf`, `stats`,
//! the web page see every shard), or not on a cluster (`drill`).

use std::time::Instant;

use anyhow::Result;
use futures_util::future::join_all;

use super::job::{Job, OnCluster};
use crate::cmd::check::{self, StepOutcome};
use crate::cmd::{clean, compare, demo, keycount, perf, replicate_check, stats, ttl_watch};
use crate::discover::cluster::{self as discovered, Cluster};
use crate::report::{AnyReport, Check, Details, Report};
use crate::run::Ctx;
use crate::sharded::{health, merge, Health};
use crate::topology::slot;
use crate::ui::progress::Progress;

/// Run one subcommand on every shard at once, under one spinner.
macro_rules! on_shards {
    ($progress:expr, $command:expr, $shards:expr, |$ctx:ident| $run:expr) => {{
        let spinner = $progress.spinner(format!("{} on {} shards", $command, $shards.len()));
        let results = join_all($shards.iter().map(|$ctx| $run)).await;
        spinner.finish();
        results
    }};
}

fn boxed<D: Details + 'static>(r: Report<D>) -> Box<dyn AnyReport> {
    Box::new(r)
}

/// The `cluster` step's checks, for replicate-check (each check on its own).
async fn health_checks(cluster: &Cluster, ctx: &Ctx) -> (Health, Vec<Check>) {
    let h = health::check(cluster, ctx.timeout).await;
    let checks = h.checks.clone();
    (h, checks)
}

/// The `cluster` step as one of check's steps: one check named `cluster`
/// whose findings are the health checks.
async fn health_step(cluster: &Cluster, ctx: &Ctx) -> (Health, Vec<Check>) {
    let started = Instant::now();
    let h = health::check(cluster, ctx.timeout).await;
    let outcome = StepOutcome {
        items: h.checks.clone(),
        summary: h.summary(),
        details: Default::default(),
        sections: Vec::new(),
    };
    let run = check::check_run("cluster", Ok(outcome), started);
    let checks = vec![Check::new("cluster", run.verdict, run.reason)];
    (h, checks)
}

/// One subcommand on the cluster.
pub async fn dispatch(
    job: Job,
    cluster: &Cluster,
    shards: &[Ctx],
    progress: Progress,
) -> Result<Box<dyn AnyReport>> {
    let first = &shards[0];
    if job.kind().on_cluster == OnCluster::Never {
        anyhow::bail!("{} does not run on a cluster", job.name());
    }
    Ok(match job {
        Job::ReplicateCheck(c) => {
            c.validate()?;
            let h = Some(health_checks(cluster, first).await);
            boxed(merge(
                "replicate-check",
                cluster,
                shards,
                h,
                on_shards!(progress, "replicate-check", shards, |ctx| {
                    replicate_check::run(c.clone(), ctx)
                }),
            )?)
        }
        Job::Check(c) => {
            let h = match c.cluster_step {
                true => Some(health_step(cluster, first).await),
                false => None,
            };
            boxed(merge(
                "check",
                cluster,
                shards,
                h,
                on_shards!(progress, "check", shards, |ctx| check::run(c.clone(), ctx)),
            )?)
        }
        Job::Keycount(c) => boxed(merge(
            "keycount",
            cluster,
            shards,
            None,
            on_shards!(progress, "keycount", shards, |ctx| keycount::run(
                c.clone(),
                ctx
            )),
        )?),
        Job::Compare(c) => boxed(merge(
            "compare",
            cluster,
            shards,
            None,
            on_shards!(progress, "compare", shards, |ctx| compare::run(
                c.clone(),
                ctx
            )),
        )?),
        Job::Clean(c) => boxed(merge(
            "clean",
            cluster,
            shards,
            None,
            on_shards!(progress, "clean", shards, |ctx| clean::run(c.clone(), ctx)),
        )?),
        // -n, -c and --rate are totals, shared out among the shards.
        Job::Perf(o) => boxed(perf::on_cluster::run(o, cluster, shards, progress).await?),
        Job::Stats(c) => boxed(stats::run_many(c, shards).await?),
        Job::TtlWatch(c) => match &c.key {
            // A key lives on one shard: watch it there.
            Some(key) => {
                let k = owner(cluster, shards, key.as_bytes(), "the key")?;
                boxed(ttl_watch::run(c.clone(), &shards[k]).await?)
            }
            None => boxed(merge(
                "ttl-watch",
                cluster,
                shards,
                None,
                on_shards!(progress, "ttl-watch", shards, |ctx| ttl_watch::run(
                    c.clone(),
                    ctx
                )),
            )?),
        },
        Job::Demo(c) => {
            let k = owner(cluster, shards, c.query.as_bytes(), "the query")?;
            c.narrate.line(&format!(
                "redlab demo on a cluster of {} shards: the query hashes to slot {}, served by {}; \
                 the demo runs there, its keys tagged {{{}}} so they stay on that shard.",
                cluster.shards.len(),
                slot::key_slot(c.query.as_bytes()),
                cluster.shards[k].name,
                cluster.shards[k].tag
            ));
            boxed(demo::run(c, &shards[k]).await?)
        }
        Job::Web(c) => boxed(crate::web::run(c, shards, Some(cluster)).await?),
        Job::Lab(_) => unreachable!("lab makes its own topology"),
        Job::Drill(_) => unreachable!("refused above"),
    })
}

/// The shard whose slots hold `key`.
fn owner(cluster: &Cluster, shards: &[Ctx], key: &[u8], what: &str) -> Result<usize> {
    let s = slot::key_slot(key);
    match cluster.shard_of_key(key) {
        Some(k) if k < shards.len() => Ok(k),
        _ => anyhow::bail!(
            "{what} hashes to slot {s}, which no master serves (the cluster answers CLUSTERDOWN for it)"
        ),
    }
}

/// Point each shard's cleanup at the master that serves its slots now: a
/// failover during the run (CLUSTER FAILOVER, a master lost) moved it, and
/// the old master, now a replica, would refuse the deletes.
pub(crate) async fn follow_masters(cluster: &Cluster, shards: &[Ctx]) {
    if shards
        .iter()
        .all(|c| c.ledger.is_empty() && !c.safety.wrote())
    {
        return;
    }
    let timeout = shards[0].timeout;
    let seeds = std::iter::once(&cluster.seed).chain(cluster.nodes());
    let Some(members) = discovered::slot_map(seeds, timeout).await else {
        return;
    };
    for ctx in shards {
        let old = &ctx.topology.master;
        let Some(scope) = &ctx.shard else {
            continue;
        };
        let Some(node) = discovered::master_now(&members, &scope.tag, old) else {
            continue;
        };
        if let Ok(c) = crate::client::Conn::connect(&node, timeout).await {
            ctx.say.line(&format!(
                "redlab: {} moved to {} during the run (a failover); cleaning up there",
                old.name,
                node.addr()
            ));
            ctx.safety.set_master_conn(c);
        }
    }
}
