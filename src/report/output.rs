//! Writing a report to a file, and the figures of a markdown report: SVG
//! files beside the .md (`<stem>-<figure id>.svg`), linked from it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::figure::{Figure, Palette};
use super::{plot, write_file, Details, Format, Report};

impl<D: Details> Report<D> {
    /// The figures worth drawing, with the report's palette.
    pub fn figures(&self) -> (Vec<Figure>, Palette) {
        let figures: Vec<Figure> = self
            .details
            .figures()
            .into_iter()
            .filter(Figure::has_data)
            .collect();
        let palette = Palette::new(self.nodes.iter().map(|n| n.name.as_str()), &figures);
        (figures, palette)
    }

    /// Write the report to `path` in `format`; a markdown report's figures
    /// go beside it as SVG files. Returns every file written.
    pub fn write_to(&self, path: &Path, format: Format) -> Result<Vec<PathBuf>> {
        if format != Format::Markdown {
            write_file(path, &self.render(format)?)?;
            return Ok(vec![path.to_path_buf()]);
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report".into());
        let (figures, palette) = self.figures();
        let mut written = Vec::new();
        let mut links = String::new();
        if !figures.is_empty() {
            links.push_str("\n## Figures\n\n");
        }
        for f in &figures {
            let name = format!("{stem}-{}.svg", f.id);
            let svg = plot::svg(f, &palette).map_err(anyhow::Error::msg)?;
            let file = path.with_file_name(&name);
            write_file(&file, &svg)?;
            written.push(file);
            links.push_str(&format!("![{}]({})\n\n", md_text(&f.title), name));
            if !f.caption.is_empty() {
                links.push_str(&format!("_{}_\n\n", md_text(&f.caption)));
            }
        }
        write_file(
            path,
            &self.export(Format::Markdown, Some(links), super::View::file())?,
        )?;
        written.insert(0, path.to_path_buf());
        Ok(written)
    }
}

/// What markdown on stdout says instead of its figures.
pub(super) fn markdown_stdout_note(figures: &[Figure]) -> String {
    if figures.is_empty() {
        return String::new();
    }
    let titles: Vec<&str> = figures.iter().map(|f| f.title.as_str()).collect();
    format!(
        "\n## Figures\n\n_{} ({}) are written as SVG files beside the report with `--output NAME.md`, or drawn inline with `--output NAME.html`._\n",
        crate::report::plural(figures.len() as u64, "figure"),
        md_text(&titles.join("; "))
    )
}

fn md_text(s: &str) -> String {
    s.replace(['[', ']'], "")
        .replace('\n', " ")
        .replace('_', "\\_")
        .replace('*', "\\*")
}
