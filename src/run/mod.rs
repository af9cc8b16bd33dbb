//! What every subcommand gets: the topology, the bounds, the run id, progress,
//! the ledger of keys it wrote (removed at the end, even on Ctrl-C), and the
//! safety layer around writing (`safety`: may this run write at all, the
//! registry and heartbeat, evictions watched) and cleaning up (`cleanup`).

use std::time::{Duration, Instant, SystemTime};

use crate::client::Conn;
use crate::report::Manifest;
use crate::survey::{self, NodeState, Survey};
use crate::topology::Topology;
use crate::ui::narrate::Narrator;
use crate::ui::progress::Progress;

pub mod cleanup;
mod ledger;
mod manifest;
mod measured;
pub(crate) use crate::namespace;
pub mod registry;
pub mod safety;
mod signals;
pub use crate::timings;

pub use ledger::{Ledger, Owned, RangeRecord};
pub use manifest::{hostname, new_run_id, redacted_args};
pub use measured::{Found, Measured};
pub use signals::Signals;

/// The shortest TTL a key of redlab's gets: long enough for any step that
/// reads it back, short enough that a crash leaves nothing for long.
pub const MIN_KEY_TTL: Duration = Duration::from_secs(60);

/// The TTL for a key a step needs for `need`: every key redlab writes
/// outside a perf measurement expires by itself.
pub fn key_ttl(need: Duration) -> Duration {
    need.max(MIN_KEY_TTL)
}

/// The shard of a cluster a `Ctx` works on: one `Ctx` per shard, each with
/// the shard's topology, its own ledger, safety state and registry.
#[derive(Debug, Clone)]
pub struct ShardScope {
    /// `shard1`, ...
    pub name: String,
    /// The hash tag of one of its slots: every key of this run on the shard
    /// carries it (`redlab:<run-id>:{tag}:...`), so the keys hash to this
    /// shard, all in one slot (a multi-key UNLINK is never CROSSSLOT).
    pub tag: String,
}

pub struct Ctx {
    /// The topology; on a cluster, this shard's.
    pub topology: Topology,
    /// Set when the topology is one shard of a cluster.
    pub shard: Option<ShardScope>,
    pub timeout: Duration,
    pub run_id: String,
    pub progress: Progress,
    pub ledger: Ledger,
    pub started: SystemTime,
    pub started_at: Instant,
    /// The command line with secrets replaced.
    pub args: Vec<String>,
    /// The subcommand, for the registry record.
    pub command: &'static str,
    /// The subcommand writes by design (load, demo, expiry, drill): it
    /// refuses to start on a node that does not serve (`app::job::Kind`).
    pub writes: bool,
    /// The subcommand removes what dead runs left (clean): no leftover scan
    /// before it, it says what it removes itself.
    pub removes_leftovers: bool,
    /// Lines for the person at the terminal (stderr; silenced by --quiet).
    pub say: Narrator,
    /// `--allow-eviction`: the user consented to writes that may evict.
    pub allow_eviction: bool,
    /// The master as discovery found it (None when it was not discovered,
    /// and on a cluster's shards): the run's first survey reuses its visit.
    pub discovered: Option<NodeState>,
    /// What the safety layer learnt and decided (see `safety`), with the
    /// surveys' record: the first one's nodes, the nodes that did not serve.
    pub safety: safety::State,
    /// Cancelled on the first ending signal (SIGINT, SIGTERM, SIGHUP). A
    /// subcommand whose job says it ends on cancel (`Kind::ends_on_cancel`:
    /// compare, stats --watch) listens to it and returns its report; every
    /// other run is stopped where it stands.
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Ctx {
    /// `redlab:<run-id>:` — every key redlab writes starts with this; on a
    /// cluster shard `redlab:<run-id>:{tag}:`, which hashes to the shard.
    pub fn prefix(&self) -> String {
        namespace::run_prefix(&self.run_id, self.registry_tag())
    }

    /// The shard's hash tag, for the registry's key names (None off a cluster).
    pub fn registry_tag(&self) -> Option<&str> {
        self.shard.as_ref().map(|s| s.tag.as_str())
    }

    /// Every node's state (`survey::survey`), the first time reusing the
    /// master's visit from discovery. Refuses what redlab would mis-test
    /// (`Survey::validate`) before anything is written; that error carries
    /// the nodes as found (`Measured`). The first survey is the reference
    /// the end of the run compares with (evictions), and starts the look
    /// for dead runs' leftovers (`safety`; the run collects it at the end).
    pub async fn survey(&self) -> anyhow::Result<Survey> {
        let known = match self.safety.surveyed() {
            false => self.discovered.clone(),
            true => None,
        };
        let s = survey::survey_reusing(&self.topology, self.timeout, known);
        let s = timings::timed("survey (every node: INFO, CONFIG)", s).await;
        let found = |e: anyhow::Error| Measured::nodes(s.infos(), e);
        s.validate().map_err(found)?;
        self.serving_gate(&s).map_err(found)?;
        self.safety.first_survey(self, &s).await;
        Ok(s)
    }

    /// Every node that does not serve its users (`serving`): a subcommand
    /// that writes by design refuses to run (exit 2); the others run what
    /// they can, and the safety layer keeps `<node>.serving`, failed, for
    /// the run to add to their report.
    fn serving_gate(&self, s: &Survey) -> anyhow::Result<()> {
        if self.writes {
            return match s.all().iter().find_map(|st| st.not_serving()) {
                Some(n) => Err(n.into()),
                None => Ok(()),
            };
        }
        self.safety.not_serving(s.serving_checks());
        Ok(())
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }

    pub fn manifest(&self) -> Manifest {
        Manifest {
            redlab_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: humantime::format_rfc3339_millis(self.started).to_string(),
            duration_ms: (self.started_at.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            host: hostname(),
            args: self.args.clone(),
            run_id: self.run_id.clone(),
            timings: timings::steps(),
        }
    }

    /// Remove keys this run wrote and no longer needs, now rather than at the
    /// end (a later step must not see them expire or be counted), and wait
    /// until `replicas` replicas have the deletes (bounded by the timeout).
    /// What fails here stays in the ledger for the run's cleanup.
    pub async fn discard(&self, master: &mut Conn, keys: &[String], replicas: usize) {
        if keys.is_empty() {
            return;
        }
        let mut unlink = redis::cmd("UNLINK");
        for k in keys {
            unlink.arg(k);
        }
        if master.query::<u64>(&unlink).await.is_err() {
            return;
        }
        for k in keys {
            self.ledger.remove(&ledger::Owned::Key(k.clone()));
        }
        if replicas > 0 {
            let wait = redis::cmd("WAIT")
                .arg(replicas)
                .arg(self.timeout.as_millis().max(1) as u64)
                .clone();
            let _ = master
                .query_for::<u64>(&wait, self.timeout + Duration::from_secs(1))
                .await;
        }
    }

    /// A connection to the master: the survey's when there is one (a master
    /// at maxclients refuses a new one), else a new one.
    pub async fn master_conn(&self) -> Result<Conn, crate::client::NodeError> {
        if let Some(c) = self.safety.master_conn() {
            return Ok(c);
        }
        Conn::connect(&self.topology.master, self.timeout).await
    }
}
