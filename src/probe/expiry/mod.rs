//! The expiry probe (ttl-watch's measurement, check's `expiry` step, demo's
//! expiry): a key's TTL read on every node as it counts down, the moment
//! each node stops serving it, and, where it can be observed, the moment it
//! leaves each replica's keyspace because the master's DEL arrived (replicas
//! never expire keys themselves: they hide them, then wait for the DEL).
//!
//! Every node is polled by a task of its own, on its own clock: a stalled
//! node delays only its own readings, and it is the one reported. Every
//! moment is an interval (a reading is known between its send and its
//! reply), so a verdict rests on what was seen, never on a neighbour's delay.
//!
//! `measure` watches on a survey taken already (`check`'s), `watch` takes its
//! own; `checks` judges the details. `cmd::ttl_watch` is the subcommand.

mod figures;
mod notify;
mod poll;
mod report;

pub use report::{checks, Ended, MeasuredBy, NodeExpiry, TtlSample, TtlWatchDetails};

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::sync::mpsc::unbounded_channel;

use crate::duration::ms;
use crate::run::Ctx;
use crate::survey::{Master, Survey};
use crate::topology::Role;
use crate::ui::narrate::Narrator;

use poll::{Observe, Sample, Track};

/// What to watch and how closely.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// An existing key, only read; None: redlab writes its own key with `ttl`.
    pub key: Option<String>,
    /// TTL of redlab's own key.
    pub ttl: Duration,
    /// PTTL polling period on every node (the resolution of every moment measured by polling).
    pub interval: Duration,
    /// Allowed TTL drift between nodes, and lateness of a node in hiding the key.
    pub tolerance: Duration,
    /// How long after the expected expiry the key may take to leave every node.
    pub grace: Duration,
    /// Stop after this long even if the key still lives (the demo's --ttl-window).
    pub window: Option<Duration>,
    pub narrate: Narrator,
}

pub type Config = WatchConfig;

impl WatchConfig {
    /// redlab's own key with this TTL, watched until it has left every node,
    /// without narrative: the expiry-propagation check.
    pub fn expiry(ttl: Duration) -> WatchConfig {
        WatchConfig {
            key: None,
            ttl,
            interval: Duration::from_millis(250),
            tolerance: Duration::from_millis(250),
            grace: Duration::from_secs(5),
            window: None,
            narrate: Narrator::silent(),
        }
    }
}

/// check's `expiry` line when every node passed: redlab's key of `ttl`, and
/// the largest gap between the master's expiry and a replica's.
pub fn summary(d: &TtlWatchDetails, ttl: Duration) -> String {
    let gap = d
        .nodes
        .iter()
        .filter_map(|n| n.propagation_gap_ms)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    format!(
        "a {} key expired on every node in time; largest expiry-propagation gap {}",
        humantime::format_duration(ttl),
        gap.map(|g| format!("{g:.1} ms"))
            .unwrap_or_else(|| "not observable".into())
    )
}

/// Watch a key expire on every node of `ctx.topology` and measure each step.
/// redlab's own key is in the ledger (removed even on Ctrl-C); `--key` is only read.
pub async fn watch(cfg: &WatchConfig, ctx: &Ctx) -> Result<TtlWatchDetails> {
    let survey = ctx.survey().await?;
    let master = survey.master()?;
    measure(cfg, ctx, &survey, &master).await
}

