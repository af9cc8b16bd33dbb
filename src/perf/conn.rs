//! One benchmark connection: connect + handshake, then batches of
//! encode → write → count replies, until the shared counter runs out.
//!
//! Open loop (`rate`): each connection owns a fixed schedule of intended send
//! times, `intended(j) = phase + j * interval` with `interval = c / rate` and
//! phases staggered across connections. A batch takes the next P scheduled
//! requests and is written when the LAST of them is due (so P=1 is the classic
//! model; with P>1 the earlier requests in a batch honestly wait for it).
//! Each reply's latency is measured from its own intended time, so when the
//! server (or the client) falls behind, the backlog shows up as latency rather
//! than being silently skipped (coordinated-omission correction, as in wrk2).
//! The schedule is absolute, so lateness never lowers the achieved rate: a
//! late batch is sent at once. tokio timers have 1 ms granularity, so sends
//! can be up to ~1 ms late; that lag is included in the reported latency.
//!
//! Memory per connection is kept to what it needs, because `-c 5000` is a
//! real configuration: the key encoder is the engine's (encoding never
//! awaits, so connections take turns with it), and the buffers start empty
//! and are sized to the pipeline and value size (`Sizes`).

use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::engine::{EngineConfig, Shared, Stats, Stop, Workload, IDLE};
use super::keys::{fill_value_digits, key_index, op_for, value_len, Op};
use super::net::ReadBuf;
use super::resp::{self, Reply};
use super::template::KeyEncoder;

/// Flush the write buffer once it holds this much, so a deep pipeline of big
/// values goes out in bounded chunks rather than one giant write.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// Buffer sizes for one connection, from what a batch sends and receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Initial read buffer: one batch of replies (it grows for more).
    pub read: usize,
}

impl Sizes {
    pub(crate) fn of(cfg: &EngineConfig) -> Sizes {
        let depth = cfg.pipeline.max(1);
        let vmax = cfg.data_size.1;
        // "+OK\r\n" or "$<len>\r\n<value>\r\n"; ":n\r\n" for a WAIT.
        let reply = match cfg.workload {
            Workload::Set => 5,
            Workload::SetWait { .. } => 6,
            Workload::Get | Workload::Mixed { .. } => vmax + 16,
        };
        Sizes {
            read: (depth * reply + 64)
                .next_power_of_two()
                .clamp(128, 128 * 1024),
        }
    }
}

/// Open-loop schedule of one connection (times in ns since run start).
struct Schedule {
    interval: f64,
    phase: f64,
    /// Scheduled requests already sent by this connection.
    sent: u64,
}

impl Schedule {
    fn intended(&self, j: u64) -> f64 {
        self.phase + j as f64 * self.interval
    }
}

/// One batch in flight.
struct Batch {
    first: u64,
    len: usize,
    /// Write start, ns since run start.
    t0: u64,
    /// Open loop: intended time of the first request and the spacing.
    sched: Option<(f64, f64)>,
}

struct Conn {
    stream: TcpStream,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    shared: Rc<Shared>,
    id: usize,
    schedule: Option<Schedule>,
}

/// Run one connection until the run's requests (or time) are used up.
pub(crate) async fn drive(stream: TcpStream, shared: Rc<Shared>, id: usize) -> Result<()> {
    let schedule = shared.cfg.rate.map(|rate| {
        let conns = shared.cfg.connections.max(1) as f64;
        let interval = 1e9 * conns / rate;
        Schedule {
            interval,
            phase: interval * id as f64 / conns,
            sent: 0,
        }
    });
    let mut c = Conn {
        stream,
        rbuf: ReadBuf::new(shared.sizes.read),
        wbuf: Vec::new(),
        shared,
        id,
        schedule,
    };
    while let Some(mut batch) = c.next_batch().await {
        c.send(&mut batch).await?;
        c.receive(&batch).await?;
    }
    Ok(())
}

impl Conn {
    fn depth(&self) -> usize {
        self.shared.cfg.pipeline.max(1)
    }

