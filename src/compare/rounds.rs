//! What one read of a key on one node saw, how two reads compare, and the
//! re-check of differing keys in later rounds.
//!
//! In-flight writes are not differences: a key that differs is read again on
//! both sides after `--interval`, up to `--rounds` times in all; one that
//! converges (including one the master has since deleted or let expire, now
//! gone from the replica too) is identical. One that still differs after the
//! last round is a difference of its kind if neither side changed in the last
//! round, and `converging` if one did (it is being written to).

use super::fingerprint::KeyType;
use super::result::{Counts, Kind};

/// When a key expires, as seen from redlab: PTTL plus the time it was read,
/// which is only known to lie between sending the batch and its reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ttl {
    Persistent,
    /// Expiry between `lo_ms` and `hi_ms` after the comparison's epoch.
    Expires {
        lo_ms: f64,
        hi_ms: f64,
    },
}

impl Ttl {
    /// How far apart two expiry windows are, ms (0 when they overlap).
    fn gap_ms(a: (f64, f64), b: (f64, f64)) -> f64 {
        (b.0 - a.1).max(a.0 - b.1).max(0.0)
    }

    /// Whether two readings agree: both persistent, or expiring within `tol_ms`.
    pub fn agrees(&self, other: &Ttl, tol_ms: f64) -> bool {
        match (self, other) {
            (Ttl::Persistent, Ttl::Persistent) => true,
            (Ttl::Expires { lo_ms: a, hi_ms: b }, Ttl::Expires { lo_ms: c, hi_ms: d }) => {
                Ttl::gap_ms((*a, *b), (*c, *d)) <= tol_ms
            }
            _ => false,
        }
    }

    pub fn describe(&self, now_ms: f64) -> String {
        match self {
            Ttl::Persistent => "no TTL".into(),
            Ttl::Expires { lo_ms, hi_ms } => {
                format!("expires in {:.0} ms", (lo_ms + hi_ms) / 2.0 - now_ms)
            }
        }
    }
}

/// A key present on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Present {
    pub ty: KeyType,
    /// Value fingerprint (0 when only TTLs were read).
    pub fp: u128,
    /// Elements, or bytes for strings.
    pub size: u64,
    pub ttl: Ttl,
    /// The first bytes of the value, only with --show-values.
    pub preview: Option<Vec<u8>>,
    /// A stream's consumer groups and counters (None: not a stream, or not read).
    pub stream: Option<Box<super::groups::StreamMeta>>,
}

/// Whether two streams' groups agree (either not read: nothing to compare).
fn same_stream(a: &Present, b: &Present) -> bool {
    match (&a.stream, &b.stream) {
        (Some(x), Some(y)) => super::groups::same(x, y),
        (None, None) => true,
        _ => false,
    }
}

/// One read of one key on one node.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Absent,
    Present(Present),
    /// The key changed while it was read (type changed between TYPE and the
    /// read, a multi-chunk read that does not add up): read it again.
    Unstable(&'static str),
}

/// How a replica's read compares with the master's; None when identical.
pub fn classify(master: &State, replica: &State, tol_ms: f64) -> Option<Kind> {
    match (master, replica) {
        (State::Absent, State::Absent) => None,
        (State::Unstable(_), _) | (_, State::Unstable(_)) => Some(Kind::Converging),
        (State::Present(_), State::Absent) => Some(Kind::Missing),
        (State::Absent, State::Present(_)) => Some(Kind::Extra),
        (State::Present(m), State::Present(r)) => {
            if m.ty != r.ty {
                Some(Kind::TypeDiffers)
            } else if m.fp != r.fp || m.size != r.size || !same_stream(m, r) {
                // Different bytes of a serialization not known to be stable prove nothing.
                Some(if m.ty.opaque() {
                    Kind::NotCompared
                } else {
                    Kind::ValueDiffers
                })
            } else if !m.ttl.agrees(&r.ttl, tol_ms) {
                Some(Kind::TtlDiffers)
            } else {
                None
            }
        }
    }
}

/// Whether two reads of the same key on the same node saw the same thing.
pub fn same(a: &State, b: &State, tol_ms: f64) -> bool {
    match (a, b) {
        (State::Present(x), State::Present(y)) => {
            x.ty == y.ty
                && x.fp == y.fp
                && x.size == y.size
                && same_stream(x, y)
                && x.ttl.agrees(&y.ttl, tol_ms)
        }
        (State::Absent, State::Absent) => true,
        _ => false,
    }
}

/// A key that differed, waiting for its next round.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Index of the replica among those compared.
    pub replica: usize,
    pub db: u32,
    pub key: Vec<u8>,
    pub kind: Kind,
    pub master: State,
    pub on_replica: State,
    /// Either side changed between its last two reads.
    pub moving: bool,
    /// Read values (false: types and TTLs only, after equal digests).
    pub values: bool,
    /// Times it was read again after the first.
    pub rechecks: u32,
    /// Found identical on a re-read: no longer a difference.
    pub converged: bool,
}

/// Differing keys kept for re-checking, up to a cap: whatever the keyspace,
/// memory holds only these (key names and two small reads each).
pub struct Tracker {
    pub diffs: Vec<Diff>,
    cap: usize,
    /// Per replica: differences past the cap, counted without a re-check.
    pub overflow: Vec<Counts>,
}

impl Tracker {
    pub fn new(replicas: usize, cap: usize) -> Tracker {
        Tracker {
            diffs: Vec::new(),
            cap,
            overflow: vec![Counts::default(); replicas],
        }
    }

