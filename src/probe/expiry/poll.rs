//! One poller per node (its own clock), and what each node's readings say:
//! every moment is kept as the interval in which it must have happened.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::report::{MeasuredBy, NodeExpiry};
use crate::client::Conn;
use crate::duration::ms;
use crate::topology::Role;
use crate::ui::narrate::Narrator;

/// How the key leaving a node's keyspace can be seen.
pub enum Observe {
    Notification,
    /// INFO keyspace count of the db: `baseline` is taken while the key is served.
    Count {
        baseline: Option<u64>,
    },
    /// The master: it deletes the key when it stops serving it.
    Pttl,
    Unobservable,
}

impl Observe {
    pub fn describe(&self) -> &'static str {
        match self {
            Observe::Notification => "keyspace notifications (exact)",
            Observe::Count { .. } => "INFO keyspace counts (poll resolution, db must be quiet)",
            Observe::Pttl => "PTTL polling",
            Observe::Unobservable => "nothing: unreachable",
        }
    }
}

/// One reading of one node: known to describe the node somewhere between
/// `sent` and `recv`.
pub struct Sample {
    pub index: usize,
    pub sent: Instant,
    pub recv: Instant,
    /// PTTL, and the db's key count where counts are how the DEL is seen.
    pub result: Result<(i64, Option<u64>), String>,
}

/// PTTL (and the key count) on one node every `interval`, on its own clock,
/// until stopped or the node fails.
#[allow(clippy::too_many_arguments)]
pub async fn poller(
    index: usize,
    mut conn: Conn,
    key: String,
    db: i64,
    count: bool,
    interval: Duration,
    tx: UnboundedSender<Sample>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let sent = Instant::now();
        let result = read(&mut conn, &key, db, count).await;
        let failed = result.is_err();
        let recv = Instant::now();
        if tx
            .send(Sample {
                index,
                sent,
                recv,
                result,
            })
            .is_err()
            || failed
        {
            return;
        }
    }
}

async fn read(c: &mut Conn, key: &str, db: i64, count: bool) -> Result<(i64, Option<u64>), String> {
    if !count {
        let ttl: i64 = c
            .query(redis::cmd("PTTL").arg(key))
            .await
            .map_err(|e| e.message)?;
        return Ok((ttl, None));
    }
    let (ttl, text): (i64, String) = c
        .pipe(
            redis::pipe()
                .cmd("PTTL")
                .arg(key)
                .cmd("INFO")
                .arg("keyspace"),
        )
        .await
        .map_err(|e| e.message)?;
    let ks = crate::client::Info::parse(&text).keyspace();
    Ok((ttl, Some(ks.get(&(db as u32)).map(|c| c.keys).unwrap_or(0))))
}

/// What one node's readings have shown so far (times in ms since the start).
pub struct Track {
    pub conn: Option<Conn>,
    pub observe: Observe,
    pub res: NodeExpiry,
    /// The latest reading's implied expiry window (reading time + PTTL).
    pub implied_expiry: Option<(f64, f64)>,
    /// Send time of the last reading that still served the key.
    last_served_sent: Option<f64>,
    /// Send time of the last count that still included the key.
    last_counted_sent: Option<f64>,
    /// When it left its keyspace: (no earlier than, no later than).
    left: Option<(f64, f64)>,
    /// When it stopped serving: (no earlier than, no later than).
    stopped: Option<(f64, f64)>,
}

impl Track {
    pub fn new(conn: Option<Conn>, observe: Observe, res: NodeExpiry) -> Track {
        Track {
            conn,
            observe,
            res,
            implied_expiry: None,
            last_served_sent: None,
            last_counted_sent: None,
            left: None,
            stopped: None,
        }
    }

    pub fn done(&self) -> bool {
        self.res.error.is_some()
            || matches!(self.observe, Observe::Unobservable) && self.conn.is_none()
            || (self.stopped.is_some()
                && (self.left.is_some()
                    || matches!(self.observe, Observe::Unobservable | Observe::Pttl)))
    }

    pub fn left_by_notification(&mut self, at: Instant, t0: Instant) {
        if self.left.is_none() {
            let t = ms(at.saturating_duration_since(t0));
            self.left = Some((t, t));
        }
    }

