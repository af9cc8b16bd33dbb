//! drill: break a lab redlab started, on purpose, under a steady load of
//! acknowledged writes, follow the topology through Sentinel until it is
//! whole again, and measure what it cost: time to detection and promotion,
//! how long writes were refused, which acknowledged writes were lost, and
//! how the replicas resynced. The Jepsen idea, scaled down to one command.

mod checks;
mod fault;
mod figures;
mod keys;
mod load;
mod owned;
mod report;
mod settle;
mod tables;
mod tally;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

pub use report::DrillDetails;

use crate::lab::Lab;
use crate::replication::lag::{LagOptions, Sampler};
use crate::report::Report;
use crate::run::Ctx;
use crate::series::lag::LagSeries;
use crate::topology::{ReplicaCount, Role, Topology};
use owned::{as_role, Plan};
use watch::{Events, Names, Tasks};

/// The one fault a drill injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillMaster,
    StopMaster,
    RestartMaster,
    KillReplica,
    StopReplica,
    PartitionReplica,
    Failover,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::KillMaster => "kill-master",
            Fault::StopMaster => "stop-master",
            Fault::RestartMaster => "restart-master",
            Fault::KillReplica => "kill-replica",
            Fault::StopReplica => "stop-replica",
            Fault::PartitionReplica => "partition-replica",
            Fault::Failover => "failover",
        }
    }

    /// It hits the master (or moves it).
    pub fn on_master(self) -> bool {
        matches!(
            self,
            Fault::KillMaster | Fault::StopMaster | Fault::RestartMaster | Fault::Failover
        )
    }

    /// How long the fault lasts by design (`--for`), for those that last.
    pub fn lasts(self, fault_for: Duration) -> Option<Duration> {
        match self {
            Fault::StopMaster
            | Fault::KillReplica
            | Fault::StopReplica
            | Fault::PartitionReplica => Some(fault_for),
            _ => None,
        }
    }
}

/// A replica's way back: a partial resync (the backlog), a full one (an RDB), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resync {
    None,
    Partial,
    Full,
}

impl Resync {
    pub fn as_str(self) -> &'static str {
        match self {
            Resync::None => "none",
            Resync::Partial => "partial",
            Resync::Full => "full",
        }
    }
}

impl std::fmt::Display for Resync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a drill event is: one of the drill's own kinds, or an event a
/// Sentinel published (its channel name, `+sdown`, `+switch-master`, ...).
/// Serialized as that word or name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    /// A node's role or link as polled (`replica of master, link up`).
    State,
    /// What the drill did to the lab.
    Fault,
    /// The load moved to the master a Sentinel names.
    Follow,
    /// An edge of the load's writes (the last acknowledged before the outage...).
    Write,
    /// A Sentinel event, by its name.
    Other(String),
}

impl EventKind {
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::State => "state",
            EventKind::Fault => "fault",
            EventKind::Follow => "follow",
            EventKind::Write => "write",
            EventKind::Other(name) => name,
        }
    }
}

impl From<String> for EventKind {
    fn from(s: String) -> EventKind {
        match s.as_str() {
            "state" => EventKind::State,
            "fault" => EventKind::Fault,
            "follow" => EventKind::Follow,
            "write" => EventKind::Write,
            _ => EventKind::Other(s),
        }
    }
}

impl From<&str> for EventKind {
    fn from(s: &str) -> EventKind {
        EventKind::from(s.to_string())
    }
}

