//! --baseline: compare with an earlier `redlab perf` JSON report, honestly.
//!
//! A gate that flakes is switched off, and one that cannot see a regression
//! is worse. So: compare like with like (the same workload, sizes and
//! shape, or the run refuses), refuse rounds too short or too few to say
//! anything (a default run is a few milliseconds: timer and scheduler noise),
//! and call a change a regression only past the tolerance *plus* the noise
//! both runs showed between their own rounds, which the report states.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{Options, PerfDetails, WorkloadKind};
use crate::report::{Check, Section};

/// Rounds a baseline comparison needs, at least, on each side.
pub const MIN_ROUNDS: usize = 5;
/// A p99 may move this many times the tolerance before it is a regression:
/// a tail moves about three times as far as the throughput between two
/// unchanged runs on a shared machine (bench/baseline_gate.sh: up to +40 %
/// where throughput moved -20 %), while a real regression moves it by
/// hundreds of percent.
pub const P99_TOLERANCE_FACTOR: f64 = 3.0;
/// The shortest round worth comparing, ms.
pub const MIN_ROUND_MS: f64 = 1000.0;
/// A baseline file larger than this is not a perf report.
const MAX_FILE_BYTES: u64 = 4 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline report.
    pub file: String,
    /// Median round of the baseline, ops/s.
    pub baseline_ops_per_sec: f64,
    /// Median round now, ops/s.
    pub ops_per_sec: f64,
    /// Change in throughput, percent (negative = slower).
    pub ops_change_pct: f64,
    /// Half the spread (max - min) of the rounds, relative to their median,
    /// percent: the larger of the two runs'. Changes within it are noise.
    pub ops_noise_pct: f64,
    /// Median of the baseline's per-round p99, µs.
    pub baseline_p99_us: f64,
    /// Median of this run's per-round p99, µs.
    pub p99_us: f64,
    /// Change in p99 latency, percent (positive = slower).
    pub p99_change_pct: f64,
    /// The same noise measure for the per-round p99s, percent.
    pub p99_noise_pct: f64,
    /// Allowed regression beyond the noise, percent.
    pub tolerance_pct: f64,
    /// The same for the p99 (P99_TOLERANCE_FACTOR times the tolerance).
    #[serde(default)]
    pub p99_tolerance_pct: f64,
    /// Whether either figure regressed by more than tolerance + noise.
    pub regressed: bool,
}

/// What a baseline report ran and measured.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The run's shape, to compare like with like.
    pub shape: Shape,
    /// Per round: ops/s, elapsed ms, p99 µs.
    rounds: Vec<(f64, f64, f64)>,
}

/// The options that make two perf runs comparable.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub workload: String,
    pub requests: Option<u64>,
    pub duration_ms: Option<f64>,
    pub pipeline: u64,
    pub connections: u64,
    pub data_size: (u64, u64),
    pub keyspace: Option<u64>,
    pub rate: Option<f64>,
}

impl Shape {
    pub fn of(o: &Options) -> Shape {
        Shape {
            workload: match o.workload {
                WorkloadKind::Set => "set".into(),
                WorkloadKind::Get => "get".into(),
                WorkloadKind::Mixed { sets, gets } => format!("mixed {sets}:{gets}"),
                WorkloadKind::SetWait => "set-wait".into(),
            },
            requests: o.duration.is_none().then_some(o.requests),
            duration_ms: o.duration.map(crate::duration::ms),
            pipeline: o.pipeline as u64,
            connections: o.connections as u64,
            data_size: (o.data_size.0 as u64, o.data_size.1 as u64),
            keyspace: o.keyspace,
            rate: o.rate,
        }
    }

    /// The command-line options that give this shape.
    pub fn flags(&self) -> String {
        let mut f = vec![format!(
            "--workload {}",
            self.workload.replace(' ', " --ratio ")
        )];
        match (self.requests, self.duration_ms) {
            (_, Some(ms)) => f.push(format!(
                "--duration {}",
                humantime::format_duration(std::time::Duration::from_micros((ms * 1e3) as u64))
            )),
            (Some(n), None) => f.push(format!("-n {n}")),
            _ => {}
        }
        f.push(format!("-P {} -c {}", self.pipeline, self.connections));
        f.push(if self.data_size.0 == self.data_size.1 {
            format!("-d {}", self.data_size.0)
        } else {
            format!("-d {}-{}", self.data_size.0, self.data_size.1)
        });
        if let Some(k) = self.keyspace {
            f.push(format!("--keyspace {k}"));
        }
        if let Some(r) = self.rate {
            f.push(format!("--rate {r}"));
        }
        f.join(" ")
    }

