//! From the parsed command line to plain configuration, in one place (fd's
//! `construct_config`): after this, nothing below knows the argument parser.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

pub use super::job::{Job, Mode, Special};
use super::rerender;
use crate::app::cli::{
    Cli, ColorArg, Command, DemoArgs, FailOnArg, FormatArg, LabAction, PerfWorkload, StatsArgs,
    TtlWatchArgs,
};
use crate::cmd::compare as compare_cmd;
use crate::cmd::{
    check, clean, demo, drill, keycount, lab, perf, replicate_check, stats, ttl_watch,
};
use crate::lab::SentinelTimeouts;
use crate::report::{FailOn, Format, View};
use crate::topology::TopologySpec;
use crate::ui::color;
use crate::ui::narrate::Narrator;

/// What applies to every subcommand.
#[derive(Debug, Clone)]
pub struct Settings {
    pub topology: TopologySpec,
    /// Bound on connecting and on every command.
    pub timeout: Duration,
    /// `--spawn`: run against a throwaway lab with this many replicas (per
    /// shard with `--cluster`).
    pub spawn: Option<usize>,
    pub output: Output,
    /// The verdict that fails the run.
    pub fail_on: FailOn,
    /// `--allow-eviction`: the user's consent to writes that may evict.
    pub allow_eviction: bool,
    /// Said on stderr before the run (an environment variable set aside).
    pub notes: Vec<String>,
    /// What a lab started here gets besides its replicas (`--spawn`, `lab up`).
    pub lab: LabExtras,
    /// redlab's namespace (`--prefix`, `run::namespace`), checked.
    pub prefix: String,
}

/// `--sentinels N` (with their timeouts), `--backlog SIZE` and a cluster's
/// shard count for a lab redlab starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabExtras {
    /// `--spawn-shards N` with `--spawn --cluster`.
    pub shards: usize,
    pub sentinels: usize,
    pub sentinel_timeouts: SentinelTimeouts,
    /// `repl-backlog-size`, bytes.
    pub backlog: Option<u64>,
}

/// Where the report goes and what else may be printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The format asked for, if any.
    pub format: Option<Format>,
    /// `--output PATH`.
    pub path: Option<PathBuf>,
    /// `--report [PATH]`: PATH, or a file under reports/ (`Some(None)`).
    pub report: Option<Option<PathBuf>>,
    /// No progress, no narrative (never the report).
    pub quiet: bool,
    /// `--color`.
    pub color: color::When,
    /// `-v`: the topology table and brief reports in full.
    pub verbose: bool,
}

impl Output {
    /// How stdout shows the report: fitted to the terminal, coloured there.
    pub fn stdout_view(&self) -> View {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        View {
            width: color::width(tty),
            color: color::stdout_color(self.color),
            verbose: self.verbose,
        }
    }

    /// The narrative on stderr, coloured where stderr is a terminal.
    pub fn narrator(&self) -> Narrator {
        Narrator::new(!self.quiet).with_color(color::stderr_color(self.color))
    }

    /// A machine format (JSON, JUnit) goes to stdout: nothing else may.
    pub fn machine_stdout(&self) -> bool {
        self.path.is_none()
            && self.report.is_none()
            && matches!(
                self.format,
                Some(Format::Json | Format::Junit | Format::Html)
            )
    }
}

