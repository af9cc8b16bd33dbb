//! Axes: ranges, round-number ticks, the percentile scale and tick labels.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

use crate::report::figure::{Figure, Kind, Scale};

/// The highest percentile the spectrum's axis shows: 99.999 % (log10 of 1/(1-p) = 5).
const SPECTRUM_NINES: f64 = 5.0;

/// A linear axis whose labelled ticks are ours (round numbers, percentiles,
/// lanes) rather than plotters' choice.
#[derive(Clone)]
pub(super) struct Axis {
    pub range: std::ops::Range<f64>,
    pub ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span > 0.0 {
            (v - self.range.start) / span
        } else {
            0.0
        };
        limit.0 + (f64::from(limit.1 - limit.0) * share + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// An x value as the axis holds it.
pub(super) fn fig_x(fig: &Figure, x: f64) -> f64 {
    match fig.x_scale {
        Scale::Linear => x,
        // p = 100 % is infinitely far right: the right edge holds the max.
        Scale::PercentileLog if x >= 100.0 => SPECTRUM_NINES,
        Scale::PercentileLog => (100.0 / (100.0 - x.max(0.0))).log10().min(SPECTRUM_NINES),
    }
}

/// The smallest distance between two x values of the bars (1 when alone).
pub(super) fn min_spacing(fig: &Figure) -> f64 {
    let mut xs: Vec<f64> = fig
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let d = xs
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    if d.is_finite() {
        d
    } else {
        1.0
    }
}

/// The x range and its labelled ticks.
pub(super) fn x_axis(fig: &Figure) -> (std::ops::Range<f64>, Vec<f64>) {
    if fig.x_scale == Scale::PercentileLog {
        let ticks: Vec<f64> = (0..=SPECTRUM_NINES as i32).map(f64::from).collect();
        return (0.0..SPECTRUM_NINES, ticks);
    }
    let mut xs: Vec<f64> = Vec::new();
    for s in &fig.series {
        xs.extend(s.points.iter().map(|p| p.0));
        xs.extend(s.marks.iter().map(|m| m.x));
        xs.extend(s.spans.iter().flat_map(|b| [b.from, b.to]));
    }
    xs.extend(fig.rules.iter().map(|r| r.x));
    xs.extend(fig.shaded.iter().flat_map(|b| [b.from, b.to]));
    let (mut lo, mut hi) = bounds(&xs).unwrap_or((0.0, 1.0));
    match fig.kind {
        Kind::Histogram => {
            let half = min_spacing(fig) / 2.0;
            lo -= half;
            hi += half;
        }
        Kind::Timeline => {
            let pad = ((hi - lo) * 0.06).max(1e-3);
            lo -= pad;
            hi += pad;
        }
        // Room for the last step to be seen.
        Kind::Step => hi += (hi - lo) * 0.03,
        _ => {}
    }
    // Time since a start reads best from 0.
    if lo > 0.0 && lo <= (hi - lo) * 0.1 {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        lo -= 0.5;
        hi += 0.5;
    }
    let ticks = nice_ticks(lo, hi, 8);
    (
        lo..hi,
        ticks
            .into_iter()
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect(),
    )
}

/// The y range (from 0, or the lanes) and its labelled ticks.
pub(super) fn y_axis(fig: &Figure) -> (std::ops::Range<f64>, Vec<f64>) {
    if fig.kind == Kind::Timeline {
        let n = fig.series.len().max(1);
        return (-0.7..n as f64 - 0.3, (0..n).map(|i| i as f64).collect());
    }
    if let Some((lo, hi)) = fig.y_range {
        return (lo..hi, nice_ticks(lo, hi, 5));
    }
    let ys: Vec<f64> = fig
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let (lo, hi) = bounds(&ys).unwrap_or((0.0, 1.0));
    let lo = lo.min(0.0);
    let hi = if hi <= lo {
        lo + 1.0
    } else {
        hi + (hi - lo) * 0.05
    };
    let ticks = nice_ticks(lo, hi, 6);
    let top = *ticks.last().expect("nice_ticks returns at least two");
    (lo..top.max(hi), ticks)
}

fn bounds(v: &[f64]) -> Option<(f64, f64)> {
    let finite = v.iter().copied().filter(|x| x.is_finite());
    finite.fold(None, |acc, x| match acc {
        None => Some((x, x)),
        Some((a, b)) => Some((a.min(x), b.max(x))),
    })
}

/// Round-number ticks covering [lo, hi]: a step of 1, 2, 2.5 or 5 times a power of ten.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let t = first + i as f64 * step;
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        if t >= hi - step * 1e-9 || i > 1000 {
            break;
        }
        i += 1;
    }
    if out.len() < 2 {
        out.push(first + step);
    }
    out
}

pub(super) fn x_label(fig: &Figure, v: f64, ticks: &[f64]) -> String {
    if fig.x_scale == Scale::PercentileLog {
        return percentile_label(v);
    }
    number(v, step_of(ticks))
}

pub(super) fn y_label(fig: &Figure, v: f64, ticks: &[f64]) -> String {
    if fig.kind == Kind::Timeline {
        let n = fig.series.len();
        let i = n as f64 - 1.0 - v.round();
        return fig
            .series
            .get(i as usize)
            .filter(|_| i >= 0.0)
            .map(|s| s.legend().to_string())
            .unwrap_or_default();
    }
    number(v, step_of(ticks))
}

/// 0 %, 90 %, 99 %, 99.9 % ... for 0, 1, 2, 3 ... nines.
pub(crate) fn percentile_label(nines: f64) -> String {
    match nines.round() as i32 {
        n if n <= 0 => "0%".into(),
        1 => "90%".into(),
        n => format!(
            "99{}{}%",
            if n > 2 { "." } else { "" },
            "9".repeat((n - 2) as usize)
        ),
    }
}

fn step_of(ticks: &[f64]) -> f64 {
    ticks.windows(2).map(|w| w[1] - w[0]).next().unwrap_or(1.0)
}

/// A tick value with as many decimals as its step needs, large ones as 250k or 1.5M.
pub(crate) fn number(v: f64, step: f64) -> String {
    let (v, step, suffix) = if v.abs() >= 1e6 && step >= 1e5 {
        (v / 1e6, step / 1e6, "M")
    } else if v.abs() >= 1e4 && step >= 1e3 {
        (v / 1e3, step / 1e3, "k")
    } else {
        (v, step, "")
    };
    let decimals = if step >= 1.0 {
        if (step.fract()).abs() > 1e-9 {
            1
        } else {
            0
        }
    } else {
        let d = (-step.log10()).ceil() as usize;
        // 0.25 needs two decimals, 0.2 one.
        if ((step * 10f64.powi(d as i32)).fract()).abs() > 1e-6 {
            d + 1
        } else {
            d
        }
    };
    format!("{v:.decimals$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let t = nice_ticks(0.0, 1.05e6, 6);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap() >= 1.05e6);
        assert_eq!(number(250_000.0, 50_000.0), "250k");
        assert_eq!(number(1_500_000.0, 500_000.0), "1.5M");
        assert_eq!(number(0.25, 0.25), "0.25");
        assert_eq!(number(1.5, 0.5), "1.5");
        assert_eq!(number(40.0, 10.0), "40");
    }

    #[test]
    fn percentile_axis_labels() {
        let l: Vec<String> = (0..=5).map(|n| percentile_label(n as f64)).collect();
        assert_eq!(l, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }
}
