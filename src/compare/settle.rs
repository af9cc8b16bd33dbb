//! Settle: a bounded wait until each replica follows this master, its link is
//! up, it is not syncing, and its offset has reached the master's offset as
//! it was when the wait began (so it holds everything written before the
//! comparison started). A replica "follows this master" when it has the
//! master's replication id AND the master lists it among its own replicas by
//! ip:port: a replica chained behind another replica has the same id.
//!
//! Under continuous writes a replica may stay behind: at the bound it is
//! `lagging` and still compared (the re-check rounds absorb in-flight writes).
//! A syncing, link-down, foreign or unreachable replica is never compared:
//! its data means nothing yet, or nothing about this master.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::client::{Conn, Info, NodeError};
use crate::replication::{self, Standing};
use crate::topology::{Node, Topology};

/// A replica as the comparison gets it: its address and a connection, or
/// why there is none.
#[derive(Clone)]
pub struct Endpoint {
    pub node: Node,
    pub conn: Result<Conn, NodeError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleState {
    /// Follows this master, link up, offset reached: compared.
    CaughtUp,
    /// Follows this master with its link up but had not reached the offset
    /// within the bound: compared, relying on the re-check rounds.
    Lagging,
    /// Loading or in a full sync: not compared.
    Syncing,
    /// Its link to the master is down: not compared.
    LinkDown,
    /// A master itself, another master's replica, or chained behind a replica: not compared.
    NotFollowing,
    /// Unreachable: not compared.
    Down,
}

/// How one replica ended the wait.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settle {
    /// caught_up, lagging, syncing, link_down, not_following or down.
    pub state: SettleState,
    /// What was seen last, in one line.
    pub detail: String,
    /// How long it took to catch up, ms; null if it did not.
    pub caught_up_ms: Option<f64>,
    /// Bytes behind the master's starting offset when the wait ended (lagging only).
    pub behind_bytes: Option<u64>,
}

impl Settle {
    /// Whether its data may be compared with the master's.
    pub fn comparable(&self) -> bool {
        matches!(self.state, SettleState::CaughtUp | SettleState::Lagging)
    }

    fn down(e: &NodeError) -> Settle {
        Settle {
            state: SettleState::Down,
            detail: e.message.clone(),
            caught_up_ms: None,
            behind_bytes: None,
        }
    }
}