    /// Options for a run of this shape (what `check --baseline` runs).
    pub fn apply(&self, o: &mut Options, rounds: u32) -> Result<()> {
        o.workload = match self.workload.as_str() {
            "set" => WorkloadKind::Set,
            "get" => WorkloadKind::Get,
            "set-wait" => WorkloadKind::SetWait,
            m => {
                let (s, g) = m
                    .strip_prefix("mixed ")
                    .and_then(|r| r.split_once(':'))
                    .and_then(|(s, g)| Some((s.parse().ok()?, g.parse().ok()?)))
                    .with_context(|| format!("unknown workload '{m}' in the baseline"))?;
                WorkloadKind::Mixed { sets: s, gets: g }
            }
        };
        o.requests = self.requests.unwrap_or(o.requests);
        o.duration = self
            .duration_ms
            .map(|ms| std::time::Duration::from_micros((ms * 1e3) as u64));
        o.pipeline = self.pipeline as usize;
        o.connections = self.connections as usize;
        o.data_size = (self.data_size.0 as usize, self.data_size.1 as usize);
        o.keyspace = self.keyspace;
        o.rate = self.rate;
        o.rounds = rounds;
        Ok(())
    }
}

/// Read a baseline and refuse one that cannot gate: not a perf report, too
/// large, or rounds too short or too few. Checked before a run starts, so a
/// bad file is a usage error (exit 2), not a failed check.
pub fn read(path: &Path) -> Result<Baseline> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading the baseline {}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{}: {} is too large for a perf report (at most {}): is it the right file?",
            path.display(),
            crate::report::human_bytes(size),
            crate::report::human_bytes(MAX_FILE_BYTES)
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the baseline {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a JSON report (write one with `redlab perf --format json --output FILE`)",
            path.display()
        )
    })?;
    if v.get("command").and_then(|c| c.as_str()) != Some("perf") {
        bail!(
            "{}: not a `redlab perf` JSON report (its command is {})",
            path.display(),
            v.get("command")
                .map(|c| c.to_string())
                .unwrap_or_else(|| "missing".into())
        );
    }
    let d = &v["details"];
    let num = |k: &str| d.get(k).and_then(serde_json::Value::as_u64);
    let shape = Shape {
        workload: d["workload"].as_str().unwrap_or("set").to_string(),
        requests: num("requests_per_round"),
        duration_ms: d.get("duration_per_round_ms").and_then(|x| x.as_f64()),
        pipeline: num("pipeline").unwrap_or(0),
        connections: num("connections").unwrap_or(0),
        data_size: (
            num("data_size_min_bytes").unwrap_or(0),
            num("data_size_max_bytes").unwrap_or(0),
        ),
        keyspace: num("keyspace"),
        rate: d.get("target_rate_ops_per_sec").and_then(|x| x.as_f64()),
    };
    let rounds: Vec<(f64, f64, f64)> = d["round_results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let f = |k: &str| r.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
                    (f("ops_per_sec"), f("elapsed_ms"), f("p99_us"))
                })
                .collect()
        })
        .unwrap_or_default();
    let b = Baseline { shape, rounds };
    b.refuse_if_unfit(path)?;
    Ok(b)
}

impl Baseline {
    fn refuse_if_unfit(&self, path: &Path) -> Result<()> {
        let how = format!(
            "record it with at least {MIN_ROUNDS} rounds of at least {} s each, e.g. \
             `redlab perf --duration 2s --rounds {MIN_ROUNDS} --format json --output {}`",
            MIN_ROUND_MS / 1e3,
            path.display()
        );
        if self.rounds.len() < MIN_ROUNDS {
            bail!(
                "{}: {} round(s) cannot gate: the noise between rounds is what a regression \
                 is measured against; {how}",
                path.display(),
                self.rounds.len()
            );
        }
        let shortest = self
            .rounds
            .iter()
            .map(|r| r.1)
            .fold(f64::INFINITY, f64::min);
        if shortest < MIN_ROUND_MS {
            bail!(
                "{}: its rounds lasted as little as {shortest:.1} ms, too short to compare \
                 (timer and scheduler noise dominate); {how}",
                path.display()
            );
        }
        Ok(())
    }

    /// Refuse to compare runs of different shapes, naming the differences.
    pub fn refuse_unlike(&self, now: &Shape) -> Result<()> {
        if *now != self.shape {
            bail!(
                "the baseline ran `{}` but this run is `{}`: compare like with like, \
                 run with the baseline's options",
                self.shape.flags(),
                now.flags()
            );
        }
        Ok(())
    }

    pub fn rounds(&self) -> usize {
        self.rounds.len()
    }
}

