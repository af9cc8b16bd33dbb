//! One run, argv to outcome: settings resolved, the topology resolved once
//! (a --spawn lab, Sentinel, discovery, a cluster), the context built, the
//! subcommand run (on every shard of a cluster), keys cleaned up, the report
//! emitted.

use futures_util::FutureExt;
use std::io::IsTerminal;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Result};

use super::cli::Cli;
use super::emit::{emit, write_files};
use super::job::{Kind, Mode};
use super::settings::{self, Settings};
use super::shards::follow_masters;
use super::target::{self, Target};
use super::Outcome;
use crate::report::{self, AnyReport, Details, Report};
use crate::run::{self, Ctx, Signals};
use crate::sharded::in_shard;
use crate::topology::Topology;
use crate::ui::progress::Progress;
use crate::{cmd, discover, serving};

pub async fn run(cli: Cli) -> Result<Outcome> {
    // Listen before anything starts: a signal during --spawn's start-up must
    // still stop the servers (they sit in their own process group).
    let (settings, mode) = settings::resolve(&cli)?;
    run::namespace::set(&settings.prefix);
    // Rendering a saved report needs no topology, lab or signal handling.
    let job = match mode {
        Mode::Special(s) => return s.run(&settings),
        Mode::Run(job) => job,
    };
    let kind = job.kind();
    let mut signals = Signals::new()?;
    let g = &settings;
    report::set_write_bound(g.timeout);
    for n in &g.notes {
        settings.output.narrator().line(n);
    }
    let out = &settings.output;
    let progress =
        Progress::new(!out.quiet && !out.machine_stdout() && std::io::stderr().is_terminal());
    let Some(target) = target::resolve(g, kind, progress, &mut signals).await? else {
        return Ok(Outcome::Interrupted);
    };
    let Target {
        topology,
        cluster,
        discovered,
        mut labs,
    } = target;
    let name = kind.name;
    let run_id = run::new_run_id();
    let started = (SystemTime::now(), Instant::now());
    let args = run::redacted_args(&std::env::args().collect::<Vec<_>>());
    let cancel = tokio_util::sync::CancellationToken::new();
    let make_ctx = |topology: Topology,
                    shard: Option<run::ShardScope>,
                    discovered: Option<crate::survey::NodeState>,
                    progress: Progress| Ctx {
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
        writes: kind.writes,
        removes_leftovers: kind.removes_leftovers,
        say: out.narrator(),
        // A --spawn lab starts empty: there are no user keys to evict, so a
        // large run may fill it (evictions are still reported, as warnings).
        allow_eviction: g.allow_eviction || labs.replication.is_some() || labs.cluster.is_some(),
        discovered,
        safety: run::safety::State::default(),
        cancel: cancel.clone(),
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
                make_ctx(s.topology.clone(), Some(scope), None, Progress::new(false))
            })
            .collect(),
        None => vec![make_ctx(topology, None, discovered, progress)],
    };
    // What each Sentinel answered when the topology was resolved, first
    // among the run's own checks.
    let sentinels = match &cluster {
        Some(_) => Vec::new(),
        None => sentinel_checks(kind, &ctxs[0].topology),
    };
    let work: Work<'_> = match &cluster {
        Some(c) => Box::pin(super::shards::dispatch(job, c, &ctxs, progress)),
        None => Box::pin(job.run(&ctxs[0], labs.replication.as_mut())),
    };
    // A panic must not skip the key removal below: it is caught, and resumed after.
    let mut work = Box::pin(std::panic::AssertUnwindSafe(work).catch_unwind());
    let result = tokio::select! {
        biased;
        r = &mut work => Some(r),
        _ = signals.recv() => None,
    };
    // The first signal cancels the run. One that ends by itself on it
    // (compare's partial report, stats --watch's last snapshot) is awaited
    // until it does, or until a second signal; any other is stopped here.
    let result = match result {
        None if kind.ends_on_cancel => {
            cancel.cancel();
            tokio::select! {
                biased;
                r = &mut work => Some(r),
                _ = signals.recv() => None,
            }
        }
        other => other,
    };
    // The subcommand's borrows (the --spawn lab) end here.
    drop(work);
    if let Some(c) = &cluster {
        // A failover during the run moved a shard's master: clean up there.
        follow_masters(c, &ctxs).await;
    }
    let mut extra: Vec<report::Check> = sentinels;
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
        // Dead runs' leftovers the first survey looked for, then the
        // registry's last write and the eviction counters: at once.
        let end = async {
            tokio::join!(
                ctx.leftovers(),
                ctx.unregister(clean),
                ctx.eviction_checks()
            )
        };
        let (leftovers, _, evictions) =
            crate::timings::timed("registry: unregister, evictions", end).await;
        if cleaned.remaining > 0 {
            if let Some(c) = ctx.cleanup_check(&cleaned) {
                eprintln!("redlab: {}", c.reason);
            }
        }
        // Nodes a survey found not serving, the leftovers, the cleanup, the evictions.
        let mut mine = ctx.safety.serving_checks();
        mine.extend(leftovers);
        mine.extend(ctx.cleanup_check(&cleaned));
        mine.extend(evictions);
        match &ctx.shard {
            Some(s) => extra.extend(mine.into_iter().map(|c| in_shard(&s.name, c))),
            None => extra.extend(mine),
        }
    }
    drop(labs);
    conclude(result, kind, &ctxs[0], extra, all_removed, &settings)
}

