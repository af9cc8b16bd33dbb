//! perf's merge of the reports of one load's clients (`perf --client K/N`)
//! into the report of the whole load (`redlab report --merge`, which reads
//! the files: `app::rerender`). Each round's histograms are added
//! (lossless: every report carries them in HdrHistogram's V2 encoding), its
//! per-second counts summed on the common clock, its throughput taken over
//! the union of the clients' windows, and every verdict computed again from
//! the merged figures. Reports of different plans are refused with what
//! differs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;

use super::details::{round2, Acked, CatchUp, Memory, PerfDetails, RawRound, Round};
use super::split::{rfc3339_ms, ClientRun};
use crate::latency::{decode_v2, LatencyUs};
pub use crate::probe::throughput::merged::{section, Merged, MergedClient};
use crate::report::{Check, Manifest, NodeInfo, Verdict};

/// What must be the same in every client's report for them to be one load.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub items: Vec<(&'static str, String)>,
}

impl Plan {
    /// The plan of a (shard's) perf details and the report's target.
    pub fn of(d: &PerfDetails, target: &str, shards: usize) -> Option<Plan> {
        let c = d.client.as_ref()?;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        Some(Plan {
            items: vec![
                ("target", target.to_string()),
                ("shards", shards.to_string()),
                ("workload", d.workload.clone()),
                ("mode", d.mode.as_str().into()),
                ("client path", d.client_path.as_str().into()),
                ("-P", d.pipeline.to_string()),
                (
                    "value size",
                    format!("{}-{} B", d.data_size_min_bytes, d.data_size_max_bytes),
                ),
                ("rounds", d.round_results.len().to_string()),
                (
                    "-n (whole load)",
                    opt(c.split.total_requests_per_round.map(|n| n.to_string())),
                ),
                (
                    "--duration",
                    opt(d.duration_per_round_ms.map(crate::report::took)),
                ),
                (
                    "--rate (whole load)",
                    opt(c.split.total_rate_ops_per_sec.map(|r| format!("{r}"))),
                ),
                (
                    "--warmup (whole load)",
                    c.split.total_warmup_requests.to_string(),
                ),
                (
                    "--keyspace (whole load)",
                    opt(c.split.total_keyspace.map(|k| k.to_string())),
                ),
                ("--key-ttl", opt(d.key_ttl_ms.map(crate::report::took))),
                ("clients (N)", c.split.of.to_string()),
                (
                    "--read-from",
                    if d.replica_reads.is_empty() {
                        "master"
                    } else {
                        "replicas"
                    }
                    .into(),
                ),
            ],
        })
    }

    /// What differs between two plans, `name: a in A, b in B`.
    pub fn differences(&self, other: &Plan, a: &str, b: &str) -> Vec<String> {
        self.items
            .iter()
            .zip(&other.items)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| format!("{} {} in {a}, {} {} in {b}", x.0, x.1, y.0, y.1))
            .collect()
    }
}

/// The master addresses a report loaded (its target), sorted.
pub fn target_of(nodes: &[NodeInfo]) -> String {
    let mut masters: Vec<&str> = nodes
        .iter()
        .filter(|n| n.expected_role == crate::topology::Role::Master)
        .map(|n| n.address.as_str())
        .collect();
    masters.sort();
    masters.dedup();
    masters.join(",")
}

/// The K/N a report's command line gave (a failed run's report has no
/// details to say it), or None.
pub fn share_in_args(args: &[String]) -> Option<(u32, u32)> {
    args.iter().enumerate().find_map(|(i, a)| {
        let v = match a.strip_prefix("--client=") {
            Some(v) => v,
            None if a == "--client" => args.get(i + 1)?,
            None => return None,
        };
        super::split::parse_client(v).ok()
    })
}

/// A round's figures over every client: histograms added, per-second
/// counts summed on the common clock (to the nearest second), throughput
/// over the union of the clients' windows.
pub struct MergedRound {
    pub round: Round,
    pub latency: Histogram<u64>,
    pub send_error: Option<Histogram<u64>>,
    pub wait_latency: Option<Histogram<u64>>,
}

fn add(into: &mut Option<Histogram<u64>>, h: Histogram<u64>) {
    match into {
        // Both grow as needed: adding never runs out of range.
        Some(a) => {
            let _ = a.add(&h);
        }
        None => *into = Some(h),
    }
}

