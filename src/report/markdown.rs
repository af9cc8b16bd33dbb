//! Markdown: the same walk as the table, as GitHub-flavoured markdown.

use anyhow::Result;

use super::markup::Markup;
use super::{Document, Exporter, Section};

pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        Ok(self.walk(doc))
    }
}

impl Markup for MarkdownExporter {
    fn title(&self, text: &str) -> String {
        format!("# {text}\n")
    }
    fn section(&self, s: &Section) -> String {
        section(s)
    }
    fn footer(&self, text: &str) -> String {
        format!("\n_{text}_\n")
    }
    fn extra(&self, doc: &Document<'_>) -> String {
        match &doc.figure_links {
            Some(links) => links.clone(),
            None => super::output::markdown_stdout_note(&doc.figures),
        }
    }
}

/// One section as a heading, a pipe table and a bullet list of notes.
pub fn section(s: &Section) -> String {
    let mut out = format!("## {}\n\n", s.title);
    if !s.header.is_empty() && !s.rows.is_empty() {
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
    out
}

fn md_row(cells: &[String]) -> String {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| c.replace('|', "\\|").replace('\n', " "))
        .collect();
    format!("| {} |\n", escaped.join(" | "))
}
