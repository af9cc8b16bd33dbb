//! `INFO` text parsed into what redlab reads: a flat field map with typed
//! accessors for replication and keyspace.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node's state in one word, as stats and the web page show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// It answers, and a replica's link to its master is up.
    Up,
    /// No answer.
    Down,
    /// Loading its RDB or AOF.
    Loading,
    /// A full sync in progress.
    Syncing,
    /// A replica whose link to its master is down.
    LinkDown,
    /// Not read yet.
    #[default]
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
            Status::Loading => "loading",
            Status::Syncing => "syncing",
            Status::LinkDown => "link-down",
            Status::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Info {
    fields: BTreeMap<String, String>,
    /// The sections the reply had (`# Replication` as `replication`): a
    /// managed service or a proxy may hide some, and a hidden section must
    /// not read as a node with no replicas or no keys.
    sections: std::collections::BTreeSet<String>,
}

/// What INFO's argument names, when it names one section (not `default`,
/// `all`, `everything`).
fn one_section(arg: &str) -> Option<String> {
    let a = arg.trim().to_ascii_lowercase();
    (!a.is_empty() && !matches!(a.as_str(), "default" | "all" | "everything")).then_some(a)
}

/// One `slaveN:` line of the master's INFO replication. N is not kept: it is
/// reassigned on reconnect, so replicas are identified by ip:port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaLine {
    pub ip: String,
    pub port: u16,
    pub state: LinkState,
    pub offset: u64,
    pub lag_s: u64,
}

/// A `slaveN:` line's `state=`: `online` (streaming), or what Redis says
/// before that (`wait_bgsave`, `send_bulk`...), kept as it said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum LinkState {
    Online,
    Other(String),
}

impl From<String> for LinkState {
    fn from(s: String) -> LinkState {
        match s.as_str() {
            "online" => LinkState::Online,
            _ => LinkState::Other(s),
        }
    }
}

impl From<LinkState> for String {
    fn from(s: LinkState) -> String {
        match s {
            LinkState::Online => "online".into(),
            LinkState::Other(s) => s,
        }
    }
}

/// One `dbN:` line of INFO keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCounts {
    pub keys: u64,
    pub expires: u64,
}

impl Info {
    pub fn parse(text: &str) -> Info {
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sections = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('#'))
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        Info { fields, sections }
    }

    /// Whether the reply had this section (`replication`, `keyspace`, ...).
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains(&name.to_ascii_lowercase())
    }

    /// The sections among `asked` (INFO's arguments) that the reply did not
    /// have: hidden by the server's provider or a proxy in front of it.
    pub fn missing(&self, asked: &[&str]) -> Vec<String> {
        asked
            .iter()
            .filter_map(|a| one_section(a))
            .filter(|a| !self.sections.contains(a))
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("1")
    }

    /// `master` or `replica` (what Redis still calls `slave` in INFO, in
    /// redlab's word, so no report says slave).
    pub fn role(&self) -> &str {
        match self.get("role") {
            Some("slave") => "replica",
            Some(r) => r,
            None => "unknown",
        }
    }

    pub fn is_master(&self) -> bool {
        self.role() == "master"
    }

    pub fn version(&self) -> &str {
        self.get("redis_version").unwrap_or("unknown")
    }

    pub fn repl_offset(&self) -> u64 {
        self.u64("master_repl_offset").unwrap_or(0)
    }

    /// What a replica says it follows: `host:port`.
    pub fn follows(&self) -> Option<(String, u16)> {
        let host = self.get("master_host")?;
        let port = self.u64("master_port")? as u16;
        Some((host.to_string(), port))
    }

    /// How a node serves, in one word: `loading`, `syncing` (a full sync
    /// in progress), `link-down` (a replica whose link to its master is
    /// down), or `up`.
    pub fn status(&self) -> Status {
        if self.flag("loading") {
            Status::Loading
        } else if self.flag("master_sync_in_progress") {
            Status::Syncing
        } else if !self.is_master() && !self.link_up() {
            Status::LinkDown
        } else {
            Status::Up
        }
    }

    pub fn link_up(&self) -> bool {
        self.get("master_link_status") == Some("up")
    }

    /// Loading an RDB or in a full sync: its data is not to be believed yet.
    pub fn syncing(&self) -> bool {
        self.flag("loading") || self.flag("master_sync_in_progress")
    }

    pub fn replicas(&self) -> Vec<ReplicaLine> {
        let mut out: Vec<ReplicaLine> = self
            .fields
            .iter()
            .filter(|(k, _)| is_slave_key(k))
            .filter_map(|(_, v)| parse_replica_line(v))
            .collect();
        out.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
        out
    }

    /// Key counts per database number, every db that has keys.
    pub fn keyspace(&self) -> BTreeMap<u32, DbCounts> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let db = k.strip_prefix("db")?.parse().ok()?;
                let kv = parse_kv(v);
                Some((
                    db,
                    DbCounts {
                        keys: kv.get("keys")?.parse().ok()?,
                        expires: kv.get("expires").and_then(|e| e.parse().ok()).unwrap_or(0),
                    },
                ))
            })
            .collect()
    }
}

