//! Several engine instances as one load, around the engine (which stays one
//! instance on one thread): `split` shares a config's requests, connections
//! and rate among N instances (`perf --threads N`, and a cluster's shards),
//! `merge` adds their results back up. Whole-run histograms are merged
//! exactly (hdrhistogram addition: the merged count is the sum of the
//! counts); per-slice timelines only approximately (see `merge_timelines`).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{bail, Result};
use hdrhistogram::Histogram;

use super::engine::{EngineConfig, EngineResult, Stop, Workload};
use crate::series::{LatencySlice, LatencyTimeline};

/// `total` shared as evenly as whole numbers allow: the first `total % n` get one more.
pub fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    total / n + u64::from((i as u64) < total % n)
}

/// `cfg` as `n` instances that together do what it does: requests,
/// connections and rate shared out, each with its own progress counter.
/// Instance 0 keeps the prefix and seed, so one instance is `cfg` itself.
/// Writes of distinct keys (SET without --keyspace) get a prefix per
/// instance, `<prefix><i>.`, so no two instances write one key; reads and
/// writes into a keyspace keep the prefix and take seed + i, so instances
/// do not walk the same keys in the same order. Reads without a keyspace
/// read the `-n` keys that were filled first, at random.
pub fn split(cfg: &EngineConfig, n: usize) -> Result<Vec<EngineConfig>> {
    let n = n.max(1);
    if cfg.connections < n {
        bail!(
            "{n} engine instances need at least {n} connections (-c {}): each thread has its own",
            cfg.connections
        );
    }
    let reads = matches!(cfg.workload, Workload::Get | Workload::Mixed { .. });
    let distinct = cfg.keyspace.is_none() && !reads;
    let keyspace = match (cfg.keyspace, &cfg.stop) {
        (None, Stop::Requests(t)) if reads && n > 1 => Some(*t),
        (k, _) => k,
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let stop = match cfg.stop {
            Stop::Requests(t) => Stop::Requests(share(t, n, i)),
            Stop::Duration(d) => Stop::Duration(d),
        };
        if stop == Stop::Requests(0) {
            continue;
        }
        let mut c = cfg.clone();
        c.stop = stop;
        c.connections = share(cfg.connections as u64, n, i) as usize;
        c.rate = cfg.rate.map(|r| r / n as f64);
        c.progress = Some(Arc::new(AtomicU64::new(0)));
        c.lane = i;
        if i > 0 {
            if distinct {
                c.key_prefix = format!("{}{i}.", cfg.key_prefix);
            } else {
                c.seed = cfg.seed.wrapping_add(i as u64);
            }
        }
        if n > 1 {
            c.keyspace = keyspace;
        }
        out.push(c);
    }
    Ok(out)
}

fn add(into: &mut Option<Histogram<u64>>, h: Option<Histogram<u64>>) {
    match (into.as_mut(), h) {
        (Some(a), Some(b)) => {
            // Both grow as needed: adding never runs out of range.
            let _ = a.add(&b);
        }
        (None, Some(b)) => *into = Some(b),
        _ => {}
    }
}

/// The instances' results as one. Counts, errors, misses and histograms are
/// summed; the elapsed time is the longest instance's (they start together,
/// so throughput is the total over the longest); per-second counts are
/// summed second by second.
pub fn merge(results: Vec<EngineResult>) -> EngineResult {
    let mut latency: Option<Histogram<u64>> = None;
    let mut wait_latency = None;
    let mut wait_acked = None;
    let mut completed = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut moved, mut ask) = (0, 0);
    let mut misses = 0;
    let mut elapsed = 0;
    let mut per_second: Vec<u64> = Vec::new();
    let mut open = false;
    let mut timelines = Vec::new();
    let mut missed = 0;
    let mut send_error = None;
    for r in results {
        // Every field by name: a field added to EngineResult fails to
        // compile here until it is merged too.
        let EngineResult {
            latency_ns,
            wait_latency_ns,
            wait_acked: acked,
            completed: done,
            errors: errs,
            moved: m,
            ask: a,
            misses: missed_reads,
            elapsed_ns,
            per_second: secs,
            open_loop,
            latency_timeline,
            missed: never_sent,
            send_error_ns,
        } = r;
        add(&mut latency, Some(latency_ns));
        add(&mut wait_latency, wait_latency_ns);
        add(&mut wait_acked, acked);
        completed += done;
        for (k, v) in errs {
            *errors.entry(k).or_default() += v;
        }
        misses += missed_reads;
        moved += m;
        ask += a;
        elapsed = elapsed.max(elapsed_ns);
        if secs.len() > per_second.len() {
            per_second.resize(secs.len(), 0);
        }
        for (a, b) in per_second.iter_mut().zip(secs) {
            *a += b;
        }
        open |= open_loop;
        timelines.push(latency_timeline);
        missed += never_sent;
        add(&mut send_error, send_error_ns);
    }
    EngineResult {
        latency_ns: latency.unwrap_or_else(crate::latency::histogram),
        wait_latency_ns: wait_latency,
        wait_acked,
        completed,
        errors,
        moved,
        ask,
        misses,
        elapsed_ns: elapsed,
        per_second,
        open_loop: open,
        latency_timeline: merge_timelines(&timelines),
        missed,
        send_error_ns: send_error,
    }
}

