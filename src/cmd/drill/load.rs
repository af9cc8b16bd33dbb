//! The drill's steady load: writes at a fixed rate, each with a unique id
//! (`redlab:<run>:drill:<id>`, with a TTL), acknowledged with `WAIT n ms` on
//! the connection that wrote it, always sent to the master the Sentinels
//! name. A tick with every writer busy (all waiting on a stopped master) is
//! not sent and is counted as skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::client::{Conn, ErrorKind, NodeError};
use crate::topology::Node;

/// How each write is made and acknowledged.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub rate: f64,
    /// `WAIT n` after each SET; None: plain SET.
    pub ack: Option<u32>,
    pub ack_timeout: Duration,
    pub write_timeout: Duration,
    pub value_size: usize,
    /// `redlab:<run>:drill:`; the key is this and the id.
    pub prefix: String,
    pub ttl: Duration,
}

/// What one write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// SET answered OK; `acks` is WAIT's answer (None: no WAIT, or it failed).
    Set {
        acks: Option<u32>,
    },
    Failed(ErrorKind),
}

#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub id: u64,
    pub sent: Instant,
    pub done: Instant,
    /// Port of the node it was sent to.
    pub port: u16,
    pub outcome: WriteOutcome,
}

impl Attempt {
    /// Acknowledged at the level asked for.
    pub fn acked(&self, level: Option<u32>) -> bool {
        match (self.outcome, level) {
            (WriteOutcome::Set { .. }, None) => true,
            (WriteOutcome::Set { acks: Some(a) }, Some(n)) => a >= n,
            _ => false,
        }
    }
}

/// Shared between the writers and whoever watches the load.
#[derive(Default)]
pub struct Record {
    attempts: Mutex<Vec<Attempt>>,
    pub skipped: AtomicU64,
    pub ticks: AtomicU64,
}

impl Record {
    fn push(&self, a: Attempt) {
        self.lock().push(a);
    }

    /// The first write acknowledged at `level` on `port` after `since`.
    pub fn first_ack_after(
        &self,
        level: Option<u32>,
        port: u16,
        since: Instant,
    ) -> Option<Instant> {
        self.lock()
            .iter()
            .filter(|a| a.port == port && a.done > since && a.acked(level))
            .map(|a| a.done)
            .min()
    }

    pub fn acked_count(&self, level: Option<u32>) -> usize {
        self.lock().iter().filter(|a| a.acked(level)).count()
    }

