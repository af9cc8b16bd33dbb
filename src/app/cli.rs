//! Command-line surface (clap derive only). Each subcommand turns its args into
//! a plain config before any work starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::{parse_duration, parse_period};

#[derive(Debug, Parser)]
#[command(
    name = "redlab",
    version,
    about = "Test and benchmark a Redis master + replicas topology",
    long_about = "redlab checks that replication is healthy, measures write throughput and \
                  latency, and walks an audience through cache-aside and replication.\n\n\
                  Exit codes: 0 every check passed, 1 a check failed, 2 redlab could not run, \
                  130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Whether `flag` (e.g. `--master`) was typed on the command line, as
/// opposed to taken from its environment variable.
pub fn typed(flag: &str) -> bool {
    let with_value = format!("{flag}=");
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&with_value)
    })
}

impl Cli {
    /// Parse a command line (the first item is the program name), for tests
    /// and callers that do not want clap's trait in scope.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map_err(|e| e.to_string())
    }

    /// The process's command line, parsed: by `light` when it can, else by
    /// the full parser (which prints help, versions and errors, and exits).
    pub fn parse_process() -> Cli {
        light(std::env::args_os()).unwrap_or_else(Cli::parse)
    }
}

// The light path. Building the whole command tree (every subcommand's
// arguments, then the ~30 global options copied into each of them) was most
// of a short run's parse (docs/benchmarks.md). A command line names one
// subcommand: a tree holding only that one parses it to the same `Cli`, and
// anything the small tree does not accept as it stands (help, a version, an
// error, a value spelt like a subcommand ahead of the real one) goes to the
// full parser, which answers as it always did.

/// `args` parsed by a tree holding only the subcommand it names, or None
/// when the full parser must answer. A tree with fewer subcommands accepts
/// no command line the full one reads differently: a top-level word that
/// names another subcommand is an error here, and everything else is the
/// same arguments, parsed the same way.
pub fn light<I, T>(args: I) -> Option<Cli>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let sub = args
        .iter()
        .skip(1)
        .find_map(|a| a.to_str().and_then(one_subcommand))?;
    let top = clap::Command::new("redlab")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true);
    let matches = GlobalArgs::augment_args(top)
        .subcommand(sub)
        .try_get_matches_from(args)
        .ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// The subcommand `name` alone, as `Command` builds it (its arguments;
