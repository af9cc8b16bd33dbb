//! Only on topologies redlab owns: the drill finds the lab whose processes
//! it may break (the --spawn lab, or `lab up`'s through its state file) and
//! refuses anything else before doing anything.

use std::time::Duration;

use anyhow::{bail, Result};

use super::Config;
use crate::client::Conn;
use crate::discover::sentinel::{self, SentinelSet};
use crate::lab::{self, Lab, SentinelTimeouts};
use crate::run::Ctx;
use crate::topology::{same_host, Node, Role};

/// What the drill works on, decided before anything is touched.
pub struct Plan {
    /// The lab's data nodes in lab order (`master` is the one started as
    /// master, whatever it is now), with credentials.
    pub nodes: Vec<Node>,
    pub sentinels: SentinelSet,
    pub timeouts: SentinelTimeouts,
    /// The master's `repl-backlog-size`, bytes.
    pub backlog_bytes: u64,
    /// Index in `nodes` of the master now.
    pub master: usize,
    /// Index in `nodes` of the node the fault hits.
    pub target: usize,
}

impl Plan {
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }
}

/// The `lab up` lab, when the drill was not given a --spawn one.
pub fn adopt(cfg: &Config, ctx: &Ctx) -> Result<Lab> {
    let dir = cfg.state_dir.clone().unwrap_or_else(lab::default_state_dir);
    let refuse = |why: String| -> anyhow::Error {
        anyhow::anyhow!(
            "drill injects faults only into servers redlab started, and {why}: run it on a lab \
             (`redlab lab up --sentinels 3`, then `redlab drill ...`) or on a throwaway one \
             (`redlab drill --spawn --sentinels 3 ...`); nothing was done"
        )
    };
    let Some(state) = lab::load_state(&dir)? else {
        return Err(refuse(format!("no lab was found in {}", dir.display())));
    };
    Lab::adopt(&state, ctx.topology.master.password().map(String::from))
        .map_err(|e| refuse(format!("{e:#}")))
}

/// Refuse what the drill must not or cannot do, then say what it will hit.
pub async fn plan(cfg: &Config, ctx: &Ctx, lab: &Lab) -> Result<Plan> {
    let topo = lab.topology();
    let nodes: Vec<Node> = topo.nodes().cloned().collect();
    if cfg.explicit_topology {
        refuse_foreign(ctx, &nodes, lab)?;
    }
    let (Some(sentinels), Some(timeouts)) = (topo.sentinel.clone(), lab.timeouts) else {
        bail!(
            "the lab has no Sentinels, so nothing would follow the master through the fault: \
             start it with --sentinels 3 (`redlab lab up --sentinels 3`, or --spawn --sentinels 3)"
        );
    };
    let views = sentinel::views(&sentinels, ctx.timeout).await;
    let (host, port) = sentinel::agreed_master(&sentinels, &views)?;
    let Some(master) = nodes
        .iter()
        .position(|n| n.port() == port && same_host(n.host(), &host))
    else {
        bail!(
            "the lab's Sentinels name {} as the master, which is not one of the lab's servers",
            crate::topology::host_port(&host, port)
        );
    };
    let mut conn = Conn::connect(&nodes[master], ctx.timeout).await?;
    let backlog_bytes = conn
        .config_get("repl-backlog-size")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    let replicas = nodes.len() - 1;
    if let Some(n) = cfg.ack.filter(|n| *n as usize > replicas) {
        bail!("--ack replicas:{n} but the lab has {replicas} replica(s): no write could ever be acknowledged");
    }
    let target = target(cfg, &nodes, master)?;
    Ok(Plan {
        nodes,
        sentinels,
        timeouts,
        backlog_bytes,
        master,
        target,
    })
}

fn target(cfg: &Config, nodes: &[Node], master: usize) -> Result<usize> {
    if cfg.fault.on_master() {
        if let Some(t) = cfg.target.as_deref().filter(|t| *t != nodes[master].name) {
            bail!(
                "--target {t}: {} hits the master, which is {} now",
                cfg.fault.as_str(),
                nodes[master].label()
            );
        }
        return Ok(master);
    }
    let replicas: Vec<usize> = (0..nodes.len()).filter(|i| *i != master).collect();
    let Some(first) = replicas.first() else {
        bail!(
            "{} needs a replica, and the lab has none",
            cfg.fault.as_str()
        );
    };
    match cfg.target.as_deref() {
        None => Ok(*first),
        Some(t) => replicas
            .iter()
            .copied()
            .find(|i| nodes[*i].name == t)
            .ok_or_else(|| {
                let names: Vec<&str> = replicas.iter().map(|i| nodes[*i].name.as_str()).collect();
                anyhow::anyhow!(
                    "--target {t} is not a replica of the lab now; its replicas are {}",
                    names.join(", ")
                )
            }),
    }
}

/// Every node the user named must be one of the lab's processes.
fn refuse_foreign(ctx: &Ctx, nodes: &[Node], lab: &Lab) -> Result<()> {
    let sentinel_ports: Vec<u16> = lab.sentinels.iter().map(|s| s.port).collect();
    let given = ctx.topology.nodes().map(|n| (n, false)).chain(
        ctx.topology
            .sentinel
            .iter()
            .flat_map(|s| s.nodes.iter().map(|n| (n, true))),
    );
    for (n, is_sentinel) in given {
        let ours = same_host(n.host(), "127.0.0.1")
            && if is_sentinel {
                sentinel_ports.contains(&n.port())
            } else {
                nodes.iter().any(|m| m.port() == n.port())
            };
        if !ours {
            bail!(
                "drill injects faults only into servers redlab started: {} is not one of the lab's \
                 processes (state: `redlab lab status`); nothing was done",
                n.addr()
            );
        }
    }
    Ok(())
}

/// A lab node under the role it has now.
pub fn as_role(n: &Node, role: Role) -> Node {
    let mut n = n.clone();
    n.role = role;
    n
}

/// How long one step may take against a node that is down or stopped.
pub const PROBE: Duration = Duration::from_millis(300);
