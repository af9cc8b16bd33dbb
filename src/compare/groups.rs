//! What a stream holds besides its entries: its consumer groups (each
//! group's last-delivered-id and entries-read, its consumers and what each
//! has pending, its pending entries list) and the stream's own counters
//! (last-generated-id, entries-added, max-deleted-entry-id). Neither
//! `DEBUG DIGEST` nor XRANGE sees any of it, yet a replica promoted with a
//! different group would skip or redeliver messages.
//!
//! Read with `XINFO STREAM` (not FULL: bounded), `XINFO GROUPS`, `XINFO
//! CONSUMERS` and `XPENDING` in chunks. Times that legitimately differ
//! between two nodes (a consumer's idle, seen-time and inactive, a pending
//! entry's idle) are never read into the comparison; the group's `lag` is
//! derived from the other fields and left out too.

use redis::Value;
use xxhash_rust::xxh3::Xxh3;

use super::fingerprint::{bytes, flatten_all, items, printable};
use super::limit::{cost, NodeIo};
use crate::client::NodeError;

/// Pending entries read per XPENDING.
const PEL_CHUNK: u64 = 1000;

/// The stream's own counters compared (each only where both nodes report it).
const STREAM_FIELDS: &[&str] = &["last-generated-id", "entries-added", "max-deleted-entry-id"];
/// A group's fields compared (`lag` is derived from these; times are not state).
/// (`pending` and `consumers` are compared as the list and the consumers themselves.)
const GROUP_FIELDS: &[&str] = &["last-delivered-id", "entries-read"];

/// A stream's state beyond its entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamMeta {
    /// `field`, value, as XINFO STREAM reports them (STREAM_FIELDS only).
    pub fields: Vec<(String, String)>,
    /// By name.
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: Vec<u8>,
    /// GROUP_FIELDS as XINFO GROUPS reports them (entries-read empty when nil).
    pub fields: Vec<(String, String)>,
    /// Each consumer and how many entries it has pending, by name.
    pub consumers: Vec<(Vec<u8>, u64)>,
    /// Entries in the pending entries list.
    pub pel_len: u64,
    /// Ids, owners and delivery counts of the pending entries, in order.
    pub pel_fp: u128,
}

/// Whether two nodes hold the same (fields one of them does not report aside).
pub fn same(m: &StreamMeta, r: &StreamMeta) -> bool {
    describe_diff(m, r).is_none()
}

/// What differs between the master's and the replica's, one line, or None.
pub fn describe_diff(m: &StreamMeta, r: &StreamMeta) -> Option<String> {
    let mut out = Vec::new();
    field_diffs("stream", &m.fields, &r.fields, &mut out);
    for g in &m.groups {
        let gname = format!("group {}", printable(&g.name));
        let Some(h) = r.groups.iter().find(|h| h.name == g.name) else {
            out.push(format!("{gname} missing on the replica"));
            continue;
        };
        field_diffs(&gname, &g.fields, &h.fields, &mut out);
        for (c, n) in &g.consumers {
            match h.consumers.iter().find(|(d, _)| d == c) {
                None => out.push(format!(
                    "{gname}: consumer {} missing on the replica",
                    printable(c)
                )),
                Some((_, k)) if k != n => out.push(format!(
                    "{gname}: consumer {} has {n} pending on the master, {k} on the replica",
                    printable(c)
                )),
                _ => {}
            }
        }
        for (c, _) in &h.consumers {
            if !g.consumers.iter().any(|(d, _)| d == c) {
                out.push(format!(
                    "{gname}: consumer {} only on the replica",
                    printable(c)
                ));
            }
        }
        if g.pel_len != h.pel_len {
            out.push(format!(
                "{gname}: {} pending on the master, {} on the replica",
                g.pel_len, h.pel_len
            ));
        } else if g.pel_fp != h.pel_fp {
            out.push(format!(
                "{gname}: pending entries differ (ids, owners or delivery counts)"
            ));
        }
    }
    for h in &r.groups {
        if !m.groups.iter().any(|g| g.name == h.name) {
            out.push(format!("group {} only on the replica", printable(&h.name)));
        }
    }
    (!out.is_empty()).then(|| out.join(", "))
}

fn field_diffs(what: &str, m: &[(String, String)], r: &[(String, String)], out: &mut Vec<String>) {
    for (k, v) in m {
        if let Some((_, w)) = r.iter().find(|(l, _)| l == k) {
            if v != w {
                let show = |s: &str| {
                    if s.is_empty() {
                        "nil".to_string()
                    } else {
                        s.to_string()
                    }
                };
                out.push(format!(
                    "{what}: {k} {} on the master, {} on the replica",
                    show(v),
                    show(w)
                ));
            }
        }
    }
}

