//! One open-loop connection: writes each batch when the pacer says it is
//! due, whether or not earlier replies are in, and reads replies as they
//! come.
//!
//! Request j of connection i is intended at `(j * c + i) / rate` (see
//! `pacer.rs`). Each reply's latency counts from its request's intended time,
//! so a server that stalls shows the backlog as latency instead of the
//! client quietly sending less (coordinated omission). Because sends do not
//! wait for replies, actual minus intended send time is the client's own
//! lateness: it is recorded per request as the scheduler's send error.
//! Sends wait for replies only past the pacer's in-flight window, which
//! bounds what an overloaded run queues; that wait is the server's, so a
//! request's send error then counts from when the window had room.
//!
//! With `--duration` nothing is written after the deadline (plus a 10 ms
//! grace, `DEADLINE_GRACE`); what was due and not sent by then is missed.

use std::rc::Rc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::conn::{classify, encode_requests, record_wait, FLUSH_AT};
use super::engine::{Shared, Workload, IDLE};
use super::net::ReadBuf;
use super::pacer::{Pacer, Release};
use super::redirect::Follower;
use super::resp::{self, Reply};

struct OpenConn {
    stream: TcpStream,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    shared: Rc<Shared>,
    id: usize,
    /// This connection's requests written, and answered, so far.
    sent: u64,
    answered: u64,
    /// SetWait: the next reply is the WAIT after the last answered request.
    wait_next: bool,
    /// ns since start when the in-flight window last had room again after
    /// being full: a request due while it was full waited for the server,
    /// not for the scheduler, and its send error counts from here.
    room_at: u64,
    /// The node `stream` is connected to.
    addr: std::net::SocketAddr,
    /// Sends not yet all answered: (this connection's first request index
    /// in it, its first request number), to name a redirected request.
    spans: std::collections::VecDeque<(u64, u64)>,
    /// Redirected requests, sent again on connections of their own (this
    /// one has requests in flight behind them).
    follower: Follower,
}

pub(crate) async fn drive(stream: TcpStream, shared: Rc<Shared>, id: usize) -> Result<()> {
    let addr = shared.cfg.addr;
    let mut c = OpenConn {
        stream,
        rbuf: ReadBuf::new(shared.sizes.read),
        wbuf: Vec::new(),
        shared: shared.clone(),
        id,
        sent: 0,
        answered: 0,
        wait_next: false,
        room_at: 0,
        addr,
        spans: Default::default(),
        follower: Follower::default(),
    };
    let pacer = shared.pacer.as_ref().expect("the open loop has a pacer");
    let mut writing = true;
    loop {
        let in_flight = c.sent - c.answered;
        let expecting = in_flight > 0 || c.wait_next;
        if !writing && !expecting {
            break;
        }
        tokio::select! {
            // Sends first: they are the time-critical part.
            biased;
            r = pacer.ready(id, c.sent, in_flight), if writing => match r {
                Release::Send(n) => writing = c.send(pacer, n).await?,
                Release::Done => writing = false,
            },
            r = c.rbuf.fill(&mut c.stream, c.addr), if expecting => {
                r?;
                c.receive(pacer)?;
                if !c.follower.pending.is_empty() {
                    c.follower.follow(&shared, id, None).await?;
                    let waiting = c.sent > c.answered || c.wait_next;
                    let now = shared.ns(Instant::now());
                    shared.busy[id].set(if waiting { now } else { IDLE });
                }
            }
        }
    }
    if !c.rbuf.data().is_empty() {
        bail!(
            "{}: reply received without a request (protocol desync)",
            c.addr
        );
    }
    Ok(())
}

