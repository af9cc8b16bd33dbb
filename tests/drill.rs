//! redlab drill on real servers and real Sentinels: each fault's cost
//! measured, asserted as bounds derived from the configured timeouts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The lab's Sentinel timeouts (the defaults), ms.
const DOWN_AFTER_MS: f64 = 1000.0;
const FAILOVER_TIMEOUT_MS: f64 = 5000.0;

fn drill(lab: &[&str], args: &[&str]) -> (Run, serde_json::Value) {
    let mut all = vec!["--spawn", "--format", "json"];
    all.extend_from_slice(lab);
    all.push("drill");
    all.extend_from_slice(&["--before", "1s", "--after", "500ms"]);
    all.extend_from_slice(args);
    let run = redlab(&all);
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}\n{}",
        run.code,
        run.stderr,
        run.stdout
    );
    let json = run.json();
    (run, json)
}

/// Exit 0, or say which check failed and why.
fn passed(run: &Run, r: &serde_json::Value) {
    let failed: Vec<&serde_json::Value> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert_eq!(
        run.code, 0,
        "failed checks: {failed:#?}\nstderr: {}",
        run.stderr
    );
}

fn verdict<'a>(r: &'a serde_json::Value, name: &str) -> &'a str {
    check(r, name)["verdict"].as_str().unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn levels(d: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    d["levels"].as_array().unwrap().iter()
}

/// The replicas the lab had before the fault (every node but the master).
fn replicas_before(d: &serde_json::Value) -> usize {
    d["resync"].as_array().unwrap().len() - 1
}

fn node<'a>(d: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    d["resync"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {}", d["resync"]))
}

#[test]
fn kill_master_promotes_a_replica_and_the_old_master_rejoins_as_its_replica() {
    let (run, r) = drill(&["--sentinels", "3"], &["--fault", "kill-master"]);
    let d = &r["details"];
    // At the default --ack replicas:1, a write one replica acknowledged can
    // be lost: Sentinel promotes by the offsets its last INFO showed, and on
    // a loaded machine that can be a replica that had fallen behind (seen in
    // CI: 88 of 1368 lost on the promoted replica3). That is Redis, and the
    // drill must say so: drill.lost fails with the count, and nothing else
    // may. What no failover can lose is a write every replica acknowledged.
    let acked_lost: u64 = levels(d)
        .filter(|l| l["acknowledged"] == true)
        .map(|l| l["lost"].as_u64().unwrap())
        .sum();
    assert_eq!(d["lost_acknowledged"], acked_lost, "{d}");
    if acked_lost > 0 {
        assert_eq!(
            verdict(&r, "drill.lost"),
            "fail",
            "{}",
            check(&r, "drill.lost")
        );
        assert_eq!(run.code, 1);
        let failed: Vec<&serde_json::Value> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail" && c["name"] != "drill.lost")
            .collect();
        assert!(failed.is_empty(), "failed besides drill.lost: {failed:#?}");
    } else {
        passed(&run, &r);
        assert_eq!(verdict(&r, "drill.lost"), "pass");
    }
    let every_replica = format!("WAIT {}", replicas_before(d));
    for l in levels(d).filter(|l| l["level"] == every_replica.as_str()) {
        assert_eq!(
            l["lost"], 0,
            "acknowledged by every replica, then lost: {d}"
        );
    }
    assert_ne!(d["master_after"], "master", "no promotion: {d}");
    // Sentinel cannot call the master down before down-after, nor promote
    // before it did. The upper bounds are gross (the timeouts plus 10 s):
    // they catch a drill that never saw the failover, not a slow machine.
    let detected = f(&d["detected_ms"]);
    let promoted = f(&d["promoted_ms"]);
    let downtime = f(&d["downtime_ms"]);
    assert!(
        detected > 0.0 && detected <= DOWN_AFTER_MS + 10_000.0,
        "{d}"
    );
    assert!(
        promoted >= detected && promoted <= DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS + 10_000.0,
        "{d}"
    );
    assert!(
        downtime >= detected,
        "writes came back before the master was even detected: {d}"
    );
    assert!(
        downtime <= DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS + 10_000.0,
        "{d}"
    );
    assert!(f(&d["downtime_to_ms"]) >= promoted, "{d}");
    assert!(
        f(&d["writes"]["failed"]) > 0.0,
        "a killed master refused nothing? {d}"
    );
    // The old master came back, and as a replica of the new one.
    assert_eq!(verdict(&r, "drill.rejoin"), "pass");
    assert_eq!(node(d, "master")["role_after"], "replica");
    assert_eq!(node(d, "master")["restarted"], true);
    for c in ["drill.stable", "drill.downtime", "drill.replicas"] {
        assert_eq!(verdict(&r, c), "pass", "{c}: {}", check(&r, c));
    }
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["+sdown", "+odown", "+switch-master", "+convert-to-slave"] {
        assert!(kinds.contains(&k), "no {k} in the timeline");
    }
}

