//! After the fault: when the lab is whole again, what each node's
//! replication counters and logs say about resyncs, and which acknowledged
//! writes the new master (and each of its replicas) still has.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::owned::{Plan, PROBE};
use crate::client::Conn;
use crate::discover::sentinel::{agreed_master, flags_down, views, SentinelView};
use crate::replication::wait_caught_up;
use crate::topology::Node;

/// One node's replication facts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snap {
    /// `run_id`: it changes when the process restarts (and its counters restart).
    pub run_id: String,
    /// `master` or `slave`.
    pub role: String,
    /// `master_repl_offset`, bytes.
    pub offset: u64,
    /// Full resyncs this node served as a master (`sync_full`).
    pub sync_full: u64,
    /// Partial resyncs it accepted (`sync_partial_ok`).
    pub sync_partial_ok: u64,
    /// Partial resyncs it refused (`sync_partial_err`).
    pub sync_partial_err: u64,
}

/// Every node's facts now (None where it does not answer), each bounded on its own.
pub async fn snapshot(nodes: &[Node], timeout: Duration) -> Vec<Option<Snap>> {
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|n| {
            tokio::spawn(async move {
                let mut c = Conn::connect(&n, timeout).await.ok()?;
                let i = c
                    .info_sections(&["server", "replication", "stats"])
                    .await
                    .ok()?;
                Some(Snap {
                    run_id: i.get("run_id").unwrap_or("").to_string(),
                    role: i.role().to_string(),
                    offset: i.repl_offset(),
                    sync_full: i.u64("sync_full").unwrap_or(0),
                    sync_partial_ok: i.u64("sync_partial_ok").unwrap_or(0),
                    sync_partial_err: i.u64("sync_partial_err").unwrap_or(0),
                })
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or(None));
    }
    out
}

/// The lab whole again: which node is the master, and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stable {
    pub master: usize,
    pub replicas: Vec<usize>,
}

/// Whole means: the answering Sentinels agree on a master that is one of
/// the lab's nodes and answers as a master; every other node is its
/// replica, link up, not syncing, and listed online by it.
pub async fn check_stable(plan: &Plan) -> Result<Stable, String> {
    let all = views(&plan.sentinels, PROBE).await;
    let (host, port) = agreed_master(&plan.sentinels, &all).map_err(|e| e.to_string())?;
    let master = plan.index_of_port(port).ok_or_else(|| {
        format!(
            "the Sentinels name {}, not a lab node",
            crate::topology::host_port(&host, port)
        )
    })?;
    sentinels_see_all_up(plan, master, &all)?;
    let infos = snapshot_infos(&plan.nodes).await;
    let m = &plan.nodes[master];
    let minfo = infos[master]
        .as_ref()
        .ok_or_else(|| format!("{} (the Sentinels' master) does not answer", m.label()))?;
    if !minfo.is_master() {
        return Err(format!("{} is not a master yet", m.label()));
    }
    let listed = minfo.replicas();
    let mut replicas = Vec::new();
    for (i, n) in plan.nodes.iter().enumerate().filter(|(i, _)| *i != master) {
        let Some(info) = &infos[i] else {
            return Err(format!("{} does not answer", n.name));
        };
        let follows = info.follows().map(|(_, p)| p) == Some(m.port());
        if info.is_master() || !follows {
            return Err(format!("{} is not a replica of {} yet", n.name, m.name));
        }
        if !info.link_up() || info.syncing() {
            return Err(format!("{}: link not up, or syncing", n.name));
        }
        let online = listed
            .iter()
            .any(|l| l.port == n.port() && l.state == crate::client::LinkState::Online);
        if !online {
            return Err(format!("{} does not list {} online yet", m.name, n.name));
        }
        replicas.push(i);
    }
    Ok(Stable { master, replicas })
}

/// Every Sentinel answers, sees the master up and every other node as an up replica.
fn sentinels_see_all_up(
    plan: &Plan,
    master: usize,
    all: &[Result<SentinelView, crate::client::NodeError>],
) -> Result<(), String> {
    for (s, v) in plan.sentinels.nodes.iter().zip(all) {
        let v = v
            .as_ref()
            .map_err(|e| format!("{}: {}", s.name, e.message))?;
        if flags_down(&v.master_flags) {
            return Err(format!("{} still flags the master down", s.name));
        }
        for (_, n) in plan.nodes.iter().enumerate().filter(|(i, _)| *i != master) {
            let up = v
                .replicas
                .iter()
                .any(|r| r.port == n.port() && !r.is_down());
            if !up {
                return Err(format!(
                    "{} does not see {} up as a replica yet",
                    s.name, n.name
                ));
            }
        }
    }
    Ok(())
}

