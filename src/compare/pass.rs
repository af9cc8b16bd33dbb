//! The key-level passes: batches of key names from a scan (or a sample) read
//! on the master and the replicas at once, a few batches in flight; the
//! replicas' own scans for keys the master does not have; and the re-check
//! rounds. Only differing keys are kept (`rounds::Tracker`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use redis::Value;
use tokio::sync::mpsc;

use super::fingerprint::{key_hash, printable, KeyType};
use super::limit::{cost, NodeIo};
use super::observe::{observe, ReadOpts};
use super::result::{KeySample, Kind};
use super::rounds::{classify, Diff, State, Tracker, Ttl};
use super::scan::{Keys, Plan};
use super::{Comparison, Config, Live};
use crate::client::NodeError;

/// Batches in flight at once: enough to keep the servers busy while redlab
/// folds the previous replies.
const IN_FLIGHT: usize = 3;

pub(super) struct Cx<'a> {
    pub cfg: &'a Config,
    pub live: &'a Live,
    pub epoch: Instant,
    pub cmp: &'a Comparison,
}

impl Cx<'_> {
    fn opts(&self, values: bool, groups: bool) -> ReadOpts {
        ReadOpts {
            epoch: self.epoch,
            values,
            previews: self.cfg.show_values,
            chunk_bytes: self.cfg.chunk_bytes,
            groups,
            entries_read: self.cmp.acc().streams_note.is_none(),
        }
    }

    fn tol_ms(&self) -> f64 {
        crate::duration::ms(self.cfg.ttl_tolerance)
    }

    fn progress(&self, keys: usize) {
        self.live
            .done_keys
            .fetch_add(keys as u64, Ordering::Relaxed);
    }

    /// Replica connections to `db`, failing the replicas that cannot be reached.
    async fn replica_ios(&self, db: u32, replicas: &[usize]) -> Vec<(usize, NodeIo)> {
        let mut out = Vec::new();
        for &r in replicas {
            if self.cmp.failed[r].load(Ordering::Relaxed) {
                continue;
            }
            match self.cmp.io(r + 1, db).await {
                Ok(io) => out.push((r, io)),
                Err(e) => self.cmp.fail_replica(r, &e),
            }
        }
        out
    }

    /// Keep a difference found on a first read of `key` in `db` on replica `r`.
    fn track(
        &self,
        acc: &mut super::Acc,
        (r, db, values): (usize, u32, bool),
        key: &[u8],
        m: &State,
        s: &State,
    ) {
        if let Some(kind) = classify(m, s, self.tol_ms()) {
            acc.tracker.add(Diff {
                replica: r,
                db,
                key: key.to_vec(),
                kind,
                master: m.clone(),
                on_replica: s.clone(),
                moving: false,
                values,
                rechecks: 0,
                converged: false,
            });
        }
    }
}

/// Key batches from `keys`, fed to `consume` a few at a time.
async fn drive<'k, F, Fut>(keys: Keys<'k>, mut consume: F) -> Result<(), NodeError>
where
    F: FnMut(Vec<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), NodeError>>,
{
    let (tx, rx) = mpsc::channel::<Vec<Vec<u8>>>(IN_FLIGHT);
    let producer = async move {
        let mut keys = keys;
        while let Some(batch) = keys.next().await? {
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        Ok::<(), NodeError>(())
    };
    let consumer = async move {
        let batches = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        let done = batches.map(&mut consume).buffer_unordered(IN_FLIGHT);
        futures_util::pin_mut!(done);
        while let Some(r) = done.next().await {
            r?;
        }
        Ok::<(), NodeError>(())
    };
    tokio::try_join!(producer, consumer).map(|_| ())
}

/// What a pass over the master's keys reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Values, TTLs and streams' consumer groups: key by key.
    Values,
    /// Types and TTLs only, after equal digests; streams are left to `Streams`.
    Ttl,
    /// Every stream's TTL and consumer groups after equal digests (the
    /// digest does not see groups).
    Streams,
}

