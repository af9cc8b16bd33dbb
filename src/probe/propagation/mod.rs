//! The roles and propagation probe (replicate-check's measurement, check's
//! `reachability` and `replication` steps, demo's replication check): the
//! master has the replicas it should, each follows
//! this master with its link up, and a write on the master becomes readable
//! on it within --max-lag (a probe seen later is a failure, not a slow pass).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::client::Conn;
use crate::latency::{fmt_us, histogram, LatencyUs};
use crate::replication::{self, Standing};
use crate::report::{Check, Details, Section};
use crate::run::Ctx;
use crate::survey::{Master, Survey};

mod figures;
pub mod sentinels;

/// What probing may store at once: a few small keys.
const PROBE_BYTES: u64 = 64 * 1024;

#[derive(Clone)]
pub struct Config {
    pub probes: u32,
    pub max_lag: Duration,
    /// How often each replica's offset lag is sampled while probing.
    pub lag_interval: Duration,
}

impl Config {
    /// Refused as input: a check over no probe would pass over nothing.
    pub fn validate(&self) -> Result<()> {
        if self.probes == 0 {
            bail!("--probes must be at least 1: with no probe, propagation would pass without being checked");
        }
        Ok(())
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
    /// Each replica's offset lag while the probes were written, from the
    /// master's INFO (null when nothing was probed).
    #[serde(default)]
    pub replica_lag: Option<crate::series::lag::LagSeries>,
    /// Each Sentinel given (`--sentinel`, or the lab's), as its checks found it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentinels: Vec<sentinels::SentinelResult>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MasterResult {
    /// Replicas the master reports (`connected_slaves`).
    pub connected_replicas: u64,
    /// Replicas it must have: given, started by redlab, or --expect-replicas;
    /// null when discovered and not asserted.
    pub expected_replicas: Option<usize>,
    /// `master_repl_offset` at the start, bytes.
    pub repl_offset_bytes: u64,
    /// `master_replid`.
    pub replid: String,
    /// Slowest probe SET on the master, ms (a paused master shows here).
    pub slowest_write_ms: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicaResult {
    pub name: String,
    pub address: String,
    /// pass, fail, or skipped (not probed: it does not follow this master).
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
    /// Whether probes were timed on it (only on a replica that follows this master).
    pub probed: bool,
    /// Probes seen within --max-lag.
    pub probes_seen: u32,
    /// Probes first seen after --max-lag (a bound exceeded, even if the value arrived).
    pub probes_late: u32,
    /// Probes not seen at all within --max-lag (probing stops at the first miss).
    pub probes_missed: u32,
    /// When the late probe was first seen, ms after its SET was sent.
    pub late_seen_ms: Option<f64>,
    /// Write-to-visible latency of the probes it saw within the bound (from the
    /// SET on the master to the GET on this replica returning the value).
    pub visible_latency: Option<LatencyUs>,
    /// The same probes as a cumulative distribution: share of probes (percent)
    /// visible within each latency seen.
    pub visible_distribution: Vec<crate::series::PercentilePoint>,
    /// The error that stopped probing this replica.
    pub probe_error: Option<String>,
    /// Every problem found, one line each.
    pub problems: Vec<String>,
    /// Chained: the replica it follows (which lists it), not the master.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chained_behind: Option<String>,
}

/// What replicate-check measured on its own survey.
pub struct Replication {
    pub survey: Survey,
    pub details: ReplicateDetails,
    /// The replica count, roles, the Sentinels' and the propagation checks.
    pub checks: Vec<Check>,
}

/// The whole replicate-check on a fresh survey: roles, what the Sentinels
/// say (when the topology has them), then the probes' propagation.
pub async fn measure(cfg: &Config, ctx: &Ctx) -> Result<Replication> {
    let spinner = ctx.progress.spinner("surveying the topology");
    let survey = ctx.survey().await?;
    let master = survey.master()?;
    let (mut details, mut checks) = roles(cfg, ctx, &survey, &master);
    if let Some(set) = &ctx.topology.sentinel {
        spinner.set_message("asking the Sentinels");
        let (c, rows) = sentinels::checks(set, &ctx.topology.master, ctx.timeout).await;
        checks.extend(c);
        details.sentinels = rows;
    }
    spinner.set_message(format!("writing {} probes", cfg.probes));
    checks.extend(propagation(cfg, ctx, &survey, &master, &mut details).await?);
    spinner.finish();
    Ok(Replication {
        survey,
        details,
        checks,
    })
}

/// Reachability and roles from one survey, before any write: the replica
/// count, then each replica's `.reachable` or `.replication`.
pub fn roles(
    cfg: &Config,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
) -> (ReplicateDetails, Vec<Check>) {
    let minfo = master.info;
    let m = MasterResult {
        connected_replicas: minfo.u64("connected_slaves").unwrap_or(0),
        expected_replicas: ctx.topology.expected_count(),
        repl_offset_bytes: minfo.repl_offset(),
        replid: minfo.get("master_replid").unwrap_or("").to_string(),
        slowest_write_ms: None,
    };
    let views = replication::views(survey, minfo, &ctx.topology);
    let chained = replication::chained_count(&views);
    let mut checks = vec![replication::count_check_chained(
        &ctx.topology,
        master,
        chained,
    )];
    let replicas: Vec<ReplicaResult> = survey
        .replicas()
        .iter()
        .zip(views)
        .map(|(st, v)| {
            let mut r = ReplicaResult {
                name: st.node.name.clone(),
                address: st.node.addr(),
                role: v.role.clone(),
                link_status: v.link_status.clone(),
                follows: v.follows.clone(),
                listed_by_master: v.listed_by_master,
                syncing: v.syncing,
                offset_lag_bytes: v.offset_lag_bytes,
                lag_s: v.lag_s,
                // Every reachable replica is probed: one that does not follow
                // this master fails to see the probes, which says so twice.
                probed: v.standing != Standing::Unreachable,
                chained_behind: v.chained_behind,
                problems: v.problems,
                ..ReplicaResult::default()
            };
            r.set_verdict();
            r
        })
        .collect();
    checks.extend(replicas.iter().map(role_check));
    let details = ReplicateDetails {
        probes: cfg.probes,
        max_lag_ms: crate::duration::ms(cfg.max_lag),
        master: m,
        replicas,
        replica_lag: None,
        sentinels: Vec::new(),
    };
    (details, checks)
}

/// check's `reachability` line when every role is right: `nodes` answered.
pub fn roles_summary(d: &ReplicateDetails, nodes: usize) -> String {
    let nodes = crate::report::plural(nodes as u64, "node");
    match d.master.expected_replicas {
        Some(n) => format!(
            "{nodes} answer; the master has the {} expected, each following it with its link up",
            crate::report::plural(n as u64, "replica")
        ),
        None => format!(
            "{nodes} answer; {} discovered, each following the master with its link up",
            crate::report::plural(d.replicas.len() as u64, "replica")
        ),
    }
}

/// Write the probes and time them to each replica that follows this
/// master: one `.propagation` check per replica (skipped, with the reason,
/// where it could not be probed), or one skipped `propagation` when the
/// master has no replica at all.
pub async fn propagation(
    cfg: &Config,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
    details: &mut ReplicateDetails,
) -> Result<Vec<Check>> {
    if details.replicas.is_empty() {
        return Ok(vec![Check::skip(
            "propagation",
            "not run: the topology has no replica, so there is nothing to propagate to",
        )]);
    }
    ctx.prepare_writes(master, PROBE_BYTES).await?;
    let conns: Vec<Option<Conn>> = survey
        .replicas()
        .iter()
        .zip(&details.replicas)
        .map(|(s, r)| s.conn.clone().filter(|_| r.probed))
        .collect();
    // The lag sampler has a connection of its own: its INFO never queues
    // behind (or in front of) a probe.
    let probed: Vec<_> = survey
        .replicas()
        .iter()
        .zip(&details.replicas)
        .filter(|(_, r)| r.probed)
        .map(|(s, _)| s.node.clone())
        .collect();
    let opts = crate::replication::lag::LagOptions {
        interval: cfg.lag_interval,
        // The probes time the catch-up themselves; the series stops with them.
        settle: Duration::ZERO,
    };
    let sampler = crate::replication::lag::Sampler::start(
        ctx.topology.master.clone(),
        probed,
        opts,
        ctx.timeout,
    );
    let slowest = probe(cfg, ctx, master.conn.clone(), conns, &mut details.replicas).await;
    let lag = sampler.finish().await.map(|(series, _)| series);
    let slowest = slowest?;
    details.replica_lag = lag;
    details.master.slowest_write_ms = slowest.map(crate::duration::ms);
    refresh_lag(master.conn.clone(), survey, &mut details.replicas).await;
    let mut checks = Vec::new();
    for r in &mut details.replicas {
        checks.push(propagation_check(r, cfg, slowest));
        r.set_verdict();
    }
    Ok(checks)
}

/// A replica that missed a probe: what the master sees of it now, so the
/// reason shows how far behind it is.
async fn refresh_lag(mut master: Conn, survey: &Survey, results: &mut [ReplicaResult]) {
    if results
        .iter()
        .all(|r| r.probes_missed + r.probes_late == 0 && r.probe_error.is_none())
    {
        return;
    }
    let Ok(info) = master.info("replication").await else {
        return;
    };
    let lines = info.replicas();
    for (st, r) in survey.replicas().iter().zip(results.iter_mut()) {
        if let Some(l) = replication::line_for(&st.node, &lines) {
            r.offset_lag_bytes = Some(info.repl_offset().saturating_sub(l.offset));
            r.lag_s = Some(l.lag_s);
        }
    }
}

/// What one replica showed of one probe.
enum Seen {
    /// Within the bound, ns after the SET was sent.
    InTime(u64),
    /// Only after the bound, ns after the SET was sent.
    Late(u64),
    /// Not by the bound (or the replica did not answer by then).
    Missed,
    Error(String),
}

/// Write each probe on the master, then time until every probed replica
/// serves it. Returns the slowest SET on the master.
async fn probe(
    cfg: &Config,
    ctx: &Ctx,
    mut master: Conn,
    conns: Vec<Option<Conn>>,
    results: &mut [ReplicaResult],
) -> Result<Option<Duration>> {
    let mut hists: Vec<_> = results.iter().map(|_| histogram()).collect();
    let mut active: Vec<bool> = conns.iter().map(Option::is_some).collect();
    // Every probe expires by itself: a crash or a lost master leaves nothing
    // that outlives this bound.
    let ttl = crate::run::key_ttl(cfg.max_lag * 2 + ctx.timeout * 2);
    let mut slowest: Option<Duration> = None;
    let mut written = Vec::new();
    for i in 0..cfg.probes {
        // Once no replica is left to time, more probes would only be writes.
        if !active.contains(&true) {
            break;
        }
        let key = ctx.key(&format!("probe:{i}"));
        let value = format!("{}:{i}", ctx.run_id);
        ctx.ledger.add(key.clone());
        written.push(key.clone());
        ctx.safety.expiring(ttl);
        let t0 = Instant::now();
        master
            .query::<()>(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64),
            )
            .await?;
        let took = t0.elapsed();
        slowest = Some(slowest.map_or(took, |s| s.max(took)));
        let deadline = t0 + cfg.max_lag;
        let mut tasks = Vec::new();
        for (idx, c) in conns.iter().enumerate() {
            if let (true, Some(c)) = (active[idx], c) {
                let (c, key, value) = (c.clone(), key.clone(), value.clone());
                tasks.push((
                    idx,
                    tokio::spawn(wait_visible(c, key, value, t0, deadline, cfg.max_lag)),
                ));
            }
        }
        for (idx, t) in tasks {
            let r = &mut results[idx];
            match t.await.expect("probe task does not panic") {
                Seen::InTime(ns) => {
                    r.probes_seen += 1;
                    crate::latency::record_n(&mut hists[idx], ns.max(1), 1);
                }
                Seen::Late(ns) => {
                    r.probes_late += 1;
                    r.late_seen_ms.get_or_insert(ns as f64 / 1e6);
                    active[idx] = false;
                }
                Seen::Missed => {
                    r.probes_missed += 1;
                    active[idx] = false;
                }
                Seen::Error(e) => {
                    r.problems.push(e.clone());
                    r.probe_error = Some(e);
                    active[idx] = false;
                }
            }
        }
    }
    // The probes go now: a step after this one (the demo's expiry watch,
    // a count) must not see them expire. Replicas still keeping up confirm.
    let following = active.iter().filter(|a| **a).count();
    ctx.discard(&mut master, &written, following).await;
    for (r, h) in results.iter_mut().zip(&hists) {
        if !h.is_empty() {
            r.visible_latency = Some(LatencyUs::from_ns(h));
            r.visible_distribution = crate::series::cdf(h, 200);
        }
    }
    Ok(slowest)
}

/// Poll GET until the value is there or the bound passes. Each GET waits at
/// most until the bound: a stalled replica is a miss at the bound, and a
/// value that only arrives after it (a GET the replica answered late) is
/// late, never a pass.
async fn wait_visible(
    mut c: Conn,
    key: String,
    value: String,
    t0: Instant,
    deadline: Instant,
    bound: Duration,
) -> Seen {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let cmd = redis::cmd("GET").arg(&key).clone();
        let get = c.query::<Option<String>>(&cmd);
        let got = match tokio::time::timeout(left.max(Duration::from_millis(1)), get).await {
            Err(_) => return Seen::Missed,
            Ok(Err(e)) => return Seen::Error(e.message),
            Ok(Ok(v)) => v,
        };
        let elapsed = t0.elapsed();
        if got.as_deref() == Some(value.as_str()) {
            let ns = elapsed.as_nanos() as u64;
            return if elapsed <= bound {
                Seen::InTime(ns)
            } else {
                Seen::Late(ns)
            };
        }
        if Instant::now() >= deadline {
            return Seen::Missed;
        }
        // Each GET is a round trip; yield so the other replicas' polls run too.
        tokio::task::yield_now().await;
    }
}

