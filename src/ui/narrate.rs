//! The live narrative of `demo` and `ttl-watch`: step headings, what just
//! happened, HIT/MISS lines and tables, as it happens.
//!
//! It always writes to stderr, so stdout carries only the final report (clean
//! JSON with `--format json`), and it is silenced by `--quiet`. Unlike progress
//! bars it is not hidden when stderr is not a terminal: the narrative is the
//! point of these commands, and a CI log or a redirected run keeps it.
//! Animated parts (spinners, the countdown bar) stay with `progress`.

use std::io::{IsTerminal, Write};

use crate::report::{render_sections, Format, Section};
use crate::ui::progress::Task;

#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    enabled: bool,
    color: bool,
}

impl Narrator {
    pub fn new(enabled: bool) -> Narrator {
        Narrator {
            enabled,
            color: false,
        }
    }

    /// With colour (HIT/MISS, verdicts) where stderr shows it.
    pub fn with_color(mut self, color: bool) -> Narrator {
        self.color = color;
        self
    }

    /// For callers that only want the numbers (e.g. `check`).
    pub fn silent() -> Narrator {
        Narrator {
            enabled: false,
            color: false,
        }
    }

    /// `word` in its colour where colour is on (HIT green, MISS red, ...).
    pub fn word(&self, word: &str) -> String {
        use crate::ui::color::{paint, FAIL, PASS, SKIP, WARN};
        if !self.color {
            return word.to_string();
        }
        match word.trim() {
            "HIT" | "PASS" => paint(word, PASS),
            "MISS" | "FAIL" => paint(word, FAIL),
            "WARN" => paint(word, WARN),
            "SKIPPED" => paint(word, SKIP),
            _ => word.to_string(),
        }
    }

    /// The view tables get on stderr.
    fn view(&self) -> crate::report::View {
        use std::io::IsTerminal;
        crate::report::View {
            width: crate::ui::color::width(std::io::stderr().is_terminal()),
            color: self.color,
            verbose: false,
        }
    }

    /// `== 2. Cache-aside: a miss ==`, with a blank line before it.
    pub fn heading(&self, title: &str) {
        self.write(&format!("\n== {title} ==\n"));
    }

    /// One line (or several, split at `\n`); on a terminal each is wrapped
    /// between words to its width (a continuation indented under the text,
    /// past a leading `+1.234 s` stamp or indent).
    pub fn line(&self, text: &str) {
        use std::io::IsTerminal;
        let width = crate::ui::color::width(std::io::stderr().is_terminal());
        let text: Vec<String> = text.split('\n').map(|l| fit(l, width)).collect();
        self.write(&format!("{}\n", text.join("\n")));
    }

    /// A line printed above a live bar or spinner without tearing it.
    pub fn line_above(&self, task: &Task, text: &str) {
        task.suspend(|| self.line(text));
    }

    /// A prompt, without a newline: the answer is typed after it.
    pub fn write_prompt(&self, prompt: &str) {
        self.write(prompt);
    }

    pub fn tables(&self, sections: &[Section]) {
        if self.enabled {
            self.write(&render_sections(sections, Format::Table, self.view()));
        }
    }

    /// Ask for Enter before the next step; only when both ends are a terminal.
    /// The read runs on a thread of its own so that Ctrl-C still reaches the
    /// runtime while the presenter talks.
    pub async fn pause(&self, prompt: &str) {
        if !self.enabled || !std::io::stdin().is_terminal() {
            return;
        }
        self.write(&format!("  [{prompt}: press Enter] "));
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
            let _ = tx.send(());
        });
        let _ = rx.await;
    }

    fn write(&self, text: &str) {
        if self.enabled {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(text.as_bytes());
            let _ = e.flush();
        }
    }
}

/// One line wrapped between words to `width` (none: as it is), its
/// continuation indented under the text past a leading label column.
fn fit(text: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if textwrap::core::display_width(text) > w => {
            let lead = text.len() - text.trim_start().len();
            // A line led by a label column (`+2.002 s  `, `replica1   `)
            // continues under the text after it.
            let body = text.trim_start();
            let stamp = body
                .find("  ")
                .filter(|i| *i > 0)
                .map(|i| {
                    let rest = &body[i..];
                    i + rest.len() - rest.trim_start().len()
                })
                .unwrap_or(0);
            let indent = " ".repeat((lead + stamp).min(w / 3).max(2));
            // Only at spaces: a timestamp or a key is not broken at its `-`.
            let opts = textwrap::Options::new(w)
                .subsequent_indent(&indent)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .break_words(false);
            textwrap::fill(text, opts)
        }
        _ => text.to_string(),
    }
}

/// One refresh of a live view on stdout (`stats --watch`): redrawn in place on
/// a terminal, else appended, one frame after another.
/// An error (EPIPE: the reader went away, `| head -1`) ends the watch.
pub fn frame(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if std::io::stdout().is_terminal() {
        // Home the cursor and clear the screen, as `redis-cli --stat` redraws.
        out.write_all(b"\x1b[H\x1b[2J")?;
    }
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_wraps_between_words_under_its_label() {
        let text = "+2.002 s  replica1 stopped serving the key, 1.2 ms after the master did, at 2026-12-07T09:46:16.159Z";
        let out = fit(text, Some(80));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{out}");
        for l in &lines {
            assert!(l.chars().count() <= 80, "{l:?}");
        }
        assert!(lines[1].starts_with("          "), "{out}");
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        assert_eq!(fit(text, None), text);
    }
}
