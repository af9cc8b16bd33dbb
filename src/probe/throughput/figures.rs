//! What perf's series look like as figures: the latency spectrum, throughput
//! and latency per second, and each replica's lag during the load.

use super::PerfDetails;
use crate::report::figure::{us_unit, Figure, Kind, Series};
use crate::series::{LatencySlice, PercentilePoint};

/// The load goes to the master: its series carry the master's colour.
const MASTER: &str = "master";

pub fn figures(d: &PerfDetails) -> Vec<Figure> {
    let mut out = Vec::new();
    out.extend(spectrum(
        "latency-spectrum",
        &[(MASTER, "per request, median round", &d.latency_spectrum)],
    ));
    out.extend(throughput(d));
    out.extend(latency_over_time(d));
    // The caption's catch-up is the table's (measured on each replica's own
    // offset), not the master's view, which waits for an acknowledgement.
    let caught: Vec<(&str, f64)> = d
        .replicas
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.catch_up_ms?)))
        .collect();
    out.extend(
        d.replica_lag
            .as_ref()
            .and_then(|lag| crate::report::figure::replica_lag_caught(lag, 0.0, &caught)),
    );
    out
}

/// Latency percentile spectra, one series per (colour name, legend, points):
/// several when runs are compared.
pub fn spectrum(id: &str, runs: &[(&str, &str, &[PercentilePoint])]) -> Option<Figure> {
    let max = runs
        .iter()
        .flat_map(|r| r.2.iter().map(|p| p.value_us))
        .fold(0.0, f64::max);
    if runs.iter().all(|r| r.2.is_empty()) {
        return None;
    }
    let (div, unit) = us_unit(max);
    let mut f = Figure::new(
        id,
        "Latency by percentile",
        Kind::Spectrum,
        "percentile (log scale of 1/(1-p))",
        &format!("latency ({unit})"),
    )
    .caption(
        "Each request's latency, from the median up the tail: a point (p, t) means p % of \
         the requests took t or less. Every step right adds a nine; the right edge holds \
         everything above 99.999 %, up to the slowest request.",
    );
    for (name, label, points) in runs {
        f.series.push(
            Series::new(
                *name,
                points
                    .iter()
                    .map(|p| (p.percentile, p.value_us / div))
                    .collect(),
            )
            .label(*label),
        );
    }
    Some(f)
}

/// Length of the median round, s.
fn round_s(d: &PerfDetails) -> f64 {
    d.round_results
        .get(d.median_round)
        .map(|r| r.elapsed_ms / 1e3)
        .unwrap_or(d.per_second_ops.len() as f64)
}

/// The slices the over-time figures draw, and their length in s: 100 ms
/// for a round of up to 30 s (a short round has too few seconds), else 1 s.
fn slices(d: &PerfDetails) -> (&[LatencySlice], f64) {
    if !d.per_100ms_latency.is_empty() && round_s(d) <= 30.0 {
        (&d.per_100ms_latency, 0.1)
    } else {
        (&d.per_second_latency, 1.0)
    }
}

fn throughput(d: &PerfDetails) -> Option<Figure> {
    let (slices, width) = slices(d);
    // Over TLS there are no slices, only the engine's count per second.
    let counts: Vec<(f64, u64)> = if slices.is_empty() {
        d.per_second_ops
            .iter()
            .enumerate()
            .map(|(i, n)| (i as f64, *n))
            .collect()
    } else {
        slices.iter().map(|s| (s.start_ms / 1e3, s.count)).collect()
    };
    let width = if slices.is_empty() { 1.0 } else { width };
    let end = round_s(d);
    let mut points = Vec::new();
    let mut dropped = false;
    for (start, n) in counts {
        // The last slice is cut short by the end of the round: its rate is over its own length.
        let len = (end - start).clamp(0.0, width);
        if len < width * 0.2 {
            dropped |= n > 0;
            continue;
        }
        points.push((start + len / 2.0, n as f64 / len));
    }
    if points.len() < 2 {
        return None;
    }
    let mut caption = format!(
        "Requests completed on the master in each {} of the median round ({:.0} ops/s over the whole round).",
        slice_name(width),
        d.throughput_ops_per_sec
    );
    if dropped {
        caption.push_str(" A last sliver shorter than a fifth of a slice is left out.");
    }
    let kind = if points.len() <= 80 {
        Kind::Histogram
    } else {
        Kind::Line
    };
    let mut f = Figure::new(
        "throughput",
        "Throughput over time",
        kind,
        "time since the first request (s)",
        "throughput (ops/s)",
    )
    .caption(caption);
    f.series
        .push(Series::new(MASTER, points).label("requests completed"));
    Some(f)
}

fn slice_name(width_s: f64) -> &'static str {
    if width_s < 1.0 {
        "100 ms"
    } else {
        "second"
    }
}

fn latency_over_time(d: &PerfDetails) -> Option<Figure> {
    let (slices, width) = slices(d);
    let busy: Vec<&LatencySlice> = slices.iter().filter(|s| s.count > 0).collect();
    if busy.len() < 2 {
        return None;
    }
    let (div, unit) = us_unit(busy.iter().map(|s| s.p99_us).fold(0.0, f64::max));
    let mid = |s: &LatencySlice| s.start_ms / 1e3 + width / 2.0;
    let mut f = Figure::new(
        "latency-over-time",
        "Latency over time",
        Kind::Line,
        "time since the first request (s)",
        &format!("latency ({unit})"),
    )
    .caption(format!(
        "Median and 99th percentile of the replies read in each {} of the median round, \
         drawn at the middle of their slice.",
        slice_name(width)
    ));
    f.series.push(
        Series::new(
            MASTER,
            busy.iter().map(|s| (mid(s), s.p50_us / div)).collect(),
        )
        .label("p50"),
    );
    f.series.push(
        Series::new(
            MASTER,
            busy.iter().map(|s| (mid(s), s.p99_us / div)).collect(),
        )
        .label("p99")
        .dashed(),
    );
    Some(f)
}
