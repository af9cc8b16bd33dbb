//! redlab: test and benchmark a Redis replication topology.
pub mod perf;
