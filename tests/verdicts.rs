//! No false PASS: each broken topology below used to pass (exit 0) and now
//! ends with its named verdict, with user data unchanged and no redlab key
//! left (issue 9).

use crate::common::*;
use redlab::lab::LabOptions;

fn with_args(base: &[String], more: &[&str]) -> Vec<String> {
    let mut v = base.to_vec();
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

/// DEBUG allowed from loopback (DEBUG SLEEP stalls a node on purpose).
fn debug_lab(replicas: usize) -> Lab {
    let debug = vec!["--enable-debug-command".to_string(), "local".to_string()];
    lab_with(LabOptions {
        replicas,
        master_args: debug.clone(),
        replica_args: debug,
        ..LabOptions::default()
    })
}

#[test]
fn lost_replicas_fail_the_asserted_count_and_warn_without_it() {
    let mut lab = lab(2);
    let m = url(lab.master.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    for r in &mut lab.replicas {
        r.kill();
    }
    wait_until("the master lists no replica", || {
        info(&m, "replication").contains("connected_slaves:0")
    });
    let master = vec!["--master".to_string(), m.clone()];
    for sub in [
        &["replicate-check", "--probes", "3"][..],
        &["keycount", "--settle", "200ms"][..],
        &["stats"][..],
        &["check", "--probes", "2", "--expiry-ttl", "1s"][..],
    ] {
        let asserted = with_args(&master, &["--expect-replicas", "2", "--format", "json"]);
        let run = redlab(&with_args(&asserted, sub));
        assert_eq!(run.code, 1, "{sub:?}: {}\n{}", run.stdout, run.stderr);
        let all = run.stdout.clone();
        assert!(
            all.contains("it lists no replica, 2 expected"),
            "{sub:?}: {all}"
        );
        // Without --expect-replicas the count is not asserted: a warning,
        // never a pass of replication over nothing.
        let plain = with_args(&master, &["--format", "json"]);
        let run = redlab(&with_args(&plain, sub));
        let r = run.json();
        assert_ne!(r["verdict"], "pass", "{sub:?}: {}", r["checks"]);
        assert!(
            run.stdout.contains("replica count not asserted"),
            "{sub:?}: {}",
            run.stdout
        );
        let run = redlab(&with_args(&with_args(&plain, &["--fail-on", "warn"]), sub));
        assert_eq!(run.code, 1, "{sub:?} --fail-on warn: {}", run.stdout);
    }
    let run = redlab(&with_args(
        &master,
        &["--format", "json", "replicate-check", "--probes", "3"],
    ));
    let r = run.json();
    assert_eq!(
        check(&r, "propagation")["verdict"],
        "skipped",
        "{}",
        r["checks"]
    );
    let run = redlab(&with_args(&master, &["--format", "json", "keycount"]));
    assert_eq!(check(&run.json(), "parity")["verdict"], "skipped");
    guard.assert();
}

#[test]
fn skipped_checks_are_skipped_in_junit_and_nothing_passes_over_nothing() {
    let lab = lab(0);
    let m = vec!["--master".to_string(), url(lab.master.port)];
    let run = redlab(&with_args(
        &m,
        &["--format", "junit", "replicate-check", "--probes", "2"],
    ));
    assert!(run.stdout.contains("<skipped"), "{}", run.stdout);
    let doc = roxmltree::Document::parse(&run.stdout).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("skipped"), Some("1"), "{}", run.stdout);
    // --probes 0 would pass propagation over no probe: refused as input.
    let run = redlab(&with_args(&m, &["replicate-check", "--probes", "0"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--probes must be at least 1"),
        "{}",
        run.stderr
    );
    // Only skipped checks: nothing was verified, which is not exit 0.
    let run = redlab(&with_args(
        &m,
        &[
            "--expect-replicas",
            "0",
            "--format",
            "json",
            "check",
            "--only",
            "replication",
        ],
    ));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "skipped");
}

#[test]
fn the_same_node_twice_is_refused_before_anything_runs() {
    let lab = lab(2);
    let guard = Untouched::seed_lab(&lab);
    let (m, r1) = (lab.master.port, lab.replicas[0].port);
    for (what, replicas) in [
        ("a replica twice", vec![url(r1), url(r1)]),
        ("the master as a replica", vec![url(r1), url(m)]),
        (
            "localhost and 127.0.0.1",
            vec![url(r1), format!("redis://localhost:{r1}")],
        ),
    ] {
        let mut args = vec!["--master".to_string(), url(m)];
        for r in &replicas {
            args.extend(["--replica".to_string(), r.clone()]);
        }
        args.extend(["replicate-check".to_string()]);
        let run = redlab(&args);
        assert_eq!(run.code, 2, "{what}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("are the same node") || run.stderr.contains("same server"),
            "{what}: {}",
            run.stderr
        );
    }
    guard.assert();
}

#[test]
fn max_lag_is_a_bound_for_a_stalled_replica_and_a_paused_master() {
    let lab = debug_lab(1);
    let guard = Untouched::seed_lab(&lab);
    let r1 = url(lab.replicas[0].port);
    // The replica sleeps 2 s while probes are timed: its GET answers late.
    let run = std::thread::spawn({
        let args = with_args(
            &topo_args(&lab),
            &["--format", "json", "replicate-check", "--probes", "5000"],
        );
        move || redlab(&args)
    });
    wait_until("redlab probes the replica", || has_redlab_keys(&r1));
    let _ = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(2)
        .query::<()>(&mut conn_url(&r1));
    let run = run.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "replica1.propagation");
    assert_eq!(c["verdict"], "fail", "{c}");
    eprintln!("observed: {}", c["reason"]);
    // A master pausing writes for 5 s while probes are written: the probe
    // in flight cannot be seen within 1 s.
    let m = url(lab.master.port);
    let run = std::thread::spawn({
        let args = with_args(
            &topo_args(&lab),
            &[
                "--timeout",
                "10s",
                "--format",
                "json",
                "replicate-check",
                "--probes",
                "5000",
            ],
        );
        move || redlab(&args)
    });
    wait_until("redlab probes the master", || has_redlab_keys(&m));
    cmd(&m, &["CLIENT", "PAUSE", "5000", "WRITE"]);
    let run = run.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "replica1.propagation");
    let reason = c["reason"].as_str().unwrap();
    // Seen late or never within the bound, depending on where the pause
    // caught the probe; either way it fails, and says the master was slow.
    assert_eq!(c["verdict"], "fail", "{c}");
    assert!(
        (reason.contains("past the 1s bound") || reason.contains("not visible within 1s"))
            && reason.contains("the master itself took"),
        "{c}"
    );
    cmd(&m, &["CLIENT", "UNPAUSE"]);
    wait_sync(&lab);
    guard.assert();
}

