//! Deterministic keys, value sizes and values.
//!
//! Everything is a pure function of (seed, request number) or (seed, key
//! index) rather than of a stateful RNG stream. Why: requests are claimed by
//! whichever connection is free, so a stateful per-connection RNG would make
//! the key/value of request r depend on scheduling. Counter-based hashing makes
//! a run reproducible and lets tests recompute every key and value.

use super::engine::Workload;

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash used as a
/// counter-based RNG (`mix(seed ^ stream, counter)`).
#[inline]
pub fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed
        .wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Separate hash streams so key choice and value length are independent.
const KEY_STREAM: u64 = 0x6b65_7973; // "keys"
const LEN_STREAM: u64 = 0x6c65_6e73; // "lens"

/// Key index used by request number `request`: the request number itself
/// (one distinct key per request) or a seeded-random index in `0..k`.
#[inline]
pub fn key_index(keyspace: Option<u64>, seed: u64, request: u64) -> u64 {
    match keyspace {
        Some(k) if k > 0 => mix(seed ^ KEY_STREAM, request) % k,
        _ => request,
    }
}

/// Value length for key `index`: fixed when min == max, otherwise uniform in
/// `min..=max`, derived from the key index so every write of a key has the
/// same length and a verifier can recompute it.
#[inline]
pub fn value_len(seed: u64, index: u64, (min, max): (usize, usize)) -> usize {
    if max <= min {
        return min;
    }
    let span = (max - min) as u64 + 1;
    min + (mix(seed ^ LEN_STREAM, index) % span) as usize
}

/// The value stored under key index `i`: the unit `"<i>:"` (decimal) repeated
/// and truncated to `len` bytes. E.g. `expected_value(42, 7) == b"42:42:4"`.
/// Cheap to generate, different for neighbouring keys, checkable by eye.
pub fn expected_value(i: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    fill_value(&mut v, i, len);
    v
}

/// Append `expected_value(i, len)` to `buf` in place (no temporary Vec).
#[inline]
pub fn fill_value(buf: &mut Vec<u8>, i: u64, len: usize) {
    fill_value_digits(buf, itoa::Buffer::new().format(i).as_bytes(), len);
}

/// `fill_value` given the decimal digits of i (the encoder already has them).
#[inline]
pub fn fill_value_digits(buf: &mut Vec<u8>, digits: &[u8], len: usize) {
    if len <= digits.len() {
        // Short values (the common 3-byte case): a prefix of the digits.
        buf.extend_from_slice(&digits[..len]);
        return;
    }
    let start = buf.len();
    buf.extend_from_slice(digits);
    buf.push(b':');
    let unit = buf.len() - start;
    if unit >= len {
        buf.truncate(start + len);
        return;
    }
    // Double the written prefix: it stays a whole number of units, so the
    // copy keeps the pattern periodic; the last copy is truncated to fit.
    let mut written = unit;
    while written < len {
        let n = written.min(len - written);
        buf.extend_from_within(start..start + n);
        written += n;
    }
}

/// What request number `request` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Get,
}

/// Operation for request `request`. Mixed spreads SETs evenly through the
/// sequence (Bresenham-style) instead of in blocks, so any window of
/// `sets + gets` requests has exactly the configured ratio.
#[inline]
pub fn op_for(workload: &Workload, request: u64) -> Op {
    match *workload {
        Workload::Set | Workload::SetWait { .. } => Op::Set,
        Workload::Get => Op::Get,
        Workload::Mixed { sets, gets } => {
            let total = sets as u64 + gets as u64;
            if total == 0 || sets == 0 {
                return if sets == 0 && gets > 0 {
                    Op::Get
                } else {
                    Op::Set
                };
            }
            let r = request % total;
            let s = sets as u64;
            if (r + 1) * s / total > r * s / total {
                Op::Set
            } else {
                Op::Get
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_periodic_and_exact_length() {
        assert_eq!(expected_value(42, 7), b"42:42:4");
        assert_eq!(expected_value(7, 0), b"");
        assert_eq!(expected_value(123456, 3), b"123");
        assert_eq!(expected_value(0, 2), b"0:");
        let v = expected_value(9, 1000);
        assert_eq!(v.len(), 1000);
        assert!(v.chunks(2).all(|c| c == &b"9:"[..c.len()]));
    }

    #[test]
    fn mixed_ratio_is_exact_per_cycle() {
        let w = Workload::Mixed { sets: 1, gets: 3 };
        let ops: Vec<_> = (0..8).map(|r| op_for(&w, r)).collect();
        assert_eq!(ops.iter().filter(|o| **o == Op::Set).count(), 2);
        let w = Workload::Mixed { sets: 3, gets: 2 };
        let sets = (0..500).filter(|r| op_for(&w, *r) == Op::Set).count();
        assert_eq!(sets, 300);
    }

    #[test]
    fn keys_and_lengths_in_range() {
        for r in 0..1000 {
            assert!(key_index(Some(10), 1, r) < 10);
            let l = value_len(5, r, (3, 9));
            assert!((3..=9).contains(&l));
        }
        assert_eq!(key_index(None, 1, 77), 77);
        assert_eq!(value_len(5, 1, (4, 4)), 4);
    }
}
