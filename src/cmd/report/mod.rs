//! `redlab report FILE.json`: a saved JSON report rendered again (a CI
//! artifact turned into pictures later), or two perf reports compared.
//! Nothing is measured and no server is contacted.

mod overlay;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::report::{Details, Report, Section, Verdict};

/// Renders, and exits 0 once rendered: the saved verdict is in the output,
/// and turning a failed run's report into pictures is not itself a failure.
/// The saved report to render, and another to compare it with.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub compare: Option<PathBuf>,
}

pub fn run(args: Config, g: &Settings) -> Result<Verdict> {
    let saved = read(&args.file)?;
    if let Some(other) = &args.compare {
        overlay::run(g, &args.file, saved, other, read(other)?)?;
        return Ok(Verdict::Pass);
    }
    let command = saved
        .get("command")
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_string();
    use crate::cmd::*;
    match command.as_str() {
        "perf" => emit_any::<perf::PerfDetails>(g, &args.file, saved),
        "replicate-check" => emit_any::<replicate_check::ReplicateDetails>(g, &args.file, saved),
        "ttl-watch" => emit_any::<ttl_watch::TtlWatchDetails>(g, &args.file, saved),
        "check" => emit_any::<check::CheckDetails>(g, &args.file, saved),
        "keycount" => emit_any::<keycount::KeycountDetails>(g, &args.file, saved),
        "demo" => emit_any::<demo::DemoDetails>(g, &args.file, saved),
        "drill" => emit_as::<crate::cmd::drill::DrillDetails>(g, &args.file, saved),
        _ => emit_as::<Saved>(g, &args.file, saved),
    }?;
    Ok(Verdict::Pass)
}

/// A JSON report, checked to be one.
pub fn read(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the report {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
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

/// A cluster's report (its details per shard) or a single topology's.
fn emit_any<D: Details + DeserializeOwned>(
    g: &Settings,
    path: &Path,
    saved: serde_json::Value,
) -> Result<Verdict> {
    if saved["details"]["shards"].is_array() {
        emit_as::<crate::cmd::cluster::Sharded<D>>(g, path, saved)
    } else {
        emit_as::<D>(g, path, saved)
    }
}

/// As the subcommand's own report; one whose details this redlab cannot read
/// (an interrupted run, another version) still shows its run, nodes and checks.
fn emit_as<D: Details + DeserializeOwned>(
    g: &Settings,
    path: &Path,
    saved: serde_json::Value,
) -> Result<Verdict> {
    match serde_json::from_value::<Report<D>>(saved.clone()) {
        Ok(mut report) => crate::emit(g, &mut report),
        Err(e) => {
            let generic: Report<Saved> = serde_json::from_value(saved)
                .with_context(|| format!("{}: not a redlab report", path.display()))?;
            eprintln!(
                "redlab: {}: its {} details do not read as this redlab's ({e}); showing them as saved",
                path.display(),
                generic.command
            );
            let mut generic = generic;
            crate::emit(g, &mut generic)
        }
    }
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
