//! The topology as Sentinel sees it. `--sentinel URL` (repeatable) and
//! `--master-name NAME` resolve, in one step, to the current master
//! (`SENTINEL get-master-addr-by-name`) and the replicas Sentinel knows
//! (`SENTINEL replicas`), instead of a fixed address.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::client::{pairs, Conn, NodeError};
use crate::topology::{Node, ReplicaCount, Role, Topology, TopologySpec};
pub use crate::topology::{SentinelSet, DEFAULT_MASTER_NAME};

/// One Sentinel's answer: its view of the master and its `SENTINEL
/// CKQUORUM` reply (`Ok` with the +OK text, `Err` with the refusal).
#[derive(Debug, Clone)]
pub struct Observation {
    pub view: SentinelView,
    pub quorum: Result<String, String>,
}

/// What each Sentinel answered, in the order of the set's nodes.
pub type Observed = Vec<Result<Observation, NodeError>>;

/// What each Sentinel answered when the topology was resolved through them
/// (`resolve`), for the health checks to reuse: a silent Sentinel costs one
/// --timeout, not two. None for a lab's own Sentinels (or any set not
/// resolved through).
pub fn observed(set: &SentinelSet) -> Option<&Observed> {
    set.observed
        .as_ref()
        .and_then(|o| o.downcast_ref::<Observed>())
}

/// A replica (or a Sentinel) as one Sentinel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub ip: String,
    pub port: u16,
    /// Sentinel's flags: `slave`, `s_down`, `disconnected`, ...
    pub flags: String,
}

impl Peer {
    /// Sentinel considers it down or cannot reach it.
    pub fn is_down(&self) -> bool {
        flags_down(&self.flags)
    }
}

/// Sentinel's flags say down (`s_down`, `o_down`) or unreachable.
pub fn flags_down(flags: &str) -> bool {
    ["s_down", "o_down", "disconnected"]
        .iter()
        .any(|f| flags.split(',').any(|g| g == *f))
}

/// What one Sentinel says about one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelView {
    /// `get-master-addr-by-name`: None when it knows no master by that name.
    pub master: Option<(String, u16)>,
    /// Its flags for the master (`master`, `s_down`, `o_down`, ...).
    pub master_flags: String,
    pub replicas: Vec<Peer>,
    /// The other Sentinels it has discovered.
    pub sentinels: Vec<Peer>,
}

/// The current master's address as this Sentinel says, in one round trip.
pub async fn master_addr(conn: &mut Conn, name: &str) -> Result<Option<(String, u16)>, NodeError> {
    let v: redis::Value = conn
        .query(
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(name),
        )
        .await?;
    Ok(addr_of(&v))
}

fn addr_of(v: &redis::Value) -> Option<(String, u16)> {
    let items: Vec<String> = redis::from_redis_value(v.clone()).ok()?;
    match items.as_slice() {
        [ip, port] => Some((ip.clone(), port.parse().ok()?)),
        _ => None,
    }
}

/// Master, replicas and peers as one Sentinel sees them (one pipeline).
pub async fn view(node: &Node, name: &str, timeout: Duration) -> Result<SentinelView, NodeError> {
    let mut conn = Conn::connect(node, timeout).await?;
    view_on(&mut conn, name).await
}

pub async fn view_on(conn: &mut Conn, name: &str) -> Result<SentinelView, NodeError> {
    let master = master_addr(conn, name).await?;
    if master.is_none() {
        return Ok(SentinelView {
            master: None,
            master_flags: String::new(),
            replicas: Vec::new(),
            sentinels: Vec::new(),
        });
    }
    let about: redis::Value = conn
        .query(redis::cmd("SENTINEL").arg("master").arg(name))
        .await?;
    let master_flags = pairs(&about)
        .into_iter()
        .find(|(k, _)| k == "flags")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let replicas: redis::Value = conn
        .query(redis::cmd("SENTINEL").arg("replicas").arg(name))
        .await?;
    let sentinels: redis::Value = conn
        .query(redis::cmd("SENTINEL").arg("sentinels").arg(name))
        .await?;
    Ok(SentinelView {
        master,
        master_flags,
        replicas: peers(&replicas),
        sentinels: peers(&sentinels),
    })
}

