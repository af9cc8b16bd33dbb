use crate::common::*;
use std::time::Duration;

#[test]
fn healthy_topology_passes_with_every_field() {
    let lab = lab(3);
    let run = redlab_at(
        &lab,
        &["--format", "json", "replicate-check", "--probes", "10"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["command"], "replicate-check");
    assert_eq!(r["verdict"], "pass");
    for key in [
        "redlab_version",
        "started_at",
        "duration_ms",
        "host",
        "args",
        "run_id",
    ] {
        assert!(!r["manifest"][key].is_null(), "manifest.{key} missing");
    }
    let nodes = r["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert!(nodes
        .iter()
        .all(|n| n["redis_version"].as_str().unwrap().starts_with('7')
            || n["redis_version"].as_str().unwrap().starts_with('6')));
    assert_eq!(r["details"]["master"]["connected_replicas"], 3);
    for rep in r["details"]["replicas"].as_array().unwrap() {
        assert_eq!(rep["verdict"], "pass", "{rep}");
        assert_eq!(rep["link_status"], "up");
        assert_eq!(rep["listed_by_master"], true);
        assert_eq!(rep["probes_seen"], 10);
        assert!(rep["offset_lag_bytes"].is_u64() && rep["lag_s"].is_u64());
        let l = &rep["visible_latency"];
        assert_eq!(l["count"], 10);
        let (p50, p99, max) = (
            l["p50_us"].as_f64().unwrap(),
            l["p99_us"].as_f64().unwrap(),
            l["max_us"].as_f64().unwrap(),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= max && max < 1_000_000.0,
            "{l}"
        );
    }
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn stopped_replica_fails_within_the_bound_and_is_named() {
    let lab = lab(2);
    lab.replicas[1].pause().unwrap();
    let run = redlab_at(
        &lab,
        &[
            "--timeout",
            "1s",
            "--format",
            "json",
            "replicate-check",
            "--probes",
            "3",
        ],
    );
    lab.replicas[1].resume().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(60),
        "took {:?}",
        run.elapsed
    );
    let r = run.json();
    let c = check(&r, "replica2.reachable");
    assert_eq!(c["verdict"], "fail");
    assert!(c["reason"].as_str().unwrap().contains("no answer"), "{c}");
    assert_eq!(check(&r, "replica1.propagation")["verdict"], "pass");
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn killed_replica_is_a_connection_error_for_that_replica() {
    let mut lab = lab(2);
    lab.replicas[0].kill();
    let run = redlab_at(
        &lab,
        &["--format", "json", "replicate-check", "--probes", "3"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let c = check(&r, "replica1.reachable");
    assert!(
        c["reason"].as_str().unwrap().contains("connection refused"),
        "{c}"
    );
    assert_eq!(
        check(&r, "master")["verdict"],
        "fail",
        "1 connected, 2 expected"
    );
}

#[test]
fn replica_of_another_master_fails() {
    let lab = lab(1);
    let (other, _d1) = server("other", &[]);
    let (stray, _d2) = server(
        "stray",
        &["--replicaof", "127.0.0.1", &other.port.to_string()],
    );
    wait_link_up(stray.port);
    let args = vec![
        "--master".into(),
        url(lab.master.port),
        "--replica".into(),
        url(lab.replicas[0].port),
        "--replica".into(),
        url(stray.port),
        "--format".into(),
        "json".into(),
        "replicate-check".into(),
        "--probes".into(),
        "2".into(),
        "--max-lag".into(),
        "200ms".into(),
    ];
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let c = check(&r, "replica2.replication");
    assert_eq!(c["verdict"], "fail");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("127.0.0.1:{}", other.port)) && reason.contains("another master"),
        "{reason}"
    );
    assert_eq!(check(&r, "replica1.replication")["verdict"], "pass");
}

/// A replica chained behind replica1 (which lists it) is a deliberate
/// chain and passes; given without its parent, nothing of ours lists it and
/// it fails naming what it follows.
#[test]
fn chained_replica_passes_behind_its_parent_and_fails_without_it() {
    let lab = lab(1);
    let (chained, _d) = server(
        "chained",
        &[
            "--replicaof",
            "127.0.0.1",
            &lab.replicas[0].port.to_string(),
        ],
    );
    wait_link_up(chained.port);
    let run_with = |replicas: &[u16]| {
        let mut args = vec!["--master".to_string(), url(lab.master.port)];
        for p in replicas {
            args.extend(["--replica".to_string(), url(*p)]);
        }
        args.extend(["--format", "json", "replicate-check", "--probes", "2"].map(String::from));
        redlab(&args)
    };
    let run = run_with(&[lab.replicas[0].port, chained.port]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(check(&r, "replica2.replication")["verdict"], "pass");
    assert_eq!(check(&r, "replica2.propagation")["verdict"], "pass");

    let run = run_with(&[chained.port]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let c = check(&r, "replica1.replication");
    let reason = c["reason"].as_str().unwrap();
    assert_eq!(c["verdict"], "fail");
    assert!(
        reason.contains(&format!("follows 127.0.0.1:{}", lab.replicas[0].port))
            && reason.contains("not among the master's own replicas"),
        "{reason}"
    );
}

#[test]
fn a_silent_listener_as_replica_errors_within_the_timeout() {
    let lab = lab(1);
    let (_listener, port) = silent_listener();
    let args = vec![
        "--master".into(),
        url(lab.master.port),
        "--replica".into(),
        url(port),
        "--timeout".into(),
        "700ms".into(),
        "--format".into(),
        "json".into(),
        "replicate-check".into(),
    ];
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(40),
        "took {:?}",
        run.elapsed
    );
    let r = run.json();
    let reason = check(&r, "replica1.reachable")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("no answer") && reason.contains("700ms"),
        "{reason}"
    );
}

#[test]
fn spawn_runs_against_a_throwaway_lab() {
    let run = redlab(&[
        "--spawn",
        "--spawn-replicas",
        "2",
        "--format",
        "json",
        "replicate-check",
        "--probes",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["nodes"].as_array().unwrap().len(), 3);
}

#[test]
fn master_alone_discovers_its_replicas() {
    let lab = lab(2);
    let run = redlab(&[
        "--master",
        &url(lab.master.port),
        "--format",
        "json",
        "replicate-check",
        "--probes",
        "2",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    let found = strs(&r["nodes"], "address");
    assert_eq!(found.len(), 3);
    for rep in &lab.replicas {
        assert!(
            found.contains(&format!("127.0.0.1:{}", rep.port).as_str()),
            "{found:?}"
        );
    }
}
