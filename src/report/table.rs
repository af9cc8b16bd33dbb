//! The terminal table: comfy-table sections under a title line, fitted to
//! the terminal. A cell is wrapped only between words (never `repli/ca1`);
//! when even that does not fit, the rightmost columns are left out (each
//! section orders its columns by importance) and a note says which; long
//! values in a truncating column end with an ellipsis. Verdicts are coloured
//! where colour is on. A pipe or a file gets the tables at their natural
//! width, never wrapped.

use anyhow::Result;
use comfy_table::{
    presets, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width as TableWidth,
};
use textwrap::core::display_width;

use super::copyable;
use super::markup::Markup;
use super::{Document, Exporter, Section, View};

pub struct TableExporter;

impl Exporter for TableExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        Ok(Walk(doc.view).walk(doc))
    }
}

/// The walk, with the view it renders for.
struct Walk(View);

impl Markup for Walk {
    fn title(&self, text: &str) -> String {
        format!("{}\n", paint_verdicts(text, self.0.color))
    }
    fn section(&self, s: &Section) -> String {
        section(s, &self.0)
    }
    fn footer(&self, text: &str) -> String {
        format!("\n{}\n", wrap(text, self.0.width, ""))
    }
    fn view(&self) -> View {
        self.0
    }
}

/// A cell this short stays on one line: numbers with units, addresses, names.
const UNBREAKABLE: usize = 16;
/// Where a truncating column cuts a long value.
const TRUNCATE_AT: usize = 40;

/// One section as a titled table with its notes under it.
pub fn section(s: &Section, view: &View) -> String {
    let mut out = format!("{}\n", s.title);
    let mut notes = s.notes.clone();
    // An empty table says nothing its title and notes do not.
    if !s.header.is_empty() && !s.rows.is_empty() {
        let mut commands = Vec::new();
        let rows: Vec<Vec<String>> = s
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if view.width.is_some() && s.truncate.contains(&i) {
                            truncate(c, TRUNCATE_AT)
                        } else if view.width.is_some() {
                            commands_out(r, c, &mut commands)
                        } else {
                            c.clone()
                        }
                    })
                    .collect()
            })
            .collect();
        let (shown, hidden) = fit(&s.header, &rows, view.width);
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        if view.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(shown.iter().map(|&i| Cell::new(&s.header[i])));
        for r in &rows {
            t.add_row(shown.iter().map(|&i| {
                let text = r.get(i).map(String::as_str).unwrap_or("");
                cell(text, view.color)
            }));
        }
        match view.width {
            Some(w) => {
                t.set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(w.min(u16::MAX as usize) as u16);
                let mins: Vec<ColumnConstraint> = shown
                    .iter()
                    .map(|&i| {
                        // comfy-table's widths include the cell's padding.
                        ColumnConstraint::LowerBoundary(TableWidth::Fixed(
                            min_width(&s.header[i], &rows, i) as u16 + 2,
                        ))
                    })
                    .collect();
                t.set_constraints(mins);
            }
            None => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        out.push_str(&format!("{t}\n"));
        for (row, command) in commands {
            out.push_str(&format!("  {row}:\n{}\n", copyable::line(&command)));
        }
        if !hidden.is_empty() {
            let names: Vec<&str> = hidden.iter().map(|&i| s.header[i].as_str()).collect();
            notes.push(format!(
                "not shown at this width: {} (a wider terminal, or --format json, shows them)",
                names.join(", ")
            ));
        }
    }
    for n in &notes {
        let (prose, commands) = match view.width {
            Some(_) => copyable::take_out(n, "the command below"),
            None => (n.clone(), Vec::new()),
        };
        out.push_str(&wrap(&prose, view.width, "  "));
        out.push('\n');
        for c in commands {
            out.push_str(&copyable::line(&c));
            out.push('\n');
        }
    }
    out
}

/// A cell with its long commands taken out (on a terminal they go under
/// the table, each on one line), remembered with the row's name.
fn commands_out(row: &[String], cell: &str, commands: &mut Vec<(String, String)>) -> String {
    let (prose, taken) = copyable::take_out(cell, "the command below the table");
    if taken.is_empty() {
        return prose;
    }
    let name = row.first().cloned().unwrap_or_default();
    commands.extend(taken.into_iter().map(|c| (name.clone(), c)));
    if prose.contains("below the table") {
        prose
    } else {
        format!("{prose} the command below the table")
    }
}

/// A verdict cell in its colour; any other cell as it is.
fn cell(text: &str, color: bool) -> Cell {
    let c = Cell::new(text);
    if !color {
        return c;
    }
    match text {
        "PASS" | "HIT" => c.fg(Color::Green),
        "FAIL" | "MISS" => c.fg(Color::Red),
        "WARN" => c.fg(Color::Yellow),
        "SKIPPED" => c.fg(Color::DarkGrey),
        _ => c,
    }
}

