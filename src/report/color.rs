//! Colour where it helps: verdicts and HIT/MISS, on a terminal only. Off
//! with NO_COLOR or `--color never`, forced with `--color always`, never in
//! files (which render through `View::file`) or pipes.

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};

pub const PASS: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
pub const FAIL: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
pub const WARN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
pub const SKIP: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::BrightBlack)));
pub const BOLD: Style = Style::new().bold();

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    #[default]
    Auto,
    Always,
    Never,
}

/// Whether to colour what goes to a stream that is (or is not) a terminal.
pub fn enabled(when: When, is_terminal: bool) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => {
            is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

pub fn stdout_color(when: When) -> bool {
    enabled(when, std::io::stdout().is_terminal())
}

pub fn stderr_color(when: When) -> bool {
    enabled(when, std::io::stderr().is_terminal())
}

/// `text` in `style`.
pub fn paint(text: &str, style: Style) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// The terminal's width in columns, where stdout (or stderr) is one.
pub fn width(stream_is_terminal: bool) -> Option<usize> {
    if !stream_is_terminal {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| w as usize)
        .filter(|w| *w >= 20)
}