impl ReplicaResult {
    fn set_verdict(&mut self) {
        self.verdict = if !self.problems.is_empty() {
            "fail"
        } else if !self.probed {
            "skipped"
        } else {
            "pass"
        }
        .into();
    }
}

/// `.reachable` when it could not be reached, else `.replication`: role,
/// link, and whether it follows this master.
fn role_check(r: &ReplicaResult) -> Check {
    if r.role.is_none() {
        let mut reason = r.problems.join("; ");
        if r.listed_by_master {
            reason.push_str(&format!(
                "; the master sees it {} behind, last ACK {} s ago",
                r.offset_lag_bytes
                    .map_or("-".into(), crate::report::human_bytes_or_zero),
                crate::report::opt(&r.lag_s)
            ));
        }
        return Check::fail(format!("{}.reachable", r.name), reason);
    }
    let name = format!("{}.replication", r.name);
    if r.problems.is_empty() {
        Check::pass(
            name,
            format!(
                "role {}, link {}, follows {}",
                crate::report::role_word(r.role.as_deref().unwrap_or("-")),
                r.link_status.as_deref().unwrap_or("-"),
                r.follows.as_deref().unwrap_or("-")
            ),
        )
    } else {
        Check::fail(name, r.problems.join("; "))
    }
}

fn propagation_check(r: &mut ReplicaResult, cfg: &Config, slowest: Option<Duration>) -> Check {
    let name = format!("{}.propagation", r.name);
    if !r.probed {
        let why = if r.role.is_none() {
            "it could not be reached"
        } else {
            "it does not follow this master with its link up (see its .replication check)"
        };
        return Check::skip(name, format!("not probed: {why}"));
    }
    let behind = match (r.offset_lag_bytes, r.lag_s) {
        (Some(b), Some(s)) => format!(
            "the master sees it {} behind, last ACK {s} s ago",
            crate::report::human_bytes_or_zero(b)
        ),
        _ => "the master does not list it among its replicas".to_string(),
    };
    let bound = humantime::format_duration(cfg.max_lag);
    // A master that takes longer than the bound to accept the write makes
    // every replica late: say so, instead of blaming the replicas alone.
    let master_slow = slowest
        .filter(|s| *s > cfg.max_lag / 2)
        .map(|s| {
            format!(
                "; the master itself took up to {:.0} ms to accept a probe SET (paused or overloaded?)",
                s.as_secs_f64() * 1e3
            )
        })
        .unwrap_or_default();
    if let Some(e) = &r.probe_error {
        return Check::fail(
            name,
            format!(
                "{e} ({} of {} probes seen); {behind}",
                r.probes_seen, cfg.probes
            ),
        );
    }
    if r.probes_late > 0 {
        let msg = format!(
            "probe first seen {:.0} ms after its write, past the {bound} bound ({} of {} seen in time){master_slow}",
            r.late_seen_ms.unwrap_or(0.0),
            r.probes_seen,
            cfg.probes,
        );
        r.problems.push(msg.clone());
        return Check::fail(name, msg);
    }
    if r.probes_missed > 0 {
        let msg = format!(
            "probe not visible within {bound} ({} of {} seen); {behind}{master_slow}",
            r.probes_seen, cfg.probes,
        );
        r.problems.push(msg.clone());
        return Check::fail(name, msg);
    }
    let l = r.visible_latency.clone().unwrap_or_default();
    Check::pass(
        name,
        format!(
            "{} probes seen within {bound}, p50 {}, max {}",
            r.probes_seen,
            fmt_us(l.p50_us),
            fmt_us(l.max_us)
        ),
    )
}

