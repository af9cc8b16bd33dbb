//! What a comparison found: plain data, serialisable as it is.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::rounds::Tracker;
use super::settle::Settle;
use super::Comparison;

/// How a replica's data was compared with the master's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// `DEBUG DIGEST` equal on both (one command each), then TTLs on a sample.
    Digest,
    /// Key by key: type, value fingerprint and TTL.
    Keys,
}

/// The ways a key can differ between the master and a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On the master, not on the replica.
    Missing,
    /// On the replica, not on the master.
    Extra,
    /// Another type on the replica.
    TypeDiffers,
    /// Same type, another value.
    ValueDiffers,
    /// Same value; a TTL on one side only, or expiry times further apart than the tolerance.
    TtlDiffers,
    /// Still changing after the last round (written to while compared): not proven either way.
    Converging,
    /// A module type whose serialized forms differ, and which redlab cannot
    /// read otherwise: not proven either way.
    NotCompared,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Missing,
        Kind::Extra,
        Kind::TypeDiffers,
        Kind::ValueDiffers,
        Kind::TtlDiffers,
        Kind::Converging,
        Kind::NotCompared,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::TypeDiffers => "type differs",
            Kind::ValueDiffers => "value differs",
            Kind::TtlDiffers => "TTL differs",
            Kind::Converging => "still converging",
            Kind::NotCompared => "not compared",
        }
    }
}

/// Keys per outcome, for one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Keys compared: the master's (all, or the sample) plus keys found only on the replica.
    pub compared: u64,
    /// Keys found the same on both (present with the same type, value and TTL, or gone from both).
    pub identical: u64,
    /// Keys on the master that the replica does not have.
    pub missing: u64,
    /// Keys on the replica that the master does not have.
    pub extra: u64,
    /// Keys with another type on the replica.
    pub type_differs: u64,
    /// Keys with the same type and another value.
    pub value_differs: u64,
    /// Keys whose TTL differs (one side only, or beyond the tolerance).
    pub ttl_differs: u64,
    /// Keys still changing after the last round: not proven identical, not proven different.
    pub converging: u64,
    /// Keys of a module type whose serialized forms differ and which redlab
    /// cannot read otherwise: not proven identical, not proven different.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_compared: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    pub fn add(&mut self, kind: Kind, n: u64) {
        *self.slot(kind) += n;
    }

    pub fn get(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Missing => self.missing,
            Kind::Extra => self.extra,
            Kind::TypeDiffers => self.type_differs,
            Kind::ValueDiffers => self.value_differs,
            Kind::TtlDiffers => self.ttl_differs,
            Kind::Converging => self.converging,
            Kind::NotCompared => self.not_compared,
        }
    }

    fn slot(&mut self, kind: Kind) -> &mut u64 {
        match kind {
            Kind::Missing => &mut self.missing,
            Kind::Extra => &mut self.extra,
            Kind::TypeDiffers => &mut self.type_differs,
            Kind::ValueDiffers => &mut self.value_differs,
            Kind::TtlDiffers => &mut self.ttl_differs,
            Kind::Converging => &mut self.converging,
            Kind::NotCompared => &mut self.not_compared,
        }
    }

    /// Keys proven different (converging and not compared ones aside).
    pub fn differing(&self) -> u64 {
        self.missing + self.extra + self.type_differs + self.value_differs + self.ttl_differs
    }

    /// Keys neither proven identical nor proven different.
    pub fn unproven(&self) -> u64 {
        self.converging + self.not_compared
    }
}

/// One differing key, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySample {
    /// How it differs.
    pub kind: Kind,
    /// Database number.
    pub db: u32,
    /// The key name as redis-cli shows it: printable ASCII as is, a
    /// backslash as `\\`, a double quote as `\"`, `\n` `\r` `\t`, any
    /// other byte as `\xNN` (so the byte 0x00 is `\x00` and the four
    /// characters `\x00` are `\\x00`: one reading only).
    pub key: String,
    /// The key's exact bytes in base64 (standard alphabet, padded), present
    /// when `key` is not the name as it is (any escape in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// What differs (types, sizes, TTLs; values only with --show-values).
    pub detail: String,
}

