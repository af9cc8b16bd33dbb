//! The `cluster` step: what `redis-cli --cluster check` says of a cluster,
//! as named checks with one-line reasons, from every node's own view
//! (CLUSTER INFO and CLUSTER NODES on each node, at once).
//!
//! - `cluster.reachable`: every node answers.
//! - `cluster.state`: every node says `cluster_state:ok`.
//! - `cluster.slots`: all 16384 slots served exactly once, by what each
//!   master says of itself (a slot nobody serves answers CLUSTERDOWN).
//! - `cluster.agreement`: every node sees the same slot map and config epochs.
//! - `cluster.open-slots`: no slot migrating or importing.
//! - `cluster.failures`: no node flagged fail or pfail by any node.
//! - `cluster.shards`: the shard count (asserted with --expect-shards).
//! - `<shard>.replicas`, `<shard>.replicaN.follows`: each master has the
//!   replicas expected, each replica follows its shard's master.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::client::Conn;
use crate::discover::cluster::Cluster;
use crate::discover::cluster::{parse_nodes, Member};
use crate::lab::cluster::slot_map;
use crate::report::{plural, Check, Section};
use crate::topology::slot::{self, SLOTS};
use crate::topology::Node;

/// The cluster as every node sees it, and the checks drawn from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// How the shape was discovered: `CLUSTER SHARDS` or `CLUSTER NODES`.
    pub source: String,
    /// Shards expected (--expect-shards, or the lab's shape); null when not asserted.
    pub expected_shards: Option<usize>,
    /// One entry per node, shard by shard.
    pub nodes: Vec<HealthNode>,
    /// Slots no master says it serves, as ranges (`0-5`, `10`).
    pub uncovered_slots: String,
    /// Every check of the step.
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HealthNode {
    pub name: String,
    pub address: String,
    /// Its cluster node id.
    pub id: String,
    /// `master` or `replica`, as it says of itself.
    pub role: Option<String>,
    /// `cluster_state` from its CLUSTER INFO.
    pub cluster_state: Option<String>,
    /// `cluster_known_nodes`.
    pub known_nodes: Option<u64>,
    /// Its config epoch, as it says of itself.
    pub config_epoch: Option<u64>,
    /// Slots it serves, as it says of itself.
    pub slots: String,
    /// Whether its slot map and epochs are the ones most nodes see.
    pub agrees: Option<bool>,
    pub error: Option<String>,
}

/// One node's answers.
struct View {
    node: Node,
    id: String,
    info: Option<String>,
    members: Vec<Member>,
    error: Option<String>,
}

impl View {
    fn me(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.is_myself())
    }
    fn info(&self, key: &str) -> Option<&str> {
        self.info
            .as_deref()?
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).and_then(|r| r.strip_prefix(':')))
    }
}

async fn visit(node: Node, id: String, timeout: Duration) -> View {
    let mut v = View {
        node,
        id,
        info: None,
        members: Vec::new(),
        error: None,
    };
    let mut c = match Conn::connect(&v.node, timeout).await {
        Ok(c) => c,
        Err(e) => {
            v.error = Some(e.message);
            return v;
        }
    };
    let mut p = redis::pipe();
    p.cmd("CLUSTER").arg("INFO").cmd("CLUSTER").arg("NODES");
    match c.pipe::<(String, String)>(&p).await {
        Ok((info, nodes)) => {
            v.info = Some(info);
            v.members = parse_nodes(&nodes);
        }
        Err(e) => v.error = Some(e.message),
    }
    v
}

/// Visit every node and judge the cluster.
pub async fn check(cluster: &Cluster, timeout: Duration) -> Health {
    let mut nodes: Vec<(Node, String)> = Vec::new();
    for s in &cluster.shards {
        nodes.push((s.topology.master.clone(), s.master_id.clone()));
        for (r, id) in s.topology.replicas.iter().zip(&s.replica_ids) {
            nodes.push((r.clone(), id.clone()));
        }
    }
    nodes.extend(cluster.idle.iter().cloned());
    let views = join_all(nodes.into_iter().map(|(n, id)| visit(n, id, timeout))).await;
    judge(cluster, &views)
}

