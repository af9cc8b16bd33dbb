//! Minimal RESP2 encoding and reply scanning for the benchmark hot loop.
//!
//! Why hand-written: the engine encodes millions of commands per second into a
//! reused buffer and only needs to *count* and *classify* replies, never to
//! build owned values. Everything here works on borrowed byte slices and never
//! allocates on the success path.

/// Append the decimal form of `n` to `buf`.
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Number of decimal digits of `n` (needed for the `$len` header of a key
/// before the key itself is written).
#[inline]
pub fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Append a RESP array header `*n\r\n`.
#[inline]
pub fn push_array_header(buf: &mut Vec<u8>, n: usize) {
    buf.push(b'*');
    push_u64(buf, n as u64);
    buf.extend_from_slice(b"\r\n");
}

/// Append a bulk-string header `$len\r\n`.
#[inline]
pub fn push_bulk_header(buf: &mut Vec<u8>, len: usize) {
    buf.push(b'$');
    push_u64(buf, len as u64);
    buf.extend_from_slice(b"\r\n");
}

/// Append one complete bulk string.
#[inline]
pub fn push_bulk(buf: &mut Vec<u8>, data: &[u8]) {
    push_bulk_header(buf, data.len());
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

/// Encode an arbitrary command (used for AUTH/SELECT/WAIT and by tests).
pub fn encode_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    push_array_header(buf, args.len());
    for a in args {
        push_bulk(buf, a);
    }
}

/// Encode `WAIT <replicas> <timeout_ms>`.
pub fn encode_wait(buf: &mut Vec<u8>, replicas: u32, timeout_ms: u64) {
    buf.extend_from_slice(b"*3\r\n$4\r\nWAIT\r\n");
    let mut num = Vec::with_capacity(20);
    push_u64(&mut num, replicas as u64);
    push_bulk(buf, &num);
    num.clear();
    push_u64(&mut num, timeout_ms);
    push_bulk(buf, &num);
}

/// One parsed reply, borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+...` status line (content without the `+`).
    Simple(&'a [u8]),
    /// `-...` error line (content without the `-`).
    Error(&'a [u8]),
    /// `:n`
    Integer(i64),
    /// `$n` with its payload.
    Bulk(&'a [u8]),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n`: an array of n complete elements (elements are skipped, not kept).
    Array(usize),
}

/// The byte stream is not valid RESP2: the connection cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RESP protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Nesting bound for arrays, so a hostile server can't blow the stack.
const MAX_DEPTH: usize = 32;

/// Parse one complete reply at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a reply (the caller reads
/// more and retries from the same offset), or `Ok(Some((reply, consumed)))`.
#[inline]
pub fn scan_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    // Fast path for the reply to every successful SET.
    if buf.len() >= 5 && buf[..5] == *b"+OK\r\n" {
        return Ok(Some((Reply::Simple(&buf[1..3]), 5)));
    }
    scan_at_depth(buf, 0)
}

fn scan_at_depth(buf: &[u8], depth: usize) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    // Every RESP2 reply starts with a CRLF-terminated line.
    let Some(line_end) = find_crlf(buf, 1) else {
        return Ok(None);
    };
    let line = &buf[1..line_end];
    let after_line = line_end + 2;
    match tag {
        b'+' => Ok(Some((Reply::Simple(line), after_line))),
        b'-' => Ok(Some((Reply::Error(line), after_line))),
        b':' => Ok(Some((Reply::Integer(parse_int(line)?), after_line))),
        b'$' => scan_bulk(buf, line, after_line),
        b'*' => scan_array(buf, line, after_line, depth),
        other => Err(ProtocolError(format!("unexpected type byte 0x{other:02x}"))),
    }
}

fn scan_bulk<'a>(
    buf: &'a [u8],
    line: &[u8],
    start: usize,
) -> Result<Option<(Reply<'a>, usize)>, ProtocolError> {
    let len = parse_int(line)?;
    if len < 0 {
        return Ok(Some((Reply::Nil, start)));
    }
    // Jump over the payload by length: payloads may contain CRLF.
    let end = start + len as usize;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("bulk string not terminated by CRLF".into()));
    }
    Ok(Some((Reply::Bulk(&buf[start..end]), end + 2)))
}

fn scan_array<'a>(
    buf: &'a [u8],
    line: &[u8],
    start: usize,
    depth: usize,
) -> Result<Option<(Reply<'a>, usize)>, ProtocolError> {
    let n = parse_int(line)?;
    if n < 0 {
        return Ok(Some((Reply::Nil, start)));
    }
    if depth >= MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deeply".into()));
    }
    let mut pos = start;
    for _ in 0..n {
        match scan_at_depth(&buf[pos..], depth + 1)? {
            Some((_, used)) => pos += used,
            None => return Ok(None),
        }
    }
    Ok(Some((Reply::Array(n as usize), pos)))
}

/// Index of the first `\r\n` at or after `from`. A plain loop: replies are
/// short lines, so SIMD search setup would cost more than it saves.
#[inline]
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\r' && buf[i + 1] == b'\n' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn parse_int(line: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(bad_int(line));
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad_int(line));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as i64))
            .ok_or_else(|| bad_int(line))?;
    }
    Ok(if neg { -v } else { v })
}

