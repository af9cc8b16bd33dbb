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
pub mod serving;
pub mod survey;
pub mod topology;
pub mod ui;
pub mod web;

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
    run::namespace::set(&settings.prefix);
    // Rendering a saved report needs no topology, lab or signal handling.
    let job = match job {
        Job::Report(c) => return cmd::report::run(c, &settings).map(Outcome::Done),
        Job::Completions(shell) => {
            cli::completions(shell, &mut std::io::stdout());
            return Ok(Outcome::Done(Verdict::Pass));
        }
        Job::Man(path) => {
            cli::man(&path, &mut std::io::stdout())?;
            return Ok(Outcome::Done(Verdict::Pass));
        }
        other => other,
    };
    let mut signals = Signals::new()?;
    let g = &settings;
    report::set_write_bound(g.timeout);
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
    let mut labs = match g.spawn.filter(|_| !is_lab) {
        Some(replicas) => match spawn(g, replicas, progress, &mut signals).await? {
            Some(l) => l,
            None => return Ok(Outcome::Interrupted),
        },
        None => Labs::default(),
    };
    if let Some(l) = &labs.replication {
        topology = l.topology();
    }
    let mut discovered = None;
    let mut cluster = None;
    if let Some(l) = &labs.cluster {
        let shape = l.shape();
        let seed = l.seed();
        let c =
            topology::cluster::discover(&seed, Some(shape.replicas), Some(shape.shards), g.timeout);
        cluster = Some(c.await?);
    } else if g.topology.cluster && !is_lab {
        topology.master.cluster = true;
        cluster = Some(whole_cluster(&topology.master, g).await?);
    } else if topology.discover && !is_lab {
        match survey::discover(&mut topology, g.timeout).await {
            // A URL given alone that is a cluster node: the whole cluster.
            Ok(seed) if seed.is_cluster() => {
                topology.master.cluster = true;
                cluster = Some(whole_cluster(&topology.master, g).await?);
            }
            Ok(master) => discovered = Some(master),
            // `check` reports an unusable master itself, in its report, so CI still gets one.
            // So does every subcommand for a master that does not serve
            // (the survey says so again, in its way); a refused topology
            // (two replicas at one address) is an error for every one.
            Err(e)
                if (matches!(job, Job::Check(_)) || serving::NotServing::of(&e).is_some())
                    && e.downcast_ref::<survey::Refusal>().is_none() => {}
            Err(e) => return Err(e),
        }
    }
    let name = job.name();
    let run_id = run::new_run_id();
    let started = (SystemTime::now(), Instant::now());
    let args = run::redacted_args(&std::env::args().collect::<Vec<_>>());
    let make_ctx = |topology: Topology, shard: Option<run::ShardScope>, progress: Progress| Ctx {
        topology,
        shard,
        timeout: g.timeout,
        run_id: run_id.clone(),
        progress,
        ledger: run::Ledger::default(),
        started: started.0,
        started_at: started.1,
        args: args.clone(),
        command: name,
        say: out.narrator(),
        // A --spawn lab starts empty: there are no user keys to evict, so a
        // large run may fill it (evictions are still reported, as warnings).
        allow_eviction: g.allow_eviction || labs.replication.is_some() || labs.cluster.is_some(),
        discovered: std::sync::Mutex::new(None),
        safety: run::safety::State::default(),
        extra_checks: std::sync::Mutex::new(Vec::new()),
        partial: std::sync::Mutex::new(None),
        last_nodes: std::sync::Mutex::new(Vec::new()),
    };
    let ctxs: Vec<Ctx> = match &cluster {
        // Shards run at once: only the cluster's own spinner is drawn.
        Some(c) => c
            .shards
            .iter()
            .map(|s| {
                let scope = run::ShardScope {
                    name: s.name.clone(),
                    tag: s.tag.clone(),
                };
                make_ctx(s.topology.clone(), Some(scope), Progress::new(false))
            })
            .collect(),
        None => {
            let sentinels = sentinel_checks(&job, &topology);
            let ctx = make_ctx(topology, None, progress);
            if let Ok(mut x) = ctx.extra_checks.lock() {
                x.extend(sentinels);
            }
            *ctx.discovered.lock().unwrap_or_else(|e| e.into_inner()) = discovered;
            vec![ctx]
        }
    };
    let work: Work<'_> = match &cluster {
        Some(c) => Box::pin(cmd::cluster::dispatch(job, c, &ctxs, progress)),
        None => Box::pin(dispatch(job, &ctxs[0], labs.replication.as_mut())),
    };
    // A panic must not skip the key removal below: it is caught, and resumed after.
    let work = std::panic::AssertUnwindSafe(work).catch_unwind();
    // Biased: a subcommand that handles Ctrl-C itself (stats --watch ends
    // cleanly on it) must see it before the interruption below does.
    let result = tokio::select! {
        biased;
        r = work => Some(r),
        _ = signals.recv() => None,
    };
    if let Some(c) = &cluster {
        // A failover during the run moved a shard's master: clean up there.
        cmd::cluster::follow_masters(c, &ctxs).await;
    }
    let mut extra: Vec<report::Check> = Vec::new();
    let mut all_removed = true;
    let mut stopped = false;
    for ctx in &ctxs {
        // A second signal stops the cleanup at once; what remains is reported.
        let cleaned = if stopped {
            ctx.cleanup(std::future::ready(())).await
        } else {
            ctx.cleanup(signals.recv()).await
        };
        stopped |= cleaned.interrupted;
        let clean = cleaned.remaining == 0 && cleaned.error.is_none() && !cleaned.interrupted;
        all_removed &= cleaned.remaining == 0;
        // The registry's last write and the eviction counters: at once.
        let end = async { tokio::join!(ctx.unregister(clean), ctx.eviction_checks()) };
        let (_, evictions) = run::timings::timed("registry: unregister, evictions", end).await;
        if cleaned.remaining > 0 {
            if let Some(c) = ctx.cleanup_check(&cleaned) {
                eprintln!("redlab: {}", c.reason);
            }
        }
        let mut mine: Vec<report::Check> = ctx
            .extra_checks
            .lock()
            .map(|mut x| std::mem::take(&mut *x))
            .unwrap_or_default();
        mine.extend(ctx.cleanup_check(&cleaned));
        mine.extend(evictions);
        match &ctx.shard {
            Some(s) => extra.extend(mine.into_iter().map(|c| cmd::cluster::in_shard(&s.name, c))),
            None => extra.extend(mine),
        }
    }
    drop(labs);
    let ctx = &ctxs[0];
    match result {
        None => {
            if name == "clean" {
                // clean writes nothing of its own: what it was removing is
                // still there in part.
                eprintln!(
                    "redlab: interrupted; clean stopped before it was done, so keys of dead runs \
                     may remain: run `redlab clean` again to finish"
                );
            } else if all_removed {
                eprintln!("redlab: interrupted; this run's keys were removed");
            }
            // Whoever waits on the report file (a CI job) still gets one that says so.
            let mut r = interrupted_report(name, ctx);
            r.add_checks(extra);
            let _ = write_files(out, &r);
            Ok(Outcome::Interrupted)
        }
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        Some(Ok(Ok(mut report))) => {
            report.add_checks(extra);
            let verdict = match emit(&settings, report.as_mut()) {
                // --output to a FIFO nobody read, and a signal came.
                Err(e) if e.is::<report::WriteInterrupted>() => {
                    eprintln!("redlab: {e:#}");
                    return Ok(Outcome::Interrupted);
                }
                other => other?,
            };
            match report.refused() {
                Some(why) => bail!("{why}"),
                // A subcommand that stopped on a signal with a partial report.
                None if report.interrupted() => Ok(Outcome::Interrupted),
                None => Ok(Outcome::Done(verdict)),
            }
        }
        // A node that does not serve fails a checking subcommand (exit 1),
        // with its report; a writing one refused it (exit 2, below).
        Some(Ok(Err(e))) if !run::writes_by_design(name) && run::safety::is_not_serving(&e) => {
            let mut r = failed_report(name, ctx, &e);
            let serving = match serving::NotServing::of(&e) {
                Some(n) => n.check(),
                None => report::Check::fail(
                    format!("{}.serving", ctx.topology.master.name),
                    format!("{e:#}"),
                ),
            };
            r.checks.clear();
            if !extra.iter().any(|c| c.name == serving.name) {
                r.add_checks(vec![serving]);
            }
            r.add_checks(extra);
            let verdict = emit(&settings, &mut r)?;
            Ok(Outcome::Done(verdict))
        }
        Some(Ok(Err(e))) => {
            // The report file a CI job waits for still says what happened,
            // with what was measured; the headline is the first cause.
            let mut r = failed_report(name, ctx, &e);
            r.add_checks(extra);
            let _ = write_files(out, &r);
            Err(e)
        }
    }
}

