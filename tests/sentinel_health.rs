//! Every Sentinel given is asserted, on real Sentinels: each answers or fails
//! its own check, they agree on the master, the quorum is reachable
//! (`SENTINEL CKQUORUM`), in replicate-check and in check's `sentinels` step.

use crate::common::*;

fn sentinel_url(lab: &Lab, i: usize) -> String {
    url(lab.sentinels[i].port)
}

fn with_sentinels(urls: &[String], args: &[&str]) -> Run {
    let mut all = Vec::new();
    for u in urls {
        all.extend(["--sentinel".to_string(), u.clone()]);
    }
    all.extend(["--timeout", "1s", "--format", "json"].map(String::from));
    all.extend(args.iter().map(|a| a.to_string()));
    redlab(&all)
}

fn sentinel_lab(sentinels: usize) -> Lab {
    lab_with(LabOptions {
        replicas: 1,
        sentinels,
        ..LabOptions::default()
    })
}

#[test]
fn healthy_sentinels_pass_and_a_quorum_that_cannot_be_reached_fails() {
    let lab = sentinel_lab(2);
    let data = Untouched::seed_lab(&lab);
    let urls = [sentinel_url(&lab, 0), sentinel_url(&lab, 1)];

    let run = with_sentinels(&urls, &["replicate-check", "--probes", "3"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    for name in [
        "sentinel1",
        "sentinel2",
        "sentinels.master",
        "sentinels.quorum",
    ] {
        assert_eq!(
            check(&r, name)["verdict"],
            "pass",
            "{name}: {}",
            r["checks"]
        );
    }
    let m = format!("127.0.0.1:{}", lab.master.port);
    assert!(
        reason(&r, "sentinels.master").starts_with(&format!(
            "sentinel1, sentinel2 name {m}, the master under test"
        )),
        "{}",
        reason(&r, "sentinels.master")
    );
    assert!(reason(&r, "sentinels.quorum").contains("OK 2 usable Sentinels"));
    assert_eq!(r["details"]["sentinels"].as_array().unwrap().len(), 2);

    // check runs the same as its `sentinels` step, right after reachability.
    let run = with_sentinels(
        &urls,
        &["check", "--only", "reachability,sentinels,replication"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(
        strs(&r["checks"], "name"),
        [
            "reachability",
            "sentinels",
            "replication",
            "keycount",
            "consistency",
            "expiry",
            "throughput",
            "config-lint"
        ]
    );
    assert_eq!(verdict(&r, "sentinels"), "pass");
    assert_eq!(
        reason(&r, "sentinels"),
        "2 of 2 Sentinels answer, agree on the master under test, and can reach the quorum"
    );

    // A quorum of 3 with 2 Sentinels can never be reached: both answer, both
    // agree, and the run fails on CKQUORUM's own reply.
    for u in &urls {
        cmd(u, &["SENTINEL", "SET", "redlab", "quorum", "3"]);
    }
    let run = with_sentinels(&urls, &["replicate-check", "--probes", "3"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(check(&r, "sentinel1")["verdict"], "pass");
    assert_eq!(check(&r, "sentinels.quorum")["verdict"], "fail");
    let why = reason(&r, "sentinels.quorum");
    assert!(
        why.starts_with("SENTINEL CKQUORUM redlab: sentinel1 answers NOQUORUM 2 usable Sentinels. Not enough available Sentinels to reach the specified quorum"),
        "{why}"
    );
    let run = with_sentinels(&urls, &["check", "--only", "sentinels"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert!(reason(&r, "sentinels").starts_with("sentinels.quorum: SENTINEL CKQUORUM redlab"));
    data.assert();
}

#[test]
fn a_stopped_sentinel_fails_its_own_check_within_the_timeout() {
    let lab = sentinel_lab(2);
    let data = Untouched::seed_lab(&lab);
    let urls = [sentinel_url(&lab, 0), sentinel_url(&lab, 1)];
    lab.sentinels[1].pause().unwrap();
    let run = with_sentinels(&urls, &["replicate-check", "--probes", "3"]);
    let gate = with_sentinels(&urls, &["check", "--only", "reachability,sentinels"]);
    // Any subcommand that went through the Sentinels asserts them too.
    let count = with_sentinels(&urls, &["keycount"]);
    lab.sentinels[1].resume().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let s2 = format!(
        "sentinel2 (127.0.0.1:{}): no answer to",
        lab.sentinels[1].port
    );
    assert_eq!(check(&r, "sentinel2")["verdict"], "fail");
    assert!(
        reason(&r, "sentinel2").starts_with(&s2),
        "{}",
        reason(&r, "sentinel2")
    );
    assert!(
        reason(&r, "sentinel2").contains("within 1s"),
        "{}",
        reason(&r, "sentinel2")
    );
    // The one that answers is still checked, and names the master.
    assert_eq!(check(&r, "sentinel1")["verdict"], "pass");
    assert!(reason(&r, "sentinels.master").contains("(the only 1 Sentinel that answered)"));
    // The data nodes were checked all the same.
    assert_eq!(check(&r, "replica1.propagation")["verdict"], "pass");

    assert_eq!(gate.code, 1, "{}\n{}", gate.stdout, gate.stderr);
    let g = gate.json();
    assert_eq!(verdict(&g, "reachability"), "pass");
    assert_eq!(verdict(&g, "sentinels"), "fail");
    assert!(
        reason(&g, "sentinels").starts_with(&s2),
        "{}",
        reason(&g, "sentinels")
    );

    assert_eq!(count.code, 1, "{}\n{}", count.stdout, count.stderr);
    let k = count.json();
    assert_eq!(check(&k, "sentinel2")["verdict"], "fail");
    assert!(
        reason(&k, "sentinel2").starts_with(&s2),
        "{}",
        reason(&k, "sentinel2")
    );
    data.assert();
}

#[test]
fn sentinels_that_name_different_masters_fail_naming_who_says_what() {
    let a = sentinel_lab(1);
    let b = sentinel_lab(1);
    let data_a = Untouched::seed_lab(&a);
    let data_b = Untouched::seed_lab(&b);
    // Both monitor a master named 'redlab': each its own lab's.
    let urls = [sentinel_url(&a, 0), sentinel_url(&b, 0)];
    let run = with_sentinels(&urls, &["replicate-check", "--probes", "3"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(check(&r, "sentinels.master")["verdict"], "fail");
    assert!(
        reason(&r, "sentinels.master").starts_with(&format!(
            "the Sentinels disagree on the master of 'redlab': sentinel1 says 127.0.0.1:{}, sentinel2 says 127.0.0.1:{}",
            a.master.port, b.master.port
        )),
        "{}",
        reason(&r, "sentinels.master")
    );
    // Each Sentinel answered: its own check passes; the run tested the first one's master.
    assert_eq!(check(&r, "sentinel2")["verdict"], "pass");
    assert_eq!(
        strs(&r["nodes"], "address")[0],
        format!("127.0.0.1:{}", a.master.port)
    );
    let gate = with_sentinels(&urls, &["check", "--only", "sentinels"]);
    assert_eq!(gate.code, 1, "{}\n{}", gate.stdout, gate.stderr);
    assert!(reason(&gate.json(), "sentinels").contains("sentinel2 says"));
    data_a.assert();
    data_b.assert();
}
