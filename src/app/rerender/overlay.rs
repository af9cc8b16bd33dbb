//! `--compare OTHER.json`: two perf runs side by side, their latency spectra
//! overlaid and a table of what changed.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cmd::perf::figures::spectrum;
use crate::cmd::perf::PerfDetails;
use crate::latency::{fmt_us, LatencyUs};
use crate::report::{Details, Figure, Report, Section};

/// The series name of the other run: not a node, so it gets the next free colour.
const OTHER: &str = "other run";

pub fn run(
    this_path: &Path,
    this: serde_json::Value,
    other_path: &Path,
    other: serde_json::Value,
) -> Result<Report<Compared>> {
    let this = perf(this_path, this)?;
    let other = perf(other_path, other)?;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let compared = Compared {
        deltas: deltas(&this.details, &other.details),
        other_file: name(other_path),
        this_file: name(this_path),
        other: other.details,
        this: this.details,
    };
    Ok(Report::new(
        "perf",
        this.manifest,
        this.nodes,
        this.checks,
        compared,
    ))
}

fn perf(path: &Path, v: serde_json::Value) -> Result<Report<PerfDetails>> {
    let command = v["command"].as_str().unwrap_or_default().to_string();
    if command != "perf" {
        bail!(
            "--compare draws two perf reports; {} is a {command} report",
            path.display()
        );
    }
    serde_json::from_value(v).with_context(|| {
        format!(
            "{}: its perf details do not read as this redlab's",
            path.display()
        )
    })
}

/// This run's details, with the other run and the differences.
#[derive(Debug, Serialize)]
pub struct Compared {
    /// This run's perf details.
    #[serde(flatten)]
    pub this: PerfDetails,
    /// The report this run was compared with.
    pub other_file: String,
    /// This report's file.
    pub this_file: String,
    /// Each figure in both runs.
    pub deltas: Vec<Delta>,
    #[serde(skip)]
    other: PerfDetails,
}

#[derive(Debug, Serialize)]
pub struct Delta {
    /// `throughput_ops_per_sec`, `p99_us`, ...
    pub metric: String,
    pub this: f64,
    pub other: f64,
    /// (this - other) / other, percent; null when other is 0.
    pub change_pct: Option<f64>,
    /// Whether the change is an improvement (more throughput, less latency).
    pub better: Option<bool>,
}

/// A latency figure's name and how to read it.
type Pick = fn(&LatencyUs) -> f64;

fn deltas(this: &PerfDetails, other: &PerfDetails) -> Vec<Delta> {
    let mut out = vec![delta(
        "throughput_ops_per_sec",
        this.throughput_ops_per_sec,
        other.throughput_ops_per_sec,
        true,
    )];
    let pick: [(&str, Pick); 7] = [
        ("p50_us", |l| l.p50_us),
        ("p90_us", |l| l.p90_us),
        ("p99_us", |l| l.p99_us),
        ("p999_us", |l| l.p999_us),
        ("p9999_us", |l| l.p9999_us),
        ("max_us", |l| l.max_us),
        ("mean_us", |l| l.mean_us),
    ];
    for (name, f) in pick {
        out.push(delta(name, f(&this.latency), f(&other.latency), false));
    }
    out
}

fn delta(metric: &str, this: f64, other: f64, higher_is_better: bool) -> Delta {
    let change_pct = (other != 0.0).then(|| (this - other) / other * 100.0);
    Delta {
        metric: metric.into(),
        this,
        other,
        change_pct,
        better: change_pct
            .filter(|c| *c != 0.0)
            .map(|c| (c > 0.0) == higher_is_better),
    }
}

impl Details for Compared {
    fn sections(&self) -> Vec<Section> {
        let mut out = self.this.sections();
        let mut s = Section::new(
            &format!("Compared with {}", self.other_file),
            &["metric", &self.this_file, &self.other_file, "change"],
        );
        for d in &self.deltas {
            let show = |v: f64| {
                if d.metric.ends_with("_us") {
                    fmt_us(v)
                } else {
                    format!("{v:.0}")
                }
            };
            s.row(vec![
                d.metric.trim_end_matches("_us").replace('_', " "),
                show(d.this),
                show(d.other),
                match (d.change_pct, d.better) {
                    (Some(c), Some(b)) => {
                        format!("{c:+.1} % ({})", if b { "better" } else { "worse" })
                    }
                    (Some(c), None) => format!("{c:+.1} %"),
                    _ => "-".into(),
                },
            ]);
        }
        s.notes.push(format!(
            "change is ({} - {}) / {}; latency of the median round of each",
            self.this_file, self.other_file, self.other_file
        ));
        out.push(s);
        out
    }

    fn figures(&self) -> Vec<Figure> {
        let this_label = format!("this run ({})", self.this_file);
        let other_label = format!("other run ({})", self.other_file);
        let mut out: Vec<Figure> = spectrum(
            "latency-spectrum-compared",
            &[
                ("master", this_label.as_str(), &self.this.latency_spectrum),
                (OTHER, other_label.as_str(), &self.other.latency_spectrum),
            ],
        )
        .map(|mut f| {
            f.title = "Latency by percentile, both runs".into();
            f
        })
        .into_iter()
        .collect();
        out.extend(
            self.this
                .figures()
                .into_iter()
                .filter(|f| f.id != "latency-spectrum"),
        );
        out
    }
}