    /// Fold one reading in; returns what happened, for the narrative.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        s: Sample,
        t0: Instant,
        (exp_lo, exp_hi): (Instant, Instant),
        master_expiry: Option<(f64, f64)>,
        tolerance: Duration,
        interval: Duration,
        db: i64,
    ) -> Vec<String> {
        let mut events = Vec::new();
        let (sent, recv) = (ms(s.sent - t0), ms(s.recv - t0));
        let took = recv - sent;
        self.res.slowest_poll_ms = Some(self.res.slowest_poll_ms.map_or(took, |x| x.max(took)));
        if took > ms(interval.max(tolerance)) && self.res.unresponsive_ms.is_none() {
            self.res.unresponsive_ms = Some(took);
            events.push(format!(
                "took {took:.0} ms to answer a PTTL (longer than the {:.0} ms poll interval)",
                ms(interval)
            ));
        }
        let r = &mut self.res;
        let (ttl, count) = match s.result {
            Ok(a) => a,
            Err(e) => {
                if r.error.is_none() {
                    events.push(format!("stopped answering: {e}"));
                    r.error = Some(e);
                }
                return events;
            }
        };
        if ttl >= 0 || ttl == -1 {
            r.last_ttl_ms = Some(ttl);
            r.ttl_samples.push(super::TtlSample {
                t_ms: sent,
                ttl_ms: ttl,
            });
            self.last_served_sent = Some(sent);
            r.last_served_ms = Some(sent);
            if ttl >= 0 {
                let mine = (sent + ttl as f64, recv + ttl as f64);
                self.implied_expiry = Some(mine);
                if let (Some(m), Role::Replica) = (master_expiry, r.role) {
                    // The two windows' distance: what the readings prove, no more.
                    let d = (mine.0 - m.1).max(m.0 - mine.1).max(0.0).round() as i64;
                    r.max_ttl_drift_ms = Some(r.max_ttl_drift_ms.map_or(d, |x| x.max(d)));
                }
            }
        } else if self.last_served_sent.is_some() && self.stopped.is_none() {
            // -2 before it was ever served means the key has not reached this node yet.
            let lo = self.last_served_sent.unwrap_or(sent);
            self.stopped = Some((lo, recv));
            r.stopped_serving_ms = Some(recv);
            let (elo, ehi) = (ms(exp_lo - t0), ms(exp_hi - t0));
            // Evidence of serving late: it served the key at `lo` or later.
            r.served_past_expiry_ms = Some(lo - ehi);
            r.stopped_after_expiry_ms = Some(((recv - elo) * 1000.0).round() / 1000.0);
            r.stop_resolution_ms = Some(((recv - lo) * 1000.0).round() / 1000.0);
            events.push(format!(
                "stops serving the key (between +{:.3} s and +{:.3} s; expected expiry +{:.3} s)",
                lo / 1e3,
                recv / 1e3,
                elo / 1e3
            ));
        }
        if let Observe::Count { baseline } = &mut self.observe {
            if let (Some(n), None) = (count, self.left) {
                match *baseline {
                    None if ttl >= 0 => {
                        *baseline = Some(n);
                        self.last_counted_sent = Some(sent);
                    }
                    Some(b) if n == b => self.last_counted_sent = Some(sent),
                    Some(b) if n + 1 == b && ttl == -2 => {
                        let lo = self.last_counted_sent.unwrap_or(sent);
                        self.left = Some((lo, recv));
                        events.push(format!(
                            "db{db} key count fell {b} -> {n}: the master's DEL arrived"
                        ));
                    }
                    Some(b) => {
                        self.res.note = Some(format!("db{db} was not quiet (its key count went {b} -> {n} for other reasons): the DEL's arrival could not be observed"));
                        self.observe = Observe::Unobservable;
                    }
                    None => {}
                }
            }
        }
        events
    }
}

/// The bar's message, short enough for 80 columns beside the bar: the
/// master's TTL (never below zero) and how many nodes still serve the key.
/// Each node's own moment is a line of its own above the bar.
pub fn ttl_line(tracks: &[Track]) -> String {
    let serving = tracks.iter().filter(|t| t.stopped.is_none()).count();
    let master = match tracks.first().map(|t| (t.stopped, t.res.last_ttl_ms)) {
        Some((Some(_), _)) => "gone from the master".to_string(),
        Some((None, Some(ms))) => format!("{:.1} s left", ms.max(0) as f64 / 1e3),
        _ => "-".to_string(),
    };
    format!("{master}, served by {serving}/{} nodes", tracks.len())
}

/// How far apart two nodes' notifications of one event may be read (each
/// on its own connection and task), ms.
const DELIVERY_JITTER_MS: f64 = 2.0;

