//! A `Figure` drawn as SVG with plotters' SVG backend. Text stays text (the
//! viewer draws it with its own sans-serif font), so no font library is
//! linked; sizes are chosen to read at 100 % zoom and from the back of a room.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figure::{Figure, Kind, Palette, Scale, Series};

/// Width of every figure, px (the HTML scales it to the page).
pub const WIDTH: u32 = 1000;
const HEIGHT: u32 = 520;

// Pixel sizes as they end up in the SVG (plotters divides by 1.24).
const TITLE_PX: f64 = 24.0;
const LABEL_PX: f64 = 19.0;
const TICK_PX: f64 = 17.0;
const LEGEND_PX: f64 = 18.0;
const NOTE_PX: f64 = 15.0;

const GRID: RGBColor = RGBColor(222, 222, 222);
const INK: RGBColor = RGBColor(40, 40, 40);
const SHADE: RGBColor = RGBColor(120, 120, 120);

/// The highest percentile the spectrum's axis shows: 99.999 % (log10 of 1/(1-p) = 5).
const SPECTRUM_NINES: f64 = 5.0;

type Err = Box<dyn std::error::Error>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// A linear axis whose labelled ticks are ours (round numbers, percentiles,
/// lanes) rather than plotters' choice.
#[derive(Clone)]
struct Axis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span > 0.0 { (v - self.range.start) / span } else { 0.0 };
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

fn font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&INK)
}

/// The figure as a standalone SVG document.
pub fn svg(fig: &Figure, palette: &Palette) -> Result<String, String> {
    let size = (WIDTH, height(fig));
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&root, fig, palette).map_err(|e| format!("drawing {}: {e}", fig.id))?;
        root.present()
            .map_err(|e| format!("drawing {}: {e}", fig.id))?;
    }
    Ok(out)
}

fn height(fig: &Figure) -> u32 {
    match fig.kind {
        Kind::Timeline => 200 + 80 * fig.series.len().max(1) as u32,
        _ => HEIGHT,
    }
}

fn draw(root: &DrawingArea<SVGBackend, plotters::coord::Shift>, fig: &Figure, pal: &Palette) -> Result<(), Err> {
    root.fill(&WHITE)?;
    let below_title = root.titled(&fig.title, ("sans-serif", TITLE_PX * 1.24, FontStyle::Bold)
            .into_font()
            .color(&INK))?;
    let rows = legend_rows(fig);
    let legend_h = (rows.len() as f64 * (LEGEND_PX * 1.6)).ceil() as u32 + 6;
    let (legend, plot) = below_title.split_vertically(legend_h);
    draw_legend(&legend, &rows, fig, pal)?;

    let (xr, x_ticks) = x_axis(fig);
    let (xr_start, xr_end) = (xr.start, xr.end);
    let (yr, y_ticks) = y_axis(fig);
    let x_fmt = |v: &f64| x_label(fig, *v, &x_ticks);
    let y_fmt = |v: &f64| y_label(fig, *v, &y_ticks);
    let widest = y_ticks.iter().map(|v| y_fmt(v).chars().count()).max().unwrap_or(1);
    let y_area = (widest as f64 * TICK_PX * 0.62) as u32 + 50;
    let mut chart = ChartBuilder::on(&plot)
        .margin_left(10)
        .margin_right(40)
        .margin_top(14)
        .x_label_area_size(72)
        .y_label_area_size(y_area)
        .build_cartesian_2d(
            Axis {
                range: xr,
                ticks: x_ticks.clone(),
            },
            Axis {
                range: yr,
                ticks: y_ticks.clone(),
            },
        )?;
    chart
        .configure_mesh()
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .axis_desc_style(font(LABEL_PX))
        .label_style(font(TICK_PX))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(INK.stroke_width(1))
        .draw()?;

    let y_top = *y_ticks.last().unwrap_or(&1.0);
    let y_bottom = *y_ticks.first().unwrap_or(&0.0);
    for b in &fig.shaded {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(b.from, y_bottom), (b.to, y_top)],
            SHADE.mix(0.18).filled(),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((b.from, y_top)) + Text::new(b.label.clone(), (6, 6), font(NOTE_PX)),
        ))?;
    }
    match fig.kind {
        Kind::Timeline => draw_lanes(&mut chart, fig, pal)?,
        Kind::Histogram => draw_bars(&mut chart, fig, pal)?,
        _ => draw_lines(&mut chart, fig, pal)?,
    }
    let (x_lo, x_hi) = (xr_start, xr_end);
    for (i, r) in fig.rules.iter().enumerate() {
        let x = fig_x(fig, r.x);
        chart.draw_series(DashedLineSeries::new(
            [(x, y_bottom), (x, y_top)],
            8,
            6,
            INK.stroke_width(2),
        ))?;
        // Labels of rules close together are staggered down the plot.
        let dy = 6 + (i as i32 % 3) * (NOTE_PX as i32 + 6);
        // A rule near the right edge gets its label on its left.
        let (dx, h) = if (x - x_lo) / (x_hi - x_lo) > 0.75 {
            (-6, HPos::Right)
        } else {
            (6, HPos::Left)
        };
        // On a timeline the top belongs to the first lane's labels: rules are labelled below.
        let (at, dy, v) = if fig.kind == Kind::Timeline {
            (y_bottom, -dy, VPos::Bottom)
        } else {
            (y_top, dy, VPos::Top)
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, at))
                + Text::new(r.label.clone(), (dx, dy), font(NOTE_PX).pos(Pos::new(h, v))),
        ))?;
    }
    Ok(())
}

