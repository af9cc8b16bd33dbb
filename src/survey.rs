//! One concurrent pass over every node: connect, INFO, and the facts every
//! report shows. `Survey::master` proves the master answered and is a
//! master; `Survey::validate` refuses topologies redlab would mis-test.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::client::{Conn, Info, NodeError};
use crate::report::NodeInfo;
use crate::serving::{self, NotServing, Serving};
use crate::topology::{Node, Topology};

#[derive(Clone)]
pub struct NodeState {
    pub node: Node,
    pub conn: Option<Conn>,
    pub info: Option<Info>,
    pub error: Option<NodeError>,
    pub persistence: Option<String>,
    /// For a Sentinel: the masters it monitors, `name at host:port`.
    pub sentinel_masters: Vec<String>,
    /// What CONFIG GET gave at the visit (`SURVEY_CONFIG`), read in the
    /// same round trip as INFO; a parameter denied or unknown is absent.
    pub config: BTreeMap<String, String>,
    /// How it serves its users (`serving::classify`); None where it could
    /// not be told (unreachable, not Redis).
    pub serving: Option<Serving>,
}

impl NodeState {
    pub fn to_info(&self) -> NodeInfo {
        let i = self.info.as_ref();
        NodeInfo {
            name: self.node.name.clone(),
            address: self.node.addr(),
            expected_role: self.node.role,
            role: i.map(|i| i.role().to_string()),
            redis_version: i.map(|i| i.version().to_string()),
            server: i.map(|i| crate::client::Server::of(i).to_string()),
            maxmemory_bytes: i.and_then(|i| i.u64("maxmemory")),
            maxmemory_policy: i.and_then(|i| i.get("maxmemory_policy").map(String::from)),
            persistence: self.persistence.clone(),
            error: self.error.as_ref().map(|e| e.message.clone()),
        }
    }

    /// Why it does not serve, where it does not.
    pub fn not_serving(&self) -> Option<NotServing> {
        self.serving
            .clone()
            .filter(|s| *s != Serving::Normally)
            .map(|s| NotServing::new(&self.node, s))
    }

    fn is_sentinel(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.get("redis_mode") == Some("sentinel"))
    }

    /// INFO says `cluster_enabled:1`.
    pub fn is_cluster(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.flag("cluster_enabled"))
    }
}

/// The master, proven reachable and a master.
#[derive(Clone)]
pub struct Master<'a> {
    pub state: &'a NodeState,
    pub info: &'a Info,
    /// Its connection (clones share it).
    pub conn: Conn,
}

impl Master<'_> {
    pub fn node(&self) -> &Node {
        &self.state.node
    }
}

/// Every node's state, the master first, then the replicas in topology order.
pub struct Survey {
    nodes: Vec<NodeState>,
}

impl Survey {
    pub fn new(nodes: Vec<NodeState>) -> Survey {
        assert!(!nodes.is_empty(), "a survey has the master at least");
        Survey { nodes }
    }

    pub fn all(&self) -> &[NodeState] {
        &self.nodes
    }

    pub fn master_state(&self) -> &NodeState {
        &self.nodes[0]
    }

    pub fn replicas(&self) -> &[NodeState] {
        &self.nodes[1..]
    }

    /// `<node>.serving`, failed, for every node that does not serve its
    /// users (`NodeState::not_serving`).
    pub fn serving_checks(&self) -> Vec<crate::report::Check> {
        self.all()
            .iter()
            .filter_map(|st| st.not_serving().map(|n| n.check()))
            .collect()
    }

    pub fn infos(&self) -> Vec<NodeInfo> {
        self.nodes.iter().map(NodeState::to_info).collect()
    }

