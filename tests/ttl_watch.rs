use crate::common::*;

fn watch_2s(lab: &Lab) -> serde_json::Value {
    let mut args = topo_args(lab);
    args.extend(["--format", "json", "ttl-watch", "--ttl", "2s"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.elapsed < std::time::Duration::from_secs(40),
        "a 2 s key took {:?} to watch",
        run.elapsed
    );
    run.json()
}

/// Expiry seen on every node, a gap for each replica measured as `how`.
fn assert_expired_everywhere(r: &serde_json::Value, how: &str) {
    assert_eq!(r["verdict"], "pass", "{}", r["checks"]);
    assert_eq!(r["details"]["ended"], "expired");
    assert_eq!(r["details"]["written_by_redlab"], true);
    let ttl = r["details"]["initial_ttl_ms"].as_i64().unwrap();
    assert!((1000..=2000).contains(&ttl), "initial TTL {ttl}");
    for n in r["details"]["nodes"].as_array().unwrap() {
        let late = n["stopped_after_expiry_ms"].as_f64().unwrap();
        assert!((-50.0..6000.0).contains(&late), "{n}");
        assert!(n["left_keyspace_ms"].as_f64().is_some(), "{n}");
        if n["role"] == "replica" {
            assert_eq!(n["measured_by"], how, "{n}");
            let gap = n["propagation_gap_ms"].as_f64().unwrap();
            assert!((-5.0..6000.0).contains(&gap), "{n}");
            assert!(n["max_ttl_drift_ms"].as_i64().is_some(), "{n}");
            assert_eq!(
                check(r, &format!("{}.propagation", n["name"].as_str().unwrap()))["verdict"],
                "pass"
            );
        }
    }
}

#[test]
fn two_second_key_with_notifications_gives_an_exact_gap_per_replica() {
    // A replica applies the master's DEL: it publishes `del` (class g), never `expired`.
    let events = vec!["--notify-keyspace-events".to_string(), "Egx".to_string()];
    let lab = lab_with(LabOptions {
        replicas: 2,
        master_args: events.clone(),
        replica_args: events,
        ..LabOptions::default()
    });
    let r = watch_2s(&lab);
    assert_expired_everywhere(&r, "notification");
    assert_eq!(detail_node(&r, "master")["measured_by"], "notification");
    assert_eq!(detail_node(&r, "replica1")["gap_resolution_ms"], 0.0);
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn two_second_key_without_notifications_falls_back_to_keyspace_counts() {
    let lab = lab(2);
    let r = watch_2s(&lab);
    assert_expired_everywhere(&r, "keyspace-count");
    assert_eq!(detail_node(&r, "master")["measured_by"], "pttl");
    let note = detail_node(&r, "replica1")["note"].as_str().unwrap();
    assert!(note.contains("notifications are off"), "{note}");
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn watching_a_user_key_only_reads_it() {
    let lab = lab(2);
    let mut c = conn(lab.master.port);
    seed_user_data(&mut c);
    let before = snapshot(&mut c);
    redis::cmd("SET")
        .arg("session:42")
        .arg("alice")
        .arg("PX")
        .arg(2500)
        .exec(&mut c)
        .unwrap();
    wait_sync(&lab);
    let run = redlab_at(
        &lab,
        &["--format", "json", "ttl-watch", "--key", "session:42"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["details"]["written_by_redlab"], false);
    assert_eq!(r["details"]["key"], "session:42");
    assert!(detail_node(&r, "replica2")["stopped_serving_ms"].is_f64());
    // The watched key expired on its own; everything else is as it was.
    assert_eq!(snapshot(&mut c), before);
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    for write in [
        "cmdstat_del:",
        "cmdstat_unlink:",
        "cmdstat_pexpire:",
        "cmdstat_persist:",
    ] {
        assert!(!info.contains(write), "redlab ran a write: {info}");
    }
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn a_key_without_ttl_is_refused_and_left_alone() {
    let lab = lab(1);
    let mut c = conn(lab.master.port);
    redis::cmd("SET")
        .arg("forever")
        .arg("v")
        .exec(&mut c)
        .unwrap();
    let run = redlab_at(&lab, &["ttl-watch", "--key", "forever"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("no TTL"), "{}", run.stderr);
    let v: String = redis::cmd("GET").arg("forever").query(&mut c).unwrap();
    assert_eq!(v, "v");
}
