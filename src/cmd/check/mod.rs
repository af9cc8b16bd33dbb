//! check: one CI gate. Every check in `CHECKS` runs in order on one survey
//! of the topology, each ends pass, warn or fail with a one-line reason, and
//! the report is one testcase per check in JUnit.

mod details;
mod figures;
mod steps;

pub use details::{CheckDetails, CheckRun, StepDetails};

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use crate::probe::propagation::{self, sentinels};
use crate::probe::{consistency, parity, throughput};
use crate::report::{Check, Report, Section, Verdict};
use crate::run::safety::RefusedKind;
use crate::run::Ctx;
use crate::survey::{Master, Survey};

/// What a check gets: the configuration, the run context, and one survey of
/// every node (connections included) taken before any check ran.
pub struct Env<'a> {
    pub cfg: &'a Config,
    pub ctx: &'a Ctx,
    pub survey: &'a Survey,
    /// The master, when it answered and is a master (checks that need it
    /// only run then).
    pub master: Option<Master<'a>>,
}

/// What a check found: findings named `<node>.<aspect>`, each with its own
/// verdict. The check's verdict is the worst of them.
#[derive(Default)]
pub struct StepOutcome {
    pub items: Vec<Check>,
    /// The check's reason when every finding passed.
    pub summary: String,
    /// The check's own measurements, for the JSON report.
    pub details: StepDetails,
    /// Its tables, for the human renderings.
    pub sections: Vec<Section>,
}

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<StepOutcome>> + 'a>>;

/// One entry of the gate. An `Err` from `run` fails that check with the
/// error's message; the other checks still run.
pub struct Entry {
    /// The name `--skip`/`--only` take and the JUnit testcase shows.
    pub name: &'static str,
    /// Writes to or compares with the master: not run when the master is
    /// unreachable or is not a master (refused before any write).
    pub needs_master: bool,
    /// Writes keys: skipped, with the reason, where writing is refused (a
    /// full master whose writes would evict user keys, an ACL that could not
    /// remove them); the read-only checks still run.
    pub writes: bool,
    pub run: for<'a> fn(&'a Env<'a>) -> CheckFuture<'a>,
}

/// What the writing checks store at once: probes, one TTL key, a smoke
/// test's 1000 small keys.
const WRITE_BYTES: u64 = 1 << 20;

/// The gate, in the order the checks run.
pub const CHECKS: &[Entry] = &[
    Entry {
        name: "reachability",
        writes: false,
        needs_master: false,
        run: |env| Box::pin(steps::reachability(env)),
    },
    Entry {
        name: "replication",
        writes: true,
        needs_master: true,
        run: |env| Box::pin(steps::replication(env)),
    },
    Entry {
        name: "keycount",
        writes: false,
        needs_master: true,
        run: |env| Box::pin(steps::keycount(env)),
    },
    Entry {
        name: "consistency",
        writes: false,
        needs_master: true,
        run: |env| Box::pin(steps::consistency(env)),
    },
    Entry {
        name: "expiry",
        writes: true,
        needs_master: true,
        run: |env| Box::pin(steps::expiry(env)),
    },
    Entry {
        name: "throughput",
        writes: true,
        needs_master: true,
        run: |env| Box::pin(steps::throughput(env)),
    },
    Entry {
        name: "config-lint",
        writes: false,
        needs_master: false,
        run: |env| Box::pin(steps::config_lint(env)),
    },
];

#[derive(Clone)]
pub struct Config {
    /// Names of the checks to run, in gate order.
    pub selected: Vec<&'static str>,
    pub skipped: Vec<&'static str>,
    pub strict: bool,
    pub require_min_replicas: Option<u32>,
    pub replication: propagation::Config,
    pub keycount: parity::Config,
    /// The sampled data comparison (compare).
    pub consistency: consistency::Config,
    /// TTL of the key the expiry check watches.
    pub expiry_ttl: std::time::Duration,
    /// The throughput smoke test: a perf run.
    pub throughput: throughput::Options,
    /// --min-ops: a throughput below it fails.
    pub min_ops: Option<f64>,
    /// Names given to --skip/--only that no check has.
    pub unknown: Vec<String>,
    /// The `cluster` step (on a cluster only): selected by --skip/--only like the others.
    pub cluster_step: bool,
    /// The `sentinels` step (with Sentinels only): the same.
    pub sentinel_step: bool,
}