#[test]
fn stop_replica_within_the_backlog_resyncs_partially() {
    let (run, r) = drill(
        &["--spawn-replicas", "2", "--sentinels", "1"],
        &[
            "--fault",
            "stop-replica",
            "--for",
            "5s",
            "--expect",
            "partial",
        ],
    );
    passed(&run, &r);
    let d = &r["details"];
    assert_eq!(d["seen_resync"], "partial", "{d}");
    assert!(f(&d["missed_bytes"]) < f(&d["backlog_bytes"]), "{d}");
    assert_eq!(node(d, "replica1")["partial_resyncs"], 1);
    assert_eq!(node(d, "master")["served_partial_ok"], 1);
    assert_eq!(d["master_after"], "master");
    assert_eq!(verdict(&r, "drill.resync"), "pass");
    assert_eq!(verdict(&r, "drill.rejoin"), "pass");
}

#[test]
fn stop_replica_past_a_tiny_backlog_resyncs_fully() {
    let (run, r) = drill(
        &[
            "--spawn-replicas",
            "2",
            "--sentinels",
            "1",
            "--backlog",
            "16kb",
        ],
        &[
            "--fault",
            "stop-replica",
            "--for",
            "5s",
            "--rate",
            "200",
            "--value-size",
            "1024",
            "--expect",
            "full",
        ],
    );
    passed(&run, &r);
    let d = &r["details"];
    assert_eq!(d["backlog_bytes"], 16384);
    assert!(f(&d["missed_bytes"]) > 16384.0 * 4.0, "{d}");
    assert_eq!(d["seen_resync"], "full", "{d}");
    assert_eq!(node(d, "replica1")["full_resyncs"], 1);
    assert_eq!(node(d, "master")["served_full"], 1);
    assert_eq!(verdict(&r, "drill.resync"), "pass");
    assert_eq!(d["lost_acknowledged"], 0);
}

#[test]
fn graceful_failover_loses_no_write_acknowledged_by_every_replica() {
    // One replica: WAIT 1 is every replica, the one promoted included. The
    // promoted one then has no replica to acknowledge until Sentinel turns
    // the old master into one (8 s after it sees it still a master, by
    // design), so writes are acknowledged again only then: a longer bound.
    let (run, r) = drill(
        &["--spawn-replicas", "1", "--sentinels", "3"],
        &[
            "--fault",
            "failover",
            "--ack",
            "replicas:1",
            "--max-downtime",
            "25s",
        ],
    );
    passed(&run, &r);
    let d = &r["details"];
    assert_eq!(d["master_after"], "replica1");
    assert_eq!(d["lost_acknowledged"], 0, "{d}");
    assert!(f(&d["writes"]["acknowledged"]) > 100.0, "{d}");
    assert!(
        d["detected_ms"].is_null(),
        "a graceful failover detects nothing: {d}"
    );
    // Unavailable at WAIT 1 from the promotion until the old master rejoined.
    assert!(f(&d["downtime_ms"]) >= f(&d["promoted_ms"]), "{d}");
    assert!(f(&d["downtime_to_ms"]) <= f(&d["stable_ms"]), "{d}");
    assert_eq!(verdict(&r, "drill.rejoin"), "pass");
    assert_eq!(node(d, "master")["role_after"], "replica");
}

