//! The only code that writes to a terminal: progress bars and spinners
//! (indicatif), and the live narrative of `demo` and `ttl-watch`.

pub mod color;
pub mod narrate;
pub mod progress;
