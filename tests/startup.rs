//! The fixed cost of a run, against a real server: `--timings` shows each
//! start-up and shutdown step, and a plain benchmark asks the master only
//! what it needs (one INFO with the CONFIG it reads, one registry write,
//! one delete probe, one cleanup batch for exactly the keys it wrote).

use std::collections::BTreeMap;

use crate::common::*;

/// Calls per command (`cmdstat_<name>:calls=N`) from INFO commandstats.
fn calls(port: u16) -> BTreeMap<String, u64> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn(port))
        .unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let n = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), n))
        })
        .collect()
}

fn headline(port: u16, extra: &[&str]) -> Run {
    let mut args = vec![
        "--master".to_string(),
        url(port),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(
        [
            "perf", "-n", "1000", "-P", "1000", "--rounds", "1", "--warmup", "0",
        ]
        .map(String::from),
    );
    redlab(&args)
}

#[test]
fn timings_lists_every_start_up_and_shutdown_step_on_stderr_and_in_the_manifest() {
    let (s, _dir) = server("master", &[]);
    let run = headline(s.port, &["--timings"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("redlab: timings "))
        .collect();
    for step in [
        "parse arguments",
        "async runtime",
        "discovery: connect, INFO, CONFIG",
        "survey (every node: INFO, CONFIG)",
        "leftover scan (registry, concurrent)",
        "write gate (room, delete permission)",
        "registry: register",
        "round 1/1",
        "after the load: INFO memory, stats",
        "cleanup",
        "report: percentiles (during cleanup)",
        "report: details",
        "registry: unregister, evictions",
        "whole run (to exit)",
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(&format!("  {step}"))),
            "no `{step}` step in:\n{}",
            run.stderr
        );
    }
    // Each line: start and duration in ms, both numbers.
    for l in &lines[1..] {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert!(
            f[2].parse::<f64>().is_ok() && f[3].parse::<f64>().is_ok(),
            "{l}"
        );
    }
    let r = run.json();
    let steps: Vec<&str> = r["manifest"]["timings"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifest.timings: {}", r["manifest"]))
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"round 1/1"), "{steps:?}");
    assert!(
        steps.contains(&"write gate (room, delete permission)"),
        "{steps:?}"
    );
    assert_no_redlab_keys(&[s.port]);
}

#[test]
fn without_timings_nothing_is_printed_or_recorded() {
    let (s, _dir) = server("master", &[]);
    let run = headline(s.port, &["-q"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("timings"), "{}", run.stderr);
    assert!(run.json()["manifest"].get("timings").is_none());
}

#[test]
fn a_plain_benchmark_asks_the_master_only_what_it_needs() {
    let (s, _dir) = server("master", &[]);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn(s.port))
        .unwrap();
    let run = headline(s.port, &["-q"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let c = calls(s.port);
    let n = |k: &str| c.get(k).copied().unwrap_or(0);
    // The 1000 SETs, nothing else written but the registry.
    assert_eq!(n("set"), 1000 + 1, "SETs and the heartbeat key: {c:?}");
    // Registered once, with the load's range already in its record.
    assert_eq!(n("hset"), 1, "{c:?}");
    // The delete-permission probe and one batch of exactly the 1000 keys.
    assert_eq!(n("unlink"), 2, "{c:?}");
    // One visit (INFO default with its CONFIG GETs), INFO memory and stats
    // pipelined after the load, INFO stats for the eviction counters at the
    // end; this test's own INFO is not counted yet.
    assert_eq!(n("info"), 4, "{c:?}");
    // The connection's own, whose first reply is read with a bound (no
    // probe on a socket of its own any more).
    assert_eq!(n("ping"), 1, "{c:?}");
    assert_eq!(n("config|get"), 3, "save, maxclients, output limit: {c:?}");
    assert_eq!(n("hgetall"), 1, "the leftover scan: {c:?}");
    // Nothing else: no CLIENT SETINFO or other handshake on the connection.
    let names: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "config|get",
            "config|resetstat",
            "del",
            "hdel",
            "hgetall",
            "hset",
            "info",
            "ping",
            "set",
            "unlink"
        ],
        "{c:?}"
    );
    assert_eq!(run.json()["details"]["keys_removed"], 1000);
    assert_no_redlab_keys(&[s.port]);
}

#[test]
fn the_version_fast_path_prints_what_clap_prints() {
    // `--version` alone skips clap; with another flag clap answers.
    let fast = redlab(&["--version"]);
    let short = redlab(&["-V"]);
    let clap = redlab(&["--quiet", "--version"]);
    assert_eq!(fast.code, 0, "{}", fast.stderr);
    assert_eq!(clap.code, 0, "{}", clap.stderr);
    assert_eq!(fast.stdout, clap.stdout);
    assert_eq!(short.stdout, clap.stdout);
    assert_eq!(
        fast.stdout,
        format!("redlab {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn what_the_light_parse_declines_the_full_parser_answers() {
    // Help, versions and usage errors of a perf command line: the light
    // path (a tree holding only perf) steps aside and clap answers as before.
    let help = redlab(&["perf", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("Pipeline depth"), "{}", help.stdout);
    assert!(
        help.stdout.contains("Usage: redlab perf"),
        "{}",
        help.stdout
    );
    let version = redlab(&["perf", "--version"]);
    assert_ne!(version.code, 0, "{}", version.stdout);
    let bad = redlab(&["perf", "-n", "lots"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("invalid value 'lots'") && bad.stderr.contains("--requests"),
        "{}",
        bad.stderr
    );
    // A value spelt like a subcommand ahead of another one.
    let other = redlab(&["--prefix", "perf", "lab", "--help"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(
        other.stdout.contains("Usage: redlab lab"),
        "{}",
        other.stdout
    );
}
