//! Command-line surface (clap derive only). Each subcommand turns its args into
//! a plain config before any work starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

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

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Master URL (redis://[user:pass@]host:port[/db], rediss:// for TLS).
    /// Given without --replica, the replicas are discovered from the master.
    #[arg(long, global = true, env = "REDLAB_MASTER", value_name = "URL")]
    pub master: Option<String>,

    /// Replica URL; repeat for each replica (env: comma-separated list).
    #[arg(
        long = "replica",
        id = "replica_urls",
        global = true,
        env = "REDLAB_REPLICAS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub replicas: Vec<String>,

    /// Find the replicas from the master's INFO replication.
    #[arg(long, global = true)]
    pub discover: bool,

    /// ACL user for every node (a user in a URL wins).
    #[arg(long, global = true, env = "REDLAB_USER")]
    pub user: Option<String>,

    /// Password for every node (a password in a URL wins).
    #[arg(long, global = true, env = "REDLAB_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Bound on connecting and on every command (500ms, 2s, 1m; a bare number is seconds).
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Start a throwaway local lab on free ports, run against it, stop it.
    #[arg(long, global = true)]
    pub spawn: bool,

    /// Replicas in the --spawn lab.
    #[arg(long, global = true, default_value_t = 3, value_name = "N")]
    pub spawn_replicas: usize,

    /// Output format (table on stdout by default).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    /// Write the report to this file (format from --format, else from the extension).
    #[arg(long, global = true, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Write the report to reports/<subcommand>-<UTC timestamp>.<ext>.
    #[arg(long, global = true)]
    pub report: bool,

    /// No progress output on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

impl GlobalArgs {
    /// A machine format (JSON, JUnit) goes to stdout: nothing else may.
    pub fn machine_stdout(&self) -> bool {
        self.output.is_none()
            && !self.report
            && matches!(self.format, Some(Format::Json | Format::Junit))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that every replica follows this master and how fast writes reach it.
    ReplicateCheck(ReplicateCheckArgs),
    /// Compare key counts per database across the nodes, after replication settles.
    Keycount(KeycountArgs),
    /// Start, stop or show a local master + replicas from redis-server.
    Lab(LabArgs),
    /// Per-node status, memory, keys, ops/s, hit rate, replication offset and lag.
    Stats(StatsArgs),
    /// Watch a key's TTL count down on every node and measure how expiry propagates.
    TtlWatch(TtlWatchArgs),
    /// The live walkthrough: cache-aside, replication and expiry, step by step.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ReplicateCheckArgs {
    /// Probe keys written on the master and timed to each replica.
    #[arg(long, default_value_t = 20)]
    pub probes: u32,
    /// How long a probe may take to become visible on a replica.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub max_lag: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct KeycountArgs {
    /// How long to wait for the replicas to catch up before counting.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
    /// Where the lab keeps its data, logs and pid files.
    #[arg(long, env = "REDLAB_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LabAction {
    /// Start a master and N replicas bound to 127.0.0.1; returns once they are in sync.
    Up {
        /// Number of replicas.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// Port of the master; replicas take the next ones.
        #[arg(long, default_value_t = crate::lab::DEFAULT_BASE_PORT)]
        base_port: u16,
    },
    /// Stop the processes `lab up` started.
    Down,
    /// Show the lab's processes and whether they answer.
    Status,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Refresh in place every INTERVAL (default 1s) until Ctrl-C.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s",
          value_parser = parse_duration)]
    pub watch: Option<Duration>,
    /// With --watch: stop after N refreshes.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct TtlWatchArgs {
    /// Watch this existing key (read-only: no write, no TTL change, no DEL).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// TTL of the key redlab writes when no --key is given.
    #[arg(long, default_value = "60s", value_parser = parse_duration, conflicts_with = "key")]
    pub ttl: Duration,
    /// How often PTTL is read on every node.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Allowed TTL difference between nodes, and how long past its expiry a node may still serve the key.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub tolerance: Duration,
    /// How long after the expected expiry to keep watching for the key to leave every node.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The query the walkthrough caches.
    #[arg(long, default_value = "active users")]
    pub query: String,
    /// How long the simulated data source takes to answer.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub source_latency: Duration,
    /// TTL of a cached entry.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub ttl: Duration,
    /// How long to watch the entry's TTL count down (all the way when the TTL is shorter).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub ttl_window: Duration,
    /// Wait for Enter between steps (ignored when stdin is not a terminal).
    #[arg(long)]
    pub pace: bool,
    /// Shrink every wait (source latency, TTL) so the whole demo takes a few seconds.
    #[arg(long)]
    pub fast: bool,
    /// After the walkthrough, read queries from stdin and answer each with HIT or MISS,
    /// until an empty line or end of input.
    #[arg(long)]
    pub interactive: bool,
}