/// Legend entries laid out in rows that fit the width.
fn legend_rows(fig: &Figure) -> Vec<Vec<usize>> {
    if fig.kind == Kind::Timeline {
        return Vec::new();
    }
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = f64::MAX;
    for (i, s) in fig.series.iter().enumerate() {
        let w = entry_width(s);
        if used + w > WIDTH as f64 - 40.0 {
            rows.push(Vec::new());
            used = 20.0;
        }
        rows.last_mut().expect("pushed above").push(i);
        used += w;
    }
    rows
}

fn entry_width(s: &Series) -> f64 {
    44.0 + s.legend().chars().count() as f64 * LEGEND_PX * 0.58 + 28.0
}

fn draw_legend(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    rows: &[Vec<usize>],
    fig: &Figure,
    pal: &Palette,
) -> Result<(), Err> {
    let row_h = (LEGEND_PX * 1.6) as i32;
    for (r, row) in rows.iter().enumerate() {
        let total: f64 = row.iter().map(|&i| entry_width(&fig.series[i])).sum();
        let mut x = ((WIDTH as f64 - total) / 2.0).max(10.0) as i32;
        let y = r as i32 * row_h + row_h / 2;
        for &i in row {
            let s = &fig.series[i];
            let c = colour(pal, &s.name);
            let line = [(x, y), (x + 34, y)];
            if fig.kind == Kind::Histogram {
                area.draw(&Rectangle::new([(x + 6, y - 10), (x + 28, y + 10)], c.mix(0.85).filled()))?;
            } else if s.dashed {
                area.draw(&DashedPathElement::new(line, 7, 5, c.stroke_width(4)))?;
            } else {
                area.draw(&PathElement::new(line, c.stroke_width(4)))?;
            }
            area.draw(&Text::new(
                s.legend().to_string(),
                (x + 44, y),
                font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += entry_width(s) as i32;
        }
    }
    Ok(())
}

fn colour(pal: &Palette, name: &str) -> RGBColor {
    let (r, g, b) = pal.rgb(name);
    RGBColor(r, g, b)
}

/// An x value as the axis holds it.
fn fig_x(fig: &Figure, x: f64) -> f64 {
    match fig.x_scale {
        Scale::Linear => x,
        // p = 100 % is infinitely far right: the right edge holds the max.
        Scale::PercentileLog if x >= 100.0 => SPECTRUM_NINES,
        Scale::PercentileLog => (100.0 / (100.0 - x.max(0.0))).log10().min(SPECTRUM_NINES),
    }
}

fn draw_lines(chart: &mut Chart, fig: &Figure, pal: &Palette) -> Result<(), Err> {
    for s in &fig.series {
        let mut pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (fig_x(fig, x), y)).collect();
        if fig.kind == Kind::Step {
            pts = steps(&pts);
        }
        let style = colour(pal, &s.name).stroke_width(3);
        if pts.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(pts[0], 5, style.filled())))?;
        } else if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts, 9, 6, style))?;
        } else {
            chart.draw_series(LineSeries::new(pts, style))?;
        }
    }
    Ok(())
}

/// Sample-and-hold: each value holds until the next point's x.
fn steps(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for (i, &p) in pts.iter().enumerate() {
        if i > 0 {
            out.push((p.0, pts[i - 1].1));
        }
        out.push(p);
    }
    out
}

