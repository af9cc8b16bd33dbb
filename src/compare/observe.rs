//! Reading a batch of keys on one node, read-only: `TYPE` and `PTTL` for the
//! whole batch in one pipeline, then a first bounded read of every value by
//! its type in a second (a 4 KiB string prefix, 16 elements), then the rest
//! of the big values in chunks sized to about 1 MiB a reply, a few keys at a
//! time. Every chunk is folded into the key's fingerprint as it arrives.

use std::time::Instant;

use futures_util::{stream, StreamExt};
use redis::{Pipeline, Value};

use super::fingerprint::{bytes, cursor_reply, flatten_all, items, Acc, KeyType};
use super::limit::{cost, NodeIo};
use super::rounds::{Present, State, Ttl};
use crate::client::{error::classify, NodeError};

/// String bytes read in the batch pipeline; longer strings go on in chunks.
const FIRST_BYTES: u64 = 4096;
/// Collection elements read in the batch pipeline.
const FIRST_ITEMS: u64 = 16;
/// Big values read at the same time on one node.
const CONCURRENT_BIG: usize = 4;

/// How to read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOpts {
    /// TTLs are timed from here.
    pub epoch: Instant,
    /// Read values (false: TYPE and PTTL only, for the TTL check after equal digests).
    pub values: bool,
    /// Keep the first bytes of each value (--show-values).
    pub previews: bool,
    /// Bound on one reply of a chunked read, bytes.
    pub chunk_bytes: u64,
    /// Read each stream's consumer groups and counters too (`groups`).
    pub groups: bool,
    /// Compare the groups' entries-read (a version that replicates it).
    pub entries_read: bool,
}

/// Where a read goes on.
#[derive(Debug, Clone, PartialEq)]
enum Next {
    Done,
    /// String bytes, or list/zset index.
    Offset(u64),
    /// HSCAN/SSCAN cursor.
    Cursor(u64),
    /// Stream entries after this id.
    After(Vec<u8>),
}

struct Reading {
    acc: Acc,
    next: Next,
}

/// What a read costs the server beyond the command, in elements for the cap:
/// a collection's elements, a string's KiB.
fn charged(acc: &Acc) -> u64 {
    match acc.ty() {
        KeyType::String | KeyType::Other(_) => acc.size / 1024,
        _ => acc.size,
    }
}

fn since(epoch: Instant) -> f64 {
    epoch.elapsed().as_secs_f64() * 1e3
}

/// A server error in one reply: a key that changed type is `Unstable`;
/// anything else (NOPERM, LOADING) ends this node's comparison.
fn reply_error(io: &NodeIo, op: &str, v: &Value) -> Result<Option<&'static str>, NodeError> {
    let Value::ServerError(e) = v else {
        return Ok(None);
    };
    if e.code() == "WRONGTYPE" {
        return Ok(Some("its type changed while it was read"));
    }
    let err: redis::RedisError = e.clone().into();
    let (kind, msg) = classify(op, &err, false, std::time::Duration::ZERO);
    Err(io.conn.error(kind, msg))
}

/// Read `keys` on one node; one state per key, in order.
pub async fn observe(
    io: &NodeIo,
    keys: &[Vec<u8>],
    opts: &ReadOpts,
) -> Result<Vec<State>, NodeError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = redis::pipe();
    p.ignore_errors();
    for k in keys {
        p.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
    }
    let sent = since(opts.epoch);
    let replies: Vec<Value> = io.pipe(&p, cost(2 * keys.len() as u64, 0)).await?;
    let back = since(opts.epoch);
    let mut heads = Vec::with_capacity(keys.len());
    for pair in replies.chunks(2) {
        heads.push(head(io, pair, sent, back)?);
    }
    let states = if opts.values {
        read_values(io, keys, heads, opts).await?
    } else {
        heads
            .into_iter()
            .map(|h| match h {
                Head::Present(ty, ttl) => State::Present(Present {
                    ty,
                    fp: 0,
                    size: 0,
                    ttl,
                    preview: None,
                    stream: None,
                }),
                Head::Gone(s) => s,
            })
            .collect()
    };
    if opts.groups {
        with_groups(io, keys, states, opts).await
    } else {
        Ok(states)
    }
}

