//! `redlab check` on healthy labs: the gate's checks, selection, lint,
//! --fail-on/--strict, and a JUnit file that is JUnit.

use crate::common::*;

const GATE: [&str; 7] = [
    "reachability",
    "replication",
    "keycount",
    "consistency",
    "expiry",
    "throughput",
    "config-lint",
];

#[test]
fn spawn_passes_every_check_in_order_with_a_manifest() {
    let run = redlab(&[
        "--spawn",
        "--spawn-replicas",
        "2",
        "--format",
        "json",
        "check",
        "--probes",
        "5",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["command"], "check");
    assert_eq!(r["verdict"], "pass");
    let names = strs(&r["checks"], "name");
    assert_eq!(names, GATE);
    for c in r["checks"].as_array().unwrap() {
        // A fresh lab holds no user data: there is nothing to compare, and
        // a pass over nothing is not given.
        let want = if c["name"] == "consistency" {
            "skipped"
        } else {
            "pass"
        };
        assert_eq!(c["verdict"], want, "{c}");
        assert!(!c["reason"].as_str().unwrap().is_empty());
    }
    assert!(
        check(&r, "consistency")["reason"]
            .as_str()
            .unwrap()
            .contains("no key but redlab's own"),
        "{}",
        check(&r, "consistency")
    );
    let m = &r["manifest"];
    for key in [
        "redlab_version",
        "started_at",
        "duration_ms",
        "host",
        "run_id",
    ] {
        assert!(!m[key].is_null(), "manifest.{key} missing");
    }
    assert!(m["args"].as_array().unwrap().iter().any(|a| a == "check"));
    for n in r["nodes"].as_array().unwrap() {
        for key in [
            "redis_version",
            "role",
            "persistence",
            "maxmemory_bytes",
            "maxmemory_policy",
        ] {
            assert!(!n[key].is_null(), "node {} has no {key}", n["name"]);
        }
    }
    let replication = &r["details"]["checks"][1];
    assert_eq!(replication["details"]["replicas"][0]["probes_seen"], 5);
}

#[test]
fn user_data_is_untouched_and_skip_only_select_checks() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let run = gate(
        &topo_args(&lab),
        &["--skip", "replication,keycount", "--probes", "3"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    // Every step is in the report, the two left out as skipped (in gate
    // order), so JSON and JUnit say what was not checked.
    let verdicts: Vec<(&str, &str)> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(verdicts.len(), 7, "{verdicts:?}");
    assert_eq!(verdicts[1], ("replication", "skipped"));
    assert_eq!(verdicts[2], ("keycount", "skipped"));
    assert!(
        verdicts
            .iter()
            .filter(|(n, _)| !["replication", "keycount"].contains(n))
            .all(|(_, v)| *v != "skipped"),
        "{verdicts:?}"
    );
    assert_eq!(
        r["details"]["skipped"],
        serde_json::json!(["replication", "keycount"])
    );
    let run = gate(
        &topo_args(&lab),
        &["--only", "replication", "--probes", "3"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    for c in r["checks"].as_array().unwrap() {
        let want = if c["name"] == "replication" {
            "pass"
        } else {
            "skipped"
        };
        assert_eq!(c["verdict"], want, "{c}");
    }
    let mut args = topo_args(&lab);
    args.extend(
        [
            "--format",
            "junit",
            "check",
            "--only",
            "replication",
            "--probes",
            "3",
        ]
        .map(String::from),
    );
    let junit = redlab(&args);
    assert_eq!(junit.code, 0, "{}", junit.stderr);
    assert_eq!(
        junit.stdout.matches("<skipped").count(),
        6,
        "{}",
        junit.stdout
    );
    guard.assert();
    let run = gate(&topo_args(&lab), &["--only", "throughput-of-doom"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("no check named throughput-of-doom: the checks are reachability"),
        "{}",
        run.stderr
    );
}

/// A master that refuses every client's writes (min-replicas-to-write not
/// met) is a broken topology, not a full cache: the writing steps fail,
/// naming NOREPLICAS, and nothing is written. `--probes 0` is refused.
#[test]
fn a_master_refusing_writes_fails_and_no_probe_is_refused() {
    let lab = lab(1);
    let mut m = conn(lab.master.port);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg("2")
        .exec(&mut m)
        .unwrap();
    let run = gate(&topo_args(&lab), &["--probes", "3"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    for step in ["replication", "expiry", "throughput"] {
        let c = check(&r, step);
        assert_eq!(c["verdict"], "fail", "{c}");
        assert!(c["reason"].as_str().unwrap().contains("NOREPLICAS"), "{c}");
    }
    assert_no_redlab_keys(&ports(&lab));
    let run = gate(&topo_args(&lab), &["--probes", "0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--probes must be at least 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn lint_warns_then_strict_and_fail_on_warn_fail() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        master_args: vec!["--save".into(), "".into()],
        replica_args: vec!["--replica-read-only".into(), "no".into()],
        ..LabOptions::default()
    });
    let guard = Untouched::seed_lab(&lab);
    cmd(
        &url(lab.replicas[0].port),
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    );
    let args = topo_args(&lab);
    let only = ["--only", "config-lint", "--require-min-replicas"];
    let run = gate(&args, &only);
    assert_eq!(run.code, 0, "warnings alone pass: {}", run.stdout);
    let r = run.json();
    assert_eq!(verdict(&r, "config-lint"), "warn");
    let lint = reason(&r, "config-lint");
    for needle in [
        "replica1.read-only: replica-read-only is no",
        "replica1.maxmemory-policy: maxmemory-policy noeviction differs from the master's allkeys-lru",
        "master.persistence: persistence is off",
        "master.min-replicas-to-write: min-replicas-to-write is 0, below the 1 asked for",
    ] {
        assert!(lint.contains(needle), "{needle} not in {lint}");
    }
    let strict = gate(&args, &[&only[..], &["--strict"]].concat());
    assert_eq!(strict.code, 1);
    assert_eq!(verdict(&strict.json(), "config-lint"), "fail");
    let fatal = gate(&args, &[&only[..], &["--fail-on", "warn"]].concat());
    assert_eq!(fatal.code, 1);
    assert!(
        reason(&fatal.json(), "config-lint").starts_with("warning made fatal by --fail-on warn")
    );
    guard.assert();
}

#[test]
fn junit_is_junit_with_one_testcase_per_check() {
    let lab = lab(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports/check.xml");
    let mut args = topo_args(&lab);
    // A replica that is not there makes one failing testcase among passing ones.
    args.extend(["--replica".into(), url(redlab::lab::free_port().unwrap())]);
    args.extend([
        "--quiet".into(),
        "--output".into(),
        path.display().to_string(),
    ]);
    args.extend(
        [
            "check",
            "--probes",
            "2",
            "--settle",
            "300ms",
            "--require-min-replicas",
        ]
        .map(String::from),
    );
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let xml = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    for attr in [
        "name",
        "tests",
        "failures",
        "errors",
        "skipped",
        "time",
        "timestamp",
        "hostname",
    ] {
        assert!(suite.attribute(attr).is_some(), "testsuite has no {attr}");
    }
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, GATE);
    let failures: Vec<_> = cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
        .collect();
    assert!(
        failures.len() >= 2,
        "reachability and replication fail: {xml}"
    );
    for f in &failures {
        let msg = f.attribute("message").unwrap();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg}");
    }
    let reach = cases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(reach
        .attribute("message")
        .unwrap()
        .contains("replica2.reachable: connection refused"));
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<usize>().unwrap();
    for n in [root, suite] {
        assert_eq!(num(n, "tests"), cases.len());
        assert_eq!(num(n, "failures"), failures.len());
        assert!(n.attribute("time").unwrap().parse::<f64>().unwrap() > 0.0);
    }
    let props: Vec<&str> = suite
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert!(
        props.contains(&"redlab_version")
            && props.contains(&"args")
            && props.contains(&"node.master")
            && props.contains(&"node.replica2"),
        "{props:?}"
    );
    // The table still goes to stdout unless --quiet; here it was quiet.
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn markdown_and_table_show_every_check() {
    let lab = lab(1);
    let run = redlab_at(&lab, &["--format", "markdown", "check", "--probes", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("# redlab check: PASS"),
        "{}",
        run.stdout
    );
    for name in GATE {
        // The lab holds no user data: consistency had nothing to compare.
        let want = if name == "consistency" {
            "SKIPPED"
        } else {
            "PASS"
        };
        assert!(
            run.stdout.contains(&format!("| {name} | {want} |")),
            "{name}: {}",
            run.stdout
        );
    }
}

#[test]
fn expiry_and_throughput_report_their_measurements_and_the_floor_fails() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let run = gate(
        &topo_args(&lab),
        &[
            "--only",
            "expiry,throughput",
            "--expiry-ttl",
            "1s",
            "--min-ops",
            "1e15",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    // The other steps are in the report as skipped; these two ran.
    let ran: Vec<&serde_json::Value> = r["details"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "skipped")
        .collect();
    let names: Vec<&str> = ran.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["expiry", "throughput"]);
    let expiry = ran[0];
    assert_eq!(expiry["verdict"], "pass", "{expiry}");
    assert_eq!(expiry["details"]["nodes"].as_array().unwrap().len(), 2);
    let throughput = ran[1];
    assert_eq!(throughput["verdict"], "fail");
    assert!(
        throughput["reason"]
            .as_str()
            .unwrap()
            .contains("below the floor"),
        "{throughput}"
    );
    assert_eq!(throughput["details"]["requests_per_round"], 1000);
    assert_eq!(throughput["details"]["pipeline"], 1000);
    guard.assert();
}
