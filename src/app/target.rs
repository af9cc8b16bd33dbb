//! The topology resolved once, for the whole run, into a `Target` that does
//! not change after: the flags as given (a lab's own topology), a --spawn lab,
//! Sentinel's answer, replicas discovered from the master, or a whole Redis
//! Cluster. What a job tolerates here (an unusable master) is its `Kind`'s.

use anyhow::{bail, Result};

use super::job::{Kind, OnCluster};
use super::settings::Settings;
use crate::discover::{self, cluster::Cluster};
use crate::lab::{self, Lab, LabOptions};
use crate::run::Signals;
use crate::serving;
use crate::survey::{self, NodeState};
use crate::topology::{self, Topology};
use crate::ui::progress::Progress;

/// What the run works on.
pub struct Target {
    /// The replication topology (a cluster's seed when `cluster` is set).
    pub topology: Topology,
    /// The whole cluster, when the target is one: the job runs per shard.
    pub cluster: Option<Cluster>,
    /// The master's state as discovery saw it, for the first survey to reuse.
    pub discovered: Option<NodeState>,
    /// The --spawn lab, stopped when dropped.
    pub labs: Labs,
}

/// The target the settings describe; None when a signal interrupted a
/// --spawn lab's start (it was stopped).
pub async fn resolve(
    g: &Settings,
    kind: Kind,
    progress: Progress,
    signals: &mut Signals,
) -> Result<Option<Target>> {
    let is_lab = kind.on_cluster == OnCluster::OwnTopology;
    // --sentinel asks Sentinel for the master and replicas (network, bounded by --timeout).
    let mut topology = if is_lab || g.spawn.is_some() {
        Topology::from_spec(&g.topology)?
    } else {
        discover::resolve(&g.topology, g.timeout).await?
    };
    let labs = match g.spawn.filter(|_| !is_lab) {
        Some(replicas) => match spawn(g, replicas, progress, signals).await? {
            Some(l) => l,
            None => return Ok(None),
        },
        None => Labs::default(),
    };
    if let Some(l) = &labs.replication {
        topology = l.topology();
    }
    let mut discovered = None;
    let mut cluster = None;
    if let Some(l) = &labs.cluster {
        let shape = l.shape();
        let seed = l.seed();
        let c =
            discover::cluster::discover(&seed, Some(shape.replicas), Some(shape.shards), g.timeout);
        cluster = Some(c.await?);
    } else if g.topology.cluster && !is_lab {
        topology.master.cluster = true;
        cluster = Some(whole_cluster(&topology.master, g).await?);
    } else if topology.discover && !is_lab {
        match survey::discover(&mut topology, g.timeout).await {
            // A URL given alone that is a cluster node: the whole cluster.
            Ok(seed) if seed.is_cluster() => {
                topology.master.cluster = true;
                cluster = Some(whole_cluster(&topology.master, g).await?);
            }
            Ok(master) => discovered = Some(master),
            // `check` reports an unusable master itself, in its report, so CI still gets one.
            // So does every subcommand for a master that does not serve
            // (the survey says so again, in its way); a refused topology
            // (two replicas at one address) is an error for every one.
            Err(e)
                if (kind.reports_unusable_master || serving::NotServing::of(&e).is_some())
                    && e.downcast_ref::<survey::Refusal>().is_none() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(Target {
        topology,
        cluster,
        discovered,
        labs,
    }))
}

/// The whole cluster a node belongs to, with the shape the user asserted.
async fn whole_cluster(seed: &topology::Node, g: &Settings) -> Result<discover::cluster::Cluster> {
    let t = &g.topology;
    discover::cluster::discover(seed, t.expect_replicas, t.expect_shards, g.timeout).await
}

/// The labs a --spawn run started (one of them), stopped when dropped.
#[derive(Default)]
pub struct Labs {
    pub replication: Option<Lab>,
    pub cluster: Option<lab::ClusterLab>,
}

/// Start the --spawn lab; None when a signal interrupted its start (it was stopped).
async fn spawn(
    g: &Settings,
    replicas: usize,
    progress: Progress,
    signals: &mut Signals,
) -> Result<Option<Labs>> {
    let t = &g.topology;
    if t.master.is_some() || !t.replicas.is_empty() || !t.sentinels.is_empty() {
        bail!(
            "--spawn starts its own topology: drop --master/--replica/--sentinel, or drop --spawn"
        );
    }
    if let Some(n) = t.expect_replicas.filter(|n| *n != replicas) {
        bail!(
            "--expect-replicas {n} but --spawn starts {replicas} replicas{}: \
             set --spawn-replicas {n}, or drop --expect-replicas (the lab asserts its own count)",
            if t.cluster { " per shard" } else { "" }
        );
    }
    if t.cluster {
        let shards = g.lab.shards;
        if let Some(n) = t.expect_shards.filter(|n| *n != shards) {
            bail!(
                "--expect-shards {n} but --spawn starts {shards} shards: set --spawn-shards {n}, \
                 or drop --expect-shards (the lab asserts its own shape)"
            );
        }
        let spinner = progress.spinner(format!(
            "starting a throwaway cluster of {shards} shards, each a master and {replicas} replicas"
        ));
        let start = lab::ClusterLab::start(lab::ClusterLabOptions {
            shards,
            replicas,
            password: t.password.clone(),
            ..lab::ClusterLabOptions::default()
        });
        let lab = tokio::select! {
            lab = start => lab?,
            _ = signals.recv() => {
                eprintln!("redlab: interrupted while starting the lab; it was stopped");
                return Ok(None);
            }
        };
        spinner.finish();
        return Ok(Some(Labs {
            cluster: Some(lab),
            ..Labs::default()
        }));
    }
    let spinner = progress.spinner(format!(
        "starting a throwaway lab with {replicas} replicas{}",
        match g.lab.sentinels {
            0 => String::new(),
            n => format!(" and {n} Sentinels"),
        }
    ));
    let start = Lab::start(LabOptions {
        replicas,
        password: t.password.clone(),
        sentinels: g.lab.sentinels,
        sentinel_timeouts: g.lab.sentinel_timeouts,
        backlog: g.lab.backlog,
        ..LabOptions::default()
    });
    // Dropping a half-started lab kills what it had started.
    let lab = tokio::select! {
        lab = start => lab?,
        _ = signals.recv() => {
            eprintln!("redlab: interrupted while starting the lab; it was stopped");
            return Ok(None);
        }
    };
    spinner.finish();
    Ok(Some(Labs {
        replication: Some(lab),
        ..Labs::default()
    }))
}