#[test]
fn parity_compares_only_replicas_of_this_master() {
    let lab = lab(1);
    let (other, _d1) = server("other", &[]);
    let (stray, _d2) = server(
        "stray",
        &["--replicaof", "127.0.0.1", &other.port.to_string()],
    );
    wait_link_up(stray.port);
    // Equal counts everywhere (all empty): counts would call it parity.
    let args = vec![
        "--master".to_string(),
        url(lab.master.port),
        "--replica".into(),
        url(lab.replicas[0].port),
        "--replica".into(),
        url(stray.port),
        "--format".into(),
        "json".into(),
    ];
    for sub in [
        &["keycount", "--settle", "300ms"][..],
        &["check", "--only", "keycount", "--settle", "300ms"][..],
    ] {
        let run = redlab(&with_args(&args, sub));
        assert_eq!(run.code, 1, "{sub:?}: {}", run.stdout);
        let out = run.stdout.clone();
        assert!(
            out.contains("not compared: follows") && out.contains("another master"),
            "{sub:?}: {out}"
        );
    }
    let mut mine = args[..4].to_vec();
    mine.extend(["--format".into(), "json".into(), "keycount".into()]);
    let run = redlab(&mine);
    let r = run.json();
    let c = check(&r, "replica1.parity");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("a count check, not a data comparison"),
        "{c}"
    );
}

#[test]
fn expiry_blames_the_stalled_node_not_its_neighbours() {
    let lab = debug_lab(2);
    let r2 = url(lab.replicas[1].port);
    let run = std::thread::spawn({
        let args = with_args(
            &topo_args(&lab),
            &["--format", "json", "ttl-watch", "--ttl", "2s"],
        );
        move || redlab(&args)
    });
    // Stall replica2 across the expiry: once its copy of the watched key
    // (2 s TTL) has 700 ms or less to live.
    wait_until("replica2 holds the watched key near its expiry", || {
        let mut c = conn_url(&r2);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("redlab:*:ttl-watch")
            .query(&mut c)
            .unwrap_or_default();
        keys.iter().any(|k| {
            let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut c).unwrap_or(-2);
            (0..=700).contains(&ttl)
        })
    });
    let _ = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(2.5)
        .query::<()>(&mut conn_url(&r2));
    let run = run.join().unwrap();
    let r = run.json();
    let all = r["checks"].to_string();
    assert_eq!(check(&r, "replica2.responsive")["verdict"], "fail", "{all}");
    for ok in ["master.expiry", "replica1.expiry", "replica1.propagation"] {
        assert_eq!(check(&r, ok)["verdict"], "pass", "{ok}: {all}");
    }
    for n in r["details"]["nodes"].as_array().unwrap() {
        if let Some(g) = n["propagation_gap_ms"].as_f64() {
            assert!(g >= 0.0, "negative gap: {n}");
        }
    }
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn a_load_that_breaks_replication_fails_catch_up() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        master_args: vec![
            "--client-output-buffer-limit".into(),
            "replica 1mb 1mb 0".into(),
        ],
        ..LabOptions::default()
    });
    let guard = Untouched::seed_lab(&lab);
    let m = url(lab.master.port);
    let run = std::thread::spawn({
        let args = with_args(
            &topo_args(&lab),
            &[
                "--format", "json", "perf", "-n", "1000000", "-d", "100", "--rounds", "1",
                "--warmup", "0", "--settle", "20s",
            ],
        );
        move || redlab(&args)
    });
    // A replica that stops reading while the load runs: the master's output
    // buffer for it passes 1 MB, and the master drops it.
    wait_until("the load writes", || {
        info(&m, "keyspace").contains("keys=1")
            && info(&m, "stats").contains("total_commands_processed")
    });
    lab.replicas[0].pause().unwrap();
    wait_until("the master drops the replica", || {
        info(&m, "clients").contains("client_recent_max_output_buffer:")
            && !info(&m, "replication").contains("slave0:")
    });
    lab.replicas[0].resume().unwrap();
    let run = run.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "replica1.catch_up");
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains("resync"), "{c}");
    let rs = &r["details"]["resyncs"];
    assert!(
        rs["full"].as_u64().unwrap() + rs["partial"].as_u64().unwrap() >= 1,
        "{rs}"
    );
    eprintln!("observed: {reason}");
    wait_sync(&lab);
    guard.assert();
}

