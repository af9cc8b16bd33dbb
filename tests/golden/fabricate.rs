//! Fabricated reports: the JSON a run would save, with made-up but plausible
//! series (a 3 s perf round with a stall, three replicas' lag, probes, an
//! expiry), read back into redlab's own types. No Redis is involved.
#![allow(dead_code)]

use redlab::report::Report;
use serde_json::{json, Value};

pub const REPLICAS: [&str; 3] = ["replica1", "replica2", "replica3"];

pub fn manifest(command: &str) -> Value {
    json!({
        "redlab_version": "0.1.0",
        "started_at": "2026-11-26T13:45:00.000Z",
        "duration_ms": 3250.5,
        "host": "ci",
        "args": ["redlab", command, "--spawn"],
        "run_id": "golden01"
    })
}

pub fn nodes() -> Value {
    let node = |name: &str, port: u16, role: &str, reported: &str| {
        json!({
            "name": name, "address": format!("127.0.0.1:{port}"), "expected_role": role,
            "role": reported, "redis_version": "7.0.15", "server": "redis 7.0.15", "maxmemory_bytes": 268435456u64,
            "maxmemory_policy": "allkeys-lru", "persistence": "rdb", "error": null
        })
    };
    let mut v = vec![node("master", 6379, "master", "master")];
    for (i, r) in REPLICAS.iter().enumerate() {
        v.push(node(r, 6380 + i as u16, "replica", "slave"));
    }
    Value::Array(v)
}

pub fn report(command: &str, checks: Value, details: Value) -> Value {
    let worst = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .max_by_key(|v| match *v {
            "pass" => 0,
            "warn" => 1,
            _ => 2,
        })
        .unwrap_or("pass")
        .to_string();
    json!({
        "schema_version": 1, "command": command, "manifest": manifest(command),
        "nodes": nodes(), "checks": checks, "verdict": worst, "details": details
    })
}

fn check(name: &str, verdict: &str, reason: &str) -> Value {
    json!({"name": name, "verdict": verdict, "reason": reason})
}

fn latency(p50: f64, p99: f64, max: f64) -> Value {
    json!({"count": 3000000u64, "min_us": p50 / 3.0, "p50_us": p50, "p90_us": p50 * 1.8,
           "p99_us": p99, "p999_us": p99 * 1.6, "p9999_us": max * 0.9, "max_us": max,
           "mean_us": p50 * 1.2})
}

/// Percentile spectrum points of a latency that grows up the tail (µs), scaled by `k`.
pub fn spectrum(k: f64) -> Value {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for i in 0..100_000u64 {
        // A body around 800 µs and a tail out to ~25 ms.
        let us = 600 + (i % 400) + if i % 1000 == 0 { 20_000 + i / 20 } else { 0 };
        h.record((us as f64 * k * 1000.0) as u64).unwrap();
    }
    serde_json::to_value(redlab::spectrum(&h)).unwrap()
}

