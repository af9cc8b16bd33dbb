//! Sentinels in the lab: `redis-server <conf> --sentinel`, from the same
//! package, one writable config file each (Sentinel rewrites it), watching
//! the lab's master with short, stated timeouts. Ready once every Sentinel
//! names the same master, sees every replica up and knows the others.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{conf_quote, is_port_clash, pick_ports, Lab, LabOptions, Server};
use crate::discover::sentinel::{self, SentinelSet, SentinelView, DEFAULT_MASTER_NAME};
use crate::topology::{Node, Role};

/// The timeouts of a lab with Sentinels, stated in every drill report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelTimeouts {
    /// `sentinel down-after-milliseconds`: how long a node may not answer
    /// before a Sentinel calls it down (+sdown), ms.
    pub down_after_ms: u64,
    /// `sentinel failover-timeout`, ms: a failover that has not promoted a
    /// replica by then is abandoned, and the next try waits twice as long.
    pub failover_timeout_ms: u64,
    /// The data nodes' `repl-timeout`, s: how long the master keeps a replica
    /// that stopped acknowledging before dropping it (with
    /// `repl-ping-replica-period 1`), so a stopped replica resyncs within a drill.
    pub repl_timeout_s: u64,
}

impl Default for SentinelTimeouts {
    fn default() -> Self {
        SentinelTimeouts {
            down_after_ms: 1000,
            failover_timeout_ms: 5000,
            repl_timeout_s: 2,
        }
    }
}

impl SentinelTimeouts {
    pub fn down_after(&self) -> Duration {
        Duration::from_millis(self.down_after_ms)
    }
    pub fn failover_timeout(&self) -> Duration {
        Duration::from_millis(self.failover_timeout_ms)
    }
}

/// How long the Sentinels may take to agree: hello messages go out every 2 s
/// and replicas are learnt from the master's INFO, every 10 s at worst.
const AGREE_BOUND: Duration = Duration::from_secs(30);

/// A majority of the Sentinels must agree that the master is down.
pub fn quorum(sentinels: usize) -> usize {
    sentinels / 2 + 1
}

fn conf(master_port: u16, n: usize, t: &SentinelTimeouts, password: Option<&str>) -> String {
    let name = DEFAULT_MASTER_NAME;
    let mut c = format!(
        "# redlab lab Sentinel (rewritten by Sentinel itself)\n\
         sentinel monitor {name} 127.0.0.1 {master_port} {}\n\
         sentinel down-after-milliseconds {name} {}\n\
         sentinel failover-timeout {name} {}\n\
         sentinel parallel-syncs {name} 1\n",
        quorum(n),
        t.down_after_ms,
        t.failover_timeout_ms
    );
    if let Some(p) = password {
        c.push_str(&format!("sentinel auth-pass {name} {}\n", conf_quote(p)));
    }
    c
}

/// The data nodes' arguments in a lab with Sentinels or a set backlog.
pub(super) fn data_args(opts: &LabOptions) -> Vec<String> {
    let mut v = Vec::new();
    if opts.sentinels > 0 {
        let t = opts.sentinel_timeouts;
        v.extend([
            "--repl-timeout".to_string(),
            t.repl_timeout_s.max(1).to_string(),
            "--repl-ping-replica-period".into(),
            "1".into(),
        ]);
    }
    if let Some(b) = opts.backlog {
        v.extend(["--repl-backlog-size".to_string(), b.to_string()]);
    }
    v
}

fn spawn_all(
    dir: &Path,
    ports: &[u16],
    master_port: u16,
    opts: &LabOptions,
) -> Result<Vec<Server>> {
    let text = conf(
        master_port,
        ports.len(),
        &opts.sentinel_timeouts,
        opts.password.as_deref(),
    );
    let mut out = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("sentinel{}", i + 1);
        out.push(Server::spawn(
            dir,
            &name,
            *port,
            &text,
            &["--sentinel".into()],
        )?);
    }
    for s in &mut out {
        s.wait_ready(Duration::from_secs(10))?;
    }
    Ok(out)
}

