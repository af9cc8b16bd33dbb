//! The in-process tier: `redlab::run` called with parsed arguments, in this
//! test process, against real servers; the JSON report read from the file
//! `--output` wrote. No process is spawned per run, so a JSON-only assertion
//! costs a run, not a process start. Tests here run in parallel in one
//! process: what `run` keeps process-wide (the key namespace, the report
//! write bound) is the same for every one of them (default --prefix and
//! --timeout).

use crate::common::*;
use clap::Parser;
use redlab::lab::LabOptions;
use redlab::report::Verdict;
use redlab::Outcome;

struct InProcess {
    outcome: anyhow::Result<Outcome>,
    report: Option<serde_json::Value>,
}

fn run_in_process(args: &[String]) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let mut argv = vec![
        "redlab".to_string(),
        "-q".into(),
        "--format".into(),
        "json".into(),
        "--output".into(),
        path.display().to_string(),
    ];
    argv.extend(args.iter().cloned());
    let cli = redlab::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let outcome = rt().block_on(redlab::run(cli));
    let report = std::fs::read_to_string(&path)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}")));
    InProcess { outcome, report }
}

fn at(lab: &redlab::lab::Lab, args: &[&str]) -> Vec<String> {
    let mut v = topo_args(lab);
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

#[test]
fn keycount_in_process_passes_with_every_node_counted() {
    let lab = lab(2);
    seed_user_data(&mut conn(lab.master.port));
    wait_sync(&lab);
    let r = run_in_process(&at(&lab, &["keycount"]));
    let outcome = r.outcome.unwrap();
    let report = r.report.expect("the report file");
    assert_eq!(outcome, Outcome::Done(Verdict::Pass), "{report:#}");
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(report["command"], "keycount");
    assert_eq!(report["verdict"], "pass");
    let nodes = report["details"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{report:#}");
    for n in nodes {
        assert_eq!(n["dbs"]["db2"]["keys"], 23, "{n}");
    }
    assert_no_redlab_keys(&ports(&lab));
}

#[test]
fn keycount_in_process_fails_on_a_replica_with_an_extra_key() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        replica_args: vec!["--replica-read-only".into(), "no".into()],
        ..LabOptions::default()
    });
    seed_user_data(&mut conn(lab.master.port));
    wait_sync(&lab);
    let mut rc = conn(lab.replicas[0].port);
    redis::cmd("SELECT").arg(2).exec(&mut rc).unwrap();
    redis::cmd("SET")
        .arg("only-here")
        .arg("x")
        .exec(&mut rc)
        .unwrap();
    let r = run_in_process(&at(&lab, &["keycount", "--settle", "1s"]));
    let outcome = r.outcome.unwrap();
    let report = r.report.expect("the report file");
    assert_eq!(outcome, Outcome::Done(Verdict::Fail), "{report:#}");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(
        check(&report, "replica1.parity")["verdict"],
        "fail",
        "{report:#}"
    );
}

#[test]
fn an_unreachable_master_is_an_error_in_process_naming_it() {
    let (listener, port) = silent_listener();
    drop(listener);
    let r = run_in_process(&[
        "--timeout".into(),
        "2s".into(),
        "--master".into(),
        url(port),
        "keycount".into(),
    ]);
    let e = format!("{:#}", r.outcome.expect_err("a closed port is an error"));
    assert!(e.contains("master") && e.contains(&port.to_string()), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    println!("{e}");
}
