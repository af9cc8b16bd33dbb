//! Counting the load's writes: by acknowledgement level, by outcome, per
//! 100 ms; and each node's resync counters.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use super::load::{Attempt, WriteOutcome};
use super::owned::Plan;
use super::report::{rel, AckLevel, Event, NodeResync, WriteBucket, WriteCounts};
use super::settle::Snap;
use super::{Config, EventKind, Measured};

pub fn rate_before(attempts: &[Attempt], at: Instant) -> Option<f64> {
    let sent: Vec<Instant> = attempts
        .iter()
        .map(|a| a.sent)
        .filter(|s| *s < at)
        .collect();
    let first = sent.iter().min()?;
    let span = (at - *first).as_secs_f64();
    (span > 0.0).then(|| sent.len() as f64 / span)
}

/// Writes grouped by WAIT's answer; lost = SET OK but absent from the final master.
pub fn levels(
    cfg: &Config,
    attempts: &[Attempt],
    present: Option<&HashSet<u64>>,
) -> (Vec<AckLevel>, Option<u64>) {
    let mut by: BTreeMap<Option<u32>, (u64, u64)> = BTreeMap::new();
    for a in attempts {
        if let WriteOutcome::Set { acks } = a.outcome {
            let e = by.entry(acks).or_default();
            e.0 += 1;
            if present.is_some_and(|p| !p.contains(&a.id)) {
                e.1 += 1;
            }
        }
    }
    let mut lost_acked = 0;
    let rows = by
        .into_iter()
        .map(|(acks, (written, lost))| {
            let acknowledged = match (cfg.ack, acks) {
                (None, _) => true,
                (Some(n), Some(a)) => a >= n,
                (Some(_), None) => false,
            };
            if acknowledged {
                lost_acked += lost;
            }
            let level = match (cfg.ack, acks) {
                (None, _) => "no WAIT".to_string(),
                (Some(_), Some(a)) => format!("WAIT {a}"),
                (Some(_), None) => "WAIT failed".to_string(),
            };
            AckLevel {
                level,
                acknowledged,
                written,
                lost,
            }
        })
        .collect();
    (rows, present.map(|_| lost_acked))
}

pub fn counts(cfg: &Config, m: &Measured, present: Option<&HashSet<u64>>) -> WriteCounts {
    let mut c = WriteCounts {
        scheduled: m.ticks,
        skipped: m.skipped,
        attempted: m.attempts.len() as u64,
        ..WriteCounts::default()
    };
    for a in &m.attempts {
        match a.outcome {
            WriteOutcome::Set { .. } => c.written += 1,
            WriteOutcome::Failed(kind) => {
                c.failed += 1;
                let k = serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "other".into());
                *c.errors.entry(k).or_default() += 1;
                if present.is_some_and(|p| p.contains(&a.id)) {
                    c.failed_but_present += 1;
                }
            }
        }
        if a.acked(cfg.ack) {
            c.acknowledged += 1;
        }
    }
    c
}

/// The load's own moments on the timeline.
pub fn write_events(
    events: &mut Vec<Event>,
    out_from: Option<Instant>,
    out_to: Option<Instant>,
    attempts: &[Attempt],
    at: Instant,
    final_master: &str,
) {
    let mut push = |t: Instant, detail: String| {
        events.push(Event {
            t_ms: rel(t, at),
            source: "load".into(),
            kind: EventKind::Write,
            detail,
        })
    };
    if let Some(t) = out_from {
        push(t, "last write acknowledged before the outage".into());
    }
    let failed: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.done > at && matches!(a.outcome, WriteOutcome::Failed(_)))
        .collect();
    if let (Some(first), Some(last)) = (failed.first(), failed.last()) {
        push(
            first.done,
            format!(
                "first write refused after the fault ({} in all)",
                failed.len()
            ),
        );
        push(last.done, "last write refused".into());
    }
    if let Some(t) = out_to {
        push(
            t,
            format!("first write acknowledged after the outage, on {final_master}"),
        );
    }
}

