//! One file per subcommand: `run(config, &Ctx) -> Result<Report<...>>`.

pub mod check;
pub mod clean;
pub mod compare;
pub mod demo;
pub mod drill;
pub mod keycount;
pub mod lab;
pub mod perf;
pub mod replicate_check;
pub mod stats;
pub mod ttl_watch;
