//! What identifies a run: its id, host and redacted command line.

use std::time::SystemTime;

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// A short unique id: time and pid, in base 36.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut n = (nanos ^ ((std::process::id() as u128) << 64)) % 36u128.pow(10);
    let mut s = String::new();
    for _ in 0..10 {
        let d = (n % 36) as u32;
        s.push(std::char::from_digit(d, 36).expect("digit < 36"));
        n /= 36;
    }
    s
}

/// The command line with passwords in URLs and after --password removed.
pub fn redacted_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("***".into());
            hide_next = false;
        } else if a == "--password" {
            out.push(a.clone());
            hide_next = true;
        } else if let Some(rest) = a.strip_prefix("--password=") {
            let _ = rest;
            out.push("--password=***".into());
        } else {
            out.push(crate::topology::redact_url(a));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn secrets_never_reach_the_manifest() {
        let args: Vec<String> = [
            "redlab",
            "--password",
            "hunter2",
            "--master",
            "redis://:pw@h:1",
            "--password=x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redacted_args(&args).join(" ");
        assert!(
            !r.contains("hunter2") && !r.contains(":pw@") && !r.contains("=x"),
            "{r}"
        );
    }

    #[test]
    fn run_ids_are_short_and_distinct() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(1));
        let b = new_run_id();
        assert_eq!(a.len(), 10);
        assert_ne!(a, b);
    }
}