    pub fn add(&mut self, d: Diff) {
        if self.diffs.len() < self.cap {
            self.diffs.push(d);
        } else {
            self.overflow[d.replica].add(d.kind, 1);
        }
    }

    /// Fold in a new read of a tracked key.
    pub fn update(d: &mut Diff, master: State, on_replica: State, tol_ms: f64) {
        d.rechecks += 1;
        match classify(&master, &on_replica, tol_ms) {
            None => d.converged = true,
            Some(kind) => {
                d.moving =
                    !same(&d.master, &master, tol_ms) || !same(&d.on_replica, &on_replica, tol_ms);
                d.kind = kind;
                d.master = master;
                d.on_replica = on_replica;
            }
        }
    }

    /// The kind a difference is reported as after its last read: one that
    /// was still changing is not proven either way.
    pub fn final_kind(d: &Diff) -> Kind {
        if d.rechecks > 0 && d.moving {
            Kind::Converging
        } else {
            d.kind
        }
    }

    /// Differences still open.
    pub fn open(&self) -> usize {
        self.diffs.iter().filter(|d| !d.converged).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(fp: u128, ttl: Ttl) -> State {
        State::Present(Present {
            ty: KeyType::String,
            fp,
            size: 3,
            ttl,
            preview: None,
            stream: None,
        })
    }

    fn exp(at: f64) -> Ttl {
        Ttl::Expires {
            lo_ms: at,
            hi_ms: at + 2.0,
        }
    }

    #[test]
    fn kinds_in_order_of_what_matters() {
        let p = Ttl::Persistent;
        assert_eq!(classify(&present(1, p), &present(1, p), 250.0), None);
        assert_eq!(classify(&State::Absent, &State::Absent, 250.0), None);
        assert_eq!(
            classify(&present(1, p), &State::Absent, 250.0),
            Some(Kind::Missing)
        );
        assert_eq!(
            classify(&State::Absent, &present(1, p), 250.0),
            Some(Kind::Extra)
        );
        assert_eq!(
            classify(&present(1, p), &present(2, p), 250.0),
            Some(Kind::ValueDiffers)
        );
        assert_eq!(
            classify(&present(1, p), &present(1, exp(5000.0)), 250.0),
            Some(Kind::TtlDiffers)
        );
        let mut hash = present(1, p);
        if let State::Present(x) = &mut hash {
            x.ty = KeyType::Hash;
        }
        assert_eq!(
            classify(&present(1, p), &hash, 250.0),
            Some(Kind::TypeDiffers)
        );
        assert_eq!(
            classify(&State::Unstable("x"), &hash, 250.0),
            Some(Kind::Converging)
        );
        // A module type redlab does not know: equal DUMPs are identical,
        // different ones are not compared; a known one differs.
        let module = |name: &str, fp: u128| {
            let mut s = present(fp, p);
            if let State::Present(x) = &mut s {
                x.ty = KeyType::parse(name).unwrap();
            }
            s
        };
        let opaque = |fp| module("TSDB-TYPE", fp);
        assert_eq!(classify(&opaque(1), &opaque(1), 250.0), None);
        assert_eq!(
            classify(&opaque(1), &opaque(2), 250.0),
            Some(Kind::NotCompared)
        );
        assert_eq!(
            classify(&opaque(1), &State::Absent, 250.0),
            Some(Kind::Missing)
        );
        assert_eq!(
            classify(&module("ReJSON-RL", 1), &module("ReJSON-RL", 2), 250.0),
            Some(Kind::ValueDiffers)
        );
        assert_eq!(
            classify(&module("TopK-TYPE", 1), &module("TopK-TYPE", 2), 250.0),
            Some(Kind::ValueDiffers)
        );
    }

    #[test]
    fn expiry_times_agree_within_the_tolerance_plus_the_read_windows() {
        // Windows [1000,1002] and [1200,1202]: 198 ms apart.
        assert!(exp(1000.0).agrees(&exp(1200.0), 250.0));
        assert!(!exp(1000.0).agrees(&exp(1300.0), 250.0));
        let wide = Ttl::Expires {
            lo_ms: 900.0,
            hi_ms: 1400.0,
        };
        assert!(wide.agrees(&exp(1500.0), 250.0));
        assert!(!Ttl::Persistent.agrees(&exp(1.0), 1e9));
    }

    #[test]
    fn a_key_that_keeps_changing_is_converging_a_stable_one_differs() {
        let d = Diff {
            replica: 0,
            db: 0,
            key: b"k".to_vec(),
            kind: Kind::ValueDiffers,
            master: present(1, Ttl::Persistent),
            on_replica: present(2, Ttl::Persistent),
            moving: false,
            values: true,
            rechecks: 0,
            converged: false,
        };
        let mut stable = d.clone();
        Tracker::update(
            &mut stable,
            present(1, Ttl::Persistent),
            present(2, Ttl::Persistent),
            250.0,
        );
        assert_eq!(Tracker::final_kind(&stable), Kind::ValueDiffers);
        let mut moved = d.clone();
        Tracker::update(
            &mut moved,
            present(3, Ttl::Persistent),
            present(2, Ttl::Persistent),
            250.0,
        );
        assert_eq!(Tracker::final_kind(&moved), Kind::Converging);
        // Deleted on the master, gone from the replica too: converged.
        let mut gone = d.clone();
        Tracker::update(&mut gone, State::Absent, State::Absent, 250.0);
        assert!(gone.converged);
        let mut t = Tracker::new(1, 1);
        t.add(d.clone());
        t.add(d);
        assert_eq!((t.diffs.len(), t.overflow[0].value_differs), (1, 1));
    }
}
