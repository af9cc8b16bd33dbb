//! The loops behind the cards: every node read on its own clock (a stalled
//! node delays only its own card), a heartbeat write per shard timed until
//! each replica can read it (the lag chart), and one snapshot per tick pushed
//! to every tab.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;

use super::state::{lock, unix_ms, EntryView, LagPoint, NodeSlot, Snapshot, State, HISTORY};
use super::{PUSH, STALL, TICK};
use crate::client::{Info, Status};
use crate::run::Ctx;

/// Run every loop until the run is dropped.
pub async fn watch(state: &State, ctxs: &[Ctx]) -> Infallible {
    let readers = join_all(state.nodes.iter().map(read_loop));
    let beats = join_all(
        state
            .shards
            .iter()
            .enumerate()
            .map(|(i, _)| beat_loop(state, i)),
    );
    let publisher = publish_loop(state, ctxs);
    tokio::select! {
        _ = readers => {}
        _ = beats => {}
        never = publisher => match never {},
    }
    // The loops never end; a pending future keeps the type honest.
    std::future::pending().await
}

/// Read INFO on one node every tick; the card shows what came back.
async fn read_loop(slot: &NodeSlot) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        *lock(&slot.pending_since) = Some(Instant::now());
        let read = async {
            let mut c = slot.conn().await?;
            c.info_sections(&["server", "memory", "replication", "keyspace"])
                .await
        }
        .await;
        *lock(&slot.pending_since) = None;
        let mut v = lock(&slot.view);
        match read {
            Ok(info) => {
                fill(&mut v, &info);
            }
            Err(e) => {
                if matches!(
                    e.kind,
                    crate::client::ErrorKind::Closed | crate::client::ErrorKind::Timeout
                ) || e.message.contains("connection")
                {
                    slot.broken();
                }
                mark_down(&mut v, e.message);
            }
        }
    }
}

fn mark_down(v: &mut super::state::NodeView, why: String) {
    if v.status != Status::Down {
        v.down_since_ms = Some(unix_ms(SystemTime::now()));
    }
    v.status = Status::Down;
    v.error = Some(why);
    v.lag_ms = None;
}

fn fill(v: &mut super::state::NodeView, i: &Info) {
    v.status = i.status();
    v.error = None;
    v.down_since_ms = None;
    v.role = Some(i.role().to_string());
    v.keys = Some(i.keyspace().values().map(|c| c.keys).sum());
    v.memory = i.get("used_memory_human").map(String::from);
    v.used_memory_bytes = i.u64("used_memory");
    v.uptime_s = i.u64("uptime_in_seconds");
}

/// Each tick: write the shard's heartbeat key on the master (redlab's own,
/// with a TTL), then read it on each replica until it is there: the time a
/// write takes to become readable there is the lag the chart draws.
async fn beat_loop(state: &State, shard: usize) {
    let sh = &state.shards[shard];
    let key = format!("{}web:heartbeat", sh.prefix);
    let master = &state.nodes[sh.master];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let Ok(mut m) = master.conn().await else {
            continue;
        };
        sh.own(&key);
        let set = redis::cmd("SET")
            .arg(&key)
            .arg(n)
            .arg("PX")
            .arg(60_000)
            .clone();
        if m.query::<()>(&set).await.is_err() {
            master.broken();
            continue;
        }
        let written = Instant::now();
        let lags = join_all(sh.replicas.iter().map(|&r| {
            let slot = &state.nodes[r];
            visible(slot, &key, n.to_string(), written, STALL)
        }))
        .await;
        for (&r, lag) in sh.replicas.iter().zip(lags) {
            let slot = &state.nodes[r];
            let mut v = lock(&slot.view);
            if v.status != Status::Down {
                v.lag_ms = lag.ok();
            }
        }
    }
}

/// Read `key` on a replica until it holds `value`; the time since `since`, ms,
/// or why it did not within `bound`.
pub async fn visible(
    slot: &NodeSlot,
    key: &str,
    value: String,
    since: Instant,
    bound: Duration,
) -> Result<f64, String> {
    let poll = async {
        let mut c = slot.conn().await.map_err(|e| e.message)?;
        loop {
            let got: Option<String> = c
                .query(redis::cmd("GET").arg(key))
                .await
                .map_err(|e| e.message)?;
            if got.as_deref() == Some(value.as_str()) {
                return Ok(crate::duration::ms(since.elapsed()));
            }
            // A write reaches a replica in well under a millisecond on a
            // LAN: read again at once for a few ms (a round trip apart), then
            // every millisecond, so that a slow replica is not flooded.
            if since.elapsed() < Duration::from_millis(5) {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    match tokio::time::timeout(bound, poll).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "not readable within {}",
            humantime::format_duration(bound)
        )),
    }
}

/// Each tick: one snapshot for every tab, a point of the lag chart, and the
/// run's registry record kept current (the page writes as long as it runs).
async fn publish_loop(state: &State, ctxs: &[Ctx]) -> Infallible {
    let mut tick = tokio::time::interval(PUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_refresh = Instant::now();
    loop {
        tick.tick().await;
        let now = SystemTime::now();
        let nodes: Vec<_> = state
            .nodes
            .iter()
            .map(|n| {
                let stalled = lock(&n.pending_since).is_some_and(|t| t.elapsed() >= STALL);
                let mut v = lock(&n.view);
                if stalled && v.status != Status::Down {
                    mark_down(
                        &mut v,
                        format!(
                            "no answer to INFO for {} (stopped, overloaded or unreachable)",
                            humantime::format_duration(STALL)
                        ),
                    );
                }
                v.clone()
            })
            .collect();
        let at = Instant::now();
        let entries: Vec<EntryView> = lock(&state.entries)
            .iter()
            .map(|(k, e)| EntryView {
                query: e.query.clone(),
                key: k.clone(),
                shard: state.shards[e.shard].name.clone(),
                ttl_ms: e.expires_at.saturating_duration_since(at).as_millis() as i64,
            })
            .collect();
        let point = LagPoint {
            t_ms: unix_ms(now),
            lag_ms: state
                .nodes
                .iter()
                .zip(&nodes)
                .filter(|(n, _)| !n.is_master())
                .map(|(_, v)| v.lag_ms)
                .collect(),
        };
        {
            let mut h = lock(&state.history);
            h.push_back(point);
            while h.len() > HISTORY {
                h.pop_front();
            }
        }
        state.snapshot.send_replace(std::sync::Arc::new(Snapshot {
            t_ms: unix_ms(now),
            nodes,
            entries,
        }));
        for (ctx, sh) in ctxs.iter().zip(&state.shards) {
            if sh.wrote.swap(false, Ordering::Relaxed) {
                ctx.safety
                    .expiring(state.cfg.ttl.max(Duration::from_secs(60)));
            }
        }
        if since_refresh.elapsed() >= Duration::from_secs(10) {
            since_refresh = Instant::now();
            for ctx in ctxs {
                ctx.registry_refresh().await;
            }
        }
    }
}
