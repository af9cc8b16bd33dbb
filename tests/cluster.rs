//! Redis Cluster on real `redis-server` processes: a healthy 3x1 cluster
//! passes every subcommand and is left as found; each kind of broken
//! cluster is named in the `cluster` step or per shard.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redlab::lab::cluster::LabShard;
use redlab::lab::{ClusterLab, ClusterLabOptions};

/// A cluster of `shards` masters with `replicas` each, DEBUG allowed from loopback.
fn cluster(shards: usize, replicas: usize) -> ClusterLab {
    rt().block_on(ClusterLab::start(ClusterLabOptions {
        shards,
        replicas,
        args: vec!["--enable-debug-command".into(), "local".into()],
        ..ClusterLabOptions::default()
    }))
    .unwrap_or_else(|e| panic!("starting a test cluster: {e:#}"))
}

fn ports_of(lab: &ClusterLab) -> Vec<u16> {
    lab.servers().map(|s| s.port).collect()
}

fn seed(lab: &ClusterLab) -> String {
    url(lab.shards[0].master.port)
}

/// `redlab --cluster --master <seed> --format json <args>`.
fn run(lab: &ClusterLab, args: &[&str]) -> Run {
    let mut all = vec!["--cluster".to_string(), "--master".into(), seed(lab)];
    all.extend(["--format", "json", "--timeout", "2s"].map(String::from));
    all.extend(args.iter().map(|a| a.to_string()));
    redlab(&all)
}

fn cmd(port: u16, args: &[&str]) -> redis::Value {
    let mut c = conn(port);
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
        .unwrap_or_else(|e| panic!("{args:?} on {port}: {e}"))
}

fn text(port: u16, args: &[&str]) -> String {
    redis::from_redis_value(cmd(port, args)).unwrap()
}

