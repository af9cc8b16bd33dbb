//! The table of subcommands: one enum (`Job`) owns each subcommand's name,
//! its run, how it runs on a cluster and what the run around it must know
//! about it (`Kind`). The special modes that are not runs (a saved report
//! rendered again, completions, the manual) stand apart as `Special`: they
//! need no topology, lab or signal handling.
//!
//! Adding a subcommand: its arguments in `cli.rs`, its `Job` variant with its
//! row in `kind` and its arm in `run` here (plus `shards::dispatch` when it
//! runs on a cluster), its config built in `settings::job`.

use anyhow::Result;

use super::cli::{self, ShellArg};
use super::emit::emit;
use super::rerender;
use super::settings::Settings;
use super::Outcome;
use crate::cmd::compare as compare_cmd;
use crate::cmd::{
    check, clean, demo, drill, keycount, lab, perf, replicate_check, stats, ttl_watch,
};
use crate::report::{AnyReport, Details, Report, Verdict};
use crate::run::Ctx;

/// What the command line asks for: a run, or a special mode. Built once.
#[allow(clippy::large_enum_variant)]
pub enum Mode {
    Run(Job),
    Special(Special),
}

impl Mode {
    /// The subcommand as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Run(job) => job.name(),
            Mode::Special(s) => s.name(),
        }
    }
}

/// The modes that are not runs: nothing is measured, no server contacted.
pub enum Special {
    /// Render a saved report again, compare two, or merge a split load's.
    Report(rerender::Config),
    /// Print a completion script.
    Completions(ShellArg),
    /// Print the manual page, or a subcommand's.
    Man(Vec<String>),
}

impl Special {
    pub fn name(&self) -> &'static str {
        match self {
            Special::Report(_) => "report",
            Special::Completions(_) => "completions",
            Special::Man(_) => "man",
        }
    }

    pub fn run(self, settings: &Settings) -> Result<Outcome> {
        match self {
            Special::Report(c) => {
                let mut r = rerender::run(c)?;
                let verdict = emit(settings, r.report.as_mut())?;
                Ok(Outcome::Done(if r.judged {
                    verdict
                } else {
                    Verdict::Pass
                }))
            }
            Special::Completions(shell) => {
                cli::completions(shell, &mut std::io::stdout());
                Ok(Outcome::Done(Verdict::Pass))
            }
            Special::Man(path) => {
                cli::man(&path, &mut std::io::stdout())?;
                Ok(Outcome::Done(Verdict::Pass))
            }
        }
    }
}

/// The subcommand to run, with its plain configuration. Built once per run:
/// the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Job {
    ReplicateCheck(replicate_check::Config),
    Keycount(keycount::Config),
    Lab(lab::Config),
    Perf(perf::Options),
    Check(check::Config),
    Stats(stats::Config),
    TtlWatch(ttl_watch::Config),
    Demo(demo::Config),
    /// `demo --web`: the cache demo as a web page, until Ctrl-C.
    Web(crate::web::Config),
    Clean(clean::Config),
    Compare(compare_cmd::Config),
    /// Break a lab redlab started and measure the cost.
    Drill(drill::Config),
}

/// How a subcommand runs on a Redis Cluster (`shards::dispatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCluster {
    /// On every shard at once, the reports merged.
    PerShard,
    /// On the shard that owns a key (or per shard when no key is given).
    ByKey,
    /// Once, over the whole cluster.
    Whole,
    /// Refused on a cluster.
    Never,
    /// It makes its own topology (`lab`): no cluster is resolved for it.
    OwnTopology,
}

