//! A fair cluster client, on real servers: `--threads N` is N engine
//! threads in all (one thread loads every shard), and a slot migrating
//! while perf writes loses no request: ASK is resent with ASKING, MOVED is
//! followed within the round, and every SET is executed exactly once.

use std::time::Duration;

use crate::common::*;

/// SETs the load executed on these masters: a registry heartbeat is one
/// HSET and one SET, not the load's (summed over the masters: a slot that
/// moved between a heartbeat's two commands splits the pair).
fn load_sets(ports: &[u16]) -> u64 {
    let sum = |c: &str| ports.iter().map(|p| cmdstat_calls(*p, c)).sum::<u64>();
    // Polled mid-run, a heartbeat's HSET may be in before its SET.
    sum("set").saturating_sub(sum("hset"))
}

fn reset_stats(ports: &[u16]) {
    for p in ports {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .exec(&mut conn(*p))
            .unwrap();
    }
}

fn perf_args(seed: u16, extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = [
        "--cluster",
        "--master",
        &url(seed),
        "--format",
        "json",
        "--timeout",
        "10s",
        "perf",
    ]
    .map(String::from)
    .to_vec();
    all.extend(extra.iter().map(|a| a.to_string()));
    all
}

/// Completed requests over every round of the total.
fn completed(j: &serde_json::Value) -> u64 {
    j["details"]["total"]["round_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["completed"].as_u64().unwrap())
        .sum()
}

#[test]
fn one_thread_loads_every_shard() {
    let lab = cluster_lab(3);
    let masters: Vec<u16> = lab.shards.iter().map(|s| s.master.port).collect();
    reset_stats(&masters);
    let args = perf_args(
        masters[0],
        &[
            "--threads",
            "1",
            "-n",
            "3000",
            "-P",
            "16",
            "-c",
            "3",
            "--rounds",
            "2",
            "--warmup",
            "0",
        ],
    );
    let r = redlab(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let total = &j["details"]["total"];
    assert_eq!(total["engine_threads"], 1, "{total}");
    assert!(r.stderr.contains("1 engine thread in all"), "{}", r.stderr);
    let sets: Vec<u64> = masters.iter().map(|p| load_sets(&[*p])).collect();
    for (k, n) in sets.iter().enumerate() {
        assert!(
            *n > 0,
            "shard{} got no SET from the one thread: {sets:?}",
            k + 1
        );
    }
    assert_eq!(sets.iter().sum::<u64>(), 6000, "{sets:?}");
    assert_eq!(completed(&j), 6000);
    // Per shard instead: one thread per shard master.
    let args = perf_args(
        masters[0],
        &[
            "--threads-per-shard",
            "1",
            "-n",
            "300",
            "-c",
            "3",
            "--rounds",
            "1",
            "--warmup",
            "0",
        ],
    );
    let r = redlab(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["details"]["total"]["engine_threads"], 3);
}

/// Slot `slot` from `src` to `dst` (ports), as redis-cli --cluster reshard
/// does it: SETSLOT IMPORTING/MIGRATING first (done by the caller), then
/// MIGRATE the keys in batches, then SETSLOT NODE on every master.
fn finish_migration(slot: u16, src: u16, dst: u16, masters: &[u16]) {
    let dst_id = id(dst);
    let mut c = conn(src);
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(1000)
            .query(&mut c)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(dst)
            .arg("")
            .arg(0)
            .arg(10_000)
            .arg("REPLACE")
            .arg("KEYS")
            .arg(&keys)
            .exec(&mut c)
            .unwrap();
    }
    // The importing node first, then the source, then the others.
    let order = std::iter::once(dst)
        .chain(std::iter::once(src))
        .chain(masters.iter().copied().filter(|p| *p != src && *p != dst));
    for p in order {
        redis::cmd("CLUSTER")
            .arg(&["SETSLOT", &slot.to_string(), "NODE", &dst_id])
            .exec(&mut conn(p))
            .unwrap();
    }
}

fn id(port: u16) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut conn(port))
        .unwrap()
}

/// Wait until `cond`, failing with perf's output if perf ends first.
fn until(perf: &std::thread::JoinHandle<Run>, what: &str, cond: impl Fn() -> bool) {
    while !cond() {
        if perf.is_finished() {
            panic!("perf ended before {what}: make the run longer");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_slot_migrating_under_load_loses_no_request() {
    migrate_under(&[], 12);
}

/// The open loop follows redirects too, over connections of their own (its
/// connection has requests in flight behind the redirected one).
#[test]
fn a_slot_migrating_under_an_open_loop_loses_no_request() {
    migrate_under(&["--rate", "20000"], 12);
}

/// Perf (with `extra` options) writes `rounds` rounds while shard1's slot
/// moves to shard2: ASK is seen, no request fails, every SET runs once.
fn migrate_under(extra: &[&str], rounds: u64) {
    let lab = cluster_lab(3);
    let masters: Vec<u16> = lab.shards.iter().map(|s| s.master.port).collect();
    let (src, dst) = (masters[0], masters[1]);
    // shard1's keys carry the tag of its lowest slot: 0.
    let slot = 0u16.to_string();
    reset_stats(&masters);
    let rounds_s = rounds.to_string();
    let mut opts = vec![
        "-n", "30000", "-P", "16", "-c", "6", "--rounds", &rounds_s, "--warmup", "0",
    ];
    opts.extend(extra);
    let args = perf_args(src, &opts);
    let perf = std::thread::spawn(move || redlab(&args));
    // Past its set-up (registry, safety checks: their commands are not the
    // load's and are not redirected), perf's rounds write on shard1.
    until(&perf, "writing on shard1", || load_sets(&[src]) > 0);
    redis::cmd("CLUSTER")
        .arg(&["SETSLOT", &slot, "IMPORTING", &id(src)])
        .exec(&mut conn(dst))
        .unwrap();
    redis::cmd("CLUSTER")
        .arg(&["SETSLOT", &slot, "MIGRATING", &id(dst)])
        .exec(&mut conn(src))
        .unwrap();
    // Its SETs of keys not on shard1 now get ASK, and come to the
    // importing node after ASKING; then the keys move and the slot is
    // handed over (MOVED from then on) while perf still writes.
    until(&perf, "sending ASKING", || cmdstat_calls(dst, "asking") > 0);
    finish_migration(0, src, dst, &masters);
    assert!(
        !perf.is_finished(),
        "perf ended before the slot was handed over: make the run longer"
    );
    let r = perf.join().unwrap();
    // An open loop on a loaded machine may miss its rate (perf.rate fails,
    // exit 1): that verdict is about the machine, not about redirects.
    let rate_missed = !extra.is_empty() && r.code == 1;
    assert!(r.code == 0 || rate_missed, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let total = &j["details"]["total"];
    assert!(total["ask"].as_u64().unwrap() > 0, "{total}");
    // No failed request: no error reply kept, every request done.
    assert_eq!(total["errors"], serde_json::json!({}), "{total}");
    assert_eq!(check(&j, "perf.requests")["verdict"], "pass", "{j}");
    assert_eq!(completed(&j), 30000 * rounds);
    // Every SET executed exactly once: a redirected SET is rejected where it
    // was redirected (not a call there) and executed where it was resent.
    let sets = load_sets(&masters);
    assert_eq!(sets, completed(&j), "SET calls on the masters");
    assert_eq!(check(&j, "perf.redirects")["verdict"], "warn");
    eprintln!("moved {} ask {}", total["moved"], total["ask"]);
}
