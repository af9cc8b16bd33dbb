//! `--timings`: every start-up and shutdown step of a run with its duration,
//! on stderr and in the report's manifest, so a user sees the fixed cost
//! around the measurement (connections, INFO reads, the registry, cleanup).
//!
//! Process-wide: the steps happen in `main`, in the run and in the
//! subcommand, which share nothing else. Off (the default) a step costs one
//! relaxed atomic load.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

static ON: AtomicBool = AtomicBool::new(false);
static ORIGIN: OnceLock<Instant> = OnceLock::new();
static STEPS: Mutex<Vec<Step>> = Mutex::new(Vec::new());

/// One step of the run's fixed cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What was done (`survey`, `write gate`, `cleanup`...).
    pub step: String,
    /// When it started, milliseconds after `main` started.
    pub start_ms: f64,
    /// How long it took, milliseconds.
    pub duration_ms: f64,
}

/// The instant every step is measured from: set by the first call (`main`
/// makes it, before parsing the command line).
pub fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Record from now on (`--timings`).
pub fn enable() {
    origin();
    ON.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A step that started at `since` and ends now.
pub fn record(step: &str, since: Instant) {
    if !enabled() {
        return;
    }
    let now = Instant::now();
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let s = Step {
        step: step.to_string(),
        start_ms: ms(since.saturating_duration_since(origin())),
        duration_ms: ms(now.saturating_duration_since(since)),
    };
    if let Ok(mut v) = STEPS.lock() {
        v.push(s);
    }
}

/// Await `f` as the step `step`.
pub async fn timed<F: Future>(step: &str, f: F) -> F::Output {
    if !enabled() {
        return f.await;
    }
    let t = Instant::now();
    let out = f.await;
    record(step, t);
    out
}

/// The steps so far, in the order they started (empty without `--timings`).
pub fn steps() -> Vec<Step> {
    let mut v = STEPS.lock().map(|v| v.clone()).unwrap_or_default();
    v.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    v
}

/// The steps as lines for stderr: start, duration, step; the whole last.
pub fn render(steps: &[Step], total_ms: f64) -> String {
    let mut s = format!(
        "redlab: timings {:>9} {:>9}  step (ms after redlab started)\n",
        "start", "duration"
    );
    let mut line = |start: f64, took: f64, step: &str| {
        s.push_str(&format!(
            "redlab: timings {start:>9.3} {took:>9.3}  {step}\n"
        ));
    };
    for st in steps {
        line(st.start_ms, st.duration_ms, &st.step);
    }
    line(0.0, total_ms, "whole run (to exit)");
    s
}

/// Print the steps on stderr, when `--timings` asked for them.
pub fn print() {
    if !enabled() {
        return;
    }
    let total = (origin().elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let _ = std::io::stderr().write_all(render(&steps(), total).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_render_in_start_order_with_the_whole_run_last() {
        let steps = vec![
            Step {
                step: "survey".into(),
                start_ms: 0.5,
                duration_ms: 0.25,
            },
            Step {
                step: "cleanup".into(),
                start_ms: 3.0,
                duration_ms: 1.0,
            },
        ];
        let out = render(&steps, 4.5);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[1].ends_with("0.500     0.250  survey"), "{out}");
        assert!(lines[2].ends_with("3.000     1.000  cleanup"), "{out}");
        assert!(lines[3].ends_with("4.500  whole run (to exit)"), "{out}");
    }
}
