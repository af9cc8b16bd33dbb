//! The workshop page's cache-aside, against the real master: look the query
//! up, and on a miss ask a deliberately slow data source and store its answer
//! as JSON with SETEX.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::client::Conn;
use crate::duration::ms;
use crate::run::Ctx;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lookup {
    /// The query text.
    pub query: String,
    /// Its cache key, under redlab's prefix.
    pub key: String,
    /// `hit` or `miss`.
    pub outcome: Outcome,
    /// Where the answer came from: `cache (master)` or `database`.
    pub source: String,
    /// The whole lookup as the user waits for it (GET, plus on a miss the
    /// data source and the SETEX), ms.
    pub elapsed_ms: f64,
    /// The cached answer: query, result, timestamp, source.
    pub value: serde_json::Value,
}

/// Whether the cache had the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Hit,
    Miss,
}

impl Outcome {
    /// As the demo shows it: `HIT`, `MISS`.
    pub fn upper(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
        }
    }
}

impl Lookup {
    pub fn hit(&self) -> bool {
        self.outcome == Outcome::Hit
    }
}

pub struct Cache<'a> {
    pub master: Conn,
    pub source_latency: Duration,
    pub ttl: Duration,
    pub ctx: &'a Ctx,
}

impl Cache<'_> {
    pub fn key(&self, query: &str) -> String {
        self.ctx.key(&format!("query:{query}"))
    }

    /// GET; on a miss, the slow source answers and the result is stored with SETEX.
    pub async fn lookup(&mut self, query: &str) -> Result<Lookup> {
        let key = self.key(query);
        let t0 = Instant::now();
        let cached: Option<String> = self.master.query(redis::cmd("GET").arg(&key)).await?;
        if let Some(text) = cached {
            let elapsed_ms = ms(t0.elapsed());
            return Ok(Lookup {
                query: query.to_string(),
                key,
                outcome: Outcome::Hit,
                source: "cache (master)".into(),
                elapsed_ms,
                value: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            });
        }
        let spinner = self.ctx.progress.spinner(format!(
            "MISS: asking the slow data source (it takes {})",
            humantime::format_duration(self.source_latency)
        ));
        // The simulated database: its slowness is the point of the demo.
        tokio::time::sleep(self.source_latency).await;
        spinner.finish();
        let value = serde_json::json!({
            "query": query,
            "result": crate::web::query::answer(query),
            "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "source": "database",
        });
        self.ctx.ledger.add(key.clone());
        self.ctx.safety.expiring(self.ttl);
        // SETEX as the workshop did; PSETEX where the TTL has a fraction of a second.
        let ttl_ms = self.ttl.as_millis().max(1) as u64;
        let (cmd, ttl) = if ttl_ms.is_multiple_of(1000) {
            ("SETEX", ttl_ms / 1000)
        } else {
            ("PSETEX", ttl_ms)
        };
        self.master
            .query::<()>(redis::cmd(cmd).arg(&key).arg(ttl).arg(value.to_string()))
            .await?;
        Ok(Lookup {
            query: query.to_string(),
            key,
            outcome: Outcome::Miss,
            source: "database".into(),
            elapsed_ms: ms(t0.elapsed()),
            value,
        })
    }
}

/// `GET` on one replica, timed: whether the cached entry reached it.
pub async fn read_on(conn: &mut Conn, key: &str) -> (bool, f64, Option<String>) {
    let t0 = Instant::now();
    match conn
        .query::<Option<String>>(redis::cmd("GET").arg(key))
        .await
    {
        Ok(v) => (v.is_some(), ms(t0.elapsed()), None),
        Err(e) => (false, ms(t0.elapsed()), Some(e.message)),
    }
}
