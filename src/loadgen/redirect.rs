//! Cluster redirects, followed within the round: a `-MOVED slot host:port`
//! reply updates the engine's slot map (one slot per engine instance: every
//! key of an instance carries one hash tag) and the request is sent again to
//! the named node; a `-ASK slot host:port` reply sends it again to that node
//! after `ASKING`, and the slot map stays. Each redirect is counted (`moved`,
//! `ask`); the resent request is done when it gets a non-error reply, and
//! counts once. A request still redirected after `MAX_HOPS` resends, or
//! answered with another error, failed.
//!
//! This is off the hot path: a stable cluster sends no redirect, so nothing
//! here runs (and nothing is allocated) unless one came.

use std::net::SocketAddr;

use anyhow::{anyhow, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::conn::{classify, count_error, encode_requests};
use super::engine::Shared;
use super::net::{connect_to, ReadBuf};
use super::resp::{self, Reply};

/// Resends of one request before it is counted as failed (a redirect loop:
/// two nodes that each say the other serves the slot).
pub(crate) const MAX_HOPS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Moved,
    Ask,
}

/// `MOVED 3999 127.0.0.1:6381` or `ASK ...`: where to send the request now.
/// None for any other error, and for a node named by host name (not
/// followed: the request fails with the reply's kind).
pub(crate) fn parse(msg: &[u8]) -> Option<(Kind, SocketAddr)> {
    let (kind, rest) = if let Some(r) = msg.strip_prefix(b"MOVED ") {
        (Kind::Moved, r)
    } else if let Some(r) = msg.strip_prefix(b"ASK ") {
        (Kind::Ask, r)
    } else {
        return None;
    };
    let mut words = rest.split(|&b| b == b' ');
    let _slot = words.next()?;
    let to = std::str::from_utf8(words.next()?).ok()?.parse().ok()?;
    Some((kind, to))
}

/// A redirected request waiting to be sent again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub request: u64,
    pub kind: Kind,
    pub to: SocketAddr,
    /// Latency of its eventual reply counts from here (ns since the start):
    /// its batch's write (closed loop), its intended time (open loop).
    pub since: u64,
    hops: u32,
}

/// One connection's redirects: the requests to send again, and the
/// connections to the nodes it was sent to (made when first needed).
#[derive(Default)]
pub(crate) struct Follower {
    pub pending: Vec<Pending>,
    others: Vec<(SocketAddr, TcpStream, ReadBuf)>,
    wbuf: Vec<u8>,
}

/// The connection's own stream, which a MOVED reply re-points when it has
/// nothing in flight (closed loop, between batches).
pub(crate) struct Main<'a> {
    pub stream: &'a mut TcpStream,
    pub addr: &'a mut SocketAddr,
    pub rbuf: &'a mut ReadBuf,
}

impl Follower {
    /// If `msg` (an error reply to `request`) is a redirect, keep the
    /// request to send again and return true.
    pub(crate) fn push(&mut self, request: u64, msg: &[u8], since: u64) -> bool {
        match parse(msg) {
            Some((kind, to)) => {
                self.pending.push(Pending {
                    request,
                    kind,
                    to,
                    since,
                    hops: 0,
                });
                true
            }
            None => false,
        }
    }

    /// Send every pending request again until each is answered without a
    /// redirect (or has used its hops). With `main`, MOVED resends go over
    /// the connection's own stream, moved to the new node.
    pub(crate) async fn follow(
        &mut self,
        shared: &Shared,
        id: usize,
        mut main: Option<Main<'_>>,
    ) -> Result<()> {
        while !self.pending.is_empty() {
            let mut batch = std::mem::take(&mut self.pending);
            {
                let mut stats = shared.stats.borrow_mut();
                for p in &batch {
                    match p.kind {
                        Kind::Moved => stats.moved += 1,
                        Kind::Ask => stats.ask += 1,
                    }
                }
            }
            // The slot map: this instance's slot is served by the node the
            // last MOVED named (every connection of it goes there next).
            if let Some(m) = batch.iter().rev().find(|p| p.kind == Kind::Moved) {
                shared.route.set(m.to);
            }
            let (lost, live): (Vec<Pending>, Vec<Pending>) =
                batch.drain(..).partition(|p| p.hops >= MAX_HOPS);
            if !lost.is_empty() {
                let mut stats = shared.stats.borrow_mut();
                for p in &lost {
                    count_error(&mut stats, kind_word(p.kind));
                }
                progress(shared, lost.len() as u64);
            }
            let mut live = live;
            live.sort_by_key(|p| (p.to, p.kind));
            for group in live.chunk_by(|a, b| (a.to, a.kind) == (b.to, b.kind)) {
                self.resend(shared, id, group, main.as_mut()).await?;
            }
        }
        Ok(())
    }

