//! Check's report: every step that ran, with its findings and its own
//! measurements typed as its probe's details (`StepDetails`). The JSON is
//! the one the untyped details wrote: each step's details with their keys in
//! order, null for a step that measured nothing; read back, a step's details
//! are read as the type its name says.

use serde::{Deserialize, Serialize, Serializer};

use super::figures;
use crate::probe::consistency::CompareDetails;
use crate::probe::expiry::TtlWatchDetails;
use crate::probe::lint::Facts;
use crate::probe::parity::KeycountDetails;
use crate::probe::propagation::sentinels::SentinelResult;
use crate::probe::propagation::ReplicateDetails;
use crate::probe::throughput::PerfDetails;
use crate::report::{Check, Details, Section, Verdict};

#[derive(Debug, Serialize, Deserialize)]
pub struct CheckDetails {
    /// Every check that ran, in order, with its findings.
    pub checks: Vec<CheckRun>,
    /// Checks left out by --skip/--only.
    pub skipped: Vec<String>,
    /// Configuration lint findings fail instead of warn.
    pub strict: bool,
    /// Warnings were made fatal (--fail-on warn).
    pub warnings_fatal: bool,
    /// Why redlab refused to write (master unreachable or not a master); the
    /// run then exits 2.
    pub refused: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "SavedRun")]
pub struct CheckRun {
    pub name: String,
    pub verdict: Verdict,
    /// One line.
    pub reason: String,
    /// Wall time of this check, ms.
    pub elapsed_ms: f64,
    /// Findings, named `<node>.<aspect>`.
    pub items: Vec<Check>,
    /// The check's own measurements, as its probe's type (null where it
    /// measured nothing of its own).
    pub details: StepDetails,
    /// Its tables, when it ran here (a report read from a file rebuilds them
    /// from `details`).
    #[serde(skip)]
    pub(super) sections: Vec<Section>,
}

/// A step's own measurements, one variant per kind of step.
#[derive(Debug, Default)]
pub enum StepDetails {
    /// Nothing measured: a step skipped, refused or failed before measuring,
    /// the `cluster` step (its health is the report's), `master-restart`.
    #[default]
    None,
    /// `reachability`: the roles, before any write (its findings are its
    /// table: it draws none).
    Roles(Box<ReplicateDetails>),
    /// `replication`: the roles and the probes' propagation.
    Replication(Box<ReplicateDetails>),
    /// `keycount`.
    Keycount(Box<KeycountDetails>),
    /// `consistency`.
    Consistency(Box<CompareDetails>),
    /// `expiry`.
    Expiry(Box<TtlWatchDetails>),
    /// `throughput`.
    Throughput(Box<PerfDetails>),
    /// `config-lint`: what it read of each node.
    Lint(Vec<Facts>),
    /// `sentinels`: each Sentinel's answers.
    Sentinels(Vec<SentinelResult>),
    /// Read from a report whose step this redlab does not know, or whose
    /// details do not read as that step's (another version): kept as written.
    Unread(serde_json::Value),
}

impl StepDetails {
    /// The details of the step `name` as read from a report file.
    fn read(name: &str, v: serde_json::Value) -> StepDetails {
        fn typed<T: serde::de::DeserializeOwned>(
            v: serde_json::Value,
            wrap: fn(T) -> StepDetails,
        ) -> StepDetails {
            match T::deserialize(&v) {
                Ok(d) => wrap(d),
                Err(_) => StepDetails::Unread(v),
            }
        }
        if v.is_null() {
            return StepDetails::None;
        }
        match name {
            "reachability" => typed(v, |d| StepDetails::Roles(Box::new(d))),
            "replication" => typed(v, |d| StepDetails::Replication(Box::new(d))),
            "keycount" => typed(v, |d| StepDetails::Keycount(Box::new(d))),
            "consistency" => typed(v, |d| StepDetails::Consistency(Box::new(d))),
            "expiry" => typed(v, |d| StepDetails::Expiry(Box::new(d))),
            "throughput" => typed(v, |d| StepDetails::Throughput(Box::new(d))),
            "config-lint" => typed(v, StepDetails::Lint),
            "sentinels" => typed(v, StepDetails::Sentinels),
            _ => StepDetails::Unread(v),
        }
    }

    /// As a subcommand's details, for the tables and figures they draw.
    pub fn view(&self) -> Option<&dyn View> {
        Some(match self {
            StepDetails::Replication(d) => d.as_ref(),
            StepDetails::Keycount(d) => d.as_ref(),
            StepDetails::Consistency(d) => d.as_ref(),
            StepDetails::Expiry(d) => d.as_ref(),
            StepDetails::Throughput(d) => d.as_ref(),
            StepDetails::None
            | StepDetails::Roles(_)
            | StepDetails::Lint(_)
            | StepDetails::Sentinels(_)
            | StepDetails::Unread(_) => return None,
        })
    }
}

