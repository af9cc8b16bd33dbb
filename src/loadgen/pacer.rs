//! Open-loop pacing: when each request is due, and waking the connection
//! that owns it on time.
//!
//! The schedule is one global sequence: request `g` is due at `g / rate`
//! after the start and belongs to connection `g % c` (so connections take
//! turns and each sends every `c / rate`). A connection writes a batch of P
//! when the last of its P requests is due, so the pacer only acts on the
//! requests that close a batch; they are visited in due order without a heap.
//!
//! How it waits: a timerfd armed a little early, then a short spin. tokio's
//! timers have 1 ms granularity, which was the whole open-loop latency at
//! low rates (p50 1.1 ms against a server answering in 0.07 ms). A timerfd
//! is armed in ns, fires without timer slack, and is polled by the runtime's
//! own epoll like a socket: no second thread. Waking from it still takes the
//! kernel's (here, the VM's) wake-up latency, 20-60 µs on this machine, so it
//! is armed that much early (`Lead`, learnt from the timer itself, at most a
//! quarter of the wait) and the rest is spent going round the runtime, which
//! keeps serving sockets meanwhile. Waits under 25 µs are spun outright, so
//! above ~40k sends/s the pacer never sleeps, which also spares a
//! timerfd_settime per send (in a VM each one reprograms the host's timer:
//! at 100k/s that alone took half a CPU).
//! `examples/pacer_precision.rs` measures the alternatives: a dedicated
//! `clock_nanosleep` thread (two wake-ups per send, worse at every rate) and
//! tokio's timer (0.5-1 ms late). Every pass releases all the requests due
//! by then (batching by due time), so a pacer that falls behind catches up
//! at once.
//!
//! Everything is per engine instance (no process-global state), so N engines
//! on N threads each pace their own share.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::engine::Shared;
use super::timer::{Lead, Timer};

/// Sends may go out this late after a `--duration` deadline: the last
/// requests are due just before it, and a client that lost its CPU for a
/// scheduler slice or two (some ms on a busy machine) should not report a
/// missed rate for that alone. Anything later than this is missed, not sent.
pub(crate) const DEADLINE_GRACE: Duration = Duration::from_millis(10);

/// Requests in flight per engine before a connection waits for replies
/// instead of writing what is due (at least one batch per connection). An
/// open loop sends whether or not earlier replies are in; this bound keeps an
/// overloaded run from queueing without limit, and so bounds the wait for the
/// replies still in flight at the deadline.
const MAX_IN_FLIGHT: u64 = 16_384;

/// Requests one of `conns` connections may have in flight: its share of
/// MAX_IN_FLIGHT in whole batches of `depth`, at least one batch.
pub(crate) fn window(conns: u64, depth: u64) -> u64 {
    let (conns, depth) = (conns.max(1), depth.max(1));
    (MAX_IN_FLIGHT / conns / depth * depth).max(depth)
}

/// Waits shorter than this are spun rather than slept: a timer cannot wake
/// that precisely here, and arming one per send costs more than the spin
/// (in a VM each timerfd_settime reprograms the host's timer; at 100k/s
/// that alone took half a CPU). Above ~40k sends/s the pacer never sleeps.
const SPIN_BELOW_NS: u64 = 25_000;

/// Who sends what when (times in ns since the run's start).
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    ns_per_request: f64,
    conns: u64,
    depth: u64,
    /// Requests due in the whole run: -n, or those due before the deadline.
    total: u64,
}

impl Schedule {
    pub(crate) fn new(rate: f64, conns: usize, depth: usize, total: Total) -> Schedule {
        let ns_per_request = 1e9 / rate;
        let total = match total {
            Total::Requests(n) => n,
            // Request g is due at g * ns_per_request: those strictly before d.
            Total::Before(d) => (d.as_nanos() as f64 / ns_per_request).ceil() as u64,
        };
        Schedule {
            ns_per_request,
            conns: conns.max(1) as u64,
            depth: depth.max(1) as u64,
            total,
        }
    }

    pub(crate) fn depth(&self) -> u64 {
        self.depth
    }

    /// Intended send time of connection `conn`'s request `j`.
    #[inline]
    pub(crate) fn intended_ns(&self, conn: usize, j: u64) -> u64 {
        self.due_ns(j * self.conns + conn as u64)
    }

    #[inline]
    fn due_ns(&self, g: u64) -> u64 {
        (g as f64 * self.ns_per_request) as u64
    }

    /// Requests that connection `conn` sends in the whole run.
    pub(crate) fn conn_total(&self, conn: usize) -> u64 {
        let c = conn as u64;
        if self.total > c {
            (self.total - c - 1) / self.conns + 1
        } else {
            0
        }
    }

    /// Whether request `j` of a connection ends a batch (a WAIT follows it).
    #[inline]
    pub(crate) fn ends_batch(&self, conn: usize, j: u64) -> bool {
        (j + 1).is_multiple_of(self.depth) || j + 1 == self.conn_total(conn)
    }

    /// Requests due at or before `t_ns` (for the missed count).
    pub(crate) fn due_by(&self, t_ns: u64) -> u64 {
        ((t_ns as f64 / self.ns_per_request) as u64)
            .saturating_add(1)
            .min(self.total)
    }

