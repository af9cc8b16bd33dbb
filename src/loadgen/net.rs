//! Connection setup (connect, AUTH, SELECT; all bounded by the timeout) and
//! the reusable read buffer.

use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::engine::EngineConfig;
use super::resp::{self, Reply};

/// Connect, set TCP_NODELAY, AUTH and SELECT; every step bounded by timeout.
pub(crate) async fn connect(cfg: &EngineConfig) -> Result<TcpStream> {
    let addr = cfg.addr;
    let mut stream = match tokio::time::timeout(cfg.timeout, TcpStream::connect(addr)).await {
        Err(_) => bail!("{addr}: connect timed out after {:?}", cfg.timeout),
        Ok(Err(e)) => bail!("{addr}: connect failed: {e}"),
        Ok(Ok(s)) => s,
    };
    // Small pipelined writes must not sit in Nagle's buffer.
    stream
        .set_nodelay(true)
        .map_err(|e| anyhow!("{addr}: set_nodelay: {e}"))?;
    let mut rbuf = ReadBuf::new(4096);
    if let Some((user, pass)) = &cfg.auth {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            args.push(u.as_bytes());
        }
        args.push(pass.as_bytes());
        handshake(&mut stream, &mut rbuf, cfg, &args, "AUTH").await?;
    }
    if cfg.db != 0 {
        let db = cfg.db.to_string();
        handshake(
            &mut stream,
            &mut rbuf,
            cfg,
            &[b"SELECT", db.as_bytes()],
            "SELECT",
        )
        .await?;
    }
    Ok(stream)
}

/// Send one setup command and require a non-error reply.
async fn handshake(
    stream: &mut TcpStream,
    rbuf: &mut ReadBuf,
    cfg: &EngineConfig,
    args: &[&[u8]],
    what: &str,
) -> Result<()> {
    let addr = cfg.addr;
    let mut w = Vec::new();
    resp::encode_command(&mut w, args);
    stream
        .write_all(&w)
        .await
        .map_err(|e| anyhow!("{addr}: write failed: {e}"))?;
    loop {
        match resp::scan_reply(rbuf.data()).map_err(|e| anyhow!("{addr}: {e}"))? {
            Some((Reply::Error(m), _)) => {
                bail!("{addr}: {what} failed: {}", String::from_utf8_lossy(m))
            }
            Some((_, used)) => {
                rbuf.consume(used);
                return Ok(());
            }
            None => match tokio::time::timeout(cfg.timeout, rbuf.fill(stream, addr)).await {
                Err(_) => bail!("{addr}: no reply within {:?}", cfg.timeout),
                Ok(r) => r?,
            },
        }
    }
}

/// Read buffer with a consumed-prefix cursor, reused for the whole run.
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub(crate) fn new(cap: usize) -> Self {
        ReadBuf {
            buf: vec![0; cap],
            start: 0,
            end: 0,
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
        }
    }

    /// Read at least one byte. EOF and I/O errors are fatal for the run.
    pub(crate) async fn fill(
        &mut self,
        stream: &mut TcpStream,
        addr: std::net::SocketAddr,
    ) -> Result<()> {
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
        match stream.read(&mut self.buf[self.end..]).await {
            Ok(0) => bail!("{addr}: server closed the connection"),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => bail!("{addr}: read failed: {e}"),
        }
    }
}
