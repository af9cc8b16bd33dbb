//! Type-aware fingerprints of values read in bounded chunks.
//!
//! A fingerprint is 128 bits of xxh3 over the type, the element count and
//! the elements: in order for strings, lists, streams and module values
//! read by DUMP, as a sum of per-element hashes for hashes, sets, sorted
//! sets and module values read by the module's own commands (`modules`),
//! whose element order differs between two servers holding the same value.
//! Chunks are folded in as they arrive, so a value is never held whole.
//! Replies are read the same way under RESP2 and RESP3 (maps flatten to
//! key, value; a RESP3 double and a RESP2 score string parse to the same f64).

use redis::Value;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::modules::{read_of, Read, ReadCmd};

/// What `TYPE` answers, `none` aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    String,
    Hash,
    Set,
    Zset,
    List,
    Stream,
    /// A module type, by the name TYPE gives (read as `modules::read_of` says).
    Other(Box<str>),
}

impl KeyType {
    /// None for `none`: no such key.
    pub fn parse(s: &str) -> Option<KeyType> {
        Some(match s {
            "none" => return None,
            "string" => KeyType::String,
            "hash" => KeyType::Hash,
            "set" => KeyType::Set,
            "zset" => KeyType::Zset,
            "list" => KeyType::List,
            "stream" => KeyType::Stream,
            other => KeyType::Other(other.into()),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::Set => "set",
            KeyType::Zset => "zset",
            KeyType::List => "list",
            KeyType::Stream => "stream",
            KeyType::Other(n) => n,
        }
    }

    /// A module type read through the module's own commands (not DUMP).
    pub fn module_commands(&self) -> Option<&'static [ReadCmd]> {
        match self {
            KeyType::Other(n) => match read_of(n) {
                Read::Commands(cmds) => Some(cmds),
                _ => None,
            },
            _ => None,
        }
    }

    /// A module type whose DUMP redlab does not know to be stable: equal
    /// bytes prove the values equal, different bytes prove nothing.
    pub fn opaque(&self) -> bool {
        matches!(self, KeyType::Other(n) if read_of(n) == Read::Opaque)
    }

    /// What its size counts, for messages: `n bytes`, `1 field`.
    pub fn unit(&self, n: u64) -> &'static str {
        let (one, many) = match self {
            KeyType::Other(_) if self.module_commands().is_some() => ("item", "items"),
            KeyType::String | KeyType::Other(_) => ("byte", "bytes"),
            KeyType::Hash => ("field", "fields"),
            KeyType::Stream => ("entry", "entries"),
            _ => ("member", "members"),
        };
        if n == 1 {
            one
        } else {
            many
        }
    }

    fn ordered(&self) -> bool {
        !matches!(self, KeyType::Hash | KeyType::Set | KeyType::Zset)
            && self.module_commands().is_none()
    }
}

/// A fingerprint being built from chunks.
pub struct Acc {
    ty: KeyType,
    ordered: Option<Box<Xxh3>>,
    sum: u128,
    /// Elements (bytes for strings and DUMP) folded in so far.
    pub size: u64,
    /// Bytes read so far, to size the next chunk.
    pub bytes: u64,
    scratch: Vec<u8>,
    /// The first bytes of the value (or of its first element), kept only
    /// when values may be shown.
    pub preview: Option<Vec<u8>>,
    keep_preview: bool,
}

/// Bytes of value kept for `--show-values`.
pub const PREVIEW_BYTES: usize = 64;

impl Acc {
    pub fn new(ty: KeyType, keep_preview: bool) -> Acc {
        let ordered = ty.ordered().then(|| Box::new(Xxh3::new()));
        Acc {
            ty,
            ordered,
            sum: 0,
            size: 0,
            bytes: 0,
            scratch: Vec::new(),
            preview: None,
            keep_preview,
        }
    }

    pub fn ty(&self) -> &KeyType {
        &self.ty
    }

