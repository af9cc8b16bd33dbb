//! What every subcommand gets: the topology, the bounds, the run id, progress,
//! and the ledger of keys it wrote (so they are removed even on Ctrl-C).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::client::{Conn, NodeError};
use crate::report::Manifest;
use crate::survey::{self, NodeState, Survey};
use crate::topology::Topology;
use crate::ui::progress::Progress;

mod ledger;
mod manifest;
mod signals;

pub use ledger::{Ledger, Owned};
pub use manifest::{hostname, new_run_id, redacted_args};
pub use signals::Signals;

/// The shortest TTL a key of redlab's gets: long enough for any step that
/// reads it back, short enough that a crash leaves nothing for long.
pub const MIN_KEY_TTL: Duration = Duration::from_secs(60);

/// The TTL for a key a step needs for `need`: every key redlab writes
/// outside a perf measurement expires by itself.
pub fn key_ttl(need: Duration) -> Duration {
    need.max(MIN_KEY_TTL)
}

pub struct Ctx {
    pub topology: Topology,
    pub timeout: Duration,
    pub run_id: String,
    pub progress: Progress,
    pub ledger: Ledger,
    pub started: SystemTime,
    pub started_at: Instant,
    /// The command line with secrets replaced.
    pub args: Vec<String>,
    /// Lines for the person at the terminal (stderr; silenced by --quiet).
    pub say: crate::ui::narrate::Narrator,
    /// The master as discovery found it, for the first survey to reuse.
    pub discovered: Mutex<Option<NodeState>>,
}

impl Ctx {
    /// `redlab:<run-id>:` — every key redlab writes starts with this.
    pub fn prefix(&self) -> String {
        format!("redlab:{}:", self.run_id)
    }

    /// Every node's state (`survey::survey`), the first time reusing the
    /// master's visit from discovery. Refuses what redlab would mis-test
    /// (`Survey::validate`) before anything is written.
    pub async fn survey(&self) -> anyhow::Result<Survey> {
        let known = self.discovered.lock().map(|mut d| d.take()).unwrap_or(None);
        let s = survey::survey_reusing(&self.topology, self.timeout, known).await;
        s.validate()?;
        Ok(s)
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
        }
    }

    /// Remove every key in the ledger from the master, then wait (bounded) for
    /// the replicas to apply the deletes.
    pub async fn cleanup(&self) -> Result<u64, NodeError> {
        self.cleanup_on(None).await
    }

    /// `cleanup` on a live master connection where the caller has one.
    pub async fn cleanup_on(&self, conn: Option<Conn>) -> Result<u64, NodeError> {
        // Entries leave the ledger only once deleted: an error or a Ctrl-C in
        // the middle leaves the rest for the next attempt (or the hint).
        let owned = self.ledger.snapshot();
        if owned.is_empty() {
            return Ok(0);
        }
        let mut conn = match conn {
            Some(c) => c,
            None => Conn::connect(&self.topology.master, self.timeout).await?,
        };
        let mut removed = 0u64;
        for entry in &owned {
            for cmd in entry.unlinks() {
                removed += conn.query::<u64>(&cmd).await?;
            }
            self.ledger.remove(entry);
        }
        let n = self.topology.replicas.len();
        if n > 0 {
            let wait_ms = self.timeout.as_millis().max(1) as u64;
            // Best effort: a down replica is reported by the check itself.
            let _ = conn
                .query_for::<u64>(redis::cmd("WAIT").arg(n).arg(wait_ms), self.timeout)
                .await;
        }
        Ok(removed)
    }
}