impl OpenConn {
    /// Write the next `n` requests (whole batches, each followed by its WAIT
    /// for set-wait). Returns false, writing nothing, once the run is over
    /// for writes (deadline or cancel).
    async fn send(&mut self, pacer: &Pacer, n: u64) -> Result<bool> {
        let shared = self.shared.clone();
        let now = shared.ns(Instant::now());
        if shared.cancelled() || now >= pacer.stop_ns {
            return Ok(false);
        }
        if self.sent == self.answered && !self.wait_next {
            let route = shared.route.get();
            if route != self.addr {
                // MOVED: nothing in flight here, so this connection moves.
                self.stream = super::net::connect_to(&shared.cfg, route).await?;
                self.addr = route;
            }
            // The watchdog times the wait for a reply from here.
            shared.busy[self.id].set(now);
        }
        // Request numbers (keys) are claimed at write time, so those written
        // are exactly 0..next and a missed request never takes a key.
        let first = shared.next.get();
        shared.next.set(first + n);
        while self.spans.len() > 1 && self.spans[1].0 <= self.answered {
            self.spans.pop_front();
        }
        self.spans.push_back((self.sent, first));
        let (j_end, mut j) = (self.sent + n, self.sent);
        let wait = match shared.cfg.workload {
            Workload::SetWait {
                replicas,
                timeout_ms,
            } => Some((replicas, timeout_ms)),
            _ => None,
        };
        while j < j_end {
            self.wbuf.clear();
            let chunk_start = j;
            while j < j_end && self.wbuf.len() < FLUSH_AT {
                // Up to the end of the current batch (or the chunk's room).
                let batch_end = match wait {
                    Some(_) => (j / pacer.sched.depth() + 1) * pacer.sched.depth(),
                    None => j_end,
                };
                let upto = batch_end.min(j_end);
                let r0 = first + (j - self.sent);
                let r = encode_requests(&mut self.wbuf, &shared, r0, r0 + (upto - j));
                j += r - r0;
                if let Some((replicas, timeout_ms)) = wait {
                    if pacer.sched.ends_batch(self.id, j - 1) {
                        resp::encode_wait(&mut self.wbuf, replicas, timeout_ms);
                    }
                }
            }
            let t = shared.ns(Instant::now());
            self.record_send_errors(pacer, chunk_start, j, t);
            let addr = self.addr;
            self.stream
                .write_all(&self.wbuf)
                .await
                .map_err(|e| anyhow!("{addr}: write failed: {e}"))?;
        }
        self.sent = j_end;
        if self.wbuf.capacity() > shared.sizes.write_keep {
            // After catching up on many batches at once: give it back.
            self.wbuf = Vec::new();
        }
        Ok(true)
    }

    /// The scheduler's lateness for requests `from..to` written at `t`:
    /// from each one's intended time, or from when the window had room if
    /// that was later (waiting for replies is the server's part, and shows
    /// in the latency).
    fn record_send_errors(&self, pacer: &Pacer, from: u64, to: u64, t: u64) {
        let mut stats = self.shared.stats.borrow_mut();
        if let Some(h) = stats.send_error.as_mut() {
            for j in from..to {
                let could = pacer.sched.intended_ns(self.id, j).max(self.room_at);
                crate::latency::record_n(h, t.saturating_sub(could), 1);
            }
        }
    }

    /// Account for every complete reply in the read buffer.
    fn receive(&mut self, pacer: &Pacer) -> Result<()> {
        let shared = &*self.shared;
        // One clock read per chunk: every reply in it arrived "now".
        let now = shared.ns(Instant::now());
        let set_wait = matches!(shared.cfg.workload, Workload::SetWait { .. });
        let window = pacer.sched.window();
        let was_full = self.sent - self.answered >= window;
        let mut stats = shared.stats.borrow_mut();
        let data = self.rbuf.data();
        let mut pos = 0;
        // Answered (done or failed), and done.
        let mut replies = 0u64;
        let mut done = 0u64;
        while self.answered < self.sent || self.wait_next {
            let scanned = resp::scan_reply(&data[pos..]);
            let Some((reply, used)) = scanned.map_err(|e| anyhow!("{}: {e}", self.addr))? else {
                break;
            };
            pos += used;
            let intended = |j| pacer.sched.intended_ns(self.id, j);
            if self.wait_next {
                // Timed from the intended send of its batch's last request.
                let due = intended(self.answered - 1);
                record_wait(&mut stats, reply, now.saturating_sub(due));
                self.wait_next = false;
                continue;
            }
            let j = self.answered;
            let redirected = match reply {
                Reply::Error(m) => {
                    let request = request_of(&self.spans, j);
                    self.follower.push(request, m, intended(j))
                }
                _ => false,
            };
            if !redirected {
                replies += 1;
                if classify(&mut stats, reply) {
                    stats.record_latency(now, now.saturating_sub(intended(j)), 1);
                    done += 1;
                }
            }
            self.answered += 1;
            self.wait_next = set_wait && pacer.sched.ends_batch(self.id, j);
        }
        self.rbuf.consume(pos);
        if was_full && self.sent - self.answered < window {
            self.room_at = now;
        }
        let expecting = self.answered < self.sent || self.wait_next;
        shared.busy[self.id].set(if expecting { now } else { IDLE });
        if done > 0 {
            stats.add_completed(now, done);
        }
        if replies > 0 {
            if let Some(p) = &shared.cfg.progress {
                p.fetch_add(replies, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The request number of this connection's request `j`, from its sends.
fn request_of(spans: &std::collections::VecDeque<(u64, u64)>, j: u64) -> u64 {
    let (j0, first) = spans
        .iter()
        .rev()
        .find(|(j0, _)| *j0 <= j)
        .copied()
        .unwrap_or((0, 0));
    first + (j - j0)
}
