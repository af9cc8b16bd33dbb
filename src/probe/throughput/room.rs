//! The live memory guard: while perf writes, a connection of its own reads
//! the master's `used_memory` a few times a second and stops the load
//! before the room is used. The room is 90 % of maxmemory, or, on a master
//! without maxmemory (the Redis default), half of what the host has beyond
//! what the server holds when perf starts (`total_system_memory` minus
//! `used_memory_rss`). `REDLAB_ROOM_BYTES` (hidden, for tests) replaces the
//! host's figure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{Conn, Info};
use crate::report::human_bytes;
use crate::topology::Node;

/// How often the master's memory is read while perf writes: at 300k SETs/s
/// a 50 ms step wrote ~3 MB, past a small maxmemory's margin before the
/// first reading; 5 ms steps write ~0.3 MB (one INFO memory each: about 1 %
/// of the server's time).
const EVERY: Duration = Duration::from_millis(5);

/// Where perf stops: the used_memory it may reach, and how that was set.
#[derive(Debug, Clone)]
pub(super) struct Limit {
    pub used_at_start: u64,
    pub stop_at: u64,
    pub room: String,
}

impl Limit {
    pub fn of(info: &Info) -> Option<Limit> {
        let used = info.u64("used_memory")?;
        let max = info.u64("maxmemory").unwrap_or(0);
        if max > 0 {
            return Some(Limit {
                used_at_start: used,
                stop_at: max / 10 * 9,
                room: format!("90 % of maxmemory {}", human_bytes(max)),
            });
        }
        let host = std::env::var("REDLAB_ROOM_BYTES")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|b| (b, "REDLAB_ROOM_BYTES"))
            .or_else(|| {
                let total = info.u64("total_system_memory")?;
                let rss = info.u64("used_memory_rss").unwrap_or(used);
                Some((
                    total.saturating_sub(rss),
                    "the host's total_system_memory less the server's RSS",
                ))
            })?;
        Some(Limit {
            used_at_start: used,
            stop_at: used.saturating_add(host.0 / 2),
            room: format!(
                "no maxmemory: half of {} ({}) over the {} used at the start",
                human_bytes(host.0),
                host.1,
                human_bytes(used)
            ),
        })
    }

    /// Room left for keys, bytes.
    pub fn left(&self) -> u64 {
        self.stop_at.saturating_sub(self.used_at_start)
    }
}

/// The watcher: its stop flag goes into every engine config; aborted when dropped.
pub(super) struct Watch {
    pub halt: Arc<AtomicBool>,
    stopped: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watch {
    pub async fn start(master: &Node, timeout: Duration, limit: Limit) -> Option<Watch> {
        let mut conn = Conn::connect(master, timeout).await.ok()?;
        let halt = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(Mutex::new(None));
        let (h, s) = (halt.clone(), stopped.clone());
        let task = tokio::spawn(async move {
            let mut prev = limit.used_at_start;
            loop {
                tokio::time::sleep(EVERY).await;
                let Ok(info) = conn.info("memory").await else {
                    continue;
                };
                let Some(used) = info.u64("used_memory") else {
                    continue;
                };
                // Stop a little early: what the load adds before the next
                // reading and what is in flight when it stops (three times
                // the last step's growth) must fit too.
                let ahead = used.saturating_add(used.saturating_sub(prev).saturating_mul(3));
                prev = used;
                if ahead >= limit.stop_at {
                    if let Ok(mut s) = s.lock() {
                        *s = Some(format!(
                            "stopped early: the master's used_memory reached {} (from {} at the start), \
                             the limit of its room ({}, stop at {}); the figures are for the requests \
                             done before",
                            human_bytes(used),
                            human_bytes(limit.used_at_start),
                            limit.room,
                            human_bytes(limit.stop_at)
                        ));
                    }
                    h.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        Some(Watch {
            halt,
            stopped,
            task,
        })
    }

    /// Why the load was stopped, if it was.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.lock().ok().and_then(|s| s.clone())
    }

    pub fn halted(&self) -> bool {
        self.halt.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_maxmemory_or_half_the_hosts_free_memory() {
        let i = Info::parse("used_memory:1000\r\nmaxmemory:10000\r\n");
        let l = Limit::of(&i).unwrap();
        assert_eq!((l.stop_at, l.left()), (9000, 8000));
        let i = Info::parse(
            "used_memory:1000\r\nmaxmemory:0\r\ntotal_system_memory:100000\r\nused_memory_rss:2000\r\n",
        );
        let l = Limit::of(&i).unwrap();
        assert_eq!(l.stop_at, 1000 + 49000);
        assert!(l.room.contains("total_system_memory"), "{}", l.room);
    }
}
