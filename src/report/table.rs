//! The terminal table: comfy-table sections under a title line.

use anyhow::Result;
use comfy_table::{presets, ContentArrangement, Table};

use super::markup::Markup;
use super::{Document, Exporter, Section};

pub struct TableExporter;

impl Exporter for TableExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        Ok(self.walk(doc))
    }
}

impl Markup for TableExporter {
    fn title(&self, text: &str) -> String {
        format!("{text}\n")
    }
    fn section(&self, s: &Section) -> String {
        section(s)
    }
    fn footer(&self, text: &str) -> String {
        format!("\n{text}\n")
    }
}

/// One section as a titled table with its notes under it.
pub fn section(s: &Section) -> String {
    let mut out = format!("{}\n", s.title);
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
    out
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