pub fn resolve(cli: &Cli) -> Result<(Settings, Mode)> {
    let g = &cli.global;
    refuse_half_given(g)?;
    let output = Output {
        format: g.format.map(format),
        path: g.output.clone(),
        report: g.report.clone(),
        quiet: g.quiet,
        color: match g.color {
            ColorArg::Auto => color::When::Auto,
            ColorArg::Always => color::When::Always,
            ColorArg::Never => color::When::Never,
        },
        verbose: g.verbose,
    };
    let prefix = crate::run::namespace::parse(&g.prefix).map_err(anyhow::Error::msg)?;
    let mut settings = Settings {
        topology: TopologySpec {
            master: g.master.clone(),
            replicas: g.replicas.clone(),
            discover: g.discover,
            user: g.user.clone(),
            password: g.password.clone(),
            expect_replicas: g.expect_replicas,
            sentinels: g.sentinel_urls.clone(),
            master_name: g.master_name.clone(),
            cluster: g.cluster,
            expect_shards: g.expect_shards,
        },
        timeout: g.timeout,
        spawn: g
            .spawn
            .then_some(g.spawn_replicas.unwrap_or(if g.cluster { 1 } else { 3 })),
        output,
        fail_on: match g.fail_on {
            FailOnArg::Fail => FailOn::Fail,
            FailOnArg::Warn => FailOn::Warn,
        },
        allow_eviction: g.allow_eviction,
        lab: lab_extras(cli)?,
        notes: Vec::new(),
        prefix,
    };
    if g.spawn {
        set_aside_env_topology(&mut settings);
    }
    if let Some(bin) = &g.server_bin {
        crate::lab::binary::use_server_binary(bin.clone());
    }
    let job = job(&cli.command, &settings)?;
    Ok((settings, job))
}

/// The lab options apply where redlab starts a lab: with --spawn or `lab up`.
fn lab_extras(cli: &Cli) -> Result<LabExtras> {
    let g = &cli.global;
    let defaults = SentinelTimeouts::default();
    let ms = |d: Option<Duration>, default: u64| d.map_or(default, |d| d.as_millis() as u64);
    cluster_flags(cli)?;
    let extras = LabExtras {
        shards: g.spawn_shards,
        sentinels: g.sentinels,
        sentinel_timeouts: SentinelTimeouts {
            down_after_ms: ms(g.down_after, defaults.down_after_ms),
            failover_timeout_ms: ms(g.failover_timeout, defaults.failover_timeout_ms),
            ..defaults
        },
        backlog: g.backlog,
    };
    let starts_lab = g.spawn
        || matches!(&cli.command, Command::Lab(a) if matches!(a.action, LabAction::Up { .. }));
    let given = g.sentinels > 0 || g.backlog.is_some();
    if given && !starts_lab {
        anyhow::bail!(
            "--sentinels and --backlog shape a lab redlab starts: use them with --spawn or `lab up` \
             (to use running Sentinels, give --sentinel URL)"
        );
    }
    if g.spawn && g.sentinels == 0 && matches!(cli.command, Command::Drill(_)) {
        anyhow::bail!("drill follows the lab through its Sentinels: add --sentinels 3 to --spawn");
    }
    if (g.down_after.is_some() || g.failover_timeout.is_some()) && g.sentinels == 0 {
        anyhow::bail!("--down-after and --failover-timeout are the lab's Sentinels' timeouts: add --sentinels N");
    }
    Ok(extras)
}

/// What does not go with `--cluster`: a cluster's nodes are discovered, it
/// has no Sentinels, and the drill breaks a replication lab.
fn cluster_flags(cli: &Cli) -> Result<()> {
    let g = &cli.global;
    if !g.cluster {
        if g.expect_shards.is_some() {
            anyhow::bail!("--expect-shards asserts a cluster's shape: add --cluster");
        }
        return Ok(());
    }
    if !g.replicas.is_empty() {
        anyhow::bail!(
            "--cluster discovers every shard's replicas from the cluster: drop --replica, \
             or give --expect-replicas N (per shard)"
        );
    }
    if !g.sentinel_urls.is_empty() || g.sentinels > 0 {
        anyhow::bail!(
            "a Redis Cluster fails over by itself, without Sentinels: drop --sentinel/--sentinels"
        );
    }
    if g.backlog.is_some() {
        anyhow::bail!("--backlog shapes the replication lab; a cluster lab keeps Redis's default");
    }
    if g.spawn_shards == 0 {
        anyhow::bail!("--spawn-shards must be at least 1");
    }
    if matches!(cli.command, Command::Drill(_)) {
        anyhow::bail!(
            "drill breaks a replication lab watched by Sentinels; a cluster's failover is not drilled \
             (yet): drop --cluster"
        );
    }
    Ok(())
}

