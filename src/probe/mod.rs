//! Reusable measurements that subcommands compose: each probe measures into
//! its own details type (`measure(..) -> D`), judges them (`checks(&D)`) and,
//! where a gate shows one line for it, sums them up (`summary(&D)`). `check`
//! and `demo` compose several; each `cmd::<name>` wraps one into its report.
//! A probe stands below `cmd` and above the run context (`run`): it never
//! imports a subcommand.

/// Data the same on every replica (compare; check's `consistency`).
pub mod consistency;
/// A key expiring on every node (ttl-watch; check's `expiry`; demo).
pub mod expiry;
/// Settings that hurt a replicated Redis (check's `config-lint`).
pub mod lint;
/// Key counts per database (keycount; check's `keycount`).
pub mod parity;
/// Roles, then probes timed to every replica (replicate-check; check's
/// `reachability` and `replication`; demo).
pub mod propagation;
/// Every node's INFO figures (stats; demo).
pub mod stats;
/// Pipelined load on the master (perf; check's `throughput`).
pub mod throughput;
