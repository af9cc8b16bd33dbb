//! Command templates for the hot loop: `SET/GET <prefix><index> [value]
//! [PX ms]` with everything constant precomputed and only the digits patched.

use super::resp::{decimal_len, push_bulk, push_bulk_header, push_u64};

/// Encoder for `SET/GET <prefix><index>` that keeps a ready-made command
/// template per (digit count, value length): `SET` head, key digits, value
/// header, and for short values the value itself. A SET is then: format the
/// digits into the template in place, patch the value, one append. This was
/// ~2x cheaper than assembling five pieces per command (each a memcpy call).
pub struct KeyEncoder {
    prefix: Vec<u8>,
    /// `$2\r\nPX\r\n$n\r\n<ms>\r\n` when SETs carry a TTL, else empty: the
    /// tail of every SET, after the value.
    ttl: Vec<u8>,
    /// Digit count the templates are built for, and the index range
    /// `lo..hi` that has exactly that many digits.
    digits: usize,
    lo: u64,
    hi: u64,
    /// SET template: head + digits + "\r\n$len\r\n" [+ value + "\r\n" + ttl].
    set: Vec<u8>,
    /// Offset of the inline value in `set`.
    value_at: usize,
    /// Offset of the digits in `set` (and in `get`).
    set_at: usize,
    get: Vec<u8>,
    get_at: usize,
    /// Value length the SET template is built for; `inline` if the value
    /// (a prefix of the digits) lives in the template.
    vlen: usize,
    inline: bool,
    /// Index currently written in the SET template: consecutive indices
    /// (the usual case inside a batch) just increment the digits in place.
    last_set: Option<u64>,
}

impl KeyEncoder {
    pub fn new(prefix: &[u8]) -> KeyEncoder {
        KeyEncoder::with_ttl(prefix, None)
    }

    /// Every SET carries `PX ttl_ms` when `ttl_ms` is given (encoded here,
    /// once, not per request).
    pub fn with_ttl(prefix: &[u8], ttl_ms: Option<u64>) -> KeyEncoder {
        let mut ttl = Vec::new();
        if let Some(ms) = ttl_ms {
            push_bulk(&mut ttl, b"PX");
            let mut digits = Vec::new();
            push_u64(&mut digits, ms);
            push_bulk(&mut ttl, &digits);
        }
        let mut e = KeyEncoder {
            prefix: prefix.to_vec(),
            ttl,
            digits: 0,
            lo: 1,
            hi: 0,
            set: Vec::new(),
            value_at: 0,
            set_at: 0,
            get: Vec::new(),
            get_at: 0,
            vlen: usize::MAX,
            inline: false,
            last_set: None,
        };
        e.rebuild(0, 0);
        e
    }

    /// Rebuild both templates for `index`'s digit count and value length.
    fn rebuild(&mut self, index: u64, vlen: usize) {
        self.last_set = None;
        self.digits = decimal_len(index);
        self.lo = if self.digits == 1 {
            0
        } else {
            10u64.pow(self.digits as u32 - 1)
        };
        self.hi = 10u64.checked_pow(self.digits as u32).unwrap_or(u64::MAX);
        let klen = self.prefix.len() + self.digits;
        let zeros = vec![b'0'; self.digits];
        self.vlen = vlen;
        self.inline = vlen <= self.digits;
        self.set.clear();
        if self.ttl.is_empty() {
            self.set.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
        } else {
            self.set.extend_from_slice(b"*5\r\n$3\r\nSET\r\n");
        }
        push_bulk_header(&mut self.set, klen);
        self.set.extend_from_slice(&self.prefix);
        self.set_at = self.set.len();
        self.set.extend_from_slice(&zeros);
        self.set.extend_from_slice(b"\r\n");
        push_bulk_header(&mut self.set, vlen);
        self.value_at = self.set.len();
        if self.inline {
            self.set.extend_from_slice(&zeros[..vlen]);
            self.set.extend_from_slice(b"\r\n");
            self.set.extend_from_slice(&self.ttl);
        }
        self.get.clear();
        self.get.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
        push_bulk_header(&mut self.get, klen);
        self.get.extend_from_slice(&self.prefix);
        self.get_at = self.get.len();
        self.get.extend_from_slice(&zeros);
        self.get.extend_from_slice(b"\r\n");
    }

