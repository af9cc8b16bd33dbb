//! The drill as figures: a timeline with a lane for the load, one for the
//! Sentinels and one per node, the write-unavailability window shaded; and
//! the writes per 100 ms by outcome.

use super::report::{DrillDetails, Event};
use super::EventKind;
use crate::report::figure::{Band, Figure, Kind, Mark, Rule, Series};

pub fn figures(d: &DrillDetails) -> Vec<Figure> {
    [timeline(d), writes(d), lag(d)]
        .into_iter()
        .flatten()
        .collect()
}

/// The replicas' offset lag on the drill's clock (seconds from the fault).
fn lag(d: &DrillDetails) -> Option<Figure> {
    let shift = d.replica_lag_start_ms.unwrap_or(0.0) / 1e3;
    let mut f = crate::report::figure::replica_lag_from(d.replica_lag.as_ref()?, shift)?;
    f.rules.push(Rule {
        x: 0.0,
        label: format!("{} on {}", d.fault, d.target),
    });
    f.shaded.extend(window(d));
    f.x_label = "time from the fault (s)".into();
    Some(f)
}

fn window(d: &DrillDetails) -> Option<Band> {
    let (from, to) = (d.downtime_from_ms?, d.downtime_to_ms?);
    Some(Band {
        from: from / 1e3,
        to: to / 1e3,
        label: format!("writes unavailable {:.2} s", (to - from) / 1e3),
    })
}

/// The Sentinel events worth a mark: the first of each.
const SENTINEL_MARKS: &[&str] = &[
    "+sdown",
    "+odown",
    "+promoted-slave",
    "+switch-master",
    "+failover-end",
    "+convert-to-slave",
    "-sdown",
];

fn timeline(d: &DrillDetails) -> Option<Figure> {
    let mut f = Figure::new(
        "drill-timeline",
        &format!("{} on {}", d.fault, d.target),
        Kind::Timeline,
        "time from the fault (s)",
        "",
    )
    .caption(
        "What each part saw, timed on its own: the load's writes (acknowledged stretches as \
         bars), the first of each Sentinel event, and every change of standing of each node, \
         polled every 100 ms (-> X: a replica of X, link up; master (n): a master with n \
         replicas online). Shaded: the longest stretch without an acknowledged write (after \
         the fault, only those acknowledged by the final master count).",
    );
    let range = x_range(d);
    let mut load = Series::new("load", Vec::new()).label("writes");
    load.spans = acked_spans(d);
    // The edges of the outage; refusals are in the writes figure.
    let edges = d.events.iter().filter(|e| {
        e.source == "load" && e.kind == EventKind::Write && e.detail.contains("acknowledged")
    });
    load.marks = marks(edges, |e| {
        if e.detail.starts_with("last") {
            "last ack".into()
        } else {
            "first ack".into()
        }
    });
    f.series.push(load);
    let mut sentinels = Series::new("sentinels", Vec::new()).label("Sentinels");
    for kind in SENTINEL_MARKS {
        if let Some(e) = d
            .events
            .iter()
            .find(|e| e.t_ms >= 0.0 && e.source.starts_with("sentinel") && e.kind.as_str() == *kind)
        {
            sentinels.marks.push(Mark {
                x: e.t_ms / 1e3,
                label: kind.to_string(),
            });
        }
    }
    sentinels.marks.sort_by(|a, b| a.x.total_cmp(&b.x));
    sentinels.marks = merge_close(sentinels.marks, range);
    f.series.push(sentinels);
    for r in &d.resync {
        let mut lane = Series::new(&r.name, Vec::new());
        let own = d.events.iter().filter(|e| {
            (e.source == r.name && e.kind == EventKind::State)
                || (e.source == "drill" && e.detail.contains(&format!(" {} (", r.name)))
        });
        lane.marks = merge_close(marks(own, |e| short(&e.detail)), range);
        f.series.push(lane);
    }
    f.shaded.extend(window(d));
    f.rules.push(Rule {
        x: 0.0,
        label: "fault".into(),
    });
    f.has_data().then_some(f)
}

