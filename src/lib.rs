//! redlab: test and benchmark a Redis replication topology.
//!
//! `cli` parses, `run` builds the context (topology, lab, progress), runs one
//! subcommand, which returns a typed report, and renders it.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod compare;
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
use report::{AnyReport, Details, Format, Report, Verdict};
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
        Job::Completions(shell) => {
            cli::completions(shell, &mut std::io::stdout());
            return Ok(Outcome::Done(Verdict::Pass));
        }
        Job::Man => {
            cli::man(&mut std::io::stdout())
                .map_err(|e| anyhow::anyhow!("writing the man page: {e}"))?;
            return Ok(Outcome::Done(Verdict::Pass));
        }
        other => other,
    };
    let mut signals = Signals::new()?;
    let g = &settings;
    for n in &g.notes {
        settings.output.narrator().line(n);
    }
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
    let name = job.name();
    let ctx = Ctx {
        topology,
        timeout: g.timeout,
        run_id: run::new_run_id(),
        progress,
        ledger: run::Ledger::default(),
        started: SystemTime::now(),
        started_at: Instant::now(),
        args: run::redacted_args(&std::env::args().collect::<Vec<_>>()),
        command: name,
        say: out.narrator(),
        // A --spawn lab starts empty: there are no user keys to evict, so a
        // large run may fill it (evictions are still reported, as warnings).
        allow_eviction: g.allow_eviction || lab.is_some(),
        discovered: std::sync::Mutex::new(discovered),
        safety: run::safety::State::default(),
        extra_checks: std::sync::Mutex::new(Vec::new()),
        partial: std::sync::Mutex::new(None),
    };
    // A panic must not skip the key removal below: it is caught, and resumed after.
    let work = std::panic::AssertUnwindSafe(dispatch(job, &ctx, lab.as_mut())).catch_unwind();
    // Biased: a subcommand that handles Ctrl-C itself (stats --watch ends
    // cleanly on it) must see it before the interruption below does.
    let result = tokio::select! {
        biased;
        r = work => Some(r),
        _ = signals.recv() => None,
    };
    // A second signal stops the cleanup at once; what remains is reported.
    let cleaned = ctx.cleanup(signals.recv()).await;
    ctx.unregister(cleaned.remaining == 0 && cleaned.error.is_none() && !cleaned.interrupted)
        .await;
    if cleaned.remaining > 0 {
        if let Some(c) = ctx.cleanup_check(&cleaned) {
            eprintln!("redlab: {}", c.reason);
        }
    }
    let mut extra: Vec<report::Check> = ctx
        .extra_checks
        .lock()
        .map(|mut x| std::mem::take(&mut *x))
        .unwrap_or_default();
    extra.extend(ctx.cleanup_check(&cleaned));
    extra.extend(ctx.eviction_checks().await);
    drop(lab);
    match result {
        None => {
            if cleaned.remaining == 0 {
                eprintln!("redlab: interrupted; this run's keys were removed");
            }
            // Whoever waits on the report file (a CI job) still gets one that says so.
            let mut r = interrupted_report(name, &ctx);
            r.add_checks(extra);
            let _ = write_files(out, &r);
            Ok(Outcome::Interrupted)
        }
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        Some(Ok(Ok(mut report))) => {
            report.add_checks(extra);
            let verdict = emit(&settings, report.as_mut())?;
            match report.refused() {
                Some(why) => bail!("{why}"),
                // A subcommand that stopped on a signal with a partial report.
                None if report.interrupted() => Ok(Outcome::Interrupted),
                None => Ok(Outcome::Done(verdict)),
            }
        }
        Some(Ok(Err(e))) => {
            // The report file a CI job waits for still says what happened,
            // with what was measured; the headline is the first cause.
            let mut r = failed_report(name, &ctx, &e);
            r.add_checks(extra);
            let _ = write_files(out, &r);
            Err(e)
        }
    }
}

