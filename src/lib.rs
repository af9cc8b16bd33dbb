//! redlab: test and benchmark a Redis replication topology.
//!
//! `app` owns a run from argv to exit code (`app::cli` parses, `app::run`
//! resolves the topology, runs one subcommand from `cmd`, which returns a
//! typed report, and emits it). The modules below it are listed from the
//! top of the house down in docs/architecture.md.

pub mod app;
pub mod client;
pub mod cmd;
pub mod compare;
pub mod discover;
pub mod duration;
pub mod interrupt;
pub mod lab;
pub mod latency;
pub mod loadgen;
pub mod namespace;
pub mod probe;
pub mod replication;
pub mod report;
pub mod run;
pub mod series;
pub mod serving;
pub mod sharded;
pub mod survey;
pub mod text;
pub mod timings;
pub mod topology;
pub mod ui;
pub mod web;

pub use app::run::run;
pub use app::{cli, settings as config, Outcome};
