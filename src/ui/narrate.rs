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

    /// One line; on a terminal, wrapped between words to its width (a
    /// continuation indented under the text, past a leading `+1.234 s` stamp
    /// or indent).
    pub fn line(&self, text: &str) {
        use std::io::IsTerminal;
        let width = crate::ui::color::width(std::io::stderr().is_terminal());
        let text = match width {
            Some(w) if !text.contains('\n') && textwrap::core::display_width(text) > w => {
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
                let opts = textwrap::Options::new(w)
                    .subsequent_indent(&indent)
                    .break_words(false);
                textwrap::fill(text, opts)
            }
            _ => text.to_string(),
        };
        self.write(&format!("{text}\n"));
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