/// Read the master's keys of `db` (all or a sample) on the master and on
/// `replicas`, as `mode` says.
pub(super) async fn master_pass(
    cx: &Cx<'_>,
    db: u32,
    plan: Plan,
    replicas: &[usize],
    mode: Mode,
) -> Result<(), NodeError> {
    let m = cx.cmp.io(0, db).await?;
    let rios = cx.replica_ios(db, replicas).await;
    cx.live.phase(match mode {
        Mode::Values => format!("db{db}: comparing keys"),
        Mode::Ttl => format!("db{db}: comparing expiry times"),
        Mode::Streams => format!("db{db}: comparing streams' consumer groups"),
    });
    let values = mode == Mode::Values;
    let opts = cx.opts(values, mode != Mode::Ttl);
    let (m, rios, opts) = (&m, &rios, &opts);
    drive(Keys::new(m, plan, cx.cfg.scan_count), |keys| async move {
        let live: Vec<&(usize, NodeIo)> = rios
            .iter()
            .filter(|(r, _)| !cx.cmp.failed[*r].load(Ordering::Relaxed))
            .collect();
        let (ms, rs) = tokio::join!(
            observe(m, &keys, opts),
            join_all(live.iter().map(|(_, io)| observe(io, &keys, opts)))
        );
        let ms = ms?;
        let mut ok = Vec::new();
        for ((r, _), states) in live.iter().zip(rs) {
            match states {
                Ok(s) => ok.push((*r, s)),
                Err(e) => cx.cmp.fail_replica(*r, &e),
            }
        }
        let mut acc = cx.cmp.acc();
        if values {
            acc.sample.master_keys_sampled += keys.len() as u64;
        }
        for (r, states) in &ok {
            for ((key, mst), st) in keys.iter().zip(&ms).zip(states) {
                let stream = matches!(mst, State::Present(p) if p.ty == KeyType::Stream);
                if mode == Mode::Ttl && stream {
                    continue;
                }
                if mode == Mode::Streams && stream {
                    *acc.per[*r].streams_checked.get_or_insert(0) += 1;
                }
                if values {
                    acc.per[*r].compared += 1;
                } else if matches!(mst, State::Present(p) if matches!(p.ttl, Ttl::Expires { .. })) {
                    *acc.per[*r].ttl_checked.get_or_insert(0) += 1;
                }
                cx.track(&mut acc, (*r, db, values), key, mst, st);
            }
        }
        drop(acc);
        cx.progress(keys.len());
        Ok(())
    })
    .await
}

/// Each replica's own keys of `db` (all or a sample), looked up on the
/// master: the ones the master does not have are read on both sides.
pub(super) async fn extra_passes(
    cx: &Cx<'_>,
    db: u32,
    plans: &std::collections::BTreeMap<(usize, u32), Plan>,
    replicas: &[usize],
) -> Result<(), NodeError> {
    let m = cx.cmp.io(0, db).await?;
    let rios = cx.replica_ios(db, replicas).await;
    cx.live
        .phase(format!("db{db}: looking for keys only the replicas have"));
    let passes = rios.iter().filter_map(|(r, rio)| {
        let plan = *plans.get(&(*r, db))?;
        let m = &m;
        Some(async move { (*r, extra_pass(cx, m, *r, rio, db, plan).await) })
    });
    for (r, res) in join_all(passes).await {
        match res {
            Err(e) if cx.cmp.is_master(&e) => return Err(e),
            Err(e) => cx.cmp.fail_replica(r, &e),
            Ok(()) => {}
        }
    }
    Ok(())
}

async fn extra_pass(
    cx: &Cx<'_>,
    m: &NodeIo,
    r: usize,
    rio: &NodeIo,
    db: u32,
    plan: Plan,
) -> Result<(), NodeError> {
    let opts = cx.opts(true, true);
    let opts = &opts;
    drive(Keys::new(rio, plan, cx.cfg.scan_count), |keys| async move {
        let scanned = keys.len();
        let only_here = not_on_master(m, keys, cx.cfg.cluster).await?;
        if !only_here.is_empty() {
            let (ms, rs) =
                tokio::join!(observe(m, &only_here, opts), observe(rio, &only_here, opts));
            let (ms, rs) = (ms?, rs?);
            let mut acc = cx.cmp.acc();
            for ((key, mst), st) in only_here.iter().zip(&ms).zip(&rs) {
                acc.per[r].compared += 1;
                cx.track(&mut acc, (r, db, true), key, mst, st);
            }
        }
        cx.progress(scanned);
        Ok(())
    })
    .await
}

/// The keys of a batch that the master does not have: one multi-key EXISTS
/// for the batch, and one per key only when some are missing. On a cluster,
/// one per key at once (the batch's keys are in many slots: CROSSSLOT).
async fn not_on_master(
    m: &NodeIo,
    keys: Vec<Vec<u8>>,
    cluster: bool,
) -> Result<Vec<Vec<u8>>, NodeError> {
    let mut seen = HashSet::with_capacity(keys.len());
    let keys: Vec<Vec<u8>> = keys
        .into_iter()
        .filter(|k| seen.insert(key_hash(k)))
        .collect();
    if keys.is_empty() {
        return Ok(keys);
    }
    if !cluster {
        let mut all = redis::cmd("EXISTS");
        for k in &keys {
            all.arg(k);
        }
        let n: u64 = m.query(&all, cost(1, keys.len() as u64)).await?;
        if n as usize == keys.len() {
            return Ok(Vec::new());
        }
    }
    let mut p = redis::pipe();
    for k in &keys {
        p.cmd("EXISTS").arg(k);
    }
    let each: Vec<Value> = m.pipe(&p, cost(keys.len() as u64, 0)).await?;
    Ok(keys
        .into_iter()
        .zip(each)
        .filter(|(_, e)| *e == Value::Int(0))
        .map(|(k, _)| k)
        .collect())
}