    async fn next_batch(&mut self) -> Option<Batch> {
        if self.schedule.is_some() {
            return self.next_open_batch().await;
        }
        let (first, len) = self.shared.claim(self.depth(), Instant::now())?;
        Some(Batch {
            first,
            len,
            t0: 0,
            sched: None,
        })
    }

    /// Open loop: wait until the last request of the next batch is due.
    async fn next_open_batch(&mut self) -> Option<Batch> {
        let depth = self.depth() as u64;
        let s = self.schedule.as_ref()?;
        let mut want = depth;
        if let Stop::Duration(d) = self.shared.cfg.stop {
            // Only requests intended before the end of the run are sent.
            let due_before_end = ((d.as_nanos() as f64 - s.phase) / s.interval)
                .ceil()
                .max(0.0);
            want = want.min((due_before_end as u64).saturating_sub(s.sent));
        }
        if want == 0 {
            return None;
        }
        let last_due = s.intended(s.sent + want - 1);
        let at = self.shared.start + Duration::from_nanos(last_due as u64);
        if at > Instant::now() {
            // Already due (we are behind): send at once, no timer round trip.
            tokio::time::sleep_until(at.into()).await;
        }
        // The time limit was applied above; only the request total limits here.
        let (first, len) = match self.shared.cfg.stop {
            Stop::Requests(_) => self.shared.claim(want as usize, Instant::now())?,
            Stop::Duration(_) if self.shared.cancelled() => return None,
            Stop::Duration(_) => {
                let first = self.shared.next.get();
                self.shared.next.set(first + want);
                (first, want as usize)
            }
        };
        let s = self.schedule.as_mut()?;
        let sched = (s.intended(s.sent), s.interval);
        s.sent += len as u64;
        Some(Batch {
            first,
            len,
            t0: 0,
            sched: Some(sched),
        })
    }

    /// Encode and write the batch (plus WAIT), flushing every FLUSH_AT bytes.
    async fn send(&mut self, batch: &mut Batch) -> Result<()> {
        self.wbuf.clear();
        let mut started = false;
        let (mut next, end) = (batch.first, batch.first + batch.len as u64);
        loop {
            next = encode_requests(&mut self.wbuf, &self.shared, next, end);
            if next == end {
                break;
            }
            self.flush(batch, &mut started).await?;
        }
        if let Workload::SetWait {
            replicas,
            timeout_ms,
        } = self.shared.cfg.workload
        {
            resp::encode_wait(&mut self.wbuf, replicas, timeout_ms);
        }
        self.flush(batch, &mut started).await
    }