    /// The master, or why redlab cannot use it. Checked before any write.
    pub fn master(&self) -> Result<Master<'_>> {
        let st = self.master_state();
        // Nothing can be read from a master that is loading or busy.
        if let Some(n) = st.not_serving().filter(|n| !n.state.reads()) {
            return Err(n.into());
        }
        if let Some(e) = &st.error {
            bail!("{e}");
        }
        let (Some(info), Some(conn)) = (&st.info, &st.conn) else {
            bail!("{}: no answer to INFO", st.node.label());
        };
        if !info.has_section("replication") {
            // Without it the role reads `unknown`: not a replica, not a master.
            bail!(
                "{}: {}: redlab cannot tell whether it is a master",
                st.node.label(),
                crate::client::hidden_message(&["replication".into()])
            );
        }
        if !info.is_master() {
            let follows = info
                .follows()
                .map(|(h, p)| crate::topology::host_port(&h, p))
                .unwrap_or_else(|| "an unknown master".into());
            bail!(
                "{}: is a replica of {follows}, not a master; refused before any write. \
                 Give the real master with --master",
                st.node.label()
            );
        }
        Ok(Master {
            state: st,
            info,
            conn: conn.clone(),
        })
    }

    /// Refuse, before anything runs, what redlab would mis-test: a Sentinel
    /// given as a node, a cluster node in a replication topology (or the
    /// reverse), or one server given twice under two names (same run id).
    pub fn validate(&self) -> Result<()> {
        for st in &self.nodes {
            refuse_kind(st)?;
        }
        let mut seen: BTreeMap<&str, &Node> = BTreeMap::new();
        for st in &self.nodes {
            let Some(id) = st.info.as_ref().and_then(|i| i.get("run_id")) else {
                continue;
            };
            if let Some(first) = seen.insert(id, &st.node) {
                bail!(
                    "{} and {} are the same server (run id {}): give each node once",
                    first.label(),
                    st.node.label(),
                    &id[..id.len().min(8)]
                );
            }
        }
        Ok(())
    }
}

fn refuse_kind(st: &NodeState) -> Result<()> {
    if st.is_sentinel() {
        let monitors = if st.sentinel_masters.is_empty() {
            "it monitors no master".to_string()
        } else {
            format!("it monitors {}", st.sentinel_masters.join(", "))
        };
        let hint = st
            .sentinel_masters
            .first()
            .and_then(|m| m.rsplit(" at ").next())
            .map(|a| format!(": give the master with --master redis://{a}"))
            .unwrap_or_default();
        bail!(
            "{}: is a Redis Sentinel, not a data node ({monitors}){hint}",
            st.node.label()
        );
    }
    if st.is_cluster() && !st.node.cluster {
        bail!(
            "{}: is a Redis Cluster node (cluster_enabled:1), given as a node of a replication \
             topology; nothing was written. Give one cluster node alone (--master URL, or --cluster): \
             redlab discovers every shard from it",
            st.node.label()
        );
    }
    if st.node.cluster && st.info.is_some() && !st.is_cluster() {
        bail!(
            "{}: was listed by the cluster but answers cluster_enabled:0 (restarted without \
             cluster mode?); nothing was written",
            st.node.label()
        );
    }
    Ok(())
}

/// The parameters every visit reads with INFO, in its one round trip:
/// persistence for the report, and what perf checks before it writes
/// (connections left, the replicas' output-buffer limit).
pub const SURVEY_CONFIG: &[&str] = &["save", "maxclients", "client-output-buffer-limit"];

async fn visit(node: Node, timeout: Duration) -> NodeState {
    let mut st = NodeState {
        node,
        conn: None,
        info: None,
        error: None,
        persistence: None,
        sentinel_masters: Vec::new(),
        config: BTreeMap::new(),
        serving: None,
    };
    let mut conn = match Conn::connect(&st.node, timeout).await {
        Ok(c) => c,
        Err(e) => {
            st.serving = serving::from_error(&e);
            st.error = Some(e);
            return st;
        }
    };
    // CONFIG may be denied to an ACL user: persistence is then unknown.
    match conn.info_and_configs("default", SURVEY_CONFIG).await {
        Ok((info, config)) => {
            let save = config.get("save");
            st.persistence = save.map(|s| persistence(s, info.flag("aof_enabled")));
            st.config = config;
            if info.get("redis_mode") == Some("sentinel") {
                st.sentinel_masters = conn.sentinel_masters().await.unwrap_or_default();
            }
            let probe = serving::probe(&mut conn, &info).await;
            st.serving = Some(serving::classify(&info, conn.ping_refused(), probe));
            st.info = Some(info);
            st.conn = Some(conn);
        }
        Err(e) => {
            st.serving = serving::from_error(&e);
            st.error = Some(e);
        }
    }
    st
}

fn persistence(save: &str, aof: bool) -> String {
    match (!save.trim().is_empty(), aof) {
        (true, true) => "rdb+aof",
        (true, false) => "rdb",
        (false, true) => "aof",
        (false, false) => "none",
    }
    .to_string()
}