/// Keep only the fields that are state, in a fixed order; a field one node
/// does not report (an older server) is left out on both by `same`.
fn pick(kv: &[(String, Value)], wanted: &[&str]) -> Vec<(String, String)> {
    wanted
        .iter()
        .filter_map(|w| {
            let (_, v) = kv.iter().find(|(k, _)| k == w)?;
            Some((w.to_string(), text(v)))
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Nil => String::new(),
        other => bytes(other)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
    }
}

/// A flat field/value reply (RESP2 array or RESP3 map) as pairs, values kept.
fn kv(v: Value) -> Option<Vec<(String, Value)>> {
    let flat = items(v)?;
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((String::from_utf8_lossy(bytes(&k)?).into_owned(), v));
    }
    Some(out)
}

const CHANGED: &str = "its consumer groups changed while they were read";

/// A server error in a reply: NOGROUP/ERR no such key mean the key or a
/// group went away between two reads (read it again); anything else ends
/// this node's comparison.
fn check(io: &NodeIo, op: &str, v: &Value) -> Result<Option<&'static str>, NodeError> {
    let Value::ServerError(e) = v else {
        return Ok(None);
    };
    let code = e.code();
    if code == "NOGROUP"
        || code == "WRONGTYPE"
        || e.details().is_some_and(|d| d.contains("no such key"))
    {
        return Ok(Some(CHANGED));
    }
    let err: redis::RedisError = e.clone().into();
    let (kind, msg) = crate::client::error::classify(op, &err, false, std::time::Duration::ZERO);
    Err(io.conn.error(kind, msg))
}

/// Whether this master's server replicates a group's entries-read, or why
/// not: before redis/redis#12898 (in Redis 7.4 and Valkey 8; whether a 7.2 patch release has it is
/// not assumed) an
/// XREADGROUP that delivers entries propagates XCLAIM without it, so every
/// healthy replica of a 7.0 master shows a stale entries-read (measured on
/// 7.0.15). Only the `lag` figure depends on it: delivery goes by
/// last-delivered-id, which is compared everywhere.
pub fn entries_read_replicated(info: &crate::client::Info) -> Result<(), String> {
    let (name, version) = match info.get("valkey_version") {
        Some(v) => ("Valkey", v),
        None => ("Redis", info.version()),
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let at = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let fixed = if name == "Valkey" { (8, 0) } else { (7, 4) };
    if at >= fixed {
        Ok(())
    } else {
        Err(format!(
            "{name} {version} does not replicate it when XREADGROUP delivers entries \
             (redis/redis#12898; redlab compares it from {name} {}.{}), so a healthy replica differs there",
            fixed.0, fixed.1
        ))
    }
}

/// Read one stream's groups and counters. `Ok(Err(why))`: it changed while
/// read (read it again in the next round).
pub async fn read(
    io: &NodeIo,
    key: &[u8],
    entries_read: bool,
) -> Result<Result<StreamMeta, &'static str>, NodeError> {
    let mut p = redis::pipe();
    p.ignore_errors();
    p.cmd("XINFO").arg("STREAM").arg(key);
    p.cmd("XINFO").arg("GROUPS").arg(key);
    let replies: Vec<Value> = io.pipe(&p, cost(2, 0)).await?;
    let [stream, groups] = <[Value; 2]>::try_from(replies).map_err(|_| {
        io.conn.error(
            crate::client::ErrorKind::Other,
            "XINFO: the pipeline answered with fewer replies than commands",
        )
    })?;
    for (op, v) in [("XINFO STREAM", &stream), ("XINFO GROUPS", &groups)] {
        if let Some(why) = check(io, op, v)? {
            return Ok(Err(why));
        }
    }
    let Some(stream) = kv(stream) else {
        return Ok(Err(CHANGED));
    };
    let mut meta = StreamMeta {
        fields: pick(&stream, STREAM_FIELDS),
        groups: Vec::new(),
    };
    for g in items(groups).unwrap_or_default() {
        let Some(g) = kv(g) else {
            return Ok(Err(CHANGED));
        };
        let Some(name) = g
            .iter()
            .find(|(k, _)| k == "name")
            .and_then(|(_, v)| bytes(v))
        else {
            return Ok(Err(CHANGED));
        };
        let name = name.to_vec();
        let mut fields = pick(&g, GROUP_FIELDS);
        if !entries_read {
            fields.retain(|(k, _)| k != "entries-read");
        }
        match read_group(io, key, name, fields).await? {
            Ok(group) => meta.groups.push(group),
            Err(why) => return Ok(Err(why)),
        }
    }
    meta.groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Ok(meta))
}

