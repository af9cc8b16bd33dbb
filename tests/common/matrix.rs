//! The compatibility matrix's cells (part of tests/common): `.ci/compat.sh`
//! runs tests/compat.rs (and, for the module column, tests/modules.rs) once
//! per server with `REDLAB_COMPAT_OUT` naming a file; each recorded run
//! appends one `subcommand<TAB>exit<TAB>verdict` line to it.
#![allow(dead_code)]

use std::io::Write;

use super::*;

/// The server binary under test, as the lab fixtures resolve it.
pub fn server_bin() -> std::path::PathBuf {
    redlab::lab::redis_server().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Redis 7.0+ (and Valkey) disable DEBUG by default; Redis 6 has no such setting.
pub fn debug_args() -> Vec<String> {
    match redlab::lab::binary::binary_version(&server_bin()) {
        Some(v) if v < (7, 0) => Vec::new(),
        _ => vec!["--enable-debug-command".into(), "local".into()],
    }
}

/// `redlab X: VERDICT` from the first line of a table rendering, or the
/// `verdict` of a JSON one.
pub fn cell_verdict(run: &Run) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&run.stdout) {
        if let Some(verdict) = v["verdict"].as_str() {
            return verdict.to_ascii_uppercase();
        }
    }
    run.stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(": ").next())
        .filter(|v| !v.is_empty() && !v.contains(' '))
        .map(String::from)
        .unwrap_or_else(|| "error".into())
}

/// Append one matrix cell, when the run collects them.
pub fn record_cell(subcommand: &str, run: &Run) {
    let Some(path) = std::env::var_os("REDLAB_COMPAT_OUT") else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("opening REDLAB_COMPAT_OUT");
    // One write of the whole line: tests run in parallel threads, and
    // writeln! may split a line into several writes that interleave with
    // another test's (a column once had a cell torn in two).
    let line = format!("{subcommand}\t{}\t{}\n", run.code, cell_verdict(run));
    f.write_all(line.as_bytes()).unwrap();
}

/// Run redlab against `lab` asserting its replica count, record the cell,
/// and assert the exit code.
pub fn expect_cell(lab: &Lab, cell: &str, args: &[&str], code: i32) -> Run {
    let n = lab.replicas.len().to_string();
    let mut all = vec!["--expect-replicas", n.as_str()];
    all.extend_from_slice(args);
    let run = redlab_at(lab, &all);
    record_cell(cell, &run);
    assert_eq!(
        run.code,
        code,
        "{cell} on {}: {}\n{}",
        server_bin().display(),
        run.stdout,
        run.stderr
    );
    run
}
