//! Integration tests for the perf engine against a real redis-server that
//! each test starts on its own free port (127.0.0.1 only) and kills on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use redlab::loadgen::engine::{self, expected_value, value_len, EngineConfig, Stop, Workload};
use redlab::loadgen::keys::{op_for, Op};
use redlab::loadgen::resp::{encode_command, scan_reply, Reply};

/// The lab's own server type (kill on drop), without persistence.
struct Server {
    inner: redlab::lab::Server,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = ["--save", "", "--appendonly", "no"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        let inner =
            redlab::lab::Server::start(dir.path(), "engine", redlab::lab::MASTER_CONF, &args)
                .unwrap_or_else(|e| panic!("starting redis-server: {e:#}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], inner.port));
        Server {
            inner,
            addr,
            _dir: dir,
        }
    }

    fn client(&self) -> std::io::Result<TcpStream> {
        let c = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(c)
    }
}

#[derive(Debug, PartialEq)]
enum Owned {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array,
}

/// Tiny blocking RESP client built on the crate's own scanner.
fn query(c: &mut TcpStream, args: &[&str]) -> Owned {
    let mut w = Vec::new();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode_command(&mut w, &args);
    c.write_all(&w).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some((r, _)) = scan_reply(&buf).unwrap() {
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            return match r {
                Reply::Simple(b) => Owned::Simple(s(b)),
                Reply::Error(b) => Owned::Error(s(b)),
                Reply::Integer(n) => Owned::Int(n),
                Reply::Bulk(b) => Owned::Bulk(b.to_vec()),
                Reply::Nil => Owned::Nil,
                Reply::Array(_) => Owned::Array,
            };
        }
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn config(s: &Server, prefix: &str) -> EngineConfig {
    let mut cfg = EngineConfig::new(s.addr);
    cfg.key_prefix = prefix.to_string();
    cfg.timeout = Duration::from_secs(5);
    cfg
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

#[test]
fn set_writes_exact_keys_and_values_then_get_reads_them() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t1:perf:");
    cfg.stop = Stop::Requests(10_000);
    cfg.pipeline = 100;
    cfg.connections = 4;
    cfg.data_size = (16, 16);
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    cfg.progress = Some(progress.clone());
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.completed, 10_000);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.latency_ns.len(), 10_000);
    assert_eq!(sum(&r.per_second), 10_000);
    assert_eq!(progress.load(std::sync::atomic::Ordering::Relaxed), 10_000);
    assert!(r.elapsed_ns > 0 && !r.open_loop);

    let mut c = s.client().unwrap();
    assert_eq!(query(&mut c, &["DBSIZE"]), Owned::Int(10_000));
    for i in [0u64, 1, 9, 10, 99, 100, 1234, 5000, 9999] {
        let key = format!("redlab:t1:perf:{i}");
        assert_eq!(
            query(&mut c, &["GET", &key]),
            Owned::Bulk(expected_value(i, 16)),
            "{key}"
        );
    }
    assert_eq!(
        query(&mut c, &["EXISTS", "redlab:t1:perf:10000"]),
        Owned::Int(0)
    );

    // GET over the same keys, plus 100 that were never written.
    cfg.workload = Workload::Get;
    cfg.stop = Stop::Requests(10_100);
    cfg.progress = None;
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.completed, 10_100);
    assert_eq!(r.misses, 100);
    assert!(r.errors.is_empty());
}

#[test]
fn value_size_range_mixed_ratio_and_db() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t2:perf:");
    cfg.stop = Stop::Requests(1000);
    cfg.pipeline = 7;
    cfg.connections = 3;
    cfg.data_size = (5, 300);
    cfg.seed = 42;
    cfg.db = 3;
    cfg.workload = Workload::Mixed { sets: 1, gets: 1 };
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.completed, 1000);
    // Requests alternate SET/GET; every GET's key index was never SET.
    assert_eq!(r.misses, 500);
    let mut c = s.client().unwrap();
    assert_eq!(query(&mut c, &["DBSIZE"]), Owned::Int(0), "db 0 untouched");
    assert_eq!(query(&mut c, &["SELECT", "3"]), Owned::Simple("OK".into()));
    assert_eq!(query(&mut c, &["DBSIZE"]), Owned::Int(500));
    let sets = (0..1000u64).filter(|&i| op_for(&cfg.workload, i) == Op::Set);
    for i in sets.step_by(7) {
        let len = value_len(42, i, (5, 300));
        let got = query(&mut c, &["GET", &format!("redlab:t2:perf:{i}")]);
        assert_eq!(got, Owned::Bulk(expected_value(i, len)));
    }
}

#[test]
fn keyspace_limits_distinct_keys() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t3:perf:");
    cfg.stop = Stop::Requests(5000);
    cfg.pipeline = 50;
    cfg.connections = 2;
    cfg.keyspace = Some(100);
    engine::run(&cfg).unwrap();
    let mut c = s.client().unwrap();
    assert_eq!(query(&mut c, &["DBSIZE"]), Owned::Int(100));
}

#[test]
fn oom_replies_are_failed_requests_not_fatal() {
    let s = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let mut cfg = config(&s, "redlab:t4:perf:");
    cfg.stop = Stop::Requests(2000);
    cfg.pipeline = 10;
    cfg.connections = 2;
    cfg.data_size = (10_000, 10_000);
    let r = engine::run(&cfg).unwrap();
    let oom = r.errors.get("OOM").copied().unwrap_or(0);
    assert!(oom > 1000, "expected OOM errors, got {:?}", r.errors);
    // Every request answered: done, or failed (never both).
    assert_eq!(r.completed + oom, 2000);
    assert_eq!(r.latency_ns.len(), r.completed);
}