/// What a run that ended with an error reports.
#[derive(serde::Serialize)]
struct Failed {
    /// The error that ended the run (it exited 2).
    error: String,
    /// What had been measured by then, where the subcommand keeps it.
    partial: Option<serde_json::Value>,
}

impl Details for Failed {
    fn sections(&self) -> Vec<report::Section> {
        Vec::new()
    }
}

fn failed_report(command: &str, ctx: &Ctx, e: &anyhow::Error) -> Report<Failed> {
    let error = format!("{e:#}");
    let checks = vec![report::Check::fail("error", error.clone())];
    let partial = ctx.partial.lock().ok().and_then(|mut p| p.take());
    Report::new(
        command,
        ctx.manifest(),
        Vec::new(),
        checks,
        Failed { error, partial },
    )
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
async fn dispatch(job: Job, ctx: &Ctx, lab: Option<&mut Lab>) -> Result<Box<dyn AnyReport>> {
    fn boxed<D: Details + 'static>(r: Report<D>) -> Box<dyn AnyReport> {
        Box::new(r)
    }
    Ok(match job {
        Job::ReplicateCheck(c) => boxed(cmd::replicate_check::run(c, ctx).await?),
        Job::Keycount(c) => boxed(cmd::keycount::run(c, ctx).await?),
        Job::Lab(c) => boxed(cmd::lab::run(c, ctx).await?),
        Job::Perf(c) => boxed(cmd::perf::run(c, ctx).await?),
        Job::Check(c) => boxed(cmd::check::run(c, ctx).await?),
        Job::Stats(c) => boxed(cmd::stats::run(c, ctx).await?),
        Job::TtlWatch(c) => boxed(cmd::ttl_watch::run(c, ctx).await?),
        Job::Demo(c) => boxed(cmd::demo::run(c, ctx).await?),
        Job::Clean(c) => boxed(cmd::clean::run(c, ctx).await?),
        Job::Compare(c) => boxed(cmd::compare::run(c, ctx).await?),
        Job::Drill(c) => boxed(cmd::drill::run(c, ctx, lab).await?),
        Job::Report(_) | Job::Completions(_) | Job::Man => {
            unreachable!("handled before any run starts")
        }
    })
}

/// Print the report to stdout and write the files asked for; a failing
/// run's report is written too. The rule: stdout gets the report (in
/// --format, else the table) unless `--output PATH` sends it to a file
/// (`--output -` is stdout); `--report [PATH]` writes a copy besides; `-q`
/// silences progress and narration, never the report.
pub(crate) fn emit(settings: &Settings, report: &mut dyn AnyReport) -> Result<Verdict> {
    if settings.fail_on == report::FailOn::Warn {
        report.warnings_fatal();
    }
    let g = &settings.output;
    write_files(g, report)?;
    if g.path.as_ref().is_some_and(|p| p.as_os_str() != "-") {
        return Ok(report.verdict());
    }
    let text = report.render_view(g.format.unwrap_or(Format::Table), g.stdout_view())?;
    print_stdout(text.as_bytes())?;
    Ok(report.verdict())
}

/// Write to stdout; a reader that went away (`| head`) is not redlab's failure.
fn print_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// The files asked for: --output PATH (not `-`) and --report [PATH].
fn write_files(g: &config::Output, report: &dyn AnyReport) -> Result<()> {
    if let Some(path) = g.path.as_ref().filter(|p| p.as_os_str() != "-") {
        report.write_to(path, report::format_for_path(path, g.format))?;
    }
    if let Some(named) = &g.report {
        let (path, f) = match named {
            Some(p) => (p.clone(), report::format_for_path(p, g.format)),
            None => {
                let f = g.format.unwrap_or(Format::Json);
                (report::default_path(report.command(), f), f)
            }
        };
        report.write_to(&path, f)?;
        eprintln!("redlab: report written to {}", path.display());
    }
    Ok(())
}