/// Median and the relative spread (max - min) / median, percent. The whole
/// spread, not half of it: two runs drift apart by about what one run's
/// rounds span (measured: with half the spread, 4 of 10 unchanged runs of
/// bench/baseline_gate.sh failed on an idle 2-core machine).
fn median_and_noise(v: &[f64]) -> (f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (0.0, 0.0);
    }
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    let spread = s[s.len() - 1] - s[0];
    let noise = if median > 0.0 {
        spread / median * 100.0
    } else {
        0.0
    };
    (median, noise)
}

pub fn compare(path: &Path, now: &PerfDetails, tolerance_pct: f64) -> Result<Comparison> {
    let base = read(path)?;
    let ops_now: Vec<f64> = now.round_results.iter().map(|r| r.ops_per_sec).collect();
    let p99_now: Vec<f64> = now.round_results.iter().map(|r| r.p99_us).collect();
    let ops_base: Vec<f64> = base.rounds.iter().map(|r| r.0).collect();
    let p99_base: Vec<f64> = base.rounds.iter().map(|r| r.2).collect();
    let (b_ops, b_ops_noise) = median_and_noise(&ops_base);
    let (n_ops, n_ops_noise) = median_and_noise(&ops_now);
    let (b_p99, b_p99_noise) = median_and_noise(&p99_base);
    let (n_p99, n_p99_noise) = median_and_noise(&p99_now);
    let pct = |now: f64, base: f64| {
        if base > 0.0 {
            ((now - base) / base * 1e4).round() / 100.0
        } else {
            0.0
        }
    };
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let ops_change_pct = pct(n_ops, b_ops);
    let p99_change_pct = pct(n_p99, b_p99);
    let ops_noise_pct = round2(b_ops_noise.max(n_ops_noise));
    let p99_noise_pct = round2(b_p99_noise.max(n_p99_noise));
    Ok(Comparison {
        file: path.display().to_string(),
        baseline_ops_per_sec: b_ops,
        ops_per_sec: n_ops,
        ops_change_pct,
        ops_noise_pct,
        baseline_p99_us: b_p99,
        p99_us: n_p99,
        p99_change_pct,
        p99_noise_pct,
        tolerance_pct,
        p99_tolerance_pct: tolerance_pct * P99_TOLERANCE_FACTOR,
        regressed: ops_change_pct < -(tolerance_pct + ops_noise_pct)
            || p99_change_pct > tolerance_pct * P99_TOLERANCE_FACTOR + p99_noise_pct,
    })
}

pub fn check(c: &Comparison) -> Check {
    let reason = format!(
        "throughput {:+.1} % ({:.0} vs {:.0} ops/s, noise ±{:.1} %), p99 {:+.1} % ({:.0} vs {:.0} µs, noise ±{:.1} %), tolerance {:.0} % (p99: {:.0} %) beyond the noise",
        c.ops_change_pct,
        c.ops_per_sec,
        c.baseline_ops_per_sec,
        c.ops_noise_pct,
        c.p99_change_pct,
        c.p99_us,
        c.baseline_p99_us,
        c.p99_noise_pct,
        c.tolerance_pct,
        c.p99_tolerance_pct
    );
    if c.regressed {
        Check::fail("perf.baseline", format!("regression: {reason}"))
    } else {
        Check::pass("perf.baseline", reason)
    }
}

pub fn section(c: &Comparison) -> Section {
    let mut s = Section::new(
        "Against the baseline",
        &["", "baseline", "now", "change", "noise"],
    );
    s.row(vec![
        "ops/s".into(),
        format!("{:.0}", c.baseline_ops_per_sec),
        format!("{:.0}", c.ops_per_sec),
        format!("{:+.1} %", c.ops_change_pct),
        format!("±{:.1} %", c.ops_noise_pct),
    ]);
    s.row(vec![
        "p99".into(),
        format!("{:.0} µs", c.baseline_p99_us),
        format!("{:.0} µs", c.p99_us),
        format!("{:+.1} %", c.p99_change_pct),
        format!("±{:.1} %", c.p99_noise_pct),
    ]);
    s.notes.push(format!(
        "baseline: {}; medians of the rounds; a regression is a change past the tolerance ({:.0} %, for the p99 {:.0} %) plus the noise (the spread of either run's rounds)",
        c.file, c.tolerance_pct, c.p99_tolerance_pct
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_the_relative_spread() {
        let (m, n) = median_and_noise(&[90.0, 100.0, 110.0, 100.0, 105.0]);
        assert_eq!(m, 100.0);
        assert!((n - 20.0).abs() < 1e-9);
    }
}