/// The step only a cluster has (`sharded::health`): it runs before the
/// per-shard gate, once for the whole cluster.
pub const CLUSTER_STEP: &str = "cluster";

/// The step only a topology with Sentinels has (`--sentinel`, or a lab's
/// own): each Sentinel answers, they agree on the master, the quorum is
/// reachable. It runs right after `reachability`.
pub const SENTINEL_STEP: &str = "sentinels";

/// Whether --skip/--only leave the `cluster` step in.
pub fn cluster_wanted(skip: &[String], only: &[String]) -> bool {
    step_wanted(CLUSTER_STEP, skip, only)
}

/// Whether --skip/--only leave the step `name` in.
pub fn step_wanted(name: &str, skip: &[String], only: &[String]) -> bool {
    (only.is_empty() || only.iter().any(|o| o == name)) && !skip.iter().any(|s| s == name)
}

impl Config {
    /// --skip/--only named a check that does not exist.
    pub fn refuse_unknown(&self) -> Result<()> {
        if !self.unknown.is_empty() {
            let mut names: Vec<&str> = CHECKS.iter().map(|e| e.name).collect();
            names.push(CLUSTER_STEP);
            names.push(SENTINEL_STEP);
            bail!(
                "no check named {}: the checks are {}",
                self.unknown.join(", "),
                names.join(", ")
            );
        }
        Ok(())
    }
}