    /// Per connection: how many requests may be in flight.
    pub(crate) fn window(&self) -> u64 {
        window(self.conns, self.depth)
    }

    /// The first request at or after `from` whose due time releases a batch:
    /// the last of its connection's P, or any of the final round (each is
    /// the last request of its connection).
    fn next_release(&self, from: u64) -> Option<u64> {
        if from >= self.total {
            return None;
        }
        let final_round = self.total.saturating_sub(self.conns);
        if from >= final_round {
            return Some(from);
        }
        let row = from / self.conns;
        let left = self.depth - 1 - row % self.depth;
        let g = if left == 0 {
            from
        } else {
            (row + left) * self.conns
        };
        Some(g.min(final_round))
    }
}

/// How many requests the schedule holds.
pub(crate) enum Total {
    Requests(u64),
    /// Those due before this deadline.
    Before(Duration),
}

/// The pacer's state, shared with the connections (one thread: Cells).
pub(crate) struct Pacer {
    pub sched: Schedule,
    /// Per connection: requests due so far (a multiple of P until the last).
    released: Vec<Cell<u64>>,
    /// Per connection: to wake when more is released.
    wakers: Vec<Cell<Option<Waker>>>,
    /// Nothing more will be released (all due, deadline passed, cancelled).
    done: Cell<bool>,
    /// ns since start after which nothing is written (deadline + grace);
    /// connections check it themselves before every write.
    pub stop_ns: u64,
    /// ns since start when releasing ended (for the missed count).
    ended_ns: Cell<u64>,
}

/// What a connection may do next.
pub(crate) enum Release {
    /// Write this many requests (a whole number of batches).
    Send(u64),
    /// Nothing more will be due: finish what is in flight.
    Done,
}

impl Pacer {
    pub(crate) fn new(sched: Schedule, deadline: Option<Duration>) -> Pacer {
        let conns = sched.conns as usize;
        Pacer {
            released: (0..conns).map(|_| Cell::new(0)).collect(),
            wakers: (0..conns).map(|_| Cell::new(None)).collect(),
            done: Cell::new(false),
            stop_ns: deadline.map_or(u64::MAX, |d| (d + DEADLINE_GRACE).as_nanos() as u64),
            ended_ns: Cell::new(0),
            sched,
        }
    }

    /// Wait until connection `conn`, having written `sent` requests with
    /// `in_flight` unanswered, may write more.
    pub(crate) async fn ready(&self, conn: usize, sent: u64, in_flight: u64) -> Release {
        poll_fn(|cx| {
            let due = self.released[conn].get() - sent;
            let room = self.sched.window().saturating_sub(in_flight);
            // Whole batches only (the last may be short), as many as fit.
            let n = if due <= room {
                due
            } else {
                room / self.sched.depth * self.sched.depth
            };
            if n > 0 {
                return Poll::Ready(Release::Send(n));
            }
            if self.done.get() && due == 0 {
                return Poll::Ready(Release::Done);
            }
            let slot = &self.wakers[conn];
            match slot.take() {
                Some(w) if w.will_wake(cx.waker()) => slot.set(Some(w)),
                _ => slot.set(Some(cx.waker().clone())),
            }
            Poll::Pending
        })
        .await
    }

    /// Requests due but never written: those due by the time releasing
    /// ended (all of them unless the run was cancelled) minus those `sent`.
    pub(crate) fn missed(&self, sent: u64) -> u64 {
        self.sched.due_by(self.ended_ns.get()).saturating_sub(sent)
    }