/// The master's moment of leaving is the reference for each replica's gap:
/// the gap is the distance between the two intervals, never negative unless
/// the readings contradict each other (then it is a measurement failure).
pub fn finish(tracks: Vec<Track>, say: &Narrator) -> Vec<NodeExpiry> {
    let mut lefts = Vec::new();
    // The last moment the master was seen serving the key: no expiry of it
    // can have happened before.
    let master_served_until = tracks.first().and_then(|t| t.stopped).map(|(lo, _)| lo);
    let mut nodes: Vec<NodeExpiry> = tracks
        .into_iter()
        .map(|t| {
            let mut r = t.res;
            let left = match t.observe {
                Observe::Pttl => t.stopped,
                _ => t.left,
            };
            r.measured_by = match (&t.observe, left) {
                (Observe::Pttl, Some(_)) => MeasuredBy::Pttl,
                (_, None) => MeasuredBy::NotObserved,
                (Observe::Notification, Some(_)) => MeasuredBy::Notification,
                (_, Some(_)) => MeasuredBy::KeyspaceCount,
            };
            if let Some((lo, hi)) = left {
                r.left_keyspace_ms = Some(((lo + hi) / 2.0 * 1000.0).round() / 1000.0);
                r.left_resolution_ms = Some(((hi - lo) / 2.0 * 1000.0).round() / 1000.0);
            }
            lefts.push(left);
            r
        })
        .collect();
    let master_left = lefts[0];
    let master_how = nodes[0].measured_by;
    for (r, left) in nodes.iter_mut().zip(&lefts).skip(1) {
        let (Some((mlo, mhi)), Some((rlo, rhi))) = (master_left, *left) else {
            continue;
        };
        // Two notifications come over two sockets: the replica's can be read
        // a few hundred µs before the master's that caused it. Within that,
        // the gap is 0. Beyond it, the master's reading was late (this
        // process was not scheduled in time, as on a loaded machine): a
        // replica only drops the key on the master's DEL, so the master
        // dropped it before this replica's reading and after it was last
        // seen serving it. That wider window is the master's moment for
        // this replica; without a reading to bound it, no gap is reported.
        let (mlo, mhi) = if rhi + DELIVERY_JITTER_MS < mlo {
            match master_served_until.filter(|lo| *lo <= rhi) {
                Some(lo) => {
                    r.note = Some(format!(
                        "the master's notification was read {:.1} ms after this replica's (the client was busy): the master's moment is bounded by its last reading that served the key instead",
                        mlo - rhi
                    ));
                    (lo, rhi)
                }
                None => {
                    r.gap_measurement_failed = true;
                    continue;
                }
            }
        } else {
            (mlo, mhi)
        };
        let lo = (rlo - mhi).max(0.0);
        let hi = (rhi - mlo).max(0.0);
        let gap = ((lo + hi) / 2.0 * 1000.0).round() / 1000.0;
        let res = ((hi - lo) / 2.0 * 1000.0).round() / 1000.0;
        r.propagation_gap_ms = Some(gap);
        r.gap_resolution_ms = Some(res);
        say.line(&format!(
            "  {:<10} expiry-propagation gap {gap:.1} ms ± {res:.1} ms (master seen by {master_how}, replica by {})",
            r.name, r.measured_by
        ));
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(observe: Observe, left: Option<(f64, f64)>, stopped: Option<(f64, f64)>) -> Track {
        let mut t = Track::new(None, observe, NodeExpiry::default());
        t.left = left;
        t.stopped = stopped;
        t
    }

    #[test]
    fn a_master_notification_read_late_is_bounded_by_its_last_serving_reading() {
        // The replica's DEL notification was read at 95 ms, the master's
        // expired one only at 100 ms: the master dropped the key between
        // its last serving reading (90 ms) and the replica's reading.
        let nodes = finish(
            vec![
                track(
                    Observe::Notification,
                    Some((100.0, 100.0)),
                    Some((90.0, 101.0)),
                ),
                track(Observe::Notification, Some((95.0, 95.0)), None),
            ],
            &Narrator::silent(),
        );
        let r = &nodes[1];
        assert!(!r.gap_measurement_failed);
        assert_eq!(r.propagation_gap_ms, Some(2.5));
        assert_eq!(r.gap_resolution_ms, Some(2.5));
        assert!(
            r.note.as_deref().unwrap().contains("read 5.0 ms after"),
            "{:?}",
            r.note
        );
    }

    #[test]
    fn a_contradiction_nothing_bounds_is_a_failed_measurement() {
        let nodes = finish(
            vec![
                track(Observe::Notification, Some((100.0, 100.0)), None),
                track(Observe::Notification, Some((95.0, 95.0)), None),
            ],
            &Narrator::silent(),
        );
        assert!(nodes[1].gap_measurement_failed);
        assert_eq!(nodes[1].propagation_gap_ms, None);
    }

    #[test]
    fn readings_in_order_give_the_distance_between_them() {
        let nodes = finish(
            vec![
                track(
                    Observe::Notification,
                    Some((100.0, 100.0)),
                    Some((90.0, 101.0)),
                ),
                track(Observe::Notification, Some((100.4, 100.4)), None),
            ],
            &Narrator::silent(),
        );
        assert_eq!(nodes[1].propagation_gap_ms, Some(0.4));
        assert_eq!(nodes[1].note, None);
    }
}