fn judge(cluster: &Cluster, views: &[View]) -> Health {
    let names: BTreeMap<&str, &str> = views
        .iter()
        .map(|v| (v.id.as_str(), v.node.name.as_str()))
        .collect();
    let name_of = |id: &str| -> String {
        names
            .get(id)
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("node {}", &id[..id.len().min(8)]))
    };
    let answered: Vec<&View> = views.iter().filter(|v| v.info.is_some()).collect();
    let mut checks = vec![reachable(views), state(&answered)];
    let (slots_check, uncovered) = coverage(cluster, views, &name_of);
    checks.push(slots_check);
    let (agreement, agrees) = agreement(&answered, &name_of);
    checks.push(agreement);
    checks.push(open_slots(&answered, &name_of));
    checks.push(failures(&answered, &name_of));
    checks.push(shards(cluster));
    checks.extend(replicas(cluster, views, &name_of));
    let nodes = views
        .iter()
        .map(|v| {
            let me = v.me();
            HealthNode {
                name: v.node.name.clone(),
                address: v.node.addr(),
                id: v.id.clone(),
                role: me.map(|m| if m.is_master() { "master" } else { "replica" }.to_string()),
                cluster_state: v.info("cluster_state").map(String::from),
                known_nodes: v.info("cluster_known_nodes").and_then(|s| s.parse().ok()),
                config_epoch: me.and_then(|m| m.config_epoch),
                slots: me
                    .filter(|m| m.is_master())
                    .map(|m| slot::ranges_text(&m.slots))
                    .unwrap_or_else(|| "-".into()),
                agrees: agrees.get(v.node.name.as_str()).copied(),
                error: v.error.clone(),
            }
        })
        .collect();
    Health {
        source: cluster.source.to_string(),
        expected_shards: cluster.expected_shards,
        nodes,
        uncovered_slots: slot::ranges_text(&uncovered),
        checks,
    }
}

fn reachable(views: &[View]) -> Check {
    let down: Vec<String> = views
        .iter()
        .filter_map(|v| Some(format!("{}: {}", v.node.label(), v.error.as_ref()?)))
        .collect();
    if down.is_empty() {
        Check::pass(
            "cluster.reachable",
            format!(
                "all {} nodes answer CLUSTER INFO and CLUSTER NODES",
                views.len()
            ),
        )
    } else {
        Check::fail("cluster.reachable", down.join("; "))
    }
}

fn state(answered: &[&View]) -> Check {
    if answered.is_empty() {
        return Check::skip("cluster.state", "not judged: no node answered");
    }
    let bad: Vec<String> = answered
        .iter()
        .filter(|v| v.info("cluster_state") != Some("ok"))
        .map(|v| {
            format!(
                "{} says cluster_state:{}",
                v.node.name,
                v.info("cluster_state").unwrap_or("?")
            )
        })
        .collect();
    if bad.is_empty() {
        Check::pass(
            "cluster.state",
            format!(
                "cluster_state:ok on the {} that answer",
                plural(answered.len() as u64, "node")
            ),
        )
    } else {
        Check::fail(
            "cluster.state",
            format!(
                "{} (a node in state fail refuses every command: CLUSTERDOWN)",
                bad.join("; ")
            ),
        )
    }
}

/// Each slot's servers, by what each master says of itself (a master that
/// did not answer: by what the discovery view said of it).
fn coverage(
    cluster: &Cluster,
    views: &[View],
    name_of: &dyn Fn(&str) -> String,
) -> (Check, Vec<(u16, u16)>) {
    let mut owners: Vec<Vec<&str>> = vec![Vec::new(); SLOTS as usize];
    let discovered: BTreeMap<&str, &Vec<(u16, u16)>> = cluster
        .shards
        .iter()
        .map(|s| (s.master_id.as_str(), &s.slots))
        .collect();
    let mut masters = 0;
    for v in views {
        let claimed = match v.me() {
            Some(me) if me.is_master() => &me.slots,
            Some(_) => continue,
            None => match discovered.get(v.id.as_str()) {
                Some(s) => *s,
                None => continue,
            },
        };
        masters += 1;
        for (a, b) in claimed {
            for s in *a..=*b {
                owners[s as usize].push(v.id.as_str());
            }
        }
    }
    let uncovered = slot::to_ranges((0..SLOTS).filter(|s| owners[*s as usize].is_empty()));
    let twice: Vec<u16> = (0..SLOTS)
        .filter(|s| owners[*s as usize].len() > 1)
        .collect();
    let mut why = Vec::new();
    if !uncovered.is_empty() {
        why.push(format!(
            "{} served by no master ({}): their keys answer CLUSTERDOWN",
            plural(slot::count(&uncovered) as u64, "slot"),
            slot::ranges_text(&uncovered)
        ));
    }
    if let Some(s) = twice.first() {
        let who: Vec<String> = owners[*s as usize].iter().map(|id| name_of(id)).collect();
        why.push(format!(
            "{} claimed by more than one master ({}; slot {s} by {})",
            plural(twice.len() as u64, "slot"),
            slot::ranges_text(&slot::to_ranges(twice.iter().copied())),
            who.join(" and ")
        ));
    }
    let check = if why.is_empty() {
        Check::pass(
            "cluster.slots",
            format!(
                "all {SLOTS} slots served exactly once, by {}",
                plural(masters, "master")
            ),
        )
    } else {
        Check::fail("cluster.slots", why.join("; "))
    };
    (check, uncovered)
}

