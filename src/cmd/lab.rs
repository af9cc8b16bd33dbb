//! lab up|down|status: a local master + replicas that outlive the command.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::lab::{self, Lab, LabOptions, LabState};
use crate::report::{Check, Details, Report, Section};
use crate::run::Ctx;
use crate::survey::{survey, NodeState};

#[derive(Debug, Serialize, Deserialize)]
pub struct LabDetails {
    /// up, down or status.
    pub action: Did,
    /// Where the lab keeps data, logs and its pid file.
    pub state_dir: PathBuf,
    /// The lab's processes.
    pub processes: Vec<LabProcess>,
    /// A cluster lab's shape (shards, replicas per shard); null for a
    /// master with replicas.
    pub cluster: Option<lab::cluster::Shape>,
}

/// Which of lab up|down|status made the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Did {
    Up,
    Down,
    Status,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LabProcess {
    pub name: String,
    pub port: u16,
    pub pid: u32,
    /// Whether the process runs (for `down`: whether it was running when stopped).
    pub running: bool,
    /// The role it reports, when it answers.
    pub role: Option<String>,
    /// `master_link_status` of a replica; for a Sentinel, what it sees.
    pub link_status: Option<String>,
}

/// What `lab` does, and where it keeps its state.
#[derive(Debug, Clone)]
pub struct Config {
    pub action: Action,
    /// None: the default state dir.
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up {
        replicas: usize,
        base_port: u16,
        /// `--cluster`: this many shards, each a master with `replicas`.
        shards: Option<usize>,
        /// Sentinels to start (0: none), with their timeouts.
        sentinels: usize,
        timeouts: lab::SentinelTimeouts,
        /// `repl-backlog-size`, bytes.
        backlog: Option<u64>,
    },
    Down,
    Status,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<LabDetails>> {
    let state_dir = cfg.state_dir.unwrap_or_else(lab::default_state_dir);
    match cfg.action {
        Action::Up {
            replicas,
            base_port,
            shards: Some(shards),
            ..
        } => {
            let opts = lab::ClusterLabOptions {
                shards,
                replicas,
                base_port: Some(base_port),
                ..lab::ClusterLabOptions::default()
            };
            up_cluster(ctx, state_dir, opts).await
        }
        Action::Up {
            replicas,
            base_port,
            sentinels,
            timeouts,
            backlog,
            shards: None,
        } => {
            let opts = LabOptions {
                replicas,
                base_port: Some(base_port),
                sentinels,
                sentinel_timeouts: timeouts,
                backlog,
                ..LabOptions::default()
            };
            up(ctx, state_dir, opts).await
        }
        Action::Down => down(ctx, state_dir).await,
        Action::Status => status(ctx, state_dir).await,
    }
}

/// A lab that is up but whose master a drill moved: put back to its
/// recorded roles, and reported. None when there is no such lab.
async fn restore_roles(
    ctx: &Ctx,
    state_dir: &std::path::Path,
) -> Result<Option<Report<LabDetails>>> {
    let Some(state) = lab::load_state(state_dir)? else {
        return Ok(None);
    };
    if state.cluster.is_some()
        || !state
            .nodes
            .iter()
            .chain(&state.sentinels)
            .all(|n| n.is_ours())
    {
        return Ok(None);
    }
    let lab = Lab::adopt(&state, ctx.topology.master.password().map(String::from))?;
    if lab.has_recorded_roles().await? {
        return Ok(None);
    }
    let spinner = ctx
        .progress
        .spinner("putting the lab back to its recorded roles");
    lab.restore_roles(std::time::Duration::from_secs(60))
        .await?;
    spinner.finish();
    let states = survey(&lab.topology(), ctx.timeout).await;
    report(ctx, Did::Up, state_dir.to_path_buf(), &state, states.all())
        .await
        .map(Some)
}

/// No lab of `lab up`'s is running under `state_dir`.
fn refuse_second_lab(state_dir: &std::path::Path) -> Result<()> {
    if let Some(st) = lab::load_state(state_dir)? {
        if st.nodes.iter().any(|n| n.is_ours()) {
            bail!(
                "a lab is already up (state in {}): `redlab lab status` shows it, `redlab lab down` stops it",
                state_dir.display()
            );
        }
    }
    Ok(())
}

async fn up_cluster(
    ctx: &Ctx,
    state_dir: PathBuf,
    opts: lab::ClusterLabOptions,
) -> Result<Report<LabDetails>> {
    refuse_second_lab(&state_dir)?;
    let data = state_dir.join("data");
    lab::claim_dir(&data)?;
    let spinner = ctx.progress.spinner(format!(
        "starting a cluster of {} shards, each a master and {} replicas",
        opts.shards, opts.replicas
    ));
    let lab = lab::ClusterLab::start(lab::ClusterLabOptions {
        dir: Some(data),
        password: ctx.topology.master.password().map(String::from),
        ..opts
    })
    .await?;
    let state = lab.detach();
    lab::save_state(&state_dir, &state)?;
    spinner.finish();
    let topo = topology_of(&state, ctx)?;
    let states = survey(&topo, ctx.timeout).await;
    report(ctx, Did::Up, state_dir, &state, states.all()).await
}

async fn up(ctx: &Ctx, state_dir: PathBuf, opts: LabOptions) -> Result<Report<LabDetails>> {
    if let Some(report) = restore_roles(ctx, &state_dir).await? {
        return Ok(report);
    }
    refuse_second_lab(&state_dir)?;
    let data = state_dir.join("data");
    lab::claim_dir(&data)?;
    let spinner = ctx.progress.spinner(format!(
        "starting a master and {} replicas{}",
        opts.replicas,
        match opts.sentinels {
            0 => String::new(),
            n => format!(", then {n} Sentinels"),
        }
    ));
    let lab = Lab::start(LabOptions {
        dir: Some(data),
        password: ctx.topology.master.password().map(String::from),
        ..opts
    })
    .await?;
    let topo = lab.topology();
    let state = lab.detach();
    lab::save_state(&state_dir, &state)?;
    spinner.finish();
    let states = survey(&topo, ctx.timeout).await;
    report(ctx, Did::Up, state_dir, &state, states.all()).await
}

async fn down(ctx: &Ctx, state_dir: PathBuf) -> Result<Report<LabDetails>> {
    // Nothing running is the state `down` is for: exit 0, so it can be a cleanup step.
    let Some(state) = lab::load_state(&state_dir)? else {
        let details = LabDetails {
            action: Did::Down,
            state_dir: state_dir.clone(),
            processes: Vec::new(),
            cluster: None,
        };
        let checks = vec![Check::pass(
            "lab",
            format!(
                "no lab was running (no state in {}): nothing to stop",
                state_dir.display()
            ),
        )];
        return Ok(Report::new(
            "lab",
            ctx.manifest(),
            Vec::new(),
            checks,
            details,
        ));
    };
    let mut processes = Vec::new();
    let mut checks = Vec::new();
    // Sentinels first: they must not fail over while the data nodes stop.
    let password = ctx.topology.master.password();
    let mut left_running = Vec::new();
    for n in state.sentinels.iter().chain(&state.nodes) {
        let (was_running, check) = match n.stop(password) {
            Ok(true) => (
                true,
                Check::pass(n.name.clone(), format!("stopped pid {}", n.pid)),
            ),
            Ok(false) => (
                false,
                Check::pass(n.name.clone(), format!("pid {} was not running", n.pid)),
            ),
            Err(e) => {
                left_running.push(n.name.clone());
                (
                    true,
                    Check::fail(n.name.clone(), format!("{e:#}: stop it by hand")),
                )
            }
        };
        checks.push(check);
        processes.push(LabProcess {
            name: n.name.clone(),
            port: n.port,
            pid: n.pid,
            running: was_running,
            role: None,
            link_status: None,
        });
    }
    // A server whose folder is removed under it cannot save and refuses
    // SIGTERM: the data and the state stay while one of them runs.
    if left_running.is_empty() {
        std::fs::remove_file(lab::state_file(&state_dir))?;
        lab::release_dir(&state.dir)?;
    } else {
        checks.push(Check::fail(
            "data",
            format!(
                "{} kept ({} still running): run `redlab lab down` again once it has stopped",
                state.dir.display(),
                left_running.join(", ")
            ),
        ));
    }
    let details = LabDetails {
        action: Did::Down,
        state_dir,
        processes,
        cluster: state.cluster,
    };
    Ok(Report::new(
        "lab",
        ctx.manifest(),
        Vec::new(),
        checks,
        details,
    ))
}

async fn status(ctx: &Ctx, state_dir: PathBuf) -> Result<Report<LabDetails>> {
    let Some(state) = lab::load_state(&state_dir)? else {
        bail!(
            "no lab found in {}: start one with `redlab lab up`",
            state_dir.display()
        );
    };
    let topo = topology_of(&state, ctx)?;
    let states = survey(&topo, ctx.timeout).await;
    report(ctx, Did::Status, state_dir, &state, states.all()).await
}

fn topology_of(state: &LabState, ctx: &Ctx) -> Result<crate::topology::Topology> {
    if state.nodes.is_empty() {
        bail!("the lab state lists no node");
    }
    let nodes: Vec<(&str, u16)> = state
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.port))
        .collect();
    let mut topo = lab::loopback_topology(&nodes, ctx.topology.master.password());
    if state.cluster.is_some() {
        topo.master.cluster = true;
        topo.replicas.iter_mut().for_each(|r| r.cluster = true);
    }
    Ok(topo)
}

