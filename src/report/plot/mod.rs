//! A `Figure` drawn as SVG with plotters' SVG backend. Text stays text (the
//! viewer draws it with its own sans-serif font), so no font library is
//! linked; sizes are chosen to read at 100 % zoom and from the back of a room.

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod axes;

use super::figure::{Figure, Kind, Palette, Series};
use axes::{fig_x, min_spacing, x_axis, x_label, y_axis, y_label, Axis};

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

type Err = Box<dyn std::error::Error>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

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

fn draw(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    fig: &Figure,
    pal: &Palette,
) -> Result<(), Err> {
    root.fill(&WHITE)?;
    let below_title = root.titled(
        &fig.title,
        ("sans-serif", TITLE_PX * 1.24, FontStyle::Bold)
            .into_font()
            .color(&INK),
    )?;
    let rows = legend_rows(fig);
    let legend_h = (rows.len() as f64 * (LEGEND_PX * 1.6)).ceil() as u32 + 6;
    let (legend, plot) = below_title.split_vertically(legend_h);
    draw_legend(&legend, &rows, fig, pal)?;

    let (xr, x_ticks) = x_axis(fig);
    let (xr_start, xr_end) = (xr.start, xr.end);
    let (yr, y_ticks) = y_axis(fig);
    let x_fmt = |v: &f64| x_label(fig, *v, &x_ticks);
    let y_fmt = |v: &f64| y_label(fig, *v, &y_ticks);
    let widest = y_ticks
        .iter()
        .map(|v| y_fmt(v).chars().count())
        .max()
        .unwrap_or(1);
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
        // On a timeline the top belongs to the first lane's labels: rules are
        // labelled at the bottom, under the last lane's labels.
        let (at, dy, v) = if fig.kind == Kind::Timeline {
            (y_bottom - 0.62, -dy, VPos::Bottom)
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
                area.draw(&Rectangle::new(
                    [(x + 6, y - 10), (x + 28, y + 10)],
                    c.mix(0.85).filled(),
                ))?;
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
            Rectangle::new(
                [(x + left, 0.0), (x + left + width, y)],
                c.mix(0.85).filled(),
            )
        }))?;
    }
    Ok(())
}

/// Lane `i` of `n`, top first.
fn lane_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

/// Where a lane's labels go: rows above and below it, nearest first, each
/// holding the pixel spans of the labels already in it, so no two labels
/// overlap (close events take the next row out).
struct LabelRows {
    rows: Vec<Vec<(f64, f64)>>,
}

/// The rows' offsets from the lane (px) and anchors: above, below, further
/// above, further below.
const ROWS: [(i32, VPos); 4] = [
    (-14, VPos::Bottom),
    (14, VPos::Top),
    (-14 - NOTE_PX as i32 - 4, VPos::Bottom),
    (14 + NOTE_PX as i32 + 4, VPos::Top),
];

impl LabelRows {
    fn new() -> LabelRows {
        LabelRows {
            rows: vec![Vec::new(); ROWS.len()],
        }
    }

    /// The pixel span of `label` centred at `x` px.
    fn span(x: f64, label: &str) -> (f64, f64) {
        let w = label.chars().count() as f64 * NOTE_PX * 0.58 + 6.0;
        (x - w / 2.0, x + w / 2.0)
    }

    /// The first row where (lo, hi) overlaps nothing, taken; the nearest
    /// row when every row is full.
    fn place(&mut self, (lo, hi): (f64, f64)) -> usize {
        let free = |row: &Vec<(f64, f64)>| row.iter().all(|&(a, b)| hi <= a || lo >= b);
        let i = self.rows.iter().position(free).unwrap_or(0);
        self.rows[i].push((lo, hi));
        i
    }
}

fn draw_lanes(chart: &mut Chart, fig: &Figure, pal: &Palette) -> Result<(), Err> {
    let n = fig.series.len();
    for (i, s) in fig.series.iter().enumerate() {
        let c = colour(pal, &s.name);
        let y = lane_y(i, n);
        let mut rows = LabelRows::new();
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
            // It hangs below the span, where the first row below the lane is.
            let x = chart.backend_coord(&(sp.from, y)).0 as f64;
            let w = sp.label.chars().count() as f64 * NOTE_PX * 0.58;
            rows.rows[1].push((x, x + w + 8.0));
        }
        for m in &s.marks {
            let x = chart.backend_coord(&(m.x, y)).0 as f64;
            let (dy, v) = ROWS[rows.place(LabelRows::span(x, &m.label))];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_labels_take_other_rows_and_far_ones_share_one() {
        let mut rows = LabelRows::new();
        let a = rows.place(LabelRows::span(100.0, "+sdown, +odown"));
        let b = rows.place(LabelRows::span(130.0, "+promoted-slave, +switch-master"));
        let c = rows.place(LabelRows::span(160.0, "+failover-end"));
        let d = rows.place(LabelRows::span(600.0, "+convert-to-slave"));
        assert_eq!((a, b, d), (0, 1, 0));
        assert!(c != a && c != b, "{c}");
    }

    #[test]
    fn steps_hold_each_value() {
        assert_eq!(
            steps(&[(0.0, 1.0), (1.0, 3.0), (2.0, 0.0)]),
            vec![(0.0, 1.0), (1.0, 1.0), (1.0, 3.0), (2.0, 3.0), (2.0, 0.0)]
        );
    }
}
