//! Which server answers: Redis or Valkey, and its version, read once from
//! INFO. Valkey keeps a `redis_version` of 7.2.4 for compatibility: it names
//! the Redis commands it implements, so what a server *supports* is decided
//! on that number, and what it *is* on `server_name`/`valkey_version`.

use std::fmt;

use super::Info;

/// A server's flavour and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `redis` or `valkey` (another fork's `server_name` as it says it).
    pub flavour: String,
    /// Its own version: `valkey_version` for Valkey, else `redis_version`.
    pub version: String,
    /// The Redis version whose commands it implements (`redis_version`).
    compat: (u32, u32, u32),
}

impl Server {
    pub fn of(info: &Info) -> Server {
        let redis = info.get("redis_version").unwrap_or("unknown");
        let flavour = info
            .get("server_name")
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "redis".into());
        let version = info
            .get(&format!("{flavour}_version"))
            .unwrap_or(redis)
            .to_string();
        Server {
            flavour,
            version,
            compat: parse_version(redis),
        }
    }

    /// Implements the commands of Redis `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.compat.0, self.compat.1) >= (major, minor)
    }

    /// `CONFIG GET a b c` in one call (Redis 7.0+; 6.x takes one pattern).
    pub fn multi_config_get(&self) -> bool {
        self.at_least(7, 0)
    }

    /// `CLUSTER SHARDS` and `CLUSTER ADDSLOTSRANGE` (Redis 7.0+).
    pub fn cluster_shards(&self) -> bool {
        self.at_least(7, 0)
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.flavour, self.version)
    }
}

/// `7.2.4` -> (7, 2, 4); missing or unreadable parts are 0 (an unknown
/// version supports only what every version does).
fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valkey_is_named_by_its_own_version_and_supports_by_its_compat_number() {
        let i = Info::parse(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n",
        );
        let s = Server::of(&i);
        assert_eq!(s.to_string(), "valkey 8.1.8");
        assert!(s.multi_config_get() && s.cluster_shards());
    }

    #[test]
    fn redis_6_takes_one_config_parameter_and_has_no_cluster_shards() {
        let s = Server::of(&Info::parse("redis_version:6.2.14\r\n"));
        assert_eq!(s.to_string(), "redis 6.2.14");
        assert!(!s.multi_config_get() && !s.cluster_shards());
        let s = Server::of(&Info::parse("redis_version:7.0.15\r\n"));
        assert!(s.multi_config_get() && s.cluster_shards());
        assert!(!Server::of(&Info::default()).at_least(6, 0));
    }
}