async fn snapshot_infos(nodes: &[Node]) -> Vec<Option<crate::client::Info>> {
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|n| {
            tokio::spawn(async move {
                let mut c = Conn::connect(&n, PROBE).await.ok()?;
                c.info("replication").await.ok()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or(None));
    }
    out
}

/// Poll until `check_stable` and `also` hold, or `until`; the last reason
/// it was not, when it never was.
pub async fn wait_stable(
    plan: &Plan,
    until: Instant,
    also: impl Fn(&Stable) -> Option<String>,
) -> Result<(Stable, Instant), String> {
    loop {
        let why = match check_stable(plan).await {
            Ok(s) => match also(&s) {
                None => return Ok((s, Instant::now())),
                Some(why) => why,
            },
            Err(why) => why,
        };
        if Instant::now() >= until {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Which acknowledged ids a node still has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRead {
    /// Its lab name.
    pub name: String,
    /// host:port.
    pub address: String,
    /// Caught up with the master and read.
    pub compared: bool,
    /// Why not, when not.
    pub not_compared_because: Option<String>,
    /// Ids the master has that this replica does not.
    pub missing: u64,
    /// Ids this replica has that the master does not.
    pub extra: u64,
}

pub struct ReadBack {
    /// The ids found on the master.
    pub present: HashSet<u64>,
    pub replicas: Vec<ReplicaRead>,
}

/// Read `ids` back from the master, then from each replica once it has
/// caught up with the master's offset (bounded by `settle`).
pub async fn read_back(
    master: &Node,
    replicas: &[Node],
    ids: &[u64],
    prefix: &str,
    timeout: Duration,
    settle: Duration,
) -> anyhow::Result<ReadBack> {
    let mut m = Conn::connect(master, timeout).await?;
    let present = ids_present(&mut m, ids, prefix).await?;
    let offset = m.info("replication").await?.repl_offset();
    let mut out = Vec::new();
    for r in replicas {
        let mut row = ReplicaRead {
            name: r.name.clone(),
            address: r.addr(),
            ..ReplicaRead::default()
        };
        match Conn::connect(r, timeout).await {
            Err(e) => row.not_compared_because = Some(e.message),
            Ok(c) => {
                let start = Instant::now();
                let every = Duration::from_millis(50);
                let caught = wait_caught_up(c.clone(), offset, start, start + settle, every).await;
                if let Some((_, why)) = caught.behind {
                    row.not_compared_because = Some(why);
                } else {
                    let mut c = c;
                    let here = ids_present(&mut c, ids, prefix).await?;
                    row.compared = true;
                    row.missing = present_diff(&present, &here);
                    row.extra = present_diff(&here, &present);
                }
            }
        }
        out.push(row);
    }
    Ok(ReadBack {
        present,
        replicas: out,
    })
}

fn present_diff(a: &HashSet<u64>, b: &HashSet<u64>) -> u64 {
    a.difference(b).count() as u64
}

async fn ids_present(c: &mut Conn, ids: &[u64], prefix: &str) -> anyhow::Result<HashSet<u64>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(500) {
        let mut cmd = redis::cmd("MGET");
        for id in chunk {
            cmd.arg(format!("{prefix}{id}"));
        }
        let values: Vec<Option<Vec<u8>>> = c.query(&cmd).await?;
        for (id, v) in chunk.iter().zip(values) {
            // The value starts with the id: a stray key of the same name is not ours.
            let ours = v.is_some_and(|v| v.starts_with(format!("{id}:").as_bytes()));
            if ours {
                out.insert(*id);
            }
        }
    }
    Ok(out)
}

/// Where each node's log ends now, to read only what comes after.
pub fn log_marks(paths: &[&Path]) -> Vec<u64> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect()
}

/// Resyncs a replica logged after `from`: (full, partial).
pub fn resyncs_logged(path: &Path, from: u64) -> (u32, u32) {
    let text = std::fs::read(path).unwrap_or_default();
    let start = (from as usize).min(text.len());
    count_resyncs(&String::from_utf8_lossy(&text[start..]))
}

/// Redis 7 logs these on the replica's side (replication.c).
fn count_resyncs(log: &str) -> (u32, u32) {
    let full = log.matches("Full resync from master:").count() as u32;
    let partial = log
        .matches("Master accepted a Partial Resynchronization")
        .count() as u32;
    (full, partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resyncs_from_a_replica_log() {
        // Captured from Redis 7.0.15.
        let log = "\
4539:S 30 Nov 2026 00:17:29.404 * Trying a partial resynchronization (request ed1b:15076).
4539:S 30 Nov 2026 00:17:29.404 * Full resync from master: 742b8dc9:15643
4538:S 30 Nov 2026 00:16:50.640 * MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.
4538:S 30 Nov 2026 00:16:50.640 * Successful partial resynchronization with master.
";
        assert_eq!(count_resyncs(log), (1, 1));
        assert_eq!(count_resyncs(""), (0, 0));
    }
}