/// How the job ended, reported: its report emitted with the run's own
/// checks, or the interrupted or failed run's report written (exit 130, 2).
fn conclude(
    result: Option<std::thread::Result<Result<Box<dyn AnyReport>>>>,
    kind: Kind,
    ctx: &Ctx,
    extra: Vec<report::Check>,
    all_removed: bool,
    settings: &Settings,
) -> Result<Outcome> {
    let (name, out) = (kind.name, &settings.output);
    match result {
        None => {
            if kind.removes_leftovers {
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
            let verdict = match emit(settings, report.as_mut()) {
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
        Some(Ok(Err(e))) => failed(e, kind, ctx, extra, settings),
    }
}

/// The report of a run an error ended, with what the error carried
/// (`run::Measured`): a node that does not serve fails a checking
/// subcommand (exit 1); any other error is the run's (exit 2).
fn failed(
    e: anyhow::Error,
    kind: Kind,
    ctx: &Ctx,
    extra: Vec<report::Check>,
    settings: &Settings,
) -> Result<Outcome> {
    let (name, out) = (kind.name, &settings.output);
    let (found, e) = run::Measured::split(e);
    match e {
        e if !kind.writes && run::safety::is_not_serving(&e) => {
            let mut r = failed_report(name, ctx, &e, found);
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
            let verdict = emit(settings, &mut r)?;
            Ok(Outcome::Done(verdict))
        }
        e => {
            // The report file a CI job waits for still says what happened,
            // with what was measured; the headline is the first cause.
            let mut r = failed_report(name, ctx, &e, found);
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
fn sentinel_checks(kind: Kind, topology: &Topology) -> Vec<report::Check> {
    if kind.asks_sentinels {
        return Vec::new();
    }
    match &topology.sentinel {
        Some(set) => match discover::sentinel::observed(set) {
            Some(seen) => cmd::replicate_check::sentinels::evaluate(set, &topology.master, seen).0,
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// A subcommand's run, on one topology or on every shard of a cluster.
type Work<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<dyn AnyReport>>> + 'a>>;

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

fn failed_report(command: &str, ctx: &Ctx, e: &anyhow::Error, found: run::Found) -> Report<Failed> {
    let error = format!("{e:#}");
    let checks = vec![report::Check::fail("error", error.clone())];
    // The nodes as surveyed: the report of a run that lost its master says
    // what the topology was.
    let nodes = match found.nodes {
        n if n.is_empty() => ctx.safety.first_infos(),
        n => n,
    };
    Report::new(
        command,
        ctx.manifest(),
        nodes,
        checks,
        Failed {
            error,
            partial: found.partial,
        },
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