fn is_slave_key(k: &str) -> bool {
    k.strip_prefix("slave")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_kv(v: &str) -> BTreeMap<&str, &str> {
    v.split(',').filter_map(|p| p.split_once('=')).collect()
}

fn parse_replica_line(v: &str) -> Option<ReplicaLine> {
    let kv = parse_kv(v);
    Some(ReplicaLine {
        ip: kv.get("ip")?.to_string(),
        port: kv.get("port")?.parse().ok()?,
        state: LinkState::from(kv.get("state").unwrap_or(&"unknown").to_string()),
        offset: kv.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
        lag_s: kv.get("lag").and_then(|o| o.parse().ok()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_written_as_its_word() {
        for s in [
            Status::Up,
            Status::Down,
            Status::Loading,
            Status::Syncing,
            Status::LinkDown,
            Status::Unknown,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
        assert_eq!(Status::LinkDown.as_str(), "link-down");
    }

    // Captured from Redis 7.0.15 (INFO replication + keyspace).
    const MASTER: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=6381,state=online,offset=3122,lag=0\r\n\
        slave1:ip=127.0.0.1,port=6380,state=wait_bgsave,offset=0,lag=1\r\n\
        master_failover_state:no-failover\r\n\
        master_replid:8a1f0c43d5b5bf4cd2a4c1c4a5e6c8a1ef5f0a11\r\n\
        master_repl_offset:3122\r\nsecond_repl_offset:-1\r\n\r\n\
        # Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=59123\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n";

    const REPLICA: &str = "# Replication\r\nrole:slave\r\nmaster_host:redis-master\r\n\
        master_port:6379\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:1\r\n\
        master_sync_in_progress:0\r\nslave_read_repl_offset:3122\r\nslave_repl_offset:3122\r\n\
        slave_priority:100\r\nslave_read_only:1\r\nconnected_slaves:0\r\n\
        master_replid:8a1f0c43d5b5bf4cd2a4c1c4a5e6c8a1ef5f0a11\r\nmaster_repl_offset:3122\r\n";

    #[test]
    fn master_fields_and_replica_lines() {
        let i = Info::parse(MASTER);
        assert!(i.is_master());
        assert_eq!(i.u64("connected_slaves"), Some(2));
        assert_eq!(i.repl_offset(), 3122);
        let r = i.replicas();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].port, 6380);
        assert_eq!(r[0].state, LinkState::Other("wait_bgsave".into()));
        assert_eq!(r[1].offset, 3122);
        assert_eq!(r[0].lag_s, 1);
    }

    #[test]
    fn keyspace_every_db() {
        let ks = Info::parse(MASTER).keyspace();
        assert_eq!(ks.len(), 2);
        assert_eq!(
            ks[&0],
            DbCounts {
                keys: 12,
                expires: 3
            }
        );
        assert_eq!(ks[&3].keys, 1);
    }

    #[test]
    fn replica_fields() {
        let i = Info::parse(REPLICA);
        assert_eq!(i.role(), "replica");
        assert!(i.link_up() && !i.syncing());
        assert_eq!(i.follows(), Some(("redis-master".into(), 6379)));
        assert!(i.replicas().is_empty());
        assert!(i.keyspace().is_empty());
        let loading = Info::parse("loading:1\r\nmaster_sync_in_progress:0\r\n");
        assert!(loading.syncing());
    }

    /// No real server here can hide one INFO section (ACLs allow or deny
    /// INFO whole; `rename-command INFO ""` removes it), so the path is
    /// tested on captured text: a managed service's INFO default without
    /// its Replication section, and an INFO keyspace answered empty.
    #[test]
    fn hidden_sections_are_named_not_read_as_empty() {
        let managed = "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n";
        let i = Info::parse(managed);
        assert!(i.has_section("Server") && i.has_section("keyspace"));
        assert!(!i.has_section("replication"));
        assert_eq!(
            i.missing(&["server", "replication", "KEYSPACE", "stats"]),
            vec!["replication".to_string(), "stats".to_string()]
        );
        // INFO default, all and everything name no one section.
        assert!(i.missing(&["default", "all", "everything"]).is_empty());
        // An empty db list still has its header; an empty reply has none.
        assert!(Info::parse("# Keyspace\r\n")
            .missing(&["keyspace"])
            .is_empty());
        assert_eq!(Info::parse("").missing(&["keyspace"]), vec!["keyspace"]);
        assert!(Info::parse(MASTER)
            .missing(&["replication", "keyspace"])
            .is_empty());
    }
}