/// Seconds the timeline spans.
fn x_range(d: &DrillDetails) -> f64 {
    let ts = d.events.iter().map(|e| e.t_ms / 1e3);
    let (lo, hi) = ts.fold((0.0f64, 0.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (hi - lo).max(1.0)
}

/// Marks closer than 4 % of the range share one dot, or their labels collide.
fn merge_close(marks: Vec<Mark>, range: f64) -> Vec<Mark> {
    let mut groups: Vec<Vec<Mark>> = Vec::new();
    for m in marks {
        match groups.last_mut() {
            Some(g) if m.x - g[0].x < range * 0.04 => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let label = match g.as_slice() {
                [one] => one.label.clone(),
                [a, b] => format!("{}, {}", a.label, b.label),
                [a, .., z] => format!("{} ... {}", a.label, z.label),
                [] => String::new(),
            };
            Mark { x: g[0].x, label }
        })
        .collect()
}

fn marks<'a>(
    events: impl Iterator<Item = &'a Event>,
    label: impl Fn(&Event) -> String,
) -> Vec<Mark> {
    events
        .map(|e| Mark {
            x: e.t_ms / 1e3,
            label: label(e),
        })
        .collect()
}

/// A lane label: the gist of a node's state or of what the drill did to it.
fn short(detail: &str) -> String {
    let cut = detail.find(" (").unwrap_or(detail.len());
    let s = &detail[..cut];
    if let Some(rest) = s.strip_prefix("replica of ") {
        let (of, how) = rest.split_once(", ").unwrap_or((rest, ""));
        return match how {
            "link up" => format!("-> {of}"),
            "link down" => "link down".into(),
            "full sync in progress" => "full sync".into(),
            other => other.to_string(),
        };
    }
    if let Some(rest) = s.strip_prefix("master, ") {
        let n = rest.split(' ').next().unwrap_or("?");
        return format!("master ({n})");
    }
    // "SIGKILL master", "restarted master", "master exited": the action alone.
    let node = |w: &str| w.starts_with("master") || w.starts_with("replica");
    match s.split(' ').collect::<Vec<_>>().as_slice() {
        [a, b] if node(b) => a.to_string(),
        [a, b] if node(a) => b.to_string(),
        _ => s.to_string(),
    }
}

/// Stretches with acknowledged writes, from the 100 ms buckets.
fn acked_spans(d: &DrillDetails) -> Vec<Band> {
    let mut out: Vec<Band> = Vec::new();
    for b in d.write_buckets.iter().filter(|b| b.acknowledged > 0) {
        let (from, to) = (b.t_ms / 1e3, (b.t_ms + 100.0) / 1e3);
        match out.last_mut() {
            Some(last) if (last.to - from).abs() < 1e-9 => last.to = to,
            _ => out.push(Band {
                from,
                to,
                label: String::new(),
            }),
        }
    }
    out
}

fn writes(d: &DrillDetails) -> Option<Figure> {
    let mut f = Figure::new(
        "drill-writes",
        "Writes per 100 ms",
        Kind::Step,
        "time from the fault (s)",
        "writes per 100 ms",
    )
    .caption(format!(
        "Each write counted in the 100 ms it ended in: acknowledged at --ack {}, written but not \
         acknowledged (WAIT fell short), or refused (an error, a timeout).",
        d.ack
    ));
    let series = |name: &str, pick: fn(&super::report::WriteBucket) -> u64| {
        Series::new(
            name,
            d.write_buckets
                .iter()
                .map(|b| (b.t_ms / 1e3, pick(b) as f64))
                .collect(),
        )
    };
    f.series.push(series("acknowledged", |b| b.acknowledged));
    f.series
        .push(series("not acknowledged", |b| b.unacknowledged));
    f.series.push(series("refused", |b| b.failed));
    f.shaded.extend(window(d));
    f.rules.push(Rule {
        x: 0.0,
        label: "fault".into(),
    });
    f.has_data().then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_labels_keep_the_gist() {
        assert_eq!(short("replica of replica2, link up"), "-> replica2");
        assert_eq!(short("replica of master, link down"), "link down");
        assert_eq!(short("master, 3 replicas online"), "master (3)");
        assert_eq!(short("SIGKILL master (pid 12, port 6379)"), "SIGKILL");
        assert_eq!(short("restarted replica1 (pid 13, port 6380)"), "restarted");
        assert_eq!(short("not answering"), "not answering");
    }

    #[test]
    fn close_marks_share_a_dot() {
        let m = |x: f64, l: &str| Mark { x, label: l.into() };
        let merged = merge_close(
            vec![m(1.0, "+sdown"), m(1.1, "+odown"), m(5.0, "+switch-master")],
            10.0,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].label, "+sdown, +odown");
    }
}
