//! lab up|down|status: a local master + replicas that outlive the command.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::lab::{self, Lab, LabOptions, LabState};
use crate::report::{Check, Details, Report, Section};
use crate::run::Ctx;
use crate::survey::{survey, NodeState};

#[derive(Debug, Serialize)]
pub struct LabDetails {
    /// up, down or status.
    pub action: String,
    /// Where the lab keeps data, logs and its pid file.
    pub state_dir: PathBuf,
    /// The lab's processes.
    pub processes: Vec<LabProcess>,
}

#[derive(Debug, Serialize)]
pub struct LabProcess {
    pub name: String,
    pub port: u16,
    pub pid: u32,
    /// Whether the process runs (for `down`: whether it was running when stopped).
    pub running: bool,
    /// The role it reports, when it answers.
    pub role: Option<String>,
    /// `master_link_status` of a replica.
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
    Up { replicas: usize, base_port: u16 },
    Down,
    Status,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<LabDetails>> {
    let state_dir = cfg.state_dir.unwrap_or_else(lab::default_state_dir);
    match cfg.action {
        Action::Up {
            replicas,
            base_port,
        } => up(ctx, state_dir, replicas, base_port).await,
        Action::Down => down(ctx, state_dir).await,
        Action::Status => status(ctx, state_dir).await,
    }
}

async fn up(
    ctx: &Ctx,
    state_dir: PathBuf,
    replicas: usize,
    base_port: u16,
) -> Result<Report<LabDetails>> {
    if let Some(st) = lab::load_state(&state_dir)? {
        if st.nodes.iter().any(|n| n.is_ours()) {
            bail!(
                "a lab is already up (state in {}): `redlab lab status` shows it, `redlab lab down` stops it",
                state_dir.display()
            );
        }
    }
    let data = state_dir.join("data");
    lab::claim_dir(&data)?;
    let spinner = ctx
        .progress
        .spinner(format!("starting a master and {replicas} replicas"));
    let lab = Lab::start(LabOptions {
        replicas,
        base_port: Some(base_port),
        dir: Some(data),
        password: ctx.topology.master.password().map(String::from),
        ..LabOptions::default()
    })
    .await?;
    let topo = lab.topology();
    let state = lab.detach();
    lab::save_state(&state_dir, &state)?;
    spinner.finish();
    let states = survey(&topo, ctx.timeout).await;
    report(ctx, "up", state_dir, &state, states.all()).await
}

async fn down(ctx: &Ctx, state_dir: PathBuf) -> Result<Report<LabDetails>> {
    let Some(state) = lab::load_state(&state_dir)? else {
        bail!("no lab found in {}: nothing to stop", state_dir.display());
    };
    let mut processes = Vec::new();
    let mut checks = Vec::new();
    for n in &state.nodes {
        let was_running = n.stop()?;
        checks.push(Check::pass(
            n.name.clone(),
            if was_running {
                format!("stopped pid {}", n.pid)
            } else {
                format!("pid {} was not running", n.pid)
            },
        ));
        processes.push(LabProcess {
            name: n.name.clone(),
            port: n.port,
            pid: n.pid,
            running: was_running,
            role: None,
            link_status: None,
        });
    }
    std::fs::remove_file(lab::state_file(&state_dir))?;
    lab::release_dir(&state.dir)?;
    let details = LabDetails {
        action: "down".into(),
        state_dir,
        processes,
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
    report(ctx, "status", state_dir, &state, states.all()).await
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
    Ok(lab::loopback_topology(
        &nodes,
        ctx.topology.master.password(),
    ))
}

async fn report(
    ctx: &Ctx,
    action: &str,
    state_dir: PathBuf,
    state: &LabState,
    states: &[NodeState],
) -> Result<Report<LabDetails>> {
    let mut processes = Vec::new();
    let mut checks = Vec::new();
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
        let ok = running
            && info.is_some()
            && (n.name == "master" || p.link_status.as_deref() == Some("up"));
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
    let details = LabDetails {
        action: action.into(),
        state_dir,
        processes,
    };
    let infos = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new("lab", ctx.manifest(), infos, checks, details))
}

impl Details for LabDetails {
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Lab processes",
            &["node", "port", "pid", "running", "role", "link"],
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
        if self.action == "up" {
            if let Some(m) = self.processes.first() {
                let ports: Vec<u16> = self.processes.iter().map(|p| p.port).collect();
                if ports == [6379, 6380, 6381, 6382] {
                    s.notes.push(
                        "use it: redlab replicate-check (the default topology is this lab)".into(),
                    );
                } else {
                    let reps: Vec<String> = self.processes[1..]
                        .iter()
                        .map(|p| format!("redis://127.0.0.1:{}", p.port))
                        .collect();
                    s.notes.push(format!(
                        "use it: redlab --master redis://127.0.0.1:{} --replica {} replicate-check",
                        m.port,
                        reps.join(" --replica ")
                    ));
                }
            }
        }
        vec![s]
    }
}
