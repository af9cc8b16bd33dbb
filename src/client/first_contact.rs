//! The connection to a plain-TCP node, opened here rather than by the redis
//! crate, so that its first reply is read with a bound: the client buffers a
//! reply line without end, and a service that streams bytes without a line
//! end must not grow redlab until --timeout. One socket per contact: the
//! bound sits on the connection the run then uses (it used to be a PING on a
//! socket of its own, a second connect at every first contact).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::topology::Node;

/// The most the first reply may take before its first line end.
pub const FIRST_REPLY_MAX: usize = 64 * 1024;

/// The most of the first line kept, to say what a server that refused the
/// connection said (`-ERR max number of clients reached`, `-DENIED ...`).
const FIRST_LINE_KEPT: usize = 512;

/// What the first reply did: the bytes received when they passed
/// FIRST_REPLY_MAX without a line end, and the start of its first line.
#[derive(Clone, Default)]
pub struct Watch(Arc<AtomicUsize>, Arc<Mutex<Vec<u8>>>);

impl Watch {
    /// The error line the server sent first, when it sent one: a server at
    /// maxclients (or in protected mode) writes it on accept and closes, and
    /// when it arrives before the first command is queued the client drops
    /// it as unsolicited and reports only a closed connection.
    pub fn first_error(&self) -> Option<String> {
        let line = self.1.lock().ok()?.clone();
        let line = String::from_utf8_lossy(&line);
        let line = line.split("\r\n").next()?.strip_prefix('-')?;
        Some(line.trim().to_string()).filter(|l| !l.is_empty())
    }

    fn keep(&self, bytes: &[u8]) {
        if let Ok(mut kept) = self.1.lock() {
            let room = FIRST_LINE_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// What to say when the node streamed past the bound, or None.
    pub fn not_redis(&self) -> Option<String> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!(
                "not a Redis server: it sent {n} bytes without a RESP reply (wrong port? another service streams there)"
            )),
        }
    }
}

/// Stops the connection's driver task when the last handle on the
/// connection is dropped: a request that timed out against a stalled server
/// would otherwise keep the task and its socket for the life of redlab.
pub struct Driver(tokio::task::AbortHandle);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connect, then let the redis crate set the connection up as `settings`
/// ask (AUTH, SELECT, HELLO) on a stream whose first reply is bounded.
pub async fn open(
    node: &Node,
    settings: &RedisConnectionInfo,
    config: &AsyncConnectionConfig,
    watch: &Watch,
) -> redis::RedisResult<(MultiplexedConnection, Driver)> {
    // An IP literal resolves in place; only a host name goes to the resolver.
    let socket = TcpStream::connect((node.host(), node.port())).await?;
    socket.set_nodelay(node.info.tcp_settings().nodelay())?;
    let stream = Bounded {
        inner: socket,
        open: true,
        seen: 0,
        last: 0,
        watch: watch.clone(),
    };
    let (conn, driver) =
        MultiplexedConnection::new_with_config(settings, stream, config.clone()).await?;
    let task = tokio::spawn(driver);
    Ok((conn, Driver(task.abort_handle())))
}

/// A stream whose reads fail once FIRST_REPLY_MAX bytes came without a line
/// end before the first one; after the first line end it only passes bytes
/// through (a long bulk reply later is data, not a stream of garbage).
struct Bounded {
    inner: TcpStream,
    /// Still before the first line end.
    open: bool,
    seen: usize,
    last: u8,
    watch: Watch,
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.open || !matches!(polled, Poll::Ready(Ok(()))) {
            return polled;
        }
        let got = &buf.filled()[before..];
        self.watch.keep(got);
        // A RESP line ends in CRLF (which may straddle two reads); at the
        // end of the stream the client judges what came.
        let crlf = (self.last == b'\r' && got.first() == Some(&b'\n'))
            || got.windows(2).any(|w| w == b"\r\n");
        if got.is_empty() || crlf {
            self.open = false;
            return polled;
        }
        self.last = got[got.len() - 1];
        self.seen += got.len();
        if self.seen >= FIRST_REPLY_MAX {
            let seen = self.seen;
            self.watch.0.store(seen, Ordering::Relaxed);
            buf.set_filled(before);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{seen} bytes without a line end"),
            )));
        }
        polled
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
