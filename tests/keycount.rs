use crate::common::*;
use redlab::lab::LabOptions;

#[test]
fn parity_passes_with_user_data_in_several_dbs() {
    let lab = lab(2);
    seed_user_data(&mut conn(lab.master.port));
    wait_sync(&lab);
    let run = redlab_at(&lab, &["--format", "json", "keycount"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    for n in r["details"]["nodes"].as_array().unwrap() {
        assert_eq!(n["dbs"]["db2"]["keys"], 23, "{n}");
        assert_eq!(n["dbs"]["db5"]["expires"], 1, "{n}");
    }
    assert!(r["details"]["mismatches"].as_array().unwrap().is_empty());
}

#[test]
fn an_extra_key_on_a_writable_replica_fails_naming_node_db_and_counts() {
    let lab = lab_with(LabOptions {
        replicas: 2,
        replica_args: vec!["--replica-read-only".into(), "no".into()],
        ..LabOptions::default()
    });
    seed_user_data(&mut conn(lab.master.port));
    wait_sync(&lab);
    let mut rc = conn(lab.replicas[1].port);
    redis::cmd("SELECT").arg(2).exec(&mut rc).unwrap();
    redis::cmd("SET")
        .arg("only-on-replica")
        .arg("x")
        .exec(&mut rc)
        .unwrap();
    let run = redlab_at(&lab, &["--format", "json", "keycount", "--settle", "1s"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let c = check(&r, "replica2.parity");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains("db2: 24 keys") && reason.contains("master 23"),
        "{reason}"
    );
    assert_eq!(check(&r, "replica1.parity")["verdict"], "pass");
    let m = &r["details"]["mismatches"][0];
    assert_eq!(
        (m["node"].as_str(), m["db"].as_str()),
        (Some("replica2"), Some("db2"))
    );
    assert_eq!(
        (m["master_keys"].as_u64(), m["node_keys"].as_u64()),
        (Some(23), Some(24))
    );
}

#[test]
fn a_down_replica_is_not_parity() {
    let mut lab = lab(1);
    lab.replicas[0].kill();
    let run = redlab_at(&lab, &["--format", "json", "keycount", "--settle", "300ms"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["details"]["nodes"][1]["status"], "down");
    assert!(check(&r, "replica1.parity")["reason"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
}

/// With only --master, discovery finds the replicas from the master's INFO,
/// and the survey that follows reuses discovery's connection: the master sees
/// one connection from the whole run (keycount writes nothing, so no cleanup
/// connection either). The first reply on it is read with a bound (a service
/// that streams bytes cannot grow redlab), so there is no probe on a socket
/// of its own.
#[test]
fn discovery_finds_the_replicas_and_the_master_is_connected_to_once() {
    let lab = lab(2);
    let mut c = conn(lab.master.port);
    let connections = |c: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = connections(&mut c);
    let run = redlab(&[
        "--master",
        &url(lab.master.port),
        "--format",
        "json",
        "keycount",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let after = connections(&mut c);
    let r = run.json();
    assert_eq!(
        strs(&r["nodes"], "name"),
        ["master", "replica1", "replica2"]
    );
    assert_eq!(
        after - before,
        1,
        "connections to the master during the run (one: the first contact is the run's)"
    );
}
