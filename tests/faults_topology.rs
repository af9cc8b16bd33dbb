//! Faults in the replication topology and under load: wrong roles, broken
//! links, syncing replicas, a stopped replica, a restarted master, a full
//! master, a large dataset. Each ends with its named outcome within
//! --timeout, no user key changed and no redlab key left.

use std::time::{Duration, Instant};

use crate::common::*;

fn topo(master: u16, replicas: &[u16], extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--master".to_string(), url(master)];
    for r in replicas {
        v.extend(["--replica".to_string(), url(*r)]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The findings of check `name`, `finding: reason` per line.
fn items(r: &serde_json::Value, name: &str) -> String {
    let run = r["details"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}"));
    run["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}: {}",
                i["name"].as_str().unwrap(),
                i["reason"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// A healthy replica sees a probe within --max-lag even on a loaded CI box.
const QUICK: [&str; 6] = ["--probes", "2", "--max-lag", "1s", "--settle", "500ms"];

#[test]
fn the_given_master_is_a_replica_refused_before_any_write() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let run = gate(&topo(lab.replicas[0].port, &[lab.master.port], &[]), &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let want = format!(
        "master (127.0.0.1:{}): is a replica of 127.0.0.1:{}, not a master; refused before any write",
        lab.replicas[0].port, lab.master.port
    );
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    let r = run.json();
    assert!(reason(&r, "reachability").contains(&want));
    assert!(reason(&r, "replication").starts_with("not run: "));
    eprintln!("observed: {}", run.stderr.trim());
    guard.assert();
}

#[test]
fn other_master_chained_and_promoted_replicas_fail_naming_what_they_follow() {
    let lab = lab(2);
    let guard = Untouched::seed_lab(&lab);
    let (other, _d1) = server("other", &[]);
    let (stray, _d2) = server(
        "stray",
        &["--replicaof", "127.0.0.1", &other.port.to_string()],
    );
    let (chained, _d3) = server(
        "chained",
        &[
            "--replicaof",
            "127.0.0.1",
            &lab.replicas[0].port.to_string(),
        ],
    );
    wait_link_up(stray.port);
    wait_link_up(chained.port);
    let promoted = lab.replicas[1].port;
    cmd(&url(promoted), &["REPLICAOF", "NO", "ONE"]);
    let run = gate(
        &topo(
            lab.master.port,
            &[lab.replicas[0].port, stray.port, chained.port, promoted],
            &[],
        ),
        &QUICK,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let found = items(&r, "reachability");
    for want in [
        format!(
            "replica2.replication: follows 127.0.0.1:{}, which is another master",
            other.port
        ),
        // Chained behind replica1, which lists it: a deliberate chain, valid.
        format!(
            "replica3.replication: role replica, link up, follows 127.0.0.1:{} (replica1)",
            lab.replicas[0].port
        ),
        "replica4.replication: role is master: it follows no master (promoted".to_string(),
        "replica1.replication: role replica, link up".to_string(),
    ] {
        assert!(found.contains(&want), "{want:?} not in\n{found}");
    }
    eprintln!("observed:\n{found}");
    wait_sync(&lab_without(&lab, 1));
    guard.assert();
    Untouched::assert_no_redlab_keys_on(&[url(stray.port), url(chained.port), url(promoted)]);
}

/// The lab with its replica `i` left out (it was promoted).
fn lab_without(lab: &Lab, i: usize) -> redlab::topology::Topology {
    let mut t = lab.topology();
    t.replicas.remove(i);
    t
}

fn wait_sync(t: &redlab::topology::Topology) {
    rt().block_on(redlab::lab::wait_in_sync(t, Duration::from_secs(10)))
        .unwrap();
}

#[test]
fn link_down_shows_the_fields_and_stale_data_no_is_masterdown() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        password: Some("pw".into()),
        ..LabOptions::default()
    });
    let urls: Vec<String> = ports(&lab).iter().map(|p| url_pw(*p, "pw")).collect();
    let guard = Untouched::seed(&urls[0], &urls);
    let m = lab.master.port.to_string();
    let wrong_auth = [
        "--requirepass",
        "pw",
        "--masterauth",
        "wrong",
        "--replicaof",
        "127.0.0.1",
        &m,
    ];
    let (down, _d1) = server("down", &wrong_auth);
    let (stale, _d2) = server(
        "stale",
        &[&wrong_auth[..], &["--replica-serve-stale-data", "no"]].concat(),
    );
    let mut a = topo(
        lab.master.port,
        &[lab.replicas[0].port, down.port, stale.port],
        &[],
    );
    a.extend(["--password".into(), "pw".into()]);
    let run = gate(&a, &QUICK);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let reach = items(&r, "reachability");
    let want = format!(
        "replica2.replication: link to 127.0.0.1:{m} (master) is down (master_link_down_since_seconds"
    );
    assert!(
        reach.contains(&want) && reach.contains("master_last_io_seconds_ago"),
        "{reach}"
    );
    assert!(reach.contains("wrong masterauth"), "{reach}");
    let repl = items(&r, "replication");
    assert!(
        repl.contains("replica3.propagation: GET refused with MASTERDOWN"),
        "{repl}"
    );
    assert!(
        repl.contains("replica1.propagation: 2 probes seen"),
        "{repl}"
    );
    eprintln!("observed:\n{reach}\n{repl}");
    guard.assert();
}

/// A master with `n` keys of 100 bytes (pipelined).
fn fill(u: &str, n: usize) {
    let mut c = conn_url(u);
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET")
            .arg(format!("bulk:{i}"))
            .arg("x".repeat(100))
            .ignore();
    }
    p.exec(&mut c).unwrap();
}

/// The gate says `syncing: <how>` for the replica, and its parity is
/// "syncing": never "same counts", never a loss or a difference.
fn gate_sees_syncing(master: u16, replica: u16, how: &str) {
    let run = gate(&topo(master, &[replica], &["--timeout", "1s"]), &QUICK);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let reach = items(&r, "reachability");
    let want = format!("replica1.replication: syncing: {how}");
    assert!(reach.contains(&want), "{want:?} not in {reach}");
    let kc = items(&r, "keycount");
    let line = kc
        .lines()
        .find(|l| l.starts_with("replica1.parity"))
        .unwrap_or_else(|| panic!("no replica1.parity in {kc}"));
    assert!(line.contains("syncing"), "{line}");
    for never in ["same counts", "lost", "differs"] {
        assert!(!line.contains(never), "{never:?} in {line}");
    }
    eprintln!("observed:\n{reach}\n{kc}");
}

#[test]
fn replica_in_full_sync_is_syncing() {
    let lab = lab(0);
    let m = url(lab.master.port);
    fill(&m, 2000);
    let guard = Untouched::seed_lab(&lab);
    // The master's RDB child sleeps 2 ms per key: a full sync of about 4 s.
    cmd(&m, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
    let (late, _d) = server(
        "late",
        &["--replicaof", "127.0.0.1", &lab.master.port.to_string()],
    );
    wait_until("the replica is in its full sync", || {
        info(&url(late.port), "replication").contains("master_sync_in_progress:1")
    });
    gate_sees_syncing(lab.master.port, late.port, "full sync in progress");
    cmd(&m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    guard.assert();
}

#[test]
fn replica_loading_its_dataset_is_syncing() {
    let lab = lab(0);
    let m = url(lab.master.port);
    fill(&m, 3000);
    let guard = Untouched::seed_lab(&lab);
    let (late, _d) = server("loading", &[]);
    let l = url(late.port);
    // 1 ms per key loaded, and answer INFO every KiB meanwhile.
    cmd(&l, &["CONFIG", "SET", "key-load-delay", "1000"]);
    cmd(
        &l,
        &[
            "CONFIG",
            "SET",
            "loading-process-events-interval-bytes",
            "1024",
        ],
    );
    cmd(
        &l,
        &["REPLICAOF", "127.0.0.1", &lab.master.port.to_string()],
    );
    wait_until("the replica loads", || {
        info(&l, "persistence").contains("loading:1")
    });
    gate_sees_syncing(lab.master.port, late.port, "loading the dataset");
    guard.assert();
}

#[test]
fn replica_stopped_during_a_check_fails_with_lag_and_no_hang() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let r1 = url(lab.replicas[0].port);
    let run = gate_in_background(
        &topo_args_with(&lab, &["--timeout", "1s"]),
        &["--probes", "100000"],
    );
    wait_until("redlab probes the replica", || has_redlab_keys(&r1));
    lab.replicas[0].pause().unwrap();
    let run = run.join().unwrap();
    lab.replicas[0].resume().unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Each check that reads the stalled replica gives it one --timeout (1s):
    // seven checks, plus start-up.
    assert!(
        run.elapsed < Duration::from_secs(90),
        "took {:?}",
        run.elapsed
    );
    let r = run.json();
    let found = format!(
        "{}\n{}",
        items(&r, "reachability"),
        items(&r, "replication")
    );
    let line = found
        .lines()
        .find(|l| l.starts_with("replica1.") && l.contains(" behind, last ACK"))
        .unwrap_or_else(|| panic!("no lag for replica1 in\n{}", all_reasons(&r)));
    eprintln!("observed: {line}");
    wait_sync_lab(&lab);
    guard.assert();
}

fn topo_args_with(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut a = topo_args(lab);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn wait_sync_lab(lab: &Lab) {
    wait_sync(&lab.topology());
}

/// Restart the lab's master on its port while a check probes it.
fn restart_mid_run(lab: &mut Lab, master_args: &[String]) -> serde_json::Value {
    let m = url(lab.master.port);
    let run = gate_in_background(
        &topo_args_with(lab, &["--timeout", "3s"]),
        &["--probes", "100000"],
    );
    wait_until("redlab probes the master", || has_redlab_keys(&m));
    let port = lab.master.port;
    lab.master
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    wait_until("the master is down", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    lab.master.kill();
    lab.master = Server::spawn(
        &lab.dir,
        "master",
        port,
        redlab::lab::MASTER_CONF,
        master_args,
    )
    .unwrap();
    lab.master.wait_ready(Duration::from_secs(10)).unwrap();
    let run = run.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(verdict(&r, "master-restart"), "fail");
    assert!(
        reason(&r, "replication").contains("connection lost during SET"),
        "{}",
        all_reasons(&r)
    );
    eprintln!("observed: {}", reason(&r, "master-restart"));
    r
}

#[test]
fn master_restarted_mid_run_is_detected() {
    let mut lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let r = restart_mid_run(&mut lab, &[]);
    let why = reason(&r, "master-restart");
    assert!(
        why.starts_with("the master restarted during the run (run id"),
        "{why}"
    );
    assert!(
        why.contains("persistence rdb: it reloaded what it had last saved"),
        "{why}"
    );
    wait_sync_lab(&lab);
    guard.assert();
}

#[test]
fn master_restarted_mid_run_without_persistence_warns_it_came_back_empty() {
    let no_save = vec!["--save".to_string(), "".to_string()];
    let mut lab = lab_with(LabOptions {
        replicas: 1,
        master_args: no_save.clone(),
        ..LabOptions::default()
    });
    let r = restart_mid_run(&mut lab, &no_save);
    let why = reason(&r, "master-restart");
    assert!(
        why.contains("persistence is off: it came back empty"),
        "{why}"
    );
    wait_sync_lab(&lab);
    Untouched::assert_no_redlab_keys_on(&ports(&lab).into_iter().map(url).collect::<Vec<_>>());
}

#[test]
fn noeviction_master_at_its_limit_reports_oom_cleanly() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let m = url(lab.master.port);
    cmd(&m, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let used = info(&m, "memory")
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .to_string();
    cmd(&m, &["CONFIG", "SET", "maxmemory", &used]);
    let run = gate(&topo_args_with(&lab, &["--timeout", "1s"]), &QUICK);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let repl = reason(&r, "replication");
    // An outage, not a full cache: named as such, and the master fails `master.serving`.
    assert!(repl.contains("so every user's write gets OOM"), "{repl}");
    assert_eq!(verdict(&r, "master.serving"), "fail");
    assert_eq!(verdict(&r, "reachability"), "pass");
    eprintln!("observed: {repl}");
    cmd(&m, &["CONFIG", "SET", "maxmemory", "0"]);
    guard.assert();
}

#[test]
fn a_million_keys_stay_fast() {
    let (master, _d1) = server("big", &["--enable-debug-command", "local"]);
    let m = url(master.port);
    cmd(&m, &["DEBUG", "POPULATE", "1000000"]);
    let (replica, _d2) = server(
        "bigr",
        &["--replicaof", "127.0.0.1", &master.port.to_string()],
    );
    let r = url(replica.port);
    wait_until("the replica has the million keys", || {
        info(&r, "replication").contains("master_link_status:up")
            && info(&r, "keyspace").contains("db0:keys=1000000,")
    });
    let digest = || cmd(&m, &["DEBUG", "DIGEST"]);
    let before = digest();
    let started = Instant::now();
    let run = gate(&topo(master.port, &[replica.port], &[]), &["--probes", "5"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        took < Duration::from_secs(90),
        "check took {took:?} on 1M keys"
    );
    assert_eq!(digest(), before, "user data changed");
    Untouched::assert_no_redlab_keys_on(&[m, r]);
    eprintln!("observed: check on 1M keys took {took:?}");
}
