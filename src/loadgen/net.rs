//! Connection setup (connect, AUTH, SELECT, READONLY; all bounded by the timeout) and
//! the reusable read buffer.

use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::engine::EngineConfig;
use super::resp::{self, Reply};

/// Connect, set TCP_NODELAY, AUTH, SELECT and READONLY (cluster replica
/// reads); every step bounded by timeout.
pub(crate) async fn connect(cfg: &EngineConfig) -> Result<TcpStream> {
    connect_to(cfg, cfg.addr).await
}

/// `connect`, to `addr` instead of `cfg.addr` (a node a cluster redirected to).
pub(crate) async fn connect_to(
    cfg: &EngineConfig,
    addr: std::net::SocketAddr,
) -> Result<TcpStream> {
    let mut stream = match tokio::time::timeout(cfg.timeout, TcpStream::connect(addr)).await {
        Err(_) => bail!("{addr}: connect timed out after {:?}", cfg.timeout),
        Ok(Err(e)) => bail!("{addr}: connect failed: {e}"),
        Ok(Ok(s)) => s,
    };
    // Small pipelined writes must not sit in Nagle's buffer.
    stream
        .set_nodelay(true)
        .map_err(|e| anyhow!("{addr}: set_nodelay: {e}"))?;
    let mut rbuf = ReadBuf::new(256);
    if let Some((user, pass)) = &cfg.auth {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            args.push(u.as_bytes());
        }
        args.push(pass.as_bytes());
        handshake(&mut stream, &mut rbuf, cfg, addr, &args, "AUTH").await?;
    }
    if cfg.db != 0 {
        let db = cfg.db.to_string();
        handshake(
            &mut stream,
            &mut rbuf,
            cfg,
            addr,
            &[b"SELECT", db.as_bytes()],
            "SELECT",
        )
        .await?;
    }
    if cfg.readonly {
        handshake(
            &mut stream,
            &mut rbuf,
            cfg,
            addr,
            &[b"READONLY"],
            "READONLY",
        )
        .await?;
    }
    Ok(stream)
}

/// Most a setup command's reply (`+OK`, an error line) may take before it
/// ends: what keeps growing without an end is not a Redis server.
const SETUP_REPLY_MAX: usize = 64 * 1024;

/// Send one setup command and require a non-error reply, within one timeout
/// for the whole exchange (not per read: a peer that trickles bytes
/// without ever ending a reply is cut off too).
async fn handshake(
    stream: &mut TcpStream,
    rbuf: &mut ReadBuf,
    cfg: &EngineConfig,
    addr: std::net::SocketAddr,
    args: &[&[u8]],
    what: &str,
) -> Result<()> {
    let mut w = Vec::new();
    resp::encode_command(&mut w, args);
    stream
        .write_all(&w)
        .await
        .map_err(|e| anyhow!("{addr}: write failed: {e}"))?;
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    loop {
        match resp::scan_reply(rbuf.data()).map_err(|e| anyhow!("{addr}: {e}"))? {
            Some((Reply::Error(m), _)) => {
                bail!("{addr}: {what} failed: {}", String::from_utf8_lossy(m))
            }
            Some((_, used)) => {
                rbuf.consume(used);
                return Ok(());
            }
            None if rbuf.data().len() > SETUP_REPLY_MAX => bail!(
                "{addr}: {what}: a reply of more than {} KiB that does not end; is this a Redis server?",
                SETUP_REPLY_MAX / 1024
            ),
            None => match tokio::time::timeout_at(deadline, rbuf.fill(stream, addr)).await {
                Err(_) => bail!("{addr}: no complete reply to {what} within {:?}", cfg.timeout),
                Ok(r) => r?,
            },
        }
    }
}

/// Read buffer with a consumed-prefix cursor, reused for the whole run.
///
/// Sized for what one connection expects (its pipeline of replies), not for
/// the worst case: nothing is allocated until the first read, a read that
/// fills the buffer doubles it (up to `MAX`), and once a burst is drained a
/// buffer that grew past 4x its base size goes back to the base. At
/// `-c 5000 -P 1` a fixed 128 KiB buffer per connection was most of the
/// engine's memory (a page touched per connection, plus one mapping each).
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: usize,
    /// The last read filled all free space: the socket likely has more.
    grow: bool,
}

impl ReadBuf {
    /// Largest size a full read doubles the buffer to; a larger single reply
    /// (a big GET value) still grows it as far as that reply needs.
    const MAX: usize = 256 * 1024;

