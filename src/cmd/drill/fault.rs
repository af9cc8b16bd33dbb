//! Injecting the one fault, into a process redlab started, and mending what
//! the drill broke: a guard resumes every process it stopped (and, in a
//! `lab up` lab, restarts every one it killed) even when the drill is
//! interrupted, so no SIGSTOPped server is ever left behind.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::owned::{Plan, PROBE};
use super::watch::Events;
use super::{Config, EventKind, Fault};
use crate::client::Conn;
use crate::lab::Lab;

/// The lab, with what the drill has done to it so far.
pub struct Injector<'a> {
    lab: &'a mut Lab,
    stopped: Vec<usize>,
    down: Vec<usize>,
    /// An adopted lab's state dir: saved again when a restart changed a pid.
    state_dir: Option<PathBuf>,
}

impl<'a> Injector<'a> {
    pub fn new(lab: &'a mut Lab, state_dir: Option<PathBuf>) -> Injector<'a> {
        Injector {
            lab,
            stopped: Vec::new(),
            down: Vec::new(),
            state_dir,
        }
    }

    fn describe(&mut self, i: usize, what: &str) -> String {
        let s = self.lab.server_mut(i);
        format!("{what} {} (pid {}, port {})", s.name, s.pid, s.port)
    }

    fn stop(&mut self, i: usize) -> Result<()> {
        self.stopped.push(i);
        self.lab.server_mut(i).pause()
    }

    fn resume(&mut self, i: usize) -> Result<()> {
        self.lab.server_mut(i).resume()?;
        self.stopped.retain(|s| *s != i);
        Ok(())
    }

    fn crash(&mut self, i: usize) -> Result<()> {
        self.down.push(i);
        self.lab.server_mut(i).crash()
    }

    async fn terminate(&mut self, i: usize) -> Result<()> {
        self.down.push(i);
        self.lab
            .server_mut(i)
            .terminate(Duration::from_secs(10))
            .await
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        self.lab.restart(i).await?;
        self.down.retain(|s| *s != i);
        Ok(())
    }

    fn pid(&mut self, i: usize) -> u32 {
        self.lab.server_mut(i).pid
    }
}

impl Drop for Injector<'_> {
    fn drop(&mut self) {
        for i in std::mem::take(&mut self.stopped) {
            let _ = self.lab.server_mut(i).resume();
        }
        // A --spawn lab is stopped right after; `lab up`'s must stay whole,
        // and `lab down` must find the restarted processes.
        if let Some(dir) = &self.state_dir {
            for i in std::mem::take(&mut self.down) {
                let _ = self.lab.restart_now(i);
            }
            let _ = crate::lab::save_state(dir, &self.lab.state());
        }
    }
}

/// What the fault did, for the report.
pub struct Applied {
    /// The moment of the fault (every time in the report is from here).
    pub at: Instant,
    /// When the drill had undone its part (resumed, restarted), if it had any.
    pub undone: Option<Instant>,
    /// Replica faults: how far the master's offset moved while the replica
    /// was away, bytes (what it missed).
    pub missed_bytes: Option<u64>,
}

/// Inject `cfg.fault` and undo the drill's part of it (resume, restart).
pub async fn apply(
    inj: &mut Injector<'_>,
    cfg: &Config,
    plan: &Plan,
    events: &Events,
) -> Result<Applied> {
    let t = plan.target;
    let offset_before = replica_fault_offset(cfg, plan).await;
    let mut out = Applied {
        at: Instant::now(),
        undone: None,
        missed_bytes: None,
    };
    let note = |what: String| events.push("drill", EventKind::Fault, what);
    match cfg.fault {
        Fault::KillMaster => {
            let what = inj.describe(t, "SIGKILL");
            inj.crash(t)?;
            out.at = Instant::now();
            note(what);
            // It comes back once the failover is over: restarted earlier, an
            // empty master would feed a full sync to a replica still pointing at it.
            if !wait_failover_end(plan, events, out.at, cfg.settle).await {
                note(format!(
                    "no failover ended within {}; restarting anyway",
                    humantime::format_duration(cfg.settle)
                ));
            }
            inj.restart(t).await?;
            out.undone = Some(Instant::now());
            let what = inj.describe(t, "restarted");
            note(what);
        }
        Fault::RestartMaster => {
            let what = inj.describe(t, "SIGTERM");
            out.at = Instant::now();
            note(what);
            inj.terminate(t).await?;
            note(format!("{} exited", plan.nodes[t].name));
            inj.restart(t).await?;
            out.undone = Some(Instant::now());
            let what = inj.describe(t, "restarted");
            note(what);
        }
        Fault::StopMaster | Fault::StopReplica | Fault::PartitionReplica => {
            let link = if cfg.fault == Fault::PartitionReplica {
                Some(replica_link(plan, inj.pid(t)).await?)
            } else {
                None
            };
            let what = inj.describe(t, "SIGSTOP");
            inj.stop(t)?;
            out.at = Instant::now();
            note(what);
            if let Some((mut master, id)) = link {
                let killed: u64 = master
                    .query(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id))
                    .await?;
                note(format!(
                    "CLIENT KILL ID {id} on the master: {} link(s) to {} cut",
                    killed, plan.nodes[t].name
                ));
            }
            tokio::time::sleep(cfg.fault_for).await;
            let moved = replica_fault_offset(cfg, plan).await;
            inj.resume(t)?;
            out.undone = Some(Instant::now());
            let what = inj.describe(t, "SIGCONT");
            note(what);
            out.missed_bytes = missed(offset_before, moved);
        }
        Fault::KillReplica => {
            let what = inj.describe(t, "SIGKILL");
            inj.crash(t)?;
            out.at = Instant::now();
            note(what);
            tokio::time::sleep(cfg.fault_for).await;
            let moved = replica_fault_offset(cfg, plan).await;
            inj.restart(t).await?;
            out.undone = Some(Instant::now());
            let what = inj.describe(t, "restarted");
            note(what);
            out.missed_bytes = missed(offset_before, moved);
        }
        Fault::Failover => {
            out.at = Instant::now();
            let who = sentinel_failover(plan).await?;
            note(format!(
                "SENTINEL FAILOVER {} on {who}",
                plan.sentinels.master_name
            ));
        }
    }
    Ok(out)
}

