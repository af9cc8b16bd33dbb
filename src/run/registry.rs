//! The run registry on the master: every run that writes leaves a record in
//! the hash `redlab:runs` (who, where, what it wrote) and keeps a heartbeat
//! key with a short TTL alive while it runs. A record whose heartbeat has
//! expired is a dead run: a later run finds it with one HGETALL and one
//! EXISTS per record (never a scan of the user's keyspace), counts what it
//! left, and says how to remove it (`redlab clean`).
//!
//! On a cluster each shard master keeps its own registry, `redlab:runs:{tag}`
//! with the shard's hash tag, recording what the run wrote on that shard
//! (see `runs_key`).
//!
//! The hash itself has no TTL (Redis 7.0 has no per-field expiry): it holds
//! one small record per run and each run removes its own at the end; a dead
//! run's record is removed by `redlab clean`, or by a later writing run once
//! nothing of it remains.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::ledger::RangeRecord;
use crate::client::{Conn, NodeError};

/// The hash of run records, field = run id: `redlab:runs` (in the namespace).
fn runs_base() -> String {
    format!("{}runs", super::namespace::root())
}
/// How long a heartbeat lives unless refreshed.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(15);
/// How often a live run refreshes it.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A dead run's keys counted one by one up to this many names; above it, a
/// sample is counted and the total estimated.
const COUNT_EXACT_UP_TO: u64 = 100_000;

/// The registry hash: `redlab:runs`, or on a cluster `redlab:runs:{tag}`
/// with the hash tag of the shard it is on. Each shard keeps the record of
/// what a run wrote there, next to those keys: reading or removing a record
/// never needs another shard, a shard that is lost takes only its own record
/// with it, and `clean` on one shard master is complete by itself.
pub fn runs_key(tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{}:{{{t}}}", runs_base()),
        None => runs_base(),
    }
}

/// The heartbeat, in the same slot as the registry that lists the run.
pub fn heartbeat_key(run_id: &str, tag: Option<&str>) -> String {
    format!("{}alive", super::namespace::run_prefix(run_id, tag))
}

/// The tag of a registry key (`redlab:runs:{tag}`), None for `redlab:runs`.
pub fn tag_of_runs_key(key: &str) -> Option<&str> {
    key.strip_prefix(runs_base().as_str())?
        .strip_prefix(":{")?
        .strip_suffix('}')
}

/// Whether a key is a registry hash (not a run's key).
pub fn is_runs_key(key: &str) -> bool {
    key == runs_base() || tag_of_runs_key(key).is_some()
}

/// What a run tells later runs about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// Host and pid of the redlab process.
    pub host: String,
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
    /// The subcommand.
    pub command: String,
    /// The database its keys are in.
    pub db: i64,
    /// Loads' keys (no TTL unless --key-ttl), as request ranges.
    #[serde(default)]
    pub ranges: Vec<RangeRecord>,
    /// Every other key it wrote carries a TTL and is gone by then (unix ms).
    #[serde(default)]
    pub expiring_keys_gone_by_ms: u64,
    /// The run has ended (it exited, or was interrupted) and left what its
    /// ranges say: it is dead at once, whatever its heartbeat's TTL, so the
    /// `clean --run` it printed works as soon as it has exited.
    #[serde(default)]
    pub finished: bool,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Write (or refresh) the record and the heartbeat, in one round trip.
pub async fn beat(conn: &mut Conn, rec: &RunRecord, tag: Option<&str>) -> Result<(), NodeError> {
    let json = serde_json::to_string(rec).unwrap_or_default();
    let mut p = redis::pipe();
    p.cmd("HSET")
        .arg(runs_key(tag))
        .arg(&rec.run_id)
        .arg(json)
        .ignore()
        .cmd("SET")
        .arg(heartbeat_key(&rec.run_id, tag))
        .arg(&rec.host)
        .arg("PX")
        .arg(HEARTBEAT_TTL.as_millis() as u64)
        .ignore();
    conn.pipe::<()>(&p).await
}

/// Remove the record and the heartbeat (everything of the run is gone).
pub async fn unregister(conn: &mut Conn, run_id: &str, tag: Option<&str>) -> Result<(), NodeError> {
    let mut p = redis::pipe();
    p.cmd("HDEL")
        .arg(runs_key(tag))
        .arg(run_id)
        .ignore()
        .cmd("DEL")
        .arg(heartbeat_key(run_id, tag))
        .ignore();
    conn.pipe::<()>(&p).await
}

/// Stop the heartbeat only: the record stays, so the run reads as dead and
/// what it left can be found.
pub async fn stop_heartbeat(
    conn: &mut Conn,
    run_id: &str,
    tag: Option<&str>,
) -> Result<(), NodeError> {
    conn.query::<u64>(redis::cmd("DEL").arg(heartbeat_key(run_id, tag)))
        .await
        .map(|_| ())
}

