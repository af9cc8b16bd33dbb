//! Fixtures for the issue-20 tests: labs whose nodes allow DEBUG from
//! loopback, so user data is compared by DEBUG DIGEST before and after.
#![allow(dead_code)]

use super::*;

/// A master and `replicas` replicas, DEBUG allowed from loopback.
pub fn debug_lab(replicas: usize) -> Lab {
    let debug = vec!["--enable-debug-command".to_string(), "local".to_string()];
    lab_with(LabOptions {
        replicas,
        master_args: debug.clone(),
        replica_args: debug,
        ..LabOptions::default()
    })
}

/// `debug_lab(1)` whose replica takes writes of its own
/// (`replica-read-only no`), so a test can make its data differ.
pub fn writable_debug_lab(replicas: usize) -> Lab {
    let debug = vec!["--enable-debug-command".to_string(), "local".to_string()];
    let mut replica = debug.clone();
    replica.extend(["--replica-read-only".to_string(), "no".to_string()]);
    lab_with(LabOptions {
        replicas,
        master_args: debug,
        replica_args: replica,
        ..LabOptions::default()
    })
}

/// A perf load long enough to be interrupted (1000 rounds of 20000 SETs
/// over 50000 keys): what the signal and cleanup tests stop mid-run.
pub const LONG_PERF: [&str; 9] = [
    "perf",
    "-n",
    "20000",
    "--keyspace",
    "50000",
    "-P",
    "100",
    "--rounds",
    "1000",
];

/// DEBUG DIGEST of a node: every key, type, value and whether it expires.
pub fn digest(u: &str) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut conn_url(u))
        .unwrap_or_else(|e| panic!("DEBUG DIGEST on {u}: {e}"))
}

/// The keys matching `pattern` in db0, sorted.
pub fn keys(u: &str, pattern: &str) -> Vec<String> {
    let mut k: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut conn_url(u))
        .unwrap();
    k.sort();
    k
}

/// `base` followed by `more`.
pub fn with(base: &[String], more: &[&str]) -> Vec<String> {
    let mut v = base.to_vec();
    v.extend(more.iter().map(|s| s.to_string()));
    v
}