/// The verdict word in a title line, coloured.
fn paint_verdicts(text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let mut out = text.to_string();
    for (word, style) in [
        ("PASS", super::color::PASS),
        ("FAIL", super::color::FAIL),
        ("WARN", super::color::WARN),
        ("SKIPPED", super::color::SKIP),
    ] {
        if let Some(rest) = text.strip_suffix(word) {
            out = format!("{rest}{}", super::color::paint(word, style));
        }
    }
    out
}

/// The narrowest a column may get without breaking a word: its longest
/// word, or its whole cell where that is short (a number with its unit).
fn min_width(header: &str, rows: &[Vec<String>], col: usize) -> usize {
    let words = |s: &str| s.split_whitespace().map(display_width).max().unwrap_or(0);
    let head = words(header);
    let cells = rows
        .iter()
        .filter_map(|r| r.get(col))
        .map(|c| {
            let w = display_width(c);
            if w <= UNBREAKABLE {
                w
            } else {
                words(c)
            }
        })
        .max()
        .unwrap_or(0);
    head.max(cells).max(1)
}

/// The columns shown at `width` (all when there is no width), and the ones
/// left out, rightmost first: each section puts its most telling columns
/// first. The first column always stays.
fn fit(header: &[String], rows: &[Vec<String>], width: Option<usize>) -> (Vec<usize>, Vec<usize>) {
    let all: Vec<usize> = (0..header.len()).collect();
    let Some(width) = width else {
        return (all, Vec::new());
    };
    let mins: Vec<usize> = all
        .iter()
        .map(|&i| min_width(&header[i], rows, i))
        .collect();
    let mut shown = all.clone();
    let mut hidden = Vec::new();
    // Each column costs its width plus two spaces of padding and a border.
    let total = |cols: &[usize]| cols.iter().map(|&i| mins[i] + 3).sum::<usize>() + 1;
    while shown.len() > 1 && total(&shown) > width {
        hidden.push(shown.pop().expect("more than one column"));
    }
    hidden.reverse();
    (shown, hidden)
}

fn truncate(text: &str, at: usize) -> String {
    if text.chars().count() <= at {
        return text.to_string();
    }
    let cut: String = text.chars().take(at.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A line wrapped between words to `width` (none: as it is), each line
/// starting with `indent`.
fn wrap(text: &str, width: Option<usize>, indent: &str) -> String {
    match width {
        Some(w) if w > indent.len() + 10 => {
            let opts = textwrap::Options::new(w)
                .initial_indent(indent)
                .subsequent_indent(indent)
                .break_words(false);
            textwrap::fill(text, opts)
        }
        _ => format!("{indent}{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas() -> Section {
        let mut s = Section::new(
            "Replicas",
            &[
                "node", "verdict", "probes", "p50", "p99", "follows", "address",
            ],
        );
        s.row(
            [
                "replica1",
                "PASS",
                "20/20",
                "352 µs",
                "1.03 ms",
                "127.0.0.1:26400 (master)",
                "127.0.0.1:26401",
            ]
            .map(String::from)
            .to_vec(),
        );
        s
    }

    #[test]
    fn at_80_columns_no_word_is_broken_and_what_does_not_fit_is_named() {
        let view = View {
            width: Some(60),
            color: false,
            verbose: false,
        };
        let text = section(&replicas(), &view);
        for line in text.lines() {
            assert!(
                display_width(line) <= 60,
                "{line:?} is wider than 60\n{text}"
            );
        }
        assert!(
            text.contains("replica1") && !text.contains("repli\n"),
            "{text}"
        );
        assert!(
            text.contains("not shown at this width: follows, address"),
            "{text}"
        );
    }

    #[test]
    fn a_pipe_gets_every_column_unwrapped() {
        let text = section(&replicas(), &View::file());
        assert!(text.contains("127.0.0.1:26400 (master)"), "{text}");
        assert!(!text.contains("not shown"), "{text}");
    }

    #[test]
    fn long_values_end_with_an_ellipsis_on_a_terminal() {
        let mut s = Section::new("Cached", &["key", "value"]);
        s.row(vec![
            "k".into(),
            format!("{{\"query\":\"{}\"}}", "x".repeat(100)),
        ]);
        s.truncate = vec![1];
        let text = section(
            &s,
            &View {
                width: Some(80),
                ..View::file()
            },
        );
        assert!(
            text.contains('…') && !text.contains(&"x".repeat(60)),
            "{text}"
        );
    }
}
