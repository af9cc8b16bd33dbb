//! redlab: test and benchmark a Redis replication topology.
//!
//! `app` owns a run from argv to exit code (`app::cli` parses, `app::run`
//! resolves the topology, runs one subcommand from `cmd`, which returns a
//! typed report, and emits it). The modules below it are listed from the
//! top of the house down in docs/architecture.md.

pub mod app;
pub mod client;
pub(crate) mod cmd;
pub(crate) mod compare;
pub(crate) mod discover;
pub(crate) mod duration;
pub(crate) mod interrupt;
pub mod lab;
pub mod latency;
pub mod loadgen;
pub(crate) mod namespace;
pub(crate) mod probe;
pub(crate) mod replication;
pub mod report;
pub(crate) mod run;
pub(crate) mod series;
pub(crate) mod serving;
pub(crate) mod sharded;
pub(crate) mod survey;
pub(crate) mod text;
pub mod timings;
pub mod topology;
pub(crate) mod ui;
pub(crate) mod web;

pub use app::run::run;
pub use app::{cli, settings as config, Outcome};

// The public API is deliberate: what the binary, the tests and the benches
// use as a library. The run (`app`), the lab fixtures (`lab`), the reports
// as data (`report`) and the figures behind them (`latency`), the load
// generator (`loadgen`), connections (`client`, `topology`) and `--timings`
// are modules of their own; the rest of the crate is `pub(crate)`, and
// the few items tests read from it are named here.
pub use cmd::check::CheckDetails;
pub use cmd::drill::DrillDetails;
pub use cmd::perf::PerfDetails;
pub use discover::cluster::parse_nodes;
pub use replication::lag::{sample_lag, LagOptions};
pub use series::spectrum;
