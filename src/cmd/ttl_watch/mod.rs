//! ttl-watch: a key's TTL read on every node as it counts down, the moment
//! each node stops serving it, and, where it can be observed, the moment it
//! leaves each replica's keyspace because the master's DEL arrived (replicas
//! never expire keys themselves: they hide them, then wait for the DEL).
//!
//! `watch` is the reusable core (`check` calls it for expiry propagation);
//! `run` is the subcommand around it.

mod figures;
mod notify;
mod report;

pub use report::{checks, NodeExpiry, TtlSample, TtlWatchDetails};

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::future::join_all;
use tokio::sync::mpsc::unbounded_channel;

use crate::cli::{GlobalArgs, TtlWatchArgs};
use crate::client::Conn;
use crate::ctx::Ctx;
use crate::duration::ms;
use crate::narrate::Narrator;
use crate::report::Report;
use crate::survey::{require_master, NodeState};
use crate::topology::Role;

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
    pub fn new(a: &TtlWatchArgs, g: &GlobalArgs) -> WatchConfig {
        WatchConfig {
            key: a.key.clone(),
            ttl: a.ttl,
            interval: a.interval,
            tolerance: a.tolerance,
            grace: a.grace,
            window: a.window,
            narrate: Narrator::new(!g.quiet),
        }
    }

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

/// How the key leaving a node's keyspace can be seen.
enum Observe {
    Notification,
    /// INFO keyspace count of the db: `baseline` is taken while the key is served.
    Count {
        baseline: Option<u64>,
    },
    /// The master: it deletes the key when it stops serving it.
    Pttl,
    Unobservable,
}

struct Track {
    conn: Option<Conn>,
    observe: Observe,
    res: NodeExpiry,
}

impl Track {
    fn done(&self) -> bool {
        self.res.error.is_some()
            || (self.res.stopped_serving_ms.is_some()
                && (self.res.left_keyspace_ms.is_some()
                    || matches!(self.observe, Observe::Unobservable | Observe::Pttl)))
    }
}

pub async fn run(cfg: Config, ctx: &Ctx) -> Result<Report<TtlWatchDetails>> {
    let states = ctx.survey().await;
    require_master(&states[0])?;
    let details = watch_states(&cfg, ctx, &states).await?;
    let checks = checks(&details);
    let nodes = states.iter().map(NodeState::to_info).collect();
    Ok(Report::new(
        "ttl-watch",
        ctx.manifest(),
        nodes,
        checks,
        details,
    ))
}

/// Watch a key expire on every node of `ctx.topology` and measure each step.
/// redlab's own key is in the ledger (removed even on Ctrl-C); `--key` is only read.
pub async fn watch(cfg: &WatchConfig, ctx: &Ctx) -> Result<TtlWatchDetails> {
    let states = ctx.survey().await;
    require_master(&states[0])?;
    watch_states(cfg, ctx, &states).await
}