fn job(command: &Command, settings: &Settings) -> Result<Mode> {
    let out = &settings.output;
    Ok(Mode::Run(match command {
        Command::ReplicateCheck(a) => Job::ReplicateCheck(replicate_check::Config {
            probes: a.probes,
            max_lag: a.max_lag,
            lag_interval: a.lag_interval,
        }),
        Command::Keycount(a) => Job::Keycount(keycount::Config { settle: a.settle }),
        Command::Lab(a) => Job::Lab(lab::Config {
            state_dir: a.state_dir.clone(),
            action: match a.action {
                LabAction::Up {
                    replicas,
                    shards,
                    base_port,
                } => {
                    let cluster = settings.topology.cluster;
                    if shards.is_some() && !cluster {
                        anyhow::bail!("--shards shapes a cluster lab: add --cluster");
                    }
                    lab::Action::Up {
                        replicas: replicas.unwrap_or(if cluster { 1 } else { 3 }),
                        base_port: base_port.unwrap_or(if cluster {
                            crate::lab::cluster::DEFAULT_CLUSTER_BASE_PORT
                        } else {
                            crate::lab::DEFAULT_BASE_PORT
                        }),
                        shards: cluster.then(|| shards.unwrap_or(3)),
                        sentinels: settings.lab.sentinels,
                        timeouts: settings.lab.sentinel_timeouts,
                        backlog: settings.lab.backlog,
                    }
                }
                LabAction::Down => lab::Action::Down,
                LabAction::Status => lab::Action::Status,
            },
        }),
        Command::Perf(a) => Job::Perf(perf_options(a, settings.allow_eviction)?),
        Command::Check(a) => {
            let (selected, skipped, unknown) = check::select(&a.skip, &a.only);
            let replication = replicate_check::Config {
                probes: a.replication.probes,
                max_lag: a.replication.max_lag,
                lag_interval: a.replication.lag_interval,
            };
            // Refused up front, as by replicate-check: the replication step
            // would otherwise pass over no probe.
            replication.validate()?;
            Job::Check(check::Config {
                selected,
                skipped,
                strict: a.strict,
                require_min_replicas: a.require_min_replicas,
                replication,
                keycount: keycount::Config {
                    settle: a.keycount.settle,
                },
                consistency: compare_cmd::Config::sampled(a.consistency_sample, a.keycount.settle),
                expiry_ttl: a.expiry_ttl,
                throughput: perf::Config::smoke(a.baseline.clone(), a.tolerance)?,
                min_ops: a.min_ops,
                unknown,
                cluster_step: check::cluster_wanted(&a.skip, &a.only),
                sentinel_step: check::step_wanted(check::SENTINEL_STEP, &a.skip, &a.only),
            })
        }
        Command::Stats(a) => Job::Stats(stats_config(a, out)),
        Command::TtlWatch(a) => Job::TtlWatch(ttl_watch_config(a, out)),
        Command::Demo(a) if a.web => Job::Web(web_config(a, out)),
        Command::Demo(a) => Job::Demo(demo_config(a, out)),
        Command::Compare(a) => Job::Compare(compare_config(a)),
        Command::Clean(a) => Job::Clean(clean::Config {
            run: a.run.clone(),
            rate: a.rate,
        }),
        Command::Drill(a) => Job::Drill(drill_config(a, settings)),
        Command::Report(a) => {
            return Ok(Mode::Special(Special::Report(rerender::Config {
                file: a.file.clone().unwrap_or_default(),
                compare: a.compare.clone(),
                merge: a.merge.clone(),
            })))
        }
        Command::Completions(a) => return Ok(Mode::Special(Special::Completions(a.shell))),
        Command::Man(a) => return Ok(Mode::Special(Special::Man(a.command.clone()))),
    }))
}