fn missed(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    after.zip(before).map(|(a, b)| a.saturating_sub(b))
}

/// The master's offset, for a replica fault (what the replica misses).
async fn replica_fault_offset(cfg: &Config, plan: &Plan) -> Option<u64> {
    if cfg.fault.on_master() {
        return None;
    }
    master_offset(plan).await
}

/// The current master's replication offset (None when it does not answer).
async fn master_offset(plan: &Plan) -> Option<u64> {
    let mut c = Conn::connect(&plan.nodes[plan.master], PROBE).await.ok()?;
    c.info("replication").await.ok().map(|i| i.repl_offset())
}

/// Wait until the Sentinels' leader reports `+failover-end`, or, once
/// failover-timeout has passed (Sentinel ends a failover by then), every
/// Sentinel names another master than the one killed.
async fn wait_failover_end(plan: &Plan, events: &Events, since: Instant, bound: Duration) -> bool {
    let old = plan.nodes[plan.master].port();
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if events.seen("+failover-end", since) {
            return true;
        }
        let all = crate::discover::sentinel::views(&plan.sentinels, PROBE).await;
        let moved = crate::discover::sentinel::agreed_master(&plan.sentinels, &all)
            .is_ok_and(|(_, port)| port != old);
        let late = since.elapsed() > plan.timeouts.failover_timeout();
        if moved && late && all.iter().all(|v| v.is_ok()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `SENTINEL FAILOVER` on the first Sentinel that takes it.
async fn sentinel_failover(plan: &Plan) -> Result<String> {
    let mut last = String::from("no Sentinel answered");
    for s in &plan.sentinels.nodes {
        let mut c = match Conn::connect(s, PROBE).await {
            Ok(c) => c,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let cmd = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(&plan.sentinels.master_name)
            .clone();
        match c.query::<()>(&cmd).await {
            Ok(()) => return Ok(s.name.clone()),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("SENTINEL FAILOVER was refused: {last}")
}

/// The master's client id of the replica's link: the master's replica
/// connection whose peer port is a socket the replica process owns.
async fn replica_link(plan: &Plan, pid: u32) -> Result<(Conn, u64)> {
    let master = &plan.nodes[plan.master];
    let mut conn = Conn::connect(master, PROBE).await?;
    let list: String = conn
        .query(redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("replica"))
        .await?;
    let ports = local_ports_to(pid, master.port())
        .with_context(|| format!("reading the sockets of pid {pid}"))?;
    for line in list.lines() {
        let kv: std::collections::BTreeMap<&str, &str> =
            line.split(' ').filter_map(|p| p.split_once('=')).collect();
        let port = kv
            .get("addr")
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        if let (Some(id), Some(port)) = (kv.get("id").and_then(|i| i.parse().ok()), port) {
            if ports.contains(&port) {
                return Ok((conn, id));
            }
        }
    }
    bail!(
        "{} has no replication link on the master to cut",
        plan.nodes[plan.target].label()
    )
}

/// Local ports of the TCP connections process `pid` has to `remote_port`.
fn local_ports_to(pid: u32, remote_port: u16) -> Result<HashSet<u16>> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.extend(n.parse::<u64>().ok());
            }
        }
    }
    let mut out = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = |a: &str| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let inode = f.get(9).and_then(|i| i.parse::<u64>().ok());
            if let (Some(l), Some(r), Some(i)) = (
                f.get(1).and_then(|a| port(a)),
                f.get(2).and_then(|a| port(a)),
                inode,
            ) {
                if r == remote_port && inodes.contains(&i) {
                    out.insert(l);
                }
            }
        }
    }
    Ok(out)
}