/// The checks to run, in gate order, the ones left out, and the names given
/// to --skip/--only that no check has.
pub fn select(
    skip: &[String],
    only: &[String],
) -> (Vec<&'static str>, Vec<&'static str>, Vec<String>) {
    let known =
        |n: &String| n == CLUSTER_STEP || n == SENTINEL_STEP || CHECKS.iter().any(|e| e.name == n);
    let unknown = skip
        .iter()
        .chain(only)
        .filter(|n| !known(n))
        .cloned()
        .collect();
    let wanted = |name: &str| {
        (only.is_empty() || only.iter().any(|o| o == name)) && !skip.iter().any(|s| s == name)
    };
    let (selected, skipped) = CHECKS.iter().map(|e| e.name).partition(|n| wanted(n));
    (selected, skipped, unknown)
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<CheckDetails>> {
    cfg.refuse_unknown()?;
    let spinner = ctx.progress.spinner("surveying the topology");
    let survey = ctx.survey().await?;
    spinner.finish();
    let master = survey.master();
    let unusable = master.as_ref().err().map(|e| format!("{e:#}"));
    // A master that does not serve fails the gate (exit 1, `<node>.serving`);
    // one that cannot be used at all is an error (exit 2).
    let refused = master
        .as_ref()
        .err()
        .filter(|e| !crate::run::safety::is_not_serving(e))
        .map(|e| format!("{e:#}"));
    let env = Env {
        cfg: &cfg,
        ctx,
        survey: &survey,
        master: master.ok(),
    };
    let mut runs = Vec::new();
    for entry in CHECKS.iter() {
        // The `sentinels` step goes right after reachability, however
        // --skip/--only chose the others.
        if entry.name == "replication" {
            runs.extend(sentinel_step(&cfg, ctx).await);
        }
        let started = Instant::now();
        if !cfg.selected.contains(&entry.name) {
            // Asked not to run: skipped in every format (JUnit <skipped/>),
            // in gate order; a run with something else checked still passes.
            // No finding of its own: the Checks table says it once.
            runs.push(CheckRun {
                name: entry.name.to_string(),
                verdict: Verdict::Skip,
                reason: "not run: left out by --skip or --only".into(),
                elapsed_ms: 0.0,
                items: Vec::new(),
                details: StepDetails::None,
                sections: Vec::new(),
            });
            continue;
        }
        let outcome = match (&unusable, entry.needs_master, &env.master) {
            (Some(why), true, _) => Err(anyhow!("not run: {why}")),
            (_, _, Some(m)) if entry.writes => match ctx.prepare_writes(m, WRITE_BYTES).await {
                Ok(()) => (entry.run)(&env).await,
                // A master that refuses every write is broken, not full.
                Err(why)
                    if matches!(
                        RefusedKind::of(&why),
                        Some(RefusedKind::WritesRefused | RefusedKind::NotServing)
                    ) =>
                {
                    Ok(StepOutcome {
                        items: vec![Check::fail(entry.name, format!("{why:#}"))],
                        ..StepOutcome::default()
                    })
                }
                Err(why) => Ok(StepOutcome {
                    items: vec![Check::skip(entry.name, format!("not run: {why:#}"))],
                    ..StepOutcome::default()
                }),
            },
            _ => (entry.run)(&env).await,
        };
        let outcome = outcome.or_else(|e| hidden_info(entry.name, e, cfg.strict));
        runs.push(check_run(entry.name, outcome, started));
    }
    if let Some(c) = steps::restart_guard(&env).await {
        runs.push(c);
    }
    let checks = runs
        .iter()
        .map(|r| Check::new(&r.name, r.verdict, &r.reason))
        .collect();
    let details = CheckDetails {
        checks: runs,
        skipped: cfg.skipped.iter().map(|s| s.to_string()).collect(),
        strict: cfg.strict,
        // --fail-on warn is the run's to apply (app::emit), to the report
        // as a whole: `Details::warnings_fatal` below.
        warnings_fatal: false,
        refused,
    };
    Ok(Report::new(
        "check",
        ctx.manifest(),
        survey.infos(),
        checks,
        details,
    ))
}

/// A step that could not run because a node's INFO hides a section it
/// reads (a managed service, a proxy): skipped, naming the node and the
/// section (a failure with --strict). Any other error stays an error.
fn hidden_info(name: &str, e: anyhow::Error, strict: bool) -> Result<StepOutcome> {
    let why = crate::run::Measured::error(&e)
        .chain()
        .filter_map(|c| c.downcast_ref::<crate::client::NodeError>())
        .find(|n| n.kind == crate::client::ErrorKind::InfoHidden)
        .and_then(|n| n.restricted("INFO"));
    let Some(why) = why else {
        return Err(e);
    };
    let item = if strict {
        Check::fail(
            name,
            format!("{why} (--strict fails a step that cannot run)"),
        )
    } else {
        Check::skip(name, format!("not run: {why}"))
    };
    Ok(StepOutcome {
        items: vec![item],
        ..StepOutcome::default()
    })
}

/// The `sentinels` step, when the topology has Sentinels: a row in every
/// format, skipped when --skip/--only leave it out.
async fn sentinel_step(cfg: &Config, ctx: &Ctx) -> Option<CheckRun> {
    let set = ctx.topology.sentinel.as_ref()?;
    let started = Instant::now();
    if !cfg.sentinel_step {
        return Some(CheckRun {
            name: SENTINEL_STEP.to_string(),
            verdict: Verdict::Skip,
            reason: "not run: left out by --skip or --only".into(),
            elapsed_ms: 0.0,
            items: Vec::new(),
            details: StepDetails::None,
            sections: Vec::new(),
        });
    }
    let _spinner = ctx.progress.spinner("sentinels: asking each Sentinel");
    let (items, rows) = sentinels::checks(set, &ctx.topology.master, ctx.timeout).await;
    let answered = rows.iter().filter(|r| r.quorum.is_some()).count() as u64;
    let outcome = StepOutcome {
        summary: format!(
            "{} of {} answer, agree on the master under test, and can reach the quorum",
            answered,
            crate::report::plural(rows.len() as u64, "Sentinel")
        ),
        items,
        sections: vec![sentinels::section(&rows)],
        details: StepDetails::Sentinels(rows),
    };
    Some(check_run(SENTINEL_STEP, Ok(outcome), started))
}

pub(crate) fn check_run(name: &str, outcome: Result<StepOutcome>, started: Instant) -> CheckRun {
    let outcome = outcome.unwrap_or_else(|e| StepOutcome {
        items: vec![Check::fail(name, format!("{e:#}"))],
        ..StepOutcome::default()
    });
    let verdict = Verdict::worst(outcome.items.iter().map(|c| c.verdict));
    let skipped: Vec<&str> = outcome
        .items
        .iter()
        .filter(|c| c.verdict == Verdict::Skip)
        .map(|c| c.name.as_str())
        .collect();
    let reason = if verdict == Verdict::Pass && !skipped.is_empty() {
        // A pass over part of the topology says which part it did not see.
        format!("{}; not checked: {}", outcome.summary, skipped.join(", "))
    } else if verdict == Verdict::Pass {
        outcome.summary
    } else if outcome.items.is_empty() {
        "not run: there was nothing to check".to_string()
    } else if verdict == Verdict::Skip {
        outcome
            .items
            .iter()
            .map(|c| c.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
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

#[cfg(test)]
mod tests {
    use super::*;
    use details::warnings_fatal;

    #[test]
    fn a_hidden_info_section_skips_the_step_and_strict_fails_it() {
        use crate::client::{ErrorKind, NodeError};
        let hidden = || {
            let e = NodeError::new(
                "master",
                "10.0.0.1:6379",
                ErrorKind::InfoHidden,
                crate::client::hidden_message(&["keyspace".into()]),
            );
            anyhow::Error::new(e).context("reading key counts")
        };
        let skip = hidden_info("keycount", hidden(), false).unwrap();
        assert_eq!(skip.items[0].verdict, Verdict::Skip);
        assert_eq!(
            skip.items[0].reason,
            "not run: master: INFO keyspace answered without its section (hidden by the provider or a proxy): allow it to run this step"
        );
        let strict = hidden_info("keycount", hidden(), true).unwrap();
        assert_eq!(strict.items[0].verdict, Verdict::Fail);
        assert!(strict.items[0].reason.contains("--strict"));
        let other = NodeError::new("master", "a", ErrorKind::Timeout, "no answer");
        assert!(hidden_info("keycount", anyhow::Error::new(other), false).is_err());
    }

    #[test]
    fn the_reason_is_the_worst_findings_and_errors_fail_only_their_check() {
        let items = vec![
            Check::pass("replica1.parity", "same"),
            Check::new("master.persistence", Verdict::Warn, "off"),
            Check::fail("master (127.0.0.1:1)", "unused"),
            Check::fail("replica2.parity", "syncing"),
        ];
        let out = StepOutcome {
            items,
            summary: "all good".into(),
            ..StepOutcome::default()
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
            Ok(StepOutcome {
                items: vec![Check::new("m.x", Verdict::Warn, "w")],
                ..StepOutcome::default()
            }),
            Instant::now(),
        );
        warnings_fatal(&mut w);
        assert_eq!(w.verdict, Verdict::Fail);
        assert_eq!(w.reason, "warning made fatal by --fail-on warn: m.x: w");
    }

    /// --fail-on warn is applied once, by the run's emit, to the report as
    /// a whole: the step and its line in the checks fail with the same
    /// words, and nothing is made fatal twice.
    #[test]
    fn fail_on_warn_reaches_the_steps_once() {
        let run = |name: &str, v: Verdict| {
            let out = StepOutcome {
                items: vec![Check::new(format!("m.{name}"), v, "w")],
                ..StepOutcome::default()
            };
            check_run(name, Ok(out), Instant::now())
        };
        let runs = vec![
            run("config-lint", Verdict::Warn),
            run("keycount", Verdict::Pass),
        ];
        let checks = runs
            .iter()
            .map(|r| Check::new(&r.name, r.verdict, &r.reason))
            .collect();
        let details = CheckDetails {
            checks: runs,
            skipped: Vec::new(),
            strict: false,
            warnings_fatal: false,
            refused: None,
        };
        let manifest = crate::report::Manifest {
            redlab_version: "0.1.0".into(),
            started_at: "2026-12-07T13:00:00Z".into(),
            duration_ms: 1.0,
            host: "ci".into(),
            args: vec!["redlab".into()],
            run_id: "abc".into(),
            timings: Vec::new(),
        };
        let mut r = Report::new("check", manifest, Vec::new(), checks, details);
        assert_eq!(r.verdict, Verdict::Warn);
        r.warnings_fatal();
        r.warnings_fatal();
        let fatal = "warning made fatal by --fail-on warn: m.config-lint: w";
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(
            (r.checks[0].verdict, r.checks[0].reason.as_str()),
            (Verdict::Fail, fatal)
        );
        let step = &r.details.checks[0];
        assert_eq!((step.verdict, step.reason.as_str()), (Verdict::Fail, fatal));
        assert_eq!(r.details.checks[1].verdict, Verdict::Pass);
        assert_eq!(r.checks[1].verdict, Verdict::Pass);
        assert!(r.details.warnings_fatal);
    }
}
