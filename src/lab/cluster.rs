//! A local Redis Cluster from `redis-server`: N shards of a master and M
//! replicas on loopback, joined the way `redis-cli --cluster create` joins
//! them (a distinct config epoch per master, CLUSTER MEET, ADDSLOTSRANGE,
//! CLUSTER REPLICATE), and ready only when `cluster_state:ok` on every
//! node, every node agrees on the slot map, and every replica's stream
//! flows (a write on each master acknowledged by its replicas).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{
    conf_quote, is_port_clash, pick_ports, port_in_use, LabState, ProcessState, Server,
    CLUSTER_CONF,
};
use crate::client::Conn;
use crate::discover::cluster::{parse_nodes, Member};
use crate::topology::slot::{self, SLOTS};
use crate::topology::{Node, Role};

/// The cluster lab's first port when none is given (Redis's own tutorial's).
pub const DEFAULT_CLUSTER_BASE_PORT: u16 = 7000;
/// A bus port is its node's port plus this (Redis's rule), when ports are given.
const BUS_OFFSET: u16 = 10000;
/// How long the cluster may take to form.
const FORM_BOUND: Duration = Duration::from_secs(30);

/// What a cluster lab is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub shards: usize,
    /// Replicas per shard.
    pub replicas: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterLabOptions {
    pub shards: usize,
    /// Replicas per shard.
    pub replicas: usize,
    /// Consecutive ports from here (bus ports 10000 above); None: free ports.
    pub base_port: Option<u16>,
    /// Data, config and logs; None: a temporary dir removed with the lab.
    pub dir: Option<PathBuf>,
    /// requirepass and masterauth on every node.
    pub password: Option<String>,
    /// Extra arguments for every node.
    pub args: Vec<String>,
}

/// One shard's processes.
#[derive(Debug)]
pub struct LabShard {
    pub master: Server,
    pub replicas: Vec<Server>,
}

/// A cluster redlab started. Dropping it stops every node (unless detached).
#[derive(Debug)]
pub struct ClusterLab {
    pub shards: Vec<LabShard>,
    pub dir: PathBuf,
    password: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

impl ClusterLab {
    pub async fn start(opts: ClusterLabOptions) -> Result<ClusterLab> {
        super::redis_server()?;
        if opts.shards == 0 {
            bail!("a cluster needs at least one shard (--shards 1 or more)");
        }
        if opts.shards > SLOTS as usize {
            bail!("{} shards is more than the {SLOTS} hash slots", opts.shards);
        }
        let (dir, temp) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("redlab-cluster-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let n = opts.shards * (1 + opts.replicas);
        let attempts = if opts.base_port.is_some() { 1 } else { 3 };
        let mut attempt = 0;
        let shards = loop {
            attempt += 1;
            let (ports, bus) = ports(opts.base_port, n)?;
            match spawn_all(&dir, &ports, &bus, &opts) {
                Err(e) if attempt < attempts && is_port_clash(&e) => continue,
                other => break other?,
            }
        };
        let lab = ClusterLab {
            shards,
            dir,
            password: opts.password.clone(),
            _temp: temp,
        };
        lab.form().await?;
        Ok(lab)
    }

    /// Every process, shard by shard, master first.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.shards
            .iter()
            .flat_map(|s| std::iter::once(&s.master).chain(s.replicas.iter()))
    }

    /// The node to discover the cluster from: the first master.
    pub fn seed(&self) -> Node {
        self.node(&self.shards[0].master)
    }

    /// A lab process as a node redlab connects to.
    pub fn node(&self, s: &Server) -> Node {
        let mut n = Node::parse(
            &s.name,
            Role::Master,
            &format!("redis://127.0.0.1:{}", s.port),
        )
        .expect("a loopback URL parses")
        .with_credentials(None, self.password.as_deref());
        n.cluster = true;
        n
    }

    pub fn shape(&self) -> Shape {
        Shape {
            shards: self.shards.len(),
            replicas: self.shards[0].replicas.len(),
        }
    }

    /// Leave the processes running; returns what `lab down` needs.
    pub fn detach(mut self) -> LabState {
        let state = self.state();
        for s in &mut self.shards {
            s.master.detach();
            s.replicas.iter_mut().for_each(Server::detach);
        }
        state
    }

