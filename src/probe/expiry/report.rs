//! The ttl-watch report: what each node did as the key expired, the checks
//! over it, and the human tables.

use serde::{Deserialize, Serialize};

use crate::report::{Check, Details, Section};
use crate::topology::Role;

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
    pub ended: Ended,
    /// Time from the start of polling to the end of the watch, ms.
    pub watched_ms: f64,
    /// Earliest moment the key could expire (the master's first reading + its
    /// TTL), ms from the start; null when the master never answered.
    pub expected_expiry_ms: Option<f64>,
    /// One entry per node, master first. Times are ms from the first poll.
    pub nodes: Vec<NodeExpiry>,
}

/// Why the watch stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The key left every node.
    Expired,
    /// The watch window (--window) ended before the expiry.
    Window,
    /// The grace after the expected expiry ran out.
    Bound,
}

/// How a node's leaving the keyspace was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeasuredBy {
    /// A keyspace event: exact.
    Notification,
    /// INFO keyspace dropped by one while the db was quiet: poll resolution.
    KeyspaceCount,
    /// The master drops the key when it stops serving it: poll resolution.
    Pttl,
    /// Not seen.
    #[default]
    NotObserved,
    /// The watch window ended before the expiry.
    WindowEnded,
}

impl MeasuredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MeasuredBy::Notification => "notification",
            MeasuredBy::KeyspaceCount => "keyspace-count",
            MeasuredBy::Pttl => "pttl",
            MeasuredBy::NotObserved => "not-observed",
            MeasuredBy::WindowEnded => "window-ended",
        }
    }
}

