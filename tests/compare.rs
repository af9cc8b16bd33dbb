//! `redlab compare` on real servers: identical data by digest and key by key,
//! every kind of difference named, big values in bounded memory, writes and
//! expiries during the run, a syncing replica, DEBUG disabled, several dbs,
//! a read-only ACL user, TLS, Ctrl-C. Every test proves user data unchanged
//! and, with MONITOR on every node (INFO commandstats over TLS), that compare
//! sent no write.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;

/// What compare may send: reads, and the connection set-up.
const READS: &[&str] = &[
    // Every run reads the registry for dead runs' leftovers (one HGETALL,
    // an EXISTS per record): reads.
    "hgetall",
    "exists",
    "auth",
    "hello",
    "select",
    "ping",
    "info",
    "scan",
    "type",
    "pttl",
    "getrange",
    "strlen",
    "hscan",
    "hlen",
    "sscan",
    "scard",
    "zrange",
    "zcard",
    "lrange",
    "llen",
    "xrange",
    "xlen",
    "xinfo",
    "xpending",
    "dump",
    "exists",
    "randomkey",
    "dbsize",
];

/// MONITOR on every node, in threads, until `stop`.
struct Monitor {
    stop: Arc<AtomicBool>,
    streams: Vec<TcpStream>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

impl Monitor {
    fn start(ports: &[u16]) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let mut streams = Vec::new();
        let mut threads = Vec::new();
        for &p in ports {
            let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
            s.write_all(b"MONITOR\r\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut ok = String::new();
            r.read_line(&mut ok).unwrap();
            assert!(ok.starts_with("+OK"), "MONITOR on {p}: {ok}");
            streams.push(s);
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                let mut lines = Vec::new();
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => lines.push(format!("{p} {}", line.trim_end())),
                    }
                }
                lines
            }));
        }
        Monitor {
            stop,
            streams,
            threads,
        }
    }

    /// Stop and return every command seen as `port addr command line`.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.streams {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

/// `+1700000000.1 [0 127.0.0.1:5555] "TYPE" "k"` -> (client address, command, first argument).
fn parse_monitor(line: &str) -> Option<(String, String, String)> {
    let addr = line
        .split('[')
        .nth(1)?
        .split(']')
        .next()?
        .split(' ')
        .nth(1)?;
    let mut quoted = line.split(']').nth(1)?.split('"').skip(1).step_by(2);
    let cmd = quoted.next()?.to_ascii_lowercase();
    let arg = quoted.next().unwrap_or("").to_ascii_lowercase();
    Some((addr.to_string(), cmd, arg))
}

/// User data and the commands sent, checked at the end of a test: what
/// every node held before (DEBUG DIGEST where allowed, else every key's DUMP
/// and TTL presence) is what it holds after, and no client but the
/// `allowed` ones sent anything but a read.
struct Guard {
    ports: Vec<u16>,
    before: Vec<String>,
    monitor: Monitor,
}

fn state_of(port: u16) -> String {
    let mut c = conn(port);
    match redis::cmd("DEBUG").arg("DIGEST").query::<String>(&mut c) {
        Ok(d) => d,
        Err(_) => format!("{:?}", snapshot(&mut c)),
    }
}

impl Guard {
    fn new(lab: &Lab) -> Guard {
        let ports = ports(lab);
        Guard {
            before: ports.iter().map(|p| state_of(*p)).collect(),
            monitor: Monitor::start(&ports),
            ports,
        }
    }

    /// Stop watching: assert compare wrote nothing (writes from `writers`,
    /// the test's own clients, and the master's replication link aside).
    fn commands_were_reads(self, writers: &[String]) -> Vec<u16> {
        let master = format!("127.0.0.1:{}", self.ports[0]);
        let lines = self.monitor.stop();
        let mut seen = 0;
        for l in &lines {
            let Some((addr, cmd, arg)) = parse_monitor(l) else {
                continue;
            };
            if addr == master || writers.contains(&addr) {
                continue;
            }
            seen += 1;
            let read = READS.contains(&cmd.as_str()) || (cmd == "config" && arg == "get");
            assert!(read, "compare sent a non-read command: {l}");
        }
        assert!(seen > 0, "MONITOR saw nothing from redlab: {lines:?}");
        self.ports
    }

    /// Both: nothing but reads, and every node's data as it was.
    fn assert(self) {
        let before = self.before.clone();
        let ports = self.commands_were_reads(&[]);
        let after: Vec<String> = ports.iter().map(|p| state_of(*p)).collect();
        assert!(after == before, "user data changed during compare");
    }
}

