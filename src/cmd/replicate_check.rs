//! replicate-check: each replica follows this master, its link is up, and a
//! write on the master becomes readable on it within --max-lag.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::cli::ReplicateCheckArgs;
use crate::client::{Conn, Info, ReplicaLine};
use crate::ctx::Ctx;
use crate::report::{Check, Details, Report, Section};
use crate::stats::{fmt_us, histogram, LatencyUs};
use crate::survey::{require_master, survey, NodeState};
use crate::topology::{same_host, Node};

pub struct Config {
    pub probes: u32,
    pub max_lag: Duration,
}

impl From<&ReplicateCheckArgs> for Config {
    fn from(a: &ReplicateCheckArgs) -> Config {
        Config {
            probes: a.probes,
            max_lag: a.max_lag,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReplicateDetails {
    /// Probe keys written.
    pub probes: u32,
    /// Bound on a probe's write-to-visible time, ms.
    pub max_lag_ms: f64,
    /// The master as found.
    pub master: MasterResult,
    /// One entry per replica given or discovered.
    pub replicas: Vec<ReplicaResult>,
}

#[derive(Debug, Serialize)]
pub struct MasterResult {
    /// Replicas the master reports (`connected_slaves`).
    pub connected_replicas: u64,
    /// Replicas redlab was told about.
    pub expected_replicas: usize,
    /// `master_repl_offset` at the start, bytes.
    pub repl_offset_bytes: u64,
    /// `master_replid`.
    pub replid: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ReplicaResult {
    pub name: String,
    pub address: String,
    /// pass or fail for this node.
    pub verdict: String,
    /// The role it reports, null when unreachable.
    pub role: Option<String>,
    /// `master_link_status`.
    pub link_status: Option<String>,
    /// What it says it follows, host:port.
    pub follows: Option<String>,
    /// Whether the master lists it among its own replicas (by ip:port).
    pub listed_by_master: bool,
    /// Loading or in a full sync.
    pub syncing: bool,
    /// Master offset minus the offset this replica acknowledged, bytes.
    pub offset_lag_bytes: Option<u64>,
    /// Seconds since its last ACK, as the master reports (`lag`).
    pub lag_s: Option<u64>,
    /// Probes seen within --max-lag.
    pub probes_seen: u32,
    /// Probes not seen within --max-lag (probing stops at the first miss).
    pub probes_missed: u32,
    /// Write-to-visible latency of the probes it saw (from the SET on the master
    /// to the GET on this replica returning the value).
    pub visible_latency: Option<LatencyUs>,
    /// Every problem found, one line each.
    pub problems: Vec<String>,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<ReplicateDetails>> {
    let spinner = ctx.progress.spinner("surveying the topology");
    let states = survey(&ctx.topology, ctx.timeout).await;
    require_master(&states[0])?;
    let minfo = states[0].info.clone().expect("checked by require_master");
    let lines = minfo.replicas();
    let master = MasterResult {
        connected_replicas: minfo.u64("connected_slaves").unwrap_or(0),
        expected_replicas: ctx.topology.replicas.len(),
        repl_offset_bytes: minfo.repl_offset(),
        replid: minfo.get("master_replid").unwrap_or("").to_string(),
    };
    let mut checks = vec![master_check(&master)];
    let mut replicas: Vec<ReplicaResult> = states[1..]
        .iter()
        .map(|s| inspect(s, &minfo, &lines, ctx))
        .collect();
    spinner.set_message(format!("writing {} probes", cfg.probes));
    let mconn = states[0]
        .conn
        .clone()
        .expect("reachable master has a connection");
    let conns: Vec<Option<Conn>> = states[1..].iter().map(|s| s.conn.clone()).collect();
    probe(&cfg, ctx, mconn, conns, &mut replicas).await?;
    spinner.finish();
    for r in &mut replicas {
        checks.extend(replica_checks(r, &cfg));
        r.verdict = if r.problems.is_empty() {
            "pass"
        } else {
            "fail"
        }
        .into();
    }
    let details = ReplicateDetails {
        probes: cfg.probes,
        max_lag_ms: crate::duration::ms(cfg.max_lag),
        master,
        replicas,
    };
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new(
        "replicate-check",
        ctx.manifest(),
        nodes,
        checks,
        details,
    ))
}

fn master_check(m: &MasterResult) -> Check {
    let reason = format!(
        "role master, {} connected replicas, {} expected",
        m.connected_replicas, m.expected_replicas
    );
    if m.connected_replicas as usize == m.expected_replicas {
        Check::pass("master", reason)
    } else {
        Check::fail("master", reason)
    }
}

pub(crate) fn line_for<'a>(node: &Node, lines: &'a [ReplicaLine]) -> Option<&'a ReplicaLine> {
    lines
        .iter()
        .find(|l| l.port == node.port() && same_host(&l.ip, node.host()))
        .or_else(|| {
            // Inside Docker the master may see another ip; a unique port still identifies it.
            let same_port: Vec<_> = lines.iter().filter(|l| l.port == node.port()).collect();
            (same_port.len() == 1).then(|| same_port[0])
        })
}

/// Everything INFO says about one replica, before any probe.
fn inspect(st: &NodeState, minfo: &Info, lines: &[ReplicaLine], ctx: &Ctx) -> ReplicaResult {
    let mut r = ReplicaResult {
        name: st.node.name.clone(),
        address: st.node.addr(),
        ..Default::default()
    };
    let Some(info) = &st.info else {
        let e = st.error.as_ref().expect("no info means an error");
        r.problems.push(e.message.clone());
        return r;
    };
    r.role = Some(info.role().to_string());
    r.link_status = info.get("master_link_status").map(String::from);
    r.syncing = info.syncing();
    let follows = info.follows();
    r.follows = follows.as_ref().map(|(h, p)| describe(ctx, h, *p));
    let line = line_for(&st.node, lines);
    r.listed_by_master = line.is_some();
    if let Some(l) = line {
        r.offset_lag_bytes = Some(minfo.repl_offset().saturating_sub(l.offset));
        r.lag_s = Some(l.lag_s);
    }
    if info.role() != "slave" {
        r.problems
            .push(format!("role is {}, not a replica", info.role()));
        return r;
    }
    if !info.link_up() {
        r.problems.push(format!(
            "link to its master is {} (master_link_down_since_seconds {}, last I/O {} s ago)",
            info.get("master_link_status").unwrap_or("unknown"),
            info.get("master_link_down_since_seconds").unwrap_or("-"),
            info.get("master_last_io_seconds_ago").unwrap_or("-"),
        ));
    }
    if r.syncing {
        r.problems
            .push("syncing: loading or in a full sync, its data is not complete yet".into());
    }
    let same_id = info.get("master_replid") == minfo.get("master_replid");
    let target = r.follows.clone().unwrap_or_else(|| "nothing".into());
    if !same_id && info.link_up() {
        r.problems.push(format!(
            "follows {target}, which is another master (different replication id), not this one"
        ));
    } else if line.is_none() {
        r.problems.push(format!(
            "follows {target} but is not among the master's own replicas: chained behind another replica, or following another master"
        ));
    }
    r
}

/// `127.0.0.1:6380 (replica1)` where the address is one of ours.
fn describe(ctx: &Ctx, host: &str, port: u16) -> String {
    match ctx.topology.name_of(host, port) {
        Some(name) => format!("{host}:{port} ({name})"),
        None => format!("{host}:{port}"),
    }
}

/// Write each probe on the master, then time until every live replica serves it.
async fn probe(
    cfg: &Config,
    ctx: &Ctx,
    mut master: Conn,
    conns: Vec<Option<Conn>>,
    results: &mut [ReplicaResult],
) -> Result<()> {
    let mut hists: Vec<_> = results.iter().map(|_| histogram()).collect();
    let mut active: Vec<bool> = conns.iter().map(Option::is_some).collect();
    for i in 0..cfg.probes {
        let key = ctx.key(&format!("probe:{i}"));
        let value = format!("{}:{i}", ctx.run_id);
        ctx.ledger.add(key.clone());
        let t0 = Instant::now();
        master
            .query::<()>(redis::cmd("SET").arg(&key).arg(&value))
            .await?;
        let deadline = t0 + cfg.max_lag;
        let mut tasks = Vec::new();
        for (idx, c) in conns.iter().enumerate() {
            if let (true, Some(c)) = (active[idx], c) {
                let (c, key, value) = (c.clone(), key.clone(), value.clone());
                tasks.push((idx, tokio::spawn(wait_visible(c, key, value, t0, deadline))));
            }
        }
        for (idx, t) in tasks {
            let r = &mut results[idx];
            match t.await.expect("probe task does not panic") {
                Ok(Some(ns)) => {
                    r.probes_seen += 1;
                    let _ = hists[idx].record(ns.max(1));
                }
                Ok(None) => {
                    r.probes_missed += 1;
                    active[idx] = false;
                }
                Err(e) => {
                    r.problems.push(e);
                    active[idx] = false;
                }
            }
        }
    }
    for (r, h) in results.iter_mut().zip(&hists) {
        if !h.is_empty() {
            r.visible_latency = Some(LatencyUs::from_ns(h));
        }
    }
    Ok(())
}

/// Poll GET until the value is there (Some(ns since the write)) or the deadline passes (None).
async fn wait_visible(
    mut c: Conn,
    key: String,
    value: String,
    t0: Instant,
    deadline: Instant,
) -> Result<Option<u64>, String> {
    loop {
        let got: Option<String> = c
            .query(redis::cmd("GET").arg(&key))
            .await
            .map_err(|e| e.message)?;
        if got.as_deref() == Some(value.as_str()) {
            return Ok(Some(t0.elapsed().as_nanos() as u64));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // Each GET is a round trip; yield so the other replicas' polls run too.
        tokio::task::yield_now().await;
    }
}

fn replica_checks(r: &mut ReplicaResult, cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    if r.role.is_none() {
        out.push(Check::fail(
            format!("{}.reachable", r.name),
            r.problems.join("; "),
        ));
        return out;
    }
    let state = format!(
        "role {}, link {}, follows {}",
        r.role.as_deref().unwrap_or("-"),
        r.link_status.as_deref().unwrap_or("-"),
        r.follows.as_deref().unwrap_or("-")
    );
    let topo_problems: Vec<&String> = r.problems.iter().collect();
    if topo_problems.is_empty() {
        out.push(Check::pass(format!("{}.replication", r.name), state));
    } else {
        let joined: Vec<&str> = topo_problems.iter().map(|s| s.as_str()).collect();
        out.push(Check::fail(
            format!("{}.replication", r.name),
            joined.join("; "),
        ));
    }
    let name = format!("{}.propagation", r.name);
    if r.probes_missed > 0 {
        let msg = format!(
            "probe not visible within {} ({} of {} seen); offset lag {} bytes, lag {} s",
            humantime::format_duration(cfg.max_lag),
            r.probes_seen,
            cfg.probes,
            crate::report::opt(&r.offset_lag_bytes),
            crate::report::opt(&r.lag_s)
        );
        r.problems.push(msg.clone());
        out.push(Check::fail(name, msg));
    } else if r.probes_seen == cfg.probes {
        let l = r.visible_latency.clone().unwrap_or_default();
        out.push(Check::pass(
            name,
            format!(
                "{} probes seen, p50 {}, max {}",
                r.probes_seen,
                fmt_us(l.p50_us),
                fmt_us(l.max_us)
            ),
        ));
    } else {
        out.push(Check::fail(
            name,
            format!("{} of {} probes checked", r.probes_seen, cfg.probes),
        ));
    }
    out
}

impl Details for ReplicateDetails {
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Replicas",
            &[
                "node",
                "address",
                "verdict",
                "link",
                "follows",
                "offset lag",
                "lag",
                "probes",
                "p50",
                "p99",
                "max",
            ],
        );
        for r in &self.replicas {
            let l = r.visible_latency.clone();
            let us = |f: fn(&LatencyUs) -> f64| {
                l.as_ref()
                    .map(|l| fmt_us(f(l)))
                    .unwrap_or_else(|| "-".into())
            };
            s.row(vec![
                r.name.clone(),
                r.address.clone(),
                r.verdict.to_uppercase(),
                r.link_status.clone().unwrap_or_else(|| "-".into()),
                r.follows.clone().unwrap_or_else(|| "-".into()),
                r.offset_lag_bytes
                    .map(|b| format!("{b} B"))
                    .unwrap_or_else(|| "-".into()),
                r.lag_s
                    .map(|b| format!("{b} s"))
                    .unwrap_or_else(|| "-".into()),
                format!("{}/{}", r.probes_seen, self.probes),
                us(|l| l.p50_us),
                us(|l| l.p99_us),
                us(|l| l.max_us),
            ]);
        }
        s.notes.push(format!(
            "master: {} connected replicas ({} expected), offset {} B; probes are timed from the SET on the master to the value readable on the replica",
            self.master.connected_replicas, self.master.expected_replicas, self.master.repl_offset_bytes
        ));
        vec![s]
    }
}