    pub(crate) fn new(base: usize) -> Self {
        ReadBuf {
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: base.max(64),
            grow: false,
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            // Fully drained: rewind for free instead of compacting later.
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 4 * self.base {
                // After a burst: give the memory back.
                self.buf = Vec::new();
            }
        }
    }

    /// Make room for the next read: allocate, grow, or compact.
    fn reserve(&mut self) {
        if self.buf.is_empty() {
            self.buf = vec![0; self.base];
            self.grow = false;
            return;
        }
        if std::mem::take(&mut self.grow) && self.buf.len() < Self::MAX {
            // Replies arrive faster than one read takes them: double.
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        if self.buf.len() - self.end < self.buf.len() / 4 {
            if self.start > 0 {
                // Keep the partial reply, drop what was consumed.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // One reply larger than the buffer (a big GET value): grow.
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
    }

    /// Read at least one byte. EOF and I/O errors are fatal for the run.
    pub(crate) async fn fill(
        &mut self,
        stream: &mut TcpStream,
        addr: std::net::SocketAddr,
    ) -> Result<()> {
        self.reserve();
        match stream.read(&mut self.buf[self.end..]).await {
            Ok(0) => bail!("{addr}: server closed the connection"),
            Ok(n) => {
                self.grow = self.end + n == self.buf.len();
                self.end += n;
                Ok(())
            }
            Err(e) => bail!("{addr}: read failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Simulate reads of `n` bytes without a socket.
    fn put(b: &mut ReadBuf, n: usize) {
        b.reserve();
        let n = n.min(b.buf.len() - b.end);
        b.grow = b.end + n == b.buf.len();
        b.end += n;
    }

    /// A listener whose every connection gets `+` (a simple-string reply)
    /// and then `reply` again and again, `pause` apart: never its CRLF.
    async fn endless(reply: &'static [u8], pause: Duration) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    if s.write_all(b"+").await.is_err() {
                        return;
                    }
                    while s.write_all(reply).await.is_ok() {
                        tokio::time::sleep(pause).await;
                    }
                });
            }
        });
        addr
    }

    /// The error `connect` with AUTH ends with against `addr`, given
    /// `timeout`. Under a gross bound of its own, not a timing test: with a
    /// bound per read (or none on size) it never ends.
    async fn refused(addr: std::net::SocketAddr, timeout: Duration) -> String {
        let mut cfg = EngineConfig::new(addr);
        cfg.auth = Some((None, "secret".into()));
        cfg.timeout = timeout;
        let e = tokio::time::timeout(Duration::from_secs(120), connect(&cfg))
            .await
            .expect("connect ends within the timeout")
            .expect_err("no reply ends");
        format!("{e:#}")
    }

    #[tokio::test]
    async fn a_setup_reply_that_never_ends_is_refused_not_buffered() {
        // 16 KiB of a simple-string line, again and again: never a CRLF.
        static LINE: [u8; 16 * 1024] = [b'a'; 16 * 1024];
        let addr = endless(&LINE, Duration::ZERO).await;
        let e = refused(addr, Duration::from_secs(30)).await;
        assert!(
            e.contains(&addr.to_string()) && e.contains("AUTH") && e.contains("does not end"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_trickled_setup_reply_is_bounded_by_one_timeout_in_all() {
        // A byte every 10 ms: each read is quick, the reply never completes
        // (and stays far below the size cap within the timeout).
        let addr = endless(b"a", Duration::from_millis(10)).await;
        let e = refused(addr, Duration::from_millis(300)).await;
        assert!(e.contains("no complete reply to AUTH within 300ms"), "{e}");
    }

    #[test]
    fn lazy_grows_on_full_reads_and_shrinks_after_the_burst() {
        let mut b = ReadBuf::new(256);
        assert_eq!(b.buf.capacity(), 0, "nothing allocated before a read");
        put(&mut b, 10);
        assert_eq!(b.buf.len(), 256);
        b.consume(10);
        for _ in 0..5 {
            put(&mut b, usize::MAX);
        }
        assert!(b.buf.len() >= 4096, "full reads grow it: {}", b.buf.len());
        let held = b.data().len();
        b.consume(held);
        assert_eq!(
            b.buf.capacity(),
            0,
            "drained after a burst: memory returned"
        );
    }

    #[test]
    fn a_partial_reply_survives_growth() {
        let mut b = ReadBuf::new(64);
        put(&mut b, 64);
        b.buf[..64].copy_from_slice(&[7; 64]);
        b.consume(60);
        put(&mut b, 1000);
        assert_eq!(&b.data()[..4], &[7; 4]);
        assert!(b.data().len() > 4);
    }
}
