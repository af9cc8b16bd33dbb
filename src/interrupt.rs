//! The count of ending signals (SIGINT, SIGTERM, SIGHUP) the process has
//! received. A leaf: `run::signals` counts into it, and code low in the
//! house that must block a thread (writing a report to a FIFO) reads it to
//! give up when a signal arrives, without importing the run.

use std::sync::atomic::{AtomicU64, Ordering};

static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// How many ending signals the process has received.
pub fn received() -> u64 {
    RECEIVED.load(Ordering::SeqCst)
}

/// One more ending signal arrived.
pub fn count() {
    RECEIVED.fetch_add(1, Ordering::SeqCst);
}
