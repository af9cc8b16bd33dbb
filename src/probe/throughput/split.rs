//! `perf --client K/N` and `--start-at`: one load split among N client
//! processes (on one machine or many), each running share K of it, so that
//! their reports merge into the one load (`redlab report --merge`).
//!
//! Share K gets `-n`, `--rate`, `--warmup` and `--keyspace` divided as whole
//! numbers allow, the first `total % N` shares one more (a fractional rate's
//! fraction divided evenly): the N shares add up to exactly what one process
//! would do. Everything else (-c, -P, value sizes, rounds, --duration) is
//! each client's as given. Keys are disjoint: every run's keys carry its own
//! run id, and a client's carry `K of N` besides (`perf:2of3:`), each into
//! its own part of the keyspace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::Options;
use crate::loadgen::multi::share;

/// How far ahead --start-at may be: a Unix time in milliseconds given as
/// seconds would otherwise wait for millennia.
const FURTHEST_START: Duration = Duration::from_secs(24 * 3600);

/// Which share of which load a run is, with the whole load's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// K of --client K/N (1-based).
    pub index: u32,
    /// N of --client K/N: clients the load is split among.
    pub of: u32,
    /// The whole load's -n per round (null with --duration).
    pub total_requests_per_round: Option<u64>,
    /// The whole load's --rate, ops/s (null: closed loop).
    pub total_rate_ops_per_sec: Option<f64>,
    /// The whole load's warm-up requests.
    pub total_warmup_requests: u64,
    /// The whole load's --keyspace (null: one distinct key per request).
    pub total_keyspace: Option<u64>,
}

impl Split {
    /// A run without --client: the whole load, share 1 of 1.
    pub fn whole(opts: &Options) -> Split {
        Split {
            index: 1,
            of: 1,
            total_requests_per_round: opts.duration.is_none().then_some(opts.requests),
            total_rate_ops_per_sec: opts.rate,
            total_warmup_requests: opts.warmup,
            total_keyspace: opts.keyspace,
        }
    }

    /// `K/N`, as the option is written.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.of)
    }
}

/// The run's part of the load and when it ran: the share (1/1 without
/// --client) and the measured rounds' window on the wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRun {
    /// Which share of which load.
    #[serde(flatten)]
    pub split: Split,
    /// --start-at, RFC 3339 UTC (null: the rounds started when ready).
    pub start_at: Option<String>,
    /// How long after --start-at the rounds started, ms (the set-up ran
    /// past it, or the timer's own delay); null without --start-at.
    pub late_ms: Option<f64>,
    /// The first measured round's start, RFC 3339 UTC.
    pub started_at: String,
    /// The last measured round's end, RFC 3339 UTC.
    pub ended_at: String,
    /// The same, Unix time in ms (the common clock a merge aligns on).
    pub started_unix_ms: f64,
    /// The last round's end, Unix time in ms.
    pub ended_unix_ms: f64,
}

impl ClientRun {
    /// A run of `opts` whose rounds started at `starts` (Unix ms) and
    /// ended at `end_ms`.
    pub fn new(opts: &Options, starts: &[f64], end_ms: f64, late_ms: Option<f64>) -> ClientRun {
        let start = starts.iter().copied().fold(f64::INFINITY, f64::min);
        let start = if start.is_finite() { start } else { end_ms };
        ClientRun {
            split: opts.split.clone().unwrap_or_else(|| Split::whole(opts)),
            start_at: opts.start_at.map(rfc3339),
            late_ms,
            started_at: rfc3339_ms(start),
            ended_at: rfc3339_ms(end_ms),
            started_unix_ms: start,
            ended_unix_ms: end_ms,
        }
    }
}

/// `opts` (the whole load) as share `k` of `n`: -n, --rate, --warm-up and
/// --keyspace divided; refused where a share would be empty.
pub fn apply(opts: &mut Options, k: u32, n: u32) -> Result<()> {
    if n == 0 || k == 0 || k > n {
        bail!(
            "--client {k}/{n}: K must be 1..N, e.g. --client 2/3 for the second of three clients"
        );
    }
    let whole = Split::whole(opts);
    let i = (k - 1) as usize;
    let clients = n as usize;
    if opts.duration.is_none() {
        opts.requests = share(opts.requests, clients, i);
        if opts.requests == 0 {
            bail!(
                "-n {} is less than one request per client (--client {k}/{n}): -n is the whole \
                 load's, divided among the clients",
                whole.total_requests_per_round.unwrap_or(0)
            );
        }
    }
    if let Some(rate) = opts.rate {
        let part = rate_share(rate, clients, i);
        if part < 1.0 {
            bail!(
                "--rate {rate} is below 1 request per second per client (--client {k}/{n}): \
                 --rate is the whole load's, divided among the clients"
            );
        }
        opts.rate = Some(part);
    }
    opts.warmup = share(opts.warmup, clients, i);
    if let Some(space) = opts.keyspace {
        let part = share(space, clients, i);
        if part == 0 {
            bail!(
                "--keyspace {space} is less than one key per client (--client {k}/{n}): each \
                 client takes its own part of the keyspace"
            );
        }
        opts.keyspace = Some(part);
    }
    opts.split = Some(Split {
        index: k,
        of: n,
        ..whole
    });
    Ok(())
}

/// Share `i` of `n` of a rate: its whole ops/s shared as integers (the first
/// shares take the remainder), its fraction evenly, so the shares add up.
pub fn rate_share(rate: f64, n: usize, i: usize) -> f64 {
    let whole = rate.floor();
    share(whole as u64, n, i) as f64 + (rate - whole) / n.max(1) as f64
}

