//! Sentinel in the lab: `lab up --sentinels 3` returns once they agree, and
//! `--sentinel URL` finds the master and replicas through them.

use crate::common::*;

#[test]
fn lab_up_with_sentinels_and_a_topology_found_through_them() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let base = free_port_run(3);
    let b = base.to_string();
    let up = redlab(&[
        "lab",
        "--state-dir",
        dir,
        "up",
        "--replicas",
        "2",
        "--base-port",
        &b,
        "--sentinels",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let procs = up.json()["details"]["processes"]
        .as_array()
        .unwrap()
        .clone();
    let sentinels: Vec<&serde_json::Value> =
        procs.iter().filter(|p| p["role"] == "sentinel").collect();
    assert_eq!(sentinels.len(), 3, "{procs:?}");
    for s in &sentinels {
        let seen = s["link_status"].as_str().unwrap();
        assert!(
            seen.contains(&format!("master 127.0.0.1:{base}")) && seen.contains("2/2 replicas up"),
            "{seen}"
        );
    }
    // Each Sentinel has its own config file, which it rewrote.
    let conf = std::fs::read_to_string(state.path().join("data/sentinel2.conf")).unwrap();
    assert!(conf.contains("known-replica redlab 127.0.0.1"), "{conf}");

    let sentinel = format!("redis://127.0.0.1:{}", sentinels[1]["port"]);
    let run = redlab(&[
        "--sentinel",
        &sentinel,
        "--format",
        "json",
        "replicate-check",
        "--probes",
        "3",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(strs(&r["nodes"], "address")[0], format!("127.0.0.1:{base}"));
    assert_eq!(r["nodes"].as_array().unwrap().len(), 3);

    let wrong = redlab(&[
        "--sentinel",
        &sentinel,
        "--master-name",
        "mymaster",
        "keycount",
    ]);
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("knows no master named 'mymaster'"),
        "{}",
        wrong.stderr
    );

    let status = redlab(&["lab", "--state-dir", dir, "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let down = redlab(&["lab", "--state-dir", dir, "down", "--format", "json"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    for s in &sentinels {
        let port = s["port"].as_u64().unwrap() as u16;
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "Sentinel on {port} still up"
        );
    }
}

#[test]
fn lab_options_need_a_lab_to_start() {
    let run = redlab(&["--sentinels", "3", "keycount"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--spawn or `lab up`"), "{}", run.stderr);
}
