//! One self-contained HTML page: inline CSS and inline SVG figures, no
//! script, no external resource of any kind (it opens offline, attaches to a
//! CI run, and shows on a projector). The markup is well-formed XML, so tests
//! can parse it.

use super::figure::{Figure, Palette};
use anyhow::Result;

use super::{markup, plot, Document, Exporter, Section};

const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 18px/1.45 "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: #1f2328; background: #fff; margin: 0 auto; max-width: 1160px; padding: 20px 32px 48px; }
h1 { font-size: 32px; margin: 8px 0 6px; }
h2 { font-size: 25px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 20px; margin: 22px 0 6px; }
p.lead { margin: 0 0 6px; color: #444c56; }
nav { margin: 6px 0 0; font-size: 16px; }
nav a { color: #0550ae; margin-right: 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 4px; font-size: 16px; }
th, td { border: 1px solid #d0d7de; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
table.kv th { width: 11em; }
code { font: 15px "DejaVu Sans Mono", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
ul.notes { margin: 4px 0 0; padding-left: 22px; color: #444c56; font-size: 16px; }
.verdict { display: inline-block; padding: 1px 14px; border-radius: 6px; font-weight: 700;
  vertical-align: 3px; font-size: 24px; color: #fff; }
td.v { font-weight: 700; text-align: center; }
.v-pass { background: #1a7f37; } td.v-pass { background: #dafbe1; color: #116329; }
.v-warn { background: #9a6700; } td.v-warn { background: #fff3b0; color: #6b4700; }
.v-fail { background: #cf222e; } td.v-fail { background: #ffebe9; color: #a40e26; }
.v-skip { background: #6e7781; } td.v-skip { background: #eaeef2; color: #57606a; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
figure { margin: 18px 0 30px; }
figure svg { display: block; width: 100%; max-width: 1000px; height: auto;
  border: 1px solid #d0d7de; border-radius: 6px; }
figcaption { max-width: 1000px; margin-top: 6px; font-size: 16px; color: #444c56; }
p.none, p.error { color: #6e7781; font-style: italic; }
footer { margin-top: 40px; font-size: 14px; color: #6e7781; }
@media print { figure { break-inside: avoid; } }
"#;

pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        Ok(render(doc))
    }
}

fn render(report: &Document<'_>) -> String {
    let (figures, palette) = (&report.figures, &report.palette);
    let verdict = report.verdict.as_str();
    let title = format!("redlab {}: {verdict}", report.command);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    out.push_str(&format!(
        "<meta name=\"generator\" content=\"redlab {}\"/>\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&report.manifest.redlab_version),
        esc(&title)
    ));
    out.push_str(&format!(
        "<header>\n<h1>redlab {} <span class=\"verdict {}\">{}</span></h1>\n<p class=\"lead\">{}</p>\n",
        esc(report.command),
        verdict_class(verdict),
        esc(verdict),
        esc(&tally(report))
    ));
    out.push_str("<nav><a href=\"#run\">Run</a><a href=\"#tables\">Tables</a><a href=\"#checks\">Checks</a><a href=\"#figures\">Figures</a></nav>\n</header>\n");
    out.push_str(&manifest(report));
    out.push_str("<section id=\"tables\">\n");
    let mut sections = vec![markup::nodes_section(report.nodes)];
    sections.extend(report.sections.iter().cloned());
    for s in &sections {
        out.push_str(&section(s, palette));
    }
    out.push_str("</section>\n");
    out.push_str(&checks(report));
    out.push_str(&figures_html(figures, palette));
    out.push_str(&format!(
        "<footer>redlab {}: a self-contained page (inline styles and SVG, no scripts, nothing fetched).</footer>\n</body>\n</html>\n",
        esc(&report.manifest.redlab_version)
    ));
    out
}

/// `7 checks: 6 PASS, 1 WARN`
fn tally(report: &Document<'_>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in report.checks {
        let v = c.verdict.as_str();
        match counts.iter_mut().find(|(k, _)| *k == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    format!(
        "{} check{}: {}",
        report.checks.len(),
        if report.checks.len() == 1 { "" } else { "s" },
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    )
}

fn manifest(report: &Document<'_>) -> String {
    let m = report.manifest;
    let rows = [
        (
            "command line",
            format!("<code>{}</code>", esc(&m.args.join(" "))),
        ),
        ("started", esc(&m.started_at)),
        ("took", esc(&format!("{:.1} ms", m.duration_ms))),
        ("host", esc(&m.host)),
        ("redlab", esc(&m.redlab_version)),
        ("run id", format!("<code>{}</code>", esc(&m.run_id))),
    ];
    let mut out = String::from("<section id=\"run\">\n<h2>Run</h2>\n<table class=\"kv\">\n");
    for (k, v) in rows {
        out.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>\n"));
    }
    out.push_str("</table>\n</section>\n");
    out
}

fn section(s: &Section, palette: &Palette) -> String {
    let mut out = format!("<h3>{}</h3>\n", esc(&s.title));
    if !s.header.is_empty() {
        out.push_str("<div class=\"scroll\"><table>\n<tr>");
        for h in &s.header {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
        out.push_str("</tr>\n");
        let node_column = s.header.first().is_some_and(|h| h == "node");
        for r in &s.rows {
            out.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                out.push_str(&cell(c, node_column && i == 0, palette));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table></div>\n");
    }
    if !s.notes.is_empty() {
        out.push_str("<ul class=\"notes\">\n");
        for n in &s.notes {
            out.push_str(&format!("<li>{}</li>\n", esc(n)));
        }
        out.push_str("</ul>\n");
    }
    out
}

/// A table cell: verdicts coloured, node names with their figure colour.
fn cell(text: &str, node: bool, palette: &Palette) -> String {
    if let Some(class) = verdict_cell(text) {
        return format!("<td class=\"v {class}\">{}</td>", esc(text));
    }
    if node {
        return format!(
            "<td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>",
            palette.hex(text),
            esc(text)
        );
    }
    format!("<td>{}</td>", esc(text))
}

fn verdict_cell(text: &str) -> Option<&'static str> {
    match text.to_ascii_uppercase().as_str() {
        "PASS" | "WARN" | "FAIL" | "SKIP" | "SKIPPED" => Some(verdict_class(text)),
        _ => None,
    }
}

/// By the verdict's text, so a verdict this renderer does not know (a newer
/// `skipped`) still gets a neutral colour.
pub(crate) fn verdict_class(verdict: &str) -> &'static str {
    match verdict.to_ascii_uppercase().as_str() {
        "PASS" => "v-pass",
        "WARN" => "v-warn",
        "FAIL" => "v-fail",
        _ => "v-skip",
    }
}

fn checks(report: &Document<'_>) -> String {
    let mut out = String::from(
        "<section id=\"checks\">\n<h2>Checks</h2>\n<div class=\"scroll\"><table>\n<tr><th>check</th><th>verdict</th><th>reason</th></tr>\n",
    );
    for c in report.checks {
        let v = c.verdict.as_str();
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"v {}\">{}</td><td>{}</td></tr>\n",
            esc(&c.name),
            verdict_class(v),
            esc(v),
            esc(&c.reason)
        ));
    }
    out.push_str("</table></div>\n</section>\n");
    out
}

fn figures_html(figures: &[Figure], palette: &Palette) -> String {
    let mut out = String::from("<section id=\"figures\">\n<h2>Figures</h2>\n");
    if figures.is_empty() {
        out.push_str("<p class=\"none\">This report has no measured series to plot.</p>\n");
    }
    for f in figures {
        out.push_str(&format!("<figure id=\"fig-{}\">\n", esc(&f.id)));
        match plot::svg(f, palette) {
            Ok(svg) => out.push_str(&inline_svg(&svg, &f.title)),
            Err(e) => out.push_str(&format!(
                "<p class=\"error\">{}: could not be drawn: {}</p>\n",
                esc(&f.title),
                esc(&e)
            )),
        }
        if !f.caption.is_empty() {
            out.push_str(&format!("<figcaption>{}</figcaption>\n", esc(&f.caption)));
        }
        out.push_str("</figure>\n");
    }
    out.push_str("</section>\n");
    out
}

/// An SVG document as an element of the page: no namespace URL (HTML knows
/// `<svg>`; the page then holds no URL at all), labelled for screen readers.
fn inline_svg(svg: &str, title: &str) -> String {
    let body = svg
        .trim_start_matches(|c: char| c.is_whitespace())
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    body.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(title)),
        1,
    )
}

/// Text and attribute values, XML-safe (control characters dropped).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}
