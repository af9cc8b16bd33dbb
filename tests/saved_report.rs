//! A saved report says what the run said (issue 20, item 8): `redlab report
//! FILE.json` of a failing `check` exits 1 with FAIL, also when the file's
//! top-level verdict was changed to pass, shows every section the run showed
//! (Consistency and Differing keys included), and reads a file that starts
//! with a UTF-8 byte-order mark. User data unchanged (DEBUG DIGEST).

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
