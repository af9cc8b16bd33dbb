//! The gate's steps keep their measurements as JSON (`CheckRun::details`):
//! read back into their own types, they draw the same figures (and, for a
//! report read from a file, the same tables) as their subcommands.

use serde::de::DeserializeOwned;

use super::{CheckDetails, CheckRun};
use crate::cmd::compare::CompareDetails;
use crate::cmd::keycount::KeycountDetails;
use crate::cmd::perf::PerfDetails;
use crate::cmd::replicate_check::ReplicateDetails;
use crate::cmd::ttl_watch::TtlWatchDetails;
use crate::report::{Details, Figure, Section};

pub fn figures(d: &CheckDetails) -> Vec<Figure> {
    d.checks
        .iter()
        .flat_map(|r| {
            view(r)
                .map(|v| v.figures())
                .unwrap_or_default()
                .into_iter()
                .map(|f| f.prefixed(&r.name, &format!("{} check", r.name)))
        })
        .collect()
}

/// A step's tables rebuilt from its JSON (its live tables are not serialised).
pub fn sections(r: &CheckRun) -> Vec<Section> {
    view(r).map(|v| v.sections()).unwrap_or_default()
}

/// The step's details as the subcommand's own type, where it has one.
fn view(r: &CheckRun) -> Option<Box<dyn View>> {
    match r.name.as_str() {
        "replication" => typed::<ReplicateDetails>(r),
        "keycount" => typed::<KeycountDetails>(r),
        "expiry" => typed::<TtlWatchDetails>(r),
        "throughput" => typed::<PerfDetails>(r),
        "consistency" => typed::<CompareDetails>(r),
        _ => None,
    }
}

fn typed<T: DeserializeOwned + Details + 'static>(r: &CheckRun) -> Option<Box<dyn View>> {
    T::deserialize(&r.details)
        .ok()
        .map(|d| Box::new(d) as Box<dyn View>)
}

/// `Details` without its `Serialize` supertrait, so it can be boxed.
trait View {
    fn sections(&self) -> Vec<Section>;
    fn figures(&self) -> Vec<Figure>;
}

impl<T: Details> View for T {
    fn sections(&self) -> Vec<Section> {
        Details::sections(self)
    }
    fn figures(&self) -> Vec<Figure> {
        Details::figures(self)
    }
}
