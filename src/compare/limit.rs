//! The per-node cap on redlab's commands per second (`--max-ops`), shared by
//! every connection and pipelined batch to that node, and the node handle
//! that charges it.
//!
//! Cost: one op per command, plus one per 100 keys a command names or
//! elements it returns (a 1000-key EXISTS or a 10,000-element LRANGE costs
//! the server more than a TYPE does). Commands are charged before they are
//! sent; elements once the reply says how many there were, so the next
//! batch waits for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{FromRedisValue, Pipeline};

use crate::client::{Conn, NodeError};

/// Ops for `commands` commands that name or return `items` keys or elements.
pub fn cost(commands: u64, items: u64) -> u64 {
    commands + items / 100
}

/// A token bucket in virtual time (GCRA): each reservation moves `next` on by
/// its cost; a caller sleeps until its turn, less a short burst allowance.
pub struct Limiter {
    per_op: Option<Duration>,
    burst: Duration,
    next: Mutex<Instant>,
}

impl Limiter {
    /// None: no cap.
    pub fn new(max_ops_per_sec: Option<u64>) -> Limiter {
        // Enough for a batch to go out at once after a pause, never more
        // than a tenth of a second of the cap.
        let burst = Duration::from_millis(100);
        let now = Instant::now();
        Limiter {
            per_op: max_ops_per_sec
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs_f64(1.0 / n as f64)),
            burst,
            next: Mutex::new(now.checked_sub(burst).unwrap_or(now)),
        }
    }

    /// Reserve `ops` and return how long to wait before sending them.
    fn reserve(&self, ops: u64) -> Duration {
        let Some(per_op) = self.per_op else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let floor = now.checked_sub(self.burst).unwrap_or(now);
        let start = (*next).max(floor);
        *next = start + per_op.saturating_mul(ops.min(u32::MAX as u64) as u32);
        start.saturating_duration_since(now)
    }

    pub async fn acquire(&self, ops: u64) {
        let wait = self.reserve(ops);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Charge ops already spent (elements a reply turned out to hold).
    pub fn debit(&self, ops: u64) {
        if ops > 0 {
            self.reserve(ops);
        }
    }
}

/// One node as the engine talks to it: a connection (to one db), the node's
/// shared cap, and its op counter.
#[derive(Clone)]
pub struct NodeIo {
    pub conn: Conn,
    pub limit: Arc<Limiter>,
    pub ops: Arc<AtomicU64>,
}

impl NodeIo {
    /// The same node and cap on another connection (another db).
    pub fn with_conn(&self, conn: Conn) -> NodeIo {
        NodeIo {
            conn,
            limit: self.limit.clone(),
            ops: self.ops.clone(),
        }
    }

    pub async fn pipe<T: FromRedisValue>(&self, p: &Pipeline, ops: u64) -> Result<T, NodeError> {
        self.limit.acquire(ops).await;
        self.ops.fetch_add(ops, Ordering::Relaxed);
        self.conn.clone().pipe(p).await
    }

    pub async fn query<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        ops: u64,
    ) -> Result<T, NodeError> {
        self.limit.acquire(ops).await;
        self.ops.fetch_add(ops, Ordering::Relaxed);
        self.conn.clone().query(cmd).await
    }

    /// A command that may take longer than the timeout by design (DEBUG DIGEST
    /// walks the whole dataset).
    pub async fn query_slow<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        extra: Duration,
    ) -> Result<T, NodeError> {
        self.limit.acquire(1).await;
        self.ops.fetch_add(1, Ordering::Relaxed);
        self.conn.clone().query_for(cmd, extra).await
    }

    /// Elements a reply held, charged after the fact.
    pub fn debit(&self, items: u64) {
        let ops = items / 100;
        self.limit.debit(ops);
        self.ops.fetch_add(ops, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_spaces_reservations_after_a_burst() {
        let l = Limiter::new(Some(1000));
        // 100 ms of burst: the first 100 ops go at once.
        assert!(l.reserve(100).is_zero());
        // The next 1000 wait for the first batch's turn to pass.
        let w = l.reserve(1000);
        assert!(w <= Duration::from_millis(1), "{w:?}");
        let w = l.reserve(1);
        assert!(
            w >= Duration::from_millis(990) && w <= Duration::from_millis(1000),
            "{w:?}"
        );
        assert!(Limiter::new(None).reserve(1_000_000).is_zero());
        assert_eq!(cost(3, 250), 5);
    }
}