    pub fn state(&self) -> LabState {
        LabState {
            dir: self.dir.clone(),
            nodes: self.servers().map(ProcessState::of).collect(),
            sentinels: Vec::new(),
            timeouts: None,
            backlog_bytes: None,
            cluster: Some(self.shape()),
        }
    }

    async fn conns(&self, timeout: Duration) -> Result<Vec<Conn>> {
        let mut out = Vec::new();
        for s in self.servers() {
            out.push(Conn::connect(&self.node(s), timeout).await?);
        }
        Ok(out)
    }

    /// Join the nodes into one cluster and wait until it is ready.
    async fn form(&self) -> Result<()> {
        let timeout = Duration::from_secs(3);
        let mut conns = self.conns(timeout).await?;
        let per = 1 + self.shards[0].replicas.len();
        let mut ids = Vec::new();
        for c in &mut conns {
            ids.push(c.query::<String>(redis::cmd("CLUSTER").arg("MYID")).await?);
        }
        // A distinct epoch per master before they meet: no collisions to
        // resolve, so every node soon reports the same epochs.
        for (i, c) in conns.iter_mut().step_by(per).enumerate() {
            c.query::<()>(redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(i + 1))
                .await?;
        }
        let ports: Vec<(u16, u16)> = self.servers().map(|s| (s.port, bus_port_of(s))).collect();
        for (port, bus) in &ports[1..] {
            conns[0]
                .query::<()>(
                    redis::cmd("CLUSTER")
                        .arg("MEET")
                        .arg("127.0.0.1")
                        .arg(port)
                        .arg(bus),
                )
                .await?;
        }
        let shards = self.shards.len();
        for (i, c) in conns.iter_mut().step_by(per).enumerate() {
            let (a, b) = slot_range(i, shards);
            // ADDSLOTSRANGE is Redis 7.0+; ADDSLOTS takes every slot by name.
            let mut add = redis::cmd("CLUSTER");
            if super::binary::has_cluster_port() {
                add.arg("ADDSLOTSRANGE").arg(a).arg(b);
            } else {
                add.arg("ADDSLOTS").arg((a..=b).collect::<Vec<u16>>());
            }
            c.query::<()>(&add).await?;
        }
        let deadline = Instant::now() + FORM_BOUND;
        for (i, c) in conns.iter_mut().enumerate() {
            if i % per == 0 {
                continue;
            }
            let master = &ids[i - i % per];
            // A replica can only follow a master it has met.
            wait_for(deadline, "every replica to learn its master", || {
                let mut c = c.clone();
                let master = master.clone();
                async move {
                    let text: String = c.query(redis::cmd("CLUSTER").arg("NODES")).await?;
                    let known = parse_nodes(&text)
                        .iter()
                        .any(|m| m.id == master && !m.flags.iter().any(|f| f == "handshake"));
                    Ok(known.then_some(()).ok_or_else(|| "not yet".to_string()))
                }
            })
            .await?;
            c.query::<()>(redis::cmd("CLUSTER").arg("REPLICATE").arg(master))
                .await?;
        }
        let n = conns.len();
        wait_for(deadline, "the cluster to be ready", || {
            let conns = conns.clone();
            async move { ready(conns, n).await }
        })
        .await?;
        self.wait_streams(timeout, deadline).await
    }

    /// A write on each master acknowledged by each of its replicas: the
    /// replication streams flow (INFO says online before the first ACK).
    async fn wait_streams(&self, timeout: Duration, deadline: Instant) -> Result<()> {
        for (i, s) in self.shards.iter().enumerate() {
            if s.replicas.is_empty() {
                continue;
            }
            let mut c = Conn::connect(&self.node(&s.master), timeout).await?;
            let (a, _) = slot_range(i, self.shards.len());
            let key = format!(
                "{}lab:{{{}}}:sync",
                crate::namespace::root(),
                slot::tag_for_slot(a)
            );
            loop {
                let mut p = redis::pipe();
                p.cmd("SET")
                    .arg(&key)
                    .arg("1")
                    .arg("PX")
                    .arg(10_000)
                    .ignore();
                p.cmd("DEL").arg(&key).ignore();
                c.pipe::<()>(&p).await?;
                let acked: u64 = c
                    .query_for(
                        redis::cmd("WAIT").arg(s.replicas.len()).arg(500),
                        Duration::from_millis(500),
                    )
                    .await?;
                if acked as usize >= s.replicas.len() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{}: {acked} of {} replicas acknowledged a write within {FORM_BOUND:?}",
                        s.master.name,
                        s.replicas.len()
                    );
                }
            }
        }
        Ok(())
    }
}

