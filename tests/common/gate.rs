//! Fixtures for `redlab check` and its fault suite (part of tests/common):
//! running the gate, proving user data untouched, and the non-Redis things
//! that sit on a port (an HTTP server, a TLS-only Redis).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// `redlab <global...> --format json check <check...>`.
pub fn gate(global: &[String], check: &[&str]) -> Run {
    let mut args = global.to_vec();
    args.extend(["--format", "json", "check"].map(String::from));
    args.extend(check.iter().map(|s| s.to_string()));
    redlab(&args)
}

/// The same, in a thread, so the test can break something mid-run.
pub fn gate_in_background(global: &[String], check: &[&str]) -> std::thread::JoinHandle<Run> {
    let (g, c): (Vec<String>, Vec<String>) = (
        global.to_vec(),
        check.iter().map(|s| s.to_string()).collect(),
    );
    std::thread::spawn(move || {
        let c: Vec<&str> = c.iter().map(String::as_str).collect();
        gate(&g, &c)
    })
}

/// The reason of the top-level check `name`.
pub fn reason(report: &serde_json::Value, name: &str) -> String {
    check(report, name)["reason"].as_str().unwrap().to_string()
}

pub fn verdict(report: &serde_json::Value, name: &str) -> String {
    check(report, name)["verdict"].as_str().unwrap().to_string()
}

/// Every reason in the report, top-level and findings, one per line.
pub fn all_reasons(report: &serde_json::Value) -> String {
    let mut out = Vec::new();
    for c in report["details"]["checks"].as_array().unwrap() {
        out.push(format!("{}: {}", c["name"], c["reason"]));
        for i in c["items"].as_array().unwrap() {
            out.push(format!("  {}: {}", i["name"], i["reason"]));
        }
    }
    out.join("\n")
}

/// User data seeded on a master, to prove a run changed none of it and left
/// no key of its own on any node.
pub struct Untouched {
    url: String,
    before: BTreeMap<(u32, Vec<u8>), (Vec<u8>, bool)>,
    watch: Vec<String>,
}

impl Untouched {
    /// Seed the master at `url`; `watch` are the nodes to search for redlab keys.
    pub fn seed(url: &str, watch: &[String]) -> Untouched {
        let mut c = conn_url(url);
        seed_user_data(&mut c);
        Untouched {
            url: url.to_string(),
            before: snapshot(&mut c),
            watch: watch.to_vec(),
        }
    }

    pub fn seed_lab(lab: &Lab) -> Untouched {
        let urls: Vec<String> = ports(lab).into_iter().map(url).collect();
        let u = Untouched::seed(&urls[0], &urls);
        wait_sync(lab);
        u
    }

    pub fn assert(&self) {
        let after = snapshot(&mut conn_url(&self.url));
        assert!(after == self.before, "user data changed on {}", self.url);
        self.assert_no_redlab_keys();
    }

    pub fn assert_no_redlab_keys(&self) {
        Untouched::assert_no_redlab_keys_on(&self.watch);
    }

    pub fn assert_no_redlab_keys_on(urls: &[String]) {
        for u in urls {
            let left = redlab_keys(&mut conn_url(u));
            assert!(left.is_empty(), "redlab keys left on {u}: {left:?}");
        }
    }
}

/// `redis://:pw@127.0.0.1:port`
pub fn url_pw(port: u16, pw: &str) -> String {
    format!("redis://:{pw}@127.0.0.1:{port}")
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` on a free loopback port, answering once it listens.
pub fn http_server() -> (Proc, u16) {
    let port = redlab::lab::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is needed for the HTTP server fault (apt-get install python3)");
    let p = Proc(child);
    wait_until("the HTTP server listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (p, port)
}

/// A redis-server that speaks only TLS, with a throwaway CA and certificate
/// made by `openssl` in `dir`.
pub fn tls_server(dir: &Path) -> (Server, u16) {
    let sh = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is needed for the TLS faults (apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=redlab-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    sh(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    sh(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "redis.crt",
    ]);
    let port = redlab::lab::free_port().unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &p("redis.crt"),
        "--tls-key-file",
        &p("redis.key"),
        "--tls-ca-cert-file",
        &p("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = Server::spawn(dir, "tls", port, redlab::lab::MASTER_CONF, &args)
        .unwrap_or_else(|e| panic!("starting a TLS redis-server: {e:#}"));
    wait_until("the TLS redis-server is ready", || {
        std::fs::read_to_string(&s.log)
            .map(|l| l.contains("Ready to accept connections"))
            .unwrap_or(false)
    });
    (s, port)
}

/// Wait (bounded: a hang's bound, 60 s) until `ok`; how long it took.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

/// Whether any `redlab:` key is on the node at `url` (db0; small test data).
pub fn has_redlab_keys(url: &str) -> bool {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("redlab:*")
        .query(&mut conn_url(url))
        .unwrap_or_default();
    !keys.is_empty()
}

/// Run one command on the node at `url`.
pub fn cmd(url: &str, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(&mut conn_url(url))
        .unwrap_or_else(|e| panic!("{args:?} on {url}: {e}"))
}

/// INFO <section> of the node at `url`.
pub fn info(url: &str, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query(&mut conn_url(url))
        .unwrap()
}