    /// Release every batch on time until the schedule, the deadline or the
    /// run (cancel) ends. Runs as one task next to the connections.
    pub(crate) async fn run(&self, shared: &Shared) -> Result<()> {
        let result = self.release_all(shared).await;
        self.ended_ns.set(shared.ns(Instant::now()));
        self.done.set(true);
        for w in &self.wakers {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
        result
    }

    async fn release_all(&self, shared: &Shared) -> Result<()> {
        let mut timer: Option<Timer> = None;
        let mut lead = Lead::new();
        // The release the timer last woke us early for: spin, don't re-arm.
        let mut spin_for = None;
        let Some(mut g) = self.sched.next_release(0) else {
            return Ok(());
        };
        loop {
            let now = shared.ns(Instant::now());
            if shared.cancelled() || now >= self.stop_ns {
                return Ok(());
            }
            // Everything due by now, in one pass (a late pacer catches up).
            let last_due = self.sched.due_by(now).saturating_sub(1);
            if self.sched.due_ns(g) <= now && last_due >= g + self.sched.conns {
                // Rounds behind (an overloaded run): per connection at once.
                self.release_upto(last_due);
                match self.sched.next_release(last_due + 1) {
                    Some(next) => g = next,
                    None => return Ok(()),
                }
            }
            while self.sched.due_ns(g) <= now {
                self.release(g);
                match self.sched.next_release(g + 1) {
                    Some(next) => g = next,
                    None => return Ok(()),
                }
            }
            let wait = self.sched.due_ns(g) - now;
            let early = lead.ns(wait);
            if spin_for == Some(g) || wait <= early || wait <= SPIN_BELOW_NS {
                // The last stretch: go round the runtime (connections write
                // and read meanwhile) until it is due.
                tokio::task::yield_now().await;
                continue;
            }
            // Wake at least every 50 ms to notice a cancel.
            let at = (now + wait - early).min(now + 50_000_000);
            let t = match &mut timer {
                Some(t) => t,
                None => timer.insert(Timer::new(shared.start)?),
            };
            t.sleep_until(at).await?;
            let woke = shared.ns(Instant::now());
            // (An early return is possible, as with any readiness: re-arm.)
            if woke >= at {
                lead.observe(woke - at);
                if at + early == now + wait {
                    spin_for = Some(g);
                }
            }
        }
    }

    /// Release, for every connection, each batch closed by a request up to
    /// and including `g` (what `release` would do for each of them in turn).
    fn release_upto(&self, g: u64) {
        let (c, depth) = (self.sched.conns, self.sched.depth);
        for conn in 0..c.min(g + 1) {
            let total = self.sched.conn_total(conn as usize);
            let due = ((g - conn) / c + 1).min(total);
            let upto = if due == total {
                due
            } else {
                due / depth * depth
            };
            let slot = &self.released[conn as usize];
            if upto > slot.get() {
                slot.set(upto);
                if let Some(w) = self.wakers[conn as usize].take() {
                    w.wake();
                }
            }
        }
    }

    fn release(&self, g: u64) {
        let conn = (g % self.sched.conns) as usize;
        self.released[conn].set(g / self.sched.conns + 1);
        if let Some(w) = self.wakers[conn].take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request of every connection is released exactly once, by the
    /// request that closes its batch, in due order.
    #[test]
    fn releases_close_every_batch_in_due_order() {
        for (conns, depth, total) in [(1, 1, 10), (3, 4, 50), (5, 2, 7), (4, 3, 4), (2, 5, 1)] {
            let s = Schedule::new(1000.0, conns, depth, Total::Requests(total));
            let mut released = vec![0u64; conns];
            let mut g = s.next_release(0);
            let mut last_due = 0;
            while let Some(x) = g {
                let conn = (x % conns as u64) as usize;
                let upto = x / conns as u64 + 1;
                let n = upto - released[conn];
                assert!(
                    n == depth as u64 || upto == s.conn_total(conn),
                    "c{conns} P{depth} n{total}: batch of {n} at {x}"
                );
                assert!(s.ends_batch(conn, upto - 1));
                released[conn] = upto;
                assert!(s.due_ns(x) >= last_due);
                last_due = s.due_ns(x);
                g = s.next_release(x + 1);
            }
            let want: Vec<u64> = (0..conns).map(|c| s.conn_total(c)).collect();
            assert_eq!(released, want, "c{conns} P{depth} n{total}");
            assert_eq!(want.iter().sum::<u64>(), total);
        }
    }

    /// Catching up per connection releases exactly what releasing request
    /// by request would have.
    #[test]
    fn bulk_release_matches_one_by_one() {
        for (conns, depth, total, upto) in
            [(3, 4, 50, 30), (5, 2, 7, 6), (4, 1, 100, 57), (2, 3, 9, 8)]
        {
            let s = Schedule::new(1000.0, conns, depth, Total::Requests(total));
            let one = Pacer::new(s.clone(), None);
            let mut g = s.next_release(0);
            while let Some(x) = g.filter(|x| *x <= upto) {
                one.release(x);
                g = s.next_release(x + 1);
            }
            let bulk = Pacer::new(s, None);
            bulk.release_upto(upto);
            let got = |p: &Pacer| p.released.iter().map(Cell::get).collect::<Vec<_>>();
            assert_eq!(
                got(&bulk),
                got(&one),
                "c{conns} P{depth} n{total} up to {upto}"
            );
        }
    }

    #[test]
    fn a_deadline_counts_the_requests_due_before_it() {
        let s = Schedule::new(1000.0, 2, 1, Total::Before(Duration::from_secs(1)));
        assert_eq!(s.total, 1000);
        assert_eq!(s.intended_ns(1, 0), 1_000_000);
        assert_eq!(s.intended_ns(0, 1), 2_000_000);
        assert_eq!(s.due_by(1_500_000), 2);
        assert_eq!(s.due_by(1_000_000), 2, "due at 1 ms: due by 1 ms");
        assert_eq!(s.due_by(u64::MAX), 1000);
        let s = Schedule::new(3.0, 1, 1, Total::Before(Duration::from_millis(1001)));
        assert_eq!(s.total, 4, "0, 333, 667 and 1000 ms are before 1001 ms");
    }

    #[test]
    fn the_window_is_whole_batches_and_at_least_one() {
        let s = Schedule::new(1e6, 10, 7, Total::Requests(1));
        assert_eq!(s.window() % 7, 0);
        assert!(s.window() * 10 <= MAX_IN_FLIGHT);
        let s = Schedule::new(1e6, 5000, 64, Total::Requests(1));
        assert_eq!(s.window(), 64);
    }
}
