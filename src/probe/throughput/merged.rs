//! A merged perf report's account of its clients (`redlab report --merge`
//! of `--clients K/N` runs): data carried by `PerfDetails`, so it lives with
//! the measurement; the merging itself is `cmd::perf::merge`.

use serde::{Deserialize, Serialize};

use crate::report::{Section, Verdict};

/// A merged report's account of its clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    /// N: clients the load was split among.
    pub of: u32,
    /// Clients whose measurements are in this report.
    pub clients_merged: usize,
    /// How far apart the clients' first rounds started, ms.
    pub start_spread_ms: f64,
    /// Every report given, and the shares with none.
    pub clients: Vec<MergedClient>,
}

/// One client of a merged load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedClient {
    /// `K/N`.
    pub client: String,
    /// The report file; null for a share no report was given for.
    pub file: Option<String>,
    /// The host it ran on.
    pub host: Option<String>,
    /// Its run id.
    pub run_id: Option<String>,
    /// Its first round's start, RFC 3339 UTC.
    pub started_at: Option<String>,
    /// How long after the first client's its rounds started, ms.
    pub started_after_first_ms: Option<f64>,
    /// Its own verdict (failed: the run ended with an error or was interrupted).
    pub verdict: Verdict,
    /// Requests it completed, all rounds.
    pub requests: u64,
    /// Why it is not in the merged figures (failed, interrupted, no report).
    pub error: Option<String>,
}

/// The clients section every merged report shows.
pub fn section(m: &Merged) -> Section {
    let mut s = Section::new(
        "Clients merged",
        &[
            "client", "verdict", "host", "run", "started", "+ms", "requests", "file",
        ],
    );
    for c in &m.clients {
        s.row(vec![
            c.client.clone(),
            c.verdict.as_str().into(),
            c.host.clone().unwrap_or_else(|| "-".into()),
            c.run_id.clone().unwrap_or_else(|| "-".into()),
            c.started_at.clone().unwrap_or_else(|| "-".into()),
            c.started_after_first_ms
                .map_or("-".into(), |ms| format!("{ms:.1}")),
            c.requests.to_string(),
            c.file.clone().unwrap_or_else(|| "-".into()),
        ]);
        if let Some(e) = &c.error {
            s.notes.push(format!("client {}: {e}", c.client));
        }
    }
    s.notes.push(format!(
        "{} of {} clients merged, first rounds started within {:.1} ms: latency histograms \
         added round by round (exact), per-second counts summed on the common clock, \
         throughput over the union of the clients' windows",
        m.clients_merged, m.of, m.start_spread_ms
    ));
    s
}
