//! redlab: test and benchmark a Redis replication topology.
//!
//! `cli` parses, `run` builds the context (topology, lab, progress), runs one
//! subcommand, which returns a typed report, and renders it.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod compare;
pub mod ctx;
pub mod duration;
pub mod lab;
pub mod narrate;
pub mod perf;
pub mod progress;
pub mod report;
pub mod stats;
pub mod survey;
mod tls;
pub mod topology;

use std::io::{IsTerminal, Write};

use futures_util::FutureExt;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Result};

use cli::{Cli, Command, Format, GlobalArgs};
use ctx::Ctx;
use lab::{Lab, LabOptions};
use progress::Progress;
use report::{Details, Report, Verdict};
use topology::Topology;

/// How a run ended; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done(Verdict),
    Interrupted,
}

impl Outcome {
    /// 0 every check passed (warnings included), 1 a check failed, 130 interrupted.
    /// Errors (exit 2) are the `Err` of `run`.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done(Verdict::Pass | Verdict::Warn) => 0,
            Outcome::Done(Verdict::Fail) => 1,
            Outcome::Interrupted => 130,
        }
    }
}

pub async fn run(cli: Cli) -> Result<Outcome> {
    // Listen before anything starts: a signal during --spawn's start-up must
    // still stop the servers (they sit in their own process group).
    let mut signals = Signals::new()?;
    let g = &cli.global;
    let mut topology = Topology::from_args(g)?;
    let machine_stdout = g.machine_stdout();
    let progress = Progress::new(!g.quiet && !machine_stdout && std::io::stderr().is_terminal());
    let is_lab = matches!(cli.command, Command::Lab(_));
    let lab = if g.spawn && !is_lab {
        if g.master.is_some() || !g.replicas.is_empty() {
            bail!("--spawn starts its own topology: drop --master/--replica, or drop --spawn");
        }
        let spinner = progress.spinner(format!(
            "starting a throwaway lab with {} replicas",
            g.spawn_replicas
        ));
        let start = Lab::start(LabOptions {
            replicas: g.spawn_replicas,
            password: g.password.clone(),
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
            Err(_) if matches!(cli.command, Command::Check(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let ctx = Ctx {
        topology,
        timeout: g.timeout,
        run_id: ctx::new_run_id(),
        progress,
        ledger: ctx::Ledger::default(),
        started: SystemTime::now(),
        started_at: Instant::now(),
        args: ctx::redacted_args(&std::env::args().collect::<Vec<_>>()),
        discovered: std::sync::Mutex::new(discovered),
    };
    // A panic must not skip the key removal below: it is caught, and resumed after.
    let work = std::panic::AssertUnwindSafe(dispatch(&cli.command, g, &ctx)).catch_unwind();
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
            let _ = emit(g, interrupted_report(&cli.command, &ctx));
            Ok(Outcome::Interrupted)
        }
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        // A subcommand that wrote its own partial report on a signal.
        Some(Ok(Err(e))) if e.is::<StoppedBySignal>() => Ok(Outcome::Interrupted),
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

fn interrupted_report(command: &Command, ctx: &Ctx) -> Report<Interrupted> {
    let checks = vec![report::Check::fail(
        "interrupted",
        "stopped by a signal before it finished; nothing was concluded",
    )];
    Report::new(
        command.name(),
        ctx.manifest(),
        Vec::new(),
        checks,
        Interrupted { interrupted: true },
    )
}

/// A subcommand stopped by a signal after writing its partial report: exit 130.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub(crate) struct StoppedBySignal;

/// SIGINT (Ctrl-C), SIGTERM (timeout, docker stop, a cancelled CI job) and
/// SIGHUP (a closed terminal) all end a run the same way: keys removed,
/// a spawned lab stopped, exit 130.
pub(crate) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

async fn dispatch(command: &Command, g: &GlobalArgs, ctx: &Ctx) -> Result<Verdict> {
    match command {
        Command::ReplicateCheck(a) => emit(g, cmd::replicate_check::run(a.into(), ctx).await?),
        Command::Keycount(a) => emit(g, cmd::keycount::run(a.into(), ctx).await?),
        Command::Lab(a) => emit(g, cmd::lab::run(a, ctx).await?),
        Command::Perf(a) => emit(g, cmd::perf::run(a, ctx).await?),
        Command::Check(a) => {
            let report = cmd::check::run(a.into(), ctx).await?;
            let refused = report.details.refused.clone();
            cmd::check::exit(emit(g, report)?, refused)
        }
        Command::Stats(a) => emit(
            g,
            cmd::stats::run(cmd::stats::Config::new(a, g), ctx).await?,
        ),
        Command::TtlWatch(a) => emit(
            g,
            cmd::ttl_watch::run(cmd::ttl_watch::Config::new(a, g), ctx).await?,
        ),
        Command::Demo(a) => emit(g, cmd::demo::run(cmd::demo::Config::new(a, g), ctx).await?),
        Command::Compare(a) => cmd::compare::exit(g, cmd::compare::run(a.into(), ctx).await?, emit),
    }
}

/// Print the report to stdout and write the files asked for; a failing run's
/// report is written too.
fn emit<D: Details>(g: &GlobalArgs, report: Report<D>) -> Result<Verdict> {
    let to_file = g.output.is_some() || g.report;
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
    if let Some(path) = &g.output {
        report::write_file(
            path,
            &report.render(report::format_for_path(path, g.format))?,
        )?;
    }
    if g.report {
        let f = g.format.unwrap_or(Format::Json);
        let path = report::default_path(&report.command, f);
        report::write_file(&path, &report.render(f)?)?;
        eprintln!("redlab: report written to {}", path.display());
    }
    Ok(report.verdict)
}