/// about and examples only show in help, which the full parser prints).
fn one_subcommand(name: &str) -> Option<clap::Command> {
    type Augment = fn(clap::Command) -> clap::Command;
    const ALL: [(&str, Augment); 14] = [
        ("replicate-check", ReplicateCheckArgs::augment_args),
        ("keycount", KeycountArgs::augment_args),
        ("lab", LabArgs::augment_args),
        ("perf", PerfArgs::augment_args),
        ("check", CheckArgs::augment_args),
        ("stats", StatsArgs::augment_args),
        ("ttl-watch", TtlWatchArgs::augment_args),
        ("demo", DemoArgs::augment_args),
        ("compare", CompareArgs::augment_args),
        ("clean", CleanArgs::augment_args),
        ("report", ReportArgs::augment_args),
        ("drill", DrillArgs::augment_args),
        ("completions", CompletionsArgs::augment_args),
        ("man", ManArgs::augment_args),
    ];
    let (name, augment) = ALL.iter().find(|(n, _)| *n == name)?;
    Some(augment(clap::Command::new(*name)))
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Master URL (redis://[user:pass@]host:port[/db], rediss:// for TLS).
    /// Given without --replica, the replicas are discovered from the master.
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_MASTER",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub master: Option<String>,

    /// Replica URL; repeat for each replica (env: comma-separated list).
    #[arg(
        long = "replica",
        id = "replica_urls",
        global = true,
        help_heading = "Topology",
        env = "REDLAB_REPLICAS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub replicas: Vec<String>,

    /// Find the replicas from the master's INFO replication.
    #[arg(long, global = true, help_heading = "Topology")]
    pub discover: bool,

    /// Sentinel URL; repeat for each (env: comma-separated list). The master
    /// and its replicas are asked of Sentinel (SENTINEL get-master-addr-by-name,
    /// SENTINEL replicas) instead of a fixed address.
    #[arg(
        long = "sentinel",
        id = "sentinel_urls",
        global = true,
        help_heading = "Topology",
        env = "REDLAB_SENTINELS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub sentinel_urls: Vec<String>,

    /// The name the Sentinels know the master by (the lab's Sentinels: redlab).
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_MASTER_NAME",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub master_name: Option<String>,

    /// How many replicas the master must have. Discovered replicas are
    /// otherwise not asserted: a replica the master lost vanishes from its list.
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_EXPECT_REPLICAS",
        value_name = "N",
        hide_env_values = true
    )]
    pub expect_replicas: Option<usize>,

    /// A Redis Cluster: --master is any node of it (default 127.0.0.1:7000),
    /// every shard is discovered from it (CLUSTER SHARDS) and checked. A
    /// --master given alone that answers cluster_enabled:1 is one anyway.
    /// With --spawn or `lab up`: start a cluster. --expect-replicas is then per shard.
    #[arg(long, global = true, help_heading = "Topology")]
    pub cluster: bool,

    /// How many shards (masters serving slots) the cluster must have.
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_EXPECT_SHARDS",
        value_name = "N",
        hide_env_values = true
    )]
    pub expect_shards: Option<usize>,

    /// ACL user for every node (a user in a URL wins).
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_USER",
        hide_env_values = true
    )]
    pub user: Option<String>,

    /// Password for every node (a password in a URL wins). Prefer the
    /// REDLAB_PASSWORD environment variable: a flag is visible in `ps`.
    #[arg(
        long,
        global = true,
        help_heading = "Topology",
        env = "REDLAB_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// The namespace of every key redlab writes (its registry, heartbeats,
    /// load keys: `<PREFIX>:<run-id>:...`) and of what clean and compare set
    /// aside as redlab's. Move it when your own keys start with `redlab:`.
    #[arg(
        long,
        global = true,
        help_heading = "Run",
        env = "REDLAB_PREFIX",
        value_name = "PREFIX",
        default_value = "redlab"
    )]
    pub prefix: String,

    /// Bound on connecting and on every command (500ms, 2s, 1m; a bare number is seconds).
    #[arg(long, global = true, help_heading = "Run", default_value = "3s", value_parser = parse_period)]
    pub timeout: Duration,

    /// Start a throwaway local lab on free ports, run against it, stop it.
    #[arg(long, global = true, help_heading = "Throwaway lab")]
    pub spawn: bool,

    /// The server binary the lab runs (--spawn, lab up): redis-server, or any
    /// compatible one such as valkey-server [default: redis-server on PATH].
    #[arg(
        long,
        global = true,
        help_heading = "Throwaway lab",
        env = "REDIS_SERVER",
        value_name = "PATH"
    )]
    pub server_bin: Option<PathBuf>,

    /// Replicas in the --spawn lab [default: 3; with --cluster, 1 per shard].
    #[arg(long, global = true, help_heading = "Throwaway lab", value_name = "N")]
    pub spawn_replicas: Option<usize>,

    /// Shards in the --spawn --cluster lab.
    #[arg(
        long,
        global = true,
        help_heading = "Throwaway lab",
        default_value_t = 3,
        value_name = "N"
    )]
    pub spawn_shards: usize,

    /// Sentinels to start with the lab (--spawn, lab up), watching its master.
    #[arg(
        long,
        global = true,
        help_heading = "Throwaway lab",
        default_value_t = 0,
        value_name = "N"
    )]
    pub sentinels: usize,

    /// The lab's Sentinels' down-after-milliseconds [default: 1s].
    #[arg(long, global = true, help_heading = "Throwaway lab", value_parser = parse_period, value_name = "DUR")]
    pub down_after: Option<Duration>,

    /// The lab's Sentinels' failover-timeout [default: 5s].
    #[arg(long, global = true, help_heading = "Throwaway lab", value_parser = parse_period, value_name = "DUR")]
    pub failover_timeout: Option<Duration>,

    /// repl-backlog-size of the lab's servers (--spawn, lab up): 16kb, 1mb, or
    /// bytes. Redis keeps at least 16kb.
    #[arg(long, global = true, help_heading = "Throwaway lab", value_parser = parse_bytes, value_name = "SIZE")]
    pub backlog: Option<u64>,

    /// Output format (table on stdout by default).
    #[arg(long, global = true, help_heading = "Output", value_enum)]
    pub format: Option<FormatArg>,

    /// Write the report to this file (format from --format, else from the extension).
    #[arg(long, global = true, help_heading = "Output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Write the report to reports/<subcommand>-<UTC timestamp>.<ext>, or to
    /// PATH when given (format from --format, else from its extension: .html, .md, .json, .xml).
    #[arg(long, global = true, help_heading = "Output", value_name = "PATH", num_args = 0..=1, value_parser = parse_report_path)]
    pub report: Option<Option<PathBuf>>,

    /// No progress output on stderr.
    #[arg(long, short, global = true, help_heading = "Output")]
    pub quiet: bool,

    /// Print each start-up and shutdown step (connections, INFO reads, the
    /// registry, cleanup) with its duration on stderr, and record them in
    /// the report's manifest (`timings`): the fixed cost around a measurement.
    #[arg(long, global = true, help_heading = "Output")]
    pub timings: bool,

    /// The verdict that fails the run (exit 1): fail, or warn to make warnings fatal.
    #[arg(
        long,
        global = true,
        help_heading = "Run",
        value_enum,
        default_value = "fail",
        value_name = "VERDICT"
    )]
    pub fail_on: FailOnArg,

    /// Colour verdicts (and the demo's HIT/MISS): auto on a terminal unless
    /// NO_COLOR is set; never in files or pipes.
    #[arg(
        long,
        global = true,
        help_heading = "Output",
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorArg,

    /// Show everything: the topology table, and the demo's full report.
    #[arg(long, short, global = true, help_heading = "Output")]
    pub verbose: bool,

    /// Write even where that could evict user keys (a master near its maxmemory
    /// with an eviction policy): evictions are then reported as a warning.
    #[arg(long, global = true, help_heading = "Run")]
    pub allow_eviction: bool,
}

// Options that do not apply to a subcommand are hidden from its help: a
// global option is shadowed by a hidden one of the same id (its value still
// reaches the global one, so `redlab lab up --master X` parses, and means
// nothing, as before). Types and parsers mirror the global ones exactly.

/// Hides the topology options (the lab starts its own; report, completions
/// and man read none).
#[derive(Debug, Clone, Args)]
pub struct NoTopology {
    #[arg(id = "master", long = "master", global = true, hide = true)]
    hidden_master: Option<String>,
    #[arg(
        id = "replica_urls",
        long = "replica",
        global = true,
        hide = true,
        value_delimiter = ','
    )]
    hidden_replicas: Vec<String>,
    #[arg(id = "discover", long = "discover", global = true, hide = true)]
    hidden_discover: bool,
    #[arg(
        id = "sentinel_urls",
        long = "sentinel",
        global = true,
        hide = true,
        value_delimiter = ','
    )]
    hidden_sentinels: Vec<String>,
    #[arg(id = "master_name", long = "master-name", global = true, hide = true)]
    hidden_master_name: Option<String>,
    #[arg(
        id = "expect_replicas",
        long = "expect-replicas",
        global = true,
        hide = true
    )]
    hidden_expect_replicas: Option<usize>,
    #[arg(
        id = "expect_shards",
        long = "expect-shards",
        global = true,
        hide = true
    )]
    hidden_expect_shards: Option<usize>,
    #[arg(id = "user", long = "user", global = true, hide = true)]
    hidden_user: Option<String>,
}

/// Hides the password (report, completions, man).
#[derive(Debug, Clone, Args)]
pub struct NoPassword {
    #[arg(id = "password", long = "password", global = true, hide = true)]
    hidden_password: Option<String>,
}