/// The key prefix's suffix under the run's own: `perf:`, or `perf:2of3:`
/// for a client's share (its keys say whose they are).
pub fn key_suffix(opts: &Options) -> String {
    match &opts.split {
        Some(s) if s.of > 1 => format!("perf:{}of{}:", s.index, s.of),
        _ => "perf:".into(),
    }
}

/// `--client K/N`.
pub fn parse_client(s: &str) -> Result<(u32, u32), String> {
    let err =
        || format!("'{s}' is not a share: write K/N, e.g. 2/3 for the second of three clients");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let (k, n): (u32, u32) = (
        k.trim().parse().map_err(|_| err())?,
        n.trim().parse().map_err(|_| err())?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!(
            "--client {s}: K must be 1..N, e.g. 2/3 for the second of three clients"
        ));
    }
    Ok((k, n))
}

/// `--start-at`: an RFC 3339 time (`2026-12-07T10:00:00Z`, any offset) or a
/// Unix time in seconds (fractions allowed).
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("'{s}' is not a Unix time (seconds since 1970)"))?;
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
        format!(
            "'{s}' is not a time ({e}): give RFC 3339 (2026-12-07T10:00:00Z) or Unix seconds \
             (date +%s)"
        )
    })?;
    let nanos = at
        .timestamp_nanos_opt()
        .ok_or_else(|| format!("'{s}' is out of range"))?;
    if nanos < 0 {
        return Err(format!("'{s}' is before 1970"));
    }
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

/// Refuse a start too far ahead (seconds and milliseconds mixed up, most likely).
pub fn refuse_far_start(at: SystemTime) -> Result<()> {
    if let Ok(ahead) = at.duration_since(SystemTime::now()) {
        if ahead > FURTHEST_START {
            bail!(
                "--start-at {} is {} from now, more than a day: a Unix time is in seconds \
                 (date +%s), not milliseconds",
                rfc3339(at),
                humantime::format_duration(Duration::from_secs(ahead.as_secs()))
            );
        }
    }
    Ok(())
}

/// Wait until `at` (the caller's future is dropped on Ctrl-C, which ends
/// the wait); how late the wait ended after `at`, ms (0 when `at` was ahead).
pub async fn wait_until(at: SystemTime) -> f64 {
    if let Ok(ahead) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(ahead).await;
    }
    SystemTime::now()
        .duration_since(at)
        .map(crate::duration::ms)
        .unwrap_or(0.0)
}

/// Unix time in ms.
pub fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(crate::duration::ms)
        .unwrap_or(0.0)
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// RFC 3339 UTC with milliseconds, of a Unix time in ms.
pub fn rfc3339_ms(unix_ms: f64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs_f64(unix_ms.max(0.0) / 1e3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(opts: &Options, n: u32) -> Vec<Options> {
        (1..=n)
            .map(|k| {
                let mut o = opts.clone();
                apply(&mut o, k, n).unwrap();
                o
            })
            .collect()
    }

    #[test]
    fn the_shares_add_up_to_the_whole_load() {
        let opts = Options {
            requests: 1000,
            rate: Some(1000.5),
            warmup: 100,
            keyspace: Some(10),
            ..Options::default()
        };
        let parts = shares(&opts, 3);
        let n: Vec<u64> = parts.iter().map(|o| o.requests).collect();
        assert_eq!(n, vec![334, 333, 333]);
        let rate: f64 = parts.iter().map(|o| o.rate.unwrap()).sum();
        assert!((rate - 1000.5).abs() < 1e-9, "{rate}");
        assert_eq!(parts[0].rate, Some(334.0 + 0.5 / 3.0));
        assert_eq!(parts.iter().map(|o| o.warmup).sum::<u64>(), 100);
        let ks: Vec<u64> = parts.iter().map(|o| o.keyspace.unwrap()).collect();
        assert_eq!(ks, vec![4, 3, 3]);
        // Everything else as given; each knows the whole.
        assert!(parts.iter().all(|o| o.connections == opts.connections));
        let s = parts[1].split.as_ref().unwrap();
        assert_eq!(
            (s.index, s.of, s.total_requests_per_round),
            (2, 3, Some(1000))
        );
        assert_eq!(key_suffix(&parts[1]), "perf:2of3:");
        assert_eq!(key_suffix(&opts), "perf:");
    }

    #[test]
    fn an_empty_share_is_refused() {
        let mut o = Options {
            requests: 2,
            ..Options::default()
        };
        let e = apply(&mut o, 3, 3).unwrap_err().to_string();
        assert!(e.contains("less than one request per client"), "{e}");
        let mut o = Options {
            rate: Some(2.0),
            ..Options::default()
        };
        // 1 + 1 + 0: the third share would send nothing.
        assert!(apply(&mut o.clone(), 1, 3).is_ok());
        assert!(apply(&mut o, 3, 3).is_err());
        assert!(parse_client("0/3").is_err());
        assert!(parse_client("4/3").is_err());
        assert!(parse_client("x").is_err());
        assert_eq!(parse_client("2/3"), Ok((2, 3)));
    }

    #[test]
    fn start_times_in_both_forms() {
        let a = parse_start_at("2026-12-07T10:00:00Z").unwrap();
        let b = parse_start_at("1796637600").unwrap();
        assert_eq!(a, b);
        let c = parse_start_at("2026-12-07T11:00:00.5+01:00").unwrap();
        assert_eq!(c, a + Duration::from_millis(500));
        assert!(parse_start_at("tomorrow").is_err());
        assert_eq!(rfc3339(a), "2026-12-07T10:00:00.000Z");
        assert!(refuse_far_start(SystemTime::now() + Duration::from_secs(3 * 86400)).is_err());
        assert!(refuse_far_start(SystemTime::now()).is_ok());
    }
}
