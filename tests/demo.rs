use crate::common::*;

fn demo(lab: &Lab, extra: &[&str], input: Option<&str>) -> (Run, serde_json::Value) {
    let mut args = topo_args(lab);
    args.extend(["--format", "json", "demo", "--fast"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = redlab_stdin(&args, input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    (run, r)
}

#[test]
fn a_fast_demo_passes_end_to_end_and_leaves_nothing() {
    let lab = lab(3);
    let mut c = conn(lab.master.port);
    seed_user_data(&mut c);
    wait_sync(&lab);
    let before = snapshot(&mut c);
    let (run, r) = demo(&lab, &[], None);
    assert!(
        run.elapsed < std::time::Duration::from_secs(120),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(r["command"], "demo");
    assert_eq!(r["verdict"], "pass", "{}", r["checks"]);
    let d = &r["details"];
    let source = d["source_latency_ms"].as_f64().unwrap();
    assert_eq!(d["miss"]["outcome"], "miss");
    assert!(
        d["miss"]["elapsed_ms"].as_f64().unwrap() > source,
        "{}",
        d["miss"]
    );
    assert_eq!(d["miss"]["value"]["query"], "active users");
    assert_eq!(d["miss"]["value"]["source"], "database");
    assert!(d["miss"]["value"]["timestamp"].is_string());
    assert_eq!(d["hit"]["outcome"], "hit");
    assert!(
        d["hit"]["elapsed_ms"].as_f64().unwrap() < source,
        "{}",
        d["hit"]
    );
    assert!(d["speedup_pct"].as_f64().unwrap() > 95.0);
    let reads = d["replica_reads"].as_array().unwrap();
    assert_eq!(reads.len(), 3);
    assert!(reads.iter().all(|r| r["hit"] == true), "{reads:?}");
    assert!(d["cached"][0]["ttl_ms"].as_i64().unwrap() > 0);
    assert_eq!(d["replication_verdict"], "pass");
    assert_eq!(d["expiry"]["ended"], "expired");
    assert_eq!(d["after_expiry"]["outcome"], "miss");
    // Every step's heading was narrated on stderr; stdout is the JSON alone.
    for step in 1..=8 {
        assert!(
            run.stderr.contains(&format!("== {step}. ")),
            "step {step}: {}",
            run.stderr
        );
    }
    assert_eq!(snapshot(&mut c), before, "user data changed");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    assert!(!info.contains("cmdstat_flushdb") && !info.contains("cmdstat_flushall"));
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn interactive_queries_answer_miss_then_hit() {
    let lab = lab(1);
    let (run, r) = demo(
        &lab,
        &["--interactive"],
        Some("top products\ntop products\n\nnever read\n"),
    );
    let q = r["details"]["interactive"].as_array().unwrap();
    assert_eq!(q.len(), 2, "an empty line ends the prompt: {q:?}");
    assert_eq!(q[0]["query"], "top products");
    assert_eq!(
        (q[0]["outcome"].as_str(), q[0]["source"].as_str()),
        (Some("miss"), Some("database"))
    );
    assert_eq!(
        (q[1]["outcome"].as_str(), q[1]["source"].as_str()),
        (Some("hit"), Some("cache (master)"))
    );
    let miss = run.stderr.find("MISS").unwrap();
    assert!(run.stderr[miss..].contains("HIT"), "{}", run.stderr);
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn end_of_input_ends_the_prompt() {
    let lab = lab(1);
    let (_, r) = demo(&lab, &["--interactive"], Some("weekly sales"));
    let q = r["details"]["interactive"].as_array().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["outcome"], "miss");
    assert_no_redlab_keys(&ports(&lab));
}

/// A short TTL, which may run out before the expiry step (the entry is
/// then written again there): the expiry watch is always shown, and no time
/// left is ever negative. One too short to watch is refused.
#[test]
fn a_short_ttl_still_shows_the_expiry_watch_and_no_negative_time() {
    let lab = lab(1);
    let mut args = topo_args(&lab);
    args.extend(["demo", "--ttl", "1ms"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--ttl 1ms: too short") && run.stderr.trim().lines().count() == 1,
        "{}",
        run.stderr
    );
    let mut args = topo_args(&lab);
    args.extend(
        [
            "--format",
            "json",
            "demo",
            "--fast",
            "--ttl",
            "1s",
            "--source-latency",
            "10ms",
        ]
        .map(String::from),
    );
    let run = redlab(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let r = run.json();
    let d = &r["details"];
    assert_eq!(d["expiry"]["ended"], "expired", "{}", run.stderr);
    assert!(d["after_expiry"].is_object(), "{}", run.stderr);
    assert!(
        !run.stderr.contains("already expired") && !run.stderr.contains(" -0."),
        "{}",
        run.stderr
    );
    if d["cached"][0]["ttl_ms"].as_i64().unwrap() < 0 {
        assert!(run.stderr.contains("written again"), "{}", run.stderr);
    }
}