impl From<EventKind> for String {
    fn from(k: EventKind) -> String {
        match k {
            EventKind::Other(name) => name,
            k => k.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub fault: Fault,
    /// The replica a replica fault hits (a lab name); None: the first replica.
    pub target: Option<String>,
    /// `--for`.
    pub fault_for: Duration,
    /// Writes per second.
    pub rate: f64,
    /// `WAIT n` after each SET; None: plain SET.
    pub ack: Option<u32>,
    pub ack_timeout: Duration,
    pub write_timeout: Duration,
    pub value_size: usize,
    /// Load before the fault, and after the lab is whole again.
    pub before: Duration,
    pub after: Duration,
    /// Bound on the lab becoming whole again after the fault.
    pub settle: Duration,
    pub max_downtime: Option<Duration>,
    pub max_lost: u64,
    pub expect: Option<Resync>,
    /// Where `lab up` keeps its state.
    pub state_dir: Option<PathBuf>,
    /// --master, --replica or --sentinel was given: they must be the lab's.
    pub explicit_topology: bool,
    /// How often the replicas' offset lag is sampled (replica faults).
    pub lag_interval: Duration,
}

/// Run one drill on `spawned` (the --spawn lab) or on `lab up`'s lab;
/// refuse any other topology before doing anything.
pub async fn run(
    cfg: Config,
    ctx: &Ctx,
    spawned: Option<&mut Lab>,
) -> Result<Report<DrillDetails>> {
    let mut found;
    let lab: &mut Lab = match spawned {
        Some(l) => l,
        None => {
            found = owned::adopt(&cfg, ctx)?;
            &mut found
        }
    };
    let plan = owned::plan(&cfg, ctx, lab).await?;
    if let Err(why) = settle::check_stable(&plan).await {
        bail!("the lab is not whole before the drill ({why}): `redlab lab status` shows it");
    }
    let outcome = drill(&cfg, ctx, lab, &plan).await;
    if lab.is_adopted() {
        // Restarted processes have new pids: `lab down` must find them.
        let dir = cfg
            .state_dir
            .clone()
            .unwrap_or_else(crate::lab::default_state_dir);
        crate::lab::save_state(&dir, &lab.state())?;
    }
    let measured = outcome?;
    let topo = final_topology(&plan, &measured);
    let states = crate::survey::survey(&topo, ctx.timeout).await;
    let details = report::details(&cfg, &plan, measured);
    let checks = report::checks(&details);
    Ok(Report::new(
        "drill",
        ctx.manifest(),
        states.infos(),
        checks,
        details,
    ))
}

/// Everything measured, for the report.
pub struct Measured {
    pub fault_at: Instant,
    pub applied: fault::Applied,
    pub stable: Result<(settle::Stable, Instant), String>,
    pub attempts: Vec<load::Attempt>,
    pub ticks: u64,
    pub skipped: u64,
    pub before: Vec<Option<settle::Snap>>,
    pub after: Vec<Option<settle::Snap>>,
    pub resyncs: Vec<(u32, u32)>,
    pub read: Result<settle::ReadBack, String>,
    pub events: Vec<watch::Raw>,
    /// The master at the end (index in the plan's nodes).
    pub master_after: usize,
    /// Each replica's offset lag over the load, and when sampling started
    /// (a replica fault only).
    pub replica_lag: Option<(LagSeries, Instant)>,
}

/// Samples each replica's offset lag from the master's INFO while the load
/// runs. Only for a fault that leaves the master in place: after a failover
/// the lag would be measured against a master that is gone.
fn lag_sampler(cfg: &Config, ctx: &Ctx, plan: &Plan) -> Sampler {
    let master = plan.nodes[plan.master].clone();
    let replicas = plan
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != plan.master)
        .map(|(_, n)| n.clone())
        .collect();
    let opts = LagOptions {
        interval: cfg.lag_interval,
        settle: Duration::from_secs(5),
    };
    Sampler::start(master, replicas, opts, ctx.timeout)
}

async fn drill(cfg: &Config, ctx: &Ctx, lab: &mut Lab, plan: &Plan) -> Result<Measured> {
    let events = Events::default();
    let mut tasks = Tasks::default();
    let names = Names::new(&plan.nodes);
    watch::sentinel_events(&plan.sentinels, ctx.timeout, &events, &mut tasks).await?;
    watch::poll_nodes(&plan.nodes, &names, &events, &mut tasks);
    let first = plan.nodes[plan.master].clone();
    let master = watch::follow_master(&plan.sentinels, &plan.nodes, first, &events, &mut tasks);

    let prefix = ctx.key("drill:");
    if let Ok(m) = crate::survey::survey(&ctx.topology, ctx.timeout)
        .await
        .master()
    {
        ctx.prepare_writes(&m, (cfg.value_size as u64 + 64) * cfg.rate as u64 * 60)
            .await?;
    }
    // Declared before the load: dropped after it (an interrupted drill stops
    // writing, then removes what it wrote).
    let mut keys = keys::Keys::register(ctx, &prefix, master.clone());
    let bound = cfg.before + cfg.after + cfg.settle + cfg.fault_for;
    let spec = load::LoadSpec {
        rate: cfg.rate,
        ack: cfg.ack,
        ack_timeout: cfg.ack_timeout,
        write_timeout: cfg.write_timeout,
        value_size: cfg.value_size,
        prefix: prefix.clone(),
        ttl: crate::run::key_ttl((bound * 2).max(Duration::from_secs(600))),
    };
    ctx.safety.expiring(spec.ttl);
    ctx.say.line(&format!(
        "drill: {} on {}, under {} writes/s acknowledged by --ack {}; {} of load first",
        cfg.fault.as_str(),
        plan.nodes[plan.target].label(),
        cfg.rate,
        report::ack_name(cfg.ack),
        humantime::format_duration(cfg.before)
    ));
    let lag = (!cfg.fault.on_master()).then(|| lag_sampler(cfg, ctx, plan));
    let load = load::start(spec, master.clone(), keys.ids());
    tokio::time::sleep(cfg.before).await;
    wait_first_ack(cfg, &load).await?;

    let paths: Vec<&std::path::Path> = lab.servers().map(|s| s.log.as_path()).collect();
    let marks = settle::log_marks(&paths);
    let logs: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    let before = settle::snapshot(&plan.nodes, ctx.timeout).await;

    let mut injector = fault::Injector::new(lab, state_dir(cfg, lab));
    let applied = fault::apply(&mut injector, cfg, plan, &events).await?;
    drop(injector);
    let fault_at = applied.at;
    let from = applied.undone.unwrap_or(fault_at);
    ctx.say.line(&format!(
        "drill: {} done; following the lab through its Sentinels until it is whole again \
         (at most {})",
        cfg.fault.as_str(),
        humantime::format_duration(cfg.settle)
    ));
    let record = load.record.clone();
    let level = cfg.ack;
    let stable = settle::wait_stable(plan, from + cfg.settle, |s| {
        // SENTINEL FAILOVER returns before anything moved: whole means moved.
        if cfg.fault == Fault::Failover && s.master == plan.master {
            return Some("the failover has not promoted a replica yet".into());
        }
        let port = plan.nodes[s.master].port();
        match record.first_ack_after(level, port, from) {
            Some(_) => None,
            None => Some(format!(
                "no write acknowledged yet on {}",
                plan.nodes[s.master].name
            )),
        }
    })
    .await;
    ctx.say.line(&match &stable {
        Ok((s, t)) => format!(
            "drill: whole again {:.1} s after the fault, {} the master",
            (*t - fault_at).as_secs_f64(),
            plan.nodes[s.master].name
        ),
        Err(why) => format!("drill: not whole again within --settle: {why}"),
    });
    tokio::time::sleep(cfg.after).await;
    let (attempts, ticks, skipped) = load.stop().await;
    let replica_lag = match lag {
        Some(l) => l.finish().await,
        None => None,
    };
    drop(tasks);

    let master_after = match &stable {
        Ok((s, _)) => s.master,
        Err(_) => settle::check_stable(plan)
            .await
            .map(|s| s.master)
            .unwrap_or(plan.master),
    };
    let read = read_back(cfg, ctx, plan, master_after, &attempts, &prefix).await;
    let after = settle::snapshot(&plan.nodes, ctx.timeout).await;
    let resyncs = logs
        .iter()
        .zip(&marks)
        .map(|(p, m)| settle::resyncs_logged(p, *m))
        .collect();
    // The keys go from the master that has them now, not the one the run began with.
    keys.remove_from(ctx, &plan.nodes[master_after]).await;
    Ok(Measured {
        fault_at,
        applied,
        stable,
        attempts,
        ticks,
        skipped,
        before,
        after,
        resyncs,
        read,
        events: events.all(),
        master_after,
        replica_lag,
    })
}

/// Where an adopted (`lab up`) lab keeps its state; None for a --spawn lab.
fn state_dir(cfg: &Config, lab: &Lab) -> Option<PathBuf> {
    lab.is_adopted().then(|| {
        cfg.state_dir
            .clone()
            .unwrap_or_else(crate::lab::default_state_dir)
    })
}

/// Refuse to break anything while the load is not acknowledged at all.
async fn wait_first_ack(cfg: &Config, load: &load::Load) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while load.record.acked_count(cfg.ack) == 0 {
        if Instant::now() > deadline {
            bail!(
                "no write was acknowledged before the fault (--ack {}): nothing was broken",
                report::ack_name(cfg.ack)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn read_back(
    cfg: &Config,
    ctx: &Ctx,
    plan: &Plan,
    master: usize,
    attempts: &[load::Attempt],
    prefix: &str,
) -> Result<settle::ReadBack, String> {
    // Every id whose SET may have landed: acknowledged or not, errors included.
    let ids: Vec<u64> = attempts.iter().map(|a| a.id).collect();
    let replicas: Vec<_> = (0..plan.nodes.len())
        .filter(|i| *i != master)
        .map(|i| plan.nodes[i].clone())
        .collect();
    settle::read_back(
        &plan.nodes[master],
        &replicas,
        &ids,
        prefix,
        ctx.timeout,
        cfg.settle.min(Duration::from_secs(10)),
    )
    .await
    .map_err(|e| format!("{e:#}"))
}

/// The lab as it stands after the drill, for the report's node list.
fn final_topology(plan: &Plan, m: &Measured) -> Topology {
    let master = as_role(&plan.nodes[m.master_after], Role::Master);
    let replicas: Vec<_> = (0..plan.nodes.len())
        .filter(|i| *i != m.master_after)
        .map(|i| as_role(&plan.nodes[i], Role::Replica))
        .collect();
    Topology {
        master,
        expected: ReplicaCount::Given(replicas.len()),
        replicas,
        discover: false,
        sentinel: Some(plan.sentinels.clone()),
    }
}
