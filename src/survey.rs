//! One concurrent pass over every node: connect, INFO, and the facts every
//! report shows.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::client::{Conn, Info, NodeError};
use crate::report::NodeInfo;
use crate::topology::{Node, Role, Topology};

pub struct NodeState {
    pub node: Node,
    pub conn: Option<Conn>,
    pub info: Option<Info>,
    pub error: Option<NodeError>,
    pub persistence: Option<String>,
}

impl NodeState {
    pub fn to_info(&self) -> NodeInfo {
        let i = self.info.as_ref();
        NodeInfo {
            name: self.node.name.clone(),
            address: self.node.addr(),
            expected_role: match self.node.role {
                Role::Master => "master".into(),
                Role::Replica => "replica".into(),
            },
            role: i.map(|i| i.role().to_string()),
            redis_version: i.map(|i| i.version().to_string()),
            maxmemory_bytes: i.and_then(|i| i.u64("maxmemory")),
            maxmemory_policy: i.and_then(|i| i.get("maxmemory_policy").map(String::from)),
            persistence: self.persistence.clone(),
            error: self.error.as_ref().map(|e| e.message.clone()),
        }
    }
}

async fn visit(node: Node, timeout: Duration) -> NodeState {
    let mut st = NodeState {
        node,
        conn: None,
        info: None,
        error: None,
        persistence: None,
    };
    let mut conn = match Conn::connect(&st.node, timeout).await {
        Ok(c) => c,
        Err(e) => {
            st.error = Some(e);
            return st;
        }
    };
    // CONFIG may be denied to an ACL user: persistence is then unknown.
    match conn.info_and_config("default", "save").await {
        Ok((info, save)) => {
            st.persistence = save.map(|s| persistence(&s, info.flag("aof_enabled")));
            st.info = Some(info);
            st.conn = Some(conn);
        }
        Err(e) => st.error = Some(e),
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
pub async fn survey(topo: &Topology, timeout: Duration) -> Vec<NodeState> {
    survey_reusing(topo, timeout, None).await
}

/// `survey`, taking the master's state from an earlier visit when there is
/// one (discovery has just connected to it and read its INFO).
pub async fn survey_reusing(
    topo: &Topology,
    timeout: Duration,
    master: Option<NodeState>,
) -> Vec<NodeState> {
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
    out
}

/// redlab cannot run without a reachable master that is a master. Checked
/// before any write.
pub fn require_master(master: &NodeState) -> Result<()> {
    if let Some(e) = &master.error {
        bail!("{e}");
    }
    let info = master.info.as_ref().expect("no error means INFO was read");
    if !info.is_master() {
        let follows = info
            .follows()
            .map(|(h, p)| format!("{h}:{p}"))
            .unwrap_or_else(|| "an unknown master".into());
        bail!(
            "{}: is a replica of {follows}, not a master; refused before any write. \
             Give the real master with --master",
            master.node.label()
        );
    }
    Ok(())
}

/// Fill the replica list from the master's own INFO replication. Returns the
/// master's visit, for the survey that follows to reuse (one connection and
/// one INFO fewer).
pub async fn discover(topo: &mut Topology, timeout: Duration) -> Result<NodeState> {
    let master = visit(topo.master.clone(), timeout).await;
    if let Some(e) = &master.error {
        bail!("{e}");
    }
    let info = master.info.as_ref().expect("no error means INFO was read");
    topo.replicas = info
        .replicas()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            topo.master
                .sibling(&format!("replica{}", i + 1), &l.ip, l.port)
        })
        .collect();
    Ok(master)
}
