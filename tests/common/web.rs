//! Fixtures for `redlab demo --web`: the page's server as a child process
//! (its URL read from what it prints), a tiny HTTP/1.1 client for the JSON
//! API, and a chromium driven over WebDriver (Debian's chromium-driver).
#![allow(dead_code)]

use crate::common::wait_until;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A generous deadline for a condition: a loaded 2-core machine is slow, not broken.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `redlab <args>` serving the page; killed on drop if still running.
pub struct WebServer {
    pub child: Child,
    pub url: String,
    /// What it printed on stderr so far (the URL line first).
    pub stderr: mpsc::Receiver<String>,
    pub first_lines: Vec<String>,
}

impl WebServer {
    /// Start it and wait (bounded) for the line with its URL; panics with
    /// what it printed if it exits or never says.
    pub fn start(args: &[String]) -> WebServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
            .args(args)
            .env_remove("REDLAB_MASTER")
            .env_remove("REDLAB_REPLICAS")
            .env_remove("REDLAB_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running redlab");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut first_lines = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let url = line
                        .split_whitespace()
                        .find(|w| w.starts_with("http://"))
                        .map(String::from);
                    first_lines.push(line);
                    if let Some(url) = url {
                        return WebServer {
                            child,
                            url,
                            stderr: rx,
                            first_lines,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().unwrap();
                    panic!(
                        "redlab {args:?} did not print its URL ({status}); it said:\n{}",
                        first_lines.join("\n")
                    );
                }
            }
        }
    }

    /// host:port.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Ctrl-C, then wait (bounded) for it to exit: its exit code, and the
    /// rest of what it printed.
    pub fn interrupt(mut self) -> (i32, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "redlab did not exit after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest: Vec<String> = self.first_lines.clone();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            rest.push(l);
        }
        (status.code().unwrap_or(-1), rest.join("\n"))
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request (Connection: close), bounded by the deadline.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
    http_typed(
        addr,
        method,
        path,
        "application/json",
        body.unwrap_or_default(),
    )
}

/// `http` with the Content-Type given.
pub fn http_typed(addr: &str, method: &str, path: &str, kind: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body, and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response from {addr}{path}: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

pub fn get(addr: &str, path: &str) -> Reply {
    http(addr, "GET", path, None)
}

pub fn post_query(addr: &str, q: &str) -> Reply {
    let body = serde_json::json!({ "query": q }).to_string();
    http(addr, "POST", "/api/query", Some(body.as_bytes()))
}

/// chromedriver on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start() -> Driver {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not be started ({e}): this test drives a real chromium: \
                     install it with apt-get install -y chromium chromium-driver (.ci/run does)"
                )
            });
        let d = Driver { child, port };
        wait_until("chromedriver answers", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        d
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless chromium session with a viewport of `w`x`h`.
pub async fn browser(driver: &Driver, w: u32, h: u32) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--window-size={w},{h}"),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("starting a chromium session through chromedriver")
}