/// The slot map and epochs most nodes see, and who sees another.
fn agreement(
    answered: &[&View],
    name_of: &dyn Fn(&str) -> String,
) -> (Check, BTreeMap<String, bool>) {
    type Seen = (BTreeMap<(u16, u16), String>, BTreeMap<String, u64>);
    let seen: Vec<Seen> = answered
        .iter()
        .map(|v| {
            let epochs = v
                .members
                .iter()
                .filter(|m| m.is_master())
                .filter_map(|m| Some((m.id.clone(), m.config_epoch?)))
                .collect();
            (slot_map(&v.members), epochs)
        })
        .collect();
    let mut agrees = BTreeMap::new();
    let Some(common) = seen
        .iter()
        .max_by_key(|s| seen.iter().filter(|t| t == s).count())
    else {
        return (
            Check::skip("cluster.agreement", "not judged: no node answered"),
            agrees,
        );
    };
    let mut differ = Vec::new();
    for (v, s) in answered.iter().zip(&seen) {
        agrees.insert(v.node.name.clone(), s == common);
        if s.0 != common.0 {
            differ.push(format!(
                "{} sees {}",
                v.node.name,
                map_diff(&s.0, &common.0, name_of)
            ));
        } else if s.1 != common.1 {
            let id =
                s.1.iter()
                    .find(|(id, e)| common.1.get(*id) != Some(e))
                    .map(|(id, e)| format!("{} at config epoch {e}", name_of(id)))
                    .unwrap_or_else(|| "other masters".into());
            differ.push(format!("{} sees {id}, the others do not", v.node.name));
        }
    }
    let check = if differ.is_empty() {
        Check::pass(
            "cluster.agreement",
            format!(
                "all {} see the same slot map and config epochs",
                plural(answered.len() as u64, "node")
            ),
        )
    } else {
        Check::fail(
            "cluster.agreement",
            format!("{} (the others agree)", differ.join("; ")),
        )
    };
    (check, agrees)
}

/// The first difference between one node's slot map and the common one.
fn map_diff(
    mine: &BTreeMap<(u16, u16), String>,
    common: &BTreeMap<(u16, u16), String>,
    name_of: &dyn Fn(&str) -> String,
) -> String {
    let owner = |m: &BTreeMap<(u16, u16), String>, s: u16| {
        m.iter()
            .find(|((a, b), _)| (*a..=*b).contains(&s))
            .map(|(_, id)| name_of(id))
            .unwrap_or_else(|| "nobody".into())
    };
    let bounds: BTreeSet<u16> = mine
        .keys()
        .chain(common.keys())
        .flat_map(|(a, b)| [*a, *b])
        .collect();
    for s in bounds {
        let (a, b) = (owner(mine, s), owner(common, s));
        if a != b {
            return format!("slot {s} served by {a}, where the others see {b}");
        }
    }
    "another slot map".into()
}

fn open_slots(answered: &[&View], name_of: &dyn Fn(&str) -> String) -> Check {
    let mut open = Vec::new();
    for v in answered {
        let Some(me) = v.me() else { continue };
        for (s, to) in &me.migrating {
            open.push(format!(
                "{} is migrating slot {s} to {}",
                v.node.name,
                name_of(to)
            ));
        }
        for (s, from) in &me.importing {
            open.push(format!(
                "{} is importing slot {s} from {}",
                v.node.name,
                name_of(from)
            ));
        }
    }
    if open.is_empty() {
        Check::pass("cluster.open-slots", "no slot migrating or importing")
    } else {
        Check::fail(
            "cluster.open-slots",
            format!(
                "{}: a resharding in progress or left half done (clients are sent ASK; finish it with redis-cli --cluster fix)",
                open.join("; ")
            ),
        )
    }
}

