//! `perf --read-from replicas`: the measured GETs go to the replicas, one
//! engine instance per replica with its share of -n, -c and --rate (see
//! `loadgen::multi::split`), each replica's results kept apart for the
//! per-replica table and merged for the total.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::latency::LatencyUs;
use crate::loadgen::engine::{EngineConfig, EngineResult};
use crate::loadgen::multi;
use crate::report::Check;
use crate::run::Ctx;
use crate::survey::Survey;

/// A replica the rounds read from.
#[derive(Debug, Clone)]
pub struct Reader {
    pub name: String,
    pub address: String,
    pub addr: SocketAddr,
}

/// One replica's reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaReads {
    pub name: String,
    pub address: String,
    /// Its share of -c.
    pub connections: usize,
    /// GETs it answered in the median round.
    pub requests: u64,
    /// Its throughput in the median round, ops/s.
    pub ops_per_sec: f64,
    /// Its per-request latency in the median round.
    pub latency: LatencyUs,
    /// GETs it answered, all rounds.
    pub reads_all_rounds: u64,
    /// GETs that found no key on it (not there yet), all rounds.
    pub misses_all_rounds: u64,
}

/// The replicas that answered, resolved; checked before anything is written.
pub async fn readers(ctx: &Ctx, survey: &Survey) -> Result<Vec<Reader>> {
    if ctx.topology.master.tls() {
        bail!("--read-from replicas needs the plain TCP engine; a rediss:// topology takes the TLS path");
    }
    let mut out = Vec::new();
    for st in survey.replicas() {
        if st.info.is_none() {
            continue;
        }
        let node = &st.node;
        let addr = tokio::net::lookup_host((node.host(), node.port()))
            .await
            .with_context(|| format!("resolving {}", node.label()))?
            .next()
            .with_context(|| format!("{}: the host name resolves to no address", node.label()))?;
        out.push(Reader {
            name: node.name.clone(),
            address: node.addr(),
            addr,
        });
    }
    if out.is_empty() {
        bail!("--read-from replicas needs replicas to read from; none of this topology's replicas answered");
    }
    Ok(out)
}

/// A round's engine instances: `base` shared out among the replicas, each
/// pointed at its replica (READONLY first on a cluster's replica).
pub fn instances(
    base: &EngineConfig,
    readers: &[Reader],
    cluster: bool,
) -> Result<Vec<EngineConfig>> {
    let mut parts = multi::split(base, readers.len())?;
    // split leaves out only trailing instances with no requests (-n below
    // the replicas, refused before): instance i is replica i.
    for (c, r) in parts.iter_mut().zip(readers) {
        c.addr = r.addr;
        c.readonly = cluster;
    }
    Ok(parts)
}

/// Each replica's reads: the median round's figures, misses over all rounds.
/// `rounds[r][i]` is replica i's result in round r.
pub fn per_replica(
    readers: &[Reader],
    rounds: &[Vec<EngineResult>],
    median: usize,
    connections: usize,
) -> Vec<ReplicaReads> {
    let n = readers.len();
    readers
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let m = rounds.get(median)?.get(i)?;
            let all = rounds.iter().filter_map(|round| round.get(i));
            let (reads, misses) = all.fold((0, 0), |(a, b), x| (a + x.completed, b + x.misses));
            Some(ReplicaReads {
                name: r.name.clone(),
                address: r.address.clone(),
                connections: multi::share(connections as u64, n, i) as usize,
                requests: m.completed,
                ops_per_sec: (m.ops_per_sec() * 100.0).round() / 100.0,
                latency: LatencyUs::from_ns(&m.latency_ns),
                reads_all_rounds: reads,
                misses_all_rounds: misses,
            })
        })
        .collect()
}

/// `replicaN.reads`: every GET found its key; a miss means the replica's
/// data lagged the master's when it was read.
pub fn checks(reads: &[ReplicaReads]) -> Vec<Check> {
    reads
        .iter()
        .map(|r| {
            let name = format!("{}.reads", r.name);
            if r.misses_all_rounds > 0 {
                Check::warn(
                    name,
                    format!(
                        "{} missed {} of {} reads: its data lags the master",
                        r.name, r.misses_all_rounds, r.reads_all_rounds
                    ),
                )
            } else {
                Check::pass(
                    name,
                    format!(
                        "{}, none missed",
                        crate::report::plural(r.reads_all_rounds, "read")
                    ),
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(completed: u64, misses: u64) -> EngineResult {
        let mut h = crate::latency::histogram();
        for _ in 0..completed {
            h.record(1_000).unwrap();
        }
        EngineResult {
            latency_ns: h,
            completed,
            misses,
            elapsed_ns: 1_000_000,
            ..multi::merge(Vec::new())
        }
    }

    #[test]
    fn each_replica_its_median_round_and_its_misses_over_all_rounds() {
        let readers: Vec<Reader> = ["replica1", "replica2"]
            .iter()
            .map(|n| Reader {
                name: n.to_string(),
                address: "127.0.0.1:1".into(),
                addr: ([127, 0, 0, 1], 1).into(),
            })
            .collect();
        let rounds = vec![
            vec![result(10, 0), result(10, 2)],
            vec![result(20, 0), result(20, 1)],
        ];
        let reads = per_replica(&readers, &rounds, 1, 3);
        assert_eq!(reads[0].requests, 20);
        assert_eq!(reads[0].latency.count, 20);
        assert_eq!(reads[0].connections, 2);
        assert_eq!(reads[1].connections, 1);
        assert_eq!(
            (reads[1].reads_all_rounds, reads[1].misses_all_rounds),
            (30, 3)
        );
        let checks = checks(&reads);
        assert_eq!(checks[0].verdict, crate::report::Verdict::Pass);
        assert_eq!(checks[1].name, "replica2.reads");
        assert_eq!(checks[1].verdict, crate::report::Verdict::Warn);
        assert_eq!(
            checks[1].reason,
            "replica2 missed 3 of 30 reads: its data lags the master"
        );
    }
}
