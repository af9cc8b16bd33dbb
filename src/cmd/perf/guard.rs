//! What perf checks before it writes: that the run cannot push the master
//! to its memory limit.

use anyhow::{bail, Result};

use super::Config;
use crate::client::Info;
use crate::survey::Master;

/// Refuse a run that could make the master evict user keys.
/// Refuse a run that could push the master to its memory limit: there it
/// would evict user keys (`allkeys-*`, `volatile-*`) or refuse the users'
/// own writes (`noeviction`).
pub(super) fn eviction_guard(cfg: &Config, info: &Info, prefix_len: usize) -> Result<()> {
    let max = info.u64("maxmemory").unwrap_or(0);
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    if max == 0 || cfg.opts.allow_eviction {
        return Ok(());
    }
    let used = info.u64("used_memory").unwrap_or(0);
    let need = cfg.bytes_estimate(prefix_len);
    let harm = if policy == "noeviction" {
        "which could fill it and make it refuse the users' writes (OOM)"
    } else {
        "which could evict user keys"
    };
    // Allocator overhead and fragmentation: keep a 10 % margin below maxmemory.
    if used.saturating_add(need) > max / 10 * 9 {
        bail!(
            "refusing to start: this run may store ~{} MiB on a master at {} of {} MiB with maxmemory-policy {policy}, \
             {harm}. Bound the keys with --keyspace (a --duration run writes a new key per request), \
             use fewer requests or a smaller --data-size, or pass --allow-eviction",
            need >> 20,
            format_args!("{} MiB", used >> 20),
            max >> 20
        );
    }
    Ok(())
}

/// The replicas' output-buffer hard limit on the master, bytes (0: none),
/// from `client-output-buffer-limit`; None where CONFIG is not allowed.
pub(super) async fn replica_output_limit(master: &Master<'_>) -> Option<u64> {
    let v = master
        .conn
        .clone()
        .config_get("client-output-buffer-limit")
        .await
        .ok()??;
    let words: Vec<&str> = v.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "replica" || *w == "slave")?;
    parse_mem(words.get(at + 1)?)
}

/// `268435456`, `64mb`, `1gb`, `512k`: a redis.conf memory value in bytes.
fn parse_mem(s: &str) -> Option<u64> {
    let s = s.to_ascii_lowercase();
    let (num, mul) = match s.find(|c: char| !c.is_ascii_digit()) {
        None => (s.as_str(), 1),
        Some(i) => (
            &s[..i],
            match &s[i..] {
                "k" => 1000,
                "kb" => 1024,
                "m" => 1000 * 1000,
                "mb" => 1024 * 1024,
                "g" => 1000 * 1000 * 1000,
                "gb" => 1024 * 1024 * 1024,
                _ => return None,
            },
        ),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_values_parse() {
        assert_eq!(super::parse_mem("268435456"), Some(268435456));
        assert_eq!(super::parse_mem("1mb"), Some(1 << 20));
        assert_eq!(super::parse_mem("64MB"), Some(64 << 20));
        assert_eq!(super::parse_mem("5x"), None);
    }
}
