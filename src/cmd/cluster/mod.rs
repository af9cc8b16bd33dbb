//! Every subcommand on a Redis Cluster. The run has one `Ctx` per shard
//! (the shard's topology, its hash tag, its own ledger, safety state and
//! registry); a subcommand runs unchanged on each shard, all shards at once
//! (one stalled shard does not make the others look late), and the reports
//! are merged: the nodes of every shard, every check named after its shard
//! (`shard2.replica1.propagation`), each shard's details and tables under its
//! name. `replicate-check` and `check` add the `cluster` step (`health`).
//!
//! Which subcommand runs how on a cluster (per shard, by key, whole) is the
//! job's: `app::shards`. This room holds the merging and the cluster step.

pub mod health;

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::discover::cluster::Cluster;
use crate::report::{Check, Details, Figure, Report, Section, Verdict};
use crate::run::Ctx;
use crate::topology::slot;

use crate::probe::slots::{master_now, slot_map};
pub use health::Health;

/// A subcommand's report over every shard.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "D: DeserializeOwned"))]
pub struct Sharded<D> {
    /// The `cluster` step (replicate-check, check); null where it did not run.
    pub health: Option<Health>,
    /// One entry per shard, by lowest slot.
    pub shards: Vec<ShardRun<D>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "D: DeserializeOwned"))]
pub struct ShardRun<D> {
    /// `shard1`, ...
    pub shard: String,
    /// Its master, host:port.
    pub master: String,
    /// Replicas the shard has in the cluster's configuration.
    pub replicas: usize,
    /// The slots it serves (`0-5460`).
    pub slots: String,
    /// The hash tag its keys of this run carry (`{tag}`).
    pub tag: String,
    /// The worst verdict of its checks (failed when it could not be run).
    pub verdict: Verdict,
    /// The subcommand's details on this shard; null when it could not run.
    pub details: Option<D>,
    /// Why it could not be run on this shard.
    pub error: Option<String>,
}

/// `name` as one of `shard`'s checks: `shard1.` in front unless already there.
pub fn in_shard(shard: &str, mut c: Check) -> Check {
    if !c.name.starts_with(&format!("{shard}.")) {
        c.name = format!("{shard}.{}", c.name);
    }
    c
}

/// Merge the shards' reports (in shard order) into one.
pub(crate) fn merge<D: Details>(
    command: &str,
    cluster: &Cluster,
    shards: &[Ctx],
    health: Option<(Health, Vec<Check>)>,
    results: Vec<Result<Report<D>>>,
) -> Result<Report<Sharded<D>>> {
    if results.iter().all(|r| r.is_err()) {
        // The same refusal everywhere (bad input, a full cluster): one error.
        let first = results.into_iter().find_map(Result::err);
        return Err(first.expect("a cluster has a shard"));
    }
    let (health, mut checks) = match health {
        Some((h, c)) => (Some(h), c),
        None => (None, Vec::new()),
    };
    let mut nodes = Vec::new();
    let mut runs = Vec::new();
    for (shard, r) in cluster.shards.iter().zip(results) {
        let mut run = ShardRun {
            shard: shard.name.clone(),
            master: shard.topology.master.addr(),
            replicas: shard.replica_ids.len(),
            slots: slot::ranges_text(&shard.slots),
            tag: shard.tag.clone(),
            verdict: Verdict::Fail,
            details: None,
            error: None,
        };
        match r {
            Ok(rep) => {
                run.verdict = rep.verdict;
                nodes.extend(rep.nodes);
                checks.extend(rep.checks.into_iter().map(|c| in_shard(&shard.name, c)));
                run.details = Some(rep.details);
            }
            Err(e) => {
                let why = format!("{e:#}");
                checks.push(Check::fail(format!("{}.error", shard.name), &why));
                run.error = Some(why);
            }
        }
        runs.push(run);
    }
    Ok(Report::new(
        command,
        shards[0].manifest(),
        nodes,
        checks,
        Sharded {
            health,
            shards: runs,
        },
    ))
}

