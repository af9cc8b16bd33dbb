//! How a run ended, and the exit code it means: 0 every check passed,
//! 1 a check failed, 2 an error (the `Err` of `run`), 130 interrupted.

use crate::report::Verdict;

/// How a run ended; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done(Verdict),
    Interrupted,
}

impl Outcome {
    /// 0 every check passed (warnings included), 1 a check failed or none
    /// could be performed, 130 interrupted. Errors (exit 2) are the `Err` of `run`.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done(Verdict::Pass | Verdict::Warn) => 0,
            Outcome::Done(Verdict::Fail | Verdict::Skip) => 1,
            Outcome::Interrupted => 130,
        }
    }
}
