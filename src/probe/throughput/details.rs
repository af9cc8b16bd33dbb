//! The perf report: what ran, what it measured, and the human tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::baseline::Comparison;
use super::{latency_of, Config};
use crate::client::Info;
use crate::latency::{fmt_us, LatencyUs};
use crate::loadgen::engine::{EngineResult, Stop};
use crate::report::{Details, Section};
use crate::survey::Master;

/// How requests are sent: each batch after the previous one's answer, or
/// on a schedule (--rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoopMode {
    ClosedLoop,
    OpenLoop,
}

impl LoopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LoopMode::ClosedLoop => "closed-loop",
            LoopMode::OpenLoop => "open-loop",
        }
    }
}

/// Which client sent the load: redlab's engine, or the redis crate over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientPath {
    Engine,
    Tls,
}

impl ClientPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientPath::Engine => "engine",
            ClientPath::Tls => "tls",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PerfDetails {
    /// `closed-loop` (a batch goes out when the previous one is answered) or
    /// `open-loop` (--rate: requests scheduled at fixed intervals, latency
    /// measured from each request's intended send time).
    pub mode: LoopMode,
    /// set, get, mixed S:G or set-wait.
    pub workload: String,
    /// `engine` (hand-written RESP over TCP, per-reply latency) or `tls` (the
    /// redis crate over TLS, closed loop, each request timed with its batch).
    pub client_path: ClientPath,
    /// Requests per round (null with --duration).
    pub requests_per_round: Option<u64>,
    /// Length of a round in ms (null with -n).
    pub duration_per_round_ms: Option<f64>,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Parallel connections, all threads together.
    pub connections: usize,
    /// Engine threads (--threads), each with its own connections and its
    /// share of the requests; their histograms merged exactly.
    #[serde(default = "one")]
    pub threads: usize,
    /// Smallest value size, bytes.
    pub data_size_min_bytes: usize,
    /// Largest value size, bytes.
    pub data_size_max_bytes: usize,
    /// Random keys among this many (null: one distinct key per request).
    pub keyspace: Option<u64>,
    /// Seed of keys and sizes.
    pub seed: u64,
    /// Warm-up requests before the rounds.
    pub warmup_requests: u64,
    /// --rate, ops/s (open loop only).
    pub target_rate_ops_per_sec: Option<f64>,
    /// The master as the load found it.
    pub server: Server,
    /// Throughput of the median round, ops/s.
    pub throughput_ops_per_sec: f64,
    /// Slowest round, ops/s.
    pub throughput_min_ops_per_sec: f64,
    /// Fastest round, ops/s.
    pub throughput_max_ops_per_sec: f64,
    /// Index of the median round in `round_results`.
    pub median_round: usize,
    /// Every measured round.
    pub round_results: Vec<Round>,
    /// Per-request latency of the median round: from the write of its batch
    /// (or its intended send time, open loop) to the read of its reply.
    pub latency: LatencyUs,
    /// set-wait: latency of each WAIT reply.
    pub wait_latency: Option<LatencyUs>,
    /// Open loop, median round: the scheduler's own send-time error, µs, per
    /// request (actual minus intended send time; for a request that waited
    /// on a full in-flight window, minus the moment it had room). Near zero
    /// when the client keeps up; high means the client, not the server, is
    /// the bottleneck. Null in closed loop.
    pub scheduler_send_error: Option<LatencyUs>,
    /// Open loop, all rounds: requests due before a round ended that were
    /// never sent (the client or the server could not keep the rate).
    #[serde(default)]
    pub missed_requests: u64,
    /// set-wait: replicas that acknowledged, over all WAITs.
    pub wait_acked: Option<Acked>,
    /// Error replies by kind (first word: OOM, READONLY, ...), all rounds.
    pub errors: BTreeMap<String, u64>,
    /// GETs that found no key, all rounds.
    pub misses: u64,
    /// MOVED replies, all rounds (on a cluster: the slot moved; a stable
    /// cluster sends none).
    #[serde(default)]
    pub moved: u64,
    /// ASK replies, all rounds (a slot being migrated).
    #[serde(default)]
    pub ask: u64,
    /// The master moved during the run (`old -> new`, after MOVED replies):
    /// later rounds went to the new one. Null: it did not.
    #[serde(default)]
    pub master_moved: Option<String>,
    /// Why the memory guard stopped the load before it was done (the
    /// master's used_memory reached the limit of its room). Absent: it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// Completed requests in each second of the median round.
    pub per_second_ops: Vec<u64>,
    /// Latency percentile spectrum of the median round (the .hgrm points), µs.
    #[serde(default)]
    pub latency_spectrum: Vec<crate::series::PercentilePoint>,
    /// Latency of the replies read in each second of the median round (empty over TLS).
    #[serde(default)]
    pub per_second_latency: Vec<crate::series::LatencySlice>,
    /// The same per 100 ms (empty over TLS, or when the round outlasted 5 minutes).
    #[serde(default)]
    pub per_100ms_latency: Vec<crate::series::LatencySlice>,
    /// Each replica's offset lag sampled during the median round (null: not sampled).
    #[serde(default)]
    pub replica_lag: Option<crate::series::lag::LagSeries>,
    /// Memory and eviction before and after the load.
    pub memory: Memory,
    /// Each replica right after the load.
    pub replicas: Vec<CatchUp>,
    /// Resyncs while redlab wrote: a load that broke replication fails.
    #[serde(default)]
    pub resyncs: super::Resyncs,
    /// The replicas' output-buffer hard limit on the master, bytes (0: none;
    /// null where CONFIG is not allowed).
    pub replica_output_limit_bytes: Option<u64>,
    /// Wall time of prefill, warm-up and rounds, ms.
    pub load_ms: f64,
    /// Keys are `<key_prefix><n>`.
    pub key_prefix: String,
    /// --keep-keys: the measured keys were left in place.
    pub keys_kept: bool,
    /// The TTL every key was written with (--key-ttl), ms; null: no TTL.
    #[serde(default)]
    pub key_ttl_ms: Option<f64>,
    /// Keys redlab removed after the run.
    pub keys_removed: u64,
    /// --baseline comparison.
    pub baseline: Option<Comparison>,
    /// --read-from replicas: each replica's reads (empty: the master took
    /// every request). The merged total is `latency` and `round_results`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_reads: Vec<super::reads::ReplicaReads>,
    /// Which share of a split load this run was (--client K/N; 1/1 without
    /// it), --start-at, and the measured rounds' window on the wall clock.
    /// Null in a merged report (see `merged`) and in reports before it.
    #[serde(default)]
    pub client: Option<super::split::ClientRun>,
    /// `redlab report --merge`: the clients' reports this one adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<super::merged::Merged>,
    /// Each round's whole latency histogram and per-second counts, for a
    /// cluster's total (merged over shards); not saved.
    #[serde(skip)]
    pub raw_rounds: Vec<RawRound>,
}

