//! A node that does not serve is never PASS: a master (or replica) loading
//! its dataset, busy with a script, refusing writes after a failed save
//! (MISCONF) or full under a policy that cannot evict fails every checking
//! subcommand with `<node>.serving` (exit 1) and is refused by every writing
//! one (exit 2), with the reason on one line; user data is unchanged and no
//! redlab key is left. A full cache that evicts by design is a skip, and the
//! run says how many keys were evicted while it ran.

use crate::common::*;

const DEBUG: [&str; 4] = [
    "--enable-debug-command",
    "local",
    "--enable-protected-configs",
    "local",
];

fn digest(url: &str) -> redis::Value {
    cmd(url, &["DEBUG", "DIGEST"])
}

/// `redlab --master URL --expect-replicas 0 --format json SUB ARGS...`
fn run_on(url: &str, sub: &[&str]) -> Run {
    let mut args = vec![
        "--master",
        url,
        "--expect-replicas",
        "0",
        "--format",
        "json",
    ];
    args.extend_from_slice(sub);
    redlab(&args)
}

/// The `<node>.serving` check of a report, failed, and its reason.
fn serving_reason(r: &Run, node: &str) -> String {
    let json = r.json();
    let c = check(&json, &format!("{node}.serving"));
    assert_eq!(c["verdict"], "fail", "{c}");
    c["reason"].as_str().unwrap().to_string()
}

/// Every checking subcommand fails naming `want`; every writing one refuses with it.
fn assert_not_serving(url: &str, want: &str) {
    for sub in [
        &["check", "--probes", "2"][..],
        &["replicate-check", "--probes", "2"],
        &["keycount"],
        &["compare"],
        &["stats"],
    ] {
        let run = run_on(url, sub);
        assert_eq!(run.code, 1, "{sub:?}: {}\n{}", run.stdout, run.stderr);
        let why = serving_reason(&run, "master");
        assert!(why.contains(want), "{sub:?}: {why}");
        eprintln!("observed {sub:?}: {why}");
    }
    for sub in [
        &["perf", "-n", "100", "--rounds", "1"][..],
        &["ttl-watch", "--ttl", "1s"],
    ] {
        let run = run_on(url, sub);
        assert_eq!(run.code, 2, "{sub:?}: {}\n{}", run.stdout, run.stderr);
        let last = run.stderr.lines().last().unwrap_or("");
        assert!(last.contains(want), "{sub:?}: {}", run.stderr);
        eprintln!("observed {sub:?}: {last}");
    }
}

#[test]
fn a_loading_master_fails_every_check_and_is_refused_by_every_writer() {
    let (s, _dir) = server("loading", &DEBUG);
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    cmd(&m, &["DEBUG", "POPULATE", "20000", "pop", "10"]);
    let before = digest(&m);
    // Slow loading right down, and answer other clients while it loads.
    cmd(
        &m,
        &[
            "CONFIG",
            "SET",
            "loading-process-events-interval-bytes",
            "1024",
        ],
    );
    cmd(&m, &["CONFIG", "SET", "key-load-delay", "5000"]);
    let reload = {
        let m = m.clone();
        std::thread::spawn(move || cmd(&m, &["DEBUG", "RELOAD"]))
    };
    wait_until("the master is loading", || {
        info(&m, "persistence").contains("loading:1")
    });
    assert_not_serving(&m, "not serving: loading its dataset");
    cmd(&m, &["CONFIG", "SET", "key-load-delay", "0"]);
    reload.join().unwrap();
    wait_until("the master has loaded", || {
        info(&m, "persistence").contains("loading:0")
    });
    assert_eq!(digest(&m), before, "user data changed");
    guard.assert_no_redlab_keys();
}