fn decode_opt(text: &Option<String>, what: &str, who: &str) -> Result<Option<Histogram<u64>>> {
    text.as_deref()
        .map(|t| decode_v2(t).with_context(|| format!("{who}: its {what}")))
        .transpose()
}

/// Round `i` of every client (`who` names each for errors).
pub fn merge_round(clients: &[(&str, &PerfDetails)], i: usize) -> Result<MergedRound> {
    let mut latency = crate::latency::histogram();
    let (mut send_error, mut wait_latency) = (None, None);
    let (mut completed, mut missed) = (0, 0);
    let mut start = f64::INFINITY;
    let mut end = f64::NEG_INFINITY;
    let mut parts = Vec::new();
    for (who, d) in clients {
        let r = &d.round_results[i];
        let hdr = r.latency_hdr.as_deref().with_context(|| {
            format!(
                "{who}: round {} has no latency histogram (a report from before --merge)",
                i + 1
            )
        })?;
        let h = decode_v2(hdr).with_context(|| format!("{who}: round {}", i + 1))?;
        let _ = latency.add(&h);
        if let Some(h) = decode_opt(&r.send_error_hdr, "send-time error histogram", who)? {
            add(&mut send_error, h);
        }
        if let Some(h) = decode_opt(&r.wait_latency_hdr, "WAIT histogram", who)? {
            add(&mut wait_latency, h);
        }
        completed += r.completed;
        missed += r.missed_requests;
        let s = r
            .started_unix_ms
            .with_context(|| format!("{who}: round {} has no start time", i + 1))?;
        start = start.min(s);
        end = end.max(s + r.elapsed_ms);
        parts.push((s, &r.per_second_ops));
    }
    let mut per_second: Vec<u64> = Vec::new();
    for (s, secs) in parts {
        let offset = ((s - start) / 1e3).round().max(0.0) as usize;
        if offset + secs.len() > per_second.len() {
            per_second.resize(offset + secs.len(), 0);
        }
        for (j, n) in secs.iter().enumerate() {
            per_second[offset + j] += n;
        }
    }
    let elapsed_ms = (end - start).max(0.0);
    let ops = if elapsed_ms > 0.0 {
        completed as f64 * 1e3 / elapsed_ms
    } else {
        0.0
    };
    Ok(MergedRound {
        round: Round {
            ops_per_sec: round2(ops),
            elapsed_ms,
            completed,
            p99_us: LatencyUs::from_ns(&latency).p99_us,
            started_unix_ms: Some(start),
            per_second_ops: per_second,
            missed_requests: missed,
            latency_hdr: Some(crate::latency::encode_v2(&latency)),
            send_error_hdr: send_error.as_ref().map(crate::latency::encode_v2),
            wait_latency_hdr: wait_latency.as_ref().map(crate::latency::encode_v2),
        },
        latency,
        send_error,
        wait_latency,
    })
}

