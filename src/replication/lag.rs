//! Each replica's offset lag in bytes over a load: the master's offset minus
//! the offset the replica acknowledged, both from one `INFO replication` on the
//! master per sample (one command per sample, whatever the number of
//! replicas, and nothing sent to the replicas).
//!
//! Replicas acknowledge about once a second (`REPLCONF ACK`), so under a
//! steady load the series is a saw-tooth of up to a second of writes, and the
//! catch-up time is at that resolution too: it says when the master *knew*
//! the replica had everything, which is what `WAIT` and `min-replicas-to-write`
//! act on.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::client::{Conn, ReplicaLine};
use crate::duration::ms;
use crate::series::lag::{LagSample, LagSeries, ReplicaLag};
use crate::topology::Node;

/// How often to sample and how long to wait for the replicas after the load.
#[derive(Debug, Clone, Copy)]
pub struct LagOptions {
    /// Time between samples (`--lag-interval`, 100 ms by default).
    pub interval: Duration,
    /// After the load ends, stop sampling once every replica has caught up,
    /// or after this long.
    pub settle: Duration,
}

impl Default for LagOptions {
    fn default() -> Self {
        LagOptions {
            interval: Duration::from_millis(100),
            settle: Duration::from_secs(5),
        }
    }
}

impl ReplicaLag {
    /// Fold one INFO in; the lag seen, or None when it was not listed online.
    fn observe(
        &mut self,
        line: Option<&ReplicaLine>,
        master_offset: u64,
        t_ms: f64,
    ) -> Option<u64> {
        // Right after a (re)connection the master shows offset=0 until the
        // first ACK: that is not a lag of the whole stream.
        let Some(line) =
            line.filter(|l| l.state == crate::client::LinkState::Online && l.offset > 0)
        else {
            self.unlisted_samples += 1;
            return None;
        };
        let lag_bytes = master_offset.saturating_sub(line.offset);
        if self.samples.is_empty() || lag_bytes > self.max_lag_bytes {
            self.max_lag_bytes = lag_bytes;
            self.max_lag_at_ms = t_ms;
        }
        self.samples.push(LagSample { t_ms, lag_bytes });
        Some(lag_bytes)
    }
}

/// Sample every replica's lag on the master every `opts.interval` from now
/// until `load_done` resolves and then every replica has caught up (or
/// `opts.settle` has passed). Start it with the first request of the load.
///
/// Never fails: an INFO that errs is counted in `failed_samples` and the
/// sampling goes on (a drill takes the master away on purpose).
pub async fn sample_lag(
    master: Conn,
    replicas: &[Node],
    opts: LagOptions,
    load_done: impl Future<Output = ()>,
) -> LagSeries {
    sample_lag_until(master, replicas, opts, load_done, std::future::pending()).await
}

/// `sample_lag` that also ends as soon as `stop` resolves (the caller's own
/// catch-up wait is over: sampling past it would only make the run longer).
pub async fn sample_lag_until(
    mut master: Conn,
    replicas: &[Node],
    opts: LagOptions,
    load_done: impl Future<Output = ()>,
    stop: impl Future<Output = ()>,
) -> LagSeries {
    let start = Instant::now();
    let mut out = LagSeries {
        interval_ms: ms(opts.interval),
        replicas: replicas
            .iter()
            .map(|n| ReplicaLag {
                name: n.name.clone(),
                address: n.addr(),
                ..ReplicaLag::default()
            })
            .collect(),
        ..LagSeries::default()
    };
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(load_done);
    tokio::pin!(stop);
    let mut ended: Option<Instant> = None;
    // Replicas listed online and not caught up yet, as of the last sample.
    let mut waiting = replicas.len();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => {
                let end = ended.unwrap_or_else(Instant::now);
                out.load_ended_ms = Some(ms(end - start));
                return out;
            }
            // Sample at once when the load ends: that is where catch-up starts.
            _ = &mut load_done, if ended.is_none() => ended = Some(Instant::now()),
        }
        let sent = Instant::now();
        let t_ms = ms(sent - start);
        let info = {
            let query = master.info("replication");
            tokio::pin!(query);
            loop {
                tokio::select! {
                    r = &mut query => break r,
                    _ = &mut load_done, if ended.is_none() => ended = Some(Instant::now()),
                }
            }
        };
        match info {
            Ok(info) => {
                let lines = info.replicas();
                let offset = info.repl_offset();
                waiting = 0;
                for (node, r) in replicas.iter().zip(out.replicas.iter_mut()) {
                    let line = super::line_for(node, &lines);
                    let lag = r.observe(line, offset, t_ms);
                    // One the master no longer lists online cannot catch up
                    // by being waited for.
                    if lag.is_some() && r.catch_up_ms.is_none() {
                        waiting += 1;
                    }
                    // A sample sent before the load ended does not show the catch-up.
                    if let (Some(end), None, Some(0)) = (ended, r.catch_up_ms, lag) {
                        if sent >= end {
                            r.catch_up_ms = Some(ms(sent - end));
                        }
                    }
                }
            }
            Err(e) => {
                out.failed_samples += 1;
                out.last_error = Some(e.message);
            }
        }
        if let Some(end) = ended {
            if waiting == 0 || sent.saturating_duration_since(end) >= opts.settle {
                out.load_ended_ms = Some(ms(end - start));
                return out;
            }
        }
    }
}

/// `sample_lag` on a task of its own, beside a load: `start` with the load's
/// first request, `finish` when the load has ended (it then samples until the
/// replicas caught up, or `opts.settle` passed). Its connection is its own, so
/// its INFO never queues behind the load's commands.
pub struct Sampler {
    done: tokio::sync::oneshot::Sender<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<LagSeries>>,
    started: Instant,
}

impl Sampler {
    pub fn start(
        master: Node,
        replicas: Vec<Node>,
        opts: LagOptions,
        timeout: Duration,
    ) -> Sampler {
        let (done, load_done) = tokio::sync::oneshot::channel::<()>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let conn = Conn::connect(&master, timeout).await.ok()?;
            Some(
                sample_lag_until(
                    conn,
                    &replicas,
                    opts,
                    async {
                        let _ = load_done.await;
                    },
                    async {
                        // A sender dropped without a word is no stop.
                        if stopped.await.is_err() {
                            std::future::pending::<()>().await
                        }
                    },
                )
                .await,
            )
        });
        Sampler {
            done,
            stop,
            task,
            started: Instant::now(),
        }
    }

    /// The series, and when sampling started (its clock's zero, give or take
    /// the connection); None when the master could not be reached.
    pub async fn finish(self) -> Option<(LagSeries, Instant)> {
        self.finish_until(std::future::pending()).await
    }

    /// As `finish`, but sampling stops at once when `until` resolves (the
    /// caller's own wait for the replicas is over).
    pub async fn finish_until(
        mut self,
        until: impl Future<Output = ()>,
    ) -> Option<(LagSeries, Instant)> {
        let _ = self.done.send(());
        let stop = self.stop;
        let series = tokio::select! {
            r = &mut self.task => r,
            _ = until => {
                let _ = stop.send(());
                self.task.await
            }
        };
        Some((series.ok().flatten()?, self.started))
    }
}