/// Watch on this survey's nodes.
pub async fn measure(
    cfg: &WatchConfig,
    ctx: &Ctx,
    survey: &Survey,
    master: &Master<'_>,
) -> Result<TtlWatchDetails> {
    let say = &cfg.narrate;
    let db = ctx.topology.master.db();
    let (key, written) = match &cfg.key {
        Some(k) => (k.clone(), false),
        None => (ctx.key("ttl-watch"), true),
    };
    let (tx, mut notes) = unbounded_channel();
    let mut tracks = Vec::new();
    for (i, st) in survey.all().iter().enumerate() {
        let mut res = NodeExpiry {
            name: st.node.name.clone(),
            address: st.node.addr(),
            role: st.node.role,
            error: st.error.as_ref().map(|e| e.message.clone()),
            ..NodeExpiry::default()
        };
        let observe = match &st.conn {
            None => Observe::Unobservable,
            Some(c) => {
                let sub =
                    notify::subscribe(&mut c.clone(), &st.node, i, &key, tx.clone(), ctx.timeout)
                        .await;
                match (sub, st.node.role) {
                    (Ok(()), _) => Observe::Notification,
                    (Err(why), Role::Master) => {
                        res.note = Some(format!("{why}; the master drops the key when it stops serving it, seen at poll resolution"));
                        Observe::Pttl
                    }
                    (Err(why), Role::Replica) => {
                        res.note = Some(format!(
                            "{why}; watching db{db}'s key count in INFO keyspace instead"
                        ));
                        Observe::Count { baseline: None }
                    }
                }
            }
        };
        tracks.push(Track::new(st.conn.clone(), observe, res));
    }
    if written {
        ctx.prepare_writes(master, 64 * 1024).await?;
        let mut m = master.conn.clone();
        ctx.ledger.add(key.clone());
        ctx.safety.expiring(cfg.ttl);
        let px = cfg.ttl.as_millis().max(1) as u64;
        m.query::<()>(
            redis::cmd("SET")
                .arg(&key)
                .arg("redlab ttl-watch")
                .arg("PX")
                .arg(px),
        )
        .await?;
        say.line(&format!(
            "wrote {key} on the master with a TTL of {}",
            humantime::format_duration(cfg.ttl)
        ));
    }
    for t in &tracks {
        say.line(&format!(
            "  {:<10} key leaving its keyspace seen by {}",
            t.res.name,
            t.observe.describe()
        ));
    }
    let t0 = Instant::now();
    let (samples_tx, mut samples) = unbounded_channel::<Sample>();
    let stop = tokio_util_stop();
    let pollers: Vec<_> = tracks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let conn = t.conn.clone().filter(|_| t.res.error.is_none())?;
            Some(tokio::spawn(poll::poller(
                i,
                conn,
                key.clone(),
                db,
                matches!(t.observe, Observe::Count { .. }),
                cfg.interval,
                samples_tx.clone(),
                stop.1.clone(),
            )))
        })
        .collect();
    drop(samples_tx);
    let bar = ctx.progress.countdown(cfg.ttl.as_millis() as u64, "");
    // The key is named before the watch starts; the bar fits the terminal.
    bar.set_prefix("TTL");
    let mut expected: Option<(Instant, Instant)> = None;
    let mut initial_ttl_ms = 0;
    let mut polls = 0u64;
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended = loop {
        tokio::select! {
            s = samples.recv() => {
                let Some(s) = s else { break Ended::Bound };
                polls += 1;
                if s.index == 0 && expected.is_none() {
                    match &s.result {
                        Err(e) => bail!("{}: {e}", master.node().label()),
                        Ok((-2, _)) => bail!("{key} does not exist on the master (db{db}): nothing to watch"),
                        Ok((-1, _)) => bail!("{key} has no TTL on the master: it never expires, nothing to watch"),
                        Ok((t, _)) => {
                            initial_ttl_ms = *t;
                            let ttl = Duration::from_millis(*t as u64);
                            expected = Some((s.sent + ttl, s.recv + ttl));
                            bar.set_length(*t as u64);
                            say.line_above(&bar, &format!(
                                "+{:.3} s  TTL {t} ms on the master; expected expiry at +{:.3} s",
                                ms(s.sent - t0) / 1e3,
                                ms(s.sent + ttl - t0) / 1e3
                            ));
                        }
                    }
                }
                let Some(exp) = expected else { continue };
                let latest_master = tracks[0].implied_expiry;
                let i = s.index;
                for event in tracks[i].update(s, t0, exp, latest_master, cfg.tolerance, cfg.interval, db) {
                    say.line_above(&bar, &format!("+{:.3} s  {} {event}", ms(Instant::now() - t0) / 1e3, tracks[i].res.name));
                }
            }
            _ = tick.tick() => {}
        }
        while let Ok((i, at)) = notes.try_recv() {
            tracks[i].left_by_notification(at, t0);
        }
        let now = Instant::now();
        bar.set_position(ms(now - t0) as u64);
        bar.set_message(poll::ttl_line(&tracks));
        let Some((_, exp_hi)) = expected else {
            if now - t0 > cfg.ttl + cfg.grace + ctx.timeout {
                bail!("{}: no PTTL answer from the master", master.node().label());
            }
            continue;
        };
        if tracks.iter().all(Track::done) {
            break Ended::Expired;
        }
        if cfg.window.is_some_and(|w| now - t0 >= w) && now < exp_hi {
            break Ended::Window;
        }
        if now > exp_hi + cfg.grace {
            break Ended::Bound;
        }
    };
    let _ = stop.0.send(true);
    for p in pollers {
        let _ = p.await;
    }
    while let Ok(s) = samples.try_recv() {
        if let Some(exp) = expected {
            let i = s.index;
            let m = tracks[0].implied_expiry;
            tracks[i].update(s, t0, exp, m, cfg.tolerance, cfg.interval, db);
        }
    }
    while let Ok((i, at)) = notes.try_recv() {
        tracks[i].left_by_notification(at, t0);
    }
    bar.finish();
    let exp = expected.map(|(lo, hi)| (ms(lo - t0), ms(hi - t0)));
    let mut nodes = poll::finish(tracks, say);
    if ended == Ended::Window {
        // Not a failure to observe: the watch ended before the expiry.
        for n in &mut nodes {
            if n.measured_by == MeasuredBy::NotObserved {
                n.measured_by = MeasuredBy::WindowEnded;
            }
        }
    }
    Ok(TtlWatchDetails {
        key,
        db,
        written_by_redlab: written,
        initial_ttl_ms,
        interval_ms: ms(cfg.interval),
        tolerance_ms: ms(cfg.tolerance),
        grace_ms: ms(cfg.grace),
        polls,
        ended,
        watched_ms: ms(t0.elapsed()),
        expected_expiry_ms: exp.map(|(lo, _)| lo),
        nodes,
    })
}

/// A stop signal the pollers watch.
fn tokio_util_stop() -> (
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<bool>,
) {
    tokio::sync::watch::channel(false)
}
