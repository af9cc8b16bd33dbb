//! The network look-ups that find a topology: Sentinel's view of the master
//! and replicas, and a Redis Cluster's shards. Above `client` (they talk to
//! servers) and out of `topology`, which is data only.

pub mod cluster;
pub mod sentinel;

use std::time::Duration;

use anyhow::Result;

use crate::topology::{Topology, TopologySpec};

/// The topology the flags describe, asking Sentinel when `--sentinel` is
/// given (replica discovery from the master stays `survey::discover`).
pub async fn resolve(g: &TopologySpec, timeout: Duration) -> Result<Topology> {
    if g.sentinels.is_empty() {
        Topology::from_spec(g)
    } else {
        sentinel::resolve(g, timeout).await
    }
}