/// Wait up to `bound` for every replica; one status per replica, in order.
pub async fn settle(
    master: &Conn,
    replicas: &[Endpoint],
    topo: &Topology,
    bound: Duration,
) -> Result<Vec<Settle>, NodeError> {
    let start = Instant::now();
    let deadline = start + bound;
    let mut m = master.clone();
    let target = m.info("replication").await?.repl_offset();
    let mut done: Vec<Option<Settle>> = replicas
        .iter()
        .map(|r| r.conn.as_ref().err().map(Settle::down))
        .collect();
    let mut last: Vec<Option<Settle>> = vec![None; replicas.len()];
    loop {
        let minfo = m.info("replication").await?;
        let pending: Vec<usize> = (0..replicas.len()).filter(|i| done[*i].is_none()).collect();
        let infos = join_all(pending.iter().map(|&i| {
            let conn = replicas[i].conn.clone();
            async move {
                match conn {
                    Ok(mut c) => c.info("replication").await,
                    Err(e) => Err(e),
                }
            }
        }))
        .await;
        for (i, info) in pending.into_iter().zip(infos) {
            let seen = match info {
                Err(e) => Settle::down(&e),
                Ok(info) => judge(&replicas[i].node, &info, &minfo, topo, target),
            };
            match seen.state {
                SettleState::CaughtUp | SettleState::Down => {
                    done[i] = Some(Settle {
                        caught_up_ms: (seen.state == SettleState::CaughtUp)
                            .then(|| crate::duration::ms(start.elapsed())),
                        ..seen
                    })
                }
                _ => last[i] = Some(seen),
            }
        }
        if done.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(done
        .into_iter()
        .zip(last)
        .map(|(d, l)| {
            d.or(l).unwrap_or_else(|| Settle {
                state: SettleState::Down,
                detail: "never answered INFO".into(),
                caught_up_ms: None,
                behind_bytes: None,
            })
        })
        .collect())
}

/// One look at a replica's INFO replication against the master's, by the
/// rule every check uses (`replication::judge`), then its offset against the
/// master's when the wait began.
fn judge(node: &Node, info: &Info, minfo: &Info, topo: &Topology, target: u64) -> Settle {
    let state = |state, detail: String| Settle {
        state,
        detail,
        caught_up_ms: None,
        behind_bytes: None,
    };
    let v = replication::judge(node, info, minfo, topo);
    let not = match v.standing {
        Standing::Follows => None,
        Standing::Syncing => Some(SettleState::Syncing),
        Standing::LinkDown => Some(SettleState::LinkDown),
        Standing::Unreachable => Some(SettleState::Down),
        Standing::NotReplica | Standing::Elsewhere => Some(SettleState::NotFollowing),
    };
    if let Some(not) = not {
        let detail = match not {
            SettleState::Syncing => format!(
                "{}: its data is not complete yet, so it was not compared",
                replication::sync_progress(info)
            ),
            _ => v.reason(),
        };
        return state(not, detail);
    }
    let offset = info.u64("slave_repl_offset").unwrap_or(0);
    if offset < target {
        return Settle {
            behind_bytes: Some(target - offset),
            ..state(
                SettleState::Lagging,
                format!(
                    "offset {offset} still {} behind the master's {target}: compared anyway, in-flight writes are re-checked in later rounds",
                    crate::report::human_bytes_or_zero(target - offset)
                ),
            )
        };
    }
    state(
        SettleState::CaughtUp,
        format!("follows this master with its link up and offset {offset} reached {target}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Role;

    const MASTER: &str = "role:master\r\nconnected_slaves:1\r\n\
        slave0:ip=127.0.0.1,port=6380,state=online,offset=500,lag=0\r\n\
        master_replid:aaaa\r\nmaster_repl_offset:500\r\n";

    fn replica(extra: &str) -> Info {
        Info::parse(&format!(
            "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\n\
             master_link_status:up\r\nmaster_sync_in_progress:0\r\n\
             master_replid:aaaa\r\nslave_repl_offset:500\r\n{extra}"
        ))
    }

    fn look(node_port: u16, info: &Info, target: u64) -> Settle {
        let node =
            Node::parse("replica1", Role::Replica, &format!("127.0.0.1:{node_port}")).unwrap();
        let m = Info::parse(MASTER);
        let topo =
            crate::topology::loopback_topology(&[("master", 6379), ("replica1", 6380)], None);
        judge(&node, info, &m, &topo, target)
    }

    #[test]
    fn follows_this_master_only_with_its_id_and_its_listing() {
        assert_eq!(look(6380, &replica(""), 500).state, SettleState::CaughtUp);
        let lag = look(6380, &replica(""), 700);
        assert_eq!(
            (lag.state, lag.behind_bytes),
            (SettleState::Lagging, Some(200))
        );
        // Chained behind another replica: same id, not listed by the master.
        let chained = look(6390, &replica(""), 500);
        assert_eq!(chained.state, SettleState::NotFollowing);
        assert!(chained
            .detail
            .contains("not among the master's own replicas"));
        let other = look(6380, &replica("master_replid:bbbb\r\n"), 500);
        assert_eq!(other.state, SettleState::NotFollowing);
        let syncing = look(
            6380,
            &replica("master_sync_in_progress:1\r\nmaster_sync_read_bytes:10\r\n"),
            500,
        );
        assert_eq!(syncing.state, SettleState::Syncing);
        assert!(!syncing.comparable() && lag.comparable());
        let down = look(6380, &replica("master_link_status:down\r\n"), 500);
        assert_eq!(down.state, SettleState::LinkDown);
    }
}