/// The comparison of one replica with the master.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaResult {
    /// `replica1`, ...
    pub name: String,
    /// host:port.
    pub address: String,
    /// Whether it followed this master and had caught up before the comparison.
    pub settle: Settle,
    /// Why it was not compared (syncing, not following, link down, unreachable), else null.
    pub not_compared: Option<String>,
    /// How it was compared, null when it was not.
    pub path: Option<Path>,
    /// Why that path: digests equal or not, or why DEBUG DIGEST could not be used.
    pub path_reason: String,
    /// Keys per outcome.
    pub counts: Counts,
    /// Up to `--show` differing keys per kind.
    pub samples: Vec<KeySample>,
    /// Differences past the re-check cap, counted from their first sighting
    /// without a re-check.
    pub not_rechecked: u64,
    /// Digest path: keys with a TTL whose expiry times were compared (a sample).
    pub ttl_checked_keys: Option<u64>,
    /// Digest path: streams whose consumer groups, pending entries and
    /// counters were compared key by key (the digest does not see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_checked_keys: Option<u64>,
    /// The module types of the keys counted `not_compared` (among the
    /// differences re-checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_compared_types: Vec<String>,
    /// An error from this replica that ended its comparison early.
    pub error: Option<String>,
    /// Commands redlab sent to this replica (ops as --max-ops counts them).
    pub ops: u64,
}

/// How the keys to compare were chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleInfo {
    /// `all` (every key), `scan` (SCAN keeping each key with a probability)
    /// or `random` (RANDOMKEY, distinct keys); per db the cheaper one is used.
    pub method: String,
    /// --sample N, if given.
    pub requested_keys: Option<u64>,
    /// --sample-ratio, if given.
    pub requested_ratio: Option<f64>,
    /// Keys of the master that were compared (the sample size).
    pub master_keys_sampled: u64,
    /// Keys the master held when the comparison started (INFO keyspace).
    pub master_keys_total: u64,
}

/// Everything one comparison found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareResult {
    /// `master`.
    pub master: String,
    /// Its host:port.
    pub master_address: String,
    /// Databases compared: every db that has keys on the master or on a compared replica.
    pub dbs: Vec<u32>,
    /// DEBUG DIGEST of the master (hex), null when it was not read.
    pub master_digest: Option<String>,
    /// Why the digest fast path was not tried on the master (DEBUG disabled,
    /// not allowed to this user, --no-digest), else null.
    pub digest_unavailable: Option<String>,
    /// What of a stream's consumer groups was not compared, and why (a
    /// field this server version does not replicate faithfully), else null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_note: Option<String>,
    /// How the keys were chosen.
    pub sample: SampleInfo,
    /// Comparison rounds allowed (--rounds): the first pass and the re-checks.
    pub rounds: u32,
    /// Rounds used: 1 when the first pass found nothing to re-check.
    pub rounds_used: u32,
    /// Allowed difference between two expiry times, ms (plus the time between the two reads).
    pub ttl_tolerance_ms: f64,
    /// Per replica, in topology order.
    pub replicas: Vec<ReplicaResult>,
    /// Stopped by a signal before it finished: the counts are partial.
    pub interrupted: bool,
    /// Wall time of the comparison (settling excluded), ms.
    pub elapsed_ms: f64,
    /// Of which the passes over the keys, before the re-check rounds, ms.
    pub first_pass_ms: f64,
    /// Commands redlab sent to the master.
    pub master_ops: u64,
    /// Keys compared per second and replica, over the passes (`first_pass_ms`).
    pub keys_per_sec_per_node: f64,
}