impl Serialize for StepDetails {
    /// Through a JSON value: its objects keep their keys sorted, as the
    /// untyped details did, so the report's JSON is unchanged.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let v = match self {
            StepDetails::None => Ok(serde_json::Value::Null),
            StepDetails::Roles(d) | StepDetails::Replication(d) => serde_json::to_value(d),
            StepDetails::Keycount(d) => serde_json::to_value(d),
            StepDetails::Consistency(d) => serde_json::to_value(d),
            StepDetails::Expiry(d) => serde_json::to_value(d),
            StepDetails::Throughput(d) => serde_json::to_value(d),
            StepDetails::Lint(d) => serde_json::to_value(d),
            StepDetails::Sentinels(d) => serde_json::to_value(d),
            StepDetails::Unread(v) => Ok(v.clone()),
        }
        .map_err(S::Error::custom)?;
        v.serialize(s)
    }
}

/// `Details` without its `Serialize` supertrait, so a step's details can be
/// seen as one.
pub trait View {
    fn sections(&self) -> Vec<Section>;
    fn figures(&self) -> Vec<crate::report::Figure>;
}

impl<T: Details> View for T {
    fn sections(&self) -> Vec<Section> {
        Details::sections(self)
    }
    fn figures(&self) -> Vec<crate::report::Figure> {
        Details::figures(self)
    }
}

/// A step as a report file holds it: its details are read by its name.
#[derive(Deserialize)]
struct SavedRun {
    name: String,
    verdict: Verdict,
    reason: String,
    elapsed_ms: f64,
    items: Vec<Check>,
    #[serde(default)]
    details: serde_json::Value,
}

impl From<SavedRun> for CheckRun {
    fn from(r: SavedRun) -> CheckRun {
        CheckRun {
            details: StepDetails::read(&r.name, r.details),
            name: r.name,
            verdict: r.verdict,
            reason: r.reason,
            elapsed_ms: r.elapsed_ms,
            items: r.items,
            sections: Vec::new(),
        }
    }
}

pub(super) fn warnings_fatal(r: &mut CheckRun) {
    if r.verdict == Verdict::Warn {
        r.verdict = Verdict::Fail;
        r.reason = format!("warning made fatal by --fail-on warn: {}", r.reason);
    }
}

impl Details for CheckDetails {
    /// --fail-on warn: each step that warned fails, saying so (its line in
    /// the report's checks is made fatal with the same words).
    fn warnings_fatal(&mut self) -> bool {
        self.checks.iter_mut().for_each(warnings_fatal);
        self.warnings_fatal = true;
        true
    }

    /// Exit 2 when redlab refused to write: the report is out by then, so
    /// CI still shows why.
    fn refused(&self) -> Option<String> {
        self.refused.clone()
    }

    fn sections(&self) -> Vec<Section> {
        let mut findings = Section::new("Findings", &["check", "finding", "verdict", "reason"]);
        for r in &self.checks {
            for c in &r.items {
                findings.row(vec![
                    r.name.clone(),
                    c.name.clone(),
                    c.verdict.as_str().into(),
                    c.reason.clone(),
                ]);
            }
        }
        let mut out: Vec<Section> = self
            .checks
            .iter()
            .flat_map(|r| {
                // Read back from JSON, a step has no tables: rebuild them from its details.
                if r.sections.is_empty() {
                    figures::sections(r)
                } else {
                    r.sections.clone()
                }
            })
            .collect();
        out.push(findings);
        out
    }

    fn figures(&self) -> Vec<crate::report::Figure> {
        figures::figures(self)
    }

    /// A gate: a passing run fits one screen, a failing one leads with
    /// what failed; the tables and findings with -v or in the report file.
    fn compact(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, details: serde_json::Value) -> CheckRun {
        serde_json::from_value(serde_json::json!({
            "name": name, "verdict": "warn", "reason": "r", "elapsed_ms": 1.5,
            "items": [], "details": details,
        }))
        .unwrap()
    }

    /// A saved step's details are read as its probe's type, and written
    /// again as the untyped details were: keys sorted, nothing added.
    #[test]
    fn a_saved_steps_details_are_typed_and_write_back_unchanged() {
        let facts = serde_json::json!([{"name": "master", "host": "127.0.0.1",
            "expected_role": "master", "no_password": true, "connected_replicas": 2,
            "config": {"save": "", "appendonly": "no"}}]);
        let r = run("config-lint", facts.clone());
        let StepDetails::Lint(f) = &r.details else {
            panic!(
                "config-lint's details not read as lint facts: {:?}",
                r.details
            )
        };
        assert_eq!((f[0].name.as_str(), f[0].connected_replicas), ("master", 2));
        assert_eq!(
            serde_json::to_string(&r.details).unwrap(),
            serde_json::to_string(&facts).unwrap()
        );
        assert!(matches!(
            run("reachability", serde_json::Value::Null).details,
            StepDetails::None
        ));
        assert_eq!(serde_json::to_string(&StepDetails::None).unwrap(), "null");
    }

    /// A step this redlab does not know, or details that do not read as
    /// its step's, are kept as written rather than dropped.
    #[test]
    fn unknown_or_unreadable_details_are_kept_as_written() {
        let odd = serde_json::json!({"z": 1, "a": [true]});
        for name in ["a-step-from-elsewhere", "keycount"] {
            let r = run(name, odd.clone());
            assert!(matches!(r.details, StepDetails::Unread(_)), "{name}");
            assert_eq!(serde_json::to_value(&r.details).unwrap(), odd);
        }
    }
}
