//! The query box's cache-aside, on the real topology: read the entry on a
//! replica that is up (round robin; the master when none is), and on a miss
//! ask the slow simulated source, SET the answer with its TTL on the master,
//! and time the write until each replica can read it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::nodes::visible;
use super::state::{lock, unix_ms, Entry, State};
use crate::duration::ms;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Distinct entries the page keeps at once (each is a key on the master).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Serialize)]
pub struct NodeRef {
    pub name: String,
    pub address: String,
    /// `master` or `replica`.
    pub role: crate::topology::Role,
}

#[derive(Debug, Serialize)]
pub struct ReplicaSeen {
    pub name: String,
    pub address: String,
    /// Time from the master's reply to the SET until the entry was readable here, ms.
    pub visible_after_ms: Option<f64>,
    /// Why it was not seen.
    pub error: Option<String>,
}

/// The answer to `POST /api/query`: the workshop's fields (query, result,
/// timestamp, source) and what redlab measured.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub query: String,
    pub result: String,
    /// When the source produced the answer (RFC 3339).
    pub timestamp: String,
    /// `cache` or `database`, as the workshop said.
    pub source: String,
    pub cache_hit: bool,
    /// `HIT` or `MISS`.
    pub outcome: String,
    /// The lookup as the user waited for it (read, and on a miss the source and the SET), ms.
    pub elapsed_ms: f64,
    /// The same, in seconds, as the workshop's page showed it.
    pub response_time: f64,
    /// The node that served the cache read.
    pub served_by: NodeRef,
    /// The entry's key (under redlab's prefix).
    pub key: String,
    /// Miss: the master the entry was written to, and the SET's round trip, ms.
    pub written_to: Option<NodeRef>,
    pub write_ms: Option<f64>,
    /// Miss: the TTL it was written with, s.
    pub ttl_s: Option<f64>,
    /// Miss: when each replica could read it.
    pub replicas: Vec<ReplicaSeen>,
    /// Set when the read on a replica failed and the master answered instead.
    pub note: Option<String>,
}

pub fn node_ref(state: &State, i: usize) -> NodeRef {
    let n = &state.nodes[i];
    NodeRef {
        name: n.node.name.clone(),
        address: n.node.addr(),
        role: n.node.role,
    }
}

/// A query's text, or why it is refused (shown to the user as is).
pub fn validate(q: &str) -> Result<String, String> {
    let q = q.trim();
    if q.is_empty() {
        return Err("the query is empty: type some text".into());
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "the query is longer than {MAX_QUERY_CHARS} characters"
        ));
    }
    if q.chars().any(char::is_control) {
        return Err("the query contains control characters".into());
    }
    Ok(q.to_string())
}

/// A stable made-up answer, so that the same query always gets the same result.
pub(crate) fn answer(query: &str) -> String {
    let n = query
        .bytes()
        .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        % 9000
        + 1000;
    format!("{n} rows match \"{query}\"")
}

/// The node to read from: the next replica of the shard that is up, else the master.
fn reader(state: &State, shard: usize) -> usize {
    let sh = &state.shards[shard];
    let up: Vec<usize> = sh
        .replicas
        .iter()
        .copied()
        .filter(|&r| state.nodes[r].up())
        .collect();
    if up.is_empty() {
        return sh.master;
    }
    up[state.next_read.fetch_add(1, Ordering::Relaxed) % up.len()]
}

