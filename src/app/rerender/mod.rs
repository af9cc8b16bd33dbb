//! `redlab report FILE.json`: a saved JSON report rendered again (a CI
//! artifact turned into pictures later), two perf reports compared, or the
//! perf reports of one load's clients merged (`--merge`).
//! Nothing is measured and no server is contacted.
//!
//! A special mode, not a subcommand (`app::job::Special`): it reads back any
//! subcommand's report as that subcommand's details type, so it stands
//! above `cmd`, beside completions and the manual, and returns its report
//! to be emitted as every run's is.

mod merge;
mod overlay;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::report::{AnyReport, Details, Report, Section, Verdict};

/// The saved report to render, and another to compare it with. The verdict
/// is recomputed from the saved checks (the worst of them, as the run did)
/// and is the exit code's, 0 or 1 as the run's: a file whose top-level
/// verdict disagrees with its checks does not pass on its word.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub compare: Option<PathBuf>,
    /// --merge: the clients' perf reports of one split load (files or directories).
    pub merge: Vec<PathBuf>,
}

/// A saved report read back, to emit as any run's report.
pub struct Rendered {
    pub report: Box<dyn AnyReport>,
    /// Whether its verdict is the exit code's: a rendered or merged report's
    /// is; two runs compared (`--compare`) exit 0, whatever their checks.
    pub judged: bool,
}

pub fn run(args: Config) -> Result<Rendered> {
    if !args.merge.is_empty() {
        return Ok(Rendered {
            report: merge::run(&args.merge)?,
            judged: true,
        });
    }
    let saved = read(&args.file)?;
    if let Some(other) = &args.compare {
        return Ok(Rendered {
            report: Box::new(overlay::run(&args.file, saved, other, read(other)?)?),
            judged: false,
        });
    }
    let stated = saved.get("verdict").cloned();
    let mut report = typed(saved).or_else(|(e, saved)| {
        let generic: Report<Saved> = serde_json::from_value(saved)
            .with_context(|| format!("{}: not a redlab report", args.file.display()))?;
        eprintln!(
            "redlab: {}: its {} details do not read as this redlab's ({e}); showing them as saved",
            args.file.display(),
            generic.command
        );
        anyhow::Ok(Box::new(generic) as Box<dyn AnyReport>)
    })?;
    // The checks decide, not the stored verdict.
    report.add_checks(Vec::new());
    let recomputed = report.verdict();
    let said = stated.and_then(|v| serde_json::from_value::<Verdict>(v).ok());
    if let Some(said) = said.filter(|v| *v != recomputed) {
        eprintln!(
            "redlab: {}: its checks make it {}, not the {} it states at the top; shown as {}",
            args.file.display(),
            recomputed.as_str(),
            said.as_str(),
            recomputed.as_str()
        );
    }
    Ok(Rendered {
        report,
        judged: true,
    })
}

/// A saved report as its subcommand's own report, to render as that
/// subcommand does; the error, with the value back, when its details do not
/// read as this redlab's (an interrupted run, another version). A command
/// without a renderer of its own reads as `Saved`.
pub fn typed(
    saved: serde_json::Value,
) -> std::result::Result<Box<dyn AnyReport>, (serde_json::Error, serde_json::Value)> {
    use crate::cmd::*;
    let command = saved
        .get("command")
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_string();
    match command.as_str() {
        "perf" if saved["details"]["shards"].is_array() => {
            as_report::<perf::on_cluster::ClusterPerfDetails>(saved)
        }
        "perf" => as_any::<perf::PerfDetails>(saved),
        "replicate-check" => as_any::<replicate_check::ReplicateDetails>(saved),
        "ttl-watch" => as_any::<ttl_watch::TtlWatchDetails>(saved),
        "check" => as_any::<check::CheckDetails>(saved),
        "keycount" => as_any::<keycount::KeycountDetails>(saved),
        "demo" => as_any::<demo::DemoDetails>(saved),
        "drill" => as_report::<drill::DrillDetails>(saved),
        "stats" => as_any::<stats::StatsDetails>(saved),
        "compare" => as_any::<compare::CompareDetails>(saved),
        "clean" => as_any::<clean::CleanDetails>(saved),
        "lab" => as_report::<lab::LabDetails>(saved),
        _ => as_report::<Saved>(saved),
    }
}

/// A cluster's report (its details per shard) or a single topology's.
fn as_any<D: Details + DeserializeOwned + 'static>(
    saved: serde_json::Value,
) -> std::result::Result<Box<dyn AnyReport>, (serde_json::Error, serde_json::Value)> {
    if saved["details"]["shards"].is_array() {
        as_report::<crate::sharded::Sharded<D>>(saved)
    } else {
        as_report::<D>(saved)
    }
}

fn as_report<D: Details + DeserializeOwned + 'static>(
    saved: serde_json::Value,
) -> std::result::Result<Box<dyn AnyReport>, (serde_json::Error, serde_json::Value)> {
    match serde_json::from_value::<Report<D>>(saved.clone()) {
        Ok(r) => Ok(Box::new(r)),
        Err(e) => Err((e, saved)),
    }
}

/// A JSON report, checked to be one.
pub fn read(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the report {}", path.display()))?;
    // Editors on Windows save UTF-8 with a byte-order mark; JSON has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let v: serde_json::Value = serde_json::from_str(text).with_context(|| {
        format!(
            "{}: not a JSON report (write one with --format json --output FILE)",
            path.display()
        )
    })?;
    if v.get("schema_version").is_none() || v.get("command").is_none() {
        bail!(
            "{}: JSON, but not a redlab report (no schema_version or command)",
            path.display()
        );
    }
    Ok(v)
}

/// Details of a report without a renderer of its own: its plain fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Saved(serde_json::Value);

impl Details for Saved {
    fn sections(&self) -> Vec<Section> {
        let Some(fields) = self.0.as_object().filter(|o| !o.is_empty()) else {
            return Vec::new();
        };
        let mut s = Section::new("Details", &["field", "value"]);
        for (k, v) in fields {
            s.row(vec![
                k.clone(),
                match v {
                    serde_json::Value::Array(a) => format!("{} item(s)", a.len()),
                    serde_json::Value::Object(o) => format!("{} field(s)", o.len()),
                    serde_json::Value::String(t) => t.clone(),
                    other => other.to_string(),
                },
            ]);
        }
        s.notes
            .push("as saved; the JSON file has every field".into());
        vec![s]
    }
}
