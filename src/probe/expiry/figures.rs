//! ttl-watch as figures: the TTL each node reported as it counted down, and
//! the moments around the expiry on one lane per node.

use super::report::{Ended, NodeExpiry, TtlWatchDetails};
use crate::report::figure::{Band, Figure, Kind, Mark, Rule, Series};
use crate::topology::Role;

pub fn figures(d: &TtlWatchDetails) -> Vec<Figure> {
    let mut out = Vec::new();
    out.extend(countdown(d));
    out.extend(timeline(d));
    out
}

fn countdown(d: &TtlWatchDetails) -> Option<Figure> {
    let mut f = Figure::new(
        "ttl",
        "TTL on each node",
        Kind::Line,
        "time since the first poll (s)",
        "remaining TTL (s)",
    )
    .caption(format!(
        "PTTL read on every node every {:.0} ms. Replicas count down with the master; once the \
         key is due they stop serving it, and drop it when the master's DEL arrives. Lines lie on top of each other where the nodes agree.",
        d.interval_ms
    ));
    for n in &d.nodes {
        let points: Vec<(f64, f64)> = n
            .ttl_samples
            .points()
            .iter()
            .filter(|s| s.ttl_ms >= 0)
            .map(|s| (s.t_ms / 1e3, s.ttl_ms as f64 / 1e3))
            .collect();
        f.series.push(Series::new(&n.name, points));
    }
    if d.initial_ttl_ms > 0 && d.ended != Ended::Window {
        f.rules.push(Rule {
            x: d.initial_ttl_ms as f64 / 1e3,
            label: "expected expiry".into(),
        });
    }
    f.has_data().then_some(f)
}

/// ms from the expected expiry.
fn from_expiry(d: &TtlWatchDetails, ms_from_start: f64) -> f64 {
    ms_from_start - d.initial_ttl_ms as f64
}

fn timeline(d: &TtlWatchDetails) -> Option<Figure> {
    let mut f = Figure::new(
        "expiry-timeline",
        "Expiry on each node",
        Kind::Timeline,
        "time from the expected expiry (ms)",
        "",
    )
    .caption(format!(
        "When each node stopped serving the key and when it left its keyspace (a replica: when \
         the master's DEL arrived). The shaded stretch is a replica hiding a key it has not \
         deleted yet. Moments seen by polling are within {:.0} ms; by notification, exact.",
        d.interval_ms
    ));
    for n in &d.nodes {
        f.series.push(lane(d, n));
    }
    f.rules.push(Rule {
        x: 0.0,
        label: "expected expiry".into(),
    });
    f.series.iter().any(|s| !s.marks.is_empty()).then_some(f)
}

fn lane(d: &TtlWatchDetails, n: &NodeExpiry) -> Series {
    let mut s = Series::new(&n.name, Vec::new());
    let stopped = n.stopped_serving_ms.map(|t| from_expiry(d, t));
    let left = n.left_keyspace_ms.map(|t| from_expiry(d, t));
    match (stopped, left) {
        // The master deletes as it stops serving (or is seen doing both at once).
        (Some(a), Some(b)) if (a - b).abs() < 1e-9 => s.marks.push(Mark {
            x: a,
            label: "expired".into(),
        }),
        (a, b) => {
            if let Some(x) = a {
                s.marks.push(Mark {
                    x,
                    label: "stopped serving".into(),
                });
            }
            if let Some(x) = b {
                let label = if n.role == Role::Replica {
                    "DEL arrived"
                } else {
                    "left keyspace"
                };
                s.marks.push(Mark {
                    x,
                    label: label.into(),
                });
            }
            if let (Some(from), Some(to)) = (a, b) {
                if to > from {
                    s.spans.push(Band {
                        from,
                        to,
                        label: String::new(),
                    });
                }
            }
        }
    }
    s
}