/// Hides --spawn and its replica count.
#[derive(Debug, Clone, Args)]
pub struct NoSpawn {
    #[arg(id = "spawn", long = "spawn", global = true, hide = true)]
    hidden_spawn: bool,
    #[arg(
        id = "spawn_replicas",
        long = "spawn-replicas",
        global = true,
        hide = true
    )]
    hidden_spawn_replicas: Option<usize>,
    #[arg(
        id = "spawn_shards",
        long = "spawn-shards",
        global = true,
        hide = true,
        default_value_t = 3
    )]
    hidden_spawn_shards: usize,
}

/// Hides the shape of a lab redlab starts (Sentinels, backlog).
#[derive(Debug, Clone, Args)]
pub struct NoLabShape {
    #[arg(
        id = "sentinels",
        long = "sentinels",
        global = true,
        hide = true,
        default_value_t = 0
    )]
    hidden_sentinels: usize,
    #[arg(id = "down_after", long = "down-after", global = true, hide = true, value_parser = parse_period)]
    hidden_down_after: Option<Duration>,
    #[arg(id = "failover_timeout", long = "failover-timeout", global = true, hide = true, value_parser = parse_period)]
    hidden_failover_timeout: Option<Duration>,
    #[arg(id = "backlog", long = "backlog", global = true, hide = true, value_parser = parse_bytes)]
    hidden_backlog: Option<u64>,
}

/// Hides --allow-eviction where nothing is written.
#[derive(Debug, Clone, Args)]
pub struct NoWrite {
    #[arg(
        id = "allow_eviction",
        long = "allow-eviction",
        global = true,
        hide = true
    )]
    hidden_allow_eviction: bool,
}

/// Hides the run options (report, completions, man run nothing).
#[derive(Debug, Clone, Args)]
pub struct NoRun {
    #[arg(id = "timeout", long = "timeout", global = true, hide = true, default_value = "3s", value_parser = parse_period)]
    hidden_timeout: Duration,
    #[arg(
        id = "fail_on",
        long = "fail-on",
        global = true,
        hide = true,
        value_enum,
        default_value = "fail"
    )]
    hidden_fail_on: FailOnArg,
    #[arg(
        id = "allow_eviction",
        long = "allow-eviction",
        global = true,
        hide = true
    )]
    hidden_allow_eviction: bool,
}

/// Hides the output options (completions and man print to stdout, nothing else).
#[derive(Debug, Clone, Args)]
pub struct NoOutput {
    #[arg(id = "format", long = "format", global = true, hide = true, value_enum)]
    hidden_format: Option<FormatArg>,
    #[arg(id = "output", long = "output", global = true, hide = true)]
    hidden_output: Option<PathBuf>,
    #[arg(id = "report", long = "report", global = true, hide = true, num_args = 0..=1, value_parser = parse_report_path)]
    hidden_report: Option<Option<PathBuf>>,
    #[arg(id = "quiet", long = "quiet", short = 'q', global = true, hide = true)]
    hidden_quiet: bool,
    #[arg(
        id = "color",
        long = "color",
        global = true,
        hide = true,
        value_enum,
        default_value = "auto"
    )]
    hidden_color: ColorArg,
    #[arg(
        id = "verbose",
        long = "verbose",
        short = 'v',
        global = true,
        hide = true
    )]
    hidden_verbose: bool,
}

/// Everything hidden: completions and man take only their own arguments.
#[derive(Debug, Clone, Args)]
pub struct NothingElse {
    #[command(flatten)]
    topology: NoTopology,
    #[command(flatten)]
    password: NoPassword,
    #[command(flatten)]
    spawn: NoSpawn,
    #[command(flatten)]
    shape: NoLabShape,
    #[command(flatten)]
    run: NoRun,
    #[command(flatten)]
    output: NoOutput,
}

/// `redlab completions SHELL`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab completions bash > ~/.local/share/bash-completion/completions/redlab\n  redlab completions zsh > ~/.zfunc/_redlab\n  redlab completions fish > ~/.config/fish/completions/redlab.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: ShellArg,
    #[command(flatten)]
    hidden: NothingElse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

/// `redlab man`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab man > redlab.1 && man ./redlab.1\n  redlab man drill > redlab-drill.1 && man ./redlab-drill.1\n  redlab man | gzip > /usr/local/share/man/man1/redlab.1.gz"
)]
pub struct ManArgs {
    /// A subcommand's own page, as the main page's SEE ALSO names it
    /// (`redlab man drill` is redlab-drill(1), `redlab man lab up` redlab-lab-up(1)).
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    hidden: NothingElse,
}

/// The completion script for `shell`, written to `out`.
pub fn completions(shell: ShellArg, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
        ShellArg::Powershell => Shell::PowerShell,
        ShellArg::Elvish => Shell::Elvish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "redlab", out);
}