/// A perf run of three seconds with a stall at 1.8 s, lag sampled on three replicas.
pub fn perf_details(spectrum_scale: f64) -> Value {
    let slices: Vec<Value> = (0..30)
        .map(|i| {
            let stall = i == 18;
            json!({"start_ms": i as f64 * 100.0, "count": if stall { 21000 } else { 98000 + (i % 3) * 1500 },
                   "p50_us": if stall { 2400.0 } else { 780.0 + (i % 4) as f64 * 20.0 },
                   "p99_us": if stall { 14500.0 } else { 2100.0 + (i % 5) as f64 * 90.0 },
                   "p999_us": if stall { 18000.0 } else { 3000.0 }, "max_us": if stall { 19000.0 } else { 4100.0 }})
        })
        .collect();
    let lag: Vec<Value> = REPLICAS
        .iter()
        .enumerate()
        .map(|(r, name)| {
            // Replicas acknowledge once a second: a saw-tooth, then 0 once caught up.
            let samples: Vec<Value> = (0..38)
                .map(|i| {
                    let t = i as f64 * 100.0;
                    let lag = if t < 3000.0 {
                        ((i % 10) as u64 + 1) * (52_000 + r as u64 * 9_000)
                    } else if t < 3200.0 + r as f64 * 100.0 {
                        40_000
                    } else {
                        0
                    };
                    json!({"t_ms": t, "lag_bytes": lag})
                })
                .collect();
            json!({"name": name, "address": format!("127.0.0.1:{}", 6380 + r),
                   "samples": samples, "max_lag_bytes": 10 * (52_000 + r as u64 * 9_000),
                   "max_lag_at_ms": 900.0, "catch_up_ms": 200.0 + r as f64 * 100.0, "unlisted_samples": 0})
        })
        .collect();
    json!({
        "mode": "closed-loop", "workload": "set", "client_path": "engine",
        "requests_per_round": 3000000u64, "duration_per_round_ms": null, "pipeline": 16,
        "connections": 50, "data_size_min_bytes": 3, "data_size_max_bytes": 3, "keyspace": null,
        "seed": 0, "warmup_requests": 1000, "target_rate_ops_per_sec": null,
        "server": {"redis_version": "7.0.15", "maxmemory_bytes": 268435456u64,
                   "maxmemory_policy": "allkeys-lru", "persistence": "rdb"},
        "throughput_ops_per_sec": 985000.0, "throughput_min_ops_per_sec": 951000.0,
        "throughput_max_ops_per_sec": 1002000.0, "median_round": 0,
        "round_results": [{"ops_per_sec": 985000.0, "elapsed_ms": 3000.0, "completed": 3000000u64, "p99_us": 2200.0}],
        "latency": latency(800.0 * spectrum_scale, 2200.0 * spectrum_scale, 25000.0 * spectrum_scale),
        "wait_latency": null, "wait_acked": null, "errors": {}, "misses": 0,
        "per_second_ops": [1001000u64, 958000u64, 1041000u64],
        "latency_spectrum": spectrum(spectrum_scale),
        "per_second_latency": [], "per_100ms_latency": slices,
        "replica_lag": {"interval_ms": 100.0, "load_ended_ms": 3000.0, "failed_samples": 0,
                        "last_error": null, "replicas": lag},
        "memory": {"used_memory_before_bytes": 1106872u64, "used_memory_after_bytes": 250000000u64,
                   "evicted_keys_before": 0, "evicted_keys_after": 0},
        "replicas": REPLICAS.iter().enumerate().map(|(r, n)| json!({"name": n,
            "address": format!("127.0.0.1:{}", 6380 + r), "offset_lag_bytes_after_load": 40000,
            "catch_up_ms": 200.0 + r as f64 * 100.0, "error": null})).collect::<Vec<_>>(),
        "load_ms": 16000.0, "key_prefix": "redlab:golden01:perf:", "keys_kept": false,
        "keys_removed": 15001000u64, "baseline": null
    })
}

pub fn perf_json() -> Value {
    let mut checks = vec![
        check(
            "perf.requests",
            "pass",
            "15000000 requests in 5 round(s), median 985000 ops/s, p99 2.20 ms",
        ),
        check("perf.errors", "pass", "no error replies"),
    ];
    for (r, n) in REPLICAS.iter().enumerate() {
        checks.push(check(
            &format!("{n}.catch_up"),
            "pass",
            &format!(
                "40000 bytes behind after the load, caught up in {} ms",
                200 + r * 100
            ),
        ));
    }
    report("perf", Value::Array(checks), perf_details(1.0))
}

pub fn replicate_details() -> Value {
    let replica = |r: usize, name: &str| {
        let base = 420.0 + r as f64 * 60.0;
        let cdf: Vec<Value> = (1..=20)
            .map(|i| json!({"percentile": i as f64 * 5.0, "value_us": base + (i * i) as f64 * 3.0}))
            .collect();
        json!({"name": name, "address": format!("127.0.0.1:{}", 6380 + r), "verdict": "pass",
               "role": "slave", "link_status": "up", "follows": "127.0.0.1:6379 (master)",
               "listed_by_master": true, "syncing": false, "offset_lag_bytes": 0, "lag_s": 0,
               "probes_seen": 20, "probes_missed": 0,
               "visible_latency": {"count": 20, "min_us": base, "p50_us": base + 300.0, "p90_us": base + 1000.0,
                                   "p99_us": base + 1200.0, "p999_us": base + 1200.0, "p9999_us": base + 1200.0,
                                   "max_us": base + 1200.0, "mean_us": base + 400.0},
               "visible_distribution": cdf, "probe_error": null, "problems": []})
    };
    json!({"probes": 20, "max_lag_ms": 1000.0,
           "master": {"connected_replicas": 3, "expected_replicas": 3, "repl_offset_bytes": 10099, "replid": "abc"},
           "replicas": REPLICAS.iter().enumerate().map(|(r, n)| replica(r, n)).collect::<Vec<_>>()})
}

