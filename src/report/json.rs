//! JSON: the report struct itself, pretty-printed.

use anyhow::Result;

use super::{Document, Exporter};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        (doc.json)()
    }
}
