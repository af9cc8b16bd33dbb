//! The ttl-watch report: what each node did as the key expired, the checks
//! over it, and the human tables.

use serde::{Deserialize, Serialize};

use crate::report::{Check, Details, Section, Verdict};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TtlWatchDetails {
    /// The key watched.
    pub key: String,
    /// The database number.
    pub db: i64,
    /// Whether redlab wrote the key (and removed it); false with --key, which only reads.
    pub written_by_redlab: bool,
    /// PTTL on the master at the first poll, ms.
    pub initial_ttl_ms: i64,
    /// Polling period, ms: the resolution of every moment measured by polling.
    pub interval_ms: f64,
    /// Allowed drift and lateness, ms.
    pub tolerance_ms: f64,
    /// How long after the expected expiry the watch waited, ms.
    pub grace_ms: f64,
    /// Rounds of PTTL on every node.
    pub polls: u64,
    /// `expired` (the key left every node), `window` (the watch window ended
    /// first) or `bound` (grace ran out).
    pub ended: String,
    /// Time from the first poll to the end of the watch, ms.
    pub watched_ms: f64,
    /// One entry per node, master first. Times are ms from the first poll.
    pub nodes: Vec<NodeExpiry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeExpiry {
    pub name: String,
    pub address: String,
    /// master or replica.
    pub role: String,
    /// Largest |PTTL here - PTTL on the master| in the same poll, ms (replicas).
    pub max_ttl_drift_ms: Option<i64>,
    /// The last PTTL read while it still served the key, ms.
    pub last_ttl_ms: Option<i64>,
    /// When PTTL first answered -2 (the key is no longer served), ms from start.
    pub stopped_serving_ms: Option<f64>,
    /// That moment minus the expected expiry (first poll + initial TTL), ms.
    pub stopped_after_expiry_ms: Option<f64>,
    /// When the key left its keyspace, ms from start: on a replica, when the
    /// master's DEL arrived.
    pub left_keyspace_ms: Option<f64>,
    /// Replicas: left_keyspace minus the master's, ms: the expiry-propagation gap.
    pub propagation_gap_ms: Option<f64>,
    /// Resolution of the gap, ms: 0 when both ends were seen by notification,
    /// else one polling interval.
    pub gap_resolution_ms: Option<f64>,
    /// How left_keyspace was measured: `notification` (a keyspace event, exact),
    /// `keyspace-count` (INFO keyspace count dropped by one while the db was
    /// quiet, at poll resolution), `pttl` (the master drops the key when it
    /// stops serving it, at poll resolution) or `not-observed`.
    pub measured_by: String,
    /// Why it was measured this way, or could not be.
    pub note: Option<String>,
    /// The error that stopped the watch of this node.
    pub error: Option<String>,
    /// Every PTTL reading while it served the key (thinned evenly past 8192).
    #[serde(default)]
    pub ttl_samples: crate::series::Thinned<TtlSample>,
}

/// One PTTL reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TtlSample {
    /// When it was sent, ms from the first poll.
    pub t_ms: f64,
    /// PTTL, ms (-1: no TTL).
    pub ttl_ms: i64,
}