pub fn ttl_details() -> Value {
    let node = |i: usize, name: &str| {
        let samples: Vec<Value> = (0..8)
            .map(|k| json!({"t_ms": k as f64 * 250.0 + i as f64, "ttl_ms": 2000 - k * 250 - i as i64}))
            .collect();
        let replica = i > 0;
        json!({"name": name, "address": format!("127.0.0.1:{}", 6379 + i),
               "role": if replica { "replica" } else { "master" },
               "max_ttl_drift_ms": if replica { json!(1) } else { json!(null) },
               "last_ttl_ms": 250, "stopped_serving_ms": 2002.0,
               "stopped_after_expiry_ms": 2.0,
               "left_keyspace_ms": if replica { json!(2002.0 + 40.0 * i as f64) } else { json!(2002.0) },
               "propagation_gap_ms": if replica { json!(40.0 * i as f64) } else { json!(null) },
               "gap_resolution_ms": if replica { json!(0.0) } else { json!(null) },
               "measured_by": if replica { "notification" } else { "pttl" },
               "note": null, "error": null, "ttl_samples": samples})
    };
    let mut nodes = vec![node(0, "master")];
    nodes.extend(REPLICAS.iter().enumerate().map(|(r, n)| node(r + 1, n)));
    json!({"key": "redlab:golden01:ttl-watch", "db": 0, "written_by_redlab": true,
           "initial_ttl_ms": 2000, "interval_ms": 250.0, "tolerance_ms": 250.0, "grace_ms": 5000.0,
           "polls": 9, "ended": "expired", "watched_ms": 2300.0, "nodes": nodes})
}

