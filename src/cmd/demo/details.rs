//! What the demo measured, its checks and its tables (the summary table is
//! shown live at step 8 and again in the report).

use serde::{Deserialize, Serialize};

use super::cache::Lookup;
use crate::probe::expiry::{Ended, TtlWatchDetails};
use crate::probe::propagation::ReplicateDetails;
use crate::probe::stats::{self, NodeStats};
use crate::report::{Check, Details, Section, Verdict};

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoDetails {
    /// --fast: every wait shrunk.
    pub fast: bool,
    /// The query the walkthrough caches.
    pub query: String,
    /// The simulated data source's latency, ms.
    pub source_latency_ms: f64,
    /// TTL of a cached entry, s.
    pub ttl_s: u64,
    /// Step 1: every node's stats.
    pub stats: Vec<NodeStats>,
    /// Step 2: the first lookup (a miss).
    pub miss: Lookup,
    /// Step 3: the same lookup again (a hit on the master).
    pub hit: Lookup,
    /// Step 3: the same read on each replica.
    pub replica_reads: Vec<ReplicaRead>,
    /// Step 4: (miss - hit) / miss, percent.
    pub speedup_pct: f64,
    /// Step 5: the cached entries and their remaining TTL.
    pub cached: Vec<CachedEntry>,
    /// Step 6: replicate-check's findings.
    pub replication: ReplicateDetails,
    /// Step 6: replicate-check's verdict.
    pub replication_verdict: Verdict,
    /// Step 7: the entry's TTL watched on every node (null if it expired before).
    pub expiry: Option<TtlWatchDetails>,
    /// Step 7: the query again once the entry expired (null when the window ended first).
    pub after_expiry: Option<Lookup>,
    /// The queries typed with --interactive, in order.
    pub interactive: Vec<Lookup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaRead {
    pub name: String,
    /// Whether the replica served the cached entry.
    pub hit: bool,
    /// Its GET, ms.
    pub elapsed_ms: f64,
    /// Why it could not be read.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedEntry {
    pub key: String,
    /// PTTL on the master, ms (-2: gone).
    pub ttl_ms: i64,
    /// The stored JSON, as text.
    pub value: Option<String>,
}

pub fn checks(d: &DemoDetails) -> Vec<Check> {
    let mut out = vec![
        if !d.miss.hit() && d.miss.elapsed_ms >= d.source_latency_ms {
            Check::pass(
                "cache.miss",
                format!(
                    "first lookup missed and took {:.1} ms (source latency {:.0} ms)",
                    d.miss.elapsed_ms, d.source_latency_ms
                ),
            )
        } else {
            Check::fail(
                "cache.miss",
                "the first lookup did not go to the data source",
            )
        },
        if d.hit.hit() {
            Check::pass(
                "cache.hit",
                format!("second lookup hit the master in {:.2} ms", d.hit.elapsed_ms),
            )
        } else {
            Check::fail(
                "cache.hit",
                "the second lookup missed: the entry was not cached",
            )
        },
    ];
    for r in &d.replica_reads {
        let name = format!("{}.cached", r.name);
        out.push(match (r.hit, &r.error) {
            (true, _) => Check::pass(
                name,
                format!("served the cached entry in {:.2} ms", r.elapsed_ms),
            ),
            (false, Some(e)) => Check::fail(name, e.clone()),
            (false, None) => Check::fail(name, "did not have the cached entry after WAIT"),
        });
    }
    let speed = format!("a hit is {:.2} % faster than a miss", d.speedup_pct);
    out.push(if d.speedup_pct > 95.0 {
        Check::pass("cache.speedup", speed)
    } else {
        Check::new(
            "cache.speedup",
            Verdict::Warn,
            format!("{speed}; the workshop saw > 95 %"),
        )
    });
    if let Some(a) = &d.after_expiry {
        out.push(if a.hit() {
            Check::fail("cache.reload", "after expiry the query still hit")
        } else {
            Check::pass(
                "cache.reload",
                format!(
                    "after expiry the query missed and reloaded in {:.1} ms",
                    a.elapsed_ms
                ),
            )
        });
    }
    out
}

/// Step 8: one line per step with what it measured.
pub fn summary(d: &DemoDetails) -> Section {
    let mut s = Section::new("Summary", &["step", "what it showed", "measured"]);
    let up = d
        .stats
        .iter()
        .filter(|n| n.status == crate::client::Status::Up)
        .count();
    s.row(row(
        "1. topology",
        "master and replicas, with their stats",
        format!("{up} of {} nodes up", d.stats.len()),
    ));
    s.row(row(
        "2. miss",
        "the query goes to the slow data source",
        format!(
            "{:.1} ms (source {:.0} ms)",
            d.miss.elapsed_ms, d.source_latency_ms
        ),
    ));
    let served = d.replica_reads.iter().filter(|r| r.hit).count();
    s.row(row(
        "3. hit",
        "served from the cache, and from every replica",
        format!(
            "{:.2} ms on the master; {served} of {} replicas served it",
            d.hit.elapsed_ms,
            d.replica_reads.len()
        ),
    ));
    s.row(row(
        "4. speedup",
        "hit vs miss",
        format!("{:.2} % faster", d.speedup_pct),
    ));
    let ttl = d
        .cached
        .first()
        .map(|c| format!("{:.1} s left", c.ttl_ms as f64 / 1e3))
        .unwrap_or_default();
    s.row(row(
        "5. cached entries",
        "the entries and their TTL",
        format!(
            "{} entr{}, {ttl}",
            d.cached.len(),
            if d.cached.len() == 1 { "y" } else { "ies" }
        ),
    ));
    let p50 = d
        .replication
        .replicas
        .iter()
        .filter_map(|r| r.visible_latency.as_ref().map(|l| l.p50_us))
        .fold(0.0, f64::max);
    s.row(row(
        "6. replication",
        "every replica follows and receives writes",
        format!(
            "{}, slowest replica p50 {}",
            d.replication_verdict.as_str(),
            crate::latency::fmt_us(p50)
        ),
    ));
    s.row(row(
        "7. expiry",
        "the entry counts down and leaves every node",
        expiry_line(d),
    ));
    if !d.interactive.is_empty() {
        let hits = d.interactive.iter().filter(|l| l.hit()).count();
        s.row(row(
            "your queries",
            "typed at the prompt",
            format!(
                "{} queries: {hits} HIT, {} MISS",
                d.interactive.len(),
                d.interactive.len() - hits
            ),
        ));
    }
    s
}

fn expiry_line(d: &DemoDetails) -> String {
    let Some(e) = &d.expiry else {
        return "the entry had expired before the watch".into();
    };
    if e.ended == Ended::Window {
        return format!(
            "watched {:.1} s; {:.0} s of TTL left, not waited for",
            e.watched_ms / 1e3,
            (e.initial_ttl_ms as f64 - e.watched_ms) / 1e3
        );
    }
    let gaps: Vec<f64> = e
        .nodes
        .iter()
        .filter_map(|n| n.propagation_gap_ms)
        .collect();
    let gap = if gaps.is_empty() {
        "propagation gap not observable".to_string()
    } else {
        format!(
            "largest propagation gap {:.1} ms",
            gaps.iter().cloned().fold(f64::MIN, f64::max)
        )
    };
    let reload = d
        .after_expiry
        .as_ref()
        .map(|a| format!("; then {} in {:.1} ms", a.outcome.upper(), a.elapsed_ms))
        .unwrap_or_default();
    format!("gone from every node; {gap}{reload}")
}

fn row(a: &str, b: &str, c: String) -> Vec<String> {
    vec![a.to_string(), b.to_string(), c]
}

/// The lookups in order, as a table (live at the prompt and in the report).
pub fn lookups(title: &str, items: &[&Lookup]) -> Section {
    let mut s = Section::new(title, &["query", "outcome", "source", "time"]);
    for l in items {
        s.row(vec![
            l.query.clone(),
            l.outcome.upper().to_string(),
            l.source.clone(),
            format!("{:.2} ms", l.elapsed_ms),
        ]);
    }
    s
}

impl Details for DemoDetails {
    fn sections(&self) -> Vec<Section> {
        let mut all: Vec<&Lookup> = vec![&self.miss, &self.hit];
        all.extend(self.after_expiry.iter());
        all.extend(self.interactive.iter());
        let mut out = stats::sections(&self.stats);
        out.push(lookups("Cache-aside lookups", &all));
        let mut reads = Section::new(
            "Replica reads of the cached entry",
            &["replica", "served", "time"],
        );
        for r in &self.replica_reads {
            reads.row(vec![
                r.name.clone(),
                if r.hit { "yes" } else { "no" }.into(),
                format!("{:.2} ms", r.elapsed_ms),
            ]);
        }
        out.push(reads);
        out.push(cached_section(&self.cached));
        out.extend(self.replication.sections());
        if let Some(e) = &self.expiry {
            out.extend(e.sections());
        }
        out.push(summary(self));
        out
    }

    /// The story was told on stderr, ending on its summary: stdout says the
    /// verdict and what did not pass (-v or a file has the rest).
    fn brief(&self) -> bool {
        true
    }

    /// Step 6's probes and step 7's expiry, as replicate-check and ttl-watch draw them.
    fn figures(&self) -> Vec<crate::report::Figure> {
        let mut out = self.replication.figures();
        out.extend(self.expiry.iter().flat_map(Details::figures));
        out
    }
}

pub fn cached_section(entries: &[CachedEntry]) -> Section {
    let mut s = Section::new("Cached entries", &["key", "TTL left", "value"]);
    s.truncate = vec![0, 2];
    for c in entries {
        s.row(vec![
            c.key.clone(),
            ttl_left(c.ttl_ms),
            c.value.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    s
}

/// PTTL as people read it: never a negative time (-2: gone, -1: no TTL).
fn ttl_left(ttl_ms: i64) -> String {
    match ttl_ms {
        -1 => "no TTL".into(),
        ms if ms < 0 => "expired".into(),
        ms => format!("{:.1} s", ms as f64 / 1e3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_left_is_never_negative() {
        assert_eq!(ttl_left(-2), "expired");
        assert_eq!(ttl_left(-1), "no TTL");
        assert_eq!(ttl_left(4_960), "5.0 s");
        assert_eq!(ttl_left(0), "0.0 s");
    }
}