async fn report(
    ctx: &Ctx,
    action: Did,
    state_dir: PathBuf,
    state: &LabState,
    states: &[NodeState],
) -> Result<Report<LabDetails>> {
    let mut processes = Vec::new();
    let mut checks = Vec::new();
    let (watched_master, sentinel_rows) = sentinel_rows(ctx, state).await;
    for (n, st) in state.nodes.iter().zip(states) {
        let running = n.is_ours();
        let info = st.info.as_ref();
        let p = LabProcess {
            name: n.name.clone(),
            port: n.port,
            pid: n.pid,
            running,
            role: info.map(|i| i.role().to_string()),
            link_status: info.and_then(|i| i.get("master_link_status").map(String::from)),
        };
        // After a failover the master is whichever node the Sentinels name;
        // in a cluster, whichever says so (the cluster fails over by itself).
        let is_master = match watched_master {
            Some(port) => port == n.port,
            None if state.cluster.is_some() => p.role.as_deref() == Some("master"),
            None => n.name == "master",
        };
        let ok = running
            && info.is_some()
            && ((is_master && p.role.as_deref() == Some("master"))
                || (!is_master && p.link_status.as_deref() == Some("up")));
        let reason = match (&st.error, running) {
            (_, false) => format!("pid {} is not running", n.pid),
            (Some(e), _) => e.message.clone(),
            (None, _) => format!(
                "pid {}, role {}, link {}",
                n.pid,
                p.role.as_deref().unwrap_or("-"),
                p.link_status.as_deref().unwrap_or("-")
            ),
        };
        checks.push(if ok {
            Check::pass(n.name.clone(), reason)
        } else {
            Check::fail(n.name.clone(), reason)
        });
        processes.push(p);
    }
    for (p, check) in sentinel_rows {
        processes.push(p);
        checks.push(check);
    }
    if state.cluster.is_some() {
        checks.push(cluster_check(states).await);
    }
    let details = LabDetails {
        action,
        state_dir,
        processes,
        cluster: state.cluster,
    };
    let infos = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new("lab", ctx.manifest(), infos, checks, details))
}