fn draw_bars(chart: &mut Chart, fig: &Figure, pal: &Palette) -> Result<(), Err> {
    let n = fig.series.len().max(1) as f64;
    let spacing = min_spacing(fig);
    let width = spacing * 0.8 / n;
    for (i, s) in fig.series.iter().enumerate() {
        let c = colour(pal, &s.name);
        let left = -spacing * 0.4 + i as f64 * width;
        chart.draw_series(s.points.iter().map(|&(x, y)| {
            Rectangle::new([(x + left, 0.0), (x + left + width, y)], c.mix(0.85).filled())
        }))?;
    }
    Ok(())
}

/// The smallest distance between two x values of the bars (1 when alone).
fn min_spacing(fig: &Figure) -> f64 {
    let mut xs: Vec<f64> = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
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

/// Lane `i` of `n`, top first.
fn lane_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

fn draw_lanes(chart: &mut Chart, fig: &Figure, pal: &Palette) -> Result<(), Err> {
    let n = fig.series.len();
    for (i, s) in fig.series.iter().enumerate() {
        let c = colour(pal, &s.name);
        let y = lane_y(i, n);
        for sp in &s.spans {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(sp.from, y - 0.22), (sp.to, y + 0.22)],
                c.mix(0.25).filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(sp.from, y - 0.22), (sp.to, y + 0.22)],
                c.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((sp.from, y - 0.22))
                    + Text::new(sp.label.clone(), (4, 4), font(NOTE_PX)),
            ))?;
        }
        for (j, m) in s.marks.iter().enumerate() {
            // Labels alternate above and below the lane so close events stay legible.
            let (dy, v) = if j % 2 == 0 { (-14, VPos::Bottom) } else { (14, VPos::Top) };
            chart.draw_series(std::iter::once(
                EmptyElement::at((m.x, y))
                    + Circle::new((0, 0), 8, c.filled())
                    + Circle::new((0, 0), 8, WHITE.stroke_width(2))
                    + Text::new(
                        m.label.clone(),
                        (0, dy),
                        font(NOTE_PX).pos(Pos::new(HPos::Center, v)),
                    ),
            ))?;
        }
    }
    Ok(())
}

/// The x range and its labelled ticks.
fn x_axis(fig: &Figure) -> (std::ops::Range<f64>, Vec<f64>) {
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
    (lo..hi, ticks.into_iter().filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9).collect())
}

/// The y range (from 0, or the lanes) and its labelled ticks.
fn y_axis(fig: &Figure) -> (std::ops::Range<f64>, Vec<f64>) {
    if fig.kind == Kind::Timeline {
        let n = fig.series.len().max(1);
        return (-0.7..n as f64 - 0.3, (0..n).map(|i| i as f64).collect());
    }
    if let Some((lo, hi)) = fig.y_range {
        return (lo..hi, nice_ticks(lo, hi, 5));
    }
    let ys: Vec<f64> = fig.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
    let (lo, hi) = bounds(&ys).unwrap_or((0.0, 1.0));
    let lo = lo.min(0.0);
    let hi = if hi <= lo { lo + 1.0 } else { hi + (hi - lo) * 0.05 };
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

fn x_label(fig: &Figure, v: f64, ticks: &[f64]) -> String {
    if fig.x_scale == Scale::PercentileLog {
        return percentile_label(v);
    }
    number(v, step_of(ticks))
}

fn y_label(fig: &Figure, v: f64, ticks: &[f64]) -> String {
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
        n => format!("99{}{}%", if n > 2 { "." } else { "" }, "9".repeat((n - 2) as usize)),
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
        if (step.fract()).abs() > 1e-9 { 1 } else { 0 }
    } else {
        let d = (-step.log10()).ceil() as usize;
        // 0.25 needs two decimals, 0.2 one.
        if ((step * 10f64.powi(d as i32)).fract()).abs() > 1e-6 { d + 1 } else { d }
    };
    format!("{v:.decimals$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
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

    #[test]
    fn steps_hold_each_value() {
        assert_eq!(
            steps(&[(0.0, 1.0), (1.0, 3.0), (2.0, 0.0)]),
            vec![(0.0, 1.0), (1.0, 1.0), (1.0, 3.0), (2.0, 3.0), (2.0, 0.0)]
        );
    }
}
