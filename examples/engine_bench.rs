//! Benchmark driver for the perf engine without the CLI.
//!
//! `cargo run --release --example engine_bench -- -n 1000000 -P 64 -c 1 --port 6379`
//! Options: -n N, -P P, -c C, -d BYTES, -r KEYSPACE, --host H, --port P,
//! --rate OPS, --format json (accepted: --rounds/--warmup, ignored, so the
//! bench script can pass the same flags as to `redlab perf`).
//! Prints ops/s and the process CPU time (user+system from /proc/self/stat).

use std::net::ToSocketAddrs;
use std::time::Duration;

use redlab::perf::engine::{self, EngineConfig, Stop};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = EngineConfig::new("127.0.0.1:6379".parse()?);
    cfg.stop = Stop::Requests(100_000);
    cfg.connections = 50;
    cfg.key_prefix = "redlab:bench:perf:".into();
    let (mut host, mut port) = ("127.0.0.1".to_string(), 6379u16);
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "-n" => cfg.stop = Stop::Requests(val().parse()?),
            "-P" => cfg.pipeline = val().parse()?,
            "-c" => cfg.connections = val().parse()?,
            "-d" => {
                let d: usize = val().parse()?;
                cfg.data_size = (d, d);
            }
            "-r" => cfg.keyspace = Some(val().parse()?),
            "-h" | "--host" => host = val(),
            "-p" | "--port" => port = val().parse()?,
            "--rate" => cfg.rate = Some(val().parse()?),
            "--rounds" | "--warmup" => {}
            "--format" => json = val() == "json",
            other => anyhow::bail!("unknown argument {other}"),
        }
        i += 2;
    }
    cfg.addr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?;
    cfg.timeout = Duration::from_secs(10);

    let (u0, s0) = cpu_seconds();
    let res = engine::run(&cfg)?;
    let (u1, s1) = cpu_seconds();
    let (user, sys) = (u1 - u0, s1 - s0);
    let cpu = user + sys;
    let ops = res.ops_per_sec();
    let per_million = cpu * 1e6 / res.completed.max(1) as f64;
    let p50 = res.latency_ns.value_at_quantile(0.5) as f64 / 1e3;
    let p99 = res.latency_ns.value_at_quantile(0.99) as f64 / 1e3;
    if json {
        println!(
            "{{\"ops_per_sec\": {ops:.1}, \"completed\": {}, \"cpu_s\": {cpu:.3}, \
             \"cpu_s_per_million\": {per_million:.3}, \"p50_us\": {p50:.1}, \"p99_us\": {p99:.1}, \
             \"errors\": {}}}",
            res.completed,
            res.errors.values().sum::<u64>()
        );
    } else {
        println!(
            "{} requests in {:.3}s: {ops:.0} ops/s, client CPU {cpu:.3}s ({per_million:.3}s per million), \
             user {user:.2}s sys {sys:.2}s, p50 {p50:.1}us p99 {p99:.1}us, errors {:?}",
            res.completed,
            res.elapsed_ns as f64 / 1e9,
            res.errors
        );
    }
    Ok(())
}

/// (utime, stime) of this process in seconds, from /proc/self/stat (fields 14
/// and 15, in clock ticks; USER_HZ is 100 on Linux).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may contain spaces; fields restart after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ')', index 0 is field 3 (state); utime is field 14 → index 11.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}
