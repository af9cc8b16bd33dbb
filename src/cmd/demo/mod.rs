//! demo: the workshop's walkthrough, live in the terminal. Cache-aside with a
//! slow data source, the hit on the master and on every replica, the speedup,
//! the cached entries, a replicate-check, and the entry expiring everywhere.
//!
//! The narrative goes to stderr through `Narrator`; the report, with every
//! number, is returned like any subcommand's. Everything written lives under
//! the run's prefix and is in the ledger; nothing is ever flushed.

mod cache;
mod details;

use std::time::Duration;

use anyhow::Result;

use crate::client::Conn;
use crate::probe::{expiry as ttl_watch, propagation, stats};
use crate::report::{Details, Report, Verdict};
use crate::run::Ctx;
use crate::survey::Survey;
use crate::ui::narrate::Narrator;

use cache::{read_on, Cache, Lookup};
pub use details::DemoDetails;
use details::{CachedEntry, ReplicaRead};

#[derive(Clone)]
pub struct Config {
    pub query: String,
    pub source_latency: Duration,
    pub ttl: Duration,
    /// None: watch until the entry expires.
    pub ttl_window: Option<Duration>,
    pub pace: bool,
    /// A beat between steps (a terminal, not --pace, not --fast).
    pub beat: bool,
    pub fast: bool,
    pub interactive: bool,
    pub narrate: Narrator,
}

/// Between unpaced steps on a terminal: long enough to read a step's few
/// lines before the next scrolls them away, short enough that the demo
/// still runs by itself (a recording, a student alone).
const BEAT: Duration = Duration::from_millis(1500);

/// The most a held entry may live: if redlab dies during a pause, its entry
/// still expires by itself.
const HOLD: Duration = Duration::from_secs(3600);

impl Config {
    /// The next step's heading, after the break between steps: Enter with
    /// --pace, a beat on a terminal, nothing in a pipe or with --fast. The
    /// cached entry (once there is one) does not age during the break: its
    /// TTL is what the step before left, so a presenter who talks through a
    /// step never finds it expired.
    async fn step(&self, n: u32, title: &str, entry: Option<(&mut Conn, &str)>) -> Result<()> {
        let brk = self.pace || self.beat;
        if brk && n > 1 {
            let held = match entry {
                Some((conn, key)) => hold(conn, key).await?.map(|left| (conn, key, left)),
                None => None,
            };
            if self.pace {
                self.narrate.pause(&format!("next: step {n}")).await;
            } else {
                tokio::time::sleep(BEAT).await;
            }
            if let Some((conn, key, left)) = held {
                let _: u64 = conn.query(redis::cmd("PEXPIRE").arg(key).arg(left)).await?;
            }
        }
        self.narrate.heading(&format!("{n}. {title}"));
        Ok(())
    }
}

/// Stretch the entry's TTL over a break; its TTL left before it (ms), or
/// None when it has none left to keep.
async fn hold(conn: &mut Conn, key: &str) -> Result<Option<u64>> {
    let left: i64 = conn.query(redis::cmd("PTTL").arg(key)).await?;
    if left <= 0 {
        return Ok(None);
    }
    let _: u64 = conn
        .query(
            redis::cmd("PEXPIRE")
                .arg(key)
                .arg(left as u64 + HOLD.as_millis() as u64),
        )
        .await?;
    Ok(Some(left as u64))
}