/// Each stream's consumer groups and counters read into its state, a few
/// streams at a time; one that changed meanwhile is `Unstable`.
async fn with_groups(
    io: &NodeIo,
    keys: &[Vec<u8>],
    mut states: Vec<State>,
    opts: &ReadOpts,
) -> Result<Vec<State>, NodeError> {
    let streams: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, State::Present(p) if p.ty == KeyType::Stream))
        .map(|(i, _)| i)
        .collect();
    let read: Vec<(usize, Result<_, NodeError>)> = stream::iter(streams)
        .map(|i| async move {
            let meta = super::groups::read(io, &keys[i], opts.entries_read).await;
            (i, meta)
        })
        .buffer_unordered(CONCURRENT_BIG)
        .collect()
        .await;
    for (i, meta) in read {
        match meta? {
            Ok(meta) => {
                if let State::Present(p) = &mut states[i] {
                    p.stream = Some(Box::new(meta));
                }
            }
            Err(why) => states[i] = State::Unstable(why),
        }
    }
    Ok(states)
}

enum Head {
    Present(KeyType, Ttl),
    Gone(State),
}

fn head(io: &NodeIo, pair: &[Value], sent: f64, back: f64) -> Result<Head, NodeError> {
    let [ty, ttl] = pair else {
        return Err(io.conn.error(
            crate::client::ErrorKind::Other,
            "TYPE/PTTL: the pipeline answered with fewer replies than commands",
        ));
    };
    reply_error(io, "TYPE", ty)?;
    reply_error(io, "PTTL", ttl)?;
    let ty = bytes(ty)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(KeyType::parse);
    let pttl = match ttl {
        Value::Int(i) => *i,
        _ => -2,
    };
    Ok(match (ty, pttl) {
        (None, -2) => Head::Gone(State::Absent),
        // Created or deleted between TYPE and PTTL.
        (None, _) | (Some(_), -2) => {
            Head::Gone(State::Unstable("it appeared or vanished while it was read"))
        }
        (Some(ty), -1) => Head::Present(ty, Ttl::Persistent),
        (Some(ty), ms) => Head::Present(
            ty,
            Ttl::Expires {
                lo_ms: sent + ms as f64,
                hi_ms: back + ms as f64,
            },
        ),
    })
}

/// The first read of one key, in the batch pipeline: what it asks for, and
/// the commands it sent (a module type read by its own commands sends a few).
fn first_read(p: &mut Pipeline, ty: &KeyType, key: &[u8]) -> (u64, usize) {
    if let Some(cmds) = ty.module_commands() {
        for c in cmds {
            p.cmd(c.name).arg(key).arg(c.args);
        }
        return (FIRST_ITEMS, cmds.len());
    }
    match ty {
        KeyType::String => p.cmd("GETRANGE").arg(key).arg(0).arg(FIRST_BYTES - 1),
        KeyType::Hash => p.cmd("HSCAN").arg(key).arg(0).arg("COUNT").arg(FIRST_ITEMS),
        KeyType::Set => p.cmd("SSCAN").arg(key).arg(0).arg("COUNT").arg(FIRST_ITEMS),
        KeyType::Zset => p
            .cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(FIRST_ITEMS - 1)
            .arg("WITHSCORES"),
        KeyType::List => p.cmd("LRANGE").arg(key).arg(0).arg(FIRST_ITEMS - 1),
        KeyType::Stream => p
            .cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(FIRST_ITEMS),
        KeyType::Other(_) => p.cmd("DUMP").arg(key),
    };
    match ty {
        KeyType::String => (FIRST_BYTES, 1),
        _ => (FIRST_ITEMS, 1),
    }
}

/// The read that goes on from `next`, and how much it asks for.
fn next_read(ty: &KeyType, key: &[u8], next: &Next, n: u64, chunk_bytes: u64) -> (redis::Cmd, u64) {
    let mut c;
    let asked = match (ty, next) {
        (KeyType::String, Next::Offset(o)) => {
            c = redis::cmd("GETRANGE");
            c.arg(key).arg(*o).arg(o + chunk_bytes - 1);
            chunk_bytes
        }
        (KeyType::Hash | KeyType::Set, Next::Cursor(cur)) => {
            c = redis::cmd(if *ty == KeyType::Hash {
                "HSCAN"
            } else {
                "SSCAN"
            });
            c.arg(key).arg(*cur).arg("COUNT").arg(n);
            n
        }
        (KeyType::Zset, Next::Offset(i)) => {
            c = redis::cmd("ZRANGE");
            c.arg(key).arg(*i).arg(i + n - 1).arg("WITHSCORES");
            n
        }
        (KeyType::List, Next::Offset(i)) => {
            c = redis::cmd("LRANGE");
            c.arg(key).arg(*i).arg(i + n - 1);
            n
        }
        (KeyType::Stream, Next::After(id)) => {
            let mut from = b"(".to_vec();
            from.extend_from_slice(id);
            c = redis::cmd("XRANGE");
            c.arg(key).arg(from).arg("+").arg("COUNT").arg(n);
            n
        }
        _ => unreachable!("next_read is only called with a Next its type produces"),
    };
    (c, asked)
}

