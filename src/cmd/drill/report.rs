//! The drill report: what the fault cost, as data (times in ms from the
//! fault, negative before it), and the checks over it.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::owned::Plan;
use super::settle::ReplicaRead;
use super::tally::{
    buckets, counts, levels, lost_acked_detail, outage, rate_before, resync_rows, write_events,
};
use super::{Config, EventKind, Fault, Measured, Resync};
use crate::duration::ms;
use crate::report::{plural, Check, Details, Figure, Section};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillDetails {
    /// The fault injected: kill-master, stop-master, restart-master, kill-replica,
    /// stop-replica, partition-replica or failover.
    pub fault: String,
    /// The node it hit, by its lab name (`master` is the server started as the master).
    pub target: String,
    /// host:port of the target.
    pub target_address: String,
    /// How long the fault lasted by design (--for), ms; null for faults without one.
    pub fault_for_ms: Option<f64>,
    /// The lab's Sentinels: down-after-milliseconds.
    pub down_after_ms: u64,
    /// The lab's Sentinels: failover-timeout, ms.
    pub failover_timeout_ms: u64,
    /// The data nodes' repl-timeout, s.
    pub repl_timeout_s: u64,
    /// The master's repl-backlog-size, bytes.
    pub backlog_bytes: u64,
    /// Writes per second asked for.
    pub rate_per_s: f64,
    /// Writes per second sent before the fault (the healthy stretch).
    pub rate_before_per_s: Option<f64>,
    /// What acknowledges a write: `replicas:N` (WAIT N) or `none` (plain SET).
    pub ack: String,
    /// WAIT's timeout, ms.
    pub ack_timeout_ms: f64,
    /// The master before the fault (a lab name).
    pub master_before: String,
    /// The master at the end.
    pub master_after: String,
    /// First +sdown of the master, ms from the fault (null: not seen).
    pub detected_ms: Option<f64>,
    /// First +odown (a quorum agreed), ms.
    pub odown_ms: Option<f64>,
    /// +promoted-slave (the leader's replica answered as a master), ms.
    pub promoted_ms: Option<f64>,
    /// First +switch-master (Sentinels tell clients), ms.
    pub switch_master_ms: Option<f64>,
    /// When the drill had resumed or restarted what it broke, ms.
    pub undone_ms: Option<f64>,
    /// When the lab was whole again (every node following one master the
    /// Sentinels agree on, a write acknowledged on it), ms.
    pub stable_ms: Option<f64>,
    /// Why it was not, when it was not within --settle.
    pub not_stable_because: Option<String>,
    /// Write unavailability: the longest stretch without an acknowledged
    /// write, counting from the last one before the fault and, after it,
    /// only those acknowledged on the final master. It starts at this
    /// acknowledgement, ms from the fault (null: none before the fault) ...
    pub downtime_from_ms: Option<f64>,
    /// ... and ends at this one, ms (null: writes were not acknowledged again).
    pub downtime_to_ms: Option<f64>,
    /// Its length, ms.
    pub downtime_ms: Option<f64>,
    /// The bound on it, ms.
    pub max_downtime_ms: f64,
    /// Where the bound comes from: --max-downtime, or the lab's timeouts.
    pub max_downtime_from: String,
    /// Every write the load attempted, by outcome.
    pub writes: WriteCounts,
    /// Writes grouped by what WAIT answered, with how many of them were lost.
    pub levels: Vec<AckLevel>,
    /// Writes acknowledged at the --ack level that the final master lacks
    /// (null: they could not be read back).
    pub lost_acknowledged: Option<u64>,
    /// --max-lost.
    pub max_lost: u64,
    /// Lost acknowledged writes by the node that acknowledged them.
    pub lost_by_node: BTreeMap<String, u64>,
    /// When the first of them was acknowledged, ms from the fault ...
    pub lost_from_ms: Option<f64>,
    /// ... and the last.
    pub lost_to_ms: Option<f64>,
    /// Why the read-back did not happen.
    pub read_back_error: Option<String>,
    /// Each replica of the final master compared with it.
    pub replicas_read: Vec<ReplicaRead>,
    /// Per data node: role, offset, resyncs before and after.
    pub resync: Vec<NodeResync>,
    /// Replica faults: how far the master moved while the replica was away, bytes.
    pub missed_bytes: Option<u64>,
    /// The resync the faulted replica should do, and why (null: no expectation).
    pub expected_resync: Option<Resync>,
    /// Where the expectation comes from (--expect, or the backlog rule with its numbers).
    pub expected_because: String,
    /// The resync it did: none, partial or full (from its log).
    pub seen_resync: Option<Resync>,
    /// Every event, in time order.
    pub events: Vec<Event>,
    /// Writes per 100 ms by when they ended, from the first to the last.
    pub write_buckets: Vec<WriteBucket>,
    /// Each replica's offset lag over the load, from the master's INFO
    /// (replica faults only; sample times from the sampler's start).
    #[serde(default)]
    pub replica_lag: Option<crate::series::lag::LagSeries>,
    /// When the lag sampling started, ms from the fault (negative).
    #[serde(default)]
    pub replica_lag_start_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteCounts {
    /// Ticks of the rate (writes due).
    pub scheduled: u64,
    /// Ticks not sent because every writer was waiting.
    pub skipped: u64,
    /// Writes sent (ids drawn).
    pub attempted: u64,
    /// SET answered OK.
    pub written: u64,
    /// Acknowledged at the --ack level.
    pub acknowledged: u64,
    /// Writes that got an error or no answer in time.
    pub failed: u64,
    /// Failures by kind (refused, timeout, read_only, ...).
    pub errors: BTreeMap<String, u64>,
    /// Failed writes (no OK seen) whose key the final master has anyway.
    pub failed_but_present: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckLevel {
    /// `no WAIT`, `WAIT 0`, `WAIT 1`, ..., or `WAIT failed`.
    pub level: String,
    /// Whether these count as acknowledged at the --ack level.
    pub acknowledged: bool,
    /// SETs answered OK with this WAIT answer.
    pub written: u64,
    /// Of those, absent from the final master.
    pub lost: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeResync {
    /// Its lab name.
    pub name: String,
    /// host:port.
    pub address: String,
    /// `master` or `slave` before the fault (null: no answer) ...
    pub role_before: Option<String>,
    /// ... and at the end.
    pub role_after: Option<String>,
    /// master_repl_offset before the fault, bytes.
    pub offset_before: Option<u64>,
    /// At the end, bytes.
    pub offset_after: Option<u64>,
    /// Its run id changed: restarted (its counters started again).
    pub restarted: bool,
    /// Full resyncs it did as a replica, from its log after the fault.
    pub full_resyncs: u32,
    /// Partial resyncs it did, from its log.
    pub partial_resyncs: u32,
    /// Resyncs it served as a master: sync_full delta (since its restart, if it restarted).
    pub served_full: u64,
    /// sync_partial_ok delta.
    pub served_partial_ok: u64,
    /// sync_partial_err delta.
    pub served_partial_err: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// ms from the fault (negative: before it).
    pub t_ms: f64,
    /// `sentinel2`, `replica1`, `load`, `drill`.
    pub source: String,
    /// A Sentinel event (+sdown, +switch-master, ...), `state`, `fault`, `follow`, `write`.
    pub kind: EventKind,
    /// What happened, as the source said it.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct WriteBucket {
    /// Start of the 100 ms bucket, ms from the fault.
    pub t_ms: f64,
    /// Acknowledged at the --ack level.
    pub acknowledged: u64,
    /// SET OK but not acknowledged at the level.
    pub unacknowledged: u64,
    /// Errors and timeouts.
    pub failed: u64,
}

pub fn ack_name(ack: Option<u32>) -> String {
    ack.map_or("none".into(), |n| format!("replicas:{n}"))
}

/// ms from `base`, negative before it.
pub fn rel(at: Instant, base: Instant) -> f64 {
    if at >= base {
        ms(at - base)
    } else {
        -ms(base - at)
    }
}

pub fn details(cfg: &Config, plan: &Plan, m: Measured) -> DrillDetails {
    let at = m.fault_at;
    let first = |kind: &str, prefix: &str| {
        m.events
            .iter()
            .filter(|e| e.at >= at && e.kind.as_str() == kind && e.detail.starts_with(prefix))
            .map(|e| rel(e.at, at))
            .reduce(f64::min)
    };
    let final_port = plan.nodes[m.master_after].port();
    let (out_from, out_to) = outage(cfg, &m.attempts, at, final_port);
    let (bound, from) = downtime_bound(cfg, plan);
    let present = m.read.as_ref().ok().map(|r| &r.present);
    let (levels, lost_acked) = levels(cfg, &m.attempts, present);
    let lost = lost_acked_detail(cfg, plan, &m.attempts, present, at);
    let (expected, because) = expectation(cfg, plan, m.applied.missed_bytes);
    let seen = (!cfg.fault.on_master()).then(|| seen_resync(m.resyncs[plan.target]));
    let mut events: Vec<Event> = m
        .events
        .iter()
        .map(|e| Event {
            t_ms: rel(e.at, at),
            source: e.source.clone(),
            kind: e.kind.clone(),
            detail: e.detail.clone(),
        })
        .collect();
    let name = |i: usize| plan.nodes[i].name.clone();
    write_events(
        &mut events,
        out_from,
        out_to,
        &m.attempts,
        at,
        &name(m.master_after),
    );
    events.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    DrillDetails {
        fault: cfg.fault.as_str().into(),
        target: name(plan.target),
        target_address: plan.nodes[plan.target].addr(),
        fault_for_ms: cfg.fault.lasts(cfg.fault_for).map(ms),
        down_after_ms: plan.timeouts.down_after_ms,
        failover_timeout_ms: plan.timeouts.failover_timeout_ms,
        repl_timeout_s: plan.timeouts.repl_timeout_s,
        backlog_bytes: plan.backlog_bytes,
        rate_per_s: cfg.rate,
        rate_before_per_s: rate_before(&m.attempts, at),
        ack: ack_name(cfg.ack),
        ack_timeout_ms: ms(cfg.ack_timeout),
        master_before: name(plan.master),
        master_after: name(m.master_after),
        detected_ms: first("+sdown", &sdown_prefix(cfg, plan)),
        odown_ms: first("+odown", "master "),
        promoted_ms: first("+promoted-slave", ""),
        switch_master_ms: first("+switch-master", ""),
        undone_ms: m.applied.undone.map(|u| rel(u, at)),
        stable_ms: m.stable.as_ref().ok().map(|(_, t)| rel(*t, at)),
        not_stable_because: m.stable.as_ref().err().cloned(),
        downtime_from_ms: out_from.map(|t| rel(t, at)),
        downtime_to_ms: out_to.map(|t| rel(t, at)),
        downtime_ms: out_from.zip(out_to).map(|(a, b)| ms(b - a)),
        max_downtime_ms: ms(bound),
        max_downtime_from: from,
        writes: counts(cfg, &m, present),
        levels,
        lost_acknowledged: lost_acked,
        max_lost: cfg.max_lost,
        lost_by_node: lost.by_node,
        lost_from_ms: lost.from_ms,
        lost_to_ms: lost.to_ms,
        read_back_error: m.read.as_ref().err().cloned(),
        replicas_read: m
            .read
            .as_ref()
            .map(|r| r.replicas.clone())
            .unwrap_or_default(),
        resync: resync_rows(plan, &m),
        missed_bytes: m.applied.missed_bytes,
        expected_resync: expected,
        expected_because: because,
        seen_resync: seen,
        write_buckets: buckets(cfg, &m.attempts, at),
        events,
        replica_lag_start_ms: m.replica_lag.as_ref().map(|(_, t)| rel(*t, at)),
        replica_lag: m.replica_lag.map(|(l, _)| l),
    }
}

/// How Sentinel names the target in its +sdown event.
fn sdown_prefix(cfg: &Config, plan: &Plan) -> String {
    if cfg.fault.on_master() {
        "master ".into()
    } else {
        format!("slave {}", plan.nodes[plan.target].addr())
    }
}

fn downtime_bound(cfg: &Config, plan: &Plan) -> (std::time::Duration, String) {
    if let Some(b) = cfg.max_downtime {
        return (b, "--max-downtime".into());
    }
    let t = &plan.timeouts;
    let lasts = cfg.fault.lasts(cfg.fault_for).unwrap_or_default();
    let mut from = "down-after + failover-timeout".to_string();
    if !lasts.is_zero() {
        from.push_str(" + --for");
    }
    (t.down_after() + t.failover_timeout() + lasts, from)
}

/// Redis's rule for a replica that kept its state (stopped, cut off): a
/// partial resync when what it missed still is in the master's backlog, a
/// full one when it is not. Near the edge either may happen (the backlog
/// is trimmed in blocks of 16 KiB), so no expectation is derived there.
fn expectation(cfg: &Config, plan: &Plan, missed: Option<u64>) -> (Option<Resync>, String) {
    if let Some(e) = cfg.expect {
        return (Some(e), "--expect".into());
    }
    if !matches!(cfg.fault, Fault::StopReplica | Fault::PartitionReplica) {
        return (None, "no --expect given".into());
    }
    let Some(missed) = missed else {
        return (None, "the master's offset could not be read".into());
    };
    let backlog = plan.backlog_bytes;
    let said = format!("it missed {missed} bytes, the backlog holds {backlog}");
    if missed < backlog {
        (Some(Resync::Partial), said)
    } else if missed > backlog + 64 * 1024 {
        (Some(Resync::Full), said)
    } else {
        (None, format!("{said}: too close to call"))
    }
}

fn seen_resync((full, partial): (u32, u32)) -> Resync {
    if full > 0 {
        Resync::Full
    } else if partial > 0 {
        Resync::Partial
    } else {
        Resync::None
    }
}

pub fn checks(d: &DrillDetails) -> Vec<Check> {
    let mut out = vec![super::checks::stable_check(d)];
    out.push(super::checks::downtime_check(d));
    out.push(super::checks::lost_check(d));
    out.push(super::checks::replicas_check(d));
    out.push(super::checks::resync_check(d));
    out.push(super::checks::rejoin_check(d));
    out.push(super::checks::load_check(d));
    out
}

impl Details for DrillDetails {
    fn sections(&self) -> Vec<Section> {
        super::tables::sections(self)
    }

    fn figures(&self) -> Vec<Figure> {
        super::figures::figures(self)
    }
}

/// `3 writes`, for reasons.
pub fn writes(n: u64) -> String {
    plural(n, "write")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::SentinelTimeouts;
    use crate::topology::SentinelSet;

    #[test]
    fn event_kinds_and_resyncs_are_written_as_the_words_they_were() {
        for (word, kind) in [
            ("state", EventKind::State),
            ("fault", EventKind::Fault),
            ("follow", EventKind::Follow),
            ("write", EventKind::Write),
            ("+switch-master", EventKind::Other("+switch-master".into())),
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
        }
        for r in [Resync::None, Resync::Partial, Resync::Full] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Resync>(&json).unwrap(), r);
        }
    }

    #[test]
    fn the_backlog_rule_decides_partial_or_full_and_stays_out_of_the_edge() {
        let plan = Plan {
            nodes: Vec::new(),
            sentinels: SentinelSet {
                master_name: "redlab".into(),
                nodes: Vec::new(),
                observed: None,
            },
            timeouts: SentinelTimeouts::default(),
            backlog_bytes: 1 << 20,
            master: 0,
            target: 1,
        };
        let mut cfg = super::super::tally::tests::cfg();
        cfg.fault = Fault::StopReplica;
        let rule = |missed| expectation(&cfg, &plan, Some(missed)).0;
        assert_eq!(rule(70_000), Some(Resync::Partial));
        assert_eq!(rule(3 << 20), Some(Resync::Full));
        assert_eq!(rule((1 << 20) + 1000), None, "within a block of the edge");
        cfg.fault = Fault::KillReplica;
        assert_eq!(expectation(&cfg, &plan, Some(70_000)).0, None);
        cfg.expect = Some(Resync::Full);
        assert_eq!(expectation(&cfg, &plan, Some(70_000)).0, Some(Resync::Full));
    }
}