/// Shard `i` of `n` gets an even share of the slots, in order.
pub fn slot_range(i: usize, n: usize) -> (u16, u16) {
    let per = SLOTS as usize;
    ((i * per / n) as u16, ((i + 1) * per / n - 1) as u16)
}

fn bus_port_of(s: &Server) -> u16 {
    s.argv
        .iter()
        .position(|a| a == "--cluster-port")
        .and_then(|i| s.argv.get(i + 1))
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(s.port.wrapping_add(BUS_OFFSET))
}

/// Data ports and cluster bus ports: from `base`, or a free run of them
/// below the kernel's ephemeral range. Outgoing connections (a benchmark's,
/// say) take their local ports from that range and may hold any port of it
/// at any moment, so a lab's ports are chosen outside it. A bus port is
/// 10000 above its data port unless that falls in the range: then the bus
/// ports follow the data ports (`cluster-port`). A server without
/// `cluster-port` (Redis before 7.0) always uses +10000: a `--base-port` that
/// puts a bus port in the range is refused, saying which base ports are safe.
fn ports(base: Option<u16>, n: usize) -> Result<(Vec<u16>, Vec<u16>)> {
    let fixed_bus = !super::binary::has_cluster_port();
    let (lo, hi) = super::binary::ephemeral_range();
    let ephemeral = |p: u16| (lo..=hi).contains(&p);
    let run = |from: u16| (from..from.saturating_add(n as u16)).collect::<Vec<u16>>();
    let b = match base {
        Some(b) => b,
        None => {
            let gap = if fixed_bus { BUS_OFFSET } else { n as u16 };
            let b = quiet_base(n, gap, lo)?;
            return Ok((run(b), run(b + gap)));
        }
    };
    let data = pick_ports(Some(b), n)?;
    let above = b.checked_add(BUS_OFFSET);
    let bus_base = match above {
        Some(a) if fixed_bus => {
            if let Some(p) = run(a).into_iter().find(|p| ephemeral(*p)) {
                anyhow::bail!(
                    "--base-port {b}: this server has no cluster-port (Redis before 7.0), so each cluster bus port is its data port + 10000, and {p} lies in the kernel's ephemeral range {lo}-{hi} (net.ipv4.ip_local_port_range), where any outgoing connection may hold it: pick a --base-port from 1024 to {}, or leave it out",
                    lo.saturating_sub(BUS_OFFSET).saturating_sub(n as u16)
                );
            }
            a
        }
        Some(a) if !run(a).into_iter().any(ephemeral) => a,
        _ if fixed_bus => {
            anyhow::bail!("--base-port {b}: the cluster bus ports (10000 above) pass 65535")
        }
        _ => u16::try_from(b as usize + n)
            .map_err(|_| anyhow::anyhow!("--base-port {b} leaves no room for {n} bus ports"))?,
    };
    Ok((data, pick_ports(Some(bus_base), n)?))
}

/// A base port for `n` data ports and `n` bus ports `gap` above them, all
/// free now and all below `lo`, the start of the ephemeral range.
fn quiet_base(n: usize, gap: u16, lo: u16) -> Result<u16> {
    let span = gap as usize + n;
    let floor = 10000usize;
    let top = (lo as usize).saturating_sub(span);
    if top <= floor {
        bail!(
            "no room for a cluster lab's {} ports below the kernel's ephemeral range (from {lo}): give a --base-port",
            2 * n
        );
    }
    let free = |from: usize| (from..from + n).all(|p| !port_in_use(p as u16));
    let seed = std::process::id() as usize
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(0);
    let width = top - floor;
    (0..2000usize)
        .map(|i| floor + (seed.wrapping_mul(2654435761) + i * 7919) % width)
        .find(|&b| free(b) && free(b + gap as usize))
        .map(|b| b as u16)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no run of {} free ports below the kernel's ephemeral range (from {lo}): give a --base-port",
                2 * n
            )
        })
}