/// Every client's details of one load (a master's, or one shard's) as one.
pub fn merge_details(clients: &[(&str, &PerfDetails)]) -> Result<PerfDetails> {
    let Some((_, first)) = clients.first() else {
        bail!("nothing to merge");
    };
    let rounds = clients
        .iter()
        .map(|(_, d)| d.round_results.len())
        .min()
        .unwrap_or(0);
    if rounds == 0 {
        bail!("no client measured a round");
    }
    let merged: Vec<MergedRound> = (0..rounds)
        .map(|i| merge_round(clients, i))
        .collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..rounds).collect();
    order.sort_by(|a, b| {
        merged[*a]
            .round
            .ops_per_sec
            .total_cmp(&merged[*b].round.ops_per_sec)
    });
    let median = order[order.len() / 2];
    let m = &merged[median];
    let sum = |f: fn(&PerfDetails) -> u64| clients.iter().map(|(_, d)| f(d)).sum::<u64>();
    let mut errors = BTreeMap::new();
    for (_, d) in clients {
        for (k, n) in &d.errors {
            *errors.entry(k.clone()).or_insert(0) += n;
        }
    }
    let by_start = |earliest: bool| {
        clients
            .iter()
            .map(|(_, d)| *d)
            .min_by(|a, b| {
                let key = |d: &PerfDetails| {
                    d.client.as_ref().map_or(0.0, |c| {
                        if earliest {
                            c.started_unix_ms
                        } else {
                            -c.ended_unix_ms
                        }
                    })
                };
                key(a).total_cmp(&key(b))
            })
            .unwrap_or(*first)
    };
    let (earliest, latest) = (by_start(true), by_start(false));
    let ops: Vec<f64> = merged.iter().map(|r| r.round.ops_per_sec).collect();
    Ok(PerfDetails {
        mode: first.mode,
        workload: first.workload.clone(),
        client_path: first.client_path,
        // The clients' shares added: the whole load's (a shard's part of it on a cluster).
        requests_per_round: clients
            .iter()
            .map(|(_, d)| d.requests_per_round)
            .sum::<Option<u64>>(),
        duration_per_round_ms: first.duration_per_round_ms,
        pipeline: first.pipeline,
        connections: clients.iter().map(|(_, d)| d.connections).sum(),
        // Per client: the clients are said apart (`merged`).
        threads: first.threads,
        data_size_min_bytes: first.data_size_min_bytes,
        data_size_max_bytes: first.data_size_max_bytes,
        keyspace: clients.iter().map(|(_, d)| d.keyspace).sum::<Option<u64>>(),
        seed: first.seed,
        warmup_requests: sum(|d| d.warmup_requests),
        target_rate_ops_per_sec: clients
            .iter()
            .map(|(_, d)| d.target_rate_ops_per_sec)
            .sum::<Option<f64>>(),
        server: super::details::Server {
            redis_version: first.server.redis_version.clone(),
            maxmemory_bytes: first.server.maxmemory_bytes,
            maxmemory_policy: first.server.maxmemory_policy.clone(),
            persistence: first.server.persistence.clone(),
        },
        throughput_ops_per_sec: ops[median],
        throughput_min_ops_per_sec: ops.iter().copied().fold(f64::INFINITY, f64::min),
        throughput_max_ops_per_sec: ops.iter().copied().fold(0.0, f64::max),
        median_round: median,
        round_results: merged.iter().map(|r| r.round.clone()).collect(),
        latency: LatencyUs::from_ns(&m.latency),
        wait_latency: m.wait_latency.as_ref().map(LatencyUs::from_ns),
        scheduler_send_error: m.send_error.as_ref().map(LatencyUs::from_ns),
        missed_requests: sum(|d| d.missed_requests),
        wait_acked: merge_acked(clients),
        misses: sum(|d| d.misses),
        moved: sum(|d| d.moved),
        ask: sum(|d| d.ask),
        errors,
        master_moved: {
            let moved: Vec<String> = clients
                .iter()
                .filter_map(|(_, d)| d.master_moved.clone())
                .collect();
            (!moved.is_empty()).then(|| moved.join("; "))
        },
        per_second_ops: m.round.per_second_ops.clone(),
        latency_spectrum: crate::series::spectrum(&m.latency),
        // Slices keep percentiles, not histograms: they do not add up.
        per_second_latency: Vec::new(),
        per_100ms_latency: Vec::new(),
        // A client the memory guard stopped says so in the merged report too.
        stopped_early: {
            let stopped: Vec<String> = clients
                .iter()
                .filter_map(|(_, d)| d.stopped_early.clone())
                .collect();
            (!stopped.is_empty()).then(|| stopped.join("; "))
        },
        replica_lag: None,
        memory: Memory {
            used_memory_before_bytes: earliest.memory.used_memory_before_bytes,
            used_memory_after_bytes: latest.memory.used_memory_after_bytes,
            evicted_keys_before: earliest.memory.evicted_keys_before,
            evicted_keys_after: latest.memory.evicted_keys_after,
        },
        replicas: merge_catch_up(clients),
        resyncs: super::Resyncs {
            full: clients
                .iter()
                .map(|(_, d)| d.resyncs.full)
                .max()
                .unwrap_or(0),
            partial: clients
                .iter()
                .map(|(_, d)| d.resyncs.partial)
                .max()
                .unwrap_or(0),
            replicas_reconnected: {
                let mut all: Vec<String> = clients
                    .iter()
                    .flat_map(|(_, d)| d.resyncs.replicas_reconnected.clone())
                    .collect();
                all.sort();
                all.dedup();
                all
            },
        },
        replica_output_limit_bytes: first.replica_output_limit_bytes,
        load_ms: clients.iter().map(|(_, d)| d.load_ms).fold(0.0, f64::max),
        key_prefix: clients
            .iter()
            .map(|(_, d)| d.key_prefix.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        keys_kept: clients.iter().any(|(_, d)| d.keys_kept),
        key_ttl_ms: first.key_ttl_ms,
        keys_removed: sum(|d| d.keys_removed),
        baseline: None,
        replica_reads: Vec::new(),
        client: None,
        merged: None,
        raw_rounds: merged
            .iter()
            .map(|r| RawRound {
                latency_ns: r.latency.clone(),
                per_second: r.round.per_second_ops.clone(),
                elapsed_ns: (r.round.elapsed_ms * 1e6) as u64,
                completed: r.round.completed,
            })
            .collect(),
    })
}

