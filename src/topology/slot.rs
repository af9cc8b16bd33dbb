//! Redis Cluster's key -> slot rule (CRC16/XMODEM of the key, or of its
//! hash tag, modulo 16384), and a short hash tag for every slot, so that
//! redlab can put a run's keys on the shard it means.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

const fn table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            b += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

static CRC16: [u16; 256] = table();

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses it.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, b| {
        (crc << 8) ^ CRC16[(((crc >> 8) as u8) ^ b) as usize]
    })
}

/// The part of a key that is hashed: the text between the first `{` and the
/// first `}` after it when that is not empty, else the whole key.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|b| *b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|b| *b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The slot a key lives in.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOTS
}

/// Whether every key that starts with `prefix` hashes to one slot (the
/// prefix holds a complete, non-empty hash tag).
pub fn prefix_has_tag(prefix: &[u8]) -> bool {
    hashed_part(prefix).len() < prefix.len()
}

/// A short tag (`{tag}` in a key) whose slot is `slot`: the first of the
/// strings `0`, `1`, ..., `z`, `00`, ... in base 36 that hashes there. The
/// same on every run, so a later run finds what an earlier one put there.
pub fn tag_for_slot(slot: u16) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); SLOTS as usize];
        let mut left = SLOTS as usize;
        let mut n: u64 = 0;
        // About 16384 * ln(16384) candidates: a few milliseconds, once.
        while left > 0 {
            let t = base36(n);
            let s = key_slot(t.as_bytes()) as usize;
            if tags[s].is_empty() {
                tags[s] = t;
                left -= 1;
            }
            n += 1;
        }
        tags
    });
    &tags[(slot % SLOTS) as usize]
}

/// `0`..`z`, then `00`..`zz`, ...: every string over [0-9a-z] in length order.
fn base36(mut n: u64) -> String {
    let mut len = 1;
    let mut span = 36u64;
    while n >= span {
        n -= span;
        len += 1;
        span *= 36;
    }
    let mut out = vec![b'0'; len];
    for c in out.iter_mut().rev() {
        *c = std::char::from_digit((n % 36) as u32, 36).expect("digit < 36") as u8;
        n /= 36;
    }
    String::from_utf8(out).expect("ascii")
}

/// Keys grouped by slot, in slot order: one multi-key command per group is
/// never refused with CROSSSLOT.
pub fn group_by_slot<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> BTreeMap<u16, Vec<K>> {
    let mut out: BTreeMap<u16, Vec<K>> = BTreeMap::new();
    for k in keys {
        out.entry(key_slot(k.as_ref())).or_default().push(k);
    }
    out
}

/// `0-5460, 10923-16383`: slot ranges as people read them.
pub fn ranges_text(ranges: &[(u16, u16)]) -> String {
    if ranges.is_empty() {
        return "none".into();
    }
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many slots the ranges hold.
pub fn count(ranges: &[(u16, u16)]) -> u32 {
    ranges.iter().map(|(a, b)| (*b - *a) as u32 + 1).sum()
}

/// Sorted slots -> ranges of consecutive slots.
pub fn to_ranges(slots: impl IntoIterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in slots {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => out.push((s, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // CLUSTER KEYSLOT on Redis 7.0.15.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"redlab:x:{a}:y"), 15495);
        assert_eq!(key_slot(b"{a}"), key_slot(b"a"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(key_slot(b"{}x"), crc16(b"{}x") % SLOTS);
        assert_eq!(key_slot(b"x{b}{a}"), key_slot(b"b"));
        assert!(prefix_has_tag(b"redlab:r:{7}:"));
        assert!(!prefix_has_tag(b"redlab:r:") && !prefix_has_tag(b"redlab:{"));
    }

    #[test]
    fn every_slot_has_a_short_tag() {
        for s in [0u16, 1, 5460, 5461, 10922, 16383] {
            let t = tag_for_slot(s);
            assert_eq!(key_slot(t.as_bytes()), s, "{t}");
            assert!(t.len() <= 4, "{t}");
            assert_eq!(
                key_slot(format!("redlab:abc:{{{t}}}:probe:1").as_bytes()),
                s
            );
        }
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "00");
    }

    #[test]
    fn ranges_and_groups() {
        assert_eq!(to_ranges([0, 1, 2, 5, 7, 8]), vec![(0, 2), (5, 5), (7, 8)]);
        assert_eq!(ranges_text(&[(0, 5460), (7, 7)]), "0-5460, 7");
        assert_eq!(count(&[(0, 5460), (5461, 16383)]), 16384);
        let g = group_by_slot(["{a}1", "{b}1", "{a}2"]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[&key_slot(b"a")], vec!["{a}1", "{a}2"]);
    }
}