impl Details for ReplicateDetails {
    /// Columns in order of importance: the verdict and the probes first, where
    /// it follows last (its .replication check says it too).
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Replicas",
            &[
                "node",
                "verdict",
                "probes",
                "p50",
                "p99",
                "max",
                "offset lag",
                "lag",
                "link",
                "follows",
                "address",
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
                match &r.chained_behind {
                    Some(p) => format!("{p} > {}", r.name),
                    None => r.name.clone(),
                },
                r.verdict.to_uppercase(),
                if r.probed {
                    format!("{}/{}", r.probes_seen, self.probes)
                } else {
                    "-".into()
                },
                us(|l| l.p50_us),
                us(|l| l.p99_us),
                us(|l| l.max_us),
                r.offset_lag_bytes
                    .map(crate::report::human_bytes_or_zero)
                    .unwrap_or_else(|| "-".into()),
                r.lag_s
                    .map(|b| format!("{b} s"))
                    .unwrap_or_else(|| "-".into()),
                r.link_status.clone().unwrap_or_else(|| "-".into()),
                r.follows.clone().unwrap_or_else(|| "-".into()),
                r.address.clone(),
            ]);
        }
        let expected = match self.master.expected_replicas {
            Some(n) => format!("{n} expected"),
            None => "count not asserted".into(),
        };
        s.notes.push(format!(
            "master: {} connected ({expected}), offset {} B; probes are timed from the SET on the master to the value readable on the replica",
            crate::report::plural(self.master.connected_replicas, "replica"),
            self.master.repl_offset_bytes
        ));
        let mut out = vec![s];
        if !self.sentinels.is_empty() {
            out.push(sentinels::section(&self.sentinels));
        }
        out
    }

    fn figures(&self) -> Vec<crate::report::Figure> {
        figures::figures(self)
    }
}