/// WAIT acknowledgements over every client: the extremes, the mean weighted
/// by each client's requests.
fn merge_acked(clients: &[(&str, &PerfDetails)]) -> Option<Acked> {
    let all: Vec<(&Acked, u64)> = clients
        .iter()
        .filter_map(|(_, d)| {
            let done = d.round_results.iter().map(|r| r.completed).sum();
            d.wait_acked.as_ref().map(|a| (a, done))
        })
        .collect();
    let weight: u64 = all.iter().map(|(_, n)| n).sum();
    (!all.is_empty()).then(|| Acked {
        min: all.iter().map(|(a, _)| a.min).min().unwrap_or(0),
        max: all.iter().map(|(a, _)| a.max).max().unwrap_or(0),
        mean: all.iter().map(|(a, n)| a.mean * *n as f64).sum::<f64>() / weight.max(1) as f64,
    })
}

/// Each replica as the worst client saw it after its load: the largest lag
/// and catch-up time, a reconnection or an error from any.
fn merge_catch_up(clients: &[(&str, &PerfDetails)]) -> Vec<CatchUp> {
    let mut out: Vec<CatchUp> = Vec::new();
    for (who, d) in clients {
        for c in &d.replicas {
            let Some(m) = out.iter_mut().find(|m| m.name == c.name) else {
                out.push(CatchUp {
                    error: c.error.as_ref().map(|e| format!("{who}: {e}")),
                    ..c.clone()
                });
                continue;
            };
            m.offset_lag_bytes_after_load = m
                .offset_lag_bytes_after_load
                .max(c.offset_lag_bytes_after_load);
            m.catch_up_ms = match (m.catch_up_ms, c.catch_up_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            if m.error.is_none() {
                m.error = c.error.as_ref().map(|e| format!("{who}: {e}"));
            }
            m.reconnected |= c.reconnected;
        }
    }
    out
}

/// One client's report as the merge sees it: its share, its run, whether
/// it measured anything.
#[derive(Debug, Clone)]
pub struct Client {
    pub file: String,
    pub manifest: Manifest,
    pub share: Option<(u32, u32)>,
    pub verdict: Verdict,
    /// Why its figures are not in the merge (it failed or was interrupted).
    pub error: Option<String>,
    pub run: Option<ClientRun>,
    pub requests: u64,
}

/// The clients' account, and the `merge.clients` check: every share of
/// the load merged, each one's own run finished, started close together.
pub fn account(clients: &[Client], of: u32) -> (Merged, Check) {
    let starts: Vec<f64> = clients
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| c.run.as_ref().map(|r| r.started_unix_ms))
        .collect();
    let first = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let last = starts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let spread = if starts.is_empty() { 0.0 } else { last - first };
    let mut rows: Vec<MergedClient> = clients
        .iter()
        .map(|c| MergedClient {
            client: c.share.map_or("?".into(), |(k, n)| format!("{k}/{n}")),
            file: Some(c.file.clone()),
            host: Some(c.manifest.host.clone()),
            run_id: Some(c.manifest.run_id.clone()),
            started_at: c.run.as_ref().map(|r| r.started_at.clone()),
            started_after_first_ms: c
                .run
                .as_ref()
                .filter(|_| c.error.is_none())
                .map(|r| ((r.started_unix_ms - first) * 1e3).round() / 1e3),
            verdict: c.verdict,
            requests: c.requests,
            error: c.error.clone(),
        })
        .collect();
    let given: Vec<u32> = clients
        .iter()
        .filter_map(|c| c.share.map(|s| s.0))
        .collect();
    for k in (1..=of).filter(|k| !given.contains(k)) {
        rows.push(MergedClient {
            client: format!("{k}/{of}"),
            file: None,
            host: None,
            run_id: None,
            started_at: None,
            started_after_first_ms: None,
            verdict: Verdict::Fail,
            requests: 0,
            error: Some("no report given for this share".into()),
        });
    }
    rows.sort_by(|a, b| a.client.cmp(&b.client));
    let merged_n = clients.iter().filter(|c| c.error.is_none()).count();
    let missing: Vec<String> = rows
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("client {} {e}", r.client)))
        .collect();
    let spread_words = format!("started within {} of each other", fmt_ms(spread));
    let shortest = clients
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| c.run.as_ref().map(|r| r.ended_unix_ms - r.started_unix_ms))
        .fold(f64::INFINITY, f64::min);
    let check = if !missing.is_empty() {
        Check::fail(
            "merge.clients",
            format!(
                "{merged_n} of {of} clients merged: {}; the figures are not the whole load's",
                missing.join("; ")
            ),
        )
    } else if spread > 1000.0 || spread > 0.1 * shortest {
        Check::warn(
            "merge.clients",
            format!(
                "{of} of {of} clients merged, but they {spread_words}, more than 1 s or a tenth \
                 of a client's load: their loads overlapped only in part (give every client \
                 the same --start-at, with clocks in sync)"
            ),
        )
    } else {
        Check::pass(
            "merge.clients",
            format!("{of} of {of} clients merged, {spread_words}"),
        )
    };
    (
        Merged {
            of,
            clients_merged: merged_n,
            start_spread_ms: (spread * 1e3).round() / 1e3,
            clients: rows,
        },
        check,
    )
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1e3)
    } else {
        format!("{ms:.1} ms")
    }
}

