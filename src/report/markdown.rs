//! Markdown: the same walk as the table, as GitHub-flavoured markdown.
//! Every text is escaped (`text`): a key name such as `<img src=x
//! onerror=...>` or `</script>` reaches a CI job summary as the characters
//! it is made of, never as HTML, a link or emphasis.

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
        format!("# {}\n", md_text(text))
    }
    fn section(&self, s: &Section) -> String {
        section(s)
    }
    fn footer(&self, text: &str) -> String {
        format!("\n_{}_\n", md_text(text))
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
    let mut out = format!("## {}\n\n", md_text(&s.title));
    if !s.header.is_empty() && !s.rows.is_empty() {
        out.push_str(&md_row(&s.header));
        out.push_str(&md_row(&vec!["---".to_string(); s.header.len()]));
        for r in &s.rows {
            out.push_str(&md_row(r));
        }
        out.push('\n');
    }
    for n in &s.notes {
        out.push_str(&format!("- {}\n", md_text(n)));
    }
    out
}

fn md_row(cells: &[String]) -> String {
    let escaped: Vec<String> = cells
        .iter()
        .map(|c| md_text(c).replace('|', "\\|"))
        .collect();
    format!("| {} |\n", escaped.join(" | "))
}

/// Text as markdown that shows exactly these characters: `<`, `&` and the
/// backtick as entities (no tag, entity or code span can open), `\ * [ ]`
/// backslash-escaped (no link, no emphasis; `_` does not emphasise inside a
/// word in GFM),
/// line ends as spaces (a line cannot start a block), control characters as
/// escapes (`safe::visible`).
pub fn md_text(s: &str) -> String {
    let s = super::safe::visible(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '`' => out.push_str("&#96;"),
            '\\' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_stays_text() {
        assert_eq!(
            md_text("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)>"
        );
        assert_eq!(md_text("</script><script>"), "&lt;/script>&lt;script>");
        assert_eq!(
            md_text("[a](javascript:x) *b* `c`"),
            "\\[a\\](javascript:x) \\*b\\* &#96;c&#96;"
        );
        // Rendered, `\\x1b` shows as `\x1b`: the escape, not the character.
        assert_eq!(md_text("a\u{1b}[31m\nb"), "a\\\\x1b\\[31m b");
        assert_eq!(md_text("a\\x00"), "a\\\\x00");
    }
}
