//! replicate-check: each replica follows this master, its link is up, and a
//! write on the master becomes readable on it within --max-lag.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cli::ReplicateCheckArgs;
use crate::client::Conn;
use crate::ctx::Ctx;
use crate::report::{Check, Details, Report, Section};
use crate::stats::{fmt_us, histogram, LatencyUs};
use crate::survey::{require_master, NodeState};

mod figures;
mod roles;

pub(crate) use roles::line_for;
use roles::{inspect, master_check, role_check};

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

#[derive(Debug, Serialize, Deserialize)]
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

#[derive(Debug, Serialize, Deserialize)]
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

#[derive(Debug, Default, Serialize, Deserialize)]
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
    /// The same probes as a cumulative distribution: share of probes (percent)
    /// visible within each latency seen.
    #[serde(default)]
    pub visible_distribution: Vec<crate::series::PercentilePoint>,
    /// The error that stopped probing this replica.
    pub probe_error: Option<String>,
    /// Every problem found, one line each.
    pub problems: Vec<String>,
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<ReplicateDetails>> {
    let spinner = ctx.progress.spinner("surveying the topology");
    let states = ctx.survey().await;
    require_master(&states[0])?;
    let (mut details, mut checks) = roles(&cfg, ctx, &states);
    spinner.set_message(format!("writing {} probes", cfg.probes));
    checks.extend(propagation(&cfg, ctx, &states, &mut details).await?);
    spinner.finish();
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new(
        "replicate-check",
        ctx.manifest(),
        nodes,
        checks,
        details,
    ))
}

/// Reachability and roles from one survey, before any write: the master's
/// check, then each replica's `.reachable` or `.replication`. The master
/// must have passed `require_master`.
pub fn roles(cfg: &Config, ctx: &Ctx, states: &[NodeState]) -> (ReplicateDetails, Vec<Check>) {
    let minfo = states[0].info.as_ref().expect("checked by require_master");
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
        .map(|s| inspect(s, minfo, &lines, ctx))
        .collect();
    replicas.iter_mut().for_each(ReplicaResult::set_verdict);
    checks.extend(replicas.iter().map(role_check));
    let details = ReplicateDetails {
        probes: cfg.probes,
        max_lag_ms: crate::duration::ms(cfg.max_lag),
        master,
        replicas,
    };
    (details, checks)
}

/// Write the probes and time them to each reachable replica: one
/// `.propagation` check per reachable replica.
pub async fn propagation(
    cfg: &Config,
    ctx: &Ctx,
    states: &[NodeState],
    details: &mut ReplicateDetails,
) -> Result<Vec<Check>> {
    let mconn = states[0]
        .conn
        .clone()
        .expect("reachable master has a connection");
    let conns: Vec<Option<Conn>> = states[1..].iter().map(|s| s.conn.clone()).collect();
    probe(cfg, ctx, mconn.clone(), conns, &mut details.replicas).await?;
    refresh_lag(mconn, &states[1..], &mut details.replicas).await;
    let mut checks = Vec::new();
    for r in &mut details.replicas {
        if r.role.is_some() {
            checks.push(propagation_check(r, cfg));
        }
        r.set_verdict();
    }
    Ok(checks)
}

/// A replica that missed a probe: what the master sees of it now, so the
/// reason shows how far behind it is.
async fn refresh_lag(mut master: Conn, states: &[NodeState], results: &mut [ReplicaResult]) {
    if results
        .iter()
        .all(|r| r.probes_missed == 0 && r.probe_error.is_none())
    {
        return;
    }
    let Ok(info) = master.info("replication").await else {
        return;
    };
    let lines = info.replicas();
    for (st, r) in states.iter().zip(results.iter_mut()) {
        if let Some(l) = line_for(&st.node, &lines) {
            r.offset_lag_bytes = Some(info.repl_offset().saturating_sub(l.offset));
            r.lag_s = Some(l.lag_s);
        }
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
        // Once no replica is left to time, more probes would only be writes.
        if !active.contains(&true) {
            break;
        }
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
                    r.problems.push(e.clone());
                    r.probe_error = Some(e);
                    active[idx] = false;
                }
            }
        }
    }
    for (r, h) in results.iter_mut().zip(&hists) {
        if !h.is_empty() {
            r.visible_latency = Some(LatencyUs::from_ns(h));
            r.visible_distribution = crate::series::cdf(h, 200);
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

fn propagation_check(r: &mut ReplicaResult, cfg: &Config) -> Check {
    let name = format!("{}.propagation", r.name);
    let behind = match (r.offset_lag_bytes, r.lag_s) {
        (Some(b), Some(s)) => format!("the master sees it {b} bytes behind, last ACK {s} s ago"),
        _ => "the master does not list it among its replicas".to_string(),
    };
    if let Some(e) = &r.probe_error {
        return Check::fail(
            name,
            format!(
                "{e} ({} of {} probes seen); {behind}",
                r.probes_seen, cfg.probes
            ),
        );
    }
    if r.probes_missed > 0 {
        let msg = format!(
            "probe not visible within {} ({} of {} seen); {behind}",
            humantime::format_duration(cfg.max_lag),
            r.probes_seen,
            cfg.probes,
        );
        r.problems.push(msg.clone());
        return Check::fail(name, msg);
    }
    let l = r.visible_latency.clone().unwrap_or_default();
    Check::pass(
        name,
        format!(
            "{} probes seen, p50 {}, max {}",
            r.probes_seen,
            fmt_us(l.p50_us),
            fmt_us(l.max_us)
        ),
    )
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

    fn figures(&self) -> Vec<crate::report::Figure> {
        figures::figures(self)
    }
}
