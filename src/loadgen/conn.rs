//! One closed-loop benchmark connection: batches of encode → write → count
//! replies, until the shared counter runs out. The open loop is `open.rs`;
//! both share the encoding and reply accounting here.
//!
//! Memory per connection is kept to what it needs, because `-c 5000` is a
//! real configuration: the key encoder is the engine's (encoding never
//! awaits, so connections take turns with it), and the buffers start empty
//! and are sized to the pipeline and value size (`Sizes`).

use std::rc::Rc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::engine::{EngineConfig, Shared, Stats, Workload, IDLE};
use super::keys::{fill_value_digits, key_index, op_for, value_len, Op};
use super::net::ReadBuf;
use super::redirect::{Follower, Main};
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
    /// A write buffer that grew past this (open loop: several batches
    /// written at once, catching up) is released afterwards. A closed-loop
    /// batch never reaches it, so its buffer is allocated once.
    pub write_keep: usize,
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
        // SET head, key and value headers, value, optional PX: generous, as
        // a closed-loop batch must never cross it (it would be freed and
        // regrown every batch).
        let request = 128 + cfg.key_prefix.len() + vmax;
        Sizes {
            read: (depth * reply + 64)
                .next_power_of_two()
                .clamp(128, 128 * 1024),
            write_keep: (4 * depth * request).max(4096),
        }
    }
}

/// One batch in flight.
struct Batch {
    first: u64,
    len: usize,
    /// Write start, ns since run start.
    t0: u64,
}

struct Conn {
    stream: TcpStream,
    /// The node `stream` is connected to (the slot map's, `Shared::route`,
    /// once this connection has moved there).
    addr: std::net::SocketAddr,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    shared: Rc<Shared>,
    id: usize,
    /// Requests a cluster redirected, sent again after their batch.
    follower: Follower,
}

/// Run one connection until the run's requests (or time) are used up.
pub(crate) async fn drive(stream: TcpStream, shared: Rc<Shared>, id: usize) -> Result<()> {
    let mut c = Conn {
        stream,
        addr: shared.cfg.addr,
        rbuf: ReadBuf::new(shared.sizes.read),
        wbuf: Vec::new(),
        shared,
        id,
        follower: Follower::default(),
    };
    let depth = c.shared.cfg.pipeline.max(1);
    while let Some((first, len)) = c.shared.claim(depth, Instant::now()) {
        let route = c.shared.route.get();
        if route != c.addr {
            // A MOVED reply (here or on another connection) moved the slot.
            // Boxed, as the follow below: a rare path's future kept out of
            // every connection's own (thousands of them at -c 5000).
            c.stream = Box::pin(super::net::connect_to(&c.shared.cfg, route)).await?;
            c.addr = route;
        }
        let mut batch = Batch { first, len, t0: 0 };
        c.send(&mut batch).await?;
        c.receive(&batch).await?;
        if !c.follower.pending.is_empty() {
            let main = Main {
                stream: &mut c.stream,
                addr: &mut c.addr,
                rbuf: &mut c.rbuf,
            };
            Box::pin(c.follower.follow(&c.shared, c.id, Some(main))).await?;
            c.shared.busy[c.id].set(IDLE);
        }
    }
    Ok(())
}

impl Conn {
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
        let addr = self.addr;
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
        let addr = self.addr;
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
        // Done (a non-error reply), and failed (an error reply).
        let mut replies = 0u64;
        let mut failed = 0u64;
        while got < expected {
            // SETs: a run of "+OK" needs no classification.
            while got < batch.len && data.len() - pos >= 5 && data[pos..pos + 5] == *b"+OK\r\n" {
                pos += 5;
                got += 1;
                replies += 1;
            }
            if got == expected {
                break;
            }
            let scanned = resp::scan_reply(&data[pos..]);
            let Some((reply, used)) = scanned.map_err(|e| anyhow!("{}: {e}", self.addr))? else {
                break;
            };
            pos += used;
            if got == batch.len {
                record_wait(&mut stats, reply, now.saturating_sub(batch.t0));
            } else {
                let request = batch.first + got as u64;
                match reply {
                    // A cluster redirect: sent again after the batch.
                    Reply::Error(m) if self.follower.push(request, m, batch.t0) => {}
                    r if classify(&mut stats, r) => replies += 1,
                    _ => failed += 1,
                }
            }
            got += 1;
        }
        self.rbuf.consume(pos);
        if replies > 0 {
            // All replies in this chunk share one latency.
            let lat = now.saturating_sub(batch.t0);
            stats.record_latency(now, lat, replies);
            stats.add_completed(now, replies);
        }
        if replies + failed > 0 {
            if let Some(p) = &shared.cfg.progress {
                p.fetch_add(replies + failed, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(got)
    }
}

/// Encode requests `from..end` into `wbuf` with the engine's key encoder,
/// stopping once it holds FLUSH_AT bytes; returns the next request to encode.
/// Never awaits, so the encoder is borrowed only here.
#[inline]
pub(crate) fn encode_requests(wbuf: &mut Vec<u8>, shared: &Shared, from: u64, end: u64) -> u64 {
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

/// Whether `reply` makes its request done. An error reply (OOM,
/// READONLY...) is a failed request, counted by kind.
#[inline]
pub(crate) fn classify(stats: &mut Stats, reply: Reply<'_>) -> bool {
    match reply {
        Reply::Error(msg) => {
            count_error(stats, msg);
            return false;
        }
        Reply::Nil => stats.misses += 1,
        _ => {}
    }
    true
}

pub(crate) fn count_error(stats: &mut Stats, msg: &[u8]) {
    let code = String::from_utf8_lossy(resp::error_code(msg));
    match stats.errors.get_mut(code.as_ref()) {
        Some(n) => *n += 1,
        None => {
            stats.errors.insert(code.into_owned(), 1);
        }
    }
}

pub(crate) fn record_wait(stats: &mut Stats, reply: Reply<'_>, latency: u64) {
    match reply {
        Reply::Integer(n) => {
            if let Some(h) = stats.wait_acked.as_mut() {
                crate::latency::record_n(h, n.max(0) as u64, 1);
            }
        }
        Reply::Error(msg) => count_error(stats, msg),
        _ => {}
    }
    if let Some(h) = stats.wait_latency.as_mut() {
        crate::latency::record_n(h, latency, 1);
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future `f` returns, without making one.
    fn future_size<A, B, C, R>(_: &impl Fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every connection of a run is one `drive` future, kept for the whole
    /// run: at -c 5000 each byte of it is 5 kB of RSS. Following a MOVED
    /// (a new connection) and an ASK inline made it 1432 bytes (release),
    /// and peak RSS at c5000 rose by about 6 MiB; boxed, those rare paths
    /// cost nothing until they run (584 bytes release, 600 debug).
    #[test]
    fn a_connection_future_stays_small() {
        let size = future_size(&super::drive);
        assert!(size <= 1024, "drive's future is {size} bytes");
    }
}
