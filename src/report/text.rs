//! Terminal table and markdown share one walk over the report's sections.

use comfy_table::{presets, ContentArrangement, Table};

use super::{Details, Report, Section};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Table,
    Markdown,
}

pub fn render<D: Details>(report: &Report<D>, style: Style) -> String {
    render_with(report, style, "")
}

/// With `extra` (markdown's figures) between the checks and the footer.
pub fn render_with<D: Details>(report: &Report<D>, style: Style, extra: &str) -> String {
    let mut sections = vec![nodes_section(report)];
    sections.extend(report.details.sections());
    sections.push(checks_section(report));
    let mut out = String::new();
    let title = format!("redlab {}: {}", report.command, report.verdict.as_str());
    match style {
        Style::Table => out.push_str(&format!("{title}\n")),
        Style::Markdown => out.push_str(&format!("# {title}\n")),
    }
    for s in &sections {
        out.push('\n');
        out.push_str(&section(s, style));
    }
    out.push_str(extra);
    let m = &report.manifest;
    let footer = format!(
        "redlab {} on {}, started {}, took {:.1} ms, run {}: {}",
        m.redlab_version,
        m.host,
        m.started_at,
        m.duration_ms,
        m.run_id,
        m.args.join(" ")
    );
    match style {
        Style::Table => out.push_str(&format!("\n{footer}\n")),
        Style::Markdown => out.push_str(&format!("\n_{footer}_\n")),
    }
    out
}

pub(super) fn nodes_section<D: Details>(report: &Report<D>) -> Section {
    let mut s = Section::new(
        "Topology",
        &[
            "node",
            "address",
            "role",
            "version",
            "maxmemory",
            "policy",
            "persistence",
        ],
    );
    for n in &report.nodes {
        let role = match (&n.role, &n.error) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => "unreachable".into(),
            _ => "-".into(),
        };
        s.row(vec![
            n.name.clone(),
            n.address.clone(),
            role,
            super::opt(&n.redis_version),
            n.maxmemory_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            super::opt(&n.maxmemory_policy),
            super::opt(&n.persistence),
        ]);
    }
    s
}

fn checks_section<D: Details>(report: &Report<D>) -> Section {
    let mut s = Section::new("Checks", &["check", "verdict", "reason"]);
    for c in &report.checks {
        s.row(vec![
            c.name.clone(),
            c.verdict.as_str().into(),
            c.reason.clone(),
        ]);
    }
    s
}

pub fn human_bytes(b: u64) -> String {
    if b == 0 {
        return "unlimited".into();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

pub(super) fn section(s: &Section, style: Style) -> String {
    let mut out = String::new();
    match style {
        Style::Table => {
            out.push_str(&format!("{}\n", s.title));
            if !s.header.is_empty() {
                let mut t = Table::new();
                t.load_preset(presets::UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(&s.header);
                for r in &s.rows {
                    t.add_row(r);
                }
                out.push_str(&format!("{t}\n"));
            }
            for n in &s.notes {
                out.push_str(&format!("  {n}\n"));
            }
        }
        Style::Markdown => {
            out.push_str(&format!("## {}\n\n", s.title));
            if !s.header.is_empty() {
                out.push_str(&md_row(&s.header));
                out.push_str(&md_row(&vec!["---".to_string(); s.header.len()]));
                for r in &s.rows {
                    out.push_str(&md_row(r));
                }
                out.push('\n');
            }
            for n in &s.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
    }
    out
}

fn md_row(cells: &[String]) -> String {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| c.replace('|', "\\|").replace('\n', " "))
        .collect();
    format!("| {} |\n", escaped.join(" | "))
}