/// Start `opts.sentinels` Sentinels on the lab's master and wait until they agree.
pub(super) async fn start(lab: &mut Lab, opts: &LabOptions) -> Result<()> {
    // Sentinel's customary ports (26379.. for a lab on 6379) when a base
    // port was given and they are free; else free ones.
    let customary = opts
        .base_port
        .and_then(|b| b.checked_add(20000))
        .and_then(|b| pick_ports(Some(b), opts.sentinels).ok());
    let mut attempt = 0;
    lab.sentinels = loop {
        attempt += 1;
        let ports = match (&customary, attempt) {
            (Some(p), 1) => p.clone(),
            _ => pick_ports(None, opts.sentinels)?,
        };
        match spawn_all(&lab.dir, &ports, lab.master.port, opts) {
            Err(e) if attempt < 3 && is_port_clash(&e) => continue,
            other => break other?,
        }
    };
    lab.timeouts = Some(opts.sentinel_timeouts);
    let set = set_of(&lab.sentinels);
    wait_agreed(&set, lab.master.port, lab.replicas.len(), AGREE_BOUND).await
}

/// The lab's Sentinels as nodes to query.
pub fn set_of(sentinels: &[Server]) -> SentinelSet {
    SentinelSet {
        master_name: DEFAULT_MASTER_NAME.to_string(),
        nodes: sentinels
            .iter()
            .map(|s| {
                Node::parse(
                    &s.name,
                    Role::Replica,
                    &format!("redis://127.0.0.1:{}", s.port),
                )
                .expect("a loopback URL parses")
            })
            .collect(),
        observed: None,
    }
}

/// Why this view is not ready yet, if it is not.
fn not_ready(
    v: &SentinelView,
    master_port: u16,
    replicas: usize,
    sentinels: usize,
) -> Option<String> {
    match &v.master {
        Some((_, p)) if *p == master_port => {}
        Some((h, p)) => {
            return Some(format!(
                "names {} as the master",
                crate::topology::host_port(h, p)
            ))
        }
        None => return Some("names no master".into()),
    }
    let up = v.replicas.iter().filter(|r| !r.is_down()).count();
    if up < replicas {
        return Some(format!("sees {up} of {replicas} replicas up"));
    }
    if v.sentinels.len() + 1 < sentinels {
        return Some(format!(
            "knows {} of the {} other Sentinels",
            v.sentinels.len(),
            sentinels - 1
        ));
    }
    None
}

/// Wait until every Sentinel names the master on `master_port`, sees
/// `replicas` replicas up and knows every other Sentinel.
pub async fn wait_agreed(
    set: &SentinelSet,
    master_port: u16,
    replicas: usize,
    bound: Duration,
) -> Result<()> {
    let deadline = Instant::now() + bound;
    let n = set.nodes.len();
    loop {
        let all = sentinel::views(set, Duration::from_secs(2)).await;
        let why: Vec<String> = set
            .nodes
            .iter()
            .zip(&all)
            .filter_map(|(node, v)| {
                let reason = match v {
                    Ok(v) => not_ready(v, master_port, replicas, n)?,
                    Err(e) => e.message.clone(),
                };
                Some(format!("{}: {reason}", node.name))
            })
            .collect();
        if why.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the Sentinels did not agree within {}: {}",
                humantime::format_duration(bound),
                why.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_states_the_timeouts_and_a_majority_quorum() {
        let c = conf(6379, 3, &SentinelTimeouts::default(), Some("p\"w"));
        assert!(
            c.contains("sentinel monitor redlab 127.0.0.1 6379 2\n"),
            "{c}"
        );
        assert!(c.contains("down-after-milliseconds redlab 1000\n"));
        assert!(c.contains("failover-timeout redlab 5000\n"));
        assert!(c.contains("auth-pass redlab \"p\\\"w\""));
        assert_eq!((quorum(1), quorum(2), quorum(3), quorum(5)), (1, 2, 2, 3));
    }
}
