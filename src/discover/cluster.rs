//! A Redis Cluster as redlab sees it: shards, each a master with its
//! replicas and the slots it serves, discovered from any node with
//! `CLUSTER SHARDS` (Redis 7), or `CLUSTER NODES` where that is missing.
//!
//! Each shard is an ordinary `Topology` whose nodes are named
//! `shard1.master`, `shard1.replica1`, ...: every per-topology check (the
//! survey, the follows-this-master rule, probes, counts, comparisons) runs on
//! a shard unchanged. Shards are numbered by the lowest slot they serve, so
//! `shard1` stays `shard1` across a failover (the slots move with it).

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::client::Conn;
use crate::topology::slot::{self, SLOTS};
use crate::topology::{Node, ReplicaCount, Role, Topology};

/// One node as a cluster node's view lists it (a line of `CLUSTER NODES`,
/// or a node of `CLUSTER SHARDS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub host: String,
    pub port: u16,
    /// `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ...
    pub flags: Vec<String>,
    /// The master a replica follows.
    pub master_id: Option<String>,
    /// Its config epoch (None from `CLUSTER SHARDS`, which does not say).
    pub config_epoch: Option<u64>,
    /// The cluster bus link to it is up (as this view says).
    pub connected: bool,
    pub slots: Vec<(u16, u16)>,
    /// `[slot->-id]`: slots it is migrating away (only in its own line).
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-id]`: slots it is importing.
    pub importing: Vec<(u16, String)>,
}

impl Member {
    fn flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
    pub fn is_master(&self) -> bool {
        self.flag("master")
    }
    pub fn is_myself(&self) -> bool {
        self.flag("myself")
    }
    /// `fail` (agreed by a majority) or `pfail` (this node's suspicion).
    pub fn failure(&self) -> Option<&'static str> {
        if self.flag("fail") {
            Some("fail")
        } else if self.flag("fail?") {
            Some("pfail")
        } else {
            None
        }
    }
    /// Not yet a member: a handshake in progress, or no address known.
    fn is_pending(&self) -> bool {
        self.flag("handshake") || self.flag("noaddr")
    }
    pub fn addr(&self) -> String {
        crate::topology::host_port(&self.host, self.port)
    }
}

/// `CLUSTER NODES` text -> members.
pub fn parse_nodes(text: &str) -> Vec<Member> {
    text.lines().filter_map(parse_node_line).collect()
}

fn parse_node_line(line: &str) -> Option<Member> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return None;
    }
    // ip:port@cport[,hostname]; an IPv6 address has colons of its own.
    let addr = f[1].split(['@', ',']).next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let mut m = Member {
        id: f[0].to_string(),
        host: host.trim_matches(['[', ']']).to_string(),
        port: port.parse().ok()?,
        flags: f[2].split(',').map(String::from).collect(),
        master_id: (f[3] != "-").then(|| f[3].to_string()),
        config_epoch: f[6].parse().ok(),
        connected: f[7] == "connected",
        ..Member::default()
    };
    for s in &f[8..] {
        if let Some(open) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if let Some((slot, id)) = open.split_once("->-") {
                m.migrating.push((slot.parse().ok()?, id.to_string()));
            } else if let Some((slot, id)) = open.split_once("-<-") {
                m.importing.push((slot.parse().ok()?, id.to_string()));
            }
            continue;
        }
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let v = s.parse().ok()?;
                (v, v)
            }
        };
        m.slots.push((a, b));
    }
    Some(m)
}

/// The fields of a reply that is a map under RESP3 and a flat array of
/// alternating names and values under RESP2.
fn fields(v: &redis::Value) -> Vec<(String, &redis::Value)> {
    use redis::Value;
    let name = |k: &Value| match k {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match v {
        Value::Map(kv) => kv.iter().filter_map(|(k, v)| Some((name(k)?, v))).collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| Some((name(kv.first()?)?, kv.get(1)?)))
            .collect(),
        _ => Vec::new(),
    }
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn items(v: &redis::Value) -> &[redis::Value] {
    match v {
        redis::Value::Array(a) | redis::Value::Set(a) => a,
        _ => &[],
    }
}

/// `CLUSTER SHARDS` reply -> members (`tls` takes each node's `tls-port`).
pub fn parse_shards(v: &redis::Value, tls: bool) -> Vec<Member> {
    let mut out = Vec::new();
    for shard in items(v) {
        let f = fields(shard);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let bounds: Vec<i64> = get("slots")
            .map(items)
            .unwrap_or(&[])
            .iter()
            .filter_map(int)
            .collect();
        let slots: Vec<(u16, u16)> = bounds
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0] as u16, c[1] as u16))
            .collect();
        let nodes: Vec<Member> = get("nodes")
            .map(items)
            .unwrap_or(&[])
            .iter()
            .filter_map(|n| shard_node(n, tls))
            .collect();
        let master = nodes.iter().find(|n| n.is_master()).map(|n| n.id.clone());
        for mut n in nodes {
            if n.is_master() {
                n.slots = slots.clone();
            } else {
                n.master_id = master.clone();
            }
            out.push(n);
        }
    }
    out
}

fn shard_node(v: &redis::Value, tls: bool) -> Option<Member> {
    let f = fields(v);
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let port = if tls {
        get("tls-port").or(get("port"))
    } else {
        get("port").or(get("tls-port"))
    };
    let role = get("role").and_then(text).unwrap_or_default();
    let health = get("health").and_then(text).unwrap_or_default();
    let mut flags = vec![if role == "master" { "master" } else { "slave" }.to_string()];
    if health == "fail" {
        flags.push("fail".into());
    }
    Some(Member {
        id: get("id").and_then(text)?,
        host: get("ip")
            .and_then(text)
            .or_else(|| get("endpoint").and_then(text))?,
        port: int(port?)? as u16,
        flags,
        connected: health != "fail",
        ..Member::default()
    })
}

/// One shard: a master, its replicas, the slots it serves.
#[derive(Debug, Clone)]
pub struct Shard {
    /// `shard1`, ...
    pub name: String,
    /// The master and its replicas, named `shard1.master`, `shard1.replica1`, ...
    pub topology: Topology,
    pub master_id: String,
    /// The replicas' node ids, in topology order.
    pub replica_ids: Vec<String>,
    pub slots: Vec<(u16, u16)>,
    /// A hash tag of the shard's lowest slot: a key with `{tag}` lives here.
    pub tag: String,
}

/// The cluster: its shards and what the user expects of it.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The node it was discovered from.
    pub seed: Node,
    /// Shards that serve slots, by their lowest slot.
    pub shards: Vec<Shard>,
    /// Masters that serve no slot (`idle1`, ...): a new node, or a failed
    /// master whose slots moved to its promoted replica.
    pub idle: Vec<(Node, String)>,
    /// `--expect-shards N`, or the shape of a lab redlab started.
    pub expected_shards: Option<usize>,
    /// `CLUSTER SHARDS` or `CLUSTER NODES`.
    pub source: &'static str,
}

impl Cluster {
    /// Shards from one view of the cluster. `expect_replicas` is asserted per
    /// shard; without it a shard's replicas are the ones the cluster's
    /// configuration lists (a failed replica stays listed, flagged `fail`,
    /// until someone forgets it), so a stopped replica is still checked.
    pub fn from_members(
        seed: &Node,
        members: &[Member],
        expect_replicas: Option<usize>,
        expected_shards: Option<usize>,
        source: &'static str,
    ) -> Cluster {
        let node = |name: &str, role: Role, m: &Member| {
            let mut n = seed.sibling(name, &m.host, m.port);
            n.role = role;
            n.cluster = true;
            n
        };
        let mut masters: Vec<&Member> = members
            .iter()
            .filter(|m| m.is_master() && !m.is_pending())
            .collect();
        masters.sort_by_key(|m| {
            (
                m.slots.iter().map(|(a, _)| *a).min().unwrap_or(SLOTS),
                m.host.clone(),
                m.port,
            )
        });
        let mut shards = Vec::new();
        let mut idle = Vec::new();
        for m in masters {
            if m.slots.is_empty() {
                let name = format!("idle{}", idle.len() + 1);
                idle.push((node(&name, Role::Master, m), m.id.clone()));
                continue;
            }
            let name = format!("shard{}", shards.len() + 1);
            let mut reps: Vec<&Member> = members
                .iter()
                .filter(|r| !r.is_master() && !r.is_pending())
                .filter(|r| r.master_id.as_deref() == Some(m.id.as_str()))
                .collect();
            reps.sort_by_key(|r| (r.host.clone(), r.port));
            let replicas: Vec<Node> = reps
                .iter()
                .enumerate()
                .map(|(i, r)| node(&format!("{name}.replica{}", i + 1), Role::Replica, r))
                .collect();
            let mut slots = m.slots.clone();
            slots.sort_unstable();
            let expected = match expect_replicas {
                Some(n) => ReplicaCount::Asserted(n),
                None => ReplicaCount::Given(replicas.len()),
            };
            shards.push(Shard {
                tag: slot::tag_for_slot(slots[0].0).to_string(),
                topology: Topology {
                    master: node(&format!("{name}.master"), Role::Master, m),
                    replicas,
                    discover: false,
                    expected,
                    sentinel: None,
                },
                master_id: m.id.clone(),
                replica_ids: reps.iter().map(|r| r.id.clone()).collect(),
                slots,
                name,
            });
        }
        Cluster {
            seed: seed.clone(),
            shards,
            idle,
            expected_shards,
            source,
        }
    }

    /// Every node: each shard's master and replicas, then the idle masters.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.shards
            .iter()
            .flat_map(|s| s.topology.nodes())
            .chain(self.idle.iter().map(|(n, _)| n))
    }

    /// The shard whose slots hold `slot`.
    pub fn shard_of_slot(&self, slot: u16) -> Option<usize> {
        self.shards
            .iter()
            .position(|s| s.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
    }

    /// The shard a key lives on.
    pub fn shard_of_key(&self, key: &[u8]) -> Option<usize> {
        self.shard_of_slot(slot::key_slot(key))
    }
}

/// The cluster as `seed` describes it: `CLUSTER SHARDS`, else `CLUSTER NODES`.
pub async fn members_of(conn: &mut Conn, tls: bool) -> Result<(Vec<Member>, &'static str)> {
    match conn
        .query::<redis::Value>(redis::cmd("CLUSTER").arg("SHARDS"))
        .await
    {
        Ok(v) => Ok((parse_shards(&v, tls), "CLUSTER SHARDS")),
        // Before Redis 7 there is no CLUSTER SHARDS.
        Err(e) => {
            let text: String = conn
                .query(redis::cmd("CLUSTER").arg("NODES"))
                .await
                .with_context(|| format!("CLUSTER SHARDS failed ({}), then", e.message))?;
            Ok((parse_nodes(&text), "CLUSTER NODES"))
        }
    }
}

/// The slot map as the first of `seeds` that answers sees it.
pub async fn slot_map<'a>(
    seeds: impl Iterator<Item = &'a Node>,
    timeout: Duration,
) -> Option<Vec<Member>> {
    for node in seeds {
        let Ok(mut c) = Conn::connect(node, timeout).await else {
            continue;
        };
        if let Ok((m, _)) = members_of(&mut c, node.tls()).await {
            return Some(m);
        }
    }
    None
}

/// The master that serves the slot of hash tag `tag` (a shard's) in
/// `members`, as a node named like `current`; None when that is still
/// `current`, or when no master serves it.
pub fn master_now(members: &[Member], tag: &str, current: &Node) -> Option<Node> {
    let s = slot::key_slot(tag.as_bytes());
    let now = members
        .iter()
        .find(|m| m.is_master() && m.slots.iter().any(|(a, b)| (*a..=*b).contains(&s)))?;
    if now.port == current.port() && crate::topology::same_host(&now.host, current.host()) {
        return None;
    }
    Some(current.sibling(&current.name, &now.host, now.port))
}

/// Discover the whole cluster from one node.
pub async fn discover(
    seed: &Node,
    expect_replicas: Option<usize>,
    expect_shards: Option<usize>,
    timeout: Duration,
) -> Result<Cluster> {
    if seed.db() != 0 {
        bail!(
            "{}: a Redis Cluster has only database 0; drop /{} from the URL",
            seed.label(),
            seed.db()
        );
    }
    let mut conn = Conn::connect(seed, timeout).await?;
    let info = conn.info("cluster").await?;
    if !info.flag("cluster_enabled") {
        bail!(
            "{}: is not a Redis Cluster node (cluster_enabled:0): drop --cluster to test it as a \
             replication topology",
            seed.label()
        );
    }
    let (members, source) = members_of(&mut conn, seed.tls())
        .await
        .with_context(|| format!("asking {} for the cluster's shards", seed.label()))?;
    let cluster = Cluster::from_members(seed, &members, expect_replicas, expect_shards, source);
    if cluster.shards.is_empty() {
        bail!(
            "{}: the cluster serves no slot ({} known, none with slots): nothing can be stored \
             in it, so nothing was written. Assign slots (CLUSTER ADDSLOTSRANGE, or \
             `redis-cli --cluster create`), or start a ready one with `redlab lab up --cluster`",
            seed.label(),
            crate::text::plural(members.len() as u64, "node")
        );
    }
    Ok(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
593901bf030fc3696b0f0ab7b553900a393dd65e 127.0.0.1:27102@37102 master - 0 1796002103000 2 connected 8192-16383
5345233bebaa596cf0045b3718e4b7a20185d7a0 127.0.0.1:27103@37103 slave efa1379c62b6bbede2780f338753d0c0104d21e9 0 1796002103687 0 connected
efa1379c62b6bbede2780f338753d0c0104d21e9 127.0.0.1:27101@37101 myself,master - 0 1796002103000 0 connected 0-4 6-8191 [5->-593901bf030fc3696b0f0ab7b553900a393dd65e]
ef1dff212131fb9a7bfc0844efd572926b252d48 127.0.0.1:27104@37104 slave,fail 593901bf030fc3696b0f0ab7b553900a393dd65e 0 1796002103687 2 disconnected
";

    fn seed() -> Node {
        Node::parse("seed", Role::Master, "redis://:pw@127.0.0.1:27101").unwrap()
    }

    #[test]
    fn cluster_nodes_lines() {
        let m = parse_nodes(NODES);
        assert_eq!(m.len(), 4);
        let me = &m[2];
        assert!(me.is_myself() && me.is_master());
        assert_eq!(me.slots, vec![(0, 4), (6, 8191)]);
        assert_eq!(me.migrating, vec![(5, m[0].id.clone())]);
        assert_eq!(me.config_epoch, Some(0));
        assert_eq!(m[3].failure(), Some("fail"));
        assert!(!m[3].connected);
        let v6 = parse_node_line("abc ::1:7000@17000,host master - 0 0 1 connected 1").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 7000));
    }

    #[test]
    fn shards_numbered_by_lowest_slot_with_names_and_tags() {
        let c = Cluster::from_members(&seed(), &parse_nodes(NODES), None, None, "CLUSTER NODES");
        assert_eq!(c.shards.len(), 2);
        let s1 = &c.shards[0];
        assert_eq!(s1.topology.master.name, "shard1.master");
        assert_eq!(s1.topology.master.port(), 27101);
        assert_eq!(s1.topology.replicas[0].name, "shard1.replica1");
        assert_eq!(s1.topology.replicas[0].port(), 27103);
        assert_eq!(slot::key_slot(s1.tag.as_bytes()), 0);
        assert!(s1.topology.master.cluster && s1.topology.master.password() == Some("pw"));
        // A failed replica stays listed, so it is checked (and found down).
        assert_eq!(c.shards[1].topology.expected, ReplicaCount::Given(1));
        assert_eq!(c.shard_of_slot(4), Some(0));
        // Slot 5 is being migrated: its owner in this view is nobody.
        assert_eq!(c.shard_of_slot(5), None);
        assert_eq!(c.shard_of_slot(9000), Some(1));
        let c = Cluster::from_members(&seed(), &parse_nodes(NODES), Some(2), Some(3), "x");
        assert_eq!(c.shards[0].topology.expected, ReplicaCount::Asserted(2));
    }

    #[test]
    fn cluster_shards_resp2_and_resp3() {
        use redis::Value::{Array, BulkString, Int, Map};
        let s = |t: &str| BulkString(t.as_bytes().to_vec());
        let node = |id: &str, port: i64, role: &str| {
            Array(vec![
                s("id"),
                s(id),
                s("port"),
                Int(port),
                s("ip"),
                s("127.0.0.1"),
                s("role"),
                s(role),
                s("health"),
                s("online"),
            ])
        };
        let shard = Array(vec![
            s("slots"),
            Array(vec![Int(0), Int(5460), Int(7000), Int(7001)]),
            s("nodes"),
            Array(vec![
                node("m1", 7000, "master"),
                node("r1", 7003, "replica"),
            ]),
        ]);
        let m = parse_shards(&Array(vec![shard]), false);
        assert_eq!(m[0].slots, vec![(0, 5460), (7000, 7001)]);
        assert_eq!(m[1].master_id.as_deref(), Some("m1"));
        let resp3 = Map(vec![
            (s("slots"), Array(vec![Int(0), Int(16383)])),
            (
                s("nodes"),
                Array(vec![Map(vec![
                    (s("id"), s("m2")),
                    (s("port"), Int(7100)),
                    (s("ip"), s("10.0.0.1")),
                    (s("role"), s("master")),
                    (s("health"), s("online")),
                ])]),
            ),
        ]);
        let m = parse_shards(&Array(vec![resp3]), false);
        assert_eq!((m[0].port, m[0].slots[0]), (7100, (0, 16383)));
    }
}