/// A gate with a warning and a failure, and the figures of three steps.
pub fn check_json() -> Value {
    let step = |name: &str, verdict: &str, reason: &str, details: Value| {
        json!({"name": name, "verdict": verdict, "reason": reason, "elapsed_ms": 12.5,
               "items": [check(&format!("{name}.x"), verdict, reason)], "details": details})
    };
    let steps = vec![
        step("reachability", "pass", "4 nodes answer", Value::Null),
        step(
            "replication",
            "pass",
            "20 probes seen on every replica within 1s",
            replicate_details(),
        ),
        step(
            "expiry",
            "warn",
            "stopped serving 300 ms before its expected expiry",
            ttl_details(),
        ),
        step(
            "throughput",
            "fail",
            "below the floor: 985000 ops/s, floor 2000000 (--min-ops)",
            perf_details(0.5),
        ),
    ];
    let checks: Vec<Value> = steps
        .iter()
        .map(|s| {
            check(
                s["name"].as_str().unwrap(),
                s["verdict"].as_str().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    report(
        "check",
        Value::Array(checks),
        json!({"checks": steps, "skipped": ["keycount", "config-lint"], "strict": false,
               "warnings_fatal": false, "refused": null}),
    )
}

pub fn typed<D: redlab::report::Details + serde::de::DeserializeOwned>(v: Value) -> Report<D> {
    serde_json::from_value(v).expect("the fabricated report reads as redlab's own")
}

pub fn perf() -> Report<redlab::PerfDetails> {
    typed(perf_json())
}

pub fn check_report() -> Report<redlab::CheckDetails> {
    typed(check_json())
}

/// A kill-master drill: detected at 1.05 s, promoted at 2.2 s, the old
/// master back as a replica at 12.4 s; writes every 100 ms, refused from the
/// fault until the promotion.
pub fn drill_json() -> Value {
    let ev = |t: f64, source: &str, kind: &str, detail: &str| json!({"t_ms": t, "source": source, "kind": kind, "detail": detail});
    let events = vec![
        ev(-1000.0, "master", "state", "master, 3 replica(s) online"),
        ev(-1000.0, "replica1", "state", "replica of master, link up"),
        ev(
            -2.0,
            "load",
            "write",
            "last write acknowledged before the outage",
        ),
        ev(0.0, "drill", "fault", "SIGKILL master (pid 100, port 6379)"),
        ev(30.0, "master", "state", "down"),
        ev(30.0, "replica1", "state", "replica of master, link down"),
        ev(
            1050.0,
            "sentinel1",
            "+sdown",
            "master redlab 127.0.0.1 6379",
        ),
        ev(
            1052.0,
            "sentinel2",
            "+sdown",
            "master redlab 127.0.0.1 6379",
        ),
        ev(
            1150.0,
            "sentinel1",
            "+odown",
            "master redlab 127.0.0.1 6379 #quorum 2/2",
        ),
        ev(
            2200.0,
            "sentinel1",
            "+promoted-slave",
            "slave 127.0.0.1:6380 127.0.0.1 6380 @ redlab 127.0.0.1 6379",
        ),
        ev(
            2250.0,
            "sentinel2",
            "+switch-master",
            "redlab 127.0.0.1 6379 127.0.0.1 6380",
        ),
        ev(
            2260.0,
            "load",
            "write",
            "first write acknowledged after the outage, on replica1",
        ),
        ev(2300.0, "replica1", "state", "master, 2 replica(s) online"),
        ev(
            4400.0,
            "drill",
            "fault",
            "restarted master (pid 101, port 6379)",
        ),
        ev(
            12300.0,
            "sentinel1",
            "+convert-to-slave",
            "slave 127.0.0.1:6379 127.0.0.1 6379 @ redlab 127.0.0.1 6380",
        ),
        ev(12400.0, "master", "state", "replica of replica1, link up"),
    ];
    let buckets: Vec<Value> = (-10..130)
        .map(|i| {
            let t = i as f64 * 100.0;
            let down = (0.0..2200.0).contains(&t);
            json!({"t_ms": t, "acknowledged": if down { 0 } else { 10 }, "unacknowledged": 0,
                   "failed": if down { 10 } else { 0 }})
        })
        .collect();
    let resync = |name: &str, port: u16, before: &str, after: &str, full: u32, partial: u32| {
        json!({"name": name, "address": format!("127.0.0.1:{port}"), "role_before": before,
               "role_after": after, "offset_before": 31000, "offset_after": 203000,
               "restarted": name == "master", "full_resyncs": full, "partial_resyncs": partial,
               "served_full": if name == "replica1" { 1 } else { 0 },
               "served_partial_ok": if name == "replica1" { 2 } else { 0 }, "served_partial_err": 0})
    };
    let mut details = json!({
        "fault": "kill-master", "target": "master", "target_address": "127.0.0.1:6379",
        "fault_for_ms": null, "down_after_ms": 1000, "failover_timeout_ms": 5000,
        "repl_timeout_s": 2, "backlog_bytes": 1048576, "rate_per_s": 100.0,
        "rate_before_per_s": 99.8, "ack": "replicas:1", "ack_timeout_ms": 500.0,
        "master_before": "master", "master_after": "replica1",
        "detected_ms": 1050.0, "odown_ms": 1150.0, "promoted_ms": 2200.0,
        "switch_master_ms": 2250.0, "undone_ms": 4400.0, "stable_ms": 12450.0,
        "not_stable_because": null, "downtime_from_ms": -2.0, "downtime_to_ms": 2260.0,
        "downtime_ms": 2262.0, "max_downtime_ms": 6000.0,
        "max_downtime_from": "down-after + failover-timeout",
        "lost_acknowledged": 0, "max_lost": 0, "lost_by_node": {}, "lost_from_ms": null,
        "lost_to_ms": null, "read_back_error": null,
        "missed_bytes": null, "expected_resync": null, "expected_because": "no --expect given",
        "seen_resync": null, "events": events, "write_buckets": buckets
    });
    details["writes"] = json!({"scheduled": 1400, "skipped": 0, "attempted": 1400,
        "written": 1180, "acknowledged": 1180, "failed": 220,
        "errors": {"refused": 190, "closed": 30}, "failed_but_present": 0});
    details["levels"] = json!([
        {"level": "WAIT 1", "acknowledged": true, "written": 800, "lost": 0},
        {"level": "WAIT 3", "acknowledged": true, "written": 380, "lost": 0}]);
    details["replicas_read"] = json!([{"name": "master", "address": "127.0.0.1:6379",
        "compared": true, "not_compared_because": null, "missing": 0, "extra": 0}]);
    details["resync"] = json!([
        resync("master", 6379, "master", "slave", 1, 0),
        resync("replica1", 6380, "slave", "master", 0, 0),
        resync("replica2", 6381, "slave", "slave", 0, 1),
        resync("replica3", 6382, "slave", "slave", 0, 1)
    ]);
    let checks = json!([
        check(
            "drill.stable",
            "pass",
            "whole again 12.45 s after the fault"
        ),
        check(
            "drill.downtime",
            "pass",
            "writes unavailable for 2.26 s; bound 6.00 s"
        ),
        check("drill.lost", "pass", "0 of 1180 acknowledged lost"),
        check(
            "drill.rejoin",
            "pass",
            "master rejoined as a replica of replica1"
        ),
    ]);
    report("drill", checks, details)
}