    async fn flush(&mut self, batch: &mut Batch, started: &mut bool) -> Result<()> {
        if !*started {
            // Latency counts from the start of the batch's first write.
            *started = true;
            batch.t0 = self.shared.ns(Instant::now());
            self.shared.busy[self.id].set(batch.t0);
        }
        let addr = self.shared.cfg.addr;
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| anyhow!("{addr}: write failed: {e}"))?;
        self.wbuf.clear();
        // A large batch that is slow but moving is progress, not a hang.
        let now = self.shared.ns(Instant::now());
        self.shared.busy[self.id].set(now);
        Ok(())
    }

    /// Read until every reply of the batch has arrived.
    async fn receive(&mut self, batch: &Batch) -> Result<()> {
        let set_wait = matches!(self.shared.cfg.workload, Workload::SetWait { .. });
        let expected = batch.len + set_wait as usize;
        let addr = self.shared.cfg.addr;
        let mut got = 0;
        while got < expected {
            self.rbuf.fill(&mut self.stream, addr).await?;
            // One clock read per chunk: every reply in it arrived "now".
            let now = self.shared.ns(Instant::now());
            self.shared.busy[self.id].set(now);
            got = self.process(batch, got, expected, now)?;
        }
        self.shared.busy[self.id].set(IDLE);
        if !self.rbuf.data().is_empty() {
            bail!("{addr}: reply received without a request (protocol desync)");
        }
        Ok(())
    }

    /// Scan complete replies in the read buffer; returns replies seen so far.
    fn process(
        &mut self,
        batch: &Batch,
        mut got: usize,
        expected: usize,
        now: u64,
    ) -> Result<usize> {
        let shared = &*self.shared;
        let mut stats = shared.stats.borrow_mut();
        let data = self.rbuf.data();
        let mut pos = 0;
        let mut replies = 0u64;
        while got < expected {
            if batch.sched.is_none() {
                // Closed-loop SETs: a run of "+OK" needs no classification.
                while got < batch.len && data.len() - pos >= 5 && data[pos..pos + 5] == *b"+OK\r\n"
                {
                    pos += 5;
                    got += 1;
                    replies += 1;
                }
                if got == expected {
                    break;
                }
            }
            let scanned = resp::scan_reply(&data[pos..]);
            let Some((reply, used)) = scanned.map_err(|e| anyhow!("{}: {e}", shared.cfg.addr))?
            else {
                break;
            };
            pos += used;
            if got == batch.len {
                record_wait(&mut stats, reply, now.saturating_sub(batch.t0));
            } else {
                classify(&mut stats, reply);
                if let Some((first_due, interval)) = batch.sched {
                    let due = (first_due + got as f64 * interval) as u64;
                    crate::stats::record_n(&mut stats.latency, now.saturating_sub(due), 1);
                }
                replies += 1;
            }
            got += 1;
        }
        self.rbuf.consume(pos);
        if replies > 0 {
            if batch.sched.is_none() {
                // Closed loop: all replies in this chunk share one latency.
                let lat = now.saturating_sub(batch.t0);
                crate::stats::record_n(&mut stats.latency, lat, replies);
            }
            stats.add_completed(now, replies);
            if let Some(p) = &shared.cfg.progress {
                p.fetch_add(replies, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(got)
    }
}

/// Encode requests `from..end` into `wbuf` with the engine's key encoder,
/// stopping once it holds FLUSH_AT bytes; returns the next request to encode.
/// Never awaits, so the encoder is borrowed only here.
#[inline]
fn encode_requests(wbuf: &mut Vec<u8>, shared: &Shared, from: u64, end: u64) -> u64 {
    let mut enc = shared.enc.borrow_mut();
    let mut r = from;
    while r < end && wbuf.len() < FLUSH_AT {
        encode_request(wbuf, &mut enc, &shared.cfg, r);
        r += 1;
    }
    r
}

#[inline]
fn encode_request(wbuf: &mut Vec<u8>, enc: &mut KeyEncoder, cfg: &EngineConfig, request: u64) {
    let idx = key_index(cfg.keyspace, cfg.seed, request);
    match op_for(&cfg.workload, request) {
        Op::Set => {
            let len = value_len(cfg.seed, idx, cfg.data_size);
            enc.set(wbuf, idx, len, |b, d| fill_value_digits(b, d, len));
        }
        Op::Get => enc.get(wbuf, idx),
    }
}

/// Error replies are data (OOM, READONLY...): count them by kind.
#[inline]
fn classify(stats: &mut Stats, reply: Reply<'_>) {
    match reply {
        Reply::Error(msg) => count_error(stats, msg),
        Reply::Nil => stats.misses += 1,
        _ => {}
    }
}

fn count_error(stats: &mut Stats, msg: &[u8]) {
    let code = String::from_utf8_lossy(resp::error_code(msg));
    match stats.errors.get_mut(code.as_ref()) {
        Some(n) => *n += 1,
        None => {
            stats.errors.insert(code.into_owned(), 1);
        }
    }
}

fn record_wait(stats: &mut Stats, reply: Reply<'_>, latency: u64) {
    match reply {
        Reply::Integer(n) => {
            if let Some(h) = stats.wait_acked.as_mut() {
                crate::stats::record_n(h, n.max(0) as u64, 1);
            }
        }
        Reply::Error(msg) => count_error(stats, msg),
        _ => {}
    }
    if let Some(h) = stats.wait_latency.as_mut() {
        crate::stats::record_n(h, latency, 1);
    }
}