    pub fn take(&self) -> Vec<Attempt> {
        let mut v = std::mem::take(&mut *self.lock());
        v.sort_by_key(|a| a.id);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Attempt>> {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running load; `stop` ends it and returns what it did.
pub struct Load {
    pub record: Arc<Record>,
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

/// Writers: enough to keep the rate while some wait out a stopped master.
fn writers(spec: &LoadSpec) -> usize {
    let busy = spec.write_timeout + spec.ack_timeout;
    ((spec.rate * busy.as_secs_f64()).ceil() as usize).clamp(4, 32)
}

/// Start writing to whatever `master` holds; ids come from `next`
/// (the ledger's range, so every key written is removed at the end).
pub fn start(spec: LoadSpec, master: watch::Receiver<Node>, next: Arc<AtomicU64>) -> Load {
    let record = Arc::new(Record::default());
    let (stop, stopped) = watch::channel(false);
    let (tx, rx) = mpsc::channel::<()>(1);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let spec = Arc::new(spec);
    let mut handles = vec![tokio::spawn(ticker(spec.rate, tx, stopped, record.clone()))];
    for _ in 0..writers(&spec) {
        let w = Writer {
            spec: spec.clone(),
            master: master.clone(),
            next: next.clone(),
            record: record.clone(),
            conn: None,
        };
        handles.push(tokio::spawn(w.run(rx.clone())));
    }
    Load {
        record,
        stop,
        handles,
    }
}

impl Load {
    /// Stop ticking, let the writes in flight finish, and return every attempt.
    pub async fn stop(mut self) -> (Vec<Attempt>, u64, u64) {
        let _ = self.stop.send(true);
        for h in std::mem::take(&mut self.handles) {
            let _ = h.await;
        }
        let r = &self.record;
        (
            r.take(),
            r.ticks.load(Ordering::Relaxed),
            r.skipped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Load {
    /// An interrupted drill stops writing at once.
    fn drop(&mut self) {
        self.handles.iter().for_each(|h| h.abort());
    }
}

async fn ticker(
    rate: f64,
    tx: mpsc::Sender<()>,
    mut stopped: watch::Receiver<bool>,
    record: Arc<Record>,
) {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = t.tick() => {}
            _ = stopped.changed() => return,
        }
        record.ticks.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(()).is_err() {
            record.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Writer {
    spec: Arc<LoadSpec>,
    master: watch::Receiver<Node>,
    next: Arc<AtomicU64>,
    record: Arc<Record>,
    /// Its own connection: a WAIT blocks the connection it is sent on.
    conn: Option<(u16, Conn)>,
}

impl Writer {
    async fn run(mut self, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<()>>>) {
        loop {
            let tick = rx.lock().await.recv().await;
            if tick.is_none() {
                return;
            }
            let node = self.master.borrow().clone();
            if self.conn.as_ref().map(|c| c.0) != Some(node.port()) {
                self.conn = None;
            }
            let id = self.next.fetch_add(1, Ordering::SeqCst);
            let sent = Instant::now();
            let outcome = match self.write(&node, id).await {
                Ok(acks) => WriteOutcome::Set { acks },
                Err(e) => {
                    self.conn = None;
                    WriteOutcome::Failed(e.kind)
                }
            };
            self.record.push(Attempt {
                id,
                sent,
                done: Instant::now(),
                port: node.port(),
                outcome,
            });
        }
    }

    /// SET, then WAIT on the same connection; WAIT's answer.
    async fn write(&mut self, node: &Node, id: u64) -> Result<Option<u32>, NodeError> {
        let s = self.spec.clone();
        if self.conn.is_none() {
            // The client's own response timeout must let WAIT run its course.
            let c = Conn::connect_with_response_timeout(
                node,
                s.write_timeout,
                s.write_timeout + s.ack_timeout,
            )
            .await?;
            self.conn = Some((node.port(), c));
        }
        let conn = &mut self.conn.as_mut().expect("connected above").1;
        let mut value = id.to_string();
        value.push(':');
        while value.len() < s.value_size {
            value.push('x');
        }
        let key = format!("{}{id}", s.prefix);
        let set = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("PX")
            .arg(s.ttl.as_millis() as u64)
            .clone();
        let _: () = conn.query(&set).await?;
        let Some(n) = s.ack else {
            return Ok(None);
        };
        let wait = redis::cmd("WAIT")
            .arg(n)
            .arg(s.ack_timeout.as_millis().max(1) as u64)
            .clone();
        match conn.query_for::<u32>(&wait, s.ack_timeout).await {
            Ok(acks) => Ok(Some(acks)),
            // The write landed; only its acknowledgement is unknown.
            Err(_) => {
                self.conn = None;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_means_at_the_level_asked() {
        let now = Instant::now();
        let a = |outcome| Attempt {
            id: 1,
            sent: now,
            done: now,
            port: 1,
            outcome,
        };
        assert!(a(WriteOutcome::Set { acks: None }).acked(None));
        assert!(!a(WriteOutcome::Set { acks: None }).acked(Some(1)));
        assert!(a(WriteOutcome::Set { acks: Some(2) }).acked(Some(1)));
        assert!(!a(WriteOutcome::Set { acks: Some(0) }).acked(Some(1)));
        assert!(!a(WriteOutcome::Failed(ErrorKind::Refused)).acked(None));
    }
}
