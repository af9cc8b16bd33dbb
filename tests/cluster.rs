//! Redis Cluster on real `redis-server` processes: a healthy 3x1 cluster
//! passes every subcommand and is left as found; each kind of broken
//! cluster is named in the `cluster` step or per shard.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
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
    redlab::parse_nodes(&nodes)
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
        up.stdout.contains(
            "use it (every shard is discovered from one node): `redlab --cluster --master"
        ),
        "{}",
        up.stdout
    );
    let status = redlab(&["lab", "--state-dir", dir, "status", "--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(verdict(&status.json(), "cluster"), "pass");
    let down = redlab(&["lab", "--state-dir", dir, "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
}

/// The total of a perf report on a cluster, and each shard's details.
fn perf_parts(j: &serde_json::Value) -> (&serde_json::Value, Vec<&serde_json::Value>) {
    let shards = j["details"]["shards"].as_array().unwrap();
    (
        &j["details"]["total"],
        shards.iter().map(|s| &s["details"]).collect(),
    )
}

#[test]
fn perf_on_a_cluster_totals_the_shards_and_threads_share_the_load() {
    let lab = cluster(3, 1);
    seed_users(&lab);
    let before = digests(&lab);
    let mut counts = Vec::new();
    for threads in ["1", "2"] {
        let r = run(
            &lab,
            &[
                "perf",
                "-n",
                "3000",
                "-P",
                "16",
                "-c",
                "6",
                "--rounds",
                "2",
                "--warmup",
                "30",
                "--threads",
                threads,
            ],
        );
        assert_eq!(r.code, 0, "--threads {threads}\n{}\n{}", r.stdout, r.stderr);
        let j = r.json();
        let (total, shards) = perf_parts(&j);
        assert_eq!(shards.len(), 3);
        // -n and -c are totals, shared out among the shards.
        assert_eq!(total["requests_per_round"], 3000, "{total}");
        let per_shard: Vec<u64> = shards
            .iter()
            .map(|d| d["requests_per_round"].as_u64().unwrap())
            .collect();
        assert_eq!(per_shard.iter().sum::<u64>(), 3000, "{per_shard:?}");
        let conns: u64 = shards
            .iter()
            .map(|d| d["connections"].as_u64().unwrap())
            .sum();
        assert_eq!(conns, 6);
        for d in &shards {
            assert_eq!(d["threads"], threads.parse::<u64>().unwrap());
            // The shard's merged histogram counts every request of its round.
            assert_eq!(d["latency"]["count"], d["requests_per_round"], "{d}");
        }
        // Each round of the total is every shard's round added up.
        let rounds = total["round_results"].as_array().unwrap();
        assert_eq!(rounds.len(), 2);
        for (i, round) in rounds.iter().enumerate() {
            let sum: u64 = shards
                .iter()
                .map(|d| d["round_results"][i]["completed"].as_u64().unwrap())
                .sum();
            assert_eq!(round["completed"], sum, "round {i}");
            assert_eq!(sum, 3000, "round {i}");
        }
        // The total's histogram is the shards' merged: its count is the requests.
        assert_eq!(total["latency"]["count"], 3000, "{total}");
        assert!(total["throughput_ops_per_sec"].as_f64().unwrap() > 0.0);
        // A stable cluster redirects nothing.
        assert_eq!((&total["moved"], &total["ask"]), (&0.into(), &0.into()));
        assert_eq!(verdict(&j, "perf.redirects"), "pass");
        assert_eq!(verdict(&j, "perf.requests"), "pass");
        // Every key written removed (a shard's 1000 and its 10 of warm-up,
        // whichever thread wrote them), per slot: no CROSSSLOT on cleanup.
        for d in &shards {
            assert_eq!(d["keys_removed"], 1010, "{d}");
        }
        no_redlab_keys(&ports_of(&lab));
        counts.push(per_shard);
    }
    assert_eq!(
        counts[0], counts[1],
        "--threads 2 sent other request counts"
    );
    assert_eq!(
        digests(&lab),
        before,
        "user data changed (DEBUG DIGEST per node)"
    );
}

#[test]
fn perf_reads_from_each_shards_replicas_with_readonly() {
    let lab = cluster(3, 1);
    let replicas: Vec<u16> = lab.shards.iter().map(|s| s.replicas[0].port).collect();
    let masters: Vec<u16> = lab.shards.iter().map(|s| s.master.port).collect();
    let before: Vec<u64> = replicas.iter().map(|p| calls(*p, "get")).collect();
    let masters_before: Vec<u64> = masters.iter().map(|p| calls(*p, "get")).collect();
    let r = run(
        &lab,
        &[
            "perf",
            "--workload",
            "get",
            "--read-from",
            "replicas",
            "-n",
            "3000",
            "-P",
            "16",
            "-c",
            "3",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let (total, shards) = perf_parts(&j);
    // READONLY was sent: the replicas answered, no MOVED.
    assert_eq!((&total["moved"], &total["ask"]), (&0.into(), &0.into()));
    assert_eq!(total["latency"]["count"], 3000, "{total}");
    for (k, d) in shards.iter().enumerate() {
        let reads = d["replica_reads"].as_array().unwrap();
        assert_eq!(reads.len(), 1, "{d}");
        assert_eq!(reads[0]["requests"], d["requests_per_round"], "{d}");
        assert_eq!(reads[0]["misses_all_rounds"], 0, "{d}");
        assert!(d["errors"].as_object().unwrap().is_empty(), "{d}");
        let got = calls(replicas[k], "get") - before[k];
        assert!(got >= 1000, "shard{} replica served {got} GETs", k + 1);
        let on_master = calls(masters[k], "get") - masters_before[k];
        assert!(
            on_master <= 5,
            "shard{} master served {on_master} GETs",
            k + 1
        );
    }
    assert_eq!(verdict(&j, "perf.redirects"), "pass");
    no_redlab_keys(&ports_of(&lab));
}

/// `cmdstat_<name>`'s calls on a node (0 before the first).
fn calls(port: u16, name: &str) -> u64 {
    let info = text(port, &["INFO", "commandstats"]);
    let line = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Poll `cond` (a few ms apart) until it holds; fail after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn perf_follows_a_failover_mid_run_through_its_moved_replies() {
    let lab = cluster(3, 1);
    let old = lab.shards[1].master.port;
    let new = lab.shards[1].replicas[0].port;
    let mut args = vec!["--cluster".to_string(), "--master".into(), seed(&lab)];
    args.extend(
        [
            "--format",
            "json",
            "--timeout",
            "5s",
            "perf",
            "--duration",
            "1s",
            "--rounds",
            "4",
            "-P",
            "16",
            "-c",
            "6",
            "--warmup",
            "0",
            "--keyspace",
            "20000",
        ]
        .map(String::from),
    );
    let perf = std::thread::spawn(move || redlab(&args));
    // The load is under way on shard2's master: then its replica takes over.
    wait_until("perf's SETs on shard2", Duration::from_secs(30), || {
        assert!(!perf.is_finished(), "perf ended before its load was seen");
        calls(old, "set") > 2000
    });
    cmd(new, &["CLUSTER", "FAILOVER"]);
    wait_until("the failover", Duration::from_secs(10), || {
        text(new, &["INFO", "replication"]).contains("role:master")
    });
    let r = perf.join().unwrap();
    assert!(r.code == 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let (total, shards) = perf_parts(&j);
    assert!(total["moved"].as_u64().unwrap() > 0, "{total}");
    assert_eq!(verdict(&j, "perf.redirects"), "warn");
    assert_eq!(verdict(&j, "shard2.perf.failover"), "warn");
    assert_eq!(
        shards[1]["master_moved"],
        format!("127.0.0.1:{old} -> 127.0.0.1:{new}"),
        "{}",
        shards[1]
    );
    // The rounds after the failover went to the new master: MOVED replies
    // are at most what was left of the round it happened in.
    let completed: u64 = shards[1]["round_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["completed"].as_u64().unwrap())
        .sum();
    let moved = shards[1]["moved"].as_u64().unwrap();
    assert!(moved > 0 && moved < completed / 2, "{moved} of {completed}");
    let last = &shards[1]["round_results"][3];
    assert!(last["completed"].as_u64().unwrap() > 0, "{last}");
    // Cleanup followed the slot to its new master.
    no_redlab_keys(&ports_of(&lab));
}