fn failures(answered: &[&View], name_of: &dyn Fn(&str) -> String) -> Check {
    let mut flagged: BTreeMap<(String, &str), Vec<&str>> = BTreeMap::new();
    for v in answered {
        for m in &v.members {
            if let Some(f) = m.failure() {
                flagged
                    .entry((name_of(&m.id), f))
                    .or_default()
                    .push(v.node.name.as_str());
            }
        }
    }
    if flagged.is_empty() {
        return Check::pass(
            "cluster.failures",
            format!(
                "no node flagged fail or pfail by any of the {} that answer",
                answered.len()
            ),
        );
    }
    let why: Vec<String> = flagged
        .iter()
        .map(|((who, f), by)| format!("{who} flagged {f} by {}", plural(by.len() as u64, "node")))
        .collect();
    Check::fail("cluster.failures", why.join("; "))
}

fn shards(cluster: &Cluster) -> Check {
    let n = cluster.shards.len();
    let idle = if cluster.idle.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = cluster.idle.iter().map(|(n, _)| n.label()).collect();
        format!(
            "; {} serving no slot: {}",
            plural(names.len() as u64, "master"),
            names.join(", ")
        )
    };
    let what = format!("{} serving slots{idle}", plural(n as u64, "shard"));
    match cluster.expected_shards {
        Some(e) if e != n => Check::fail("cluster.shards", format!("{what}, {e} expected")),
        Some(e) => Check::pass("cluster.shards", format!("{what}, {e} expected")),
        None if !cluster.idle.is_empty() => Check::warn("cluster.shards", what),
        None => Check::pass(
            "cluster.shards",
            format!("{what} (as the cluster's configuration says; --expect-shards N asserts it)"),
        ),
    }
}

/// Per shard: the replicas its master has, and each one's master in its own view.
fn replicas(cluster: &Cluster, views: &[View], name_of: &dyn Fn(&str) -> String) -> Vec<Check> {
    let mut out = Vec::new();
    for s in &cluster.shards {
        let listed = s.replica_ids.len();
        let name = format!("{}.replicas", s.name);
        out.push(match s.topology.expected_count() {
            Some(n) if n != listed => Check::fail(
                name,
                format!(
                    "{} lists {} in the cluster's configuration, {n} expected",
                    s.topology.master.name,
                    plural(listed as u64, "replica")
                ),
            ),
            _ => Check::pass(
                name,
                format!(
                    "{} has {} in the cluster's configuration",
                    s.topology.master.name,
                    plural(listed as u64, "replica")
                ),
            ),
        });
        for r in &s.topology.replicas {
            let name = format!("{}.follows", r.name);
            let v = views.iter().find(|v| v.node.name == r.name);
            out.push(match v.and_then(View::me) {
                None => Check::skip(name, "not judged: it did not answer (see cluster.reachable)"),
                Some(me) if me.is_master() => Check::fail(
                    name,
                    "says it is a master: promoted (a failover?) or reset; not a replica of its shard",
                ),
                Some(me) if me.master_id.as_deref() == Some(s.master_id.as_str()) => Check::pass(
                    name,
                    format!("follows {} in its own view", s.topology.master.name),
                ),
                Some(me) => Check::fail(
                    name,
                    format!(
                        "follows {}, not its shard's master {}",
                        me.master_id.as_deref().map(name_of).unwrap_or_else(|| "nothing".into()),
                        s.topology.master.name
                    ),
                ),
            });
        }
    }
    out
}

impl Health {
    pub fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Cluster",
            &[
                "node", "role", "state", "slots", "epoch", "known", "agrees", "id", "address",
            ],
        );
        for n in &self.nodes {
            let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            s.row(vec![
                n.name.clone(),
                o(&n.role),
                n.error
                    .clone()
                    .map(|_| "down".into())
                    .unwrap_or_else(|| o(&n.cluster_state)),
                n.slots.clone(),
                crate::report::opt(&n.config_epoch),
                crate::report::opt(&n.known_nodes),
                match n.agrees {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                n.id[..n.id.len().min(8)].to_string(),
                n.address.clone(),
            ]);
        }
        s.notes.push(format!(
            "discovered with {}; slots served by no master: {}",
            self.source, self.uncovered_slots
        ));
        vec![s]
    }

    /// The step's verdict line when every check passed.
    pub fn summary(&self) -> String {
        format!(
            "cluster_state:ok on {}, all {SLOTS} slots served once, every node agrees on the slot map, no open slot, no failure flag",
            plural(self.nodes.len() as u64, "node")
        )
    }
}
