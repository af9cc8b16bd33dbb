//! The only code that writes to a terminal: progress bars and spinners
//! (indicatif), and the live narrative of `demo` and `ttl-watch`.

/// Colours live with the report they paint; the terminal uses them too.
pub use crate::report::color;
pub mod narrate;
pub mod progress;
