//! perf on a Redis Cluster: one load per shard master, all at once, each
//! with the shard's hash tag in its keys (every key of shard k hashes to
//! shard k, so no request is redirected on a stable cluster). `-n`, `-c`,
//! `--rate` and `--warmup` are totals, shared out among the shards (as
//! redis-benchmark --cluster counts them); `--threads N` splits each
//! shard's share again into N engine instances. Each shard runs as a lone
//! master's perf (its own ctx, ledger and cleanup); the report adds the
//! total over the cluster, round by round: every shard's requests over the
//! slowest shard's time, and the shards' histograms merged exactly.
//!
//! MOVED and ASK replies are counted per shard and in the total
//! (`perf.redirects`); the shard's perf follows a MOVED itself (see
//! `perf::measure`).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use super::details::{PerfDetails, Round};
use super::Options;
use crate::discover::cluster::Cluster;
use crate::latency::{fmt_us, LatencyUs};
use crate::loadgen::multi::share;
use crate::loadgen::pool;
use crate::report::{Check, Details, Figure, Report, Section};
use crate::run::Ctx;
use crate::sharded::Sharded;
use crate::ui::progress::Progress;

/// The load over the whole cluster.
#[derive(Debug, Serialize, Deserialize)]
pub struct PerfTotal {
    /// Shard masters loaded at once.
    pub shards: usize,
    /// Engine instances per shard master (--threads, or
    /// --threads-per-shard): each shard's load split this many ways.
    pub threads_per_shard: usize,
    /// Engine threads that ran the load: --threads N runs N threads in all,
    /// each driving connections to every shard; --threads-per-shard M runs
    /// shards x M. Counted as they started (the most at once).
    #[serde(default)]
    pub engine_threads: usize,
    /// Connections in all (-c), shared out among the shards.
    pub connections: usize,
    /// Requests per round in all (-n; null with --duration).
    pub requests_per_round: Option<u64>,
    /// Throughput of the median round over the cluster: every shard's
    /// requests of that round over the slowest shard's round time, ops/s.
    pub throughput_ops_per_sec: f64,
    /// Slowest round, ops/s.
    pub throughput_min_ops_per_sec: f64,
    /// Fastest round, ops/s.
    pub throughput_max_ops_per_sec: f64,
    /// Index of the median round.
    pub median_round: usize,
    /// Every round, all shards together.
    pub round_results: Vec<Round>,
    /// Per-request latency of the median round, every shard's requests (the
    /// shards' histograms merged).
    pub latency: LatencyUs,
    /// Error replies by kind, all shards and rounds.
    pub errors: BTreeMap<String, u64>,
    /// MOVED replies, all shards and rounds (a stable cluster has none).
    pub moved: u64,
    /// ASK replies, all shards and rounds.
    pub ask: u64,
    /// Completed requests in each second of the median round, all shards.
    pub per_second_ops: Vec<u64>,
}

/// perf's report on a cluster: the total, and each shard's own perf report.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterPerfDetails {
    /// The whole cluster's figures; null when no shard measured anything.
    pub total: Option<PerfTotal>,
    /// Each shard's load, as a lone master's perf report.
    #[serde(flatten)]
    pub sharded: Sharded<PerfDetails>,
    /// `redlab report --merge`: the clients' reports this one adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<super::merge::Merged>,
}

/// Shard `k` of `n`'s share of the options: requests, connections, rate and
/// warm-up shared out (the first `total % n` shards get one more).
pub fn share_of(opts: &Options, k: usize, n: usize) -> Options {
    let mut o = opts.clone();
    o.requests = share(opts.requests, n, k).max(1);
    o.connections = (share(opts.connections as u64, n, k) as usize).max(1);
    o.rate = opts.rate.map(|r| r / n as f64);
    o.warmup = share(opts.warmup, n, k);
    // One file for the whole cluster, of the total (written below).
    o.hdr_out = None;
    o
}