fn spawn_all(
    dir: &Path,
    ports: &[u16],
    bus: &[u16],
    opts: &ClusterLabOptions,
) -> Result<Vec<LabShard>> {
    let auth = match &opts.password {
        Some(p) => format!("\nrequirepass {0}\nmasterauth {0}\n", conf_quote(p)),
        None => String::new(),
    };
    let conf = format!("{CLUSTER_CONF}{auth}");
    let per = 1 + opts.replicas;
    let mut shards = Vec::new();
    for i in 0..opts.shards {
        let spawn = |j: usize, name: String| {
            let k = i * per + j;
            let mut args = Vec::new();
            if super::binary::has_cluster_port() {
                args.extend(["--cluster-port".to_string(), bus[k].to_string()]);
            }
            args.extend(opts.args.iter().cloned());
            Server::spawn(dir, &name, ports[k], &conf, &args)
        };
        let master = spawn(0, format!("shard{}.master", i + 1))?;
        let replicas = (1..per)
            .map(|j| spawn(j, format!("shard{}.replica{j}", i + 1)))
            .collect::<Result<Vec<_>>>()?;
        shards.push(LabShard { master, replicas });
    }
    for s in &mut shards {
        s.master.wait_ready(Duration::from_secs(10))?;
        for r in &mut s.replicas {
            r.wait_ready(Duration::from_secs(10))?;
        }
    }
    Ok(shards)
}

/// Poll `f` until it says Ok(Ok(())) or the deadline passes (then its last reason).
async fn wait_for<F, Fut>(deadline: Instant, what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<(), String>, crate::client::NodeError>>,
{
    loop {
        let why = match f().await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(why)) => why,
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("waited {FORM_BOUND:?} for {what}: {why}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every node: cluster_state ok, all `n` nodes known and none failing, the
/// same slot map; every replica's link up and not syncing.
async fn ready(conns: Vec<Conn>, n: usize) -> Result<Result<(), String>, crate::client::NodeError> {
    // Each node's view: the slot map, and every node's role, master and
    // config epoch (a node that was an empty master before REPLICATE may
    // still be seen as one, or at an epoch it bumped then, by some nodes).
    type View = (
        BTreeMap<(u16, u16), String>,
        BTreeMap<String, (bool, Option<String>, Option<u64>)>,
    );
    let mut maps: Vec<View> = Vec::new();
    for mut c in conns {
        let info: String = c.query(redis::cmd("CLUSTER").arg("INFO")).await?;
        if !info.contains("cluster_state:ok") {
            return Ok(Err(format!("{} says cluster_state is not ok", c.name())));
        }
        let members = parse_nodes(
            &c.query::<String>(redis::cmd("CLUSTER").arg("NODES"))
                .await?,
        );
        if members.len() != n || members.iter().any(unsettled) {
            return Ok(Err(format!(
                "{} does not know all {n} nodes settled yet",
                c.name()
            )));
        }
        let roles = members
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    (m.is_master(), m.master_id.clone(), m.config_epoch),
                )
            })
            .collect();
        maps.push((slot_map(&members), roles));
        let repl = c.info("replication").await?;
        if !repl.is_master() && (!repl.link_up() || repl.syncing()) {
            return Ok(Err(format!("{}: link to its master not up yet", c.name())));
        }
    }
    if maps.windows(2).any(|w| w[0] != w[1]) {
        return Ok(Err(
            "the nodes do not agree on the slot map, the replicas' masters and the config epochs yet"
                .into(),
        ));
    }
    Ok(Ok(()))
}

fn unsettled(m: &Member) -> bool {
    m.failure().is_some() || m.flags.iter().any(|f| f == "handshake" || f == "noaddr")
}

/// Slot range -> owner id, as one node sees it.
pub fn slot_map(members: &[Member]) -> BTreeMap<(u16, u16), String> {
    members
        .iter()
        .filter(|m| m.is_master())
        .flat_map(|m| m.slots.iter().map(move |r| (*r, m.id.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_split_evenly_and_completely() {
        assert_eq!(slot_range(0, 3), (0, 5460));
        assert_eq!(slot_range(1, 3), (5461, 10921));
        assert_eq!(slot_range(2, 3), (10922, 16383));
        assert_eq!(slot_range(0, 1), (0, 16383));
    }
}
