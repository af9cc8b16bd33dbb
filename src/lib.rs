//! redlab: test and benchmark a Redis replication topology.
//!
//! `cli` parses, `run` builds the context (topology, lab, progress), runs one
//! subcommand, which returns a typed report, and renders it.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod duration;
pub mod lab;
pub mod latency;
pub mod loadgen;
pub mod replication;
pub mod report;
pub mod run;
pub mod series;
pub mod survey;
pub mod topology;
pub mod ui;

use std::io::{IsTerminal, Write};

use futures_util::FutureExt;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Result};

use cli::Cli;
use config::{Job, Settings};
use lab::{Lab, LabOptions};
use report::{Details, Format, Report, Verdict};
use run::{Ctx, Signals};
use topology::Topology;
use ui::progress::Progress;

/// How a run ended; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done(Verdict),
    Interrupted,
}

impl Outcome {
    /// 0 every check passed (warnings included), 1 a check failed or none
    /// could be performed, 130 interrupted. Errors (exit 2) are the `Err` of `run`.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done(Verdict::Pass | Verdict::Warn) => 0,
            Outcome::Done(Verdict::Fail | Verdict::Skip) => 1,
            Outcome::Interrupted => 130,
        }
    }
}

pub async fn run(cli: Cli) -> Result<Outcome> {
    // Listen before anything starts: a signal during --spawn's start-up must
    // still stop the servers (they sit in their own process group).
    let (settings, job) = config::resolve(&cli)?;
    // Rendering a saved report needs no topology, lab or signal handling.
    let job = match job {
        Job::Report(c) => return cmd::report::run(c, &settings).map(Outcome::Done),
        other => other,
    };
    let mut signals = Signals::new()?;
    let g = &settings;
    let out = &settings.output;
    let is_lab = matches!(job, Job::Lab(_));
    // --sentinel asks Sentinel for the master and replicas (network, bounded by --timeout).
    let mut topology = if is_lab || g.spawn.is_some() {
        Topology::from_spec(&g.topology)?
    } else {
        Topology::resolve(&g.topology, g.timeout).await?
    };
    let progress =
        Progress::new(!out.quiet && !out.machine_stdout() && std::io::stderr().is_terminal());
    let mut lab = if let Some(spawn_replicas) = g.spawn.filter(|_| !is_lab) {
        if g.topology.master.is_some()
            || !g.topology.replicas.is_empty()
            || !g.topology.sentinels.is_empty()
        {
            bail!(
                "--spawn starts its own topology: drop --master/--replica/--sentinel, or drop --spawn"
            );
        }
        if let Some(n) = g.topology.expect_replicas.filter(|n| *n != spawn_replicas) {
            bail!(
                "--expect-replicas {n} but --spawn starts {spawn_replicas} replicas: \
                 set --spawn-replicas {n}, or drop --expect-replicas (the lab asserts its own count)"
            );
        }
        let spinner = progress.spinner(format!(
            "starting a throwaway lab with {spawn_replicas} replicas{}",
            match g.lab.sentinels {
                0 => String::new(),
                n => format!(" and {n} Sentinels"),
            }
        ));
        let start = Lab::start(LabOptions {
            replicas: spawn_replicas,
            password: g.topology.password.clone(),
            sentinels: g.lab.sentinels,
            sentinel_timeouts: g.lab.sentinel_timeouts,
            backlog: g.lab.backlog,
            ..LabOptions::default()
        });
        // Dropping a half-started lab kills what it had started.
        let lab = tokio::select! {
            lab = start => lab?,
            _ = signals.recv() => {
                eprintln!("redlab: interrupted while starting the lab; it was stopped");
                return Ok(Outcome::Interrupted);
            }
        };
        spinner.finish();
        topology = lab.topology();
        Some(lab)
    } else {
        None
    };
    let mut discovered = None;
    if topology.discover && !is_lab {
        match survey::discover(&mut topology, g.timeout).await {
            Ok(master) => discovered = Some(master),
            // `check` reports an unusable master itself, in its report, so CI still gets one.
            Err(_) if matches!(job, Job::Check(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let ctx = Ctx {
        topology,
        timeout: g.timeout,
        run_id: run::new_run_id(),
        progress,
        ledger: run::Ledger::default(),
        started: SystemTime::now(),
        started_at: Instant::now(),
        args: run::redacted_args(&std::env::args().collect::<Vec<_>>()),
        say: ui::narrate::Narrator::new(!out.quiet),
        discovered: std::sync::Mutex::new(discovered),
    };
    // A panic must not skip the key removal below: it is caught, and resumed after.
    let name = job.name();
    let work =
        std::panic::AssertUnwindSafe(dispatch(job, &settings, &ctx, lab.as_mut())).catch_unwind();
    // Biased: a subcommand that handles Ctrl-C itself (stats --watch ends
    // cleanly on it) must see it before the interruption below does.
    let result = tokio::select! {
        biased;
        r = work => Some(r),
        _ = signals.recv() => None,
    };
    let cleaned = ctx.cleanup().await;
    if let Err(e) = &cleaned {
        eprintln!(
            "redlab: warning: could not remove this run's keys ({e}); remove them with: \
             redis-cli --scan --pattern '{}*' | xargs redis-cli unlink",
            ctx.prefix()
        );
    }
    drop(lab);
    match result {
        None => {
            if cleaned.is_ok() {
                eprintln!("redlab: interrupted; this run's keys were removed");
            }
            // Whoever waits on the report file (a CI job) still gets one that says so.
            let _ = emit(&settings, interrupted_report(name, &ctx));
            Ok(Outcome::Interrupted)
        }
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        Some(Ok(r)) => r.map(Outcome::Done),
    }
}

/// What an interrupted run reports: that it did not finish.
#[derive(serde::Serialize)]
struct Interrupted {
    /// Always true: the run was stopped by a signal before it finished.
    interrupted: bool,
}

impl Details for Interrupted {
    fn sections(&self) -> Vec<report::Section> {
        Vec::new()
    }
}

fn interrupted_report(command: &str, ctx: &Ctx) -> Report<Interrupted> {
    let checks = vec![report::Check::fail(
        "interrupted",
        "stopped by a signal before it finished; nothing was concluded",
    )];
    Report::new(
        command,
        ctx.manifest(),
        Vec::new(),
        checks,
        Interrupted { interrupted: true },
    )
}

/// `lab` is the --spawn lab, for the one subcommand that acts on its processes (drill).
async fn dispatch(job: Job, out: &Settings, ctx: &Ctx, lab: Option<&mut Lab>) -> Result<Verdict> {
    match job {
        Job::ReplicateCheck(c) => emit(out, cmd::replicate_check::run(c, ctx).await?),
        Job::Keycount(c) => emit(out, cmd::keycount::run(c, ctx).await?),
        Job::Lab(c) => emit(out, cmd::lab::run(c, ctx).await?),
        Job::Perf(c) => emit(out, cmd::perf::run(c, ctx).await?),
        Job::Check(c) => {
            let report = cmd::check::run(c, ctx).await?;
            let refused = report.details.refused.clone();
            cmd::check::exit(emit(out, report)?, refused)
        }
        Job::Stats(c) => emit(out, cmd::stats::run(c, ctx).await?),
        Job::TtlWatch(c) => emit(out, cmd::ttl_watch::run(c, ctx).await?),
        Job::Demo(c) => emit(out, cmd::demo::run(c, ctx).await?),
        Job::Report(c) => cmd::report::run(c, out),
        Job::Drill(c) => emit(out, cmd::drill::run(c, ctx, lab).await?),
    }
}

/// Print the report to stdout and write the files asked for; a failing run's
/// report is written too.
pub(crate) fn emit<D: Details>(settings: &Settings, mut report: Report<D>) -> Result<Verdict> {
    if settings.fail_on == report::FailOn::Warn {
        report.warnings_fatal();
    }
    let g = &settings.output;
    let to_file = g.path.is_some() || g.report.is_some();
    let stdout_format = if to_file {
        (!g.quiet).then_some(Format::Table)
    } else {
        Some(g.format.unwrap_or(Format::Table))
    };
    if let Some(f) = stdout_format {
        let text = report.render(f)?;
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            // A reader that went away (`| head`) is not redlab's failure.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(anyhow::Error::new(e).context("writing the report to stdout"))
            }
            _ => {}
        }
    }
    if let Some(path) = &g.path {
        report.write_to(path, report::format_for_path(path, g.format))?;
    }
    if let Some(named) = &g.report {
        let (path, f) = match named {
            Some(p) => (p.clone(), report::format_for_path(p, g.format)),
            None => {
                let f = g.format.unwrap_or(Format::Json);
                (report::default_path(&report.command, f), f)
            }
        };
        report.write_to(&path, f)?;
        eprintln!("redlab: report written to {}", path.display());
    }
    Ok(report.verdict)
}