/// One connection, closed loop: batches run back to back, so the slowest
/// reply (the last of the slowest batch) took at least about the average
/// batch time (half of it leaves room for the encoding between batches and
/// the histogram's rounding), and no reply took longer than the whole run.
#[test]
fn latencies_agree_with_the_run_clock() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t7:perf:");
    cfg.stop = Stop::Requests(20_000);
    cfg.pipeline = 200;
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.completed, 20_000);
    let batches = 20_000 / 200;
    let max = r.latency_ns.max();
    assert!(
        max >= r.elapsed_ns / batches / 2,
        "max latency {max} ns, but {batches} batches took {} ns",
        r.elapsed_ns
    );
    assert!(
        max <= r.elapsed_ns,
        "max latency {max} ns > run {} ns",
        r.elapsed_ns
    );
}

#[test]
fn auth_and_noauth() {
    let s = Server::start(&["--requirepass", "s3cret"]);
    let mut cfg = config(&s, "redlab:t5:perf:");
    cfg.stop = Stop::Requests(300);
    cfg.pipeline = 10;
    cfg.connections = 2;
    // Without AUTH every reply is a NOAUTH error: data, not a failure.
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.errors.get("NOAUTH"), Some(&300));
    cfg.auth = Some((None, "wrong".into()));
    let e = engine::run(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(&s.addr.to_string()) && e.contains("AUTH failed"),
        "{e}"
    );
    cfg.auth = Some((Some("default".into()), "s3cret".into()));
    let r = engine::run(&cfg).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn set_wait_records_wait_replies() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t6:perf:");
    cfg.stop = Stop::Requests(1000);
    cfg.pipeline = 100;
    cfg.connections = 2;
    cfg.workload = Workload::SetWait {
        replicas: 0,
        timeout_ms: 100,
    };
    let r = engine::run(&cfg).unwrap();
    assert_eq!(r.completed, 1000);
    assert_eq!(r.wait_latency_ns.as_ref().unwrap().len(), 10);
    let acked = r.wait_acked.as_ref().unwrap();
    assert_eq!((acked.len(), acked.max()), (10, 0), "no replicas attached");
}

#[test]
fn stopped_server_ends_run_with_error_naming_addr() {
    let s = Server::start(&[]);
    s.inner.pause().unwrap();
    let mut cfg = config(&s, "redlab:t7:perf:");
    cfg.timeout = Duration::from_secs(1);
    cfg.stop = Stop::Requests(1000);
    cfg.connections = 2;
    let t = Instant::now();
    let e = engine::run(&cfg).unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        e.contains(&s.addr.to_string()) && e.contains("no reply within"),
        "{e}"
    );
}

#[test]
fn refused_connection_names_addr() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = EngineConfig::new(SocketAddr::from(([127, 0, 0, 1], port)));
    cfg.timeout = Duration::from_secs(2);
    let e = engine::run(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{port}")) && e.contains("connect"),
        "{e}"
    );
}

#[test]
fn open_loop_keeps_the_requested_rate() {
    let s = Server::start(&[]);
    for (rate, pipeline, conns) in [(2000.0, 1, 2), (5000.0, 10, 4)] {
        let mut cfg = config(&s, "redlab:t8:perf:");
        cfg.stop = Stop::Duration(Duration::from_millis(1500));
        cfg.rate = Some(rate);
        cfg.pipeline = pipeline;
        cfg.connections = conns;
        cfg.keyspace = Some(1000);
        let r = engine::run(&cfg).unwrap();
        assert!(r.open_loop);
        let achieved = r.completed as f64 * 1e9 / r.elapsed_ns as f64;
        // A gross bound (half to twice the rate): the precision is a
        // benchmark figure (docs/benchmarks.md), not a test a loaded
        // machine can fail.
        let off = achieved / rate;
        assert!(
            off > 0.5 && off < 2.0,
            "rate {rate} P{pipeline} c{conns}: achieved {achieved:.0}"
        );
        assert_eq!(r.latency_ns.len(), r.completed);
    }
}

#[test]
fn key_ttl_makes_every_set_expire() {
    let s = Server::start(&[]);
    let mut cfg = config(&s, "redlab:t9:perf:");
    cfg.stop = Stop::Requests(500);
    cfg.pipeline = 50;
    cfg.connections = 2;
    cfg.data_size = (3, 40);
    cfg.key_ttl = Some(Duration::from_secs(60));
    let r = engine::run(&cfg).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut c = s.client().unwrap();
    for i in [0u64, 9, 10, 123, 499] {
        let key = format!("redlab:t9:perf:{i}");
        let Owned::Int(ms) = query(&mut c, &["PTTL", &key]) else {
            panic!("PTTL {key}");
        };
        assert!((1..=60_000).contains(&ms), "{key}: PTTL {ms}");
        let len = value_len(0, i, (3, 40));
        assert_eq!(
            query(&mut c, &["GET", &key]),
            Owned::Bulk(expected_value(i, len))
        );
    }
    // The open loop encodes the same template.
    cfg.rate = Some(5000.0);
    cfg.key_prefix = "redlab:t9b:perf:".into();
    cfg.stop = Stop::Requests(100);
    engine::run(&cfg).unwrap();
    let Owned::Int(ms) = query(&mut c, &["PTTL", "redlab:t9b:perf:99"]) else {
        panic!("PTTL");
    };
    assert!((1..=60_000).contains(&ms), "PTTL {ms}");
}