/// Every 100 ms from the first write to the last, empty ones included (a
/// stretch where every writer waited is a stretch of zeros, not a gap).
pub fn buckets(cfg: &Config, attempts: &[Attempt], at: Instant) -> Vec<WriteBucket> {
    let key = |a: &Attempt| (rel(a.done, at) / 100.0).floor() as i64;
    let (Some(lo), Some(hi)) = (
        attempts.iter().map(key).min(),
        attempts.iter().map(key).max(),
    ) else {
        return Vec::new();
    };
    let mut by: BTreeMap<i64, WriteBucket> = (lo..=hi)
        .map(|k| {
            let b = WriteBucket {
                t_ms: k as f64 * 100.0,
                ..WriteBucket::default()
            };
            (k, b)
        })
        .collect();
    for a in attempts {
        let b = by.get_mut(&key(a)).expect("every bucket is there");
        match a.outcome {
            WriteOutcome::Failed(_) => b.failed += 1,
            _ if a.acked(cfg.ack) => b.acknowledged += 1,
            _ => b.unacknowledged += 1,
        }
    }
    by.into_values().collect()
}

pub fn resync_rows(plan: &Plan, m: &Measured) -> Vec<NodeResync> {
    let delta = |b: &Option<Snap>, a: &Option<Snap>, f: fn(&Snap) -> u64| match (b, a) {
        (Some(b), Some(a)) if a.run_id == b.run_id => f(a).saturating_sub(f(b)),
        (_, Some(a)) => f(a),
        _ => 0,
    };
    plan.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (b, a) = (&m.before[i], &m.after[i]);
            NodeResync {
                name: n.name.clone(),
                address: n.addr(),
                role_before: b.as_ref().map(|s| s.role.clone()),
                role_after: a.as_ref().map(|s| s.role.clone()),
                offset_before: b.as_ref().map(|s| s.offset),
                offset_after: a.as_ref().map(|s| s.offset),
                restarted: matches!((b, a), (Some(b), Some(a)) if a.run_id != b.run_id),
                full_resyncs: m.resyncs[i].0,
                partial_resyncs: m.resyncs[i].1,
                served_full: delta(b, a, |s| s.sync_full),
                served_partial_ok: delta(b, a, |s| s.sync_partial_ok),
                served_partial_err: delta(b, a, |s| s.sync_partial_err),
            }
        })
        .collect()
}

/// Where and when the lost acknowledged writes had been acknowledged.
pub struct LostDetail {
    pub by_node: BTreeMap<String, u64>,
    pub from_ms: Option<f64>,
    pub to_ms: Option<f64>,
}

pub fn lost_acked_detail(
    cfg: &Config,
    plan: &Plan,
    attempts: &[Attempt],
    present: Option<&HashSet<u64>>,
    at: Instant,
) -> LostDetail {
    let mut out = LostDetail {
        by_node: BTreeMap::new(),
        from_ms: None,
        to_ms: None,
    };
    let Some(present) = present else {
        return out;
    };
    for a in attempts
        .iter()
        .filter(|a| a.acked(cfg.ack) && !present.contains(&a.id))
    {
        let node = plan
            .index_of_port(a.port)
            .map_or_else(|| a.port.to_string(), |i| plan.nodes[i].name.clone());
        *out.by_node.entry(node).or_default() += 1;
        let t = rel(a.done, at);
        out.from_ms = Some(out.from_ms.map_or(t, |f| f.min(t)));
        out.to_ms = Some(out.to_ms.map_or(t, |f| f.max(t)));
    }
    out
}