async fn read_group(
    io: &NodeIo,
    key: &[u8],
    name: Vec<u8>,
    fields: Vec<(String, String)>,
) -> Result<Result<Group, &'static str>, NodeError> {
    let reply: Value = {
        let mut p = redis::pipe();
        p.ignore_errors();
        p.cmd("XINFO").arg("CONSUMERS").arg(key).arg(&name);
        let mut v: Vec<Value> = io.pipe(&p, cost(1, 0)).await?;
        v.pop().unwrap_or(Value::Nil)
    };
    if let Some(why) = check(io, "XINFO CONSUMERS", &reply)? {
        return Ok(Err(why));
    }
    let mut consumers = Vec::new();
    for c in items(reply).unwrap_or_default() {
        let Some(c) = kv(c) else {
            return Ok(Err(CHANGED));
        };
        let get = |f: &str| c.iter().find(|(k, _)| k == f).map(|(_, v)| v);
        let (Some(cname), Some(pending)) = (get("name").and_then(bytes), get("pending")) else {
            return Ok(Err(CHANGED));
        };
        consumers.push((cname.to_vec(), text(pending).parse().unwrap_or(0)));
    }
    consumers.sort();
    io.debit(consumers.len() as u64);
    let (pel_len, pel_fp) = match read_pel(io, key, &name).await? {
        Ok(v) => v,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(Group {
        name,
        fields,
        consumers,
        pel_len,
        pel_fp,
    }))
}

/// The pending entries list in chunks: each entry's id, owner and delivery
/// count folded in order (its idle time is not state).
async fn read_pel(
    io: &NodeIo,
    key: &[u8],
    group: &[u8],
) -> Result<Result<(u64, u128), &'static str>, NodeError> {
    let mut h = Xxh3::new();
    let mut n = 0u64;
    let mut start = b"-".to_vec();
    loop {
        let mut p = redis::pipe();
        p.ignore_errors();
        p.cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(&start)
            .arg("+")
            .arg(PEL_CHUNK);
        let mut v: Vec<Value> = io.pipe(&p, cost(1, 0)).await?;
        let reply = v.pop().unwrap_or(Value::Nil);
        if let Some(why) = check(io, "XPENDING", &reply)? {
            return Ok(Err(why));
        }
        let entries = items(reply).unwrap_or_default();
        let got = entries.len() as u64;
        io.debit(got);
        let mut last = None;
        for e in entries {
            let f = flatten_all(e);
            // id, consumer, idle ms, delivery count
            let (Some(id), Some(owner), Some(count)) = (
                f.first().and_then(bytes),
                f.get(1).and_then(bytes),
                f.get(3).map(text),
            ) else {
                return Ok(Err(CHANGED));
            };
            for part in [id, owner, count.as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
            last = Some(id.to_vec());
            n += 1;
        }
        match last {
            Some(id) if got == PEL_CHUNK => {
                start = b"(".to_vec();
                start.extend_from_slice(&id);
            }
            _ => return Ok(Ok((n, h.digest128()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, last: &str, pending: u64, consumers: &[(&str, u64)], fp: u128) -> Group {
        Group {
            name: name.as_bytes().to_vec(),
            fields: vec![
                ("last-delivered-id".into(), last.into()),
                ("entries-read".into(), String::new()),
            ],
            consumers: consumers
                .iter()
                .map(|(c, n)| (c.as_bytes().to_vec(), *n))
                .collect(),
            pel_len: pending,
            pel_fp: fp,
        }
    }

    #[test]
    fn differences_are_named_by_group_and_field() {
        let m = StreamMeta {
            fields: vec![("last-generated-id".into(), "3-0".into())],
            groups: vec![group("g1", "2-0", 2, &[("alice", 2), ("bob", 0)], 7)],
        };
        assert_eq!(describe_diff(&m, &m.clone()), None);
        let mut r = m.clone();
        r.groups[0] = group("g1", "3-0", 1, &[("alice", 1)], 8);
        let d = describe_diff(&m, &r).unwrap();
        assert!(
            d.contains("group g1: last-delivered-id 2-0 on the master, 3-0 on the replica"),
            "{d}"
        );
        assert!(
            d.contains("consumer alice has 2 pending on the master, 1 on the replica"),
            "{d}"
        );
        assert!(d.contains("consumer bob missing on the replica"), "{d}");
        let mut r = m.clone();
        r.groups[0].pel_fp = 9;
        assert!(describe_diff(&m, &r)
            .unwrap()
            .contains("pending entries differ"));
        let mut r = m.clone();
        r.groups.clear();
        assert_eq!(
            describe_diff(&m, &r).unwrap(),
            "group g1 missing on the replica"
        );
        assert_eq!(
            describe_diff(&r, &m).unwrap(),
            "group g1 only on the replica"
        );
    }

    #[test]
    fn only_fields_that_are_state_are_kept() {
        let kv = vec![
            ("name".to_string(), Value::BulkString(b"g".to_vec())),
            ("lag".to_string(), Value::Int(3)),
            ("entries-read".to_string(), Value::Nil),
            (
                "last-delivered-id".to_string(),
                Value::BulkString(b"1-0".to_vec()),
            ),
        ];
        assert_eq!(
            pick(&kv, GROUP_FIELDS),
            vec![
                ("last-delivered-id".to_string(), "1-0".to_string()),
                ("entries-read".to_string(), String::new()),
            ]
        );
    }
}
