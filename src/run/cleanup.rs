//! Removing what a run wrote: bounded, interruptible, on the run's own
//! connection, and part of the verdict (a cleanup that leaves keys fails the
//! run, naming what is left and the command that removes it).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::{Ctx, Owned, RangeRecord};
use crate::report::{plural, Check};

/// The final WAIT for the replicas to apply the deletes: short, whatever
/// --timeout is (a run with a replica down must not wait for it).
const WAIT_BOUND: Duration = Duration::from_secs(1);

/// What leaves the ledger once its commands are done.
enum Done {
    Entry(Owned),
    Range(RangeRecord),
}

/// What the cleanup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleaned {
    /// Keys the master deleted.
    pub removed: u64,
    /// Keys that may remain (an upper bound: the ledger's unremoved part).
    pub remaining: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// Stopped by a second signal.
    pub interrupted: bool,
}

impl Ctx {
    /// Remove every key in the ledger from the master (UNLINK, or DEL where
    /// the ACL allows only that), in batches, until done, an error, or
    /// `stop` resolves; then WAIT briefly for the replicas. Entries leave the
    /// ledger only once deleted, so what remains is known exactly.
    pub async fn cleanup(&self, stop: impl Future<Output = ()>) -> Cleaned {
        let mut out = Cleaned::default();
        let owned = self.ledger.snapshot();
        if owned.is_empty() {
            return out;
        }
        tokio::pin!(stop);
        let mut conn = match self.master_conn().await {
            Ok(c) => c,
            Err(e) => {
                out.error = Some(e.to_string());
                out.remaining = self.ledger.bound();
                return out;
            }
        };
        let verb = self.safety.delete_verb();
        let total = self.ledger.bound();
        let bar = (total > 20_000).then(|| self.progress.bar(total, "removing this run's keys"));
        let mut done = 0u64;
        // Single keys, then each load's names once (its rounds share them).
        let mut work: Vec<(Vec<redis::Cmd>, Done)> = owned
            .iter()
            .filter(|o| matches!(o, Owned::Key(_)))
            .map(|o| (o.unlinks(verb), Done::Entry(o.clone())))
            .collect();
        let cluster = self.shard.is_some();
        work.extend(
            self.ledger
                .ranges()
                .into_iter()
                .map(|r| (r.batches_in(verb, cluster), Done::Range(r))),
        );
        'entries: for (cmds, entry) in &work {
            for cmd in cmds {
                let n = cmd.args_iter().count().saturating_sub(1) as u64;
                tokio::select! {
                    biased;
                    _ = &mut stop => {
                        out.interrupted = true;
                        break 'entries;
                    }
                    r = self.query_reconnecting(&mut conn, cmd) => match r {
                        Ok(k) => out.removed += k,
                        Err(e) => {
                            out.error = Some(e.to_string());
                            break 'entries;
                        }
                    },
                }
                done += n;
                if let Some(b) = &bar {
                    b.set_position(done);
                }
            }
            match entry {
                Done::Entry(o) => self.ledger.remove(o),
                Done::Range(r) => self.ledger.remove_covered(r),
            }
        }
        drop(bar);
        self.safety.add_removed(out.removed);
        out.remaining = self.ledger.bound();
        if out.remaining == 0 {
            self.wait_replicas(&mut conn).await;
        }
        out
    }

    /// A command on the run's connection; if the master dropped it (a
    /// restart), once more on a new one, which the run then keeps.
    async fn query_reconnecting(
        &self,
        conn: &mut crate::client::Conn,
        cmd: &redis::Cmd,
    ) -> Result<u64, crate::client::NodeError> {
        match conn.query::<u64>(cmd).await {
            Err(e) if e.kind == crate::client::ErrorKind::Closed => {
                *conn = crate::client::Conn::connect(&self.topology.master, self.timeout).await?;
                self.safety.set_master_conn(conn.clone());
                conn.query::<u64>(cmd).await
            }
            other => other,
        }
    }

    /// WAIT for the replicas the master lists, briefly (best effort: a down
    /// replica is reported by the checks themselves).
    async fn wait_replicas(&self, conn: &mut crate::client::Conn) {
        // A master given or found without replicas: no one to wait for
        // (and a round trip saved on every plain benchmark).
        if self.topology.replicas.is_empty() {
            return;
        }
        let Ok(info) = conn.info("replication").await else {
            return;
        };
        let online = info
            .replicas()
            .iter()
            .filter(|l| l.state == crate::client::LinkState::Online)
            .count();
        if online == 0 {
            return;
        }
        let bound = WAIT_BOUND.min(self.timeout);
        let _ = conn
            .query_for::<u64>(
                redis::cmd("WAIT")
                    .arg(online)
                    .arg(bound.as_millis().max(1) as u64),
                bound,
            )
            .await;
    }

    /// `run.cleanup` when keys remain: what, and how to remove them. A
    /// cleanup that removed everything adds nothing to the report (the
    /// subcommand's own checks are the verdict; stderr says what was removed
    /// with -v).
    pub fn cleanup_check(&self, c: &Cleaned) -> Option<Check> {
        if c.remaining == 0 {
            return None;
        }
        let why = if c.interrupted {
            "interrupted by a second signal".to_string()
        } else {
            c.error.clone().unwrap_or_else(|| "stopped".into())
        };
        Some(Check::fail(
            "run.cleanup",
            format!(
                "up to {} of this run remain under {}* ({why}); remove them with `{}`",
                plural(c.remaining, "key"),
                self.prefix(),
                super::safety::clean_hint(self, Some(&self.run_id))
            ),
        ))
    }
}
