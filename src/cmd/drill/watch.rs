//! What the drill sees while it runs, each with its own timestamp: the
//! Sentinels' events (PSUBSCRIBE on each), every node's state (polled), and
//! the master the load follows (asked of the Sentinels, as a Sentinel-aware
//! client does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::owned::PROBE;
use super::EventKind;
use crate::client::{pubsub, Conn, ErrorKind, Info};
use crate::discover::sentinel::{master_addr, SentinelSet};
use crate::topology::{same_host, Node};

/// One thing that happened, as it was seen.
#[derive(Debug, Clone)]
pub struct Raw {
    pub at: Instant,
    /// `sentinel2`, `replica1`, `load`, `drill`.
    pub source: String,
    /// A Sentinel event (`+sdown`, `+switch-master`), or `state`, `fault`, `follow`, ...
    pub kind: EventKind,
    pub detail: String,
}

/// Every event of the drill, in arrival order.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Raw>>>);

impl Events {
    pub fn push(&self, source: &str, kind: EventKind, detail: impl Into<String>) {
        self.push_at(Instant::now(), source, kind, detail);
    }

    pub fn push_at(&self, at: Instant, source: &str, kind: EventKind, detail: impl Into<String>) {
        self.lock().push(Raw {
            at,
            source: source.to_string(),
            kind,
            detail: detail.into(),
        });
    }

    /// Whether an event of this kind has been seen since `since`.
    pub fn seen(&self, kind: &str, since: Instant) -> bool {
        self.lock()
            .iter()
            .any(|e| e.kind.as_str() == kind && e.at >= since)
    }

