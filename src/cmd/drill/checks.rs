//! The drill's checks, each earned on evidence: stable again, downtime
//! within its bound, no acknowledged write lost, replicas identical, the
//! resync Redis's rules predict, the faulted node back.

use super::report::{writes, DrillDetails};
use super::{EventKind, Resync};
use crate::report::Check;

pub fn stable_check(d: &DrillDetails) -> Check {
    match (d.stable_ms, &d.not_stable_because) {
        (Some(t), _) => Check::pass(
            "drill.stable",
            format!(
                "whole again {:.2} s after the fault: {} is the master, every other node follows it, \
                 the Sentinels agree and it acknowledges writes",
                t / 1e3,
                d.master_after
            ),
        ),
        (None, why) => Check::fail(
            "drill.stable",
            format!(
                "not whole again within --settle: {}",
                why.as_deref().unwrap_or("unknown")
            ),
        ),
    }
}

pub fn downtime_check(d: &DrillDetails) -> Check {
    let bound = format!(
        "bound {:.2} s ({})",
        d.max_downtime_ms / 1e3,
        d.max_downtime_from
    );
    match (d.downtime_from_ms, d.downtime_to_ms, d.downtime_ms) {
        (None, _, _) => Check::fail(
            "drill.downtime",
            "no write was acknowledged before the fault",
        ),
        (_, None, _) | (_, _, None) => Check::fail(
            "drill.downtime",
            format!(
                "no write was acknowledged on {} after the fault; {bound}",
                d.master_after
            ),
        ),
        (Some(_), Some(_), Some(w)) => {
            let reason = format!(
                "writes unavailable for {:.2} s (no write acknowledged from {:+.3} s to {:+.3} s, \
                 then on {}); {bound}",
                w / 1e3,
                d.downtime_from_ms.unwrap_or(0.0) / 1e3,
                d.downtime_to_ms.unwrap_or(0.0) / 1e3,
                d.master_after
            );
            if w <= d.max_downtime_ms {
                Check::pass("drill.downtime", reason)
            } else {
                Check::fail("drill.downtime", reason)
            }
        }
    }
}

pub fn lost_check(d: &DrillDetails) -> Check {
    let Some(lost) = d.lost_acknowledged else {
        return Check::fail(
            "drill.lost",
            format!(
                "the writes could not be read back: {}",
                d.read_back_error.as_deref().unwrap_or("unknown")
            ),
        );
    };
    if d.writes.acknowledged == 0 {
        return Check::skip("drill.lost", "no write was acknowledged: nothing to lose");
    }
    let unacked_lost: u64 = d
        .levels
        .iter()
        .filter(|l| !l.acknowledged)
        .map(|l| l.lost)
        .sum();
    let reason = format!(
        "{lost} of {} acknowledged at --ack {} lost on {} (at most {} allowed); {} not acknowledged lost",
        writes(d.writes.acknowledged),
        d.ack,
        d.master_after,
        d.max_lost,
        unacked_lost
    );
    if lost <= d.max_lost {
        Check::pass("drill.lost", reason)
    } else {
        Check::fail("drill.lost", reason)
    }
}

pub fn replicas_check(d: &DrillDetails) -> Check {
    if d.replicas_read.is_empty() {
        return Check::skip(
            "drill.replicas",
            format!("{} has no replica to compare with", d.master_after),
        );
    }
    let mut bad = Vec::new();
    for r in &d.replicas_read {
        if !r.compared {
            bad.push(format!(
                "{} not compared: {}",
                r.name,
                r.not_compared_because.as_deref().unwrap_or("unknown")
            ));
        } else if r.missing + r.extra > 0 {
            bad.push(format!(
                "{} lacks {} and has {} the master does not",
                r.name,
                writes(r.missing),
                writes(r.extra)
            ));
        }
    }
    if bad.is_empty() {
        Check::pass(
            "drill.replicas",
            format!(
                "{} caught up with {} and hold exactly its writes",
                plural_replicas(d.replicas_read.len()),
                d.master_after
            ),
        )
    } else {
        Check::fail("drill.replicas", bad.join("; "))
    }
}