    /// Send `group` (one node, one kind) again and account for the replies.
    async fn resend(
        &mut self,
        shared: &Shared,
        id: usize,
        group: &[Pending],
        main: Option<&mut Main<'_>>,
    ) -> Result<()> {
        let (kind, to) = (group[0].kind, group[0].to);
        self.wbuf.clear();
        for p in group {
            if kind == Kind::Ask {
                self.wbuf.extend_from_slice(b"*1\r\n$6\r\nASKING\r\n");
            }
            encode_requests(&mut self.wbuf, shared, p.request, p.request + 1);
        }
        let per = if kind == Kind::Ask { 2 } else { 1 };
        let (stream, rbuf) = match main {
            Some(m) if kind == Kind::Moved => {
                if *m.addr != to {
                    *m.stream = connect_to(&shared.cfg, to).await?;
                    *m.addr = to;
                }
                (&mut *m.stream, &mut *m.rbuf)
            }
            _ => {
                let i = match self.others.iter().position(|(a, _, _)| *a == to) {
                    Some(i) => i,
                    None => {
                        let s = connect_to(&shared.cfg, to).await?;
                        self.others.push((to, s, ReadBuf::new(shared.sizes.read)));
                        self.others.len() - 1
                    }
                };
                let (_, s, b) = &mut self.others[i];
                (s, b)
            }
        };
        shared.busy[id].set(shared.ns(std::time::Instant::now()));
        stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| anyhow!("{to}: write failed: {e}"))?;
        let expected = group.len() * per;
        loop {
            if let Some(end) = complete(rbuf.data(), expected).map_err(|e| anyhow!("{to}: {e}"))? {
                let now = shared.ns(std::time::Instant::now());
                account(
                    shared,
                    group,
                    per,
                    &rbuf.data()[..end],
                    now,
                    &mut self.pending,
                );
                rbuf.consume(end);
                return Ok(());
            }
            rbuf.fill(stream, to).await?;
            shared.busy[id].set(shared.ns(std::time::Instant::now()));
        }
    }
}

fn kind_word(k: Kind) -> &'static [u8] {
    match k {
        Kind::Moved => b"MOVED",
        Kind::Ask => b"ASK",
    }
}

/// The end of the first `n` replies in `data`, once all are there.
fn complete(data: &[u8], n: usize) -> Result<Option<usize>, resp::ProtocolError> {
    let mut pos = 0;
    for _ in 0..n {
        match resp::scan_reply(&data[pos..])? {
            Some((_, used)) => pos += used,
            None => return Ok(None),
        }
    }
    Ok(Some(pos))
}

/// The replies to a resent group: each request done (latency from its
/// `since`), redirected again, or failed.
fn account(
    shared: &Shared,
    group: &[Pending],
    per: usize,
    mut data: &[u8],
    now: u64,
    again: &mut Vec<Pending>,
) {
    let mut stats = shared.stats.borrow_mut();
    let mut answered = 0u64;
    for p in group {
        let mut last = Reply::Nil;
        for _ in 0..per {
            // `complete` has scanned these: each is whole and valid.
            if let Ok(Some((r, used))) = resp::scan_reply(data) {
                last = r;
                data = &data[used..];
            }
        }
        if let Reply::Error(msg) = last {
            if let Some((kind, to)) = parse(msg) {
                again.push(Pending {
                    kind,
                    to,
                    hops: p.hops + 1,
                    ..*p
                });
                continue;
            }
        }
        answered += 1;
        if classify(&mut stats, last) {
            stats.record_latency(now, now.saturating_sub(p.since), 1);
            stats.add_completed(now, 1);
        }
    }
    drop(stats);
    progress(shared, answered);
}

fn progress(shared: &Shared, n: u64) {
    if let Some(p) = &shared.cfg.progress {
        p.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_name_their_kind_and_node() {
        assert_eq!(
            parse(b"MOVED 3999 127.0.0.1:6381"),
            Some((Kind::Moved, "127.0.0.1:6381".parse().unwrap()))
        );
        assert_eq!(
            parse(b"ASK 0 10.0.0.2:7000"),
            Some((Kind::Ask, "10.0.0.2:7000".parse().unwrap()))
        );
        assert_eq!(parse(b"MOVED 1 redis-3.local:6379"), None);
        assert_eq!(parse(b"OOM command not allowed"), None);
        assert_eq!(parse(b"MOVED"), None);
    }
}
