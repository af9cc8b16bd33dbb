//! Ctrl-C: redlab removes its keys, stops a --spawn lab and exits 130.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

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

fn port_of(pid: u32) -> Option<u16> {
    let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
    cmd.split([' ', '\0'])
        .find_map(|w| w.strip_prefix("127.0.0.1:")?.parse().ok())
}

#[test]
fn ctrl_c_removes_keys_stops_the_spawned_lab_and_exits_130() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args([
            "--spawn",
            "--spawn-replicas",
            "1",
            "--format",
            "json",
            "replicate-check",
            "--probes",
            "10000000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until the lab is up and probes are being written.
    let (servers, master_port) = loop {
        assert!(Instant::now() < deadline, "the lab never came up");
        let kids = children(pid);
        let ports: Vec<u16> = kids.iter().filter_map(|k| port_of(*k)).collect();
        if ports.len() == 2 {
            let mut c = conn(ports[0]);
            let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
            if n > 0 {
                break (kids, ports[0]);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut c = conn(master_port);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(keys.iter().all(|k| k.starts_with("redlab:")), "{keys:?}");
    drop(c);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "redlab did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    for s in servers {
        let gone = !std::path::Path::new(&format!("/proc/{s}")).exists()
            || std::fs::read_to_string(format!("/proc/{s}/stat"))
                .map(|t| t.contains(") Z"))
                .unwrap_or(true);
        assert!(gone, "redis-server {s} still runs");
    }
}

/// Run redlab against `lab` until the master holds `keys` keys, then SIGINT
/// it; returns its exit code and how long it took to stop.
fn interrupt_once_loaded(lab: &Lab, sub: &[&str], keys: u64) -> (Option<i32>, Duration) {
    signal_once_loaded(lab, sub, keys, nix::sys::signal::Signal::SIGINT)
}

fn signal_once_loaded(
    lab: &Lab,
    sub: &[&str],
    keys: u64,
    sig: nix::sys::signal::Signal,
) -> (Option<i32>, Duration) {
    let mut args = topo_args(lab);
    args.extend(["--format", "json"].map(String::from));
    args.extend(sub.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = conn(lab.master.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis::cmd("DBSIZE").query::<u64>(&mut c).unwrap() < keys {
        assert!(Instant::now() < deadline, "{sub:?} never wrote {keys} keys");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, sig).unwrap();
    let start = Instant::now();
    let status = child.wait().unwrap();
    (status.code(), start.elapsed())
}

#[test]
fn ctrl_c_against_a_user_topology_leaves_no_redlab_key() {
    let lab = lab(1);
    let (code, _) = interrupt_once_loaded(&lab, &["replicate-check", "--probes", "10000000"], 50);
    assert_eq!(code, Some(130));
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn ctrl_c_during_a_perf_load_stops_it_and_removes_every_key() {
    let lab = lab(1);
    let load = [
        "perf",
        "--duration",
        "60s",
        "--keyspace",
        "1000000",
        "-P",
        "64",
        "-c",
        "4",
        "--warmup",
        "0",
    ];
    let (code, took) = interrupt_once_loaded(&lab, &load, 5000);
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(120), "stopping took {took:?}");
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn sigterm_ends_a_run_like_ctrl_c() {
    let lab = lab(1);
    let sub = ["replicate-check", "--probes", "10000000"];
    let (code, _) = signal_once_loaded(&lab, &sub, 50, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(130));
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn a_closed_stdout_is_not_a_crash_and_leaves_no_key() {
    let lab = lab(1);
    let mut args = topo_args(&lab);
    args.extend(["replicate-check", "--probes", "5"].map(String::from));
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn ctrl_c_while_the_spawned_lab_starts_leaves_no_server() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(["--spawn", "keycount"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    // As soon as the first server exists, and before the lab is in sync.
    let first = loop {
        assert!(Instant::now() < deadline, "no server was started");
        if let Some(k) = children(pid).into_iter().next() {
            break k;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(130) | Some(0)), "{status:?}");
    let gone = !std::path::Path::new(&format!("/proc/{first}")).exists()
        || std::fs::read_to_string(format!("/proc/{first}/stat"))
            .map(|t| t.contains(") Z"))
            .unwrap_or(true);
    assert!(gone, "redis-server {first} outlived redlab");
}

#[test]
fn an_interrupted_run_still_writes_a_report_that_says_so() {
    let lab = lab(1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("check.json");
    let sub = [
        "check",
        "--probes",
        "10000000",
        "--output",
        out.to_str().unwrap(),
    ];
    let (code, _) = interrupt_once_loaded(&lab, &sub, 50);
    assert_eq!(code, Some(130));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["command"], "check");
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["checks"][0]["name"], "interrupted");
    assert_no_redlab_keys(&ports(&lab));
}