/// Fold one reply into the reading and set where it goes on.
fn absorb(r: &mut Reading, reply: Value, asked: u64) -> Result<(), &'static str> {
    const CHANGED: &str = "its value did not read as its type (changed while read)";
    let at = match &r.next {
        Next::Offset(o) => *o,
        _ => 0,
    };
    r.next = match r.acc.ty().clone() {
        KeyType::String => {
            let b = bytes(&reply).ok_or(CHANGED)?;
            let n = b.len() as u64;
            r.acc.bytes_in(b);
            if n == asked {
                Next::Offset(at + n)
            } else {
                Next::Done
            }
        }
        KeyType::Other(_) if r.acc.ty().module_commands().is_some() => {
            let cmds = r.acc.ty().module_commands().unwrap_or_default();
            let Value::Array(replies) = reply else {
                return Err(CHANGED);
            };
            if replies.len() != cmds.len() {
                return Err(CHANGED);
            }
            for (c, v) in cmds.iter().zip(replies) {
                r.acc.module_reply(c, v).ok_or(CHANGED)?;
            }
            Next::Done
        }
        KeyType::Other(_) => {
            match reply {
                Value::Nil => return Err("it vanished while it was read"),
                v => r.acc.bytes_in(bytes(&v).ok_or(CHANGED)?),
            }
            Next::Done
        }
        KeyType::Hash | KeyType::Set => {
            let (cursor, chunk) = cursor_reply(reply).ok_or(CHANGED)?;
            r.acc.chunk(chunk).ok_or(CHANGED)?;
            if cursor == 0 {
                Next::Done
            } else {
                Next::Cursor(cursor)
            }
        }
        KeyType::Zset | KeyType::List => {
            let n = r.acc.chunk(items(reply).ok_or(CHANGED)?).ok_or(CHANGED)?;
            if n == asked {
                Next::Offset(at + n)
            } else {
                Next::Done
            }
        }
        KeyType::Stream => {
            let entries = items(reply).ok_or(CHANGED)?;
            let last = entries
                .last()
                .cloned()
                .and_then(|e| flatten_all(e).into_iter().next())
                .and_then(|id| bytes(&id).map(<[u8]>::to_vec));
            let n = r.acc.chunk(entries).ok_or(CHANGED)?;
            match last {
                Some(id) if n == asked => Next::After(id),
                _ => Next::Done,
            }
        }
    };
    Ok(())
}

enum Slot {
    Done(State),
    Reading(Reading, Ttl),
}

fn finished(r: Reading, ttl: Ttl) -> State {
    State::Present(Present {
        fp: r.acc.finish(),
        size: r.acc.size,
        preview: r.acc.preview.clone(),
        ty: r.acc.ty().clone(),
        ttl,
        stream: None,
    })
}