/// `cluster`: every node of a cluster lab says `cluster_state:ok`.
async fn cluster_check(states: &[NodeState]) -> Check {
    let mut bad = Vec::new();
    for st in states {
        let Some(mut c) = st.conn.clone() else {
            bad.push(format!("{} does not answer", st.node.name));
            continue;
        };
        match c.query::<String>(redis::cmd("CLUSTER").arg("INFO")).await {
            Ok(t) if t.contains("cluster_state:ok") => {}
            Ok(_) => bad.push(format!("{} says cluster_state:fail", st.node.name)),
            Err(e) => bad.push(e.to_string()),
        }
    }
    if bad.is_empty() {
        Check::pass(
            "cluster",
            format!("cluster_state:ok on all {} nodes", states.len()),
        )
    } else {
        Check::fail("cluster", bad.join("; "))
    }
}

/// The lab's Sentinels, each with what it sees, and the master they agree on.
async fn sentinel_rows(ctx: &Ctx, state: &LabState) -> (Option<u16>, Vec<(LabProcess, Check)>) {
    if state.sentinels.is_empty() {
        return (None, Vec::new());
    }
    let set = crate::topology::SentinelSet {
        master_name: crate::discover::sentinel::DEFAULT_MASTER_NAME.into(),
        nodes: state
            .sentinels
            .iter()
            .map(|s| {
                crate::topology::Node::parse(
                    &s.name,
                    crate::topology::Role::Replica,
                    &format!("redis://127.0.0.1:{}", s.port),
                )
                .expect("a loopback URL parses")
            })
            .collect(),
        observed: None,
    };
    let views = crate::discover::sentinel::views(&set, ctx.timeout).await;
    let agreed = crate::discover::sentinel::agreed_master(&set, &views).ok();
    let mut rows = Vec::new();
    for (s, v) in state.sentinels.iter().zip(&views) {
        let running = s.is_ours();
        let (seen, ok) = match v {
            Ok(v) => {
                let up = v.replicas.iter().filter(|r| !r.is_down()).count();
                let m = v
                    .master
                    .as_ref()
                    .map(|(h, p)| crate::topology::host_port(h, p))
                    .unwrap_or_else(|| "none".into());
                let text = format!(
                    "master {m}, {up}/{} replicas up, {} other Sentinels",
                    v.replicas.len(),
                    v.sentinels.len()
                );
                let ok = agreed.is_some() && up == state.nodes.len() - 1;
                (text, ok)
            }
            Err(e) => (e.message.clone(), false),
        };
        let reason = format!("pid {}, {seen}", s.pid);
        let check = if running && ok {
            Check::pass(s.name.clone(), reason)
        } else {
            Check::fail(s.name.clone(), reason)
        };
        let p = LabProcess {
            name: s.name.clone(),
            port: s.port,
            pid: s.pid,
            running,
            role: Some("sentinel".into()),
            link_status: Some(seen),
        };
        rows.push((p, check));
    }
    (agreed.map(|(_, p)| p), rows)
}

