//! Test fixtures: real redis-server topologies on free loopback ports (killed
//! on drop), the built binary, and snapshots of user data; `gate` runs
//! `redlab check` and holds the non-Redis things that sit on a port.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use redlab::lab::{Lab, LabOptions, Server};

mod digest;
mod gate;
mod matrix;
#[allow(unused_imports)]
pub use digest::*;
#[allow(unused_imports)]
pub use gate::*;
#[allow(unused_imports)]
pub use matrix::*;

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A master and `n` replicas; a missing redis-server fails the test with how to install it.
pub fn lab(n: usize) -> Lab {
    lab_with(LabOptions {
        replicas: n,
        ..LabOptions::default()
    })
}

pub fn lab_with(opts: LabOptions) -> Lab {
    rt().block_on(Lab::start(opts))
        .unwrap_or_else(|e| panic!("starting a test lab: {e:#}"))
}

/// A lone redis-server with extra arguments (e.g. `--replicaof`).
pub fn server(name: &str, extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let s = Server::start(dir.path(), name, redlab::lab::MASTER_CONF, &extra)
        .unwrap_or_else(|e| panic!("starting {name}: {e:#}"));
    (s, dir)
}

/// The first of `n` consecutive free loopback ports, below the kernel's
/// ephemeral range (32768-60999 on Linux), where outgoing connections of
/// other processes cannot take one of them between the check and the bind.
pub fn free_port_run(n: u16) -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for i in 0..1000u64 {
        let base = 20000 + ((seed.wrapping_mul(2654435761) + i * 7919) % 12000) as u16;
        if (base..base + n).all(free) {
            return base;
        }
    }
    panic!("no run of {n} free ports between 20000 and 32000");
}

pub fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// `--master URL --replica URL ...` for a lab.
pub fn topo_args(lab: &Lab) -> Vec<String> {
    let mut v = vec!["--master".to_string(), url(lab.master.port)];
    for r in &lab.replicas {
        v.push("--replica".into());
        v.push(url(r.port));
    }
    v
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Run the built binary; stdin is closed.
pub fn redlab<S: AsRef<str>>(args: &[S]) -> Run {
    redlab_stdin(args, None)
}

/// Run the built binary with `input` on its stdin (closed after it), or none.
pub fn redlab_stdin<S: AsRef<str>>(args: &[S], input: Option<&str>) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .env_remove("REDLAB_PASSWORD")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running redlab");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .expect("writing redlab's stdin");
    }
    let out: Output = child.wait_with_output().expect("running redlab");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Run the binary against `lab` (`--master`/`--replica` first, then `args`).
pub fn redlab_at(lab: &Lab, args: &[&str]) -> Run {
    let mut all = topo_args(lab);
    all.extend(args.iter().map(|a| a.to_string()));
    redlab(&all)
}

pub fn conn(port: u16) -> redis::Connection {
    conn_url(&url(port))
}

pub fn conn_url(u: &str) -> redis::Connection {
    redis::Client::open(u)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connecting to {u}: {e}"))
}

/// Some user data: strings, a hash, a list, TTLs, in db0, db2 and db5.
pub fn seed_user_data(c: &mut redis::Connection) {
    for db in [0, 2, 5] {
        redis::cmd("SELECT").arg(db).exec(c).unwrap();
        for i in 0..20 {
            redis::cmd("SET")
                .arg(format!("user:{db}:{i}"))
                .arg(format!("v{i}"))
                .exec(c)
                .unwrap();
        }
        redis::cmd("SET")
            .arg(format!("ttl:{db}"))
            .arg("keep")
            .arg("EX")
            .arg(3600)
            .exec(c)
            .unwrap();
        redis::cmd("HSET")
            .arg(format!("hash:{db}"))
            .arg("f")
            .arg("v")
            .exec(c)
            .unwrap();
        redis::cmd("RPUSH")
            .arg(format!("list:{db}"))
            .arg("a")
            .arg("b")
            .exec(c)
            .unwrap();
    }
    redis::cmd("SELECT").arg(0).exec(c).unwrap();
}

/// Every key of every db 0..16 with its DUMP and whether it has a TTL
/// (SCAN is fine here: test data only).
pub fn snapshot(c: &mut redis::Connection) -> BTreeMap<(u32, Vec<u8>), (Vec<u8>, bool)> {
    let mut out = BTreeMap::new();
    for db in 0..16u32 {
        redis::cmd("SELECT").arg(db).exec(c).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        for k in keys {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(c).unwrap();
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            out.insert((db, k), (dump, ttl > 0));
        }
    }
    redis::cmd("SELECT").arg(0).exec(c).unwrap();
    out
}

/// No `redlab:` key in any db of this node.
pub fn redlab_keys(c: &mut redis::Connection) -> Vec<String> {
    let mut found = Vec::new();
    for db in 0..16u32 {
        redis::cmd("SELECT").arg(db).exec(c).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("redlab:*").query(c).unwrap();
        found.extend(keys.into_iter().map(|k| format!("db{db}:{k}")));
    }
    redis::cmd("SELECT").arg(0).exec(c).unwrap();
    found
}

pub fn assert_no_redlab_keys(ports: &[u16]) {
    for p in ports {
        let left = redlab_keys(&mut conn(p.to_owned()));
        assert!(left.is_empty(), "redlab keys left on port {p}: {left:?}");
    }
}

pub fn ports(lab: &Lab) -> Vec<u16> {
    std::iter::once(lab.master.port)
        .chain(lab.replicas.iter().map(|r| r.port))
        .collect()
}

/// Wait (bounded) until every replica has the master's offset.
pub fn wait_sync(lab: &Lab) {
    rt().block_on(lab.wait_in_sync(Duration::from_secs(10)))
        .unwrap();
}

/// The check named `name` in a JSON report.
/// The string `field` of every element of a JSON array (names of checks, addresses of nodes).
pub fn strs<'a>(array: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|e| {
            e[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field:?} in {e}"))
        })
        .collect()
}

pub fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {}", report["checks"]))
}

/// A TCP listener that accepts connections and never answers.
pub fn silent_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Wait (bounded) until the replica on `port` reports its link up.
pub fn wait_link_up(port: u16) {
    let mut c = conn(port);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "link never came up: {info}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The entry of `details.nodes` named `name` in a JSON report.
pub fn detail_node<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["details"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {}", report["details"]))
}

/// A test cluster of `shards` masters with no replica, stopped when dropped.
pub fn cluster_lab(shards: usize) -> redlab::lab::ClusterLab {
    use redlab::lab::{ClusterLab, ClusterLabOptions};
    rt().block_on(ClusterLab::start(ClusterLabOptions {
        shards,
        replicas: 0,
        ..ClusterLabOptions::default()
    }))
    .unwrap_or_else(|e| panic!("starting a test cluster: {e:#}"))
}

/// `cmdstat_<command>`'s calls on a node, from INFO commandstats (0 before the first).
pub fn cmdstat_calls(port: u16, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn(port))
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}