fn peers(v: &redis::Value) -> Vec<Peer> {
    let items = match v {
        redis::Value::Array(items) | redis::Value::Set(items) => items.as_slice(),
        _ => &[],
    };
    let mut out: Vec<Peer> = items
        .iter()
        .filter_map(|entry| {
            let kv: std::collections::BTreeMap<String, String> = pairs(entry).into_iter().collect();
            Some(Peer {
                ip: kv.get("ip")?.clone(),
                port: kv.get("port")?.parse().ok()?,
                flags: kv.get("flags").cloned().unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
    out
}

/// Every Sentinel's view, each bounded on its own.
pub async fn views(set: &SentinelSet, timeout: Duration) -> Vec<Result<SentinelView, NodeError>> {
    let tasks: Vec<_> = set
        .nodes
        .iter()
        .cloned()
        .map(|n| {
            let name = set.master_name.clone();
            tokio::spawn(async move { view(&n, &name, timeout).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("a Sentinel query does not panic"));
    }
    out
}

/// `SENTINEL CKQUORUM name`: whether this Sentinel can reach the quorum and
/// the majority needed to authorize a failover. `Err` holds the refusal
/// (`NOQUORUM ...`, or no master by that name); a lost or silent Sentinel
/// is the outer error.
pub async fn ckquorum(conn: &mut Conn, name: &str) -> Result<Result<String, String>, NodeError> {
    let mut p = redis::pipe();
    p.ignore_errors();
    p.cmd("SENTINEL").arg("CKQUORUM").arg(name);
    let mut v: Vec<redis::Value> = conn.pipe(&p).await?;
    Ok(match v.pop() {
        Some(redis::Value::ServerError(e)) => Err(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_string(),
        }),
        Some(redis::Value::SimpleString(s)) => Ok(s),
        Some(redis::Value::Okay) => Ok("OK".into()),
        Some(other) => {
            Ok(String::from_utf8_lossy(crate::client::bytes(&other).unwrap_or(b"?")).into_owned())
        }
        None => Err("no reply".into()),
    })
}

/// Every Sentinel's view and quorum check, each bounded on its own (one
/// connection each; a silent Sentinel fails within the timeout).
pub async fn observe(set: &SentinelSet, timeout: Duration) -> Vec<Result<Observation, NodeError>> {
    let tasks: Vec<_> = set
        .nodes
        .iter()
        .cloned()
        .map(|n| {
            let name = set.master_name.clone();
            tokio::spawn(async move {
                let mut conn = Conn::connect(&n, timeout).await?;
                let view = view_on(&mut conn, &name).await?;
                let quorum = ckquorum(&mut conn, &name).await?;
                Ok(Observation { view, quorum })
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("a Sentinel query does not panic"));
    }
    out
}

/// The master to test: the one most answering Sentinels name (the first
/// Sentinel's on a tie). Sentinels that disagree do not stop the run: the
/// health checks fail on it, naming who says what (`cmd::replicate_check::
/// sentinels`). Err when no Sentinel names a master at all.
pub fn chosen_master(
    set: &SentinelSet,
    views: &[Result<SentinelView, NodeError>],
) -> Result<(String, u16)> {
    let mut tally: Vec<((String, u16), usize)> = Vec::new();
    for m in views.iter().flatten().filter_map(|v| v.master.clone()) {
        match tally.iter_mut().find(|(n, _)| *n == m) {
            Some((_, c)) => *c += 1,
            None => tally.push((m, 1)),
        }
    }
    let most = tally.iter().map(|(_, c)| *c).max().unwrap_or(0);
    match tally.into_iter().find(|(_, c)| *c == most) {
        Some((m, _)) => Ok(m),
        // The error that says why none could.
        None => agreed_master(set, views),
    }
}

/// The master the answering Sentinels agree on, or why there is none.
pub fn agreed_master(
    set: &SentinelSet,
    views: &[Result<SentinelView, NodeError>],
) -> Result<(String, u16)> {
    let name = &set.master_name;
    let mut errors = Vec::new();
    let mut said: Vec<(&str, (String, u16))> = Vec::new();
    for (node, v) in set.nodes.iter().zip(views) {
        match v {
            Ok(SentinelView {
                master: Some(m), ..
            }) => said.push((&node.name, m.clone())),
            Ok(_) => errors.push(format!("{} knows no master named '{name}'", node.label())),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let Some((_, first)) = said.first() else {
        bail!(
            "no Sentinel could name the master '{name}': {} (the lab's Sentinels call it '{}'; \
             give --master-name for your own)",
            errors.join("; "),
            DEFAULT_MASTER_NAME
        );
    };
    if said.iter().any(|(_, m)| m != first) {
        let each: Vec<String> = said
            .iter()
            .map(|(n, (h, p))| format!("{n} says {}", crate::topology::host_port(h, p)))
            .collect();
        bail!(
            "the Sentinels disagree on the master of '{name}' ({}): a failover may be in \
             progress; try again in a few seconds",
            each.join(", ")
        );
    }
    Ok(first.clone())
}

/// `--sentinel` + `--master-name`: the current master and the replicas
/// Sentinel lists, in one step. The expected replica count is what the user
/// said (`--expect-replicas`, asserted) or else Sentinel's list, which keeps
/// a replica that went down (unlike the master's INFO): it is `Given`.
pub async fn resolve(spec: &TopologySpec, timeout: Duration) -> Result<Topology> {
    if spec.master.is_some() || !spec.replicas.is_empty() || spec.discover {
        bail!(
            "--sentinel finds the master and its replicas: drop --master/--replica/--discover, \
             or drop --sentinel"
        );
    }
    let name = spec.master_name.as_deref().unwrap_or(DEFAULT_MASTER_NAME);
    let mut set = SentinelSet::parse(&spec.sentinels, name)?;
    let observed = observe(&set, timeout).await;
    let all: Vec<Result<SentinelView, NodeError>> = observed
        .iter()
        .map(|o| o.as_ref().map(|o| o.view.clone()).map_err(Clone::clone))
        .collect();
    set.observed = Some(std::sync::Arc::new(observed));
    let (host, port) = chosen_master(&set, &all)?;
    let listed = all
        .iter()
        .flatten()
        .find(|v| v.master.as_ref() == Some(&(host.clone(), port)))
        .map(|v| v.replicas.clone())
        .unwrap_or_default();
    let user = spec.user.as_deref();
    let pass = spec.password.as_deref();
    let master = Node::parse(
        "master",
        Role::Master,
        &format!("redis://{}", crate::topology::host_port(&host, port)),
    )?
    .with_credentials(user, pass);
    let replicas: Vec<Node> = listed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut n = master.sibling(&format!("replica{}", i + 1), &p.ip, p.port);
            n.role = Role::Replica;
            n
        })
        .collect();
    let expected = match spec.expect_replicas {
        Some(n) => ReplicaCount::Asserted(n),
        None => ReplicaCount::Given(replicas.len()),
    };
    let topo = Topology {
        master,
        replicas,
        discover: false,
        expected,
        sentinel: Some(set),
    };
    topo.refuse_duplicates()?;
    Ok(topo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn peers_and_flags_from_a_resp2_reply() {
        let entry = |port: &str, flags: &str| {
            Value::Array(vec![
                bulk("name"),
                bulk(&format!("127.0.0.1:{port}")),
                bulk("ip"),
                bulk("127.0.0.1"),
                bulk("port"),
                bulk(port),
                bulk("flags"),
                bulk(flags),
            ])
        };
        let v = Value::Array(vec![entry("6381", "slave"), entry("6380", "s_down,slave")]);
        let p = peers(&v);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].port, 6380);
        assert!(p[0].is_down() && !p[1].is_down());
        assert_eq!(
            addr_of(&Value::Array(vec![bulk("127.0.0.1"), bulk("6379")])),
            Some(("127.0.0.1".into(), 6379))
        );
        assert_eq!(addr_of(&Value::Nil), None);
    }

    #[test]
    fn the_master_is_the_one_the_answering_sentinels_agree_on() {
        let set = SentinelSet::parse(
            &["redis://127.0.0.1:1".into(), "redis://127.0.0.1:2".into()],
            "redlab",
        )
        .unwrap();
        let says = |port: Option<u16>| {
            Ok(SentinelView {
                master: port.map(|p| ("127.0.0.1".to_string(), p)),
                master_flags: "master".into(),
                replicas: Vec::new(),
                sentinels: Vec::new(),
            })
        };
        let down = || {
            Err(NodeError::new(
                "sentinel2",
                "127.0.0.1:2",
                crate::client::ErrorKind::Refused,
                "refused",
            ))
        };
        assert_eq!(
            agreed_master(&set, &[says(Some(6380)), down()]).unwrap().1,
            6380
        );
        let split = agreed_master(&set, &[says(Some(6380)), says(Some(6381))]).unwrap_err();
        assert!(split.to_string().contains("disagree"), "{split}");
        let none = agreed_master(&set, &[says(None), down()]).unwrap_err();
        assert!(
            none.to_string().contains("knows no master named 'redlab'"),
            "{none}"
        );
        assert!(flags_down("s_down,master") && !flags_down("master"));
    }
}
