//! redlab's namespace, spelt in this one place: every key redlab writes
//! (`<ns>:<run-id>:...`), its registry (`<ns>:runs`) and heartbeats, the
//! keys `compare` sets aside as redlab's own, what `clean` and the leftover
//! count look for, the lab's sync keys. `<ns>` is `redlab` unless `--prefix`
//! (or REDLAB_PREFIX) moves it, for users whose own keys start with `redlab:`.
//!
//! The namespace is one per process (it comes from the command line or the
//! environment, like the rest of the settings), set once by `run` before any
//! key is named.

use std::sync::RwLock;

/// The namespace when none is given.
pub const DEFAULT: &str = "redlab";

static NAME: RwLock<Option<String>> = RwLock::new(None);

/// A run id as `new_run_id` makes it: 10 base-36 digits (lower case).
pub const RUN_ID_LEN: usize = 10;

/// The namespace as given (`--prefix myco-redlab` or `myco-redlab:`), or
/// why it cannot be one: it is a SCAN MATCH pattern's literal start (no glob
/// characters), must not carry a cluster hash tag (every key of a run on a
/// shard hashes by the run's own tag), and is printed in commands to copy.
pub fn parse(raw: &str) -> Result<String, String> {
    let name = raw.strip_suffix(':').unwrap_or(raw);
    if name.is_empty() {
        return Err("--prefix is empty: give a name such as myco-redlab (keys are then myco-redlab:<run-id>:...)".into());
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(c, '*' | '?' | '[' | ']' | '\\' | '{' | '}') || c.is_whitespace() || c.is_control()
    }) {
        return Err(format!(
            "--prefix {raw:?} holds {c:?}: use letters, digits and punctuation other than * ? [ ] \\ {{ }} \
             (it starts a SCAN pattern and must not carry a cluster hash tag)"
        ));
    }
    Ok(name.to_string())
}

/// Use `name` (already `parse`d) from now on.
pub fn set(name: &str) {
    if let Ok(mut n) = NAME.write() {
        *n = Some(name.to_string());
    }
}

/// The namespace's name, `redlab` by default.
pub fn name() -> String {
    NAME.read()
        .ok()
        .and_then(|n| n.clone())
        .unwrap_or_else(|| DEFAULT.to_string())
}

/// `redlab:` — every key redlab writes starts with this.
pub fn root() -> String {
    format!("{}:", name())
}

/// `redlab:*`, the SCAN pattern for everything under the namespace.
pub fn pattern() -> String {
    format!("{}*", root())
}

/// `redlab:<run-id>:`, or on a cluster shard `redlab:<run-id>:{tag}:`.
pub fn run_prefix(run_id: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{}{run_id}:{{{t}}}:", root()),
        None => format!("{}{run_id}:", root()),
    }
}

/// Whether a key is under the namespace (compare leaves such keys out).
pub fn owns(key: &[u8]) -> bool {
    key.starts_with(root().as_bytes())
}

/// Whether `s` reads as a run id redlab makes (`new_run_id`).
pub fn is_run_id(s: &str) -> bool {
    s.len() == RUN_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// `redlab:<x>:...` -> `<x>` when `<x>` reads as a run id: the run a key
/// would belong to. Whether it does is for the registry to say.
pub fn run_of(key: &[u8]) -> Option<String> {
    let root = root();
    let rest = key.strip_prefix(root.as_bytes())?;
    let end = rest.iter().position(|b| *b == b':')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    is_run_id(id).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_a_plain_name() {
        assert_eq!(parse("myco-redlab").unwrap(), "myco-redlab");
        assert_eq!(parse("myco-redlab:").unwrap(), "myco-redlab");
        for bad in ["", ":", "a*", "x{1}", "a b", "q?", "a\u{1b}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_run_ids_name_runs() {
        assert!(is_run_id("01dkdz2yw1"));
        assert!(!is_run_id("myapp") && !is_run_id("prod-cache") && !is_run_id("runs"));
        assert!(!is_run_id("01DKDZ2YW1") && !is_run_id("01dkdz2yw12"));
        // The default namespace (no --prefix in unit tests).
        assert_eq!(
            run_of(b"redlab:01dkdz2yw1:perf:1").as_deref(),
            Some("01dkdz2yw1")
        );
        assert_eq!(
            run_of(b"redlab:01dkdz2yw1:{a}:alive").as_deref(),
            Some("01dkdz2yw1")
        );
        assert_eq!(run_of(b"redlab:myapp:important"), None);
        assert_eq!(run_of(b"redlab:prod-cache:session:42"), None);
        assert_eq!(run_of(b"redlab:runs"), None);
        assert_eq!(run_of(b"other:01dkdz2yw1:x"), None);
    }
}