/// The man page (roff) of redlab, or of the subcommand `path` names (each
/// page's SEE ALSO names its subcommands' pages, `redlab-drill(1)`), written
/// to `out`.
pub fn man(path: &[String], out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Built, every subcommand has its page's name (`redlab-lab-up`).
    cmd.build();
    for (i, name) in path.iter().enumerate() {
        let Some(sub) = cmd.find_subcommand(name).cloned() else {
            let names: Vec<&str> = cmd
                .get_subcommands()
                .map(|c| c.get_name())
                .filter(|n| *n != "help")
                .collect();
            let above = &path[..i];
            let page = std::iter::once("redlab")
                .chain(above.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("-");
            let how = std::iter::once("redlab man")
                .chain(above.iter().map(String::as_str))
                .chain(["NAME"])
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::bail!(
                "no page for {name}: {page}(1) has {}",
                if names.is_empty() {
                    "no sub-pages".to_string()
                } else {
                    format!("sub-pages for {} (`{how}`)", names.join(", "))
                }
            );
        };
        cmd = sub;
    }
    match clap_mangen::Man::new(cmd).render(out) {
        // A reader that went away (`| head`) is not redlab's failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("writing the man page: {e}"))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Markdown,
    Json,
    Junit,
    /// One self-contained page with the figures (no scripts, nothing fetched).
    Html,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that every replica follows this master and how fast writes reach it.
    ReplicateCheck(ReplicateCheckArgs),
    /// Compare key counts per database across the nodes, after replication settles.
    Keycount(KeycountArgs),
    /// Start, stop or show a local master + replicas from redis-server.
    Lab(LabArgs),
    /// Pipelined write/read throughput and per-request latency on the master.
    Perf(PerfArgs),
    /// One CI gate: every check in order, one verdict, one report (--format junit for CI).
    Check(CheckArgs),
    /// Per-node status, memory, keys, ops/s, hit rate, replication offset and lag.
    Stats(StatsArgs),
    /// Watch a key's TTL count down on every node and measure how expiry propagates.
    TtlWatch(TtlWatchArgs),
    /// The live walkthrough: cache-aside, replication and expiry, step by step.
    Demo(DemoArgs),
    /// Compare every replica's data with the master's, key by key or by digest, read-only.
    Compare(CompareArgs),
    /// Remove what dead redlab runs left (killed, or their master lost mid-run).
    Clean(CleanArgs),
    /// Render a saved JSON report again (--format html|markdown|table, --output PATH),
    /// or two perf reports side by side (--compare).
    Report(ReportArgs),
    /// Break a lab redlab started, under a steady acknowledged write load, and
    /// measure what it cost: detection, promotion, write downtime, lost writes, resyncs.
    Drill(DrillArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff).
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --master redis://127.0.0.1:6379/0 clean --run 9vxuxr3wjo\n  redlab clean --rate 10000"
)]
pub struct CleanArgs {
    /// Only this run's keys (its id, as redlab printed it); default: every dead run's.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// At most this many keys removed per second (a live master serves its users first).
    #[arg(long, default_value_t = 50_000, value_name = "KEYS")]
    pub rate: u64,
    #[command(flatten)]
    no_spawn: NoSpawn,
    #[command(flatten)]
    no_lab_shape: NoLabShape,
    #[command(flatten)]
    no_write: NoWrite,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn replicate-check\n  redlab --master redis://10.0.0.5:6379 --expect-replicas 2 replicate-check\n  redlab replicate-check --probes 100 --max-lag 250ms --format json"
)]
pub struct ReplicateCheckArgs {
    /// Probe keys written on the master and timed to each replica.
    #[arg(long, default_value_t = 20)]
    pub probes: u32,
    /// How long a probe may take to become visible on a replica.
    #[arg(long, default_value = "1s", value_parser = parse_period)]
    pub max_lag: Duration,
    /// How often each replica's offset lag is sampled while probing (one INFO on the master each).
    #[arg(long, default_value = "100ms", value_parser = parse_period)]
    pub lag_interval: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn keycount\n  redlab --master redis://10.0.0.5:6379 --expect-replicas 2 keycount --settle 10s"
)]
pub struct KeycountArgs {
    /// How long to wait for the replicas to catch up before counting.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    #[command(flatten)]
    no_write: NoWrite,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab lab up --replicas 2\n  redlab lab up --sentinels 3\n  redlab lab status\n  redlab lab down"
)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
    /// Where the lab keeps its data, logs and pid files.
    #[arg(
        long,
        env = "REDLAB_STATE_DIR",
        global = true,
        value_name = "DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    no_topology: NoTopology,
    #[command(flatten)]
    no_spawn: NoSpawn,
    #[command(flatten)]
    no_write: NoWrite,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LabAction {
    /// Start a master and N replicas bound to 127.0.0.1; returns once they are
    /// in sync. With --cluster: a Redis Cluster of --shards masters with
    /// --replicas each, returned once cluster_state is ok everywhere.
    Up {
        /// Number of replicas (per shard with --cluster) [default: 3; with --cluster, 1].
        #[arg(long)]
        replicas: Option<usize>,
        /// Shards of a --cluster lab [default: 3].
        #[arg(long, value_name = "N")]
        shards: Option<usize>,
        /// Port of the first node; the others take the next ones (a cluster's
        /// bus ports are 10000 above, or follow the data ports when that falls
        /// in the kernel's ephemeral port range) [default: 6379; with --cluster, 7000].
        #[arg(long)]
        base_port: Option<u16>,
    },
    /// Stop the processes `lab up` started.
    Down,
    /// Show the lab's processes and whether they answer.
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PerfWorkload {
    /// SET of distinct keys (or random ones with --keyspace).
    Set,
    /// GET of keys redlab fills first.
    Get,
    /// SETs and GETs in --ratio.
    Mixed,
    /// SET batches, each followed by WAIT <replicas> <--wait-timeout>.
    SetWait,
}

/// Where perf's measured reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PerfReadFrom {
    /// The master (every request goes to it).
    Master,
    /// The replicas: the keys are filled on the master, the replicas waited
    /// for, then -c is shared out among them; each replica measured apart.
    Replicas,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn perf -n 100000 -P 64 -c 4\n  redlab perf --workload get --keyspace 100000\n  redlab perf --rate 20000 --duration 10s -P 1 -c 10\n  redlab perf --duration 2s --format json --output base.json && redlab perf --duration 2s --baseline base.json\n  redlab perf -n 300000 -P 16 --client 2/3 --start-at 2026-12-07T10:00:00Z --format json --output c2.json"
)]
pub struct PerfArgs {
    /// What each request does.
    #[arg(long, value_enum, default_value = "set")]
    pub workload: PerfWorkload,
    /// SETs:GETs for --workload mixed.
    #[arg(long, default_value = "1:10", value_parser = parse_ratio)]
    pub ratio: (u32, u32),
    /// Where --workload get sends its measured GETs: the master, or the
    /// replicas (-c and --rate shared out among them, each measured apart;
    /// on a cluster, each shard's own replicas).
    #[arg(long, value_enum, default_value = "master", value_name = "NODES")]
    pub read_from: PerfReadFrom,
    /// Requests per round, in total across connections (like redis-benchmark -n).
    #[arg(short = 'n', long, default_value_t = crate::cmd::perf::DEFAULT_REQUESTS)]
    pub requests: u64,
    /// Run each round for this long instead of a request count.
    #[arg(long, value_parser = parse_period, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Pipeline depth: commands per batch on a connection.
    #[arg(short = 'P', long, default_value_t = crate::cmd::perf::DEFAULT_PIPELINE)]
    pub pipeline: usize,
    /// Parallel connections, in total (on a cluster, shared out among the
    /// shard masters, as redis-benchmark --cluster does).
    #[arg(short = 'c', long, default_value_t = 1)]
    pub connections: usize,
    /// Engine threads, each with its own connections and its share of -n, -c
    /// and --rate; latency histograms merged exactly (like redis-benchmark
    /// --threads, memtier -t). On a cluster, N threads in all, each driving
    /// connections to every shard master (as redis-benchmark --cluster).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// On a cluster: M engine threads per shard master instead (shards x M
    /// threads in all, each loading one shard).
    #[arg(long, value_name = "M", conflicts_with = "threads")]
    pub threads_per_shard: Option<usize>,
    /// Value size in bytes, or a MIN-MAX range.
    #[arg(short = 'd', long, default_value = "3", value_parser = parse_size_range)]
    pub data_size: (usize, usize),
    /// Random keys among K (seeded); without it one distinct key per request.
    #[arg(long, value_name = "K")]
    pub keyspace: Option<u64>,
    /// Seed for keys and value sizes (reproducible runs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Requests sent before measuring (their keys are removed too).
    #[arg(long, default_value_t = crate::cmd::perf::DEFAULT_WARMUP)]
    pub warmup: u64,
    /// Measured rounds; the report gives the median round and min/max.
    #[arg(long, default_value_t = crate::cmd::perf::DEFAULT_ROUNDS)]
    pub rounds: u32,
    /// Open loop: schedule requests at this total rate (ops/s) and measure
    /// latency from each request's intended send time.
    #[arg(long, value_name = "OPS")]
    pub rate: Option<f64>,
    /// WAIT timeout for --workload set-wait.
    #[arg(long, default_value = "1s", value_parser = parse_period)]
    pub wait_timeout: Duration,
    /// Write the median round's latency distribution as HdrHistogram .hgrm text (milliseconds).
    #[arg(long, value_name = "FILE")]
    pub hdr_out: Option<PathBuf>,
    /// Leave the written keys in place (e.g. to look at keycount parity).
    #[arg(long)]
    pub keep_keys: bool,
    /// Write every key with this TTL (SET .. PX), so that nothing outlives it
    /// even if the run is killed; costs the server a little per SET.
    #[arg(long, value_parser = parse_period, value_name = "DUR")]
    pub key_ttl: Option<Duration>,
    /// How often each replica's offset lag is sampled during the rounds (one INFO on the master each).
    #[arg(long, default_value = "100ms", value_parser = parse_period, value_name = "DUR")]
    pub lag_interval: Duration,
    /// Compare with an earlier JSON report of `redlab perf`; fail on a regression.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Allowed regression against --baseline beyond the runs' own noise, in
    /// percent (three times this for the p99). 20 holds on a shared 2-core VM
    /// (bench/baseline_gate.sh); a quiet dedicated machine may take 10.
    #[arg(long, default_value_t = 20.0, value_name = "PCT")]
    pub tolerance: f64,
    /// How long the replicas may take to catch up after the load.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Run share K of one load split among N clients (K/N, e.g. 2/3): -n,
    /// --rate, --warmup and --keyspace are the whole load's, divided (the
    /// first shares take the remainders); keys of its own. Merge the N
    /// reports with `redlab report --merge`.
    #[arg(long, value_name = "K/N", value_parser = crate::cmd::perf::split::parse_client)]
    pub client: Option<(u32, u32)>,
    /// Start the measured rounds at this time, RFC 3339
    /// (2026-12-07T10:00:00Z) or Unix seconds, so that clients on several
    /// machines load together (after each one's set-up and warm-up).
    #[arg(long, value_name = "TIME", value_parser = crate::cmd::perf::split::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

/// A report file name must say its format: `--report perf` before the
/// subcommand would otherwise swallow the subcommand's name.
fn parse_report_path(s: &str) -> Result<PathBuf, String> {
    let known = ["html", "htm", "md", "markdown", "json", "xml", "txt"];
    match std::path::Path::new(s).extension().and_then(|e| e.to_str()) {
        Some(e) if known.contains(&e) => Ok(PathBuf::from(s)),
        _ => Err(format!(
            "'{s}' is not a report file name: end it in .html, .md, .json, .xml or .txt \
             (or give --report last, without a name, for reports/<subcommand>-<time>.json)"
        )),
    }
}

fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("'{s}' is not a ratio: write SETS:GETS, e.g. 1:10");
    let (a, b) = s.split_once(':').ok_or_else(err)?;
    let (a, b) = (
        a.trim().parse().map_err(|_| err())?,
        b.trim().parse().map_err(|_| err())?,
    );
    if a == 0 && b == 0 {
        return Err(err());
    }
    Ok((a, b))
}

