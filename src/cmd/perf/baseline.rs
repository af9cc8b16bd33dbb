//! --baseline: compare with an earlier `redlab perf` JSON report.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::PerfDetails;
use crate::report::{Check, Section};

#[derive(Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline report.
    pub file: String,
    pub baseline_ops_per_sec: f64,
    pub ops_per_sec: f64,
    /// Change in throughput, percent (negative = slower).
    pub ops_change_pct: f64,
    pub baseline_p99_us: f64,
    pub p99_us: f64,
    /// Change in p99 latency, percent (positive = slower).
    pub p99_change_pct: f64,
    /// Allowed regression, percent.
    pub tolerance_pct: f64,
    /// Whether either figure regressed by more than the tolerance.
    pub regressed: bool,
}

/// Throughput and p99 of an earlier report; checked before a run starts so a
/// bad file is a usage error, not a failed check.
pub fn read(path: &Path) -> Result<(f64, f64)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the baseline {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a JSON report (write one with `redlab perf --format json --output FILE`)",
            path.display()
        )
    })?;
    let num = |ptr: &str| {
        v.pointer(ptr)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| {
                format!(
                    "{}: no {ptr} in it; is it a `redlab perf` JSON report?",
                    path.display()
                )
            })
    };
    let base_ops = num("/details/throughput_ops_per_sec")?;
    let base_p99 = num("/details/latency/p99_us")?;
    Ok((base_ops, base_p99))
}

pub fn compare(path: &Path, now: &PerfDetails, tolerance_pct: f64) -> Result<Comparison> {
    let (base_ops, base_p99) = read(path)?;
    let pct = |now: f64, base: f64| {
        if base > 0.0 {
            ((now - base) / base * 1e4).round() / 100.0
        } else {
            0.0
        }
    };
    let ops_change_pct = pct(now.throughput_ops_per_sec, base_ops);
    let p99_change_pct = pct(now.latency.p99_us, base_p99);
    Ok(Comparison {
        file: path.display().to_string(),
        baseline_ops_per_sec: base_ops,
        ops_per_sec: now.throughput_ops_per_sec,
        ops_change_pct,
        baseline_p99_us: base_p99,
        p99_us: now.latency.p99_us,
        p99_change_pct,
        tolerance_pct,
        regressed: ops_change_pct < -tolerance_pct || p99_change_pct > tolerance_pct,
    })
}

pub fn check(c: &Comparison) -> Check {
    let reason = format!(
        "throughput {:+.1} % ({:.0} vs {:.0} ops/s), p99 {:+.1} % ({:.0} vs {:.0} µs), tolerance {:.0} %",
        c.ops_change_pct, c.ops_per_sec, c.baseline_ops_per_sec, c.p99_change_pct, c.p99_us, c.baseline_p99_us, c.tolerance_pct
    );
    if c.regressed {
        Check::fail("perf.baseline", format!("regression: {reason}"))
    } else {
        Check::pass("perf.baseline", reason)
    }
}

pub fn section(c: &Comparison) -> Section {
    let mut s = Section::new("Against the baseline", &["", "baseline", "now", "change"]);
    s.row(vec![
        "ops/s".into(),
        format!("{:.0}", c.baseline_ops_per_sec),
        format!("{:.0}", c.ops_per_sec),
        format!("{:+.1} %", c.ops_change_pct),
    ]);
    s.row(vec![
        "p99".into(),
        format!("{:.0} µs", c.baseline_p99_us),
        format!("{:.0} µs", c.p99_us),
        format!("{:+.1} %", c.p99_change_pct),
    ]);
    s.notes.push(format!("baseline: {}", c.file));
    s
}