/// The checks the clients' reports had that the merge does not compute
/// again (the replica count, cleanup, evictions, ...): one per name, the
/// worst verdict, saying which client where they differ.
pub fn carried_checks(clients: &[(String, Vec<Check>)], recomputed: &[Check]) -> Vec<Check> {
    let mut by_name: BTreeMap<String, Vec<(&str, &Check)>> = BTreeMap::new();
    let mut order = Vec::new();
    for (who, checks) in clients {
        for c in checks {
            if recomputed.iter().any(|r| r.name == c.name) {
                continue;
            }
            if !by_name.contains_key(&c.name) {
                order.push(c.name.clone());
            }
            by_name.entry(c.name.clone()).or_default().push((who, c));
        }
    }
    order
        .into_iter()
        .map(|name| {
            let all = &by_name[&name];
            let worst = all
                .iter()
                .max_by_key(|(_, c)| c.verdict)
                .expect("a name has a check");
            let alike = all.iter().all(|(_, c)| c.reason == worst.1.reason);
            let reason = if alike {
                worst.1.reason.clone()
            } else {
                format!("client {}: {}", worst.0, worst.1.reason)
            };
            Check::new(name, worst.1.verdict, reason)
        })
        .collect()
}

/// The merged manifest: the earliest client's start, every host and run.
pub fn manifest(clients: &[Client], files: &[&Path]) -> Manifest {
    let first = clients
        .iter()
        .filter_map(|c| c.run.as_ref())
        .map(|r| r.started_unix_ms)
        .fold(f64::INFINITY, f64::min);
    let last = clients
        .iter()
        .filter_map(|c| c.run.as_ref())
        .map(|r| r.ended_unix_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut hosts: Vec<&str> = clients.iter().map(|c| c.manifest.host.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    let mut args = vec!["redlab".to_string(), "report".into(), "--merge".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    Manifest {
        redlab_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: if first.is_finite() {
            rfc3339_ms(first)
        } else {
            clients
                .first()
                .map(|c| c.manifest.started_at.clone())
                .unwrap_or_default()
        },
        duration_ms: if first.is_finite() && last.is_finite() {
            ((last - first) * 1e3).round() / 1e3
        } else {
            0.0
        },
        host: hosts.join(","),
        args,
        run_id: clients
            .iter()
            .map(|c| c.manifest.run_id.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        timings: Vec::new(),
    }
}
