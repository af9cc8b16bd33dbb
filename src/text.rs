//! Words and numbers as people read them: counts with their noun, sizes,
//! durations, roles, and the placeholder for a value not known. A leaf: it
//! imports nothing of the crate, so every room may use it.

/// A size in bytes as people read it (`2.0 KiB`); `unlimited` for 0, which
/// is what a maxmemory of 0 means (`human_bytes_or_zero` says `0 B`).
pub fn human_bytes(b: u64) -> String {
    if b == 0 {
        return "unlimited".into();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// A size in bytes as people read it, `0 B` for nothing (`human_bytes` says
/// `unlimited` for a maxmemory of 0).
pub fn human_bytes_or_zero(b: u64) -> String {
    if b == 0 {
        "0 B".into()
    } else {
        human_bytes(b)
    }
}

/// A role as redlab says it: `replica`, never `slave` (which INFO says).
pub fn role_word(role: &str) -> &str {
    if role == "slave" {
        "replica"
    } else {
        role
    }
}

/// A duration for people: `16.1 ms`, `2.35 s`, `137.3 s`, `4 min 12 s`.
pub fn took(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else if ms < 600_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else {
        let s = (ms / 1e3).round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `1 key`, `2 keys`: a count with its noun, singular or plural.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A value, or `-` when it is not known.
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}