pub async fn watch_states(
    cfg: &WatchConfig,
    ctx: &Ctx,
    states: &[NodeState],
) -> Result<TtlWatchDetails> {
    let say = &cfg.narrate;
    let db = ctx.topology.master.db();
    let (key, written) = match &cfg.key {
        Some(k) => (k.clone(), false),
        None => (ctx.key("ttl-watch"), true),
    };
    let (tx, mut rx) = unbounded_channel();
    let mut tracks = Vec::new();
    for (i, st) in states.iter().enumerate() {
        let mut res = NodeExpiry {
            name: st.node.name.clone(),
            address: st.node.addr(),
            role: if st.node.role == Role::Master {
                "master"
            } else {
                "replica"
            }
            .into(),
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
        tracks.push(Track {
            conn: st.conn.clone(),
            observe,
            res,
        });
    }
    if written {
        let mut m = states[0].conn.clone().expect("reachable master");
        ctx.ledger.add(key.clone());
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
        let how = match t.observe {
            Observe::Notification => "keyspace notifications (exact)",
            Observe::Count { .. } => "INFO keyspace counts (poll resolution, db must be quiet)",
            Observe::Pttl => "PTTL polling",
            Observe::Unobservable => "nothing: unreachable",
        };
        say.line(&format!(
            "  {:<10} key leaving its keyspace seen by {how}",
            t.res.name
        ));
    }
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let bar = ctx.progress.countdown(cfg.ttl.as_millis() as u64, "");
    bar.set_prefix(format!("TTL of {key}"));
    let mut start = None::<Instant>;
    let mut expected = None::<Instant>;
    let mut initial_ttl_ms = 0;
    let mut polls = 0u64;
    let ended = loop {
        ticker.tick().await;
        let sent = Instant::now();
        let answers = join_all(tracks.iter().map(|t| poll(t, &key, db))).await;
        polls += 1;
        let t0 = *start.get_or_insert(sent);
        if expected.is_none() {
            let first = answers[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.0;
            match first {
                -2 => bail!("{key} does not exist on the master (db{db}): nothing to watch"),
                -1 => bail!("{key} has no TTL on the master: it never expires, nothing to watch"),
                t => {
                    initial_ttl_ms = t;
                    expected = Some(sent + Duration::from_millis(t as u64));
                    bar.set_length(t as u64);
                    say.line_above(
                        &bar,
                        &format!(
                            "+0.000 s  TTL {t} ms on the master; expected expiry at +{:.3} s",
                            t as f64 / 1e3
                        ),
                    );
                }
            }
        }
        let exp = expected.expect("set at the first poll");
        let master_ttl = answers[0].as_ref().ok().map(|a| a.0).filter(|t| *t >= 0);
        for (t, a) in tracks.iter_mut().zip(answers) {
            for event in update(t, a, sent, t0, exp, master_ttl, db) {
                say.line_above(
                    &bar,
                    &format!("+{:.3} s  {} {event}", ms(sent - t0) / 1e3, t.res.name),
                );
            }
        }
        while let Ok((i, at)) = rx.try_recv() {
            tracks[i]
                .res
                .left_keyspace_ms
                .get_or_insert(ms(at.saturating_duration_since(t0)));
        }
        bar.set_position(ms(sent - t0) as u64);
        bar.set_message(ttl_line(&tracks));
        if tracks.iter().all(Track::done) {
            break "expired";
        }
        if cfg.window.is_some_and(|w| sent - t0 >= w) && sent < exp {
            break "window";
        }
        if sent > exp + cfg.grace {
            break "bound";
        }
    };
    bar.finish();
    let t0 = start.expect("at least one poll");
    while let Ok((i, at)) = rx.try_recv() {
        tracks[i]
            .res
            .left_keyspace_ms
            .get_or_insert(ms(at.saturating_duration_since(t0)));
    }
    let nodes = finish(tracks, ms(cfg.interval), say);
    Ok(TtlWatchDetails {
        key,
        db,
        written_by_redlab: written,
        initial_ttl_ms,
        interval_ms: ms(cfg.interval),
        tolerance_ms: ms(cfg.tolerance),
        grace_ms: ms(cfg.grace),
        polls,
        ended: ended.into(),
        watched_ms: ms(t0.elapsed()),
        nodes,
    })
}

/// PTTL, and the db's key count where counts are the way to see the DEL.
async fn poll(t: &Track, key: &str, db: i64) -> Result<(i64, Option<u64>), String> {
    let Some(mut c) = t.conn.clone().filter(|_| t.res.error.is_none()) else {
        return Err(t.res.error.clone().unwrap_or_default());
    };
    let ttl: i64 = c
        .query(redis::cmd("PTTL").arg(key))
        .await
        .map_err(|e| e.message)?;
    let count = match t.observe {
        Observe::Count { .. } if t.res.left_keyspace_ms.is_none() => {
            let ks = c.info("keyspace").await.map_err(|e| e.message)?.keyspace();
            Some(ks.get(&(db as u32)).map(|c| c.keys).unwrap_or(0))
        }
        _ => None,
    };
    Ok((ttl, count))
}

/// Fold one answer into a node's record; returns what happened, for the narrative.
fn update(
    t: &mut Track,
    answer: Result<(i64, Option<u64>), String>,
    sent: Instant,
    t0: Instant,
    expected: Instant,
    master_ttl: Option<i64>,
    db: i64,
) -> Vec<String> {
    let mut events = Vec::new();
    let r = &mut t.res;
    let (ttl, count) = match answer {
        Ok(a) => a,
        Err(e) => {
            if r.error.is_none() {
                events.push(format!("stopped answering: {e}"));
                r.error = Some(e);
            }
            return events;
        }
    };
    let now_ms = ms(sent - t0);
    if ttl >= 0 || ttl == -1 {
        r.last_ttl_ms = Some(ttl);
        r.ttl_samples.push(TtlSample {
            t_ms: now_ms,
            ttl_ms: ttl,
        });
        if let (Some(m), true) = (master_ttl, r.role == "replica" && ttl >= 0) {
            let d = (ttl - m).abs();
            r.max_ttl_drift_ms = Some(r.max_ttl_drift_ms.map_or(d, |x| x.max(d)));
        }
    } else if r.last_ttl_ms.is_some() && r.stopped_serving_ms.is_none() {
        // -2 before it was ever served means the key has not reached this node yet.
        r.stopped_serving_ms = Some(now_ms);
        let late = signed_ms(sent, expected);
        r.stopped_after_expiry_ms = Some(late);
        events.push(format!(
            "stops serving the key ({late:+.0} ms from its expected expiry)"
        ));
    }
    if let Observe::Count { baseline } = &mut t.observe {
        if let (Some(n), None) = (count, r.left_keyspace_ms) {
            match *baseline {
                None if ttl >= 0 => *baseline = Some(n),
                Some(b) if n == b => {}
                Some(b) if n + 1 == b && ttl == -2 => {
                    r.left_keyspace_ms = Some(now_ms);
                    events.push(format!(
                        "db{db} key count fell {b} -> {n}: the master's DEL arrived"
                    ));
                }
                Some(b) => {
                    r.note = Some(format!("db{db} was not quiet (its key count went {b} -> {n} for other reasons): the DEL's arrival could not be observed"));
                    t.observe = Observe::Unobservable;
                }
                None => {}
            }
        }
    }
    events
}

/// The master's moment of leaving is the reference for each replica's gap.
fn finish(tracks: Vec<Track>, interval_ms: f64, say: &Narrator) -> Vec<NodeExpiry> {
    let mut nodes: Vec<NodeExpiry> = tracks
        .into_iter()
        .map(|t| {
            let mut r = t.res;
            r.measured_by = match (&t.observe, r.left_keyspace_ms) {
                (Observe::Pttl, _) => {
                    r.left_keyspace_ms = r.stopped_serving_ms;
                    "pttl"
                }
                (_, None) => "not-observed",
                (Observe::Notification, Some(_)) => "notification",
                (_, Some(_)) => "keyspace-count",
            }
            .into();
            r
        })
        .collect();
    let (master_left, master_how) = (nodes[0].left_keyspace_ms, nodes[0].measured_by.clone());
    for r in nodes.iter_mut().skip(1) {
        if let (Some(m), Some(l)) = (master_left, r.left_keyspace_ms) {
            let exact = master_how == "notification" && r.measured_by == "notification";
            let res = if exact { 0.0 } else { interval_ms };
            r.propagation_gap_ms = Some(((l - m) * 1000.0).round() / 1000.0);
            r.gap_resolution_ms = Some(res);
            say.line(&format!(
                "  {:<10} expiry-propagation gap {:.1} ms ± {res:.0} ms (master seen by {master_how}, replica by {})",
                r.name, l - m, r.measured_by
            ));
        }
    }
    nodes
}

/// `a - b` in ms, negative when `a` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        ms(a - b)
    } else {
        -ms(b - a)
    }
}

fn ttl_line(tracks: &[Track]) -> String {
    tracks
        .iter()
        .map(|t| match (t.res.stopped_serving_ms, t.res.last_ttl_ms) {
            (Some(_), _) => format!("{} gone", t.res.name),
            (None, Some(ms)) => format!("{} {:.2}s", t.res.name, ms as f64 / 1e3),
            (None, None) => format!("{} -", t.res.name),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