fn drill_config(a: &crate::app::cli::DrillArgs, settings: &Settings) -> drill::Config {
    use crate::app::cli::{FaultArg, ResyncArg};
    use drill::{Fault, Resync};
    let t = &settings.topology;
    drill::Config {
        fault: match a.fault {
            FaultArg::KillMaster => Fault::KillMaster,
            FaultArg::StopMaster => Fault::StopMaster,
            FaultArg::RestartMaster => Fault::RestartMaster,
            FaultArg::KillReplica => Fault::KillReplica,
            FaultArg::StopReplica => Fault::StopReplica,
            FaultArg::PartitionReplica => Fault::PartitionReplica,
            FaultArg::Failover => Fault::Failover,
        },
        target: a.target.clone(),
        fault_for: a.for_,
        rate: a.rate,
        ack: a.ack.0,
        ack_timeout: a.ack_timeout,
        write_timeout: a.write_timeout,
        value_size: a.value_size,
        before: a.before,
        after: a.after,
        settle: a.settle,
        max_downtime: a.max_downtime,
        max_lost: a.max_lost,
        expect: a.expect.map(|e| match e {
            ResyncArg::Partial => Resync::Partial,
            ResyncArg::Full => Resync::Full,
            ResyncArg::None => Resync::None,
        }),
        state_dir: a.state_dir.clone(),
        explicit_topology: t.master.is_some() || !t.replicas.is_empty() || !t.sentinels.is_empty(),
        lag_interval: a.lag_interval,
    }
}

/// --spawn starts its own topology: a master, replicas or Sentinels that
/// come only from the environment (REDLAB_MASTER, ...) are set aside, with a
/// note; typed on the command line they conflict, and the run says so.
fn set_aside_env_topology(s: &mut Settings) {
    let t = &mut s.topology;
    let mut set_aside = Vec::new();
    if t.master.is_some() && !crate::app::cli::typed("--master") {
        t.master = None;
        set_aside.push("REDLAB_MASTER");
    }
    if !t.replicas.is_empty() && !crate::app::cli::typed("--replica") {
        t.replicas.clear();
        set_aside.push("REDLAB_REPLICAS");
    }
    if !t.sentinels.is_empty() && !crate::app::cli::typed("--sentinel") {
        t.sentinels.clear();
        set_aside.push("REDLAB_SENTINELS");
    }
    if !set_aside.is_empty() {
        s.notes.push(format!(
            "redlab: --spawn starts its own lab: {} from the environment set aside",
            set_aside.join(", ")
        ));
    }
}

/// Options that mean nothing without another: an error, never ignored.
fn refuse_half_given(g: &crate::app::cli::GlobalArgs) -> Result<()> {
    if g.user.is_some() && g.password.is_none() {
        anyhow::bail!(
            "--user needs a password: set REDLAB_PASSWORD (or --password), or put both in the URL"
        );
    }
    if g.spawn_replicas.is_some() && !g.spawn {
        anyhow::bail!("--spawn-replicas sizes the --spawn lab: add --spawn, or drop it");
    }
    refuse_empty_entries("--replica", "REDLAB_REPLICAS", &g.replicas, g.spawn)?;
    refuse_empty_entries("--sentinel", "REDLAB_SENTINELS", &g.sentinel_urls, g.spawn)?;
    for path in g.output.iter().chain(g.report.iter().flatten()) {
        if path.as_os_str() != "-" && g.format.is_none() {
            crate::report::format_of_path(path)?;
        }
    }
    Ok(())
}

