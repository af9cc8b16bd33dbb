//! What the load did to replication: each replica's lag right after it and
//! the time to catch up, and whether any replica lost its link and resynced
//! while redlab wrote (a load can break replication by itself, when a
//! replica's output buffer passes its hard limit).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::details::CatchUp;
use crate::client::{Conn, Info};
use crate::replication::{self, Standing};
use crate::survey::{Master, Survey};

/// Resync counters on the master and each replica's connection to it.
#[derive(Debug, Clone)]
pub struct Links {
    sync_full: u64,
    sync_partial_ok: u64,
    /// Per replica: its connection to the master (`CLIENT LIST TYPE master`
    /// on the replica): a new client id is a new link.
    link_ids: Vec<Link>,
}

/// A replica's link to its master, as its own client list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Id(u64),
    /// It has no connection to a master.
    None,
    /// It did not say (no answer in time, or CLIENT not allowed).
    Unknown,
}

/// Resyncs seen while redlab wrote, over all rounds and the catch-up after.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resyncs {
    /// Full resyncs the master served during the load (`sync_full` delta).
    pub full: u64,
    /// Partial resyncs it accepted (`sync_partial_ok` delta).
    pub partial: u64,
    /// Replicas whose link to the master was re-established during the load.
    pub replicas_reconnected: Vec<String>,
}

impl Links {
    /// `stats`: an INFO of the master with its stats section, read just now
    /// (None: read it here).
    pub async fn read(master: &Master<'_>, survey: &Survey, stats: Option<&Info>) -> Links {
        let stats = match stats {
            Some(i) => i.clone(),
            None => master
                .conn
                .clone()
                .info("stats")
                .await
                .unwrap_or_else(|_| Info::parse("")),
        };
        let reads: Vec<_> = survey
            .replicas()
            .iter()
            .map(|st| st.conn.clone().map(|c| tokio::spawn(link_id(c))))
            .collect();
        let mut link_ids = Vec::new();
        for r in reads {
            link_ids.push(match r {
                Some(t) => t.await.unwrap_or(Link::Unknown),
                None => Link::Unknown,
            });
        }
        Links {
            sync_full: stats.u64("sync_full").unwrap_or(0),
            sync_partial_ok: stats.u64("sync_partial_ok").unwrap_or(0),
            link_ids,
        }
    }

    /// Add what changed between `self` (before a round) and `after`.
    pub fn add_changes(&self, after: &Links, survey: &Survey, into: &mut Resyncs) {
        into.full += after.sync_full.saturating_sub(self.sync_full);
        into.partial += after.sync_partial_ok.saturating_sub(self.sync_partial_ok);
        for ((st, b), a) in survey
            .replicas()
            .iter()
            .zip(&self.link_ids)
            .zip(&after.link_ids)
        {
            // A new link, or none where there was one: it lost its link.
            let changed = match (b, a) {
                (Link::Id(b), Link::Id(a)) => a != b,
                (Link::Id(_), Link::None) => true,
                _ => false,
            };
            if changed && !into.replicas_reconnected.contains(&st.node.name) {
                into.replicas_reconnected.push(st.node.name.clone());
            }
        }
    }
}

/// A replica that does not answer at once has no id here: its catch-up
/// check reports it, and one stalled node must not slow every round.
async fn link_id(mut c: Conn) -> Link {
    let cmd = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("master")
        .clone();
    let list: String = match tokio::time::timeout(Duration::from_millis(250), c.query(&cmd)).await {
        Ok(Ok(l)) => l,
        _ => return Link::Unknown,
    };
    let Some(line) = list.lines().find(|l| !l.trim().is_empty()) else {
        return Link::None;
    };
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("id="))
        .and_then(|v| v.parse().ok())
        .map_or(Link::Unknown, Link::Id)
}

/// Per replica: offset lag right after the load and the time to catch up.
pub async fn catch_up(master: &Master<'_>, survey: &Survey, settle: Duration) -> Vec<CatchUp> {
    if survey.replicas().is_empty() {
        return Vec::new();
    }
    let target = match master.conn.clone().info("replication").await {
        Ok(i) => i.repl_offset(),
        Err(_) => return Vec::new(),
    };
    let start = Instant::now();
    let deadline = start + settle;
    let mut tasks = Vec::new();
    for st in survey.replicas() {
        let task = st.conn.clone().map(|c| {
            tokio::spawn(replication::wait_caught_up(
                c,
                target,
                start,
                deadline,
                Duration::from_millis(2),
            ))
        });
        // Why it could not be asked (refused, timed out, wrong password).
        let why = st.error.as_ref().map_or_else(
            || "not reachable".to_string(),
            |e| format!("not reachable: {}", e.message),
        );
        tasks.push((st.node.name.clone(), st.node.addr(), task, why));
    }
    let mut out = Vec::new();
    for (name, address, task, why) in tasks {
        let c = match task {
            None => CatchUp {
                name,
                address,
                offset_lag_bytes_after_load: None,
                catch_up_ms: None,
                error: Some(why),
                reconnected: false,
            },
            Some(t) => {
                let r = t.await.expect("catch-up task does not panic");
                CatchUp {
                    name,
                    address,
                    offset_lag_bytes_after_load: r.first_lag_bytes,
                    catch_up_ms: r.caught_up_after.map(crate::duration::ms),
                    error: r.behind.map(|(standing, why)| match standing {
                        Standing::Follows => format!(
                            "not caught up within {}: {why}",
                            humantime::format_duration(settle)
                        ),
                        _ => why,
                    }),
                    reconnected: false,
                }
            }
        };
        out.push(c);
    }
    out
}