    /// The fingerprint of everything folded in.
    pub fn finish(&self) -> u128 {
        let body = match &self.ordered {
            Some(h) => h.digest128(),
            None => self.sum,
        };
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(self.ty.name().as_bytes());
        out.push(0);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&body.to_le_bytes());
        xxh3_128(&out)
    }

    fn note_preview(&mut self, parts: &[&[u8]]) {
        if self.keep_preview && self.preview.is_none() {
            let joined: Vec<u8> = parts.join(&b'='); // field=value for hashes
            self.preview = Some(joined.into_iter().take(PREVIEW_BYTES).collect());
        }
    }

    /// Raw bytes of a string or a DUMP, in order; chunk boundaries do not matter.
    pub fn bytes_in(&mut self, b: &[u8]) {
        if self.keep_preview {
            let p = self.preview.get_or_insert_with(Vec::new);
            let room = PREVIEW_BYTES.saturating_sub(p.len());
            p.extend_from_slice(&b[..room.min(b.len())]);
        }
        if let Some(h) = &mut self.ordered {
            h.update(b);
        }
        self.size += b.len() as u64;
        self.bytes += b.len() as u64;
    }

    /// One element made of `parts` (a field and its value, a member and its
    /// score, a stream entry's id and fields), length-prefixed so that
    /// ("ab","c") and ("a","bc") differ.
    pub fn element(&mut self, parts: &[&[u8]]) {
        self.note_preview(parts);
        self.scratch.clear();
        for p in parts {
            self.scratch
                .extend_from_slice(&(p.len() as u64).to_le_bytes());
            self.scratch.extend_from_slice(p);
            self.bytes += p.len() as u64 + 8;
        }
        match &mut self.ordered {
            Some(h) => h.update(&self.scratch),
            None => self.sum = self.sum.wrapping_add(xxh3_128(&self.scratch)),
        }
        self.size += 1;
    }

    /// Fold in the reply of one of a module type's read commands: its
    /// elements in pairs (an item and its count) counted in the size, or
    /// its settings folded in uncounted. None when the reply does not read
    /// that way (the key changed type).
    pub fn module_reply(&mut self, cmd: &ReadCmd, reply: Value) -> Option<()> {
        let leaves: Vec<Vec<u8>> = flatten_all(reply).iter().map(leaf).collect::<Option<_>>()?;
        if !leaves.len().is_multiple_of(2) {
            return None;
        }
        for pair in leaves.chunks(2) {
            self.element(&[cmd.name.as_bytes(), &pair[0], &pair[1]]);
            if !cmd.elements {
                self.size -= 1;
            }
        }
        Some(())
    }

    /// Fold in one chunk's items as this type reads them (the reply of
    /// HSCAN/SSCAN after the cursor, ZRANGE WITHSCORES, LRANGE, XRANGE).
    /// Returns the number of elements, or None when the reply is not what
    /// this type answers (the key changed type between two reads).
    pub fn chunk(&mut self, items: Vec<Value>) -> Option<u64> {
        let before = self.size;
        match self.ty {
            KeyType::Hash => {
                let flat = flatten(items);
                if !flat.len().is_multiple_of(2) {
                    return None;
                }
                for pair in flat.chunks(2) {
                    self.element(&[bytes(&pair[0])?, bytes(&pair[1])?]);
                }
            }
            KeyType::Set | KeyType::List => {
                for v in &items {
                    self.element(&[bytes(v)?]);
                }
            }
            KeyType::Zset => {
                let flat = flatten(items);
                if !flat.len().is_multiple_of(2) {
                    return None;
                }
                for pair in flat.chunks(2) {
                    let score = score(&pair[1])?.to_bits().to_le_bytes();
                    self.element(&[bytes(&pair[0])?, &score]);
                }
            }
            KeyType::Stream => {
                for entry in items {
                    let mut e = flatten_all(entry);
                    if e.is_empty() {
                        return None;
                    }
                    let parts: Option<Vec<&[u8]>> = e.iter_mut().map(|v| bytes(v)).collect();
                    self.element(&parts?);
                }
            }
            KeyType::String | KeyType::Other(_) => return None,
        }
        Some(self.size - before)
    }
}

