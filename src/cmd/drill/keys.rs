//! The drill's keys go from the master that has them when the drill ends,
//! which may not be the one the run began with; also when the drill is
//! interrupted (a synchronous removal from `Drop`, bounded).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::client::Conn;
use crate::run::{Ctx, Ledger, Owned};
use crate::topology::Node;

pub struct Keys {
    ledger: Ledger,
    entry: Owned,
    prefix: String,
    next: Arc<AtomicU64>,
    /// The master the load writes to now.
    master: watch::Receiver<Node>,
    timeout: Duration,
    removed: bool,
}

impl Keys {
    /// Register `prefix0 .. prefix{next}` in the run's ledger.
    pub fn register(ctx: &Ctx, prefix: &str, master: watch::Receiver<Node>) -> Keys {
        let next = Arc::new(AtomicU64::new(0));
        ctx.ledger.add_range(prefix, next.clone(), 0, None, 0);
        Keys {
            ledger: ctx.ledger.clone(),
            entry: Owned::Range {
                prefix: prefix.to_string(),
                upto: next.clone(),
                slack: 0,
                keyspace: None,
                seed: 0,
            },
            prefix: prefix.to_string(),
            next,
            master,
            timeout: ctx.timeout,
            removed: false,
        }
    }

    /// The id counter the load draws from.
    pub fn ids(&self) -> Arc<AtomicU64> {
        self.next.clone()
    }

    /// Remove them from `master` now (then the ledger forgets them): the
    /// run follows the master the drill ended on, for its cleanup and its
    /// registry record too.
    pub async fn remove_from(&mut self, ctx: &Ctx, master: &Node) {
        if let Ok(conn) = Conn::connect(master, ctx.timeout).await {
            ctx.safety.set_master_conn(conn);
            let c = ctx.cleanup(std::future::pending()).await;
            if c.remaining == 0 && c.error.is_none() {
                self.removed = true;
            }
        }
    }

    fn remove_blocking(&self) -> redis::RedisResult<()> {
        let node = self.master.borrow().clone();
        let client = redis::Client::open(node.info.clone())?;
        let mut c = client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        let end = self.next.load(Ordering::SeqCst);
        for start in (0..end).step_by(1000) {
            let mut cmd = redis::cmd("UNLINK");
            for id in start..(start + 1000).min(end) {
                cmd.arg(format!("{}{id}", self.prefix));
            }
            cmd.exec(&mut c)?;
        }
        Ok(())
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        // Interrupted: the run's own cleanup would go to the master the run
        // began with; these keys are on the one the load followed.
        if !self.removed && self.remove_blocking().is_ok() {
            self.ledger.remove(&self.entry);
        }
    }
}