fn parse_size_range(s: &str) -> Result<(usize, usize), String> {
    let err =
        || format!("'{s}' is not a size: write bytes (e.g. 3) or a MIN-MAX range (e.g. 10-100)");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| err())?,
            b.trim().parse().map_err(|_| err())?,
        ),
        None => {
            let v = s.trim().parse().map_err(|_| err())?;
            (v, v)
        }
    };
    if a > b {
        return Err(err());
    }
    if b > 512 * 1024 * 1024 {
        return Err(format!(
            "'{s}' is larger than Redis's limit for one value (512 MiB = 536870912 bytes)"
        ));
    }
    Ok((a, b))
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn check\n  redlab --master redis://10.0.0.5:6379 --expect-replicas 2 check --format junit --output reports/check.xml\n  redlab check --only reachability,config-lint --fail-on warn"
)]
pub struct CheckArgs {
    /// Leave out this check (repeat, or comma-separate): reachability,
    /// replication, keycount, consistency, expiry, throughput, config-lint.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Run only this check (repeat, or comma-separate).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        conflicts_with = "skip"
    )]
    pub only: Vec<String>,
    /// Configuration lint findings fail instead of warn.
    #[arg(long)]
    pub strict: bool,
    /// Durability is wanted: the lint flags a master whose min-replicas-to-write
    /// is below N (N defaults to 1).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
    pub require_min_replicas: Option<u32>,
    #[command(flatten)]
    pub replication: ReplicateCheckArgs,
    #[command(flatten)]
    pub keycount: KeycountArgs,
    /// Keys the consistency check compares by value (a random sample, as in
    /// `compare --sample`).
    #[arg(long, default_value_t = crate::cmd::compare::CHECK_SAMPLE, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub consistency_sample: u64,
    /// TTL of the key the expiry check writes and watches.
    #[arg(long, default_value = "2s", value_parser = parse_period)]
    pub expiry_ttl: Duration,
    /// Throughput floor (ops/s) for the 1000-SET smoke test: below it fails.
    #[arg(long, value_name = "OPS")]
    pub min_ops: Option<f64>,
    /// Compare the smoke test with an earlier `redlab perf` JSON report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Allowed regression against --baseline beyond the runs' own noise, in
    /// percent (three times this for the p99). 20 holds on a shared 2-core VM
    /// (bench/baseline_gate.sh); a quiet dedicated machine may take 10.
    #[arg(long, default_value_t = 20.0, value_name = "PCT")]
    pub tolerance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    Fail,
    Warn,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  redlab stats\n  redlab stats --watch 500ms --count 10")]
