//! A saved report says what the run said (issue 20, item 8): `redlab report
//! FILE.json` of a failing `check` exits 1 with FAIL, also when the file's
//! top-level verdict was changed to pass, shows every section the run showed
//! (Consistency and Differing keys included), and reads a file that starts
//! with a UTF-8 byte-order mark. User data unchanged (DEBUG DIGEST). A saved
//! check's step details read back typed, unchanged (issue 22).

use crate::common::*;

/// The titles of the tables in a terminal rendering (the line above each table).
fn titles(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].starts_with('┌'))
        .map(|w| w[0].to_string())
        .collect()
}

#[test]
fn a_saved_failing_check_renders_and_exits_as_the_run_did() {
    // The replica takes writes of its own: its data differs from the master's.
    let lab = writable_debug_lab(1);
    let m = url(lab.master.port);
    let r = url(lab.replicas[0].port);
    seed_user_data(&mut conn_url(&m));
    wait_sync(&lab);
    // The replica's copy of one key differs: consistency fails.
    cmd(&r, &["SET", "user:0:3", "changed on the replica"]);
    let before = (digest(&m), digest(&r));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("check.json");
    let live = dir.path().join("check.txt");
    let run = redlab(&with(
        &topo_args(&lab),
        &[
            "--output",
            json.to_str().unwrap(),
            "--report",
            live.to_str().unwrap(),
            "check",
            "--only",
            "reachability,consistency",
        ],
    ));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let live = std::fs::read_to_string(&live).unwrap();
    let live_titles = titles(&live);
    for t in ["Consistency", "Differing keys"] {
        assert!(live_titles.iter().any(|x| x == t), "{live_titles:?}");
    }

    let again = redlab(&["report", json.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.starts_with("redlab check: FAIL\n"),
        "{}",
        again.stdout
    );
    eprintln!("observed: {}", again.stdout.lines().next().unwrap());
    // Every table the run showed, in its order (a file shows them all).
    let copy = dir.path().join("again.txt");
    let run = redlab(&[
        "report",
        json.to_str().unwrap(),
        "--output",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        titles(&std::fs::read_to_string(&copy).unwrap()),
        live_titles
    );
    assert!(again.stdout.contains("user:0:3"), "{}", again.stdout);

    // The top-level verdict edited to pass: the checks still decide.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    v["verdict"] = "pass".into();
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let run = redlab(&["report", edited.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("redlab check: FAIL\n"),
        "{}",
        run.stdout
    );
    let note = run.stderr.trim();
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.ends_with("its checks make it FAIL, not the PASS it states at the top; shown as FAIL"),
        "{note}"
    );
    eprintln!("observed: {note}");

    // Saved with a byte-order mark (a Windows editor): read as the same report.
    let bom = dir.path().join("bom.json");
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(std::fs::read(&json).unwrap());
    std::fs::write(&bom, bytes).unwrap();
    for format in ["json", "markdown"] {
        let a = redlab(&["report", json.to_str().unwrap(), "--format", format]);
        let b = redlab(&["report", bom.to_str().unwrap(), "--format", format]);
        assert_eq!(b.code, 1, "{}", b.stderr);
        assert_eq!(a.stdout, b.stdout, "{format}");
    }

    wait_sync(&lab);
    assert_eq!((digest(&m), digest(&r)), before, "data changed");
    Untouched::assert_no_redlab_keys_on(&[m, r]);
}

#[test]
fn a_saved_passing_report_exits_0() {
    let lab = debug_lab(1);
    let m = url(lab.master.port);
    seed_user_data(&mut conn_url(&m));
    wait_sync(&lab);
    let before = digest(&m);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("kc.json");
    let run = redlab(&with(
        &topo_args(&lab),
        &["--output", json.to_str().unwrap(), "keycount"],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = redlab(&["report", json.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.starts_with("redlab keycount: PASS\n"),
        "{}",
        again.stdout
    );
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

/// A saved check's step details are read back as their probes' types (issue
/// 22): `redlab report --format json` of a whole gate's report writes every
/// step's details exactly as the run did, and the measuring steps have
/// details of their own (not null).
#[test]
fn a_saved_checks_step_details_read_back_unchanged() {
    let lab = lab(1);
    seed_user_data(&mut conn(lab.master.port));
    wait_sync(&lab);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("check.json");
    let run = redlab(&with(
        &topo_args(&lab),
        &["--output", json.to_str().unwrap(), "check", "--probes", "3"],
    ));
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let again = redlab(&["--format", "json", "report", json.to_str().unwrap()]);
    assert_eq!(again.code, run.code, "{}", again.stderr);
    let again = again.json();
    let steps = |r: &serde_json::Value| r["details"]["checks"].as_array().unwrap().clone();
    let (before, after) = (steps(&saved), steps(&again));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["name"], a["name"]);
        assert_eq!(b["details"], a["details"], "step {}", b["name"]);
        let measures = [
            "reachability",
            "replication",
            "keycount",
            "consistency",
            "expiry",
            "throughput",
            "config-lint",
        ];
        if measures.contains(&b["name"].as_str().unwrap()) {
            assert!(!b["details"].is_null(), "step {} has no details", b["name"]);
        }
    }
    // Read typed (not kept as unread JSON), the steps draw their tables again.
    let text = redlab(&["report", json.to_str().unwrap(), "-v"]);
    for title in [
        "Replicas",
        "Key counts",
        "Consistency",
        "Expiry",
        "Throughput",
    ] {
        assert!(text.stdout.contains(title), "{title}:\n{}", text.stdout);
    }
}