/// A master and `n` replicas with DEBUG allowed from loopback; `writable`
/// replicas accept writes (to make them diverge).
fn debug_lab(n: usize, writable: bool) -> Lab {
    let debug = vec!["--enable-debug-command".to_string(), "local".into()];
    let mut replica = debug.clone();
    if writable {
        replica.extend(["--replica-read-only".into(), "no".into()]);
    }
    lab_with(LabOptions {
        replicas: n,
        master_args: debug,
        replica_args: replica,
        ..LabOptions::default()
    })
}

fn run_cmd(port: u16, db: u32, args: &[&str]) {
    let mut c = conn(port);
    redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.exec(&mut c)
        .unwrap_or_else(|e| panic!("{args:?} on {port}: {e}"));
}

/// seed_user_data plus every other type and some TTLs.
fn seed(lab: &Lab) {
    let mut c = conn(lab.master.port);
    seed_user_data(&mut c);
    let m = lab.master.port;
    run_cmd(m, 0, &["SADD", "set:0", "a", "b", "c"]);
    run_cmd(m, 0, &["ZADD", "zset:0", "1", "a", "2.5", "b", "-inf", "c"]);
    run_cmd(m, 0, &["XADD", "stream:0", "1-1", "f", "v", "g", "w"]);
    run_cmd(m, 0, &["XADD", "stream:0", "2-1", "f", "x"]);
    run_cmd(m, 0, &["SET", "bin:\u{1}\u{ff}", "\u{0}\u{1}"]);
    for i in 0..20 {
        run_cmd(m, 0, &["SET", &format!("exp:{i}"), "v", "EX", "3600"]);
    }
    wait_sync(lab);
}

fn compare(lab: &Lab, args: &[&str]) -> Run {
    let mut all = vec!["--format", "json", "compare"];
    all.extend_from_slice(args);
    redlab_at(lab, &all)
}

fn replica<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["details"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no replica {name} in {}", r["details"]))
}

fn count(r: &serde_json::Value, name: &str, kind: &str) -> u64 {
    replica(r, name)["counts"][kind].as_u64().unwrap()
}

/// The differing keys named for `name`, as `kind db key`.
fn named(r: &serde_json::Value, name: &str) -> Vec<String> {
    replica(r, name)["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["kind"].as_str().unwrap(),
                s["db"],
                s["key"].as_str().unwrap()
            )
        })
        .collect()
}

fn master_keys(port: u16) -> u64 {
    let mut c = conn(port);
    (0..16)
        .map(|db| {
            redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
            redis::cmd("DBSIZE").query::<u64>(&mut c).unwrap()
        })
        .sum()
}