pub struct StatsArgs {
    /// Refresh in place every INTERVAL (default 1s) until Ctrl-C.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s",
          value_parser = parse_period)]
    pub watch: Option<Duration>,
    /// With --watch: stop after N refreshes.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
    #[command(flatten)]
    no_write: NoWrite,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn ttl-watch --ttl 5s\n  redlab ttl-watch --key session:42 --window 30s"
)]
pub struct TtlWatchArgs {
    /// Watch this existing key (read-only: no write, no TTL change, no DEL).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// TTL of the key redlab writes when no --key is given.
    #[arg(long, default_value = "60s", value_parser = parse_period, conflicts_with = "key")]
    pub ttl: Duration,
    /// How often PTTL is read on every node.
    #[arg(long, default_value = "250ms", value_parser = parse_period)]
    pub interval: Duration,
    /// Allowed TTL difference between nodes, and how long past its expiry a node may still serve the key.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub tolerance: Duration,
    /// How long after the expected expiry to keep watching for the key to leave every node.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Stop watching after this long even if the key still lives (e.g. a key
    /// with a TTL of days); the report then says the watch ended early.
    #[arg(long, value_parser = parse_period)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn demo --fast\n  redlab demo --pace --ttl 20s\n  redlab --spawn demo --interactive"
)]
pub struct DemoArgs {
    /// The query the walkthrough caches.
    #[arg(long, default_value = "active users")]
    pub query: String,
    /// How long the simulated data source takes to answer.
    #[arg(long, visible_alias = "source-delay", default_value = "2s", value_parser = parse_duration)]
    pub source_latency: Duration,
    /// TTL of a cached entry.
    #[arg(long, default_value = "60s", value_parser = parse_period)]
    pub ttl: Duration,
    /// Stop watching the entry's TTL count down after this long [default:
    /// the whole TTL, so the entry is seen to expire].
    #[arg(long, value_parser = parse_duration)]
    pub ttl_window: Option<Duration>,
    /// Wait for Enter between steps (ignored when stdin is not a terminal); the
    /// cached entry does not age while it waits. Without it, a terminal gets a
    /// 1.5 s beat between steps.
    #[arg(long)]
    pub pace: bool,
    /// Shrink every wait (source latency, TTL) so the whole demo takes a few seconds.
    #[arg(long)]
    pub fast: bool,
    /// After the walkthrough, read queries from stdin and answer each with HIT or MISS,
    /// until an empty line or end of input.
    #[arg(long)]
    pub interactive: bool,
    /// Serve the workshop's cache demo as a live web page (and its JSON API)
    /// until Ctrl-C, instead of the walkthrough; its keys are removed then.
    #[arg(long, conflicts_with_all = ["pace", "interactive", "ttl_window"])]
    pub web: bool,
    /// Where --web listens [default: 127.0.0.1:5000]; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", requires = "web")]
    pub listen: Option<String>,
    /// Let --listen bind beyond loopback: anyone who reaches it can write
    /// cache entries on the master.
    #[arg(long, requires = "web")]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab report reports/perf.json --output perf.html\n  redlab report new.json --compare old.json --output compare.html\n  redlab report --merge client1.json client2.json client3.json --output all.html"
)]
pub struct ReportArgs {
    /// A JSON report written by redlab (`--format json`, or `--report` without a name).
    #[arg(value_name = "FILE", required_unless_present = "merge")]
    pub file: Option<PathBuf>,
    /// Another perf JSON report: its latency spectrum drawn over FILE's, and a table of deltas.
    #[arg(long, value_name = "OTHER")]
    pub compare: Option<PathBuf>,
    /// The perf reports of one load's clients (`perf --client K/N`), or a
    /// directory of them: their histograms added, one report of the whole load.
    #[arg(long, value_name = "FILE|DIR", num_args = 1.., conflicts_with_all = ["file", "compare"])]
    pub merge: Vec<PathBuf>,
    #[command(flatten)]
    no_topology: NoTopology,
    #[command(flatten)]
    no_password: NoPassword,
    #[command(flatten)]
    no_spawn: NoSpawn,
    #[command(flatten)]
    no_lab_shape: NoLabShape,
    #[command(flatten)]
    no_run: NoRun,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn compare\n  redlab compare --sample 10000\n  redlab --master redis://10.0.0.5:6379 --expect-replicas 2 compare --max-ops 20000"
)]
pub struct CompareArgs {
    /// Rounds in all: the first pass, then re-reads of the keys that differed
    /// (a key written while compared converges instead of being reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Pause before each re-check round.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Allowed difference between a key's expiry time on the master and on a
    /// replica (the time between the two reads is added to it).
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub ttl_tolerance: Duration,
    /// Differing keys named per kind and replica.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub show: usize,
    /// Show the first bytes of differing values (they may be sensitive).
    #[arg(long)]
    pub show_values: bool,
    /// Cap on redlab's commands per second per node; 0 for no cap.
    #[arg(long, default_value_t = crate::cmd::compare::DEFAULT_MAX_OPS, value_name = "OPS")]
    pub max_ops: u64,
    /// Compare a random sample of about N keys instead of every key.
    #[arg(long, value_name = "N", conflicts_with = "sample_ratio",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Compare this fraction of every db's keys (0 < R <= 1).
    #[arg(long, value_name = "R", value_parser = parse_fraction)]
    pub sample_ratio: Option<f64>,
    /// How long to wait for the replicas to catch up before comparing.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// SCAN's COUNT, and keys per pipelined batch.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub scan_count: u64,
    /// Never run DEBUG DIGEST (it blocks each server while it walks the dataset).
    #[arg(long)]
    pub no_digest: bool,
    /// Run DEBUG DIGEST only when no node holds more keys than this: it blocks
    /// each server for about 3 us a key (a million keys: seconds).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub digest_max_keys: u64,
    #[command(flatten)]
    no_write: NoWrite,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a fraction: write a number above 0 and at most 1, e.g. 0.01"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultArg {
    /// SIGKILL the master; restart it once a replica is promoted.
    KillMaster,
    /// SIGSTOP the master for --for, then SIGCONT.
    StopMaster,
    /// Stop the master cleanly (SIGTERM) and start it again at once.
    RestartMaster,
    /// SIGKILL a replica; restart it after --for.
    KillReplica,
    /// SIGSTOP a replica for --for, then SIGCONT.
    StopReplica,
    /// Cut a replica's link on the master (CLIENT KILL) and keep it paused for --for.
    PartitionReplica,
    /// SENTINEL FAILOVER: the graceful case.
    Failover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResyncArg {
    Partial,
    Full,
    /// No resync at all (the link survived).
    None,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  redlab --spawn --sentinels 3 drill --fault kill-master\n  redlab --spawn --sentinels 3 --spawn-replicas 1 drill --fault stop-replica --for 5s\n  redlab --spawn --sentinels 3 --backlog 16kb drill --fault stop-replica --rate 200"
)]
pub struct DrillArgs {
    /// The fault to inject.
    #[arg(long, value_enum)]
    pub fault: FaultArg,
    /// The replica a replica fault hits (replica1, ...; default: the first replica).
    #[arg(long, value_name = "NODE")]
    pub target: Option<String>,
    /// How long stop-* and partition-replica keep it paused, and kill-replica keeps it down.
    #[arg(long = "for", default_value = "5s", value_parser = parse_period, value_name = "DUR")]
    pub for_: Duration,
    /// Writes per second, each with a unique id.
    #[arg(long, default_value_t = 100.0, value_name = "OPS")]
    pub rate: f64,
    /// What acknowledges a write: replicas:N (SET, then WAIT N on the same
    /// connection) or none (plain SET).
    #[arg(long, default_value = "replicas:1", value_parser = parse_ack, value_name = "LEVEL")]
    pub ack: AckArg,
    /// WAIT's timeout.
    #[arg(long, default_value = "500ms", value_parser = parse_period)]
    pub ack_timeout: Duration,
    /// Bound on connecting and on each SET: a stopped master holds a writer this long.
    #[arg(long, default_value = "500ms", value_parser = parse_period)]
    pub write_timeout: Duration,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32, value_name = "BYTES")]
    pub value_size: usize,
    /// Load before the fault.
    #[arg(long, default_value = "2s", value_parser = parse_period)]
    pub before: Duration,
    /// Load after the topology is stable again.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub after: Duration,
    /// How long the topology may take to be stable again after the fault.
    #[arg(long, default_value = "40s", value_parser = parse_period)]
    pub settle: Duration,
    /// How often each replica's offset lag is sampled during a replica fault
    /// (one INFO on the master each).
    #[arg(long, default_value = "100ms", value_parser = parse_period)]
    pub lag_interval: Duration,
    /// Fail when writes were unavailable longer [default: the lab's
    /// down-after + failover-timeout + the fault's --for].
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_downtime: Option<Duration>,
    /// Acknowledged writes (at the --ack level) that may be lost.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_lost: u64,
    /// The resync the faulted replica must do [default: Redis's rule: partial
    /// when what it missed fits the master's backlog, full when it does not].
    #[arg(long, value_enum)]
    pub expect: Option<ResyncArg>,
    /// Where `lab up` keeps its state: the drill finds the lab's processes there.
    #[arg(
        long,
        env = "REDLAB_STATE_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
}