impl LabDetails {
    /// How to point redlab at the lab just started.
    fn usage(&self) -> Vec<String> {
        let (data, sentinels): (Vec<&LabProcess>, Vec<&LabProcess>) = self
            .processes
            .iter()
            .partition(|p| p.role.as_deref() != Some("sentinel"));
        let Some(m) = data.first() else {
            return Vec::new();
        };
        let ports: Vec<u16> = data.iter().map(|p| p.port).collect();
        let mut out = Vec::new();
        if self.cluster.is_some() {
            let seed = if m.port == lab::cluster::DEFAULT_CLUSTER_BASE_PORT {
                String::new()
            } else {
                format!(" --master redis://127.0.0.1:{}", m.port)
            };
            out.push(format!(
                "use it (every shard is discovered from one node): `redlab --cluster{seed} check`"
            ));
            return out;
        }
        if ports == [6379, 6380, 6381, 6382] {
            out.push("use it (the default topology is this lab): `redlab replicate-check`".into());
        } else {
            let reps: Vec<String> = data[1..]
                .iter()
                .map(|p| format!("redis://127.0.0.1:{}", p.port))
                .collect();
            out.push(format!(
                "use it: `redlab --master redis://127.0.0.1:{} --replica {} replicate-check`",
                m.port,
                reps.join(" --replica ")
            ));
        }
        if let Some(s) = sentinels.first() {
            out.push(format!(
                "through Sentinel (follows a failover): `redlab --sentinel redis://127.0.0.1:{} \
                 --master-name {} replicate-check`",
                s.port,
                crate::discover::sentinel::DEFAULT_MASTER_NAME
            ));
            out.push("break it on purpose: `redlab drill --fault kill-master`".into());
        }
        out
    }
}

impl LabDetails {
    /// What `down` did to each process: it stopped it, or found it gone
    /// (a column "running: yes" would read as if it still ran).
    fn stopped(&self) -> Section {
        let mut s = Section::new("Lab processes", &["node", "port", "pid", "state"]);
        for p in &self.processes {
            s.row(vec![
                p.name.clone(),
                p.port.to_string(),
                p.pid.to_string(),
                if p.running {
                    "stopped"
                } else {
                    "was not running"
                }
                .into(),
            ]);
        }
        s.notes
            .push(format!("state: {} (removed)", self.state_dir.display()));
        s
    }
}

impl Details for LabDetails {
    fn sections(&self) -> Vec<Section> {
        if self.action == Did::Down {
            return vec![self.stopped()];
        }
        let mut s = Section::new(
            "Lab processes",
            &["node", "port", "pid", "running", "role", "link / sees"],
        );
        for p in &self.processes {
            s.row(vec![
                p.name.clone(),
                p.port.to_string(),
                p.pid.to_string(),
                if p.running { "yes" } else { "no" }.into(),
                p.role
                    .as_deref()
                    .map(|r| crate::report::role_word(r).to_string())
                    .unwrap_or_else(|| "-".into()),
                p.link_status.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        s.notes.push(format!("state: {}", self.state_dir.display()));
        if self.action == Did::Up {
            s.notes.extend(self.usage());
        }
        vec![s]
    }
}