impl Comparison {
    /// What was found: complete after `run` returned, partial when `run` was
    /// dropped (`interrupted`).
    pub fn result(&self, interrupted: bool) -> CompareResult {
        let acc = self.acc();
        let tol = crate::duration::ms(self.cfg.ttl_tolerance);
        let now = Instant::now();
        let started = acc.started.unwrap_or(now);
        let now_ms = crate::duration::ms(now.duration_since(started));
        let n = self.replicas.len();
        let mut counts: Vec<Counts> = acc
            .per
            .iter()
            .map(|p| Counts {
                compared: p.compared,
                ..Counts::default()
            })
            .collect();
        let mut samples: Vec<Vec<KeySample>> = vec![Vec::new(); n];
        let mut opaque: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); n];
        for d in acc.tracker.diffs.iter().filter(|d| !d.converged) {
            let kind = Tracker::final_kind(d);
            counts[d.replica].add(kind, 1);
            if let (Kind::NotCompared, super::rounds::State::Present(p)) = (kind, &d.master) {
                opaque[d.replica].insert(p.ty.name().to_string());
            }
            let shown = samples[d.replica].iter().filter(|s| s.kind == kind).count();
            if shown < self.cfg.show {
                samples[d.replica].push(super::pass::sample(
                    d,
                    kind,
                    self.cfg.show_values,
                    now_ms,
                    tol,
                ));
            }
        }
        let elapsed = acc.finished.unwrap_or(now).duration_since(started);
        let passes = acc.passes_done.unwrap_or(now).duration_since(started);
        let mut replicas = Vec::with_capacity(n);
        let mut keys_compared = 0;
        for r in 0..n {
            let over = &acc.tracker.overflow[r];
            for k in Kind::ALL {
                counts[r].add(k, over.get(k));
            }
            let c = &mut counts[r];
            c.identical = c.compared.saturating_sub(c.differing() + c.unproven());
            keys_compared += c.compared;
            samples[r].sort_by(|a, b| (a.kind, a.db, &a.key).cmp(&(b.kind, b.db, &b.key)));
            let per = &acc.per[r];
            let node = &self.nodes[r + 1];
            let settle = self.settles[r].clone();
            replicas.push(ReplicaResult {
                name: node.name.clone(),
                address: node.addr(),
                not_compared: (!settle.comparable()).then(|| settle.detail.clone()),
                settle,
                path: per.path,
                path_reason: per.path_reason.clone(),
                counts: counts[r].clone(),
                samples: std::mem::take(&mut samples[r]),
                not_rechecked: over.differing() + over.unproven(),
                not_compared_types: std::mem::take(&mut opaque[r]).into_iter().collect(),
                ttl_checked_keys: per.ttl_checked,
                streams_checked_keys: per.streams_checked,
                error: per.error.clone(),
                ops: self.replicas[r]
                    .as_ref()
                    .map(|io| io.ops.load(Ordering::Relaxed))
                    .unwrap_or(0),
            });
        }
        let compared_nodes = replicas.iter().filter(|r| r.path.is_some()).count().max(1);
        let mut sample = acc.sample.clone();
        if sample.master_keys_sampled == 0 && replicas.iter().all(|r| r.path != Some(Path::Keys)) {
            // Digests covered every key.
            sample.master_keys_sampled = sample.master_keys_total;
        }
        CompareResult {
            master: self.nodes[0].name.clone(),
            master_address: self.nodes[0].addr(),
            dbs: acc.dbs.clone(),
            master_digest: acc.master_digest.clone(),
            digest_unavailable: acc.digest_unavailable.clone(),
            streams_note: acc.streams_note.clone(),
            sample,
            rounds: self.cfg.rounds,
            rounds_used: acc.rounds_used,
            ttl_tolerance_ms: tol,
            replicas,
            interrupted,
            elapsed_ms: crate::duration::ms(elapsed),
            first_pass_ms: crate::duration::ms(passes),
            master_ops: self.master.ops.load(Ordering::Relaxed),
            keys_per_sec_per_node: keys_compared as f64
                / compared_nodes as f64
                / passes.as_secs_f64().max(1e-6),
        }
    }
}