async fn read_values(
    io: &NodeIo,
    keys: &[Vec<u8>],
    heads: Vec<Head>,
    opts: &ReadOpts,
) -> Result<Vec<State>, NodeError> {
    let mut p = redis::pipe();
    p.ignore_errors();
    let mut asked = Vec::new();
    for (k, h) in keys.iter().zip(&heads) {
        if let Head::Present(ty, _) = h {
            asked.push(first_read(&mut p, ty, k));
        }
    }
    let replies: Vec<Value> = if asked.is_empty() {
        Vec::new()
    } else {
        io.pipe(&p, cost(asked.len() as u64, 0)).await?
    };
    let mut replies = replies.into_iter();
    let mut asked = asked.into_iter();
    let mut slots: Vec<Slot> = Vec::with_capacity(keys.len());
    let mut elements = 0;
    for h in heads {
        let (ty, ttl) = match h {
            Head::Gone(s) => {
                slots.push(Slot::Done(s));
                continue;
            }
            Head::Present(ty, ttl) => (ty, ttl),
        };
        let (n, sent) = asked.next().unwrap_or((0, 1));
        let mut got: Vec<Value> = replies.by_ref().take(sent).collect();
        let mut unstable = None;
        for v in &got {
            unstable = unstable.or(reply_error(io, "a value read", v)?);
        }
        if let Some(why) = unstable {
            slots.push(Slot::Done(State::Unstable(why)));
            continue;
        }
        // One command's reply as it is; several (a module's read commands) as one array.
        let reply = match got.len() {
            1 => got.pop().unwrap_or(Value::Nil),
            _ if ty.module_commands().is_some() => Value::Array(got),
            _ => Value::Nil,
        };
        let mut r = Reading {
            acc: Acc::new(ty, opts.previews),
            next: Next::Done,
        };
        slots.push(match absorb(&mut r, reply, n) {
            Ok(()) => {
                elements += charged(&r.acc);
                Slot::Reading(r, ttl)
            }
            Err(why) => Slot::Done(State::Unstable(why)),
        });
    }
    io.debit(elements);
    let mut big = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        if matches!(slot, Slot::Reading(r, _) if r.next != Next::Done) {
            if let Slot::Reading(r, ttl) = std::mem::replace(slot, Slot::Done(State::Absent)) {
                big.push((i, r, ttl));
            }
        }
    }
    let rest: Vec<(usize, Result<State, NodeError>)> = stream::iter(big)
        .map(|(i, r, ttl)| async move {
            let state = match read_rest(io, &keys[i], r, opts).await {
                Ok(Ok(r)) => Ok(finished(r, ttl)),
                Ok(Err(why)) => Ok(State::Unstable(why)),
                Err(e) => Err(e),
            };
            (i, state)
        })
        .buffer_unordered(CONCURRENT_BIG)
        .collect()
        .await;
    for (i, state) in rest {
        slots[i] = Slot::Done(state?);
    }
    Ok(slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Done(s) => s,
            Slot::Reading(r, ttl) => finished(r, ttl),
        })
        .collect())
}

/// One command whose error reply is a value (WRONGTYPE is not the node's failure).
async fn one(io: &NodeIo, cmd: redis::Cmd) -> Result<Value, NodeError> {
    let mut p = redis::pipe();
    p.ignore_errors().add_command(cmd);
    let mut v: Vec<Value> = io.pipe(&p, cost(1, 0)).await?;
    Ok(v.pop().unwrap_or(Value::Nil))
}

/// Read the rest of a big value in chunks of about `chunk_bytes`, then check
/// that what was read adds up to its length (a hash rehashed or a list
/// changed in between reads otherwise).
async fn read_rest(
    io: &NodeIo,
    key: &[u8],
    mut r: Reading,
    opts: &ReadOpts,
) -> Result<Result<Reading, &'static str>, NodeError> {
    while r.next != Next::Done {
        // Elements per chunk from the average element size so far.
        let avg = r.acc.bytes / r.acc.size.max(1) + 16;
        let n = (opts.chunk_bytes / avg).clamp(16, 100_000);
        let (cmd, asked) = next_read(r.acc.ty(), key, &r.next, n, opts.chunk_bytes);
        let reply = one(io, cmd).await?;
        if let Some(why) = reply_error(io, "a chunked read", &reply)? {
            return Ok(Err(why));
        }
        let before = charged(&r.acc);
        if let Err(why) = absorb(&mut r, reply, asked) {
            return Ok(Err(why));
        }
        io.debit(charged(&r.acc) - before);
    }
    let len_cmd = match r.acc.ty() {
        KeyType::String => "STRLEN",
        KeyType::Hash => "HLEN",
        KeyType::Set => "SCARD",
        KeyType::Zset => "ZCARD",
        KeyType::List => "LLEN",
        KeyType::Stream => "XLEN",
        KeyType::Other(_) => return Ok(Ok(r)),
    };
    let len = one(io, redis::cmd(len_cmd).arg(key).clone()).await?;
    if reply_error(io, len_cmd, &len)?.is_some() || len != Value::Int(r.acc.size as i64) {
        return Ok(Err("it changed while it was read in chunks"));
    }
    Ok(Ok(r))
}
