//! perf's live memory guard: it stops the load before the master's room is
//! used (maxmemory, or the host's memory on a master without it), says so
//! in a check with the figures so far, and leaves nothing behind; up front
//! it refuses only what certainly cannot fit.

use std::process::Command;

use crate::common::*;

/// `redlab --format json` with `env` set.
fn redlab_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: std::time::Duration::ZERO,
    }
}

const ENDLESS: [&str; 7] = [
    "perf",
    "-n",
    "18446744073709551615",
    "-d",
    "100",
    "--rounds",
    "2",
];

fn assert_stopped_early(run: &Run, room: &str) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "perf.memory");
    assert_eq!(c["verdict"], "warn", "{c}");
    let why = c["reason"].as_str().unwrap();
    assert!(
        why.starts_with("stopped early: the master's used_memory reached") && why.contains(room),
        "{why}"
    );
    assert!(r["details"]["stopped_early"].is_string());
    let done = r["details"]["round_results"][0]["completed"]
        .as_u64()
        .unwrap();
    assert!(done > 0, "{}", r["details"]["round_results"]);
    eprintln!("observed: {why}");
}

#[test]
fn without_maxmemory_perf_stops_before_the_hosts_room_is_used() {
    let (s, _d) = server(
        "room",
        &["--maxmemory", "0", "--enable-debug-command", "local"],
    );
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    let digest = cmd(&m, &["DEBUG", "DIGEST"]);
    // The host's room, replaced so the test does not fill the machine: the
    // guard's arithmetic is the same on total_system_memory.
    let mut args = vec!["--master", &m, "--expect-replicas", "0", "--format", "json"];
    args.extend(ENDLESS);
    let run = redlab_env(&args, &[("REDLAB_ROOM_BYTES", "20000000")]);
    assert_stopped_early(&run, "no maxmemory: half of 19.1 MiB (REDLAB_ROOM_BYTES)");
    assert_eq!(cmd(&m, &["DEBUG", "DIGEST"]), digest, "user data changed");
    guard.assert();
}

#[test]
fn with_a_small_maxmemory_perf_stops_before_it_evicts() {
    let (s, _d) = server(
        "small",
        &["--maxmemory", "24mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    let mut args = vec!["--master", &m, "--expect-replicas", "0", "--format", "json"];
    args.extend(ENDLESS);
    let run = redlab_env(&args, &[]);
    assert_stopped_early(&run, "90 % of maxmemory 24.0 MiB");
    let r = run.json();
    assert!(
        !r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "master.evictions"),
        "{}",
        r["checks"]
    );
    guard.assert();
}

#[test]
fn only_what_certainly_cannot_fit_is_refused_up_front() {
    let (s, _d) = server(
        "tiny",
        &["--maxmemory", "24mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let m = url(s.port);
    let guard = Untouched::seed(&m, std::slice::from_ref(&m));
    let run = redlab_env(
        &[
            "--master",
            &m,
            "--expect-replicas",
            "0",
            "perf",
            "-n",
            "10",
            "-d",
            "4000000",
            "-c",
            "10",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        // perf's own check, or the safety gate before it: either refuses
        // before any write, naming the room.
        (last.contains("more than the room left")
            || last.contains("more than the master has room for"))
            && last.contains("refused before any write"),
        "{}",
        run.stderr
    );
    eprintln!("observed: {last}");
    guard.assert();
}

#[test]
fn the_readmes_recipes_run_on_the_readmes_lab() {
    // The lab's master has maxmemory 256mb (redis-conf/master.conf), as `lab up` starts it.
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let mut args = topo_args(&lab);
    args.extend(
        [
            "perf",
            "--duration",
            "2s",
            "--format",
            "json",
            "--output",
            base.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let run = redlab(&args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let mut args = topo_args(&lab);
    args.extend(
        [
            "perf",
            "--rate",
            "50000",
            "--duration",
            "10s",
            "-P",
            "1",
            "--rounds",
            "1",
        ]
        .map(String::from),
    );
    let run = redlab(&args);
    // Run, not refused (a loaded debug build may miss the rate: perf.rate says so).
    assert_ne!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("perf.requests"), "{}", run.stdout);
    wait_sync(&lab);
    guard.assert();
}