#[test]
fn a_master_busy_with_a_script_fails_every_check_and_is_refused_by_every_writer() {
    let (s, _dir) = server("busy", &DEBUG);
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    let before = digest(&m);
    cmd(&m, &["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let script = {
        let m = m.clone();
        std::thread::spawn(move || {
            // Ends with an error once SCRIPT KILL stops it.
            let _ = redis::cmd("EVAL")
                .arg("while true do end")
                .arg(0)
                .query::<redis::Value>(&mut conn_url(&m));
        })
    };
    wait_until("the master answers BUSY", || {
        redis::cmd("PING")
            .query::<String>(&mut conn_url(&m))
            .is_err_and(|e| e.code() == Some("BUSY"))
    });
    assert_not_serving(&m, "not serving: busy running a long script");
    cmd(&m, &["SCRIPT", "KILL"]);
    script.join().unwrap();
    assert_eq!(digest(&m), before, "user data changed");
    guard.assert_no_redlab_keys();
}

#[test]
fn a_misconf_master_fails_and_refuses_writers_while_readers_still_run() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        master_args: DEBUG.map(String::from).to_vec(),
        ..LabOptions::default()
    });
    let guard = Untouched::seed_lab(&lab);
    let m = url(lab.master.port);
    let before = digest(&m);
    let saves = tempfile::tempdir().unwrap();
    let gone = saves.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let dir = match cmd(&m, &["CONFIG", "GET", "dir"]) {
        redis::Value::Array(v) => redis::from_redis_value::<String>(v[1].clone()).unwrap(),
        other => panic!("{other:?}"),
    };
    cmd(&m, &["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
    std::fs::remove_dir(&gone).unwrap();
    cmd(&m, &["BGSAVE"]);
    wait_until("the save failed", || {
        let i = info(&m, "persistence");
        i.contains("rdb_bgsave_in_progress:0") && i.contains("rdb_last_bgsave_status:err")
    });
    let want = "every write gets MISCONF";
    let top = topo_args(&lab);
    for sub in [
        &["check", "--probes", "2"][..],
        &["replicate-check", "--probes", "2"],
    ] {
        let mut args = top.clone();
        args.extend(["--format", "json"].map(String::from));
        args.extend(sub.iter().map(|s| s.to_string()));
        let run = redlab(&args);
        assert_eq!(run.code, 1, "{sub:?}: {}\n{}", run.stdout, run.stderr);
        assert!(
            serving_reason(&run, "master").contains(want),
            "{}",
            run.stdout
        );
    }
    // Reads work: keycount and compare still compare, stats still reads.
    for (sub, measured) in [
        ("keycount", "replica1.parity"),
        ("compare", "replica1.consistency"),
    ] {
        let mut args = top.clone();
        args.extend(["--format", "json", sub].map(String::from));
        let run = redlab(&args);
        assert_eq!(run.code, 1, "{sub}: {}\n{}", run.stdout, run.stderr);
        assert!(serving_reason(&run, "master").contains(want));
        assert_eq!(
            check(&run.json(), measured)["verdict"],
            "pass",
            "{}",
            run.stdout
        );
    }
    let mut args = top.clone();
    args.extend(["--format", "json", "stats"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.json()["details"]["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 2),
        "{}",
        run.stdout
    );
    let mut args = top.clone();
    args.extend(["perf", "-n", "100", "--rounds", "1"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.contains(&format!("master (127.0.0.1:{})", lab.master.port)) && last.contains(want),
        "{}",
        run.stderr
    );
    eprintln!("observed perf: {last}");
    cmd(&m, &["CONFIG", "SET", "dir", &dir]);
    cmd(&m, &["CONFIG", "SET", "save", ""]);
    assert_eq!(digest(&m), before, "user data changed");
    guard.assert();
}

/// maxmemory just under what the master uses now, under `policy`.
fn fill(m: &str, policy: &str) {
    cmd(m, &["CONFIG", "SET", "maxmemory-policy", policy]);
    let used: u64 = info(m, "memory")
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Below what it uses: over its limit whatever the test's own connections add.
    cmd(
        m,
        &["CONFIG", "SET", "maxmemory", &(used * 95 / 100).to_string()],
    );
}

#[test]
fn a_full_master_that_cannot_evict_is_an_outage_not_a_skip() {
    let (s, _dir) = server("oom", &DEBUG);
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    let before = digest(&m);
    for policy in ["noeviction", "volatile-lru"] {
        // volatile-lru: the seeded keys with a TTL would be evicted; without them nothing can be.
        if policy == "volatile-lru" {
            for db in ["0", "2", "5"] {
                let mut c = conn_url(&m);
                redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
                let _: () = redis::cmd("PERSIST")
                    .arg(format!("ttl:{db}"))
                    .query(&mut c)
                    .unwrap();
            }
        }
        fill(&m, policy);
        assert_not_serving(&m, "so every user's write gets OOM");
        cmd(&m, &["CONFIG", "SET", "maxmemory", "0"]);
    }
    for db in ["0", "2", "5"] {
        let mut c = conn_url(&m);
        redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
        let _: () = redis::cmd("EXPIRE")
            .arg(format!("ttl:{db}"))
            .arg(3600)
            .query(&mut c)
            .unwrap();
    }
    assert_eq!(digest(&m), before, "user data changed");
    guard.assert_no_redlab_keys();
}

#[test]
fn a_full_cache_that_evicts_by_design_is_a_skip_that_counts_evictions() {
    let (s, _dir) = server("cache", &DEBUG);
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    // Enough keys for eviction to make room.
    cmd(&m, &["DEBUG", "POPULATE", "20000", "pop", "100"]);
    fill(&m, "allkeys-lru");
    let run = run_on(&m, &["check", "--probes", "2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(verdict(&r, "replication"), "skipped", "{}", run.stdout);
    assert!(reason(&r, "replication").contains("could evict user keys"));
    let ev = check(&r, "master.evictions");
    assert_eq!(ev["verdict"], "warn", "{ev}");
    let why = ev["reason"].as_str().unwrap();
    assert!(
        why.contains("evicted while this run ran") && why.contains("reads included"),
        "{why}"
    );
    eprintln!("observed: {why}");
    assert!(!has_redlab_keys(&m));
    cmd(&m, &["CONFIG", "SET", "maxmemory", "0"]);
    // Reads at the limit may have evicted seeded keys: only redlab's absence is asserted.
    guard.assert_no_redlab_keys();
}

#[test]
fn a_replica_that_is_loading_fails_the_check_and_is_refused_by_writers() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        master_args: DEBUG.map(String::from).to_vec(),
        replica_args: DEBUG.map(String::from).to_vec(),
        ..LabOptions::default()
    });
    let guard = Untouched::seed_lab(&lab);
    let r = url(lab.replicas[0].port);
    let m = url(lab.master.port);
    // DEBUG POPULATE is not replicated: real writes, for the replica to load.
    let mut c = conn_url(&m);
    for chunk in 0..20 {
        let mut mset = redis::cmd("MSET");
        for i in 0..1000 {
            mset.arg(format!("pop:{chunk}:{i}")).arg("0123456789");
        }
        mset.exec(&mut c).unwrap();
    }
    wait_sync(&lab);
    let before = digest(&m);
    cmd(
        &r,
        &[
            "CONFIG",
            "SET",
            "loading-process-events-interval-bytes",
            "1024",
        ],
    );
    cmd(&r, &["CONFIG", "SET", "key-load-delay", "5000"]);
    let reload = {
        let r = r.clone();
        std::thread::spawn(move || cmd(&r, &["DEBUG", "RELOAD"]))
    };
    wait_until("the replica is loading", || {
        info(&r, "persistence").contains("loading:1")
    });
    let mut args = topo_args(&lab);
    args.extend(["--format", "json", "keycount"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(serving_reason(&run, "replica1").contains("loading its dataset"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.json");
    let mut args = topo_args(&lab);
    args.extend(["--output", out.to_str().unwrap()].map(String::from));
    args.extend(["perf", "-n", "100", "--rounds", "1"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.contains("replica1 (") && last.contains("loading its dataset"),
        "{}",
        run.stderr
    );
    // The refusal came from the survey: its report says what the survey
    // found (the error carries the nodes), with the error as its headline.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        saved["details"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("loading its dataset")),
        "{saved}"
    );
    let names: Vec<&str> = saved["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["master", "replica1"], "{saved}");
    assert_eq!(saved["nodes"][1]["expected_role"], "replica", "{saved}");
    cmd(&r, &["CONFIG", "SET", "key-load-delay", "0"]);
    reload.join().unwrap();
    wait_until("the replica has loaded", || {
        info(&r, "persistence").contains("loading:0")
    });
    assert_eq!(digest(&m), before, "user data changed");
    wait_sync(&lab);
    guard.assert_no_redlab_keys();
}
