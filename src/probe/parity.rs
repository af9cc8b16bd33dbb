//! The parity probe (keycount's measurement, check's `keycount` step): wait
//! until the replicas have caught up, then compare key counts per database
//! across every node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::client::{Conn, DbCounts, NodeError};
use crate::replication::{self, Standing};
use crate::report::{plural, Check, Details, Section};
use crate::run::Ctx;
use crate::survey::{Master, NodeState, Survey};
use crate::ui::progress::Task;

#[derive(Clone)]
pub struct Config {
    pub settle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// Its counts equal the master's in every db.
    Parity,
    /// Caught up, yet some db's counts differ from the master's.
    Mismatch,
    /// Link down, loading, in a full sync or behind: its counts mean nothing yet.
    Syncing,
    /// Not reachable.
    Down,
    /// Follows another master, is chained behind a replica, or is no replica
    /// at all: its counts are not comparable with this master's.
    NotFollowing,
    /// The reference everything is compared with.
    Master,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KeycountDetails {
    /// Bound on waiting for the replicas to catch up, ms.
    pub settle_ms: f64,
    /// How long the replicas took to catch up, ms (null if they did not).
    pub settled_ms: Option<f64>,
    /// Times the counts were read (a difference is re-read after settling again).
    pub reads: u32,
    /// Counts per node.
    pub nodes: Vec<NodeCounts>,
    /// Every (node, db) whose counts differ from the master's.
    pub mismatches: Vec<Mismatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeCounts {
    pub name: String,
    pub address: String,
    pub status: NodeStatus,
    /// `db<N>` -> keys and expires, from INFO keyspace.
    pub dbs: BTreeMap<String, DbCounts>,
    /// Why it is syncing, down or not following.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mismatch {
    pub node: String,
    pub db: String,
    pub master_keys: u64,
    pub node_keys: u64,
    pub master_expires: u64,
    pub node_expires: u64,
}

/// Settle, count and compare, only for replicas that follow this master
/// (`checks` judges them: a count check, not a data comparison).
pub async fn measure(
    cfg: &Config,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
    spinner: &Task,
) -> Result<KeycountDetails> {
    let start = Instant::now();
    let deadline = start + cfg.settle;
    let mut reads = 0;
    let mut settled_ms = None;
    // Only a replica that follows this master has counts worth comparing.
    let standing: Vec<Option<(NodeStatus, String)>> =
        replication::views(survey, master.info, &ctx.topology)
            .into_iter()
            .map(|v| match v.standing {
                Standing::Unreachable => Some((NodeStatus::Down, v.reason())),
                Standing::NotReplica | Standing::Elsewhere => {
                    Some((NodeStatus::NotFollowing, v.reason()))
                }
                Standing::Syncing | Standing::LinkDown | Standing::Follows => None,
            })
            .collect();
    let (nodes, mismatches) = loop {
        let settled = settle(master, survey, &standing, start, deadline).await?;
        if settled.iter().all(|s| s.is_none()) && settled_ms.is_none() {
            settled_ms = Some(crate::duration::ms(start.elapsed()));
        }
        reads += 1;
        let (nodes, mismatches) = count(master, survey, &settled).await?;
        // Logically expired keys linger in the counts until the master's DEL
        // arrives: re-read while there is time before calling it a failure.
        if mismatches.is_empty() || Instant::now() >= deadline {
            break (nodes, mismatches);
        }
        spinner.set_message(format!("counts differ, re-reading ({reads})"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Ok(KeycountDetails {
        settle_ms: crate::duration::ms(cfg.settle),
        settled_ms,
        reads,
        nodes,
        mismatches,
    })
}

/// Per replica: None once caught up with the master's offset taken now, or why not.
async fn settle(
    master: &Master<'_>,
    survey: &Survey,
    standing: &[Option<(NodeStatus, String)>],
    start: Instant,
    deadline: Instant,
) -> Result<Vec<Option<(NodeStatus, String)>>> {
    let target = master.conn.clone().info("replication").await?.repl_offset();
    let mut tasks = Vec::new();
    for (st, known) in survey.replicas().iter().zip(standing) {
        let task = match (known, &st.conn) {
            (Some(k), _) => Err(k.clone()),
            (None, None) => Err((NodeStatus::Down, "not reachable".into())),
            (None, Some(c)) => Ok(tokio::spawn(replication::wait_caught_up(
                c.clone(),
                target,
                start,
                deadline,
                Duration::from_millis(10),
            ))),
        };
        tasks.push(task);
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(match t {
            Err(k) => Some(k),
            Ok(h) => match h.await.expect("settle task does not panic").behind {
                None => None,
                Some((Standing::Unreachable, why)) => Some((NodeStatus::Down, why)),
                Some((Standing::NotReplica | Standing::Elsewhere, why)) => {
                    Some((NodeStatus::NotFollowing, why))
                }
                Some((_, why)) => Some((NodeStatus::Syncing, why)),
            },
        });
    }
    Ok(out)
}

async fn keyspace(c: &Option<Conn>) -> Option<Result<BTreeMap<u32, DbCounts>, NodeError>> {
    let mut c = c.clone()?;
    Some(c.info("keyspace").await.map(|i| i.keyspace()))
}

async fn count(
    master: &Master<'_>,
    survey: &Survey,
    settled: &[Option<(NodeStatus, String)>],
) -> Result<(Vec<NodeCounts>, Vec<Mismatch>)> {
    let master_ks = master.conn.clone().info("keyspace").await?.keyspace();
    let mut nodes = vec![node_counts(
        master.state,
        NodeStatus::Master,
        &master_ks,
        None,
    )];
    let mut mismatches = Vec::new();
    for (st, why) in survey.replicas().iter().zip(settled) {
        // A node that just failed to answer is not asked again.
        if let Some((NodeStatus::Down, reason)) = why {
            nodes.push(node_counts(
                st,
                NodeStatus::Down,
                &BTreeMap::new(),
                Some(reason.clone()),
            ));
            continue;
        }
        let ks = match keyspace(&st.conn).await {
            Some(Ok(ks)) => ks,
            Some(Err(e)) => {
                nodes.push(node_counts(
                    st,
                    NodeStatus::Down,
                    &BTreeMap::new(),
                    Some(e.message),
                ));
                continue;
            }
            None => BTreeMap::new(),
        };
        if let Some((status, reason)) = why {
            nodes.push(node_counts(st, *status, &ks, Some(reason.clone())));
            continue;
        }
        let found = compare(&st.node.name, &master_ks, &ks);
        let status = if found.is_empty() {
            NodeStatus::Parity
        } else {
            NodeStatus::Mismatch
        };
        nodes.push(node_counts(st, status, &ks, None));
        mismatches.extend(found);
    }
    Ok((nodes, mismatches))
}

fn node_counts(
    st: &NodeState,
    status: NodeStatus,
    ks: &BTreeMap<u32, DbCounts>,
    reason: Option<String>,
) -> NodeCounts {
    NodeCounts {
        name: st.node.name.clone(),
        address: st.node.addr(),
        status,
        dbs: ks.iter().map(|(db, c)| (format!("db{db}"), *c)).collect(),
        reason,
    }
}

/// Every db either side has, compared on keys and expires.
pub fn compare(
    node: &str,
    master: &BTreeMap<u32, DbCounts>,
    other: &BTreeMap<u32, DbCounts>,
) -> Vec<Mismatch> {
    let dbs: BTreeSet<u32> = master.keys().chain(other.keys()).copied().collect();
    dbs.into_iter()
        .filter_map(|db| {
            let m = master.get(&db).copied().unwrap_or_default();
            let o = other.get(&db).copied().unwrap_or_default();
            (m != o).then(|| Mismatch {
                node: node.to_string(),
                db: format!("db{db}"),
                master_keys: m.keys,
                node_keys: o.keys,
                master_expires: m.expires,
                node_expires: o.expires,
            })
        })
        .collect()
}

/// One `.parity` check per replica (or one skipped `parity` without replicas).
pub fn checks(d: &KeycountDetails) -> Vec<Check> {
    let (nodes, mismatches) = (&d.nodes, &d.mismatches);
    if nodes.len() < 2 {
        return vec![Check::skip(
            "parity",
            "not run: the topology has no replica, so there are no counts to compare",
        )];
    }
    nodes[1..]
        .iter()
        .map(|n| {
            let name = format!("{}.parity", n.name);
            match n.status {
                NodeStatus::Parity => Check::pass(name, parity_reason(n)),
                NodeStatus::Down => {
                    Check::fail(name, format!("down: {}", n.reason.as_deref().unwrap_or("")))
                }
                NodeStatus::NotFollowing => Check::fail(
                    name,
                    format!(
                        "not compared: {}",
                        n.reason
                            .as_deref()
                            .unwrap_or("it does not follow this master")
                    ),
                ),
                NodeStatus::Syncing => Check::fail(
                    name,
                    format!(
                        "syncing, counts not comparable yet: {}",
                        n.reason.as_deref().unwrap_or("")
                    ),
                ),
                _ => {
                    let why: Vec<String> = mismatches
                        .iter()
                        .filter(|m| m.node == n.name)
                        .map(|m| {
                            format!(
                                "{}: {} keys ({} with TTL) vs master {} ({} with TTL)",
                                m.db, m.node_keys, m.node_expires, m.master_keys, m.master_expires
                            )
                        })
                        .collect();
                    Check::fail(
                        name,
                        format!("{} differs from the master: {}", n.name, why.join("; ")),
                    )
                }
            }
        })
        .collect()
}

/// The gate's one line when every replica has the master's counts.
pub fn summary(d: &KeycountDetails) -> String {
    let dbs = d.nodes.first().map(|n| n.dbs.len()).unwrap_or(0) as u64;
    let replicas = d.nodes.len().saturating_sub(1) as u64;
    format!(
        "{} {} the master's key counts in {} (a count check; `redlab compare` compares data)",
        plural(replicas, "replica"),
        if replicas == 1 { "has" } else { "have" },
        plural(dbs, "db")
    )
}

fn parity_reason(n: &NodeCounts) -> String {
    let keys: u64 = n.dbs.values().map(|c| c.keys).sum();
    let what = match n.dbs.len() {
        0 => "every db empty".to_string(),
        1 => format!("{} in 1 db", crate::report::plural(keys, "key")),
        dbs => format!("{} in {dbs} dbs", crate::report::plural(keys, "key")),
    };
    format!(
        "same key counts as the master ({what}); a count check, not a data comparison (`redlab compare` compares values)"
    )
}

fn status_word(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Parity => "parity",
        NodeStatus::Mismatch => "mismatch",
        NodeStatus::Syncing => "syncing",
        NodeStatus::Down => "down",
        NodeStatus::NotFollowing => "not following",
        NodeStatus::Master => "master",
    }
}

impl Details for KeycountDetails {
    fn sections(&self) -> Vec<Section> {
        let dbs: BTreeSet<&String> = self.nodes.iter().flat_map(|n| n.dbs.keys()).collect();
        let mut header: Vec<&str> = vec!["node", "address", "status"];
        let names: Vec<String> = dbs.iter().map(|d| format!("{d} keys/expires")).collect();
        header.extend(names.iter().map(String::as_str));
        let mut s = Section::new("Key counts", &header);
        for n in &self.nodes {
            let mut row = vec![
                n.name.clone(),
                n.address.clone(),
                status_word(n.status).into(),
            ];
            for d in &dbs {
                let c = n.dbs.get(*d).copied().unwrap_or_default();
                row.push(format!("{}/{}", c.keys, c.expires));
            }
            s.row(row);
        }
        if dbs.is_empty() {
            s.notes.push("every database is empty on every node".into());
        }
        s.notes.push(match self.settled_ms {
            Some(ms) => format!(
                "replicas caught up in {ms:.1} ms; counts read {}",
                match self.reads {
                    1 => "once".to_string(),
                    n => format!("{n} times"),
                }
            ),
            None => format!(
                "replicas did not all catch up within {:.0} ms",
                self.settle_ms
            ),
        });
        vec![s]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_db_and_both_counts() {
        let m = BTreeMap::from([
            (
                0,
                DbCounts {
                    keys: 10,
                    expires: 2,
                },
            ),
            (
                3,
                DbCounts {
                    keys: 1,
                    expires: 0,
                },
            ),
        ]);
        let mut r = m.clone();
        assert!(compare("replica1", &m, &r).is_empty());
        r.insert(
            0,
            DbCounts {
                keys: 11,
                expires: 2,
            },
        );
        r.remove(&3);
        let found = compare("replica1", &m, &r);
        assert_eq!(found.len(), 2);
        assert_eq!(
            (
                found[0].db.as_str(),
                found[0].master_keys,
                found[0].node_keys
            ),
            ("db0", 10, 11)
        );
        assert_eq!((found[1].db.as_str(), found[1].node_keys), ("db3", 0));
    }
}