/// Visit every node at once; each result carries its own error.
pub async fn survey(topo: &Topology, timeout: Duration) -> Survey {
    survey_reusing(topo, timeout, None).await
}

/// `survey`, taking the master's state from an earlier visit when there is
/// one (discovery has just connected to it and read its INFO).
pub async fn survey_reusing(
    topo: &Topology,
    timeout: Duration,
    master: Option<NodeState>,
) -> Survey {
    let mut master = master.filter(|m| m.node.addr() == topo.master.addr());
    let tasks: Vec<_> = topo
        .nodes()
        .cloned()
        .enumerate()
        .map(|(i, n)| match master.take().filter(|_| i == 0) {
            Some(known) => tokio::spawn(async move { known }),
            None => tokio::spawn(visit(n, timeout)),
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("survey task does not panic"));
    }
    Survey::new(out)
}

/// Fill the replica list from the master's own INFO replication. Returns the
/// master's visit, for the survey that follows to reuse (one connection and
/// one INFO fewer). A cluster node is returned as it is, replicas untouched:
/// the caller discovers the cluster from it (`NodeState::is_cluster`).
/// A topology redlab refuses to test as found (exit 2), even where a
/// subcommand would otherwise report an unusable master itself (`check`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

pub async fn discover(topo: &mut Topology, timeout: Duration) -> Result<NodeState> {
    let visit = visit(topo.master.clone(), timeout);
    let master = crate::timings::timed("discovery: connect, INFO, CONFIG", visit).await;
    if let Some(n) = master.not_serving().filter(|n| !n.state.reads()) {
        return Err(n.into());
    }
    if let Some(e) = &master.error {
        bail!("{e}");
    }
    if master.is_cluster() {
        return Ok(master);
    }
    refuse_kind(&master)?;
    let Some(info) = master.info.as_ref() else {
        bail!("{}: no answer to INFO", master.node.label());
    };
    let lines = info.replicas();
    for (i, a) in lines.iter().enumerate() {
        if lines[i + 1..]
            .iter()
            .any(|b| b.port == a.port && b.ip == a.ip)
        {
            let at = master.node.sibling("replica", &a.ip, a.port).addr();
            return Err(Refusal(format!(
                "{}: the master lists {} replicas at one address, {at}: redlab cannot tell \
                 them apart; give each replica its own replica-announce-ip/replica-announce-port \
                 (behind NAT or Docker they announce what they are told)",
                master.node.label(),
                lines
                    .iter()
                    .filter(|l| l.ip == a.ip && l.port == a.port)
                    .count()
            ))
            .into());
        }
    }
    topo.replicas = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            topo.master
                .sibling(&format!("replica{}", i + 1), &l.ip, l.port)
        })
        .collect();
    if !topo.replicas.is_empty() {
        let chains = discover_chains(topo, timeout);
        crate::timings::timed("discovery: chained replicas", chains).await;
    }
    Ok(master)
}

/// How deep a chain discovery follows (a cross-datacenter chain is 2 or 3).
const CHAIN_DEPTH: usize = 8;

/// A replica's own replicas are part of the topology: each replica's INFO
/// replication lists the replicas chained behind it, added (named after the
/// master's own, `via` their parent) level by level. A replica that does not
/// answer here is left to the survey to report.
async fn discover_chains(topo: &mut Topology, timeout: Duration) {
    let mut level: Vec<Node> = topo.replicas.clone();
    for _ in 0..CHAIN_DEPTH {
        if level.is_empty() || topo.replicas.len() >= crate::topology::MAX_REPLICAS {
            return;
        }
        let found = futures_util::future::join_all(level.iter().map(|n| async move {
            let mut c = Conn::connect(n, timeout).await.ok()?;
            Some((n.name.clone(), c.info("replication").await.ok()?.replicas()))
        }))
        .await;
        let mut next = Vec::new();
        for (parent, lines) in found.into_iter().flatten() {
            for l in lines {
                let known = topo.master.port() == l.port
                    && crate::topology::same_host(topo.master.host(), &l.ip)
                    || topo.find_replica(&l.ip, l.port).is_some();
                if known {
                    continue;
                }
                let name = format!("replica{}", topo.replicas.len() + 1);
                let mut n = topo.master.sibling(&name, &l.ip, l.port);
                n.via = Some(parent.clone());
                topo.replicas.push(n.clone());
                next.push(n);
            }
        }
        level = next;
    }
}
