//! An entry's expiry, seen on every node of its shard: when the master
//! dropped the key (its PTTL answers -2: the master deletes an expired key
//! as soon as it is touched, and sends its replicas a DEL), and when that DEL
//! reached each replica (`MEMORY USAGE` finds the key in the replica's
//! keyspace until then; a replica only hides an expired key from reads).
//! Each node is polled by its own loop; the gap is replica minus master.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::state::{lock, State};
use crate::duration::ms;

/// Expiry watches at once; entries past it are not watched (the page says so).
const MAX_WATCHES: usize = 32;
/// How long before the expected expiry polling starts.
const LEAD: Duration = Duration::from_millis(300);
/// How long after it the key may take to leave every node.
const GRACE: Duration = Duration::from_secs(10);
/// Poll period on the master, and on the replicas.
const MASTER_POLL: Duration = Duration::from_millis(5);
const REPLICA_POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Serialize)]
struct NodeGone {
    name: String,
    address: String,
    role: String,
    /// When the key left this node, ms after its expected expiry.
    gone_after_expiry_ms: Option<f64>,
    /// Replicas: when the DEL arrived after the master dropped the key, ms.
    gap_ms: Option<f64>,
    /// ± of the moment: half the time between the last reading that found
    /// the key and the first that did not, ms.
    resolution_ms: Option<f64>,
    /// `pttl` (master), `memory-usage` (replica keyspace) or `exists` (hidden from reads only).
    measured_by: String,
    error: Option<String>,
}

/// Watch `key` (the write of `generation`) expire, in the background.
pub fn spawn(state: Arc<State>, key: String, generation: u64) {
    if state.watches.fetch_add(1, Ordering::Relaxed) >= MAX_WATCHES {
        state.watches.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    tokio::spawn(async move {
        watch(&state, &key, generation).await;
        state.watches.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn watch(state: &State, key: &str, generation: u64) {
    let Some(entry) = lock(&state.entries).get(key).cloned() else {
        return;
    };
    tokio::time::sleep_until((entry.expires_at - LEAD.min(state.cfg.ttl / 2)).into()).await;
    let sh = &state.shards[entry.shard];
    // Every node polled at once, each on its own loop, from before the expiry.
    let order: Vec<usize> = std::iter::once(sh.master)
        .chain(sh.replicas.iter().copied())
        .collect();
    let mut seen = futures_util::future::join_all(
        order
            .iter()
            .map(|&i| poll(state, i, key, entry.expires_at, i != sh.master)),
    )
    .await;
    // Removed before its time (cleared, or written again): nothing to report.
    let current = lock(&state.entries).get(key).map(|e| e.generation) == Some(generation);
    let master_at = seen[0].0;
    if !current || master_at.is_some_and(|m| m + Duration::from_millis(50) < entry.expires_at) {
        return;
    }
    let nodes = order
        .iter()
        .zip(seen.drain(..))
        .map(|(&i, s)| {
            describe(
                state,
                i,
                s,
                master_at.filter(|_| i != sh.master),
                entry.expires_at,
            )
        })
        .collect();
    finish(state, key, generation, &entry, nodes);
}

type Seen = (
    Option<Instant>,
    Option<Duration>,
    &'static str,
    Option<String>,
);

fn describe(
    state: &State,
    i: usize,
    seen: Seen,
    master_at: Option<Instant>,
    expected: Instant,
) -> NodeGone {
    let n = &state.nodes[i];
    let (at, res, how, error) = seen;
    let signed = |a: Instant, b: Instant| {
        if a >= b {
            ms(a - b)
        } else {
            -ms(b - a)
        }
    };
    NodeGone {
        name: n.node.name.clone(),
        address: n.node.addr(),
        role: if n.is_master() { "master" } else { "replica" }.into(),
        gone_after_expiry_ms: at.map(|a| signed(a, expected)),
        gap_ms: match (at, master_at) {
            (Some(a), Some(m)) => Some(signed(a, m).max(0.0)),
            _ => None,
        },
        resolution_ms: res.map(|r| ms(r) / 2.0),
        measured_by: how.into(),
        error,
    }
}

fn finish(
    state: &State,
    key: &str,
    generation: u64,
    entry: &super::state::Entry,
    nodes: Vec<NodeGone>,
) {
    {
        let mut e = lock(&state.entries);
        if e.get(key).map(|x| x.generation) == Some(generation) {
            e.remove(key);
        }
    }
    state.add_expiry(serde_json::json!({
        "query": entry.query,
        "key": key,
        "expected_at_ms": entry.expires_at_unix_ms,
        "nodes": nodes,
    }));
}

/// Poll one node until the key has left it: the moment (middle of the window
/// it left in), the window's width, how it was read, or why not.
async fn poll(state: &State, i: usize, key: &str, expected: Instant, replica: bool) -> Seen {
    let slot = &state.nodes[i];
    let deadline = expected + GRACE;
    let mut how: &'static str = if replica { "memory-usage" } else { "pttl" };
    let mut last_present: Option<Instant> = None;
    let mut c = match slot.conn().await {
        Ok(c) => c,
        Err(e) => return (None, None, how, Some(e.message)),
    };
    loop {
        if Instant::now() > deadline {
            return (
                None,
                None,
                how,
                Some(format!(
                    "still held the key {} after its expiry",
                    humantime::format_duration(GRACE)
                )),
            );
        }
        let sent = Instant::now();
        let present = match how {
            "pttl" => c
                .query::<i64>(redis::cmd("PTTL").arg(key))
                .await
                .map(|t| t != -2),
            "memory-usage" => {
                match c
                    .query::<Option<u64>>(redis::cmd("MEMORY").arg("USAGE").arg(key))
                    .await
                {
                    Ok(v) => Ok(v.is_some()),
                    // MEMORY denied or renamed: the moment it hides the key from reads.
                    Err(_) => {
                        how = "exists";
                        continue;
                    }
                }
            }
            _ => c
                .query::<u64>(redis::cmd("EXISTS").arg(key))
                .await
                .map(|n| n > 0),
        };
        match present {
            Ok(true) => last_present = Some(sent),
            Ok(false) => {
                let got = Instant::now();
                let from = last_present.unwrap_or(sent);
                let mid = from + (got - from) / 2;
                return (Some(mid), Some(got - from), how, None);
            }
            Err(e) => return (None, None, how, Some(e.message)),
        }
        tokio::time::sleep(if replica { REPLICA_POLL } else { MASTER_POLL }).await;
    }
}