#[test]
fn identical_data_passes_by_digest_and_key_by_key() {
    let lab = debug_lab(2, false);
    seed(&lab);
    let total = master_keys(lab.master.port);
    let guard = Guard::new(&lab);
    let run = compare(&lab, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    for name in ["replica1", "replica2"] {
        let x = replica(&r, name);
        assert_eq!(x["path"], "digest", "{x}");
        assert_eq!(x["counts"]["compared"], total);
        assert_eq!(x["counts"]["identical"], total);
        // The 20 keys with a TTL had their expiry times compared.
        assert_eq!(x["ttl_checked_keys"], 23, "{x}");
        assert_eq!(check(&r, &format!("{name}.consistency"))["verdict"], "pass");
    }
    let run = compare(&lab, &["--no-digest"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    for name in ["replica1", "replica2"] {
        let x = replica(&r, name);
        assert_eq!(x["path"], "keys", "{x}");
        assert_eq!(
            (count(&r, name, "compared"), count(&r, name, "identical")),
            (total, total)
        );
    }
    assert_eq!(r["details"]["dbs"], serde_json::json!([0, 2, 5]));
    assert_eq!(r["details"]["rounds_used"], 1);
    // Past the size bound the digest is not run (it would block each server).
    let run = compare(&lab, &["--digest-max-keys", "10"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let x = replica(&run.json(), "replica1").clone();
    assert_eq!(x["path"], "keys");
    let why = x["path_reason"].as_str().unwrap();
    assert!(why.contains("above --digest-max-keys 10"), "{why}");
    guard.assert();
}

#[test]
fn rewritten_values_on_a_writable_replica_are_named_not_shown() {
    let lab = debug_lab(2, true);
    seed(&lab);
    let r2 = lab.replicas[1].port;
    run_cmd(r2, 0, &["SET", "user:0:3", "s3cret-rewrite"]);
    run_cmd(r2, 0, &["HSET", "hash:0", "f", "other"]);
    run_cmd(r2, 0, &["ZADD", "zset:0", "3", "a"]);
    let guard = Guard::new(&lab);
    let run = compare(&lab, &["--interval", "100ms"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(check(&r, "replica1.consistency")["verdict"], "pass");
    assert_eq!(replica(&r, "replica2")["path"], "keys");
    assert_eq!(count(&r, "replica2", "value_differs"), 3);
    assert_eq!(
        named(&r, "replica2"),
        [
            "value_differs 0 hash:0",
            "value_differs 0 user:0:3",
            "value_differs 0 zset:0"
        ]
    );
    let reason = check(&r, "replica2.consistency")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("3 value differs"), "{reason}");
    assert!(
        !run.stdout.contains("s3cret"),
        "a value was printed: {}",
        run.stdout
    );
    // The table names them too, and --show-values shows the first bytes.
    let run = redlab_at(&lab, &["compare", "--interval", "100ms", "--show-values"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("user:0:3") && run.stdout.contains("\"s3cret-rewrite\""),
        "{}",
        run.stdout
    );
    guard.assert();
}

#[test]
fn five_missing_and_five_extra_keys_with_equal_counts_are_named() {
    let lab = debug_lab(1, true);
    seed(&lab);
    let r1 = lab.replicas[0].port;
    for i in 0..5 {
        run_cmd(r1, 2, &["DEL", &format!("user:2:{i}")]);
        run_cmd(r1, 2, &["SET", &format!("foreign:{i}"), "x"]);
    }
    let guard = Guard::new(&lab);
    // Counts alone see nothing wrong.
    assert_eq!(redlab_at(&lab, &["keycount"]).code, 0);
    let run = compare(&lab, &["--interval", "100ms"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(
        (
            count(&r, "replica1", "missing"),
            count(&r, "replica1", "extra")
        ),
        (5, 5)
    );
    let keys = named(&r, "replica1");
    for i in 0..5 {
        assert!(keys.contains(&format!("missing 2 user:2:{i}")), "{keys:?}");
        assert!(keys.contains(&format!("extra 2 foreign:{i}")), "{keys:?}");
    }
    assert_eq!(
        count(&r, "replica1", "identical"),
        count(&r, "replica1", "compared") - 10
    );
    guard.assert();
}

#[test]
fn a_changed_type_and_ttls_added_removed_or_moved_are_named() {
    let lab = debug_lab(2, true);
    seed(&lab);
    let (r1, r2) = (lab.replicas[0].port, lab.replicas[1].port);
    // replica1: an expiry time moved; whether a key has one is unchanged, so
    // its digest still equals the master's and the TTL sample must find it.
    run_cmd(r1, 0, &["EXPIRE", "exp:3", "100000"]);
    // replica2: a type changed, a TTL added, a TTL removed.
    run_cmd(r2, 0, &["DEL", "user:0:1"]);
    run_cmd(r2, 0, &["RPUSH", "user:0:1", "v1"]);
    run_cmd(r2, 0, &["EXPIRE", "user:0:2", "5000"]);
    run_cmd(r2, 0, &["PERSIST", "exp:4"]);
    let guard = Guard::new(&lab);
    let run = compare(&lab, &["--interval", "100ms"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(replica(&r, "replica1")["path"], "digest");
    assert_eq!(named(&r, "replica1"), ["ttl_differs 0 exp:3"]);
    assert_eq!(
        named(&r, "replica2"),
        [
            "type_differs 0 user:0:1",
            "ttl_differs 0 exp:4",
            "ttl_differs 0 user:0:2"
        ]
    );
    let detail = replica(&r, "replica2")["samples"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("master string") && detail.contains("replica list"),
        "{detail}"
    );
    guard.assert();
}

#[test]
fn a_big_hash_and_a_big_list_are_read_in_chunks_in_bounded_memory() {
    let lab = debug_lab(1, true);
    let m = lab.master.port;
    let mut c = conn(m);
    for chunk in 0..10 {
        let mut p = redis::pipe();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            p.cmd("HSET")
                .arg("big:hash")
                .arg(format!("field:{i}"))
                .arg(format!("value:{i}"))
                .ignore();
        }
        p.exec(&mut c).unwrap();
    }
    for chunk in 0..100 {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg("big:list");
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            cmd.arg(i);
        }
        cmd.exec(&mut c).unwrap();
    }
    wait_sync(&lab);
    let guard = Guard::new(&lab);
    let peak = |r: &serde_json::Value| r["details"]["redlab_peak_rss_bytes"].as_u64().unwrap();
    // A generous --timeout: a million-element read on a loaded machine is
    // slow, and what is tested here is memory, not speed.
    let run = compare(&lab, &["--no-digest", "--timeout", "60s"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(count(&r, "replica1", "identical"), 2);
    assert!(peak(&r) < 64 << 20, "peak RSS {} bytes", peak(&r));
    guard.commands_were_reads(&[]);
    // One member changed in each.
    let r1 = lab.replicas[0].port;
    run_cmd(r1, 0, &["HSET", "big:hash", "field:50000", "changed"]);
    run_cmd(r1, 0, &["LSET", "big:list", "500000", "changed"]);
    let guard = Guard::new(&lab);
    let run = compare(
        &lab,
        &["--interval", "100ms", "--rounds", "2", "--timeout", "60s"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(
        named(&r, "replica1"),
        ["value_differs 0 big:hash", "value_differs 0 big:list"]
    );
    let detail = replica(&r, "replica1")["samples"][1]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("list, 1000000 members"), "{detail}");
    assert!(peak(&r) < 64 << 20, "peak RSS {} bytes", peak(&r));
    guard.assert();
}

/// `n` strings `w:<i>` on the master.
fn fill(port: u16, prefix: &str, n: usize, ttl_ms: Option<(u64, u64)>) {
    let mut c = conn(port);
    let mut p = redis::pipe();
    for i in 0..n {
        let cmd = p
            .cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(format!("value-{i}"));
        if let Some((lo, hi)) = ttl_ms {
            cmd.arg("PX").arg(lo + (i as u64 * 7919) % (hi - lo));
        }
        cmd.ignore();
    }
    p.exec(&mut c).unwrap();
}

/// The address the master sees for this connection.
fn own_addr(c: &mut redis::Connection) -> String {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(c).unwrap();
    info.split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string()
}

fn differing(r: &serde_json::Value) -> u64 {
    [
        "missing",
        "extra",
        "type_differs",
        "value_differs",
        "ttl_differs",
    ]
    .iter()
    .map(|k| count(r, "replica1", k))
    .sum()
}

#[test]
fn keys_written_while_compare_runs_are_not_differences() {
    let lab = debug_lab(1, false);
    fill(lab.master.port, "w:", 20_000, None);
    wait_sync(&lab);
    let guard = Guard::new(&lab);
    let mut writer = conn(lab.master.port);
    let writer_addr = own_addr(&mut writer);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    // New keys, and each old key overwritten once, until compare ends.
    let writes = std::thread::spawn(move || {
        let mut i = 0;
        while !d.load(Ordering::Relaxed) && i < 20_000 {
            redis::cmd("SET")
                .arg(format!("new:{i}"))
                .arg(i)
                .exec(&mut writer)
                .unwrap();
            redis::cmd("SET")
                .arg(format!("w:{i}"))
                .arg("rewritten")
                .exec(&mut writer)
                .unwrap();
            i += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        i
    });
    // A cap that stretches the run over a couple of seconds of writes.
    let run = compare(
        &lab,
        &[
            "--no-digest",
            "--max-ops",
            "30000",
            "--interval",
            "300ms",
            "--rounds",
            "4",
        ],
    );
    done.store(true, Ordering::Relaxed);
    let written = writes.join().unwrap();
    assert!(written > 100, "the writer wrote only {written} keys");
    let r = run.json();
    assert_eq!(
        differing(&r),
        0,
        "{}",
        serde_json::to_string_pretty(&r["details"]).unwrap()
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    eprintln!(
        "observed: {written} keys written during the run; {} compared, {} still converging, rounds {}",
        count(&r, "replica1", "compared"),
        count(&r, "replica1", "converging"),
        r["details"]["rounds_used"]
    );
    guard.commands_were_reads(&[writer_addr]);
}

#[test]
fn keys_expiring_while_compare_runs_are_not_differences() {
    let lab = debug_lab(1, false);
    fill(lab.master.port, "e:", 5_000, Some((50, 2_500)));
    fill(lab.master.port, "p:", 5_000, None);
    wait_sync(&lab);
    let guard = Guard::new(&lab);
    let run = compare(
        &lab,
        &["--no-digest", "--max-ops", "10000", "--interval", "300ms"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(differing(&r), 0, "{}", r["details"]);
    assert!(count(&r, "replica1", "compared") >= 5_000);
    guard.commands_were_reads(&[]);
}

#[test]
fn a_replica_in_a_full_sync_is_syncing_and_not_compared() {
    let lab = lab(1);
    seed(&lab);
    let m = url(lab.master.port);
    fill(lab.master.port, "s:", 2_000, None);
    wait_sync(&lab);
    let guard = Guard::new(&lab);
    // The master's RDB child sleeps 2 ms per key: a full sync of about 4 s.
    support_cmd(&m, &["CONFIG", "SET", "rdb-key-save-delay", "2000"]);
    let (mut late, _d) = server(
        "late",
        &["--replicaof", "127.0.0.1", &lab.master.port.to_string()],
    );
    let late_url = url(late.port);
    let syncing = || {
        let i: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut conn_url(&late_url))
            .unwrap();
        i.contains("master_sync_in_progress:1")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !syncing() {
        assert!(
            Instant::now() < deadline,
            "the replica never started its full sync"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut args = topo_args(&lab);
    args.extend(["--replica".into(), late_url.clone()]);
    args.extend(["--format", "json", "compare", "--settle", "300ms"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(check(&r, "replica1.consistency")["verdict"], "pass");
    let late_r = replica(&r, "replica2");
    assert_eq!(late_r["settle"]["state"], "syncing", "{late_r}");
    assert!(
        late_r["path"].is_null() && late_r["counts"]["compared"] == 0,
        "{late_r}"
    );
    let reason = check(&r, "replica2.consistency")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("not compared (syncing): full sync in progress"),
        "{reason}"
    );
    // The replica goes first: the master then kills its RDB child.
    late.kill();
    support_cmd(&m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    guard.assert();
}

fn support_cmd(url: &str, args: &[&str]) {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.exec(&mut conn_url(url)).unwrap();
}

#[test]
fn with_debug_disabled_the_key_level_path_runs_and_says_why() {
    let lab = lab(1);
    seed(&lab);
    let total = master_keys(lab.master.port);
    let guard = Guard::new(&lab);
    let run = redlab_at(&lab, &["compare"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("enable-debug-command no"),
        "{}",
        run.stdout
    );
    let run = compare(&lab, &[]);
    let r = run.json();
    let x = replica(&r, "replica1");
    assert_eq!(x["path"], "keys");
    assert!(
        x["path_reason"]
            .as_str()
            .unwrap()
            .contains("DEBUG DIGEST is disabled"),
        "{x}"
    );
    assert_eq!(count(&r, "replica1", "identical"), total);
    guard.assert();
}

#[test]
fn four_dbs_over_resp3_with_a_difference_in_one() {
    let lab = debug_lab(1, true);
    let m = lab.master.port;
    for db in [0, 1, 5, 9] {
        for i in 0..50 {
            run_cmd(m, db, &["SET", &format!("k:{i}"), &format!("db{db}")]);
        }
        run_cmd(m, db, &["HSET", "h", "a", "1", "b", "2"]);
        run_cmd(m, db, &["ZADD", "z", "1.5", "x", "2", "y"]);
    }
    wait_sync(&lab);
    let r1 = lab.replicas[0].port;
    run_cmd(r1, 9, &["SET", "k:7", "rewritten"]);
    run_cmd(r1, 5, &["SET", "only-here", "x"]);
    let guard = Guard::new(&lab);
    let resp3 = |p: u16| format!("redis://127.0.0.1:{p}/?protocol=resp3");
    let run = redlab(&[
        "--master",
        &resp3(m),
        "--replica",
        &resp3(r1),
        "--format",
        "json",
        "compare",
        "--interval",
        "100ms",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["details"]["dbs"], serde_json::json!([0, 1, 5, 9]));
    assert_eq!(
        named(&r, "replica1"),
        ["extra 5 only-here", "value_differs 9 k:7"]
    );
    assert_eq!(count(&r, "replica1", "compared"), 4 * 52 + 1);
    guard.assert();
}

#[test]
fn a_read_only_acl_user_compares_by_digest_and_key_by_key() {
    let lab = debug_lab(1, false);
    seed(&lab);
    for p in ports(&lab) {
        run_cmd(
            p,
            0,
            &[
                "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+info", "+ping",
                "+select", "+debug",
            ],
        );
    }
    let guard = Guard::new(&lab);
    let auth = ["--user", "reader", "--password", "pw"];
    for (extra, path) in [(None, "digest"), (Some("--no-digest"), "keys")] {
        let mut args = auth.to_vec();
        args.extend(["--format", "json", "compare"]);
        args.extend(extra);
        let run = redlab_at(&lab, &args);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(replica(&run.json(), "replica1")["path"], path);
    }
    guard.assert();
}

#[test]
fn ctrl_c_ends_with_a_partial_report_marked_interrupted() {
    let lab = debug_lab(1, false);
    fill(lab.master.port, "i:", 30_000, None);
    wait_sync(&lab);
    let guard = Guard::new(&lab);
    let mut args = topo_args(&lab);
    args.extend(
        [
            "--format",
            "json",
            "compare",
            "--no-digest",
            "--max-ops",
            "5000",
        ]
        .map(String::from),
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once compare is well into replica1's keys (15000 commands
    // served there since it started), not after a guessed time.
    let served = || -> u64 {
        info(&url(lab.replicas[0].port), "stats")
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let before = served();
    wait_until("compare reads replica1", || served() > before + 15_000);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["details"]["interrupted"], true);
    assert_eq!(check(&r, "interrupted")["verdict"], "fail");
    let compared = count(&r, "replica1", "compared");
    assert!(compared > 0 && compared < 30_000, "compared {compared}");
    assert!(check(&r, "replica1.consistency")["reason"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    guard.assert();
}

#[test]
fn monitor_lines_name_the_client_and_the_command() {
    let l = "6379 +1795996236.463888 [0 127.0.0.1:46770] \"SET\" \"zz\" \"1\"";
    assert_eq!(
        parse_monitor(l),
        Some(("127.0.0.1:46770".into(), "set".into(), "zz".into()))
    );
    let l = "6380 +1795996236.4 [3 127.0.0.1:6379] \"CONFIG\" \"GET\" \"save\"";
    assert_eq!(parse_monitor(l).unwrap().2, "get");
    assert!(!READS.contains(&"set") && !READS.contains(&"del") && !READS.contains(&"eval"));
}

#[test]
fn over_tls_a_master_and_its_replica_compare_equal() {
    let dir = tempfile::tempdir().unwrap();
    let (_master, port) = tls_server(dir.path());
    let tls = |p: u16| format!("rediss://127.0.0.1:{p}/#insecure");
    let rport = redlab::lab::free_port().unwrap();
    let f = |n: &str| dir.path().join(n).display().to_string();
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &rport.to_string(),
        "--tls-cert-file",
        &f("redis.crt"),
        "--tls-key-file",
        &f("redis.key"),
        "--tls-ca-cert-file",
        &f("ca.crt"),
        "--tls-auth-clients",
        "no",
        "--tls-replication",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &port.to_string(),
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _replica = Server::spawn(
        dir.path(),
        "tls-replica",
        rport,
        redlab::lab::REPLICA_CONF,
        &args,
    )
    .unwrap();
    let mut m = conn_url(&tls(port));
    for i in 0..100 {
        redis::cmd("SET")
            .arg(format!("k:{i}"))
            .arg(i)
            .exec(&mut m)
            .unwrap();
    }
    redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .exec(&mut m)
        .unwrap();
    wait_until("the TLS replica has the keys", || {
        let n: Result<u64, _> = redis::cmd("DBSIZE").query(&mut conn_url(&tls(rport)));
        n.ok() == Some(101)
    });
    let before = snapshot(&mut m);
    let calls_before = [port, rport].map(|p| command_calls(&tls(p)));
    let run = redlab(&[
        "--master",
        &tls(port),
        "--replica",
        &tls(rport),
        "--format",
        "json",
        "compare",
    ]);
    // MONITOR needs plain TCP here: INFO commandstats proves no write instead.
    for (p, b) in [port, rport].iter().zip(calls_before) {
        let after = command_calls(&tls(*p));
        assert!(after.len() > 3, "no command stats on port {p}");
        for (cmd, n) in &after {
            let base = cmd.split('|').next().unwrap_or(cmd);
            // DEBUG is counted even when refused; compare only sends DEBUG DIGEST.
            let read = READS.contains(&base) || matches!(cmd.as_str(), "config|get" | "debug");
            // The replica acknowledges to the master once a second (REPLCONF
            // ACK): replication's traffic, counted however long compare takes.
            let replication = base == "replconf";
            assert!(
                read || replication || b.get(cmd) == Some(n),
                "compare ran {cmd} on port {p}"
            );
        }
    }
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(count(&r, "replica1", "identical"), 101);
    assert!(
        snapshot(&mut conn_url(&tls(port))) == before,
        "user data changed"
    );
}

/// Calls per command (`cmdstat_<name>:calls=N`) from INFO commandstats.
fn command_calls(url: &str) -> std::collections::BTreeMap<String, u64> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn_url(url))
        .unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').next()?.strip_prefix("calls=")?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// A stream whose consumer group differs on a replica (acknowledged entries,
/// last-delivered-id moved) holds the same entries, so DEBUG DIGEST and
/// XRANGE both see it equal: compare reads the groups on both paths and
/// names the key with what differs.
#[test]
fn a_consumer_group_that_differs_is_named_on_both_paths() {
    let lab = debug_lab(2, true);
    seed(&lab);
    let m = lab.master.port;
    for id in ["1-0", "2-0", "3-0"] {
        run_cmd(m, 0, &["XADD", "orders", id, "item", id]);
    }
    run_cmd(m, 0, &["XGROUP", "CREATE", "orders", "g1", "0"]);
    run_cmd(
        m,
        0,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    run_cmd(m, 0, &["XGROUP", "CREATECONSUMER", "orders", "g1", "bob"]);
    wait_sync(&lab);

    // Identical groups pass on both paths; the digest path says it read them.
    let guard = Guard::new(&lab);
    let run = compare(&lab, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let x = replica(&r, "replica2");
    assert_eq!(x["path"], "digest", "{x}");
    assert_eq!(x["streams_checked_keys"], 2, "{x}");
    let reason = check(&r, "replica2.consistency")["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("the consumer groups of 2 streams compared key by key"),
        "{reason}"
    );
    let run = compare(&lab, &["--no-digest"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    guard.assert();

    // replica2 (replica-read-only no) acknowledges an entry and moves the
    // group on, as a consumer writing to the wrong node would; the master
    // is untouched, and the digests still agree.
    let r2 = lab.replicas[1].port;
    run_cmd(r2, 0, &["XACK", "orders", "g1", "1-0"]);
    run_cmd(r2, 0, &["XGROUP", "SETID", "orders", "g1", "3-0"]);
    assert_eq!(
        state_of(r2),
        state_of(m),
        "the digest sees groups after all"
    );
    let guard = Guard::new(&lab);
    for path in ["digest", "keys"] {
        let mut args = vec!["--interval", "100ms"];
        if path == "keys" {
            args.push("--no-digest");
        }
        let run = compare(&lab, &args);
        assert_eq!(run.code, 1, "{path}: {}\n{}", run.stdout, run.stderr);
        let r = run.json();
        assert_eq!(check(&r, "replica1.consistency")["verdict"], "pass");
        assert_eq!(replica(&r, "replica2")["path"], path);
        assert_eq!(named(&r, "replica2"), ["value_differs 0 orders"], "{path}");
        let detail = replica(&r, "replica2")["samples"][0]["detail"]
            .as_str()
            .unwrap()
            .to_string();
        for what in [
            "group g1: last-delivered-id 2-0 on the master, 3-0 on the replica",
            "group g1: consumer alice has 2 pending on the master, 1 on the replica",
            "group g1: 2 pending on the master, 1 on the replica",
        ] {
            assert!(detail.contains(what), "{path}: {detail}");
        }
        let reason = check(&r, "replica2.consistency")["reason"]
            .as_str()
            .unwrap();
        assert!(reason.contains("1 value differs"), "{path}: {reason}");
        assert!(reason.contains("\"orders\""), "{path}: {reason}");
        // Before 7.4 Redis does not replicate entries-read (redis/redis#12898):
        // said, not compared.
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut conn(m))
            .unwrap();
        let old = ["redis_version:6.", "redis_version:7.0", "redis_version:7.2"]
            .iter()
            .any(|v| info.contains(v));
        let note = r["details"]["streams_note"].as_str().unwrap_or("");
        assert_eq!(
            note.contains("entries-read"),
            old,
            "{path}: {}",
            r["details"]
        );
    }
    guard.assert();
}