/// The shortest TTL whose expiry the watch can show: a few polls of it.
const MIN_TTL: Duration = Duration::from_secs(1);

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<DemoDetails>> {
    if cfg.ttl < MIN_TTL {
        anyhow::bail!(
            "--ttl {}: too short to watch the entry count down and expire on every node; give at least 1s",
            humantime::format_duration(cfg.ttl)
        );
    }
    let say = cfg.narrate;
    say.line(&format!(
        "redlab demo: cache-aside, replication and expiry on {} with {} replicas.\n\
         Everything it writes is under {} and is removed at the end; nothing is flushed.",
        ctx.topology.master.label(),
        ctx.topology.replicas.len(),
        ctx.prefix()
    ));

    cfg.step(1, "The topology and its stats", None).await?;
    let (survey, node_stats) = stats::collect(ctx).await?;
    say.tables(&stats::sections(&node_stats));
    let master = survey.master()?;
    ctx.prepare_writes(&master, 256 * 1024).await?;
    let mut cache = Cache {
        master: master.conn.clone(),
        source_latency: cfg.source_latency,
        ttl: cfg.ttl,
        ctx,
    };

    cfg.step(2, "Cache-aside: the first query misses", None)
        .await?;
    say.line(&format!(
        "The app looks \"{}\" up in Redis under {} before asking the database.",
        cfg.query,
        cache.key(&cfg.query)
    ));
    let miss = cache.lookup(&cfg.query).await?;
    tell(&say, &miss, cfg.ttl);
    say.line(&format!(
        "  stored with a TTL of {}: {}",
        humantime::format_duration(cfg.ttl),
        miss.value
    ));

    let key = cache.key(&cfg.query);
    cfg.step(
        3,
        "The same query again: a hit, on the master and on every replica",
        Some((&mut cache.master, &key)),
    )
    .await?;
    let hit = cache.lookup(&cfg.query).await?;
    tell(&say, &hit, cfg.ttl);
    let replica_reads = replica_reads(ctx, &mut cache.master, &survey, &hit.key).await;
    for r in &replica_reads {
        say.line(&format!(
            "  {:<10} {}  {:>8.2} ms  {}",
            r.name,
            say.word(if r.hit { "HIT " } else { "MISS" }),
            r.elapsed_ms,
            r.error.clone().unwrap_or_else(|| {
                if r.hit {
                    "the cached entry replicated".into()
                } else {
                    "not there".into()
                }
            })
        ));
    }

    cfg.step(4, "The speedup", Some((&mut cache.master, &key)))
        .await?;
    let speedup_pct = ((miss.elapsed_ms - hit.elapsed_ms) / miss.elapsed_ms * 1e4).round() / 100.0;
    say.line(&format!(
        "miss {:.1} ms, hit {:.2} ms: a hit is {speedup_pct:.2} % faster (the workshop reported > 95 %).",
        miss.elapsed_ms, hit.elapsed_ms
    ));

    cfg.step(
        5,
        "The cached entries and their remaining TTL",
        Some((&mut cache.master, &key)),
    )
    .await?;
    let cached = entries(&mut cache.master, std::slice::from_ref(&hit.key)).await?;
    say.tables(&[details::cached_section(&cached)]);

    cfg.step(6, "Replication check", Some((&mut cache.master, &key)))
        .await?;
    let rc = propagation::measure(
        &propagation::Config {
            probes: if cfg.fast { 5 } else { 20 },
            max_lag: Duration::from_secs(1),
            lag_interval: Duration::from_millis(100),
        },
        ctx,
    )
    .await?;
    let rc_verdict = Verdict::worst(rc.checks.iter().map(|c| c.verdict));
    say.tables(&rc.details.sections());
    say.line(&format!("replicate-check: {}", rc_verdict.as_str()));

    cfg.step(7, "Expiry", None).await?;
    let (expiry, after_expiry) = expiry(&cfg, ctx, &mut cache, &hit).await?;

    let mut interactive = Vec::new();
    if cfg.interactive {
        say.heading("Your turn: type a query (empty line or Ctrl-D to finish)");
        interactive = prompt(&say, &mut cache, cfg.ttl).await?;
    }

    let mut checks = vec![crate::replication::count_check(&ctx.topology, &master)];
    checks.extend(stats::checks(&node_stats));
    checks.extend(rc.checks.iter().cloned().map(|mut c| {
        c.name = format!("replicate.{}", c.name);
        c
    }));
    if let Some(e) = &expiry {
        checks.extend(ttl_watch::checks(e).into_iter().map(|mut c| {
            c.name = format!("expiry.{}", c.name);
            c
        }));
    }
    let d = DemoDetails {
        fast: cfg.fast,
        query: cfg.query.clone(),
        source_latency_ms: crate::duration::ms(cfg.source_latency),
        ttl_s: cfg.ttl.as_secs().max(1),
        stats: node_stats,
        miss,
        hit,
        replica_reads,
        speedup_pct,
        cached,
        replication: rc.details,
        replication_verdict: rc_verdict,
        expiry,
        after_expiry,
        interactive,
    };
    checks.splice(0..0, details::checks(&d));
    cfg.step(8, "Summary", None).await?;
    say.tables(&[details::summary(&d)]);
    say.line("This run's keys are removed now; every number is in the report (-v, --output FILE or --report).");
    Ok(Report::new(
        "demo",
        ctx.manifest(),
        survey.infos(),
        checks,
        d,
    ))
}

fn tell(say: &Narrator, l: &Lookup, ttl: Duration) {
    let what = if l.hit() {
        format!("answered by Redis: {}", l.value)
    } else {
        format!(
            "answered by the database and cached for {}",
            humantime::format_duration(ttl)
        )
    };
    say.line(&format!(
        "{}  {:>9.2} ms  from {}  ({what})",
        say.word(&format!("{:<4}", l.outcome.upper())),
        l.elapsed_ms,
        l.source
    ));
}