/// User data in every shard (keys across slots), written through each
/// key's own master (a test-side cluster client in miniature).
fn seed_users(lab: &ClusterLab) {
    let masters: Vec<(u16, Vec<(u16, u16)>)> = lab
        .shards
        .iter()
        .map(|s| (s.master.port, slots_of(s)))
        .collect();
    for i in 0..60 {
        let key = format!("user:{i}");
        let slot = redlab::topology::slot::key_slot(key.as_bytes());
        let (port, _) = masters
            .iter()
            .find(|(_, r)| r.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap();
        let mut c = conn(*port);
        redis::cmd("SET").arg(&key).arg(i).exec(&mut c).unwrap();
        if i % 10 == 0 {
            redis::cmd("EXPIRE")
                .arg(&key)
                .arg(3600)
                .exec(&mut c)
                .unwrap();
        }
    }
    for s in &lab.shards {
        // WAIT for the replicas: the digests before must be of synced data.
        let mut c = conn(s.master.port);
        let _: u64 = redis::cmd("WAIT")
            .arg(s.replicas.len())
            .arg(2000)
            .query(&mut c)
            .unwrap();
    }
}

fn slots_of(s: &LabShard) -> Vec<(u16, u16)> {
    let nodes = text(s.master.port, &["CLUSTER", "NODES"]);
    redlab::topology::cluster::parse_nodes(&nodes)
        .into_iter()
        .find(|m| m.is_myself())
        .unwrap()
        .slots
}

/// DEBUG DIGEST of every node.
fn digests(lab: &ClusterLab) -> BTreeMap<u16, String> {
    ports_of(lab)
        .into_iter()
        .map(|p| (p, text(p, &["DEBUG", "DIGEST"])))
        .collect()
}

/// No `redlab:` key on these nodes (a cluster has db 0 only).
fn no_redlab_keys(ports: &[u16]) {
    for p in ports {
        let left: Vec<String> = redis::cmd("KEYS")
            .arg("redlab:*")
            .query(&mut conn(*p))
            .unwrap();
        assert!(left.is_empty(), "redlab keys left on port {p}: {left:?}");
    }
}

fn verdict(r: &serde_json::Value, name: &str) -> String {
    check(r, name)["verdict"].as_str().unwrap().to_string()
}

fn reason(r: &serde_json::Value, name: &str) -> String {
    check(r, name)["reason"].as_str().unwrap().to_string()
}

#[test]
fn a_healthy_cluster_passes_every_subcommand_and_is_left_as_found() {
    let lab = cluster(3, 1);
    seed_users(&lab);
    let before = digests(&lab);
    let runs: &[&[&str]] = &[
        &["replicate-check", "--probes", "5"],
        &["keycount", "--settle", "2s"],
        &["compare", "--interval", "100ms"],
        &["stats"],
        &["ttl-watch", "--ttl", "1s", "--grace", "2s"],
        &["ttl-watch", "--key", "user:10", "--window", "600ms"],
        &["clean"],
        &[
            "--expect-shards",
            "3",
            "--expect-replicas",
            "1",
            "check",
            "--probes",
            "5",
            "--expiry-ttl",
            "1s",
        ],
    ];
    for args in runs {
        let r = run(&lab, args);
        assert_eq!(r.code, 0, "{args:?}\n{}\n{}", r.stdout, r.stderr);
        let j = r.json();
        // Warnings only: the lab runs without persistence, which config-lint names.
        assert!(
            j["verdict"] == "pass" || j["verdict"] == "warn",
            "{args:?}: {}",
            j["checks"]
        );
        // Nodes are named per shard in every report.
        let names = strs(&j["nodes"], "name");
        assert!(
            names.iter().all(|n| n.starts_with("shard")),
            "{args:?}: {names:?}"
        );
    }
    let r = run(&lab, &["replicate-check", "--probes", "5"]).json();
    for c in [
        "cluster.state",
        "cluster.slots",
        "cluster.agreement",
        "cluster.open-slots",
        "cluster.failures",
        "cluster.shards",
        "shard1.replica1.follows",
        "shard3.replica1.propagation",
    ] {
        assert_eq!(verdict(&r, c), "pass", "{c}: {}", reason(&r, c));
    }
    // Each shard probed with keys of its own slots.
    let shards = r["details"]["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    for s in shards {
        let tag = s["tag"].as_str().unwrap();
        let slot = redlab::topology::slot::key_slot(tag.as_bytes());
        let slots = s["slots"].as_str().unwrap();
        let (a, b) = slots.split_once('-').unwrap();
        assert!(
            (a.parse::<u16>().unwrap()..=b.parse().unwrap()).contains(&slot),
            "{s}"
        );
    }
    // The demo picks the shard that serves the query's slot.
    let d = run(&lab, &["demo", "--fast", "--query", "top sellers"]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let slot = redlab::topology::slot::key_slot(b"top sellers");
    assert!(
        d.stderr.contains(&format!("slot {slot}, served by shard")),
        "{}",
        d.stderr
    );
    assert_eq!(
        digests(&lab),
        before,
        "user data changed (DEBUG DIGEST per node)"
    );
    no_redlab_keys(&ports_of(&lab));
}

#[test]
fn a_stopped_replica_is_named_with_its_shard() {
    let mut lab = cluster(3, 1);
    lab.shards[1].replicas[0].kill();
    let r = run(&lab, &["replicate-check", "--probes", "3"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(verdict(&j, "cluster.reachable"), "fail");
    assert!(
        reason(&j, "cluster.reachable").contains("shard2.replica1"),
        "{}",
        reason(&j, "cluster.reachable")
    );
    assert_eq!(verdict(&j, "shard2.replica1.reachable"), "fail");
    assert_eq!(
        verdict(&j, "shard2.master"),
        "fail",
        "{}",
        reason(&j, "shard2.master")
    );
    // The other shards are judged on their own.
    assert_eq!(verdict(&j, "shard1.replica1.propagation"), "pass");
    assert_eq!(verdict(&j, "shard3.replica1.propagation"), "pass");
    no_redlab_keys(&[lab.shards[0].master.port, lab.shards[2].master.port]);
}

#[test]
fn an_uncovered_slot_fails_the_cluster_step() {
    let lab = cluster(3, 0);
    let m = lab.shards[0].master.port;
    cmd(m, &["CLUSTER", "DELSLOTS", "42"]);
    let r = run(&lab, &["check", "--only", "cluster"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(verdict(&j, "cluster"), "fail");
    let why = reason(&j, "cluster");
    assert!(
        why.contains("cluster.slots: 1 slot served by no master (42)"),
        "{why}"
    );
    assert!(
        why.contains("shard1.master says cluster_state:fail"),
        "{why}"
    );
}

#[test]
fn a_migrating_slot_and_a_different_view_are_named() {
    let lab = cluster(3, 0);
    let (a, b) = (lab.shards[0].master.port, lab.shards[1].master.port);
    let id_b = text(b, &["CLUSTER", "MYID"]);
    cmd(a, &["CLUSTER", "SETSLOT", "7", "MIGRATING", &id_b]);
    let r = run(&lab, &["replicate-check", "--probes", "1"]).json();
    assert_eq!(verdict(&r, "cluster.open-slots"), "fail");
    assert!(
        reason(&r, "cluster.open-slots")
            .contains("shard1.master is migrating slot 7 to shard2.master"),
        "{}",
        reason(&r, "cluster.open-slots")
    );
    cmd(a, &["CLUSTER", "SETSLOT", "7", "STABLE"]);
    // shard1's master alone gives slot 9 to shard2: nobody else hears of it.
    cmd(a, &["CLUSTER", "SETSLOT", "9", "NODE", &id_b]);
    std::thread::sleep(Duration::from_millis(300));
    let r = run(&lab, &["replicate-check", "--probes", "1"]).json();
    assert_eq!(verdict(&r, "cluster.open-slots"), "pass");
    assert_eq!(verdict(&r, "cluster.agreement"), "fail");
    let why = reason(&r, "cluster.agreement");
    assert!(
        why.contains(
            "shard1.master sees slot 9 served by shard2.master, where the others see shard1.master"
        ),
        "{why}"
    );
    // By what the masters claim, slot 9 is nobody's.
    assert!(
        reason(&r, "cluster.slots").contains("(9)"),
        "{}",
        reason(&r, "cluster.slots")
    );
}

#[test]
fn spawn_cluster_and_lab_up_down() {
    let r = redlab(&[
        "--spawn",
        "--cluster",
        "--spawn-shards",
        "2",
        "--format",
        "json",
        "replicate-check",
        "--probes",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(verdict(&j, "cluster.shards"), "pass");
    assert!(reason(&j, "cluster.shards").contains("2 shards serving slots, 2 expected"));
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let base = free_port_run(4).to_string();
    let up = redlab(&[
        "lab",
        "--state-dir",
        dir,
        "up",
        "--cluster",
        "--shards",
        "2",
        "--base-port",
        &base,
    ]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stdout.contains("use it: redlab --cluster --master"),
        "{}",
        up.stdout
    );
    let status = redlab(&["lab", "--state-dir", dir, "status", "--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(verdict(&status.json(), "cluster"), "pass");
    let down = redlab(&["lab", "--state-dir", dir, "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
}
