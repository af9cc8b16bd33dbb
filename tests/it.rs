//! The integration tests, one binary: each tests/<name>.rs is a module here
//! (`cargo test --test it <name>::` runs one file's tests). One binary links
//! once and compiles tests/common once, instead of once per file; on 2 cores
//! that was minutes of every CI run. tests/compat.rs and tests/modules.rs
//! stay apart: .ci/compat.sh runs them once per server. A file under tests/
//! not named here would never run (autotests is off), so
//! `every_test_file_is_a_module` checks that.

#[path = "common/mod.rs"]
mod common;

#[path = "bounds.rs"]
mod bounds;
#[path = "browser.rs"]
mod browser;
#[path = "chain.rs"]
mod chain;
#[path = "check.rs"]
mod check;
#[path = "clean_ownership.rs"]
mod clean_ownership;
#[path = "cluster.rs"]
mod cluster;
#[path = "compare.rs"]
mod compare;
#[path = "compose.rs"]
mod compose;
#[path = "compose_cluster.rs"]
mod compose_cluster;
#[path = "demo.rs"]
mod demo;
#[path = "drill.rs"]
mod drill;
#[path = "faults.rs"]
mod faults;
#[path = "faults_topology.rs"]
mod faults_topology;
#[path = "harm.rs"]
mod harm;
#[path = "in_process.rs"]
mod in_process;
#[path = "interrupt.rs"]
mod interrupt;
#[path = "k8s_manifest.rs"]
mod k8s_manifest;
#[path = "keycount.rs"]
mod keycount;
#[path = "lab.rs"]
mod lab;
#[path = "lag.rs"]
mod lag;
#[path = "perf.rs"]
mod perf;
#[path = "perf_cluster.rs"]
mod perf_cluster;
#[path = "perf_engine.rs"]
mod perf_engine;
#[path = "perf_open_loop.rs"]
mod perf_open_loop;
#[path = "perf_room.rs"]
mod perf_room;
#[path = "perf_split.rs"]
mod perf_split;
#[path = "replicate_check.rs"]
mod replicate_check;
#[path = "reports.rs"]
mod reports;
#[path = "safe_output.rs"]
mod safe_output;
#[path = "safety.rs"]
mod safety;
#[path = "saved_report.rs"]
mod saved_report;
#[path = "sentinel.rs"]
mod sentinel;
#[path = "sentinel_health.rs"]
mod sentinel_health;
#[path = "serving.rs"]
mod serving;
#[path = "startup.rs"]
mod startup;
#[path = "stats.rs"]
mod stats;
#[path = "terminal.rs"]
mod terminal;
#[path = "truthful.rs"]
mod truthful;
#[path = "ttl_watch.rs"]
mod ttl_watch;
#[path = "verdicts.rs"]
mod verdicts;
#[path = "web.rs"]
mod web;

#[test]
fn every_test_file_is_a_module() {
    let here = include_str!("it.rs");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.path().join("main.rs").exists() {
            // A test binary of its own (tests/golden): Cargo.toml must name it.
            let manifest = include_str!("../Cargo.toml");
            assert!(
                manifest.contains(&format!("path = \"tests/{name}/main.rs\"")),
                "tests/{name}/main.rs is not a [[test]] in Cargo.toml, so its tests never run"
            );
            continue;
        }
        if !name.ends_with(".rs") || name == "it.rs" || name == "compat.rs" || name == "modules.rs"
        {
            continue;
        }
        assert!(
            here.contains(&format!("#[path = \"{name}\"]")),
            "tests/{name} is not a module of tests/it.rs, so its tests never run: add it there"
        );
    }
}
