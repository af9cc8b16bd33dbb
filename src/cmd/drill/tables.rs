//! The drill report for people: its checks (each earned on evidence) and tables.

use super::report::{writes, DrillDetails, Event};
use super::{EventKind, Resync};
use crate::report::{opt, Section};

fn secs(ms: Option<f64>) -> String {
    ms.map_or("-".into(), |v| format!("{:.2} s", v / 1e3))
}

/// `1 MiB`, `16 KiB`, `1000 bytes`: a configured size as it was given.
fn size(b: u64) -> String {
    match b {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

pub fn sections(d: &DrillDetails) -> Vec<Section> {
    vec![
        setup(d),
        cost(d),
        levels(d),
        resync(d),
        replicas(d),
        timeline(d),
    ]
}

fn setup(d: &DrillDetails) -> Section {
    let mut s = Section::new("Drill", &["part", "as run"]);
    let lasting = d
        .fault_for_ms
        .map(|f| format!(" for {:.1} s", f / 1e3))
        .unwrap_or_default();
    s.row(vec![
        "fault".into(),
        format!(
            "{} on {} ({}){lasting}",
            d.fault, d.target, d.target_address
        ),
    ]);
    s.row(vec![
        "lab".into(),
        format!(
            "Sentinels with down-after {} ms, failover-timeout {} ms; repl-timeout {} s, backlog {}",
            d.down_after_ms,
            d.failover_timeout_ms,
            d.repl_timeout_s,
            size(d.backlog_bytes)
        ),
    ]);
    s.row(vec![
        "load".into(),
        format!(
            "{} writes/s, each acknowledged by --ack {} (WAIT timeout {:.0} ms)",
            d.rate_per_s, d.ack, d.ack_timeout_ms
        ),
    ]);
    s.row(vec![
        "master".into(),
        format!("{} before, {} after", d.master_before, d.master_after),
    ]);
    s
}

fn cost(d: &DrillDetails) -> Section {
    let mut s = Section::new("What it cost", &["measure", "after the fault"]);
    let mut row = |k: &str, v: String| s.row(vec![k.into(), v]);
    row("detected (+sdown)", secs(d.detected_ms));
    row("agreed down (+odown)", secs(d.odown_ms));
    row("promoted (+promoted-slave)", secs(d.promoted_ms));
    row("clients told (+switch-master)", secs(d.switch_master_ms));
    row("drill undid its part", secs(d.undone_ms));
    row("whole again", secs(d.stable_ms));
    row(
        "writes unavailable",
        match d.downtime_ms {
            Some(w) => format!("{:.2} s (bound {:.2} s)", w / 1e3, d.max_downtime_ms / 1e3),
            None => "-".into(),
        },
    );
    let w = &d.writes;
    let errors: Vec<String> = w.errors.iter().map(|(k, n)| format!("{n} {k}")).collect();
    row(
        "writes refused",
        if errors.is_empty() {
            "0".into()
        } else {
            format!("{} ({})", w.failed, errors.join(", "))
        },
    );
    row(
        "acknowledged writes lost",
        format!("{} of {}", opt(&d.lost_acknowledged), w.acknowledged),
    );
    s.notes.push(
        "nodes keep their lab names: `master` is the server started as the master; times are \
         from the fault, as each was seen"
            .into(),
    );
    if let (Some(from), Some(to)) = (d.lost_from_ms, d.lost_to_ms) {
        let on: Vec<String> = d
            .lost_by_node
            .iter()
            .map(|(n, c)| format!("{c} by {n}"))
            .collect();
        s.notes.push(format!(
            "the lost acknowledged writes were acknowledged {} between {:+.2} s and {:+.2} s",
            on.join(", "),
            from / 1e3,
            to / 1e3
        ));
    }
    if w.failed_but_present > 0 {
        s.notes.push(format!(
            "{} that failed (no OK seen) were applied anyway",
            writes(w.failed_but_present)
        ));
    }
    s
}

fn levels(d: &DrillDetails) -> Section {
    let mut s = Section::new(
        "Writes by acknowledgement",
        &["WAIT answered", "counts as acknowledged", "written", "lost"],
    );
    for l in &d.levels {
        s.row(vec![
            l.level.clone(),
            if l.acknowledged { "yes" } else { "no" }.into(),
            l.written.to_string(),
            l.lost.to_string(),
        ]);
    }
    s.notes.push(format!(
        "lost: SET answered OK, and the key is not on {} after the drill",
        d.master_after
    ));
    s
}

fn resync(d: &DrillDetails) -> Section {
    let mut s = Section::new(
        "Resync",
        &[
            "node",
            "role",
            "offset",
            "resynced (log)",
            "served (counters)",
        ],
    );
    for r in &d.resync {
        let role = |v: &Option<String>| v.clone().unwrap_or_else(|| "down".into());
        s.row(vec![
            r.name.clone(),
            format!("{} -> {}", role(&r.role_before), role(&r.role_after)),
            format!("{} -> {}", opt(&r.offset_before), opt(&r.offset_after)),
            format!("{} partial, {} full", r.partial_resyncs, r.full_resyncs),
            format!(
                "+{} full, +{} partial ok, +{} partial refused{}",
                r.served_full,
                r.served_partial_ok,
                r.served_partial_err,
                if r.restarted { " (restarted)" } else { "" }
            ),
        ]);
    }
    if let Some(e) = &d.expected_resync {
        s.notes.push(format!(
            "{}: expected {e} ({}), seen {}",
            d.target,
            d.expected_because,
            d.seen_resync.map_or("-", Resync::as_str)
        ));
    }
    s
}

fn replicas(d: &DrillDetails) -> Section {
    let mut s = Section::new(
        "Read back on the final master's replicas",
        &["node", "address", "compared", "missing", "extra"],
    );
    for r in &d.replicas_read {
        s.row(vec![
            r.name.clone(),
            r.address.clone(),
            if r.compared {
                "yes".into()
            } else {
                format!("no: {}", r.not_compared_because.as_deref().unwrap_or("?"))
            },
            r.missing.to_string(),
            r.extra.to_string(),
        ]);
    }
    s
}

/// Sentinel's bookkeeping, left out of the table (the JSON report keeps every event).
const QUIET: &[&str] = &[
    "+new-epoch",
    "+vote-for-leader",
    "+config-update-from",
    "+slave",
    "+sentinel",
];

fn quiet(kind: &EventKind) -> bool {
    match kind {
        EventKind::Other(name) => {
            QUIET.contains(&name.as_str()) || name.starts_with("+failover-state-")
        }
        _ => false,
    }
}

/// Events in time order; the same Sentinel event from several Sentinels is one row.
fn timeline(d: &DrillDetails) -> Section {
    let mut s = Section::new("Timeline", &["t (s)", "who", "event"]);
    let mut rows: Vec<(&Event, usize)> = Vec::new();
    for e in d.events.iter().filter(|e| !quiet(&e.kind)) {
        let same = rows.iter_mut().rev().take(12).find(|(r, _)| {
            r.kind == e.kind
                && r.detail == e.detail
                && r.source.starts_with("sentinel")
                && e.source.starts_with("sentinel")
        });
        match same {
            Some((_, n)) => *n += 1,
            None => rows.push((e, 1)),
        }
    }
    for (e, n) in rows {
        let who = if n > 1 {
            format!("{n} Sentinels")
        } else {
            e.source.clone()
        };
        let what = if matches!(
            e.kind,
            EventKind::State | EventKind::Write | EventKind::Fault
        ) {
            e.detail.clone()
        } else {
            format!("{} {}", e.kind, e.detail)
        };
        s.row(vec![format!("{:+.3}", e.t_ms / 1e3), who, what]);
    }
    s.notes.push(format!(
        "Sentinel's bookkeeping ({}, +failover-state-*) is in the JSON report",
        QUIET.join(", ")
    ));
    s
}