/// Cache-aside for one query. Errors name the node and are shown to the user.
pub async fn lookup(state: &Arc<State>, query: String) -> Result<Answer, String> {
    let shard = state.shard_for(&query);
    let sh = &state.shards[shard];
    let key = format!("{}query:{query}", sh.prefix);
    let t0 = Instant::now();
    let mut from = reader(state, shard);
    let mut note = None;
    let read = read(state, from, &key).await;
    let cached = match read {
        Ok(v) => v,
        Err(e) if from != sh.master => {
            note = Some(format!("{e}; the master answered instead"));
            from = sh.master;
            read_master(state, shard, &key).await?
        }
        Err(e) => return Err(e),
    };
    if let Some(text) = cached {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let field = |f: &str| {
            v.get(f)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let elapsed_ms = ms(t0.elapsed());
        return Ok(Answer {
            query,
            result: field("result"),
            timestamp: field("timestamp"),
            source: "cache".into(),
            cache_hit: true,
            outcome: "HIT".into(),
            elapsed_ms,
            response_time: elapsed_ms / 1e3,
            served_by: node_ref(state, from),
            key,
            written_to: None,
            write_ms: None,
            ttl_s: None,
            replicas: Vec::new(),
            note,
        });
    }
    if lock(&state.entries).len() >= MAX_ENTRIES && !lock(&state.entries).contains_key(&key) {
        return Err(format!(
            "the page already holds {MAX_ENTRIES} cached entries: clear them (GET /api/cache/clear) first"
        ));
    }
    // The simulated database: its slowness is the point of the demo.
    tokio::time::sleep(state.cfg.source_delay).await;
    let timestamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let result = answer(&query);
    let value = serde_json::json!({
        "query": query,
        "result": result,
        "timestamp": timestamp,
        "source": "database",
    })
    .to_string();
    let master = &state.nodes[sh.master];
    let mut m = master.conn().await.map_err(|e| e.to_string())?;
    sh.own(&key);
    let ttl_ms = state.cfg.ttl.as_millis().max(1) as u64;
    let w0 = Instant::now();
    m.query::<()>(
        redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("PX")
            .arg(ttl_ms),
    )
    .await
    .map_err(|e| e.to_string())?;
    let written = Instant::now();
    let write_ms = ms(written - w0);
    let elapsed_ms = ms(t0.elapsed());
    let generation = state.generation.fetch_add(1, Ordering::Relaxed) + 1;
    let expires_at = written + state.cfg.ttl;
    lock(&state.entries).insert(
        key.clone(),
        Entry {
            query: query.clone(),
            shard,
            expires_at,
            expires_at_unix_ms: unix_ms(SystemTime::now()) + ttl_ms,
            generation,
        },
    );
    let seen = futures_util::future::join_all(sh.replicas.iter().map(|&r| {
        let slot = &state.nodes[r];
        let value = value.clone();
        let key = key.clone();
        async move {
            let (visible_after_ms, error) = if slot.up() {
                match visible(slot, &key, value, written, state.run_timeout).await {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(e)),
                }
            } else {
                (None, Some("down: not read".to_string()))
            };
            ReplicaSeen {
                name: slot.node.name.clone(),
                address: slot.node.addr(),
                visible_after_ms,
                error,
            }
        }
    }))
    .await;
    super::expiry::spawn(state.clone(), key.clone(), generation);
    Ok(Answer {
        query,
        result,
        timestamp,
        source: "database".into(),
        cache_hit: false,
        outcome: "MISS".into(),
        elapsed_ms,
        response_time: elapsed_ms / 1e3,
        served_by: node_ref(state, from),
        key,
        written_to: Some(node_ref(state, sh.master)),
        write_ms: Some(write_ms),
        ttl_s: Some(state.cfg.ttl.as_secs_f64()),
        replicas: seen,
        note,
    })
}

async fn read(state: &State, node: usize, key: &str) -> Result<Option<String>, String> {
    let slot = &state.nodes[node];
    let mut c = slot.conn().await.map_err(|e| e.to_string())?;
    c.query(redis::cmd("GET").arg(key)).await.map_err(|e| {
        slot.broken();
        e.to_string()
    })
}

async fn read_master(state: &State, shard: usize, key: &str) -> Result<Option<String>, String> {
    read(state, state.shards[shard].master, key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_trimmed_and_bounded() {
        assert_eq!(validate("  active users ").unwrap(), "active users");
        assert!(validate("   ").unwrap_err().contains("empty"));
        assert!(validate(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
        assert!(validate(&"é".repeat(MAX_QUERY_CHARS + 1))
            .unwrap_err()
            .contains("longer than 200"));
        assert!(validate("a\u{0}b").unwrap_err().contains("control"));
        assert!(validate("<b>markup</b> is text").is_ok());
    }

    #[test]
    fn the_same_query_gets_the_same_answer() {
        assert_eq!(answer("x"), answer("x"));
        assert!(answer("active users").ends_with("rows match \"active users\""));
    }
}
