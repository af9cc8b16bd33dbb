//! The TLS path: the same workloads, keys and values as the engine, over the
//! redis crate (which speaks TLS), closed loop only. It costs more client CPU
//! per request, and it cannot see replies arrive one by one: every request in
//! a batch gets the batch's latency. Reports say which path ran.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use redis::Value;

use super::engine::{EngineConfig, EngineResult, Stop, Workload};
use super::keys::{expected_value, key_index, op_for, value_len, Op};
use crate::client::Conn;
use crate::topology::Node;

/// What one connection measured; merged at the end.
struct Tally {
    latency: Histogram<u64>,
    wait_latency: Histogram<u64>,
    wait_acked: Histogram<u64>,
    completed: u64,
    misses: u64,
    errors: BTreeMap<String, u64>,
    per_second: Vec<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: crate::latency::histogram(),
            wait_latency: crate::latency::histogram(),
            wait_acked: crate::latency::histogram(),
            completed: 0,
            misses: 0,
            errors: BTreeMap::new(),
            per_second: Vec::new(),
        }
    }

    fn merge(&mut self, o: Tally) {
        let _ = self.latency.add(&o.latency);
        let _ = self.wait_latency.add(&o.wait_latency);
        let _ = self.wait_acked.add(&o.wait_acked);
        self.completed += o.completed;
        self.misses += o.misses;
        for (k, n) in o.errors {
            *self.errors.entry(k).or_insert(0) += n;
        }
        if self.per_second.len() < o.per_second.len() {
            self.per_second.resize(o.per_second.len(), 0);
        }
        for (i, n) in o.per_second.into_iter().enumerate() {
            self.per_second[i] += n;
        }
    }
}

/// Run `cfg` against `node` over its `rediss://` connection.
pub async fn run(node: &Node, cfg: &EngineConfig) -> Result<EngineResult> {
    if cfg.rate.is_some() {
        bail!(
            "{}: --rate is not available over TLS: the TLS path is closed loop only",
            node.label()
        );
    }
    let wait = match cfg.workload {
        Workload::SetWait { timeout_ms, .. } => Duration::from_millis(timeout_ms),
        _ => Duration::ZERO,
    };
    let mut conns = Vec::new();
    for _ in 0..cfg.connections.max(1) {
        conns.push(
            Conn::connect_with_response_timeout(node, cfg.timeout, cfg.timeout + wait).await?,
        );
    }
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // A JoinSet aborts its tasks when dropped (Ctrl-C drops this future).
    let mut set = tokio::task::JoinSet::new();
    for conn in conns {
        set.spawn(drive(conn, cfg.clone(), next.clone(), start));
    }
    let mut total = Tally::new();
    while let Some(joined) = set.join_next().await {
        total.merge(joined??);
    }
    let set_wait = matches!(cfg.workload, Workload::SetWait { .. });
    Ok(EngineResult {
        latency_ns: total.latency,
        wait_latency_ns: set_wait.then_some(total.wait_latency),
        wait_acked: set_wait.then_some(total.wait_acked),
        completed: total.completed,
        errors: total.errors,
        // A `rediss://` cluster node is not followed: its redirects fail.
        moved: 0,
        ask: 0,
        misses: total.misses,
        elapsed_ns: (start.elapsed().as_nanos() as u64).max(1),
        per_second: total.per_second,
        open_loop: false,
        latency_timeline: Default::default(),
        // Closed loop only: nothing is scheduled, so nothing can be missed.
        missed: 0,
        send_error_ns: None,
    })
}

/// Claim up to P request numbers; None once the run is over.
fn claim(cfg: &EngineConfig, next: &AtomicU64, start: Instant) -> Option<(u64, u64)> {
    if cfg
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return None;
    }
    let p = cfg.pipeline.max(1) as u64;
    match cfg.stop {
        Stop::Requests(total) => {
            let first = next.fetch_add(p, Ordering::Relaxed);
            (first < total).then(|| (first, p.min(total - first)))
        }
        Stop::Duration(d) if start.elapsed() >= d => None,
        Stop::Duration(_) => Some((next.fetch_add(p, Ordering::Relaxed), p)),
    }
}

async fn drive(
    mut conn: Conn,
    cfg: EngineConfig,
    next: Arc<AtomicU64>,
    start: Instant,
) -> Result<Tally> {
    let mut t = Tally::new();
    while let Some((first, n)) = claim(&cfg, &next, start) {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for req in first..first + n {
            let idx = key_index(cfg.keyspace, cfg.seed, req);
            let key = format!("{}{idx}", cfg.key_prefix);
            match op_for(&cfg.workload, req) {
                Op::Set => {
                    let value = expected_value(idx, value_len(cfg.seed, idx, cfg.data_size));
                    let set = pipe.cmd("SET").arg(key).arg(value);
                    if let Some(ms) = cfg.key_ttl_ms() {
                        set.arg("PX").arg(ms);
                    }
                }
                Op::Get => {
                    pipe.cmd("GET").arg(key);
                }
            };
        }
        if let Workload::SetWait {
            replicas,
            timeout_ms,
        } = cfg.workload
        {
            pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
        }
        let sent = Instant::now();
        let replies: Vec<Value> = conn.pipe(&pipe).await?;
        let ns = (sent.elapsed().as_nanos() as u64).max(1);
        // An error reply is a failed request, not a completed one.
        let mut done = n;
        for (i, v) in replies.iter().enumerate() {
            if i as u64 >= n {
                let _ = t.wait_latency.record(ns);
                if let Value::Int(k) = v {
                    let _ = t.wait_acked.record((*k).max(0) as u64);
                }
                continue;
            }
            match v {
                Value::ServerError(e) => {
                    *t.errors.entry(e.code().to_string()).or_insert(0) += 1;
                    done -= 1;
                }
                Value::Nil => t.misses += 1,
                _ => {}
            }
        }
        if done > 0 {
            let _ = t.latency.record_n(ns, done);
        }
        t.completed += done;
        let sec = start.elapsed().as_secs() as usize;
        if t.per_second.len() <= sec {
            t.per_second.resize(sec + 1, 0);
        }
        t.per_second[sec] += done;
        if let Some(p) = &cfg.progress {
            p.fetch_add(n, Ordering::Relaxed);
        }
    }
    Ok(t)
}
