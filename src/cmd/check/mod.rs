//! check: one CI gate. Every check in `CHECKS` runs in order on one survey
//! of the topology, each ends pass, warn or fail with a one-line reason, and
//! the report is one testcase per check in JUnit.

mod lint;
mod steps;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::cli::{CheckArgs, FailOn};
use crate::cmd::{keycount, replicate_check};
use crate::ctx::Ctx;
use crate::report::{Check, Details, Report, Section, Verdict};
use crate::survey::{require_master, NodeState};

/// What a check gets: the configuration, the run context, and one survey of
/// every node (connections included) taken before any check ran.
pub struct Env<'a> {
    pub cfg: &'a Config,
    pub ctx: &'a Ctx,
    /// `states[0]` is the master, then the replicas in topology order.
    pub states: &'a [NodeState],
}

/// What a check found: findings named `<node>.<aspect>`, each with its own
/// verdict. The check's verdict is the worst of them.
#[derive(Default)]
pub struct Outcome {
    pub items: Vec<Check>,
    /// The check's reason when every finding passed.
    pub summary: String,
    /// The check's own measurements, for the JSON report.
    pub details: serde_json::Value,
    /// Its tables, for the human renderings.
    pub sections: Vec<Section>,
}

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome>> + 'a>>;

/// One entry of the gate. An `Err` from `run` fails that check with the
/// error's message; the other checks still run.
pub struct Entry {
    /// The name `--skip`/`--only` take and the JUnit testcase shows.
    pub name: &'static str,
    /// Writes to or compares with the master: not run when the master is
    /// unreachable or is not a master (refused before any write).
    pub needs_master: bool,
    pub run: for<'a> fn(&'a Env<'a>) -> CheckFuture<'a>,
}

/// The gate, in the order the checks run.
pub const CHECKS: &[Entry] = &[
    Entry {
        name: "reachability",
        needs_master: false,
        run: |env| Box::pin(steps::reachability(env)),
    },
    Entry {
        name: "replication",
        needs_master: true,
        run: |env| Box::pin(steps::replication(env)),
    },
    Entry {
        name: "keycount",
        needs_master: true,
        run: |env| Box::pin(steps::keycount(env)),
    },
    Entry {
        name: "consistency",
        needs_master: true,
        run: |env| Box::pin(steps::consistency(env)),
    },
    Entry {
        name: "expiry",
        needs_master: true,
        run: |env| Box::pin(steps::expiry(env)),
    },
    Entry {
        name: "throughput",
        needs_master: true,
        run: |env| Box::pin(steps::throughput(env)),
    },
    Entry {
        name: "config-lint",
        needs_master: false,
        run: |env| Box::pin(lint::run(env)),
    },
];

pub struct Config {
    /// Names of the checks to run, in gate order.
    pub selected: Vec<&'static str>,
    pub skipped: Vec<&'static str>,
    pub fail_on: FailOn,
    pub strict: bool,
    pub require_min_replicas: Option<u32>,
    pub replication: replicate_check::Config,
    pub keycount: keycount::Config,
    /// The sampled data comparison (compare).
    pub consistency: crate::cmd::compare::Config,
    /// TTL of the key the expiry check watches.
    pub expiry_ttl: std::time::Duration,
    /// The throughput smoke test: a perf run.
    pub throughput: crate::cmd::perf::Config,
    /// --min-ops: a throughput below it fails.
    pub min_ops: Option<f64>,
    /// Names given to --skip/--only that no check has.
    pub unknown: Vec<String>,
}