    /// Append `SET <prefix><index> <value>`. The value is `value_len` bytes
    /// of `fill(buf, digits)` output, except when it is no longer than the
    /// digits, where it is the first `value_len` digits (same thing as
    /// `keys::fill_value`, without a call).
    #[inline]
    pub fn set(
        &mut self,
        buf: &mut Vec<u8>,
        index: u64,
        value_len: usize,
        fill: impl FnOnce(&mut Vec<u8>, &[u8]),
    ) {
        if index < self.lo || index >= self.hi || value_len != self.vlen {
            self.rebuild(index, value_len);
        }
        let (at, n) = (self.set_at, self.digits);
        let changed_from = if self.last_set.and_then(|l| l.checked_add(1)) == Some(index) {
            increment_digits(&mut self.set[at..at + n])
        } else {
            write_digits(&mut self.set[at..at + n], index);
            0
        };
        self.last_set = Some(index);
        if self.inline {
            // The value is the first digits: refresh only if they changed.
            if changed_from < value_len {
                let (head, tail) = self.set.split_at_mut(self.value_at);
                tail[..value_len].copy_from_slice(&head[at..at + value_len]);
            }
            buf.extend_from_slice(&self.set);
            return;
        }
        buf.extend_from_slice(&self.set);
        let before = buf.len();
        fill(buf, &self.set[at..at + n]);
        debug_assert_eq!(buf.len() - before, value_len);
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(&self.ttl);
    }

    /// Append `GET <prefix><index>`.
    #[inline]
    pub fn get(&mut self, buf: &mut Vec<u8>, index: u64) {
        if index < self.lo || index >= self.hi {
            let vlen = self.vlen;
            self.rebuild(index, vlen);
        }
        let (at, n) = (self.get_at, self.digits);
        write_digits(&mut self.get[at..at + n], index);
        buf.extend_from_slice(&self.get);
    }
}

/// Add one to the ASCII decimal in `slot` (the caller guarantees it does not
/// gain a digit); returns the position of the leftmost digit that changed.
#[inline]
fn increment_digits(slot: &mut [u8]) -> usize {
    let mut i = slot.len();
    while i > 0 {
        i -= 1;
        if slot[i] == b'9' {
            slot[i] = b'0';
        } else {
            slot[i] += 1;
            return i;
        }
    }
    0
}

/// Write `n` into `slot` (whose length is n's digit count).
#[inline]
fn write_digits(slot: &mut [u8], n: u64) {
    slot.copy_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::resp::encode_command;

    #[test]
    fn key_encoder_matches_generic_encoding() {
        let mut enc = KeyEncoder::new(b"pre:");
        let mut ttl = KeyEncoder::with_ttl(b"pre:", Some(1500));
        let cases = [
            (0u64, 3usize),
            (9, 3),
            (10, 0),
            (12345, 12),
            (99, 3),
            (100, 5),
            (100, 2),
        ];
        let runs = (0..130).chain(990..1010).chain(1999..2001).map(|i| (i, 3));
        for (idx, vlen) in cases.into_iter().chain(runs) {
            let mut fast = Vec::new();
            enc.set(&mut fast, idx, vlen, |b, d| {
                b.extend(d.iter().chain(b":").cycle().take(vlen));
            });
            let key = format!("pre:{idx}");
            let val: Vec<u8> = format!("{idx}:").bytes().cycle().take(vlen).collect();
            let mut slow = Vec::new();
            encode_command(&mut slow, &[b"SET", key.as_bytes(), &val]);
            assert_eq!(fast, slow);
            fast.clear();
            slow.clear();
            ttl.set(&mut fast, idx, vlen, |b, d| {
                b.extend(d.iter().chain(b":").cycle().take(vlen));
            });
            encode_command(&mut slow, &[b"SET", key.as_bytes(), &val, b"PX", b"1500"]);
            assert_eq!(fast, slow);
            fast.clear();
            slow.clear();
            enc.get(&mut fast, idx);
            encode_command(&mut slow, &[b"GET", key.as_bytes()]);
            assert_eq!(fast, slow);
        }
    }
}
