//! What perf checks before it writes: that the run cannot push the master
//! to its memory limit.

use super::Config;
use crate::survey::Master;

/// What the run is certain to store and have in flight at once, bytes: the
/// keys a read workload must fill first (key + value + ~64 B of overhead
/// each), and every request that can be on the wire together (connections x
/// pipeline x the largest value), which the master holds in its query
/// buffers. What the load writes after that is the live guard's (`room`):
/// an estimate of it refused the README's own recipes.
pub(super) fn need_bytes(cfg: &Config, prefix_len: usize) -> u64 {
    let per_key = prefix_len as u64 + 20 + cfg.opts.data_size.1 as u64 + 64;
    let in_flight = (cfg.opts.connections as u64)
        .saturating_mul(cfg.opts.pipeline as u64)
        .saturating_mul(per_key + 32);
    cfg.prefill()
        .unwrap_or(0)
        .saturating_mul(per_key)
        .saturating_add(in_flight)
}

/// Whether everything the run can write (prefill, warm-up and one round's
/// keys: rounds rewrite the same names) and have in flight fits in half of
/// `room_left`: then the live guard has nothing to stop and is not started.
/// A --duration run writes without a known bound: never.
pub(super) fn fits_easily(cfg: &Config, prefix_len: usize, room_left: u64) -> bool {
    let per_round = match cfg.stop {
        crate::loadgen::engine::Stop::Requests(n) => n,
        crate::loadgen::engine::Stop::Duration(_) => return false,
    };
    let per_key = prefix_len as u64 + 20 + cfg.opts.data_size.1 as u64 + 64;
    let keys = cfg
        .prefill()
        .unwrap_or(0)
        .saturating_add(cfg.opts.warmup)
        .saturating_add(per_round);
    let bytes = keys
        .saturating_mul(per_key)
        .saturating_add(need_bytes(cfg, prefix_len));
    bytes <= room_left / 2
}

/// What a perf user can change when the master has no room.
pub(super) const ROOM_HINT: &str =
    "bound the keys with --keyspace (a --duration run writes a new key \
     per request), use fewer requests, connections or a smaller --data-size";

/// The replicas' output-buffer hard limit on the master, bytes (0: none),
/// from `client-output-buffer-limit`; None where CONFIG is not allowed.
pub(super) async fn replica_output_limit(master: &Master<'_>) -> Option<u64> {
    // Read with the survey's INFO; asked again where that visit did not get it.
    let v = match master.state.config.get("client-output-buffer-limit") {
        Some(v) => v.clone(),
        None => master
            .conn
            .clone()
            .config_get("client-output-buffer-limit")
            .await
            .ok()??,
    };
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