/// `--sentinel` given: what each Sentinel answered when the topology was
/// resolved, asserted in every subcommand's report (replicate-check and
/// check ask them again themselves), so a silent or disagreeing Sentinel is
/// never left out of a run that went through them.
fn sentinel_checks(job: &Job, topology: &Topology) -> Vec<report::Check> {
    if matches!(job, Job::Check(_) | Job::ReplicateCheck(_) | Job::Lab(_)) {
        return Vec::new();
    }
    match &topology.sentinel {
        Some(set) => match &set.observed {
            Some(seen) => cmd::replicate_check::sentinels::evaluate(set, &topology.master, seen).0,
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// A subcommand's run, on one topology or on every shard of a cluster.
type Work<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn AnyReport>>> + 'a>>;

/// The labs a --spawn run started (one of them), stopped when dropped.
/// The whole cluster a node belongs to, with the shape the user asserted.
async fn whole_cluster(seed: &topology::Node, g: &Settings) -> Result<topology::Cluster> {
    let t = &g.topology;
    topology::cluster::discover(seed, t.expect_replicas, t.expect_shards, g.timeout).await
}

#[derive(Default)]
struct Labs {
    replication: Option<Lab>,
    cluster: Option<lab::ClusterLab>,
}

/// Start the --spawn lab; None when a signal interrupted its start (it was stopped).
async fn spawn(
    g: &Settings,
    replicas: usize,
    progress: Progress,
    signals: &mut Signals,
) -> Result<Option<Labs>> {
    let t = &g.topology;
    if t.master.is_some() || !t.replicas.is_empty() || !t.sentinels.is_empty() {
        bail!(
            "--spawn starts its own topology: drop --master/--replica/--sentinel, or drop --spawn"
        );
    }
    if let Some(n) = t.expect_replicas.filter(|n| *n != replicas) {
        bail!(
            "--expect-replicas {n} but --spawn starts {replicas} replicas{}: \
             set --spawn-replicas {n}, or drop --expect-replicas (the lab asserts its own count)",
            if t.cluster { " per shard" } else { "" }
        );
    }
    if t.cluster {
        let shards = g.lab.shards;
        if let Some(n) = t.expect_shards.filter(|n| *n != shards) {
            bail!(
                "--expect-shards {n} but --spawn starts {shards} shards: set --spawn-shards {n}, \
                 or drop --expect-shards (the lab asserts its own shape)"
            );
        }
        let spinner = progress.spinner(format!(
            "starting a throwaway cluster of {shards} shards, each a master and {replicas} replicas"
        ));
        let start = lab::ClusterLab::start(lab::ClusterLabOptions {
            shards,
            replicas,
            password: t.password.clone(),
            ..lab::ClusterLabOptions::default()
        });
        let lab = tokio::select! {
            lab = start => lab?,
            _ = signals.recv() => {
                eprintln!("redlab: interrupted while starting the lab; it was stopped");
                return Ok(None);
            }
        };
        spinner.finish();
        return Ok(Some(Labs {
            cluster: Some(lab),
            ..Labs::default()
        }));
    }
    let spinner = progress.spinner(format!(
        "starting a throwaway lab with {replicas} replicas{}",
        match g.lab.sentinels {
            0 => String::new(),
            n => format!(" and {n} Sentinels"),
        }
    ));
    let start = Lab::start(LabOptions {
        replicas,
        password: t.password.clone(),
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
            return Ok(None);
        }
    };
    spinner.finish();
    Ok(Some(Labs {
        replication: Some(lab),
        ..Labs::default()
    }))
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
    // The nodes as last seen: the report of a run that lost its master says
    // what the topology was.
    let nodes = ctx
        .last_nodes
        .lock()
        .map(|mut n| std::mem::take(&mut *n))
        .unwrap_or_default();
    Report::new(
        command,
        ctx.manifest(),
        nodes,
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
        Job::Web(c) => boxed(web::run(c, std::slice::from_ref(ctx), None).await?),
        Job::Clean(c) => boxed(cmd::clean::run(c, ctx).await?),
        Job::Compare(c) => boxed(cmd::compare::run(c, ctx).await?),
        Job::Drill(c) => boxed(cmd::drill::run(c, ctx, lab).await?),
        Job::Report(_) | Job::Completions(_) | Job::Man(_) => {
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
    if let Some(path) = g.path.as_ref().filter(|p| p.as_os_str() != "-") {
        // The report went to a file: the terminal (or the CI log) still
        // learns the verdict and where to read the rest, in every format.
        eprintln!(
            "redlab {}: {}\nredlab: report written to {}",
            report.command(),
            report.verdict().as_str(),
            path.display()
        );
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
