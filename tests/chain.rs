//! Chained replicas are part of the topology: master M, replica A of M,
//! replica B of A (a cross-datacenter chain). Discovery finds B under A, an
//! explicit --replica B passes when A lists it, and a broken B fails naming it.

use crate::common::*;

fn dbsize(port: u16) -> u64 {
    redis::cmd("DBSIZE").query(&mut conn(port)).unwrap()
}

fn run(global: &[String], args: &[&str]) -> Run {
    let mut all = global.to_vec();
    all.extend(["--timeout", "2s", "--format", "json"].map(String::from));
    all.extend(args.iter().map(|a| a.to_string()));
    redlab(&all)
}

#[test]
fn a_chain_is_discovered_checked_link_by_link_and_passes() {
    let (m, _dm) = server("master", &[]);
    let (a, _da) = server(
        "replica-a",
        &["--replicaof", "127.0.0.1", &m.port.to_string()],
    );
    let (b, _db) = server(
        "replica-b",
        &["--replicaof", "127.0.0.1", &a.port.to_string()],
    );
    let (x, _dx) = server("other", &[]);
    wait_link_up(a.port);
    wait_link_up(b.port);
    let urls = [url(m.port), url(a.port), url(b.port)];
    let data = Untouched::seed(&urls[0], &urls);
    wait_until("B has the master's keys", || {
        dbsize(b.port) == dbsize(m.port)
    });

    // Discovered from the master alone: B shows under A, and it passes.
    let from_master = [
        "--master".to_string(),
        urls[0].clone(),
        "--expect-replicas".into(),
        "2".into(),
    ];
    let r = run(&from_master, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let reps = j["details"]["replicas"].as_array().unwrap();
    assert_eq!(reps[1]["address"], format!("127.0.0.1:{}", b.port));
    assert_eq!(reps[1]["chained_behind"], "replica1");
    assert_eq!(check(&j, "replica2.propagation")["verdict"], "pass");
    assert!(
        reason(&j, "master").contains("and 1 more chained behind them, 2 expected"),
        "{}",
        reason(&j, "master")
    );
    let table = redlab(&[
        "--master",
        &urls[0],
        "--expect-replicas",
        "2",
        "replicate-check",
        "--probes",
        "2",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("replica1 > replica2"),
        "{}",
        table.stdout
    );
    let gate = run(
        &from_master,
        &[
            "check",
            "--only",
            "reachability,replication,keycount,consistency",
        ],
    );
    assert_eq!(gate.code, 0, "{}\n{}", gate.stdout, gate.stderr);

    // Given explicitly: B with --replica passes, its parent listing it.
    let explicit: Vec<String> = [
        "--master",
        &urls[0],
        "--replica",
        &urls[1],
        "--replica",
        &urls[2],
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = run(&explicit, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(reason(&r.json(), "replica2.replication")
        .contains(&format!("follows 127.0.0.1:{} (replica1)", a.port)));

    // B given without its parent: nothing of ours lists it, so it fails.
    let alone: Vec<String> = ["--master", &urls[0], "--replica", &urls[2]]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = run(&alone, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        reason(&r.json(), "replica1.replication")
            .contains("is not among the master's own replicas"),
        "{}",
        reason(&r.json(), "replica1.replication")
    );

    // B follows another master: it fails, named.
    cmd(&urls[2], &["REPLICAOF", "127.0.0.1", &x.port.to_string()]);
    wait_link_up(b.port);
    let r = run(&explicit, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(check(&j, "replica1.replication")["verdict"], "pass");
    assert!(
        reason(&j, "replica2.replication")
            .contains("which is another master (different replication id)"),
        "{}",
        reason(&j, "replica2.replication")
    );

    // B promoted: it fails, named, in the discovered topology too (A no
    // longer lists it: the count asserted is short).
    cmd(&urls[2], &["REPLICAOF", "NO", "ONE"]);
    let r = run(&explicit, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        reason(&r.json(), "replica2.replication").starts_with("role is master"),
        "{}",
        reason(&r.json(), "replica2.replication")
    );
    let r = run(&from_master, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        reason(&r.json(), "master").contains("1 missing"),
        "{}",
        reason(&r.json(), "master")
    );
    data.assert();
}