/// The longest stretch without an acknowledged write: from the last one
/// before the fault through those acknowledged on the final master after it
/// (an acknowledgement from a master that is about to be demoted does not
/// count). (start, end); no end when writes were not acknowledged again.
pub fn outage(
    cfg: &Config,
    attempts: &[Attempt],
    at: Instant,
    final_port: u16,
) -> (Option<Instant>, Option<Instant>) {
    let acked = attempts.iter().filter(|a| a.acked(cfg.ack));
    let before = acked.clone().filter(|a| a.done <= at).map(|a| a.done).max();
    let mut after: Vec<Instant> = acked
        .filter(|a| a.done > at && a.port == final_port)
        .map(|a| a.done)
        .collect();
    after.sort();
    let Some(start) = before else {
        return (None, after.first().copied());
    };
    if after.is_empty() {
        return (Some(start), None);
    }
    let mut best = (start, after[0]);
    let mut prev = start;
    for t in after {
        if t - prev > best.1 - best.0 {
            best = (prev, t);
        }
        prev = t;
    }
    (Some(best.0), Some(best.1))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::client::ErrorKind;
    use std::time::Duration;

    pub fn cfg() -> Config {
        Config {
            fault: super::super::Fault::KillMaster,
            target: None,
            fault_for: Duration::from_secs(5),
            rate: 100.0,
            ack: Some(1),
            ack_timeout: Duration::from_millis(500),
            write_timeout: Duration::from_millis(500),
            value_size: 32,
            before: Duration::from_secs(1),
            after: Duration::from_secs(1),
            settle: Duration::from_secs(30),
            max_downtime: None,
            max_lost: 0,
            expect: None,
            state_dir: None,
            explicit_topology: false,
            lag_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn the_outage_is_the_longest_gap_counting_only_the_final_master_after_the_fault() {
        let at = Instant::now() + Duration::from_secs(10);
        let ms = |m: i64| {
            if m >= 0 {
                at + Duration::from_millis(m as u64)
            } else {
                at - Duration::from_millis((-m) as u64)
            }
        };
        let w = |id, done: i64, port, acks| Attempt {
            id,
            sent: ms(done),
            done: ms(done),
            port,
            outcome: WriteOutcome::Set { acks },
        };
        let attempts = vec![
            w(0, -20, 1, Some(1)),
            w(1, -10, 1, Some(1)),
            // Acknowledged by the old master after the fault: does not count.
            w(2, 300, 1, Some(1)),
            w(3, 400, 2, Some(0)),
            Attempt {
                outcome: WriteOutcome::Failed(ErrorKind::Refused),
                ..w(4, 500, 2, None)
            },
            w(5, 2000, 2, Some(1)),
            w(6, 2010, 2, Some(2)),
        ];
        let (from, to) = outage(&cfg(), &attempts, at, 2);
        assert_eq!(rel(from.unwrap(), at), -10.0);
        assert_eq!(rel(to.unwrap(), at), 2000.0);
        let (from, to) = outage(&cfg(), &attempts[..3], at, 2);
        assert!(from.is_some() && to.is_none());
        let b = buckets(&cfg(), &attempts, at);
        assert_eq!(b.len(), 22, "every 100 ms from -100 to 2000");
        assert_eq!(b.iter().map(|b| b.failed).sum::<u64>(), 1);
        assert_eq!(b.iter().map(|b| b.unacknowledged).sum::<u64>(), 1);
    }

    #[test]
    fn lost_writes_are_counted_per_wait_answer() {
        let now = Instant::now();
        let w = |id, acks| Attempt {
            id,
            sent: now,
            done: now,
            port: 1,
            outcome: WriteOutcome::Set { acks },
        };
        let attempts = [w(0, Some(0)), w(1, Some(1)), w(2, Some(2)), w(3, None)];
        let present: HashSet<u64> = [1, 3].into_iter().collect();
        let (rows, lost) = levels(&cfg(), &attempts, Some(&present));
        let by: Vec<(&str, bool, u64, u64)> = rows
            .iter()
            .map(|l| (l.level.as_str(), l.acknowledged, l.written, l.lost))
            .collect();
        assert_eq!(
            by,
            vec![
                ("WAIT failed", false, 1, 0),
                ("WAIT 0", false, 1, 1),
                ("WAIT 1", true, 1, 0),
                ("WAIT 2", true, 1, 1),
            ]
        );
        assert_eq!(lost, Some(1));
        assert_eq!(levels(&cfg(), &attempts, None).1, None);
    }
}