/// A round's merged histogram and per-second completions (in memory only).
#[derive(Debug, Clone)]
pub struct RawRound {
    pub latency_ns: hdrhistogram::Histogram<u64>,
    pub per_second: Vec<u64>,
    pub elapsed_ns: u64,
    pub completed: u64,
}

fn one() -> usize {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Server {
    pub redis_version: String,
    /// 0 = no limit.
    pub maxmemory_bytes: u64,
    pub maxmemory_policy: String,
    /// rdb, aof, rdb+aof or none (null where CONFIG is not allowed).
    pub persistence: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    pub ops_per_sec: f64,
    pub elapsed_ms: f64,
    pub completed: u64,
    pub p99_us: f64,
    /// Start of the round, Unix time in ms (the common clock a merge of
    /// clients' reports aligns their rounds on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<f64>,
    /// Completed requests in each second of the round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_second_ops: Vec<u64>,
    /// Open loop: requests due before the round ended that were never sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed_requests: u64,
    /// The round's whole per-request latency histogram (ns), in
    /// HdrHistogram's compressed V2 encoding, base64: what a merge adds up
    /// without losing precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hdr: Option<String>,
    /// Open loop: the scheduler's send-time error histogram (ns), same encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_error_hdr: Option<String>,
    /// set-wait: the WAIT latency histogram (ns), same encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_latency_hdr: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Round {
    /// A round's figures, with its histograms for a later merge.
    pub fn of(r: &EngineResult, started_unix_ms: Option<f64>) -> Round {
        use crate::latency::encode_v2;
        Round {
            ops_per_sec: round2(r.ops_per_sec()),
            elapsed_ms: r.elapsed_ns as f64 / 1e6,
            completed: r.completed,
            // The one figure a round shows: not `latency_of`, whose mean walks
            // the whole histogram again (~7 % of a short run's instructions).
            p99_us: crate::latency::p99_us(&r.latency_ns),
            started_unix_ms,
            per_second_ops: r.per_second.clone(),
            missed_requests: r.missed,
            latency_hdr: Some(encode_v2(&r.latency_ns)),
            send_error_hdr: r.send_error_ns.as_ref().map(encode_v2),
            wait_latency_hdr: r.wait_latency_ns.as_ref().map(encode_v2),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Acked {
    pub min: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Memory {
    pub used_memory_before_bytes: u64,
    pub used_memory_after_bytes: u64,
    pub evicted_keys_before: u64,
    pub evicted_keys_after: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatchUp {
    pub name: String,
    pub address: String,
    /// Master offset minus the replica's offset right after the load, bytes.
    pub offset_lag_bytes_after_load: Option<u64>,
    /// Time from the end of the load until it reached the master's offset, ms.
    pub catch_up_ms: Option<f64>,
    /// Why it could not be measured or did not catch up.
    pub error: Option<String>,
    /// Its link to the master was re-established during the load (it resynced).
    #[serde(default)]
    pub reconnected: bool,
}

/// Everything a run measured, for `build`.
pub struct Measured<'a> {
    pub cfg: &'a Config,
    pub master: &'a Master<'a>,
    pub results: &'a [EngineResult],
    pub median: usize,
    pub before: &'a Info,
    pub after: &'a Info,
    pub replicas: Vec<CatchUp>,
    pub resyncs: super::Resyncs,
    pub output_limit: Option<u64>,
    pub prefix: &'a str,
    pub keys_removed: u64,
    pub load_ms: f64,
    /// `figures(results, median, ..)`.
    pub figures: Figures,
}

/// What a run's histograms give the report: each round's summary and
/// encoding, the median round's percentiles and spectrum. CPU work only (no
/// server), so a run computes it while its last round trips are in flight.
pub struct Figures {
    pub rounds: Vec<Round>,
    pub latency: LatencyUs,
    pub wait_latency: Option<LatencyUs>,
    pub scheduler_send_error: Option<LatencyUs>,
    pub spectrum: Vec<crate::series::PercentilePoint>,
}

pub fn figures(results: &[EngineResult], median: usize, round_starts_ms: &[f64]) -> Figures {
    let m = &results[median];
    Figures {
        rounds: results
            .iter()
            .enumerate()
            .map(|(i, r)| Round::of(r, round_starts_ms.get(i).copied()))
            .collect(),
        latency: latency_of(m),
        wait_latency: m.wait_latency_ns.as_ref().map(LatencyUs::from_ns),
        scheduler_send_error: m.send_error_ns.as_ref().map(LatencyUs::from_ns),
        spectrum: crate::series::spectrum(&m.latency_ns),
    }
}

pub fn build(x: Measured<'_>) -> PerfDetails {
    let Measured {
        cfg,
        master,
        results,
        median,
        before,
        after,
        replicas,
        resyncs,
        output_limit,
        prefix,
        keys_removed,
        load_ms,
        figures,
    } = x;
    let m = &results[median];
    let ops: Vec<f64> = results.iter().map(EngineResult::ops_per_sec).collect();
    let mut errors = BTreeMap::new();
    for r in results {
        for (k, n) in &r.errors {
            *errors.entry(k.clone()).or_insert(0) += n;
        }
    }
    let acked = {
        let mut all: Option<hdrhistogram::Histogram<u64>> = None;
        for h in results.iter().filter_map(|r| r.wait_acked.as_ref()) {
            match &mut all {
                Some(a) => {
                    let _ = a.add(h);
                }
                None => all = Some(h.clone()),
            }
        }
        all.filter(|h| !h.is_empty()).map(|h| Acked {
            min: h.min(),
            max: h.max(),
            mean: h.mean(),
        })
    };
    let a = &cfg.opts;
    PerfDetails {
        client_path: if master.node().tls() {
            ClientPath::Tls
        } else {
            ClientPath::Engine
        },
        mode: if m.open_loop {
            LoopMode::OpenLoop
        } else {
            LoopMode::ClosedLoop
        },
        workload: match a.workload {
            super::WorkloadKind::Set => "set".into(),
            super::WorkloadKind::Get => "get".into(),
            super::WorkloadKind::Mixed { sets, gets } => format!("mixed {sets}:{gets}"),
            super::WorkloadKind::SetWait => "set-wait".into(),
        },
        requests_per_round: match cfg.stop {
            Stop::Requests(n) => Some(n),
            Stop::Duration(_) => None,
        },
        duration_per_round_ms: match cfg.stop {
            Stop::Duration(d) => Some(crate::duration::ms(d)),
            Stop::Requests(_) => None,
        },
        pipeline: a.pipeline,
        connections: a.connections,
        data_size_min_bytes: a.data_size.0,
        data_size_max_bytes: a.data_size.1,
        keyspace: cfg.keyspace(),
        seed: a.seed,
        warmup_requests: a.warmup,
        target_rate_ops_per_sec: a.rate,
        server: Server {
            redis_version: before.version().to_string(),
            maxmemory_bytes: before.u64("maxmemory").unwrap_or(0),
            maxmemory_policy: before
                .get("maxmemory_policy")
                .unwrap_or("unknown")
                .to_string(),
            persistence: master.state.persistence.clone(),
        },
        throughput_ops_per_sec: round2(ops[median]),
        throughput_min_ops_per_sec: round2(ops.iter().copied().fold(f64::INFINITY, f64::min)),
        throughput_max_ops_per_sec: round2(ops.iter().copied().fold(0.0, f64::max)),
        median_round: median,
        round_results: figures.rounds,
        latency: figures.latency,
        wait_latency: figures.wait_latency,
        scheduler_send_error: figures.scheduler_send_error,
        missed_requests: results.iter().map(|r| r.missed).sum(),
        wait_acked: acked,
        errors: errors.clone(),
        misses: results.iter().map(|r| r.misses).sum(),
        moved: results.iter().map(|r| r.moved).sum(),
        ask: results.iter().map(|r| r.ask).sum(),
        master_moved: None,
        stopped_early: None,
        threads: a.threads,
        raw_rounds: results
            .iter()
            .map(|r| RawRound {
                latency_ns: r.latency_ns.clone(),
                per_second: r.per_second.clone(),
                elapsed_ns: r.elapsed_ns,
                completed: r.completed,
            })
            .collect(),
        per_second_ops: m.per_second.clone(),
        latency_spectrum: figures.spectrum,
        per_second_latency: m.latency_timeline.per_second.clone(),
        per_100ms_latency: m.latency_timeline.per_100ms.clone(),
        replica_lag: None,
        memory: Memory {
            used_memory_before_bytes: before.u64("used_memory").unwrap_or(0),
            used_memory_after_bytes: after.u64("used_memory").unwrap_or(0),
            evicted_keys_before: before.u64("evicted_keys").unwrap_or(0),
            evicted_keys_after: after.u64("evicted_keys").unwrap_or(0),
        },
        replicas,
        resyncs,
        replica_output_limit_bytes: output_limit,
        load_ms,
        key_prefix: prefix.to_string(),
        keys_kept: a.keep_keys,
        key_ttl_ms: a.key_ttl.map(crate::duration::ms),
        keys_removed,
        baseline: None,
        replica_reads: Vec::new(),
        client: None,
        merged: None,
    }
}

pub(crate) fn round2(v: f64) -> f64 {
    if v.is_finite() {
        (v * 100.0).round() / 100.0
    } else {
        0.0
    }
}

impl Details for PerfDetails {
    fn sections(&self) -> Vec<Section> {
        let mut t = Section::new(
            "Throughput",
            &[
                "workload",
                "mode",
                "requests",
                "P",
                "c",
                "value",
                "median ops/s",
                "min",
                "max",
            ],
        );
        t.row(vec![
            self.workload.clone(),
            self.mode.as_str().into(),
            match (self.requests_per_round, self.duration_per_round_ms) {
                (Some(n), _) => format!("{} x {n}", self.round_results.len()),
                (_, Some(ms)) => {
                    format!("{} x {}", self.round_results.len(), crate::report::took(ms))
                }
                _ => "-".into(),
            },
            self.pipeline.to_string(),
            self.connections.to_string(),
            if self.data_size_min_bytes == self.data_size_max_bytes {
                format!("{} B", self.data_size_min_bytes)
            } else {
                format!(
                    "{}-{} B",
                    self.data_size_min_bytes, self.data_size_max_bytes
                )
            },
            format!("{:.0}", self.throughput_ops_per_sec),
            format!("{:.0}", self.throughput_min_ops_per_sec),
            format!("{:.0}", self.throughput_max_ops_per_sec),
        ]);
        if self.client_path == ClientPath::Tls {
            t.notes.push(
                "over TLS: the redis crate's client, closed loop; each request is timed with its batch".into(),
            );
        }
        if let Some(rate) = self.target_rate_ops_per_sec {
            t.notes.push(format!("open loop at {rate:.0} ops/s: latency counts from each request's intended send time"));
        }
        if self.threads > 1 {
            t.notes.push(format!(
                "{} engine threads, each with its own connections and its share of the requests; \
                 their latency histograms merged",
                self.threads
            ));
        }
        if let Some(m) = &self.master_moved {
            t.notes.push(format!(
                "the master moved during the run ({m}): later rounds went to the new master"
            ));
        }
        t.notes.push(format!(
            "{} of {}; {}",
            crate::report::plural(self.round_results.len() as u64, "round"),
            match (self.requests_per_round, self.duration_per_round_ms) {
                (Some(n), _) => crate::report::plural(n, "request"),
                (_, Some(ms)) => crate::report::took(ms),
                _ => "-".into(),
            },
            match self.warmup_requests {
                0 => "no warm-up".to_string(),
                n => format!(
                    "{} of warm-up first, not measured",
                    crate::report::plural(n, "request")
                ),
            }
        ));
        if let Some(e) = &self.scheduler_send_error {
            t.notes.push(format!(
                "scheduler send-time error p50 {}, p99 {}",
                fmt_us(e.p50_us),
                fmt_us(e.p99_us)
            ));
        }
        if self.missed_requests > 0 {
            t.notes.push(format!(
                "{} requests were due but not sent before the run ended (missed): the rate was not met",
                self.missed_requests
            ));
        }
        let mut l = Section::new(
            "Latency per request",
            &["", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"],
        );
        l.row(lat_row("request", &self.latency));
        if let Some(w) = &self.wait_latency {
            l.row(lat_row("WAIT", w));
        }
        // A round that is one batch on one connection times all its requests
        // with that batch's round trip: the distribution is one value.
        if self.mode == LoopMode::ClosedLoop
            && self
                .requests_per_round
                .is_some_and(|n| n <= (self.pipeline * self.connections) as u64)
        {
            l.notes.push(format!(
                "each round was a single batch ({} requests, pipeline {}): every request of a round has its batch's latency, so the percentiles are the rounds' round trips (use a smaller -P, or more -n, for a distribution)",
                self.requests_per_round.unwrap_or(0),
                self.pipeline
            ));
        }
        if let Some(a) = &self.wait_acked {
            l.notes.push(format!(
                "WAIT acknowledged by {}..{} replicas (mean {:.2})",
                a.min, a.max, a.mean
            ));
        }
        if !self.errors.is_empty() {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} x{n}"))
                .collect();
            l.notes.push(format!("error replies: {}", kinds.join(", ")));
        }
        let mut r = Section::new(
            "Replicas after the load",
            &["node", "address", "lag after load", "caught up in"],
        );
        for c in &self.replicas {
            r.row(vec![
                c.name.clone(),
                c.address.clone(),
                c.offset_lag_bytes_after_load
                    .map(crate::report::human_bytes_or_zero)
                    .unwrap_or_else(|| "-".into()),
                match (c.catch_up_ms, &c.error) {
                    (Some(ms), _) => format!("{ms:.1} ms"),
                    (None, Some(e)) => e.clone(),
                    _ => "-".into(),
                },
            ]);
        }
        let m = &self.memory;
        let memory = match self.master_moved {
            // `after` would be another node's: not measured.
            Some(_) => format!(
                "used memory {} before (the master moved: not measured after)",
                crate::report::human_bytes_or_zero(m.used_memory_before_bytes)
            ),
            None => format!(
                "used memory {} -> {}, evicted keys {} -> {}",
                crate::report::human_bytes_or_zero(m.used_memory_before_bytes),
                crate::report::human_bytes_or_zero(m.used_memory_after_bytes),
                m.evicted_keys_before,
                m.evicted_keys_after,
            ),
        };
        r.notes.push(format!(
            "{memory}; keys {}",
            match (self.keys_kept, self.key_ttl_ms) {
                (true, None) => format!("kept under {} (no TTL)", self.key_prefix),
                (true, Some(t)) => format!(
                    "kept under {}, expiring {} after their write",
                    self.key_prefix,
                    crate::report::took(t)
                ),
                (false, None) => format!("removed ({})", self.keys_removed),
                (false, Some(t)) => format!(
                    "removed ({}); each was written with a TTL of {}",
                    self.keys_removed,
                    crate::report::took(t)
                ),
            }
        ));
        let mut out = vec![t, l];
        if !self.replica_reads.is_empty() {
            out.push(self.reads_section());
        }
        if !self.replicas.is_empty() || !out.is_empty() {
            out.push(r);
        }
        if let Some(b) = &self.baseline {
            out.push(super::baseline::section(b));
        }
        if let Some(c) = &self.client {
            if let Some(first) = out.first_mut() {
                first.notes.push(client_note(c));
            }
        }
        out.extend(self.merged.as_ref().map(super::merged::section));
        out
    }

    fn figures(&self) -> Vec<crate::report::Figure> {
        super::figures::figures(self)
    }
}

impl PerfDetails {
    /// --read-from replicas: each replica's median round, and the total.
    fn reads_section(&self) -> Section {
        let mut s = Section::new(
            "Reads per replica",
            &[
                "node", "address", "c", "requests", "ops/s", "p50", "p99", "max", "misses",
            ],
        );
        for r in &self.replica_reads {
            s.row(vec![
                r.name.clone(),
                r.address.clone(),
                r.connections.to_string(),
                r.requests.to_string(),
                format!("{:.0}", r.ops_per_sec),
                fmt_us(r.latency.p50_us),
                fmt_us(r.latency.p99_us),
                fmt_us(r.latency.max_us),
                r.misses_all_rounds.to_string(),
            ]);
        }
        let m = self.round_results.get(self.median_round);
        s.row(vec![
            "total".into(),
            "-".into(),
            self.connections.to_string(),
            m.map_or("-".into(), |m| m.completed.to_string()),
            format!("{:.0}", self.throughput_ops_per_sec),
            fmt_us(self.latency.p50_us),
            fmt_us(self.latency.p99_us),
            fmt_us(self.latency.max_us),
            self.misses.to_string(),
        ]);
        s.notes.push(
            "the median round's GETs, sent to the replicas (the keys filled on the master, the \
             replicas waited for); the total merges their histograms; misses over all rounds"
                .into(),
        );
        s
    }
}

/// Which share of the load this was, and when its rounds ran.
fn client_note(c: &super::split::ClientRun) -> String {
    let share = match c.split.of {
        1 => "the whole load".to_string(),
        n => format!(
            "client {}/{n}: its share of one load split among {n} (merge the {n} reports with \
             redlab report --merge)",
            c.split.index
        ),
    };
    let start = match (&c.start_at, c.late_ms) {
        (Some(at), Some(late)) => format!(", --start-at {at} (started {late:.1} ms after it)"),
        _ => String::new(),
    };
    format!(
        "{share}; rounds from {} to {}{start}",
        c.started_at, c.ended_at
    )
}

fn lat_row(label: &str, l: &LatencyUs) -> Vec<String> {
    vec![
        label.to_string(),
        fmt_us(l.p50_us),
        fmt_us(l.p90_us),
        fmt_us(l.p99_us),
        fmt_us(l.p999_us),
        fmt_us(l.p9999_us),
        fmt_us(l.max_us),
        fmt_us(l.mean_us),
    ]
}
