//! The run in one room, argv to exit code: `cli` (clap only) parses,
//! `settings` turns the arguments into plain settings and one job (`job`: the
//! table of subcommands), `target` resolves the topology once, `run` runs
//! the job (`shards` on every shard of a cluster), `emit` prints and writes the report, `exit` says what the
//! outcome means as an exit code. `rerender` is the special mode `report`: a
//! saved report read back as its subcommand's (it knows every subcommand's
//! details type, so it stands above `cmd`), compared, or merged.

pub mod cli;
pub mod emit;
mod exit;
pub mod job;
pub mod rerender;
pub mod run;
pub mod settings;
pub mod shards;
pub mod target;

pub use exit::Outcome;
pub use run::run;