/// Per node: reachable, TTL drift, hiding the key on time, the DEL arriving.
pub fn checks(d: &TtlWatchDetails) -> Vec<Check> {
    let mut out = Vec::new();
    let slack = d.tolerance_ms + d.interval_ms;
    if d.ended == "window" {
        out.push(Check::pass(
            "ttl.window",
            format!(
                "watched {:.1} s of a {:.1} s TTL; the window ended before expiry",
                d.watched_ms / 1e3,
                d.initial_ttl_ms as f64 / 1e3
            ),
        ));
    }
    for n in &d.nodes {
        if let Some(e) = &n.error {
            out.push(Check::fail(format!("{}.reachable", n.name), e.clone()));
            continue;
        }
        if let Some(dr) = n.max_ttl_drift_ms {
            let reason = format!(
                "TTL differs from the master's by at most {dr} ms (tolerance {:.0} ms)",
                d.tolerance_ms
            );
            out.push(if dr as f64 <= d.tolerance_ms {
                Check::pass(format!("{}.ttl-drift", n.name), reason)
            } else {
                Check::fail(format!("{}.ttl-drift", n.name), reason)
            });
        }
        if d.ended == "window" {
            continue;
        }
        let name = format!("{}.expiry", n.name);
        out.push(match n.stopped_after_expiry_ms {
            None if n.last_ttl_ms.is_none() => Check::fail(name, "never served the key: it did not reach this node"),
            None => Check::fail(name, format!("still served {:.1} s after its expected expiry", d.grace_ms / 1e3)),
            Some(x) if x > slack => Check::fail(name, format!("served the key {x:.0} ms past its expiry (tolerance {:.0} ms + one {:.0} ms poll)", d.tolerance_ms, d.interval_ms)),
            Some(x) if x < -slack => Check::new(name, Verdict::Warn, format!("stopped serving {:.0} ms before its expected expiry: deleted, or its TTL changed", -x)),
            Some(x) => Check::pass(name, format!("stopped serving {x:+.0} ms from its expected expiry (polled every {:.0} ms)", d.interval_ms)),
        });
        if n.role == "replica" {
            out.push(propagation_check(n, d));
        }
    }
    out
}

fn propagation_check(n: &NodeExpiry, d: &TtlWatchDetails) -> Check {
    let name = format!("{}.propagation", n.name);
    match (n.propagation_gap_ms, n.measured_by.as_str()) {
        (Some(g), how) => Check::pass(
            name,
            format!(
                "the master's DEL arrived {g:.1} ms ± {:.0} ms after the master dropped the key (seen by {how})",
                n.gap_resolution_ms.unwrap_or(0.0)
            ),
        ),
        (None, _) if n.left_keyspace_ms.is_none() && n.note.as_deref().is_some_and(|s| s.contains("not quiet")) || d.nodes[0].left_keyspace_ms.is_none() => {
            Check::new(name, Verdict::Warn, format!("propagation gap could not be observed: {}", n.note.clone().unwrap_or_else(|| "the master's expiry was not seen".into())))
        }
        (None, _) => Check::fail(name, format!("the key was still in its keyspace {:.1} s after its expiry (the master's DEL never arrived)", d.grace_ms / 1e3)),
    }
}

impl Details for TtlWatchDetails {
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Expiry",
            &[
                "node",
                "role",
                "TTL drift",
                "stopped serving",
                "vs expiry",
                "left keyspace",
                "gap",
                "measured by",
            ],
        );
        let f = |v: Option<f64>, unit: &str| {
            v.map(|x| format!("{x:.1}{unit}"))
                .unwrap_or_else(|| "-".into())
        };
        for n in &self.nodes {
            s.row(vec![
                n.name.clone(),
                n.role.clone(),
                n.max_ttl_drift_ms
                    .map(|d| format!("{d} ms"))
                    .unwrap_or_else(|| "-".into()),
                f(n.stopped_serving_ms.map(|x| x / 1e3), " s"),
                f(n.stopped_after_expiry_ms, " ms"),
                f(n.left_keyspace_ms.map(|x| x / 1e3), " s"),
                match (n.propagation_gap_ms, n.gap_resolution_ms) {
                    (Some(g), Some(r)) if r > 0.0 => format!("{g:.1} ± {r:.0} ms"),
                    (g, _) => f(g, " ms"),
                },
                n.measured_by.clone(),
            ]);
        }
        s.notes.push(format!(
            "key {} (db{}), TTL {} ms at the first poll, {}; PTTL polled every {:.0} ms on every node; times from the first poll",
            self.key,
            self.db,
            self.initial_ttl_ms,
            if self.written_by_redlab { "written by redlab and removed" } else { "read only" },
            self.interval_ms
        ));
        for n in &self.nodes {
            if let Some(note) = &n.note {
                s.notes.push(format!("{}: {note}", n.name));
            }
        }
        vec![s]
    }

    fn figures(&self) -> Vec<crate::report::Figure> {
        super::figures::figures(self)
    }
}
