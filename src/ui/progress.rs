//! The only place that touches indicatif. Progress goes to stderr and is
//! hidden when stderr is not a terminal, with --quiet, or when a machine
//! format goes to stdout.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

/// A spinner or bar; finishing or dropping it clears it.
pub struct Task {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress { enabled }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    pub fn spinner(&self, msg: impl Into<String>) -> Task {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
        );
        bar.set_message(msg.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Task { bar }
    }

    /// A countdown: the bar empties as `pos` goes from 0 to `len` (ms).
    pub fn countdown(&self, len_ms: u64, msg: impl Into<String>) -> Task {
        let bar = ProgressBar::with_draw_target(Some(len_ms), self.target());
        bar.set_style(
            // wide_msg: the message is cut to the terminal's width, never wrapped.
            ProgressStyle::with_template("{prefix} [{bar:30}] {wide_msg}")
                .expect("static template")
                .progress_chars("= "),
        );
        bar.set_message(msg.into());
        Task { bar }
    }

    /// A bar of counted things (requests, keys), with a whole-number rate.
    pub fn bar(&self, len: u64, msg: impl Into<String>) -> Task {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {rate} eta {eta}")
                .expect("static template")
                .with_key(
                    "rate",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", s.per_sec());
                    },
                )
                .progress_chars("=> "),
        );
        bar.set_message(msg.into());
        Task { bar }
    }

    /// A bar of time (ms): how much of a timed run has passed, and the ETA.
    pub fn timed_bar(&self, len_ms: u64, msg: impl Into<String>) -> Task {
        let bar = ProgressBar::with_draw_target(Some(len_ms), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {elapsed} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(msg.into());
        Task { bar }
    }
}

impl Task {
    pub fn set_message(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }
    pub fn position(&self) -> u64 {
        self.bar.position()
    }
    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }
    pub fn set_prefix(&self, prefix: impl Into<String>) {
        self.bar.set_prefix(prefix.into());
    }
    /// Run `f` (which prints) with the bar cleared, then redraw it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
    /// Clear it.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