/// Point each shard's cleanup at the master that serves its slots now: a
/// failover during the run (CLUSTER FAILOVER, a master lost) moved it, and
/// the old master, now a replica, would refuse the deletes.
pub async fn follow_masters(cluster: &Cluster, shards: &[Ctx]) {
    if shards
        .iter()
        .all(|c| c.ledger.is_empty() && !c.safety.wrote())
    {
        return;
    }
    let timeout = shards[0].timeout;
    let seeds = std::iter::once(&cluster.seed).chain(cluster.nodes());
    let Some(members) = slot_map(seeds, timeout).await else {
        return;
    };
    for ctx in shards {
        let old = &ctx.topology.master;
        let Some(node) = master_now(&members, ctx, old) else {
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

/// The shard whose slots hold `key`.
pub fn owner(cluster: &Cluster, shards: &[Ctx], key: &[u8], what: &str) -> Result<usize> {
    let s = slot::key_slot(key);
    match cluster.shard_of_key(key) {
        Some(k) if k < shards.len() => Ok(k),
        _ => anyhow::bail!(
            "{what} hashes to slot {s}, which no master serves (the cluster answers CLUSTERDOWN for it)"
        ),
    }
}

impl<D: Details> Details for Sharded<D> {
    /// --fail-on warn reaches each shard's details; a shard whose details
    /// made their warnings fatal (check) fails where it warned.
    fn warnings_fatal(&mut self) -> bool {
        let mut any = false;
        for r in &mut self.shards {
            if r.details.as_mut().is_some_and(Details::warnings_fatal) {
                any = true;
                if r.verdict == Verdict::Warn {
                    r.verdict = Verdict::Fail;
                }
            }
        }
        any
    }

    fn sections(&self) -> Vec<Section> {
        let mut out = self
            .health
            .as_ref()
            .map(Health::sections)
            .unwrap_or_default();
        let mut s = Section::new(
            "Shards",
            &["shard", "verdict", "master", "replicas", "slots", "tag"],
        );
        for r in &self.shards {
            s.row(vec![
                r.shard.clone(),
                r.verdict.as_str().into(),
                r.master.clone(),
                r.replicas.to_string(),
                r.slots.clone(),
                format!("{{{}}}", r.tag),
            ]);
            if let Some(e) = &r.error {
                s.notes.push(format!("{}: not run: {e}", r.shard));
            }
        }
        out.push(s);
        for r in &self.shards {
            for mut sec in r
                .details
                .as_ref()
                .map(Details::sections)
                .unwrap_or_default()
            {
                sec.title = format!("{}: {}", r.shard, sec.title);
                out.push(sec);
            }
        }
        out
    }

    fn figures(&self) -> Vec<Figure> {
        let mut out = Vec::new();
        for r in &self.shards {
            for mut f in r.details.as_ref().map(Details::figures).unwrap_or_default() {
                f.id = format!("{}-{}", r.shard, f.id);
                f.title = format!("{}: {}", r.shard, f.title);
                out.push(f);
            }
        }
        out
    }

    /// A shard that could not be run at all (its master unreachable, say) is
    /// what a lone master that could not be run is: exit 2, after the report.
    fn refused(&self) -> Option<String> {
        self.shards.iter().find_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("{}: {e}", r.shard))
                .or_else(|| {
                    r.details
                        .as_ref()?
                        .refused()
                        .map(|w| format!("{}: {w}", r.shard))
                })
        })
    }

    fn interrupted(&self) -> bool {
        self.shards
            .iter()
            .any(|r| r.details.as_ref().is_some_and(Details::interrupted))
    }

    fn compact(&self) -> bool {
        self.shards
            .iter()
            .any(|r| r.details.as_ref().is_some_and(Details::compact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_named_after_their_shard_once() {
        assert_eq!(
            in_shard("shard2", Check::pass("propagation", "x")).name,
            "shard2.propagation"
        );
        assert_eq!(
            in_shard("shard2", Check::pass("shard2.replica1.propagation", "x")).name,
            "shard2.replica1.propagation"
        );
        assert_eq!(
            in_shard("shard1", Check::pass("shard10.master", "x")).name,
            "shard1.shard10.master"
        );
    }
}