/// perf over every shard of `cluster` (`shards[k]` is shard k's context).
pub async fn run(
    opts: Options,
    cluster: &Cluster,
    shards: &[Ctx],
    progress: Progress,
) -> Result<Report<ClusterPerfDetails>> {
    let n = shards.len();
    if opts.connections < n * opts.threads.max(1) {
        bail!(
            "-c {} is less than one connection per shard and thread ({n} shards x --threads {}): \
             on a cluster -c counts connections in all, shared out among the shard masters",
            opts.connections,
            opts.threads
        );
    }
    if opts.duration.is_none() && opts.requests < n as u64 {
        bail!("-n {} is less than one request per shard ({n} shards): -n is a total on a cluster, shared out among the shard masters", opts.requests);
    }
    if let Some(r) = opts.rate.filter(|r| *r < n as f64) {
        bail!("--rate {r} is below 1 request per second per shard ({n} shards): --rate is a total on a cluster");
    }
    if opts.read_from == super::ReadFrom::Replicas {
        // Each shard reads from its own replicas, with its share of -c.
        for (k, ctx) in shards.iter().enumerate() {
            let name = ctx.shard.as_ref().map_or("a shard", |s| s.name.as_str());
            super::refuse_replica_reads(&share_of(&opts, k, n), ctx.topology.replicas.len())
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
    }
    // The options as a whole are checked once (one error, not one per shard).
    let plan = super::Config::from_options(&opts, shards[0].topology.replicas.len())?.plan();
    let (mode, threads) = if opts.threads_per_shard {
        (pool::Threads::PerShard, n * opts.threads)
    } else {
        (pool::Threads::Total, opts.threads)
    };
    shards[0].say.line(&format!(
        "{plan}, on {n} shard masters at once: -n, -c and --rate are totals, shared out among \
         them (-c {} in all), {} in all{}",
        opts.connections,
        crate::report::plural(threads as u64, "engine thread"),
        match mode {
            pool::Threads::Total => " (each drives every shard's connections)",
            pool::Threads::PerShard => " (one shard each)",
        }
    ));
    let spinner = progress.spinner(format!("perf on {n} shards"));
    // The shards share their engine threads (`loadgen::pool`): each shard's
    // phases start together, lane i of every shard on thread i.
    let (engines, seats) = pool::Pool::new(mode, n);
    let results = join_all(shards.iter().zip(seats).enumerate().map(
        |(k, (ctx, (seat, leave)))| {
            let mut o = share_of(&opts, k, n);
            o.pool = Some(seat);
            async move {
                // Out of the pool when this shard's perf is over.
                let _leave = leave;
                super::run(o, ctx).await
            }
        },
    ))
    .await;
    spinner.finish();
    let merged = crate::sharded::merge("perf", cluster, shards, None, results)?;
    let details: Vec<&PerfDetails> = merged
        .details
        .shards
        .iter()
        .filter_map(|s| s.details.as_ref())
        .collect();
    let mut total = total_of(&opts, &details, n);
    if let Some((t, _)) = total.as_mut() {
        t.engine_threads = engines.threads_run();
    }
    if let (Some(path), Some((_, h))) = (&opts.hdr_out, &total) {
        crate::report::write_file(path, &crate::latency::hgrm_ms(h))?;
    }
    let total = total.map(|(t, _)| t);
    let mut checks = total.as_ref().map(total_checks).unwrap_or_default();
    checks.extend(merged.checks);
    Ok(Report::new(
        "perf",
        merged.manifest,
        merged.nodes,
        checks,
        ClusterPerfDetails {
            total,
            sharded: merged.details,
            merged: None,
        },
    ))
}

/// The total over the shards, round by round, and the median round's
/// merged histogram; None when no shard measured a round.
pub(crate) fn total_of(
    opts: &Options,
    shards: &[&PerfDetails],
    n: usize,
) -> Option<(PerfTotal, hdrhistogram::Histogram<u64>)> {
    let rounds = shards.iter().map(|d| d.raw_rounds.len()).min()?;
    if rounds == 0 {
        return None;
    }
    let mut merged = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let mut h = crate::latency::histogram();
        let mut per_second: Vec<u64> = Vec::new();
        let (mut completed, mut elapsed_ns) = (0, 0);
        for d in shards {
            let raw = &d.raw_rounds[r];
            // Both grow as needed: adding never runs out of range.
            let _ = h.add(&raw.latency_ns);
            completed += raw.completed;
            elapsed_ns = elapsed_ns.max(raw.elapsed_ns);
            if raw.per_second.len() > per_second.len() {
                per_second.resize(raw.per_second.len(), 0);
            }
            for (a, b) in per_second.iter_mut().zip(&raw.per_second) {
                *a += b;
            }
        }
        let ops = completed as f64 * 1e9 / elapsed_ns.max(1) as f64;
        merged.push((ops, completed, elapsed_ns, h, per_second));
    }
    let mut order: Vec<usize> = (0..rounds).collect();
    order.sort_by(|a, b| merged[*a].0.total_cmp(&merged[*b].0));
    let median = order[order.len() / 2];
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let mut errors = BTreeMap::new();
    for d in shards {
        for (k, v) in &d.errors {
            *errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    let m = &merged[median];
    let total = PerfTotal {
        shards: n,
        threads_per_shard: opts.threads,
        engine_threads: 0,
        connections: opts.connections,
        requests_per_round: opts.duration.is_none().then_some(opts.requests),
        throughput_ops_per_sec: round2(m.0),
        throughput_min_ops_per_sec: round2(
            merged.iter().map(|r| r.0).fold(f64::INFINITY, f64::min),
        ),
        throughput_max_ops_per_sec: round2(merged.iter().map(|r| r.0).fold(0.0, f64::max)),
        median_round: median,
        round_results: merged
            .iter()
            .map(|(ops, completed, elapsed_ns, h, _)| Round {
                ops_per_sec: round2(*ops),
                elapsed_ms: *elapsed_ns as f64 / 1e6,
                completed: *completed,
                p99_us: LatencyUs::from_ns(h).p99_us,
                // Each shard's rounds carry their own histograms and clock.
                started_unix_ms: None,
                per_second_ops: Vec::new(),
                missed_requests: 0,
                latency_hdr: None,
                send_error_hdr: None,
                wait_latency_hdr: None,
            })
            .collect(),
        latency: LatencyUs::from_ns(&m.3),
        moved: shards.iter().map(|d| d.moved).sum(),
        ask: shards.iter().map(|d| d.ask).sum(),
        errors,
        per_second_ops: m.4.clone(),
    };
    Some((total, merged.swap_remove(median).3))
}

/// `perf.requests` and `perf.redirects` over the cluster.
pub(crate) fn total_checks(t: &PerfTotal) -> Vec<Check> {
    let done: u64 = t.round_results.iter().map(|r| r.completed).sum();
    let summary = format!(
        "{} on {} shards in {}, median {:.0} ops/s over the cluster, p99 {}",
        crate::report::plural(done, "request"),
        t.shards,
        crate::report::plural(t.round_results.len() as u64, "round"),
        t.throughput_ops_per_sec,
        fmt_us(t.latency.p99_us)
    );
    let mut out = vec![super::requests_check(
        done,
        t.errors.values().sum(),
        summary,
    )];
    out.push(if t.moved + t.ask == 0 {
        Check::pass(
            "perf.redirects",
            "no MOVED or ASK reply: every key went to the master that serves its slot",
        )
    } else {
        Check::warn(
            "perf.redirects",
            format!(
                "{} MOVED and {} ASK replies: the slot map changed during the run (a failover \
                 or a resharding); each redirected request was sent again within its round to \
                 the node named (after ASKING for ASK) and counted once, and a shard that saw \
                 MOVED sends its next rounds to the master that serves its slot now",
                t.moved, t.ask
            ),
        )
    });
    out
}

impl Details for ClusterPerfDetails {
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new(
            "Cluster throughput",
            &[
                "shard", "master", "requests", "c", "ops/s", "p50", "p99", "max", "MOVED", "ASK",
            ],
        );
        let requests = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
        for r in &self.sharded.shards {
            let Some(d) = &r.details else {
                s.row(vec![
                    r.shard.clone(),
                    r.master.clone(),
                    "-".into(),
                    "-".into(),
                    "not run".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                continue;
            };
            s.row(vec![
                r.shard.clone(),
                r.master.clone(),
                requests(d.requests_per_round),
                d.connections.to_string(),
                format!("{:.0}", d.throughput_ops_per_sec),
                fmt_us(d.latency.p50_us),
                fmt_us(d.latency.p99_us),
                fmt_us(d.latency.max_us),
                d.moved.to_string(),
                d.ask.to_string(),
            ]);
        }
        if let Some(t) = &self.total {
            s.row(vec![
                "total".into(),
                format!("{} shards", t.shards),
                requests(t.requests_per_round),
                t.connections.to_string(),
                format!("{:.0}", t.throughput_ops_per_sec),
                fmt_us(t.latency.p50_us),
                fmt_us(t.latency.p99_us),
                fmt_us(t.latency.max_us),
                t.moved.to_string(),
                t.ask.to_string(),
            ]);
            s.notes.push(format!(
                "-n, -c and --rate are totals, shared out among the shard masters; {}; \
                 requests and ops/s per round (the median round); the total's ops/s is \
                 every shard's requests over the slowest shard's time, its latency every \
                 shard's histogram merged; rounds {:.0}..{:.0} ops/s",
                match t.engine_threads {
                    // A merged (or older) report: its clients' threads are not added up.
                    0 => format!(
                        "{} per shard",
                        crate::report::plural(t.threads_per_shard as u64, "engine instance")
                    ),
                    n => format!(
                        "{} ran the load",
                        crate::report::plural(n as u64, "engine thread")
                    ),
                },
                t.throughput_min_ops_per_sec,
                t.throughput_max_ops_per_sec
            ));
        }
        let mut out = vec![s];
        out.extend(self.sharded.sections());
        out.extend(self.merged.as_ref().map(super::merge::section));
        out
    }

    fn figures(&self) -> Vec<Figure> {
        self.sharded.figures()
    }

    fn refused(&self) -> Option<String> {
        self.sharded.refused()
    }

    fn interrupted(&self) -> bool {
        self.sharded.interrupted()
    }
}

#[cfg(test)]
mod tests {
    use super::super::details::RawRound;
    use super::*;

    /// A shard's perf details (a saved report's) with these rounds:
    /// (requests, latency ns of each, elapsed ns, per-second counts).
    fn shard(rounds: &[(u64, u64, u64, Vec<u64>)], moved: u64) -> PerfDetails {
        let saved: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/golden/reports/perf.json")).unwrap();
        let mut d: PerfDetails = serde_json::from_value(saved["details"].clone()).unwrap();
        d.moved = moved;
        d.raw_rounds = rounds
            .iter()
            .map(|(n, ns, elapsed_ns, secs)| {
                let mut h = crate::latency::histogram();
                crate::latency::record_n(&mut h, *ns, *n);
                RawRound {
                    latency_ns: h,
                    per_second: secs.clone(),
                    elapsed_ns: *elapsed_ns,
                    completed: *n,
                }
            })
            .collect();
        d
    }

    #[test]
    fn the_total_adds_the_shards_round_by_round() {
        let a = shard(
            &[
                (100, 1_000, 1_000_000, vec![100]),
                (100, 1_000, 500_000, vec![100]),
            ],
            3,
        );
        let b = shard(
            &[
                (200, 9_000, 2_000_000, vec![150, 50]),
                (200, 9_000, 1_000_000, vec![200]),
            ],
            0,
        );
        let opts = Options {
            requests: 300,
            connections: 4,
            ..Options::default()
        };
        let (t, h) = total_of(&opts, &[&a, &b], 2).unwrap();
        // Every shard's requests over the slowest shard's time.
        assert_eq!(t.round_results[0].completed, 300);
        assert_eq!(t.round_results[0].elapsed_ms, 2.0);
        assert_eq!(t.round_results[0].ops_per_sec, 150_000.0);
        assert_eq!(t.round_results[1].ops_per_sec, 300_000.0);
        // Median of two rounds: the faster (index len / 2 in order).
        assert_eq!(t.median_round, 1);
        // The histograms merged: every request of the round counted.
        assert_eq!(h.len(), 300);
        assert_eq!(t.latency.count, 300);
        assert!(t.latency.p99_us > 8.0, "{:?}", t.latency);
        assert_eq!(t.per_second_ops, vec![300]);
        assert_eq!((t.moved, t.ask), (3, 0));
        assert_eq!(t.requests_per_round, Some(300));
        let checks = total_checks(&t);
        assert_eq!(checks[1].name, "perf.redirects");
        assert_eq!(checks[1].verdict, crate::report::Verdict::Warn);
        // No round measured on some shard: no total.
        let none = shard(&[], 0);
        assert!(total_of(&opts, &[&a, &none], 2).is_none());
    }

    #[test]
    fn the_shares_add_up_to_the_totals() {
        let opts = Options {
            requests: 1_000_000,
            connections: 50,
            rate: Some(3000.0),
            warmup: 1000,
            ..Options::default()
        };
        let parts: Vec<Options> = (0..3).map(|k| share_of(&opts, k, 3)).collect();
        assert_eq!(parts.iter().map(|o| o.requests).sum::<u64>(), 1_000_000);
        assert_eq!(parts.iter().map(|o| o.connections).sum::<usize>(), 50);
        assert_eq!(parts.iter().map(|o| o.warmup).sum::<u64>(), 1000);
        assert_eq!(parts[0].rate, Some(1000.0));
        assert_eq!((parts[0].connections, parts[2].connections), (17, 16));
    }
}