/// The bytes of a string-like reply (bulk, simple, verbatim, an integer as text).
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

/// One leaf of a module's reply as bytes: strings as they are, numbers as
/// text, a nil as nothing.
fn leaf(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        Value::Boolean(b) => Some(vec![*b as u8]),
        Value::Nil => Some(Vec::new()),
        other => bytes(other).map(<[u8]>::to_vec),
    }
}

/// A sorted-set score: a RESP3 double, or the RESP2 string Redis prints with
/// %.17g (which parses back to the same f64).
pub fn score(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Some(*i as f64),
        other => {
            let s = std::str::from_utf8(bytes(other)?).ok()?;
            match s {
                "inf" | "+inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                s => s.parse().ok(),
            }
        }
    }
}

/// The items of an aggregate reply, one level: arrays and sets as they are,
/// a RESP3 map as key, value, key, value; nested pairs (RESP3 ZRANGE
/// WITHSCORES answers [[member, score], ...]) are opened too.
pub fn flatten(items: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for v in items {
        match v {
            Value::Array(inner) | Value::Set(inner) => out.extend(inner),
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    out.push(k);
                    out.push(v);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Every leaf of a nested reply, in order (a stream entry: id, then fields).
pub fn flatten_all(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => {
            items.into_iter().flat_map(flatten_all).collect()
        }
        Value::Map(pairs) => pairs
            .into_iter()
            .flat_map(|(k, v)| {
                let mut e = flatten_all(k);
                e.extend(flatten_all(v));
                e
            })
            .collect(),
        other => vec![other],
    }
}

/// The items of an aggregate reply (RESP3 maps as key, value, ...).
pub fn items(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Some(items),
        Value::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A SCAN-family reply: the next cursor and the items.
pub fn cursor_reply(v: Value) -> Option<(u64, Vec<Value>)> {
    let mut parts = items(v)?.into_iter();
    let cursor = parts.next()?;
    let cursor = match &cursor {
        Value::Int(i) => *i as u64,
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok()?,
    };
    Some((cursor, items(parts.next()?)?))
}

/// A 128-bit hash of a key name, for sets of names that must stay small.
pub fn key_hash(key: &[u8]) -> u128 {
    xxh3_128(key)
}

/// A key or value as redis-cli shows it: printable ASCII as is, the rest `\xNN`.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// The bytes in base64 when `printable` had to escape any of them (a
/// reader can then take the exact name from the report), else None.
pub fn base64_if_escaped(b: &[u8]) -> Option<String> {
    if printable(b).as_bytes() == b {
        return None;
    }
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_carry_their_bytes() {
        assert_eq!(base64_if_escaped(b"user:1"), None);
        assert_eq!(base64_if_escaped(b"a\\x00b").as_deref(), Some("YVx4MDBi"));
        assert_eq!(base64_if_escaped(b"a\0b").as_deref(), Some("YQBi"));
        assert_eq!(base64_if_escaped(b"a\0").as_deref(), Some("YQA="));
        assert_eq!(base64_if_escaped(b"\xff").as_deref(), Some("/w=="));
        // A NUL byte and the four characters `\x00` read differently.
        assert_eq!(printable(b"a\0b"), r"a\x00b");
        assert_eq!(printable(br"a\x00b"), r"a\\x00b");
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn fp(ty: KeyType, chunks: Vec<Vec<Value>>) -> (u128, u64) {
        let mut a = Acc::new(ty, false);
        for c in chunks {
            a.chunk(c).unwrap();
        }
        (a.finish(), a.size)
    }

    #[test]
    fn unordered_types_ignore_order_and_chunking() {
        let h1 = fp(
            KeyType::Hash,
            vec![vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]],
        );
        let h2 = fp(
            KeyType::Hash,
            vec![vec![bulk("b"), bulk("2")], vec![bulk("a"), bulk("1")]],
        );
        assert_eq!(h1, h2);
        assert_eq!(h1.1, 2);
        // The same pairs split differently are another value.
        let h3 = fp(
            KeyType::Hash,
            vec![vec![bulk("a"), bulk("2"), bulk("b"), bulk("1")]],
        );
        assert_ne!(h1.0, h3.0);
        // A set with the same members as a list is not the same value.
        let s = fp(KeyType::Set, vec![vec![bulk("x"), bulk("y")]]);
        let l = fp(KeyType::List, vec![vec![bulk("x"), bulk("y")]]);
        assert_ne!(s.0, l.0);
    }

    #[test]
    fn lists_are_ordered_and_length_prefixed() {
        let a = fp(KeyType::List, vec![vec![bulk("x"), bulk("y")]]);
        let b = fp(KeyType::List, vec![vec![bulk("y"), bulk("x")]]);
        let c = fp(KeyType::List, vec![vec![bulk("x")], vec![bulk("y")]]);
        assert_ne!(a.0, b.0);
        assert_eq!(a, c);
        let d = fp(KeyType::List, vec![vec![bulk("xy")]]);
        assert_ne!(a.0, d.0);
    }

    #[test]
    fn zset_scores_read_the_same_in_resp2_and_resp3() {
        let resp2 = fp(
            KeyType::Zset,
            vec![vec![bulk("m1"), bulk("1.5"), bulk("m2"), bulk("inf")]],
        );
        let resp3 = fp(
            KeyType::Zset,
            vec![vec![
                Value::Array(vec![bulk("m1"), Value::Double(1.5)]),
                Value::Array(vec![bulk("m2"), Value::Double(f64::INFINITY)]),
            ]],
        );
        assert_eq!(resp2, resp3);
        let other = fp(
            KeyType::Zset,
            vec![vec![bulk("m1"), bulk("2"), bulk("m2"), bulk("inf")]],
        );
        assert_ne!(resp2.0, other.0);
    }

    #[test]
    fn strings_hash_bytes_whatever_the_chunks() {
        let mut a = Acc::new(KeyType::String, true);
        a.bytes_in(b"hello world");
        let mut b = Acc::new(KeyType::String, false);
        b.bytes_in(b"hello");
        b.bytes_in(b" world");
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.preview.as_deref(), Some(&b"hello world"[..]));
        assert_eq!(a.size, 11);
    }

    #[test]
    fn streams_and_maps_flatten() {
        let entry = |id: &str, f: &str, v: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk(f), bulk(v)])])
        };
        let a = fp(
            KeyType::Stream,
            vec![vec![entry("1-0", "f", "v"), entry("2-0", "f", "w")]],
        );
        let b = fp(
            KeyType::Stream,
            vec![vec![entry("1-0", "f", "v")], vec![entry("2-0", "f", "w")]],
        );
        assert_eq!(a, b);
        let map = Value::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]);
        let flat = items(map).unwrap();
        assert_eq!(flat.len(), 4);
        let (cur, it) = cursor_reply(Value::Array(vec![
            bulk("17"),
            Value::Array(vec![bulk("k")]),
        ]))
        .unwrap();
        assert_eq!((cur, it.len()), (17, 1));
    }

    #[test]
    fn printable_escapes_like_redis_cli() {
        assert_eq!(printable(b"user:1"), "user:1");
        assert_eq!(printable(b"a\xffb\n\"q\""), "a\\xffb\\n\\\"q\\\"");
        assert_eq!(KeyType::parse("none"), None);
        assert_eq!(KeyType::parse("ReJSON-RL").unwrap().name(), "ReJSON-RL");
    }
}