#[test]
fn graceful_failover_loses_only_what_the_demoted_master_acknowledged() {
    // Two replicas, WAIT 1: after the promotion the old master still has a
    // replica to acknowledge writes, until the Sentinels tell clients. The
    // drill must count exactly those, and never a write both replicas had.
    let (run, r) = drill(
        &["--spawn-replicas", "2", "--sentinels", "3"],
        &["--fault", "failover", "--ack", "replicas:1"],
    );
    let d = &r["details"];
    let lost = d["lost_acknowledged"].as_u64().unwrap();
    assert_eq!(run.code, if lost > 0 { 1 } else { 0 }, "{}", run.stdout);
    assert_eq!(
        verdict(&r, "drill.lost"),
        if lost > 0 { "fail" } else { "pass" }
    );
    if lost > 0 {
        assert_eq!(d["lost_by_node"].as_object().unwrap().len(), 1, "{d}");
        assert_eq!(d["lost_by_node"]["master"], lost, "{d}");
        assert!(
            f(&d["lost_from_ms"]) >= 0.0,
            "a write acknowledged before the fault was lost: {d}"
        );
        assert!(
            f(&d["lost_to_ms"]) <= f(&d["switch_master_ms"]) + 1000.0,
            "{d}"
        );
    }
    for l in d["levels"].as_array().unwrap() {
        if l["level"] == "WAIT 2" {
            assert_eq!(l["lost"], 0, "a write both replicas had was lost: {l}");
        }
    }
    assert_eq!(verdict(&r, "drill.rejoin"), "pass");
    assert_eq!(verdict(&r, "drill.replicas"), "pass");
}

#[test]
fn refuses_a_topology_redlab_did_not_start_and_changes_nothing() {
    let lab = lab(1);
    let state = tempfile::tempdir().unwrap();
    let before = snapshot(&mut conn(lab.master.port));
    let mut args = topo_args(&lab);
    args.extend(
        ["drill", "--fault", "kill-master", "--state-dir"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(state.path().to_str().unwrap().to_string());
    let run = redlab(&args);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("only into servers redlab started")
            && run.stderr.contains("nothing was done"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // Still up, same process, same data, no key of redlab's.
    let mut c = conn(lab.master.port);
    let pid: u32 = redis::cmd("INFO")
        .arg("server")
        .query::<String>(&mut c)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
        .unwrap();
    assert_eq!(pid, lab.master.pid);
    assert_eq!(snapshot(&mut c), before);
    assert_no_redlab_keys(&ports(&lab));
}

fn state_of(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

fn sigint_when(child: &mut std::process::Child, mut ready: impl FnMut() -> bool) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ready() {
        assert!(Instant::now() < deadline, "the fault never began");
        assert!(child.try_wait().unwrap().is_none(), "redlab ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "redlab did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_mid_drill_resumes_the_stopped_master_and_stops_the_spawned_lab() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args([
            "--spawn",
            "--spawn-replicas",
            "1",
            "--sentinels",
            "1",
            "--quiet",
        ])
        .args([
            "drill",
            "--fault",
            "stop-master",
            "--for",
            "60s",
            "--before",
            "1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = Vec::new();
    let code = sigint_when(&mut child, || {
        seen = children(pid);
        seen.iter().any(|c| state_of(*c) == Some('T'))
    });
    assert_eq!(code, 130);
    // The servers are reaped as redlab exits: wait for that, within a bound.
    let gone = |c: &u32| matches!(state_of(*c), None | Some('Z'));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().all(gone) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in &seen {
        let st = state_of(*c);
        assert!(
            st.is_none() || st == Some('Z'),
            "pid {c} left behind in state {st:?}"
        );
    }
}

#[test]
fn ctrl_c_mid_drill_leaves_a_lab_up_lab_whole() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let base = free_port_run(2).to_string();
    let up = redlab(&[
        "lab",
        "--state-dir",
        dir,
        "up",
        "--replicas",
        "1",
        "--base-port",
        &base,
        "--sentinels",
        "1",
    ]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let lab_state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.path().join("lab.json")).unwrap())
            .unwrap();
    let pids: Vec<u32> = lab_state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap() as u32)
        .collect();
    let master = format!("redis://127.0.0.1:{base}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args([
            "--quiet",
            "--master",
            &master,
            "drill",
            "--fault",
            "stop-replica",
        ])
        .args(["--for", "60s", "--before", "1s", "--state-dir", dir])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = sigint_when(&mut child, || {
        pids.iter().any(|p| state_of(*p) == Some('T'))
    });
    assert_eq!(code, 130);
    for p in &pids {
        assert_ne!(state_of(*p), Some('T'), "pid {p} left stopped");
    }
    // Whole again: the replica's link comes back (bounded), nothing of redlab's left.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = redlab(&["lab", "--state-dir", dir, "status"]);
        if status.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lab not whole: {}",
            status.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let port: u16 = base.parse().unwrap();
    assert_no_redlab_keys(&[port, port + 1]);
    let down = redlab(&["lab", "--state-dir", dir, "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
}