fn plural_replicas(n: usize) -> String {
    if n == 1 {
        "its replica".into()
    } else {
        format!("all {n} replicas")
    }
}

fn seen_by_node(d: &DrillDetails) -> String {
    let each: Vec<String> = d
        .resync
        .iter()
        .filter(|r| r.full_resyncs + r.partial_resyncs > 0)
        .map(|r| {
            let mut k = Vec::new();
            if r.partial_resyncs > 0 {
                k.push(format!("{} partial", r.partial_resyncs));
            }
            if r.full_resyncs > 0 {
                k.push(format!("{} full", r.full_resyncs));
            }
            format!("{} {}", r.name, k.join(" + "))
        })
        .collect();
    if each.is_empty() {
        "no node resynced".into()
    } else {
        format!("resyncs: {}", each.join(", "))
    }
}

pub fn resync_check(d: &DrillDetails) -> Check {
    let seen_all = seen_by_node(d);
    let Some(expected) = &d.expected_resync else {
        return Check::skip(
            "drill.resync",
            format!("no expectation ({}); {seen_all}", d.expected_because),
        );
    };
    let (ok, what) = match &d.seen_resync {
        // A replica fault: the target's own resync.
        Some(seen) => (seen == expected, format!("{} resync: {seen}", d.target)),
        // A master fault with --expect: every node that stayed a replica.
        None => {
            let wrong: Vec<&str> = d
                .resync
                .iter()
                .filter(|r| r.name != d.target && r.name != d.master_after)
                .filter(|r| match expected {
                    Resync::Full => r.full_resyncs == 0,
                    Resync::Partial => r.full_resyncs > 0 || r.partial_resyncs == 0,
                    Resync::None => r.full_resyncs + r.partial_resyncs > 0,
                })
                .map(|r| r.name.as_str())
                .collect();
            let what = if wrong.is_empty() {
                "every replica did".to_string()
            } else {
                format!("not {}", wrong.join(", "))
            };
            (wrong.is_empty(), what)
        }
    };
    let reason = format!(
        "expected {expected} ({}); {what}; {seen_all}",
        d.expected_because
    );
    if ok {
        Check::pass("drill.resync", reason)
    } else {
        Check::fail("drill.resync", reason)
    }
}

pub fn rejoin_check(d: &DrillDetails) -> Check {
    let back = d.events.iter().find(|e| {
        e.t_ms > 0.0
            && e.source == d.target
            && e.kind == EventKind::State
            && e.detail == format!("replica of {}, link up", d.master_after)
    });
    let row = d.resync.iter().find(|r| r.name == d.target);
    let role = row.and_then(|r| r.role_after.as_deref());
    if d.stable_ms.is_none() {
        return Check::fail(
            "drill.rejoin",
            format!("{} is not back in a whole topology", d.target),
        );
    }
    let reason = match (role, back) {
        (Some("master"), _) => format!("{} is the master again (no failover happened)", d.target),
        (Some("replica"), Some(e)) => format!(
            "{} rejoined as a replica of {}, link up {:.2} s after the fault",
            d.target,
            d.master_after,
            e.t_ms / 1e3
        ),
        (Some("replica"), None) => {
            format!("{} follows {} again, link up", d.target, d.master_after)
        }
        _ => {
            return Check::fail(
                "drill.rejoin",
                format!("{} does not answer after the drill", d.target),
            )
        }
    };
    Check::pass("drill.rejoin", reason)
}

pub fn load_check(d: &DrillDetails) -> Check {
    let Some(r) = d.rate_before_per_s else {
        return Check::skip("drill.load", "no write was sent before the fault");
    };
    let reason = format!(
        "{r:.1} writes/s before the fault (asked {:.1}); {} attempted, {} refused, {} ticks skipped \
         while every writer waited",
        d.rate_per_s, d.writes.attempted, d.writes.failed, d.writes.skipped
    );
    if r >= 0.9 * d.rate_per_s {
        Check::pass("drill.load", reason)
    } else {
        Check::warn("drill.load", format!("rate not met: {reason}"))
    }
}
