//! The gate's steps draw the same figures (and, for a report read from a
//! file, the same tables) as their subcommands, from their typed details.

use super::{CheckDetails, CheckRun};
use crate::report::{Figure, Section};

pub fn figures(d: &CheckDetails) -> Vec<Figure> {
    d.checks
        .iter()
        .flat_map(|r| {
            r.details
                .view()
                .map(|v| v.figures())
                .unwrap_or_default()
                .into_iter()
                .map(|f| f.prefixed(&r.name, &format!("{} check", r.name)))
        })
        .collect()
}

/// A step's tables rebuilt from its details (its live tables are not serialised).
pub fn sections(r: &CheckRun) -> Vec<Section> {
    r.details.view().map(|v| v.sections()).unwrap_or_default()
}
