use crate::common::*;

#[test]
fn every_field_for_every_node() {
    let lab = lab(2);
    let mut c = conn(lab.master.port);
    seed_user_data(&mut c);
    let _: Option<String> = redis::cmd("GET").arg("user:0:1").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("nope").query(&mut c).unwrap();
    wait_sync(&lab);
    let run = redlab_at(&lab, &["--format", "json", "stats"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["command"], "stats");
    let m = detail_node(&r, "master");
    assert_eq!(m["status"], "up");
    assert_eq!(m["role"], "master");
    assert_eq!(m["keys"]["db0"]["keys"], 23);
    assert_eq!(m["keys"]["db2"]["expires"], 1);
    assert!(m["used_memory_human"]
        .as_str()
        .unwrap()
        .ends_with(['K', 'M']));
    for f in [
        "used_memory_bytes",
        "uptime_s",
        "connected_clients",
        "ops_per_sec",
        "expired_keys",
        "evicted_keys",
        "repl_offset_bytes",
    ] {
        assert!(m[f].is_u64(), "master.{f}: {m}");
    }
    let hr = m["hit_rate_pct"].as_f64().unwrap();
    assert!(hr > 0.0 && hr < 100.0, "{m}");
    let r1 = detail_node(&r, "replica1");
    assert_eq!(r1["status"], "up");
    assert_eq!(r1["keys"]["db5"]["keys"], 23);
    assert!(r1["lag_bytes"].is_u64() && r1["lag_s"].is_u64(), "{r1}");
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn a_killed_replica_shows_as_down_and_the_watch_goes_on() {
    let mut lab = lab(2);
    lab.replicas[1].kill();
    let run = redlab_at(&lab, &["stats", "--watch", "200ms", "--count", "3"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Not a terminal: one table per refresh, then the report.
    assert_eq!(
        run.stdout.matches("redlab stats: refresh").count(),
        3,
        "{}",
        run.stdout
    );
    let down_rows = run
        .stdout
        .lines()
        .filter(|l| l.contains("replica2") && l.contains("DOWN"))
        .count();
    assert!(down_rows >= 4, "{}", run.stdout);

    let run = redlab_at(
        &lab,
        &[
            "--format", "json", "stats", "--watch", "100ms", "--count", "2",
        ],
    );
    let r = run.json();
    assert_eq!(r["details"]["refreshes"], 2);
    assert_eq!(detail_node(&r, "replica2")["status"], "down");
    assert_eq!(detail_node(&r, "replica1")["status"], "up");
    assert_eq!(check(&r, "replica2.status")["verdict"], "fail");
}

#[test]
fn ctrl_c_ends_the_watch_cleanly() {
    let lab = lab(1);
    let mut args = topo_args(&lab);
    args.extend(["stats", "--watch", "100ms"].map(String::from));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the first frame rather than a fixed sleep.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = {
        let mut child = child;
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("refresh 2") {
            assert!(std::time::Instant::now() < deadline, "no frames");
            let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
            assert!(n > 0, "stdout closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
        seen.extend(rest);
        (
            child.wait().unwrap(),
            String::from_utf8_lossy(&seen).into_owned(),
        )
    };
    assert_eq!(out.0.code(), Some(0), "{}", out.1);
    assert!(out.1.contains("redlab stats: PASS"), "{}", out.1);
}
