//! replicate-check's probes as a figure: per replica, the share of probes
//! visible within each write-to-visible latency.

use super::ReplicateDetails;
use crate::report::figure::{us_unit, Figure, Kind, Series};

pub fn figures(d: &ReplicateDetails) -> Vec<Figure> {
    let mut out: Vec<Figure> = visible(d).into_iter().collect();
    // Probes usually last milliseconds: a lag line of two samples says
    // nothing, so the figure is drawn once the probing lasted a few samples.
    if let Some(lag) = d
        .replica_lag
        .as_ref()
        .filter(|l| l.replicas.iter().any(|r| r.samples.points().len() >= 3))
    {
        out.extend(crate::report::figure::replica_lag(lag));
    }
    out
}

fn visible(d: &ReplicateDetails) -> Option<Figure> {
    let max = d
        .replicas
        .iter()
        .flat_map(|r| r.visible_distribution.iter().map(|p| p.value_us))
        .fold(0.0, f64::max);
    if max == 0.0 {
        return None;
    }
    let (div, unit) = us_unit(max);
    let mut f = Figure::new(
        "visible-latency",
        "Write-to-visible latency per replica",
        Kind::Step,
        &format!("time from the SET on the master to the value readable on the replica ({unit})"),
        "probes visible (%)",
    )
    .y_range(0.0, 100.0)
    .caption(format!(
        "For each replica, the share of the {} probes already readable there at each time after \
         their SET on the master: the further left a curve reaches 100 %, the faster writes arrive.",
        d.probes
    ));
    for r in d
        .replicas
        .iter()
        .filter(|r| !r.visible_distribution.is_empty())
    {
        // A probe that never became visible keeps the curve below 100 %.
        let tried = (r.probes_seen + r.probes_missed).max(1) as f64;
        let share = r.probes_seen as f64 / tried;
        let first = r.visible_distribution[0].value_us / div;
        let mut points = vec![(first, 0.0)];
        points.extend(
            r.visible_distribution
                .iter()
                .map(|p| (p.value_us / div, p.percentile * share)),
        );
        let label = format!("{} ({} of {} seen)", r.name, r.probes_seen, d.probes);
        f.series.push(Series::new(&r.name, points).label(label));
    }
    Some(f)
}
