//! What a plot shows, as data: each subcommand's details say which figures
//! they have (`Details::figures`), and `plot` draws them. Nothing here knows
//! about SVG, so a figure can be checked in a test without drawing it.

use std::collections::BTreeSet;

/// How the series are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Points joined by straight lines.
    Line,
    /// A value that holds until the next point (samples, a CDF).
    Step,
    /// A latency percentile spectrum: x is a percentile in %, drawn on the
    /// HdrHistogram log(1/(1-p)) scale; y is the latency.
    Spectrum,
    /// One bar per x value (per second, per bucket), series side by side.
    Histogram,
    /// One lane per series: its `marks` are events, its `spans` periods; the
    /// points' y values are ignored.
    Timeline,
}

/// How the x axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Percentiles (0..100) on log10(1/(1-p)): 0 %, 90 %, 99 %, 99.9 % ... evenly spaced.
    PercentileLog,
}

/// A stretch of x shaded across the plot (an unavailability window).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// A vertical line at x (the load ended, the key was due to expire).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub x: f64,
    pub label: String,
}

/// An event on a timeline lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The node it belongs to (`master`, `replica2`): picks its colour, so a
    /// node has the same colour in every figure of a report.
    pub name: String,
    /// Legend text; the node name when empty.
    pub label: String,
    /// (x, y) in the figure's units, in x order.
    pub points: Vec<(f64, f64)>,
    /// Dashed line: a second series of the same node (p99 next to p50).
    pub dashed: bool,
    /// Timeline: events on this lane.
    pub marks: Vec<Mark>,
    /// Timeline: periods on this lane.
    pub spans: Vec<Band>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            label: String::new(),
            points,
            dashed: false,
            marks: Vec::new(),
            spans: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Series {
        self.label = label.into();
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    /// What the legend says.
    pub fn legend(&self) -> &str {
        if self.label.is_empty() {
            &self.name
        } else {
            &self.label
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Unique in a report, usable in a file name: `latency-spectrum`.
    pub id: String,
    pub title: String,
    /// With its unit: `time since the first request (s)`.
    pub x_label: String,
    /// With its unit: `latency (ms)`.
    pub y_label: String,
    pub kind: Kind,
    pub x_scale: Scale,
    pub series: Vec<Series>,
    pub shaded: Vec<Band>,
    pub rules: Vec<Rule>,
    /// A fixed y range (0..100 for a share in percent); else from 0 to the data.
    pub y_range: Option<(f64, f64)>,
    /// One or two sentences under the figure: how to read it, what was measured.
    pub caption: String,
}

impl Figure {
    pub fn new(id: &str, title: &str, kind: Kind, x_label: &str, y_label: &str) -> Figure {
        Figure {
            id: id.to_string(),
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            kind,
            x_scale: if kind == Kind::Spectrum {
                Scale::PercentileLog
            } else {
                Scale::Linear
            },
            series: Vec::new(),
            shaded: Vec::new(),
            rules: Vec::new(),
            y_range: None,
            caption: String::new(),
        }
    }

    pub fn y_range(mut self, lo: f64, hi: f64) -> Figure {
        self.y_range = Some((lo, hi));
        self
    }

    pub fn caption(mut self, text: impl Into<String>) -> Figure {
        self.caption = text.into();
        self
    }

    /// The same figure under another id, its title saying whose it is, for
    /// a report that holds several (check: one set per step).
    pub fn prefixed(mut self, id: &str, whose: &str) -> Figure {
        self.id = format!("{id}-{}", self.id);
        self.title = format!("{} ({whose})", self.title);
        self
    }

    /// Whether there is anything to draw.
    pub fn has_data(&self) -> bool {
        self.series
            .iter()
            .any(|s| !s.points.is_empty() || !s.marks.is_empty() || !s.spans.is_empty())
    }
}

/// Colour-blind-safe colours (Okabe & Ito), darkest first so the master's
/// line stands out; then a few more for large topologies and comparisons.
const COLOURS: &[(u8, u8, u8)] = &[
    (0, 114, 178),   // blue
    (213, 94, 0),    // vermillion
    (0, 158, 115),   // bluish green
    (204, 121, 167), // reddish purple
    (230, 159, 0),   // orange
    (86, 180, 233),  // sky blue
    (60, 60, 60),    // near black
    (140, 86, 75),   // brown
    (127, 127, 0),   // olive
    (148, 103, 189), // purple
];

/// One colour per node name, fixed for a whole report: the nodes in topology
/// order (master first), then any other series name in order of appearance.
#[derive(Debug, Clone, Default)]
pub struct Palette {
    names: Vec<String>,
}

impl Palette {
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a str>, figures: &[Figure]) -> Palette {
        let mut names: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        let all = nodes.into_iter().map(str::to_string).chain(
            figures
                .iter()
                .flat_map(|f| f.series.iter().map(|s| s.name.clone())),
        );
        for n in all {
            if seen.insert(n.clone()) {
                names.push(n);
            }
        }
        Palette { names }
    }

    /// `(r, g, b)` of a series name.
    pub fn rgb(&self, name: &str) -> (u8, u8, u8) {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or(self.names.len());
        COLOURS[i % COLOURS.len()]
    }

    /// `#rrggbb`, for HTML next to the figures.
    pub fn hex(&self, name: &str) -> String {
        let (r, g, b) = self.rgb(name);
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// Bytes in a unit that keeps axis labels short: (divisor, unit).
pub fn bytes_unit(max_bytes: f64) -> (f64, &'static str) {
    match max_bytes {
        m if m >= 1024.0 * 1024.0 * 10.0 => (1024.0 * 1024.0, "MiB"),
        m if m >= 1024.0 * 10.0 => (1024.0, "KiB"),
        _ => (1.0, "bytes"),
    }
}

/// Bytes for a caption: `508.0 KiB`.
pub fn fmt_bytes(b: u64) -> String {
    let (div, unit) = bytes_unit(b as f64);
    if div == 1.0 {
        format!("{b} bytes")
    } else {
        format!("{:.1} {unit}", b as f64 / div)
    }
}

/// Microseconds in a unit that keeps axis labels short: (divisor, unit).
pub fn us_unit(max_us: f64) -> (f64, &'static str) {
    match max_us {
        m if m >= 10_000_000.0 => (1e6, "s"),
        m if m >= 2_000.0 => (1e3, "ms"),
        _ => (1.0, "µs"),
    }
}

/// Each replica's offset lag during the load, as the master saw it.
pub fn replica_lag(lag: &crate::series::lag::LagSeries) -> Option<Figure> {
    replica_lag_from(lag, 0.0)
}

/// As `replica_lag`, on another clock: `shift_s` is added to every time
/// (the drill draws it in seconds from the fault).
pub fn replica_lag_from(lag: &crate::series::lag::LagSeries, shift_s: f64) -> Option<Figure> {
    replica_lag_caught(lag, shift_s, &[])
}

/// As `replica_lag_from`, with each replica's catch-up as measured on its
/// own offset (perf's `Replicas after the load` table): (name, ms after the
/// load). That is when it had the data; the series is the master's view,
/// which moves only at the replica's next acknowledgement (about once a
/// second), so the caption says both and calls only the first "caught up".
pub fn replica_lag_caught(
    lag: &crate::series::lag::LagSeries,
    shift_s: f64,
    caught: &[(&str, f64)],
) -> Option<Figure> {
    let max = lag.replicas.iter().map(|r| r.max_lag_bytes).max()?;
    let (div, unit) = bytes_unit(max as f64);
    let mut f = Figure::new(
        "replica-lag",
        "Replica lag during the load",
        Kind::Step,
        "time since the first request (s)",
        &format!("offset lag ({unit})"),
    );
    let mut notes = Vec::new();
    for r in &lag.replicas {
        let points = r
            .samples
            .points()
            .iter()
            .map(|s| (s.t_ms / 1e3 + shift_s, s.lag_bytes as f64 / div))
            .collect();
        f.series.push(Series::new(&r.name, points));
        notes.push(format!(
            "{} peaked at {} ({:.1} s) and {}",
            r.name,
            fmt_bytes(r.max_lag_bytes),
            r.max_lag_at_ms / 1e3 + shift_s,
            {
                let own = caught.iter().find(|(n, _)| *n == r.name).map(|(_, ms)| *ms);
                match (own, r.catch_up_ms) {
                    (Some(own), Some(ack)) => format!(
                        "caught up in {own:.1} ms after the load (its own offset); the master saw it at its next acknowledgement, {ack:.0} ms after"
                    ),
                    (Some(own), None) => {
                        format!("caught up in {own:.1} ms after the load (its own offset)")
                    }
                    (None, Some(ack)) => format!(
                        "the master saw it caught up {ack:.0} ms after the load, at its acknowledgement (about once a second)"
                    ),
                    (None, None) => "did not catch up within the bound".into(),
                }
            }
        ));
    }
    if let Some(end) = lag.load_ended_ms {
        f.rules.push(Rule {
            x: end / 1e3 + shift_s,
            label: "load ended".into(),
        });
    }
    f.caption = format!(
        "Master offset minus each replica's acknowledged offset, from the master's INFO every {:.0} ms; \
         replicas acknowledge about once a second, hence the saw-tooth. {}.",
        lag.interval_ms,
        notes.join("; ")
    );
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_colour_and_strangers_come_after() {
        let mut f = Figure::new("x", "X", Kind::Line, "x", "y");
        f.series.push(Series::new("replica2", vec![(0.0, 1.0)]));
        f.series.push(Series::new("baseline", vec![(0.0, 1.0)]));
        let p = Palette::new(["master", "replica1", "replica2"], &[f]);
        assert_eq!(p.rgb("master"), COLOURS[0]);
        assert_eq!(p.rgb("replica2"), COLOURS[2]);
        assert_eq!(p.rgb("baseline"), COLOURS[3]);
        assert_eq!(p.hex("master"), "#0072b2");
    }

    #[test]
    fn units_follow_the_magnitude() {
        assert_eq!(bytes_unit(500.0).1, "bytes");
        assert_eq!(bytes_unit(50_000.0).1, "KiB");
        assert_eq!(bytes_unit(50e6).1, "MiB");
        assert_eq!(us_unit(900.0).1, "µs");
        assert_eq!(us_unit(5_000.0).1, "ms");
    }
}