#[test]
fn a_benchmark_on_a_lone_master_asks_for_no_replica_count() {
    let (lone, _d) = server("lone", &[]);
    let perf = [
        "perf", "-n", "200", "-P", "16", "--rounds", "1", "--warmup", "0",
    ];
    let m = url(lone.port);
    // Nobody asked for replicas: no warning about their count, so a plain
    // benchmark passes --fail-on warn.
    let run = redlab(&with_args(
        &["--master", &m, "--fail-on", "warn", "--format", "json"].map(String::from),
        &perf,
    ));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "master");
    assert_eq!(c["verdict"], "pass", "{c}");
    assert!(c["reason"].as_str().unwrap().contains("lone master"), "{c}");
    // Replicas expected: the count is asserted, and none is a failure.
    let run = redlab(&with_args(
        &["--master", &m, "--expect-replicas", "1", "--format", "json"].map(String::from),
        &perf,
    ));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(check(&run.json(), "master")["verdict"], "fail");
}

#[test]
fn an_open_loop_that_misses_its_rate_fails() {
    let lab = lab(0);
    let run = redlab(&with_args(
        &topo_args(&lab),
        &[
            "--format",
            "json",
            "perf",
            "--rate",
            "1000000",
            "--duration",
            "1s",
            "-P",
            "1",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ],
    ));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "perf.rate");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("rate not met: target 1000000 ops/s"),
        "{c}"
    );
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn cluster_nodes_are_discovered_and_sentinel_ports_refused() {
    // A cluster node given alone is a cluster (tests/cluster.rs tests real
    // ones): this one serves no slot, so nothing can be stored and nothing is.
    let (cluster, _d) = server("cluster", &["--cluster-enabled", "yes"]);
    let run = redlab(&["--master", &url(cluster.port), "perf"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("the cluster serves no slot")
            && run.stderr.contains("nothing was written"),
        "{}",
        run.stderr
    );
    assert!(!has_redlab_keys(&url(cluster.port)));
    // In a replication topology (master and replicas given), a cluster node is named.
    let lone = lab(0);
    let run = redlab(&[
        "--master",
        &url(lone.master.port),
        "--replica",
        &url(cluster.port),
        "replicate-check",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is a Redis Cluster node (cluster_enabled:1), given as a node of a replication topology"),
        "{}",
        run.stderr
    );
    assert!(!has_redlab_keys(&url(lone.master.port)));
    // A Sentinel watching a master: named, with the master to give instead.
    let lab = lab(0);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentinel.conf");
    let port = redlab::lab::free_port().unwrap();
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
            lab.master.port
        ),
    )
    .unwrap();
    let child = std::process::Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _sentinel = Proc(child);
    wait_until("the Sentinel answers", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let run = redlab(&["--master", &url(port), "replicate-check"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is a Redis Sentinel")
            && run
                .stderr
                .contains(&format!("'mymaster' at 127.0.0.1:{}", lab.master.port)),
        "{}",
        run.stderr
    );
}

#[test]
fn resp3_urls_work_like_resp2() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let args = vec![
        "--master".to_string(),
        format!("{}?protocol=resp3", url(lab.master.port)),
        "--replica".into(),
        format!("{}?protocol=resp3", url(lab.replicas[0].port)),
        "--format".into(),
        "json".into(),
    ];
    let run = redlab(&with_args(
        &args,
        &["check", "--probes", "2", "--expiry-ttl", "1s"],
    ));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(check(&run.json(), "config-lint")["verdict"], "pass");
    guard.assert();
}