/// `--ack`: `replicas:N` is `AckArg(Some(N))`, `none` is `AckArg(None)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckArg(pub Option<u32>);

fn parse_ack(s: &str) -> Result<AckArg, String> {
    parse_ack_level(s).map(AckArg)
}

fn parse_ack_level(s: &str) -> Result<Option<u32>, String> {
    let err = || format!("'{s}' is not an ack level: write replicas:N (e.g. replicas:1) or none");
    match s.trim() {
        "none" => Ok(None),
        other => {
            let n = other.strip_prefix("replicas:").ok_or_else(err)?;
            let n: u32 = n.trim().parse().map_err(|_| err())?;
            if n == 0 {
                return Err(format!("'{s}': replicas:0 acknowledges nothing; use none"));
            }
            Ok(Some(n))
        }
    }
}

/// `16kb`, `1mb`, `64k`, or bytes.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("'{s}' is not a size: write bytes, or e.g. 16kb, 1mb");
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let mul = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1024,
        "m" | "mb" => 1024 * 1024,
        "g" | "gb" => 1024 * 1024 * 1024,
        _ => return Err(err()),
    };
    n.checked_mul(mul).filter(|v| *v > 0).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_levels_and_byte_sizes() {
        assert_eq!(parse_ack("replicas:2").unwrap(), AckArg(Some(2)));
        assert_eq!(parse_ack("none").unwrap(), AckArg(None));
        assert!(parse_ack("replicas:0").is_err() && parse_ack("all").is_err());
        assert_eq!(parse_bytes("16kb").unwrap(), 16384);
        assert_eq!(parse_bytes("1mb").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("500").unwrap(), 500);
        assert!(parse_bytes("0").is_err() && parse_bytes("3 parsecs").is_err());
    }

    #[test]
    fn ratios_and_sizes() {
        assert_eq!(parse_ratio("1:10").unwrap(), (1, 10));
        assert!(parse_ratio("0:0").is_err() && parse_ratio("3").is_err());
        assert_eq!(parse_size_range("3").unwrap(), (3, 3));
        assert_eq!(parse_size_range("10-100").unwrap(), (10, 100));
        assert!(parse_size_range("100-10").is_err());
    }

    /// The light path gives exactly the full parser's `Cli`, or declines.
    fn same_as_full(args: &[&str]) -> bool {
        let full = Cli::try_parse_from(args).map(|c| format!("{c:?}"));
        match light(args) {
            Some(l) => {
                assert_eq!(
                    Ok(format!("{l:?}")),
                    full.map_err(|e| e.to_string()),
                    "{args:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_light_parse_gives_what_the_full_parser_gives() {
        let url = "redis://127.0.0.1:6379";
        let taken: &[&[&str]] = &[
            &["redlab", "perf"],
            &[
                "redlab", "--master", url, "-q", "--format", "json", "perf", "-n", "1000", "-P",
                "1000", "--rounds", "1", "--warmup", "0",
            ],
            // Global options after the subcommand, short flags bundled, `=` forms.
            &[
                "redlab",
                "perf",
                "--master",
                url,
                "-qv",
                "-n1",
                "-P=16",
                "-c",
                "4",
                "--timings",
            ],
            &[
                "redlab",
                "--timeout=500ms",
                "perf",
                "--duration",
                "2s",
                "--rate",
                "1e4",
                "-d",
                "10-100",
                "--workload",
                "mixed",
                "--ratio",
                "1:3",
                "--keyspace",
                "100",
            ],
            &[
                "redlab",
                "--replica",
                "redis://a:1,redis://b:2",
                "--replica",
                "redis://c:3",
                "perf",
                "--read-from",
                "replicas",
                "--workload",
                "get",
            ],
            &[
                "redlab",
                "perf",
                "--client",
                "2/3",
                "--start-at",
                "1800000000",
                "--threads",
                "2",
                "--key-ttl",
                "1m",
                "--keep-keys",
                "--hdr-out",
                "h.hgrm",
            ],
            &[
                "redlab",
                "--cluster",
                "--spawn",
                "--spawn-shards",
                "4",
                "perf",
                "--threads-per-shard",
                "2",
                "--baseline",
                "b.json",
                "--tolerance",
                "5",
            ],
            &["redlab", "perf", "-n", "5", "--report"],
            &[
                "redlab",
                "--report",
                "r.json",
                "--fail-on",
                "warn",
                "--color",
                "never",
                "perf",
            ],
            // A value spelt like a subcommand, ahead of it: the same subcommand.
            &["redlab", "--prefix", "perf", "perf", "-n", "1"],
            &["redlab", "perf", "--"],
            // Every other subcommand takes the path too.
            &[
                "redlab",
                "--spawn",
                "check",
                "--only",
                "reachability,config-lint",
                "--strict",
            ],
            &[
                "redlab",
                "check",
                "--skip",
                "expiry",
                "--require-min-replicas",
            ],
            &[
                "redlab",
                "replicate-check",
                "--probes",
                "5",
                "--max-lag",
                "250ms",
            ],
            &["redlab", "keycount", "--settle", "10s"],
            &["redlab", "lab", "up", "--base-port", "44100"],
            &["redlab", "lab", "status"],
            &["redlab", "stats"],
            &["redlab", "ttl-watch"],
            &["redlab", "demo"],
            &["redlab", "compare"],
            &["redlab", "clean", "--run", "abc", "--rate", "10"],
            &["redlab", "report", "saved.json", "--format", "html"],
            &["redlab", "drill", "--fault", "kill-master"],
            &["redlab", "completions", "bash"],
            &["redlab", "man", "lab", "up"],
        ];
        for args in taken {
            assert!(same_as_full(args), "light path not taken: {args:?}");
        }
        // What the full parser must answer (help, versions, errors), and
        // lines whose first subcommand-like word is a value: declined, or
        // the same.
        let declined: &[&[&str]] = &[
            &["redlab"],
            &["redlab", "--help"],
            &["redlab", "perf", "--help"],
            &["redlab", "perf", "-h"],
            &["redlab", "help", "perf"],
            &["redlab", "--version"],
            &["redlab", "perf", "--version"],
            &["redlab", "perf", "-n", "lots"],
            &["redlab", "perf", "--bogus"],
            &["redlab", "perf", "-n", "1", "--duration", "1s"],
            &["redlab", "--prefix", "perf", "check"],
            &["redlab", "--report", "perf", "-n", "5"],
            &["redlab", "--master", "perf"],
            &["redlab", "perf", "check"],
            &["redlab", "lab"],
            &["redlab", "completions"],
            &["redlab", "nonsense"],
        ];
        for args in declined {
            assert!(!same_as_full(args), "light path taken: {args:?}");
        }
    }

    #[test]
    fn the_light_tree_has_every_subcommand_with_the_same_arguments() {
        use clap::CommandFactory;
        let full = Cli::command();
        for sub in full.get_subcommands().filter(|s| s.get_name() != "help") {
            let light = one_subcommand(sub.get_name())
                .unwrap_or_else(|| panic!("{} has no light path", sub.get_name()));
            let ids = |c: &clap::Command| {
                let mut v: Vec<String> = c.get_arguments().map(|a| format!("{a:?}")).collect();
                v.sort();
                v
            };
            assert_eq!(ids(&light), ids(sub), "{}", sub.get_name());
            let subs = |c: &clap::Command| {
                c.get_subcommands()
                    .map(|s| s.get_name().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(subs(&light), subs(sub), "{}", sub.get_name());
        }
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        for sub in Cli::command().get_subcommands() {
            let args = match sub.get_name() {
                "lab" => vec!["redlab", "lab", "status"],
                "report" => vec!["redlab", "report", "saved.json"],
                "drill" => vec!["redlab", "drill", "--fault", "kill-master"],
                "completions" => vec!["redlab", "completions", "bash"],
                name => vec!["redlab", name],
            };
            let cli = Cli::try_parse_from(args).unwrap();
            let (_, job) = crate::app::settings::resolve(&cli).unwrap();
            assert_eq!(job.name(), sub.get_name());
        }
    }
}