/// Every registered run, with whether it is alive (its heartbeat exists).
pub async fn runs(conn: &mut Conn, tag: Option<&str>) -> Result<Vec<(RunRecord, bool)>, NodeError> {
    let v: redis::Value = conn.query(redis::cmd("HGETALL").arg(runs_key(tag))).await?;
    let records: Vec<RunRecord> = crate::client::pairs(&v)
        .into_iter()
        .filter_map(|(_, json)| serde_json::from_str(&json).ok())
        .collect();
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = redis::pipe();
    for r in &records {
        p.cmd("EXISTS").arg(heartbeat_key(&r.run_id, tag));
    }
    let alive: Vec<u64> = conn.pipe(&p).await?;
    Ok(records
        .into_iter()
        .zip(alive)
        .map(|(r, a)| {
            let alive = a > 0 && !r.finished;
            (r, alive)
        })
        .collect())
}

/// Every registry on this node with its runs: on a cluster shard master the
/// registries under any tag (a reshard may have moved one here), found with
/// a SCAN for `redlab:runs:*`; elsewhere `redlab:runs`. Each run comes with
/// the tag of the registry that lists it.
#[allow(clippy::type_complexity)]
pub async fn all_runs(
    conn: &mut Conn,
    cluster: bool,
) -> Result<Vec<(RunRecord, bool, Option<String>)>, NodeError> {
    let tags: Vec<Option<String>> = if cluster {
        let mut tags = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = conn
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{}:*", runs_base()))
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            tags.extend(
                keys.iter()
                    .filter_map(|k| tag_of_runs_key(k))
                    .map(|t| Some(t.to_string())),
            );
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        tags.sort();
        tags.dedup();
        tags
    } else {
        vec![None]
    };
    let mut out = Vec::new();
    for tag in tags {
        for (rec, alive) in runs(conn, tag.as_deref()).await? {
            out.push((rec, alive, tag.clone()));
        }
    }
    Ok(out)
}

/// How many of a dead run's load keys still exist: exact up to a bound,
/// estimated from an even sample beyond it.
pub async fn count_left(conn: &mut Conn, rec: &RunRecord) -> Result<(u64, bool), NodeError> {
    let mut total = 0u64;
    let mut exact = true;
    for recorded in &rec.ranges {
        // A timed load's record lags its progress (it is refreshed every few
        // seconds): a run killed between two refreshes wrote past it.
        let past = written_past(conn, recorded).await?;
        let extended;
        let range = if past > recorded.requests {
            exact = false;
            extended = RangeRecord {
                requests: past,
                ..recorded.clone()
            };
            &extended
        } else {
            recorded
        };
        let bound = range.bound();
        if range.requests <= COUNT_EXACT_UP_TO {
            // Random keys repeat: each name is asked once (EXISTS counts repeats).
            let mut names: Vec<u64> = range.indices().collect();
            names.sort_unstable();
            names.dedup();
            for chunk in names.chunks(1000) {
                let mut cmd = redis::cmd("EXISTS");
                for i in chunk {
                    cmd.arg(range.key(*i));
                }
                total += conn.query::<u64>(&cmd).await?;
            }
            continue;
        }
        exact = false;
        // An even sample of request numbers: EXISTS of their keys.
        let step = (range.requests / COUNT_EXACT_UP_TO).max(1);
        let mut seen = 0u64;
        let mut asked = 0u64;
        let mut cmd = redis::cmd("EXISTS");
        let mut n = 0;
        for i in range.indices().step_by(step as usize) {
            cmd.arg(range.key(i));
            n += 1;
            asked += 1;
            if n == 1000 {
                seen += conn.query::<u64>(&cmd).await?;
                cmd = redis::cmd("EXISTS");
                n = 0;
            }
        }
        if n > 0 {
            seen += conn.query::<u64>(&cmd).await?;
        }
        if asked > 0 {
            total += (seen as f64 / asked as f64 * bound as f64).round() as u64;
        }
    }
    Ok((total, exact))
}

/// Where the keys of a range without a keyspace really end: they are
/// numbered 0, 1, 2, ... so past the recorded count, the first index whose
/// key is missing is found by doubling, then halving (an EXISTS each, about
/// 2 log2(n) in all; keys still in flight at the kill make it approximate).
async fn written_past(conn: &mut Conn, range: &RangeRecord) -> Result<u64, NodeError> {
    if range.keyspace.is_some() || !exists(conn, range, range.requests).await? {
        return Ok(range.requests);
    }
    let (mut lo, mut step) = (range.requests, range.requests.max(1024));
    let mut hi = lo + step;
    while exists(conn, range, hi).await? {
        lo = hi;
        step = step.saturating_mul(2);
        hi = lo.saturating_add(step);
        if hi >= 1 << 48 {
            return Ok(hi);
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if exists(conn, range, mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

async fn exists(conn: &mut Conn, range: &RangeRecord, i: u64) -> Result<bool, NodeError> {
    Ok(conn
        .query::<u64>(redis::cmd("EXISTS").arg(range.key(i)))
        .await?
        > 0)
}