/// A list with an empty item (`REDLAB_REPLICAS=',,,'`, `a,,b`, a trailing
/// comma) is a mistake, not fewer nodes: dropping the items silently would
/// test a topology nobody described.
fn refuse_empty_entries(flag: &str, env: &str, items: &[String], spawn: bool) -> Result<()> {
    let typed = crate::app::cli::typed(flag);
    // --spawn sets the environment's topology aside (`set_aside_env_topology`).
    if items.is_empty() || (spawn && !typed) {
        return Ok(());
    }
    let empty = items.iter().filter(|u| u.trim().is_empty()).count();
    if empty == 0 {
        return Ok(());
    }
    let whence = if typed {
        flag.to_string()
    } else {
        env.to_string()
    };
    anyhow::bail!(
        "{whence} has {} of {} (a comma with nothing on one side): give each URL once, \
         comma-separated, e.g. redis://host:6380,redis://host:6381{}",
        crate::report::plural(empty as u64, "empty item"),
        items.len(),
        if typed {
            String::new()
        } else {
            format!(", or unset {env}")
        }
    )
}

fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::Table => Format::Table,
        FormatArg::Markdown => Format::Markdown,
        FormatArg::Json => Format::Json,
        FormatArg::Junit => Format::Junit,
        FormatArg::Html => Format::Html,
    }
}

fn perf_options(a: &crate::app::cli::PerfArgs, allow_eviction: bool) -> Result<perf::Options> {
    let mut opts = perf::Options {
        workload: match a.workload {
            PerfWorkload::Set => perf::WorkloadKind::Set,
            PerfWorkload::Get => perf::WorkloadKind::Get,
            PerfWorkload::Mixed => perf::WorkloadKind::Mixed {
                sets: a.ratio.0,
                gets: a.ratio.1,
            },
            PerfWorkload::SetWait => perf::WorkloadKind::SetWait,
        },
        requests: a.requests,
        duration: a.duration,
        pipeline: a.pipeline,
        connections: a.connections,
        data_size: a.data_size,
        keyspace: a.keyspace,
        seed: a.seed,
        warmup: a.warmup,
        rounds: a.rounds,
        rate: a.rate,
        wait_timeout: a.wait_timeout,
        hdr_out: a.hdr_out.clone(),
        keep_keys: a.keep_keys,
        allow_eviction,
        baseline: a.baseline.clone(),
        tolerance: a.tolerance,
        settle: a.settle,
        key_ttl: a.key_ttl,
        lag_interval: a.lag_interval,
        threads: a.threads_per_shard.unwrap_or(a.threads),
        threads_per_shard: a.threads_per_shard.is_some(),
        pool: None,
        read_from: match a.read_from {
            crate::app::cli::PerfReadFrom::Master => perf::ReadFrom::Master,
            crate::app::cli::PerfReadFrom::Replicas => perf::ReadFrom::Replicas,
        },
        split: None,
        start_at: a.start_at,
    };
    if let Some((k, n)) = a.client {
        perf::split::apply(&mut opts, k, n)?;
    }
    if let Some(at) = a.start_at {
        perf::split::refuse_far_start(at)?;
    }
    Ok(opts)
}

fn stats_config(a: &StatsArgs, out: &Output) -> stats::Config {
    stats::Config {
        watch: a.watch,
        count: a.count,
        frames_to_stdout: !out.machine_stdout(),
        view: out.stdout_view(),
        narrate: out.narrator(),
    }
}

fn ttl_watch_config(a: &TtlWatchArgs, out: &Output) -> ttl_watch::Config {
    ttl_watch::Config {
        key: a.key.clone(),
        ttl: a.ttl,
        interval: a.interval,
        tolerance: a.tolerance,
        grace: a.grace,
        window: a.window,
        narrate: out.narrator(),
    }
}

/// `--fast` shrinks every wait: the source answers in 200 ms, entries live 2 s.
fn demo_config(a: &DemoArgs, out: &Output) -> demo::Config {
    let fast = |normal: Duration, short: Duration| if a.fast { normal.min(short) } else { normal };
    demo::Config {
        query: a.query.clone(),
        source_latency: fast(a.source_latency, Duration::from_millis(200)),
        ttl: fast(a.ttl, Duration::from_secs(2)),
        ttl_window: a.ttl_window.map(|w| fast(w, Duration::from_secs(3))),
        pace: a.pace,
        // A beat between steps where a person reads them as they come.
        beat: !a.pace && !a.fast && !out.quiet && {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
        },
        fast: a.fast,
        interactive: a.interactive,
        narrate: out.narrator(),
    }
}