/// One open difference to read again.
struct Work {
    db: u32,
    replica: usize,
    values: bool,
    /// Its index in the tracker.
    idx: usize,
    key: Vec<u8>,
}

/// One re-check round: every open difference read again on both sides, in
/// batches of keys of one db and one replica.
pub(super) async fn recheck(cx: &Cx<'_>) -> Result<(), NodeError> {
    let mut work: Vec<Work> = {
        let acc = cx.cmp.acc();
        acc.tracker
            .diffs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.converged && !cx.cmp.failed[d.replica].load(Ordering::Relaxed))
            .map(|(idx, d)| Work {
                db: d.db,
                replica: d.replica,
                values: d.values,
                idx,
                key: d.key.clone(),
            })
            .collect()
    };
    work.sort_by_key(|w| (w.db, w.replica, w.values, w.idx));
    let mut groups: Vec<Vec<Work>> = Vec::new();
    for w in work {
        match groups.last_mut() {
            Some(g)
                if g.len() < cx.cfg.scan_count as usize
                    && (g[0].db, g[0].replica, g[0].values) == (w.db, w.replica, w.values) =>
            {
                g.push(w)
            }
            _ => groups.push(vec![w]),
        }
    }
    let tol = cx.tol_ms();
    let reads = stream::iter(groups)
        .map(|g| async move {
            let (db, r) = (g[0].db, g[0].replica);
            let keys: Vec<Vec<u8>> = g.iter().map(|w| w.key.clone()).collect();
            let opts = cx.opts(g[0].values, true);
            let m = cx.cmp.io(0, db).await?;
            let rio = match cx.cmp.io(r + 1, db).await {
                Ok(io) => io,
                Err(e) => return Ok((r, Err(e), g)),
            };
            let (ms, rs) = tokio::join!(observe(&m, &keys, &opts), observe(&rio, &keys, &opts));
            Ok::<_, NodeError>((r, ms.and_then(|ms| Ok((ms, rs?))), g))
        })
        .buffer_unordered(IN_FLIGHT);
    futures_util::pin_mut!(reads);
    while let Some(done) = reads.next().await {
        let (r, read, g) = done?;
        match read {
            Err(e) if cx.cmp.is_master(&e) => return Err(e),
            Err(e) => cx.cmp.fail_replica(r, &e),
            Ok((ms, rs)) => {
                let mut acc = cx.cmp.acc();
                for ((w, m), s) in g.iter().zip(ms).zip(rs) {
                    if let Some(d) = acc.tracker.diffs.get_mut(w.idx) {
                        Tracker::update(d, m, s, tol);
                    }
                }
            }
        }
    }
    Ok(())
}

/// A differing key as the report names it.
pub(super) fn sample(
    d: &Diff,
    kind: Kind,
    show_values: bool,
    now_ms: f64,
    tol_ms: f64,
) -> KeySample {
    let describe = |s: &State| match s {
        State::Absent => "absent".to_string(),
        State::Unstable(why) => format!("unreadable ({why})"),
        State::Present(p) if !d.values => format!("{}, {}", p.ty.name(), p.ttl.describe(now_ms)),
        State::Present(p) => {
            let mut out = format!(
                "{}, {} {}, {}",
                p.ty.name(),
                p.size,
                p.ty.unit(p.size),
                p.ttl.describe(now_ms)
            );
            if show_values {
                if let Some(v) = &p.preview {
                    out.push_str(&format!(
                        ", \"{}\"{}",
                        printable(v),
                        if (v.len() as u64) < p.size { "..." } else { "" }
                    ));
                }
            }
            out
        }
    };
    let detail = match kind {
        Kind::Converging => format!(
            "still changing after {}: master {}; replica {}",
            crate::report::plural(d.rechecks as u64, "re-check"),
            describe(&d.master),
            describe(&d.on_replica)
        ),
        Kind::NotCompared => format!(
            "master {}; replica {}: the DUMPs differ, which proves nothing for a module type redlab does not know to serialize stably",
            describe(&d.master),
            describe(&d.on_replica)
        ),
        Kind::TtlDiffers => {
            let ttl = |s: &State| match s {
                State::Present(p) => p.ttl.describe(now_ms),
                other => describe(other),
            };
            format!(
                "master {}; replica {} (tolerance {tol_ms:.0} ms)",
                ttl(&d.master),
                ttl(&d.on_replica)
            )
        }
        _ => {
            let mut out = format!(
                "master {}; replica {}",
                describe(&d.master),
                describe(&d.on_replica)
            );
            if let (State::Present(m), State::Present(r)) = (&d.master, &d.on_replica) {
                if let (Some(a), Some(b)) = (&m.stream, &r.stream) {
                    if let Some(why) = super::groups::describe_diff(a, b) {
                        out.push_str(&format!("; {why}"));
                    }
                }
            }
            out
        }
    };
    KeySample {
        kind,
        db: d.db,
        key: printable(&d.key),
        key_base64: crate::compare::fingerprint::base64_if_escaped(&d.key),
        detail,
    }
}