impl From<&CheckArgs> for Config {
    fn from(a: &CheckArgs) -> Config {
        let known = |n: &String| CHECKS.iter().any(|e| e.name == n);
        let unknown = a
            .skip
            .iter()
            .chain(&a.only)
            .filter(|n| !known(n))
            .cloned()
            .collect();
        let wanted = |name: &str| {
            (a.only.is_empty() || a.only.iter().any(|o| o == name))
                && !a.skip.iter().any(|s| s == name)
        };
        let (selected, skipped) = CHECKS.iter().map(|e| e.name).partition(|n| wanted(n));
        Config {
            selected,
            skipped,
            fail_on: a.fail_on,
            strict: a.strict,
            require_min_replicas: a.require_min_replicas,
            replication: (&a.replication).into(),
            keycount: (&a.keycount).into(),
            consistency: crate::cmd::compare::Config::sampled(
                a.consistency_sample,
                a.keycount.settle,
            ),
            expiry_ttl: a.expiry_ttl,
            throughput: crate::cmd::perf::Config::smoke(a.baseline.clone(), a.tolerance),
            min_ops: a.min_ops,
            unknown,
        }
    }
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct CheckRun {
    pub name: String,
    pub verdict: Verdict,
    /// One line.
    pub reason: String,
    /// Wall time of this check, ms.
    pub elapsed_ms: f64,
    /// Findings, named `<node>.<aspect>`.
    pub items: Vec<Check>,
    /// The check's own measurements (the replicate-check or keycount details).
    pub details: serde_json::Value,
    #[serde(skip)]
    sections: Vec<Section>,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<CheckDetails>> {
    if !cfg.unknown.is_empty() {
        let names: Vec<&str> = CHECKS.iter().map(|e| e.name).collect();
        bail!(
            "no check named {}: the checks are {}",
            cfg.unknown.join(", "),
            names.join(", ")
        );
    }
    if let Some(path) = &cfg.throughput.args.baseline {
        crate::cmd::perf::read_baseline(path)?;
    }
    let spinner = ctx.progress.spinner("surveying the topology");
    let states = ctx.survey().await;
    spinner.finish();
    let refused = require_master(&states[0]).err().map(|e| format!("{e:#}"));
    let env = Env {
        cfg: &cfg,
        ctx,
        states: &states,
    };
    let mut runs = Vec::new();
    for entry in CHECKS.iter().filter(|e| cfg.selected.contains(&e.name)) {
        let started = Instant::now();
        let outcome = match (&refused, entry.needs_master) {
            (Some(why), true) => Err(anyhow!("not run: {why}")),
            _ => (entry.run)(&env).await,
        };
        runs.push(check_run(entry.name, outcome, started));
    }
    if let Some(c) = steps::restart_guard(&env).await {
        runs.push(c);
    }
    if cfg.fail_on == FailOn::Warn {
        runs.iter_mut().for_each(warnings_fatal);
    }
    let checks = runs
        .iter()
        .map(|r| Check::new(&r.name, r.verdict, &r.reason))
        .collect();
    let details = CheckDetails {
        checks: runs,
        skipped: cfg.skipped.iter().map(|s| s.to_string()).collect(),
        strict: cfg.strict,
        warnings_fatal: cfg.fail_on == FailOn::Warn,
        refused,
    };
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new("check", ctx.manifest(), nodes, checks, details))
}

/// The run's verdict, or exit 2 when redlab refused to write: the report is
/// out by then, so CI still shows why.
pub fn exit(verdict: Verdict, refused: Option<String>) -> Result<Verdict> {
    match refused {
        Some(why) => bail!("{why}"),
        None => Ok(verdict),
    }
}

fn check_run(name: &str, outcome: Result<Outcome>, started: Instant) -> CheckRun {
    let outcome = outcome.unwrap_or_else(|e| Outcome {
        items: vec![Check::fail(name, format!("{e:#}"))],
        ..Outcome::default()
    });
    let verdict = Verdict::worst(outcome.items.iter().map(|c| c.verdict));
    let reason = if verdict == Verdict::Pass {
        outcome.summary
    } else {
        let bad: Vec<String> = outcome
            .items
            .iter()
            .filter(|c| c.verdict == verdict)
            .map(|c| {
                // A reason that names its node already (`master (host:port): ...`) is not prefixed.
                if c.name == name || c.reason.starts_with(&format!("{} (", c.name)) {
                    c.reason.clone()
                } else {
                    format!("{}: {}", c.name, c.reason)
                }
            })
            .collect();
        bad.join("; ")
    };
    CheckRun {
        name: name.to_string(),
        verdict,
        reason,
        elapsed_ms: crate::duration::ms(started.elapsed()),
        items: outcome.items,
        details: outcome.details,
        sections: outcome.sections,
    }
}

fn warnings_fatal(r: &mut CheckRun) {
    if r.verdict == Verdict::Warn {
        r.verdict = Verdict::Fail;
        r.reason = format!("warning made fatal by --fail-on warn: {}", r.reason);
    }
}

impl Details for CheckDetails {
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
        if !self.skipped.is_empty() {
            findings
                .notes
                .push(format!("skipped: {}", self.skipped.join(", ")));
        }
        let mut out: Vec<Section> = self
            .checks
            .iter()
            .flat_map(|r| r.sections.clone())
            .collect();
        out.push(findings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> Config {
        let mut v = vec!["redlab", "check"];
        v.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(v).unwrap().command {
            crate::cli::Command::Check(a) => (&a).into(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn selection_keeps_gate_order_and_names_unknowns() {
        let c = cfg(&["--only", "config-lint,reachability"]);
        assert_eq!(c.selected, vec!["reachability", "config-lint"]);
        assert_eq!(
            c.skipped,
            vec![
                "replication",
                "keycount",
                "consistency",
                "expiry",
                "throughput"
            ]
        );
        let c = cfg(&["--skip", "keycount", "--skip", "nope"]);
        assert_eq!(
            c.selected,
            vec![
                "reachability",
                "replication",
                "consistency",
                "expiry",
                "throughput",
                "config-lint"
            ]
        );
        assert_eq!(c.unknown, vec!["nope"]);
        assert!(
            crate::cli::Cli::try_parse_from(["redlab", "check", "--skip", "a", "--only", "b"])
                .is_err()
        );
        assert_eq!(
            cfg(&["--require-min-replicas"]).require_min_replicas,
            Some(1)
        );
        assert_eq!(
            cfg(&["--require-min-replicas", "2"]).require_min_replicas,
            Some(2)
        );
    }

    #[test]
    fn the_reason_is_the_worst_findings_and_errors_fail_only_their_check() {
        let items = vec![
            Check::pass("replica1.parity", "same"),
            Check::new("master.persistence", Verdict::Warn, "off"),
            Check::fail("master (127.0.0.1:1)", "unused"),
            Check::fail("replica2.parity", "syncing"),
        ];
        let out = Outcome {
            items,
            summary: "all good".into(),
            ..Outcome::default()
        };
        let r = check_run("keycount", Ok(out), Instant::now());
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(
            r.reason,
            "master (127.0.0.1:1): unused; replica2.parity: syncing"
        );
        let r = check_run("config-lint", Err(anyhow!("boom")), Instant::now());
        assert_eq!((r.verdict, r.reason.as_str()), (Verdict::Fail, "boom"));
        let mut w = check_run(
            "config-lint",
            Ok(Outcome {
                items: vec![Check::new("m.x", Verdict::Warn, "w")],
                ..Outcome::default()
            }),
            Instant::now(),
        );
        warnings_fatal(&mut w);
        assert_eq!(w.verdict, Verdict::Fail);
        assert_eq!(w.reason, "warning made fatal by --fail-on warn: m.x: w");
    }
}