/// `demo --web`: --fast shrinks the waits as it does for the walkthrough.
fn web_config(a: &DemoArgs, out: &Output) -> crate::web::Config {
    let d = demo_config(a, out);
    crate::web::Config {
        listen: a
            .listen
            .clone()
            .unwrap_or_else(|| crate::web::DEFAULT_LISTEN.to_string()),
        allow_remote: a.allow_remote,
        source_delay: d.source_latency,
        ttl: d.ttl,
    }
}

fn compare_config(a: &crate::app::cli::CompareArgs) -> compare_cmd::Config {
    use crate::compare::Sample;
    let sample = match (a.sample, a.sample_ratio) {
        (Some(n), _) => Sample::Keys(n),
        (None, Some(r)) => Sample::Ratio(r),
        (None, None) => Sample::All,
    };
    compare_cmd::Config {
        engine: crate::compare::Config {
            rounds: a.rounds,
            interval: a.interval,
            ttl_tolerance: a.ttl_tolerance,
            show: a.show,
            show_values: a.show_values,
            max_ops: (a.max_ops > 0).then_some(a.max_ops),
            sample,
            scan_count: a.scan_count,
            digest: !a.no_digest,
            digest_max_keys: Some(a.digest_max_keys),
            ..crate::compare::Config::default()
        },
        settle: a.settle,
    }
}

/// The topology the flags describe (flags in, `topology::Topology` out).
#[cfg(test)]
mod topology_from_flags {
    use super::*;
    use crate::topology::{redact_url, Topology};

    fn topo(args: &[&str]) -> Topology {
        let mut v = vec!["redlab"];
        v.extend_from_slice(args);
        v.push("keycount");
        let cli = crate::app::cli::Cli::parse_args(v).unwrap();
        Topology::from_spec(&resolve(&cli).unwrap().0.topology).unwrap()
    }

    #[test]
    fn default_is_the_workshop_topology() {
        let t = topo(&[]);
        assert_eq!(t.master.addr(), "127.0.0.1:6379");
        let ports: Vec<u16> = t.replicas.iter().map(|r| r.port()).collect();
        assert_eq!(ports, vec![6380, 6381, 6382]);
        assert_eq!(t.replicas[1].name, "replica2");
        assert!(!t.discover);
    }

    #[test]
    fn master_alone_means_discover_and_password_applies() {
        let t = topo(&["--master", "redis://10.0.0.5:7000", "--password", "s3cret"]);
        assert!(t.discover && t.replicas.is_empty());
        assert_eq!(t.master.password(), Some("s3cret"));
        assert!(!format!("{:?}", t.master).contains("s3cret"));
    }

    #[test]
    fn url_password_wins_and_is_redacted() {
        let t = topo(&["--replica", "redis://u:inurl@h:1", "--password", "flag"]);
        assert_eq!(t.replicas[0].password(), Some("inurl"));
        assert_eq!(redact_url("redis://u:inurl@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:p@h:1"), "redis://:***@h:1");
    }
}

/// `check`'s selection as the flags give it.
#[cfg(test)]
mod check_from_flags {
    use super::*;

    fn cfg(args: &[&str]) -> crate::cmd::check::Config {
        let mut v = vec!["redlab", "check"];
        v.extend_from_slice(args);
        match resolve(&crate::app::cli::Cli::parse_args(v).unwrap())
            .unwrap()
            .1
        {
            Mode::Run(Job::Check(c)) => c,
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
        assert!(crate::app::cli::Cli::parse_args([
            "redlab", "check", "--skip", "a", "--only", "b"
        ])
        .is_err());
        assert_eq!(
            cfg(&["--require-min-replicas"]).require_min_replicas,
            Some(1)
        );
        assert_eq!(
            cfg(&["--require-min-replicas", "2"]).require_min_replicas,
            Some(2)
        );
    }
}