/// What the run around a subcommand must know about it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The subcommand as typed, and its report's `command`.
    pub name: &'static str,
    pub on_cluster: OnCluster,
    /// It writes by design (load, demo, expiry, drill): it refuses to start
    /// on a node that does not serve, where the others report it.
    pub writes: bool,
    /// An unusable master is a finding in its report (check: CI still gets
    /// a report), not an error before the run.
    pub reports_unusable_master: bool,
    /// It asks the Sentinels itself: the run adds no Sentinel checks.
    pub asks_sentinels: bool,
    /// It removes what dead runs left (clean): the run does not scan for
    /// leftovers first, and an interrupted run says some may remain.
    pub removes_leftovers: bool,
    /// It ends by itself on the run's cancel token, with its report
    /// (compare: what it compared so far, marked interrupted; stats --watch:
    /// the last snapshot): the run waits for it after the first signal
    /// instead of stopping it where it stands.
    pub ends_on_cancel: bool,
}

const fn kind(name: &'static str, on_cluster: OnCluster) -> Kind {
    Kind {
        name,
        on_cluster,
        writes: false,
        reports_unusable_master: false,
        asks_sentinels: false,
        removes_leftovers: false,
        ends_on_cancel: false,
    }
}

impl Job {
    /// The table: one row per subcommand.
    pub fn kind(&self) -> Kind {
        use OnCluster::*;
        match self {
            Job::ReplicateCheck(_) => Kind {
                asks_sentinels: true,
                ..kind("replicate-check", PerShard)
            },
            Job::Keycount(_) => kind("keycount", PerShard),
            Job::Lab(_) => Kind {
                asks_sentinels: true,
                ..kind("lab", OwnTopology)
            },
            Job::Perf(_) => Kind {
                writes: true,
                ..kind("perf", Whole)
            },
            Job::Check(_) => Kind {
                reports_unusable_master: true,
                asks_sentinels: true,
                ..kind("check", PerShard)
            },
            Job::Stats(c) => Kind {
                ends_on_cancel: c.watch.is_some(),
                ..kind("stats", Whole)
            },
            Job::TtlWatch(_) => Kind {
                writes: true,
                ..kind("ttl-watch", ByKey)
            },
            Job::Demo(_) => Kind {
                writes: true,
                ..kind("demo", ByKey)
            },
            Job::Web(_) => Kind {
                writes: true,
                ..kind("demo", Whole)
            },
            Job::Clean(_) => Kind {
                removes_leftovers: true,
                ..kind("clean", PerShard)
            },
            Job::Compare(_) => Kind {
                ends_on_cancel: true,
                ..kind("compare", PerShard)
            },
            Job::Drill(_) => Kind {
                writes: true,
                ..kind("drill", Never)
            },
        }
    }

    /// The subcommand as typed.
    pub fn name(&self) -> &'static str {
        self.kind().name
    }

    /// The subcommand on one topology. `lab` is the --spawn lab, for the
    /// one subcommand that acts on its processes (drill).
    pub async fn run(
        self,
        ctx: &Ctx,
        lab: Option<&mut crate::lab::Lab>,
    ) -> Result<Box<dyn AnyReport>> {
        fn boxed<D: Details + 'static>(r: Report<D>) -> Box<dyn AnyReport> {
            Box::new(r)
        }
        Ok(match self {
            Job::ReplicateCheck(c) => boxed(replicate_check::run(c, ctx).await?),
            Job::Keycount(c) => boxed(keycount::run(c, ctx).await?),
            Job::Lab(c) => boxed(lab::run(c, ctx).await?),
            Job::Perf(c) => boxed(perf::run(c, ctx).await?),
            Job::Check(c) => boxed(check::run(c, ctx).await?),
            Job::Stats(c) => boxed(stats::run(c, ctx).await?),
            Job::TtlWatch(c) => boxed(ttl_watch::run(c, ctx).await?),
            Job::Demo(c) => boxed(demo::run(c, ctx).await?),
            Job::Web(c) => boxed(crate::web::run(c, std::slice::from_ref(ctx), None).await?),
            Job::Clean(c) => boxed(clean::run(c, ctx).await?),
            Job::Compare(c) => boxed(compare_cmd::run(c, ctx).await?),
            Job::Drill(c) => boxed(drill::run(c, ctx, lab).await?),
        })
    }
}
