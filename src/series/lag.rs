//! Each replica's offset lag in bytes over a load, as data: what
//! `replication::lag` samples on the master and the reports and figures show.

use serde::{Deserialize, Serialize};

use super::Thinned;

/// Offset lag of every replica during one load (a perf round, a drill, probes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSeries {
    /// Time between samples asked for, ms.
    pub interval_ms: f64,
    /// When the load ended, ms from the first sample (null: it never did).
    pub load_ended_ms: Option<f64>,
    /// INFO replication calls on the master that failed (no sample then).
    pub failed_samples: u64,
    /// The last such failure.
    pub last_error: Option<String>,
    /// One entry per replica, in topology order.
    pub replicas: Vec<ReplicaLag>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaLag {
    /// `replica1`, ...
    pub name: String,
    /// host:port.
    pub address: String,
    /// Samples in time order (thinned evenly past 8192 of them).
    pub samples: Thinned<LagSample>,
    /// Largest lag seen, bytes (over every sample, thinned or not).
    pub max_lag_bytes: u64,
    /// When it was seen, ms from the first sample.
    pub max_lag_at_ms: f64,
    /// From the end of the load to the first sample where the master saw it
    /// caught up (lag 0), ms; null if it did not catch up within the bound.
    pub catch_up_ms: Option<f64>,
    /// Samples in which the master did not list it as an online replica.
    pub unlisted_samples: u64,
}

/// One sample of one replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    /// ms from the first sample (when INFO was sent).
    pub t_ms: f64,
    /// `master_repl_offset` minus the replica's acknowledged `offset`, bytes.
    pub lag_bytes: u64,
}