/// `merge`, with the elapsed time the instances covered together: from the
/// earliest start (each instance's end less its own elapsed time) to the
/// latest end. Instances that start or finish apart (connecting takes
/// longer for some) are not credited with a span shorter than the wall
/// clock's.
pub fn merge_timed(results: Vec<(EngineResult, std::time::Instant)>) -> EngineResult {
    let ends: Vec<(std::time::Instant, u64)> =
        results.iter().map(|(r, t)| (*t, r.elapsed_ns)).collect();
    let mut m = merge(results.into_iter().map(|(r, _)| r).collect());
    let last = ends.iter().map(|(t, _)| *t).max();
    let first = ends
        .iter()
        .map(|(t, ns)| {
            t.checked_sub(std::time::Duration::from_nanos(*ns))
                .unwrap_or(*t)
        })
        .min();
    if let (Some(a), Some(b)) = (first, last) {
        m.elapsed_ns = m
            .elapsed_ns
            .max(b.saturating_duration_since(a).as_nanos() as u64);
    }
    m
}

/// Slice by slice: counts summed, and each percentile and the maximum the
/// largest of the instances' (a slice keeps percentiles, not a histogram,
/// so the merged percentile is an upper bound; the whole run's histogram is
/// merged exactly).
fn merge_timelines(all: &[LatencyTimeline]) -> LatencyTimeline {
    let merge = |pick: fn(&LatencyTimeline) -> &Vec<LatencySlice>| {
        let len = all.iter().map(|t| pick(t).len()).max().unwrap_or(0);
        (0..len)
            .map(|i| {
                let mut s = LatencySlice::default();
                for t in all {
                    let Some(x) = pick(t).get(i) else { continue };
                    s.start_ms = x.start_ms;
                    s.count += x.count;
                    s.p50_us = s.p50_us.max(x.p50_us);
                    s.p99_us = s.p99_us.max(x.p99_us);
                    s.p999_us = s.p999_us.max(x.p999_us);
                    s.max_us = s.max_us.max(x.max_us);
                }
                s
            })
            .collect()
    };
    LatencyTimeline {
        per_second: merge(|t| &t.per_second),
        per_100ms: merge(|t| &t.per_100ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EngineConfig {
        EngineConfig {
            stop: Stop::Requests(1001),
            connections: 5,
            rate: Some(300.0),
            key_prefix: "p:".into(),
            ..EngineConfig::new(([127, 0, 0, 1], 1).into())
        }
    }

    #[test]
    fn requests_connections_and_rate_are_shared_out() {
        let parts = split(&cfg(), 2).unwrap();
        assert_eq!(parts[0].stop, Stop::Requests(501));
        assert_eq!(parts[1].stop, Stop::Requests(500));
        assert_eq!((parts[0].connections, parts[1].connections), (3, 2));
        assert_eq!(parts[1].rate, Some(150.0));
        // Distinct keys: a prefix per instance, the first keeps its own.
        assert_eq!(parts[0].key_prefix, "p:");
        assert_eq!(parts[1].key_prefix, "p:1.");
        // Reads share the prefix, at random over the filled keys.
        let get = EngineConfig {
            workload: Workload::Get,
            ..cfg()
        };
        let parts = split(&get, 2).unwrap();
        assert_eq!(parts[1].key_prefix, "p:");
        assert_eq!((parts[0].keyspace, parts[1].seed), (Some(1001), 1));
        assert_eq!(split(&cfg(), 1).unwrap()[0].keyspace, None);
        assert!(split(&cfg(), 6).is_err());
    }

    #[test]
    fn merged_histograms_count_every_request() {
        let one = |n: u64, v: u64, secs: Vec<u64>| {
            let mut h = crate::latency::histogram();
            crate::latency::record_n(&mut h, v, n);
            EngineResult {
                latency_ns: h,
                wait_latency_ns: None,
                wait_acked: None,
                completed: n,
                errors: [("MOVED".to_string(), 2)].into(),
                moved: 3,
                ask: 0,
                misses: 0,
                elapsed_ns: n * 1000,
                per_second: secs,
                open_loop: false,
                latency_timeline: LatencyTimeline::default(),
                missed: 1,
                send_error_ns: None,
            }
        };
        let m = merge(vec![
            one(300, 1000, vec![300]),
            one(700, 5000, vec![600, 100]),
        ]);
        assert_eq!(m.completed, 1000);
        assert_eq!(m.latency_ns.len(), 1000);
        assert_eq!(m.errors["MOVED"], 4);
        assert_eq!((m.moved, m.ask), (6, 0));
        assert_eq!(m.per_second, vec![900, 100]);
        assert_eq!(m.elapsed_ns, 700_000);
        assert_eq!(m.missed, 2);
        assert!(m.latency_ns.value_at_quantile(0.5) > 4000);
    }
}