fn bad_int(line: &[u8]) -> ProtocolError {
    ProtocolError(format!(
        "bad integer {:?}",
        String::from_utf8_lossy(&line[..line.len().min(32)])
    ))
}

/// Classify an error reply by its first word ("OOM", "READONLY", "NOAUTH",
/// "ERR", ...). Redis puts an upper-case code first by convention; an empty
/// message is reported as "ERR".
pub fn error_kind(msg: &[u8]) -> String {
    String::from_utf8_lossy(error_code(msg)).into_owned()
}

/// Borrowing form of `error_kind`, so the hot loop can look up an existing
/// counter without allocating.
#[inline]
pub fn error_code(msg: &[u8]) -> &[u8] {
    let word = msg.split(|&b| b == b' ').next().unwrap_or(b"");
    if word.is_empty() {
        b"ERR"
    } else {
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_format_like_display() {
        for n in [0u64, 7, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut b = Vec::new();
            push_u64(&mut b, n);
            assert_eq!(b, n.to_string().as_bytes());
            assert_eq!(decimal_len(n), n.to_string().len());
        }
    }

    #[test]
    fn encodes_commands() {
        let mut b = Vec::new();
        encode_command(&mut b, &[b"SET", b"p:42", b"abc"]);
        assert_eq!(b, b"*3\r\n$3\r\nSET\r\n$4\r\np:42\r\n$3\r\nabc\r\n");
        b.clear();
        encode_wait(&mut b, 2, 100);
        assert_eq!(b, b"*3\r\n$4\r\nWAIT\r\n$1\r\n2\r\n$3\r\n100\r\n");
        b.clear();
        encode_command(&mut b, &[b"AUTH", b"u", b"p w"]);
        assert_eq!(b, b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n");
    }

    /// A stream of replies of every supported kind, with what each parses to.
    fn sample() -> (Vec<u8>, Vec<Reply<'static>>) {
        let stream = b"+OK\r\n-OOM command not allowed\r\n-READONLY You can't\r\n\
-NOAUTH Authentication required.\r\n-ERR wrong\r\n:0\r\n:-12\r\n:3\r\n\
$5\r\na\r\nbc\r\n$0\r\n\r\n$-1\r\n*2\r\n$1\r\nx\r\n:1\r\n*-1\r\n*0\r\n\
*2\r\n*1\r\n+in\r\n$2\r\n\r\n\r\n"
            .to_vec();
        let expect = vec![
            Reply::Simple(b"OK"),
            Reply::Error(b"OOM command not allowed"),
            Reply::Error(b"READONLY You can't"),
            Reply::Error(b"NOAUTH Authentication required."),
            Reply::Error(b"ERR wrong"),
            Reply::Integer(0),
            Reply::Integer(-12),
            Reply::Integer(3),
            Reply::Bulk(b"a\r\nbc"),
            Reply::Bulk(b""),
            Reply::Nil,
            Reply::Array(2),
            Reply::Nil,
            Reply::Array(0),
            Reply::Array(2),
        ];
        (stream, expect)
    }

    fn scan_all(buf: &[u8]) -> (Vec<Reply<'_>>, usize) {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((r, used)) = scan_reply(&buf[pos..]).unwrap() {
            out.push(r);
            pos += used;
        }
        (out, pos)
    }

    #[test]
    fn scans_every_kind() {
        let (stream, expect) = sample();
        let (got, used) = scan_all(&stream);
        assert_eq!(got, expect);
        assert_eq!(used, stream.len());
    }

    /// Feed the stream split at every byte boundary, like TCP may deliver it:
    /// the scanner must never report a reply before it is complete, and must
    /// find all of them once the rest arrives.
    #[test]
    fn replies_split_at_every_boundary() {
        let (stream, expect) = sample();
        for cut in 0..=stream.len() {
            let (first, used) = scan_all(&stream[..cut]);
            // Everything reported from the prefix must be a correct prefix.
            assert_eq!(&expect[..first.len()], &first[..], "cut at {cut}");
            let n_first = first.len();
            let (rest, used2) = scan_all(&stream[used..]);
            assert_eq!(n_first + rest.len(), expect.len(), "cut at {cut}");
            assert_eq!(used + used2, stream.len());
        }
    }

    #[test]
    fn incomplete_is_none_and_garbage_is_error() {
        assert_eq!(scan_reply(b"").unwrap(), None);
        assert_eq!(scan_reply(b"+OK\r").unwrap(), None);
        assert_eq!(scan_reply(b"$3\r\nab").unwrap(), None);
        assert_eq!(scan_reply(b"$3\r\nabc\r").unwrap(), None);
        assert!(scan_reply(b"?x\r\n").is_err());
        assert!(scan_reply(b":abc\r\n").is_err());
        assert!(scan_reply(b"$3\r\nabcXY").is_err());
        assert!(scan_reply(b":99999999999999999999\r\n").is_err());
    }

    #[test]
    fn error_kinds_are_first_word() {
        assert_eq!(error_kind(b"OOM command not allowed"), "OOM");
        assert_eq!(error_kind(b"READONLY You can't write"), "READONLY");
        assert_eq!(error_kind(b"NOAUTH Authentication required."), "NOAUTH");
        assert_eq!(error_kind(b"ERR unknown command"), "ERR");
        assert_eq!(error_kind(b"WRONGPASS"), "WRONGPASS");
        assert_eq!(error_kind(b""), "ERR");
    }
}