/// WAIT for the replicas to acknowledge the entry, then read it on each.
async fn replica_reads(
    ctx: &Ctx,
    master: &mut crate::client::Conn,
    survey: &Survey,
    key: &str,
) -> Vec<ReplicaRead> {
    let n = survey.replicas().len();
    // WAIT counts this connection's writes, which include the SETEX.
    let _ = master
        .query_for::<u64>(
            redis::cmd("WAIT")
                .arg(n)
                // WAIT 0 would block forever.
                .arg(ctx.timeout.as_millis().max(1) as u64),
            ctx.timeout,
        )
        .await;
    let mut out = Vec::new();
    for st in survey.replicas() {
        let (hit, elapsed_ms, error) = match st.conn.clone() {
            Some(mut c) => read_on(&mut c, key).await,
            None => (false, 0.0, st.error.as_ref().map(|e| e.message.clone())),
        };
        out.push(ReplicaRead {
            name: st.node.name.clone(),
            hit,
            elapsed_ms,
            error,
        });
    }
    out
}

async fn entries(master: &mut crate::client::Conn, keys: &[String]) -> Result<Vec<CachedEntry>> {
    let mut out = Vec::new();
    for k in keys {
        let (ttl_ms, value): (i64, Option<String>) = master
            .pipe(redis::pipe().cmd("PTTL").arg(k).cmd("GET").arg(k))
            .await?;
        out.push(CachedEntry {
            key: k.clone(),
            ttl_ms,
            value,
        });
    }
    Ok(out)
}

/// Watch the entry count down; if it expires within the window, query again.
async fn expiry(
    cfg: &Config,
    ctx: &Ctx,
    cache: &mut Cache<'_>,
    hit: &Lookup,
) -> Result<(Option<ttl_watch::TtlWatchDetails>, Option<Lookup>)> {
    let say = &cfg.narrate;
    let key = hit.key.as_str();
    // The countdown starts now, with this step, not when the entry was
    // written: however long the steps before took, the whole of it is
    // shown. An entry that expired meanwhile (a --ttl shorter than the
    // steps) is written again, so the watch always happens. The entry is
    // redlab's own, under its prefix (in the ledger since step 2).
    let ttl_ms = cfg.ttl.as_millis().max(1) as u64;
    let rearmed: u64 = cache
        .master
        .query(redis::cmd("PEXPIRE").arg(key).arg(ttl_ms))
        .await?;
    let again = if rearmed == 1 {
        ""
    } else {
        let _: () = cache
            .master
            .query(
                redis::cmd("SET")
                    .arg(key)
                    .arg(hit.value.to_string())
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        "The entry expired during the steps before (its TTL is shorter than they took), so it is written again. "
    };
    let until_expiry = cfg.ttl_window.is_none_or(|w| cfg.ttl <= w);
    let watched = {
        say.line(&if until_expiry {
            format!(
                "{again}The entry's TTL is set again to {}: watching it count down and expire on every node{}.",
                humantime::format_duration(cfg.ttl),
                if cfg.ttl > Duration::from_secs(10) {
                    format!(
                        " (that takes {}; --ttl 10s makes it shorter)",
                        humantime::format_duration(cfg.ttl)
                    )
                } else {
                    String::new()
                }
            )
        } else {
            format!(
                "{again}The entry's TTL is set again to {}: watching {} of it (--ttl-window; without it the demo waits for the expiry).",
                humantime::format_duration(cfg.ttl),
                humantime::format_duration(cfg.ttl_window.unwrap_or_default())
            )
        });
        let mut w = ttl_watch::WatchConfig::expiry(cfg.ttl);
        w.key = Some(key.to_string());
        w.window = cfg.ttl_window.filter(|_| !until_expiry);
        w.narrate = *say;
        if cfg.fast {
            w.interval = Duration::from_millis(100);
        }
        Some(ttl_watch::watch(&w, ctx).await?)
    };
    if watched
        .as_ref()
        .is_some_and(|w| w.ended == ttl_watch::Ended::Window)
    {
        return Ok((watched, None));
    }
    say.line(&format!("After expiry, \"{}\" again:", cfg.query));
    let again = cache.lookup(&cfg.query).await?;
    tell(say, &again, cfg.ttl);
    Ok((watched, Some(again)))
}

/// The workshop page's query box: one lookup per line until an empty line or EOF.
async fn prompt(say: &Narrator, cache: &mut Cache<'_>, ttl: Duration) -> Result<Vec<Lookup>> {
    // A plain thread, not the blocking pool: a read pending at Ctrl-C must not
    // hold the runtime's shutdown.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    loop {
        say.write_prompt("query> ");
        let Some(line) = lines.recv().await else {
            break;
        };
        let q = line.trim();
        if q.is_empty() {
            break;
        }
        let l = cache.lookup(q).await?;
        tell(say, &l, ttl);
        out.push(l);
    }
    if !out.is_empty() {
        let refs: Vec<&Lookup> = out.iter().collect();
        say.tables(&[details::lookups("Your queries", &refs)]);
    }
    Ok(out)
}