impl std::fmt::Display for MeasuredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeExpiry {
    pub name: String,
    pub address: String,
    /// master or replica.
    pub role: Role,
    /// Replicas: the largest distance between the expiry its readings imply
    /// (reading time + PTTL) and the master's, ms: what the readings prove.
    pub max_ttl_drift_ms: Option<i64>,
    /// The last PTTL read while it still served the key, ms.
    pub last_ttl_ms: Option<i64>,
    /// When the last reading that still served the key was sent, ms from start.
    pub last_served_ms: Option<f64>,
    /// When PTTL's first -2 (no longer served) came back, ms from start.
    pub stopped_serving_ms: Option<f64>,
    /// Proven lateness: it still served the key this long after the latest
    /// possible expiry, ms (negative: not late).
    pub served_past_expiry_ms: Option<f64>,
    /// It had stopped serving the key by this long after the earliest
    /// possible expiry, ms (the first "gone" reading's reply).
    pub stopped_after_expiry_ms: Option<f64>,
    /// Width of the window it stopped in (last reading that served it to the
    /// first that did not), ms: the resolution of the moment.
    pub stop_resolution_ms: Option<f64>,
    /// When the key left its keyspace, ms from start (middle of the window it
    /// was seen in): on a replica, when the master's DEL arrived.
    pub left_keyspace_ms: Option<f64>,
    /// Half the width of that window, ms (0 by notification).
    pub left_resolution_ms: Option<f64>,
    /// Replicas: when the DEL arrived after the master dropped the key, ms:
    /// the expiry-propagation gap (never negative).
    pub propagation_gap_ms: Option<f64>,
    /// ± of the gap, ms: 0 when both ends were seen by notification.
    pub gap_resolution_ms: Option<f64>,
    /// The readings contradict each other (the replica lost the key before
    /// the master did): the gap could not be measured.
    pub gap_measurement_failed: bool,
    /// The slowest PTTL answer from this node, ms.
    pub slowest_poll_ms: Option<f64>,
    /// Set when a PTTL took longer than the poll interval: how long, ms.
    pub unresponsive_ms: Option<f64>,
    /// How left_keyspace was measured: `notification` (a keyspace event, exact),
    /// `keyspace-count` (INFO keyspace count dropped by one while the db was
    /// quiet, at poll resolution), `pttl` (the master drops the key when it
    /// stops serving it, at poll resolution), `not-observed`, or `window-ended`
    /// (the watch window ended before the expiry).
    pub measured_by: MeasuredBy,
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

/// Per node: reachable and answering within the poll interval, TTL drift,
/// hiding the key on time, the DEL arriving.
pub fn checks(d: &TtlWatchDetails) -> Vec<Check> {
    let mut out = Vec::new();
    if d.ended == Ended::Window {
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
        if let Some(took) = n.unresponsive_ms {
            out.push(Check::fail(
                format!("{}.responsive", n.name),
                format!(
                    "did not answer within the {:.0} ms poll interval: one PTTL took {took:.0} ms \
                     (stalled or overloaded), so its moments are known only to within that",
                    d.interval_ms
                ),
            ));
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
        if d.ended == Ended::Window {
            continue;
        }
        out.push(expiry_check(n, d));
        if n.role == Role::Replica {
            out.push(propagation_check(n, d));
        }
    }
    out
}

fn expiry_check(n: &NodeExpiry, d: &TtlWatchDetails) -> Check {
    let name = format!("{}.expiry", n.name);
    let res = n.stop_resolution_ms.unwrap_or(0.0);
    match (n.served_past_expiry_ms, n.stopped_after_expiry_ms) {
        (None, _) if n.last_ttl_ms.is_none() => {
            Check::fail(name, "never served the key: it did not reach this node")
        }
        (None, _) => Check::fail(
            name,
            format!(
                "still served {:.1} s after its expected expiry",
                d.grace_ms / 1e3
            ),
        ),
        (Some(late), _) if late > d.tolerance_ms => Check::fail(
            name,
            format!(
                "served the key {late:.0} ms past its expiry (tolerance {:.0} ms)",
                d.tolerance_ms
            ),
        ),
        (_, Some(x)) if x < -d.tolerance_ms => Check::warn(
            name,
            format!(
                "stopped serving {:.0} ms before its expected expiry: deleted, or its TTL changed",
                -x
            ),
        ),
        (_, x) => Check::pass(
            name,
            format!(
                "stopped serving by {:+.0} ms from its expected expiry (within a {res:.0} ms window)",
                x.unwrap_or(0.0)
            ),
        ),
    }
}

fn propagation_check(n: &NodeExpiry, d: &TtlWatchDetails) -> Check {
    let name = format!("{}.propagation", n.name);
    if n.gap_measurement_failed {
        return Check::warn(
            name,
            "measurement failed: this replica was seen losing the key before the master dropped it (the master's reading came late) and no reading of the master bounds its moment; no gap is reported",
        );
    }
    match n.propagation_gap_ms {
        Some(g) => Check::pass(
            name,
            format!(
                "the master's DEL arrived {g:.1} ms ± {:.1} ms after the master dropped the key (seen by {})",
                n.gap_resolution_ms.unwrap_or(0.0),
                n.measured_by
            ),
        ),
        None if n.note.as_deref().is_some_and(|s| s.contains("not quiet"))
            || d.nodes[0].left_keyspace_ms.is_none() =>
        {
            Check::warn(
                name,
                format!(
                    "propagation gap could not be observed: {}",
                    n.note
                        .clone()
                        .unwrap_or_else(|| "the master's expiry was not seen".into())
                ),
            )
        }
        None if n.unresponsive_ms.is_some() => Check::skip(
            name,
            "not measured: the replica did not answer in time (see its .responsive check)",
        ),
        None => Check::fail(
            name,
            format!(
                "the key was still in its keyspace {:.1} s after its expiry (the master's DEL never arrived)",
                d.grace_ms / 1e3
            ),
        ),
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
                n.role.to_string(),
                n.max_ttl_drift_ms
                    .map(|d| format!("{d} ms"))
                    .unwrap_or_else(|| "-".into()),
                f(n.stopped_serving_ms.map(|x| x / 1e3), " s"),
                f(n.stopped_after_expiry_ms, " ms"),
                f(n.left_keyspace_ms.map(|x| x / 1e3), " s"),
                match (n.propagation_gap_ms, n.gap_resolution_ms) {
                    (Some(g), Some(r)) if r > 0.0 => format!("{g:.1} ± {r:.1} ms"),
                    (g, _) => f(g, " ms"),
                },
                n.measured_by.to_string(),
            ]);
        }
        s.notes.push(format!(
            "key {} (db{}), TTL {} ms at the first poll, {}; PTTL polled every {:.0} ms on every node, each on its own clock; times from the start",
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