    pub fn all(&self) -> Vec<Raw> {
        let mut v = self.lock().clone();
        v.sort_by_key(|e| e.at);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Raw>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Background tasks, aborted when dropped (also when the drill is interrupted).
#[derive(Default)]
pub struct Tasks(Vec<tokio::task::AbortHandle>);

impl Tasks {
    pub fn spawn<F>(&mut self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.0.push(tokio::spawn(f).abort_handle());
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(|t| t.abort());
    }
}

/// PSUBSCRIBE * on every Sentinel: each event with its arrival time.
/// Fails when a Sentinel cannot be subscribed to (before any fault).
pub async fn sentinel_events(
    set: &SentinelSet,
    timeout: Duration,
    events: &Events,
    tasks: &mut Tasks,
) -> Result<()> {
    for node in &set.nodes {
        let mut ps = pubsub(node, timeout).await?;
        tokio::time::timeout(timeout, ps.psubscribe("*"))
            .await
            .map_err(|_| anyhow!("{}: no answer to PSUBSCRIBE", node.label()))?
            .map_err(|e| anyhow!("{}: PSUBSCRIBE failed: {e}", node.label()))?;
        let (events, name) = (events.clone(), node.name.clone());
        tasks.spawn(async move {
            let mut stream = ps.into_on_message();
            while let Some(msg) = stream.next().await {
                let payload: String = msg.get_payload().unwrap_or_default();
                events.push(&name, msg.get_channel_name().into(), payload);
            }
        });
    }
    Ok(())
}

/// Ports of the lab's nodes to their names, for messages.
#[derive(Clone)]
pub struct Names(Arc<BTreeMap<u16, String>>);

impl Names {
    pub fn new(nodes: &[Node]) -> Names {
        Names(Arc::new(
            nodes.iter().map(|n| (n.port(), n.name.clone())).collect(),
        ))
    }
    pub fn of(&self, port: u16) -> String {
        self.0
            .get(&port)
            .cloned()
            .unwrap_or_else(|| format!("127.0.0.1:{port}"))
    }
}

/// One line that changes only when the node's standing does.
fn summary(info: &Info, names: &Names) -> String {
    if info.is_master() {
        let online = info
            .replicas()
            .iter()
            .filter(|l| l.state == crate::client::LinkState::Online)
            .count();
        return format!(
            "master, {} online",
            crate::report::plural(online as u64, "replica")
        );
    }
    let of = info
        .follows()
        .map(|(_, p)| names.of(p))
        .unwrap_or_else(|| "?".into());
    if info.flag("master_sync_in_progress") {
        format!("replica of {of}, full sync in progress")
    } else if info.flag("loading") {
        format!("replica of {of}, loading")
    } else {
        let link = info.get("master_link_status").unwrap_or("?");
        format!("replica of {of}, link {link}")
    }
}

fn unreachable(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "not answering",
        ErrorKind::Refused | ErrorKind::Closed => "down",
        ErrorKind::Loading => "loading",
        _ => "error",
    }
}

/// Poll every node's INFO replication every 100 ms and record each change
/// of standing (a role change, a link going down, not answering).
pub fn poll_nodes(nodes: &[Node], names: &Names, events: &Events, tasks: &mut Tasks) {
    for node in nodes.iter().cloned() {
        let (events, names) = (events.clone(), names.clone());
        tasks.spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut last = String::new();
            loop {
                let seen = observe(&node, &mut conn, &names).await;
                if seen != last {
                    events.push(&node.name, EventKind::State, seen.clone());
                    last = seen;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

async fn observe(node: &Node, conn: &mut Option<Conn>, names: &Names) -> String {
    // A connection closed under us (Sentinel's CLIENT KILL on a promotion)
    // is not the node going down: ask again once on a new one.
    let mut last = "down";
    for _ in 0..2 {
        if conn.is_none() {
            match Conn::connect(node, PROBE).await {
                Ok(c) => *conn = Some(c),
                Err(e) => return unreachable(e.kind).to_string(),
            }
        }
        let c = conn.as_mut().expect("connected above");
        match c.info("replication").await {
            Ok(i) => return summary(&i, names),
            Err(e) => {
                *conn = None;
                last = unreachable(e.kind);
                if e.kind == ErrorKind::Timeout {
                    break;
                }
            }
        }
    }
    last.to_string()
}

/// Follow the master as a Sentinel-aware client does: ask every Sentinel
/// every 100 ms, and move to an address one of them names once that node
/// answers ROLE as a master. The receiver always holds the node to write to.
pub fn follow_master(
    set: &SentinelSet,
    nodes: &[Node],
    first: Node,
    events: &Events,
    tasks: &mut Tasks,
) -> watch::Receiver<Node> {
    let (tx, rx) = watch::channel(first);
    let (set, nodes, events) = (set.clone(), nodes.to_vec(), events.clone());
    tasks.spawn(async move {
        let mut conns: Vec<Option<Conn>> = vec![None; set.nodes.len()];
        loop {
            let current = tx.borrow().port();
            for (i, s) in set.nodes.iter().enumerate() {
                let Some((host, port)) = ask(s, &mut conns[i], &set.master_name).await else {
                    continue;
                };
                if port == current {
                    continue;
                }
                let Some(n) = nodes
                    .iter()
                    .find(|n| n.port() == port && same_host(n.host(), &host))
                else {
                    continue;
                };
                if is_master(n).await {
                    events.push(
                        "load",
                        EventKind::Follow,
                        format!("writes go to {} as {} says", n.label(), s.name),
                    );
                    let _ = tx.send(n.clone());
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    rx
}

async fn ask(s: &Node, conn: &mut Option<Conn>, name: &str) -> Option<(String, u16)> {
    if conn.is_none() {
        *conn = Conn::connect(s, PROBE).await.ok();
    }
    match master_addr(conn.as_mut()?, name).await {
        Ok(a) => a,
        Err(_) => {
            *conn = None;
            None
        }
    }
}

async fn is_master(n: &Node) -> bool {
    let Ok(mut c) = Conn::connect(n, PROBE).await else {
        return false;
    };
    let role: Result<Vec<redis::Value>, _> = c.query(&redis::cmd("ROLE")).await;
    matches!(role.as_deref(), Ok([redis::Value::BulkString(r), ..]) if r == b"master")
}
