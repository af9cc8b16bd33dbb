//! Whether a node serves its users: one classification, from what the node
//! answered (connect, PING, a write probe that writes nothing) and its INFO,
//! that every subcommand goes through (`Survey::master`, `Ctx::survey`,
//! `Ctx::prepare_writes`). A node that does not serve is never a PASS: the
//! checking subcommands fail `<node>.serving`, the writing ones refuse.

use crate::client::{Conn, ErrorKind, Info, NodeError};
use crate::report::{human_bytes, Check};
use crate::topology::Node;

/// How a node serves its users' commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serving {
    /// Reads and writes work (a full cache that evicts by design included).
    Normally,
    /// Loading its dataset: -LOADING to every data command.
    Loading { percent: Option<String> },
    /// Running a long script or function: -BUSY to everything else.
    Busy,
    /// A failed RDB save with stop-writes-on-bgsave-error: -MISCONF to every
    /// write (and PING); reads work.
    Misconf,
    /// At maxmemory under a policy that cannot evict (noeviction, or
    /// volatile-* with no key with a TTL): -OOM to every user's write.
    OutOfMemory { used: u64, max: u64, policy: String },
}

impl Serving {
    /// Its reads work (compare, keycount and stats can run).
    pub fn reads(&self) -> bool {
        !matches!(self, Serving::Loading { .. } | Serving::Busy)
    }

    /// Every user's writes work.
    pub fn writes(&self) -> bool {
        *self == Serving::Normally
    }

    /// What the node does instead of serving, and what to do; empty when it serves.
    pub fn reason(&self) -> String {
        match self {
            Serving::Normally => String::new(),
            Serving::Loading { percent } => format!(
                "not serving: loading its dataset ({}), it answers LOADING to every data command; wait until INFO says loading:0",
                percent
                    .as_deref()
                    .map(|p| format!("{p} % loaded"))
                    .unwrap_or_else(|| "INFO loading:1".into())
            ),
            Serving::Busy => "not serving: busy running a long script or function, it answers BUSY to every command; end it (SCRIPT KILL, FUNCTION KILL) or wait".into(),
            Serving::Misconf => "not serving writes: its last RDB save failed (rdb_last_bgsave_status:err) and stop-writes-on-bgsave-error is on, so every write gets MISCONF (reads work); fix the save (disk, dir) and BGSAVE".into(),
            Serving::OutOfMemory { used, max, policy } => format!(
                "not serving writes: full, {} used of {} maxmemory under {policy}{}, so every user's write gets OOM; free memory or raise maxmemory",
                human_bytes(*used),
                human_bytes(*max),
                if policy.starts_with("volatile") { " with no key with a TTL to evict" } else { "" }
            ),
        }
    }
}

/// A node that does not serve, as an error: what the writing subcommands
/// refuse with (exit 2), and what the checking ones turn into a failed
/// `<node>.serving` check (exit 1).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{label}: {}", state.reason())]
pub struct NotServing {
    /// `master`, `replica1`, ...
    pub name: String,
    /// `master (127.0.0.1:6379)`
    pub label: String,
    pub state: Serving,
}

impl NotServing {
    pub fn new(node: &Node, state: Serving) -> NotServing {
        NotServing {
            name: node.name.clone(),
            label: node.label(),
            state,
        }
    }

    /// `<node>.serving`, failed, with the reason.
    pub fn check(&self) -> Check {
        Check::fail(format!("{}.serving", self.name), self.to_string())
    }

    /// The NotServing an error is, if it is one.
    pub fn of(e: &anyhow::Error) -> Option<&NotServing> {
        e.downcast_ref::<NotServing>()
    }
}

/// The state of a node that could not be connected to or read, from its
/// error: None when the error says nothing about serving (unreachable...).
pub fn from_error(e: &NodeError) -> Option<Serving> {
    match e.kind {
        ErrorKind::Busy => Some(Serving::Busy),
        ErrorKind::Loading => Some(Serving::Loading { percent: None }),
        _ => None,
    }
}

/// How a node that answered INFO serves: what PING answered at connect, its
/// INFO, and for a master near its limit what a write probe answered.
pub fn classify(info: &Info, ping_refused: Option<ErrorKind>, probe: Option<ErrorKind>) -> Serving {
    if info.flag("loading") || ping_refused == Some(ErrorKind::Loading) {
        return Serving::Loading {
            percent: info.get("loading_loaded_perc").map(String::from),
        };
    }
    if !info.is_master() {
        // A replica refuses user writes anyway and ignores maxmemory and
        // MISCONF by default: reads are its service.
        return Serving::Normally;
    }
    if ping_refused == Some(ErrorKind::Misconf) || probe == Some(ErrorKind::Misconf) {
        return Serving::Misconf;
    }
    let (used, max, policy) = memory(info);
    let cannot_evict = max > 0 && !evicts(info);
    // The probe says OOM for sure; without an answer (ACL), over the limit is OOM.
    let oom = match probe {
        Some(ErrorKind::OutOfMemory) => true,
        Some(_) => false,
        None => cannot_evict && used > max,
    };
    if oom {
        return Serving::OutOfMemory {
            used,
            max,
            policy: policy.to_string(),
        };
    }
    Serving::Normally
}

/// used (as maxmemory counts it), maxmemory, policy.
fn memory(info: &Info) -> (u64, u64, &str) {
    let used = info
        .u64("used_memory")
        .unwrap_or(0)
        .saturating_sub(info.u64("mem_not_counted_for_evict").unwrap_or(0));
    let max = info.u64("maxmemory").unwrap_or(0);
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    (used, max, policy)
}

/// Whether the policy can make room: allkeys-*, or volatile-* with a key
/// that has a TTL.
pub fn evicts(info: &Info) -> bool {
    let policy = info.get("maxmemory_policy").unwrap_or("noeviction");
    policy.starts_with("allkeys") || (policy.starts_with("volatile") && volatile_keys(info) > 0)
}

fn volatile_keys(info: &Info) -> u64 {
    info.keyspace().values().map(|d| d.expires).sum()
}

/// A master with maxmemory whose policy evicts, at its limit: writes (and
/// reads, whose replies count towards used_memory) evict somebody's keys.
pub fn evicting_at_limit(info: &Info) -> bool {
    let (used, max, _) = memory(info);
    max > 0 && evicts(info) && used as f64 >= max as f64 * NEAR_LIMIT
}

/// From this share of maxmemory a master is near its limit: the write probe
/// asks it whether it still takes writes.
const NEAR_LIMIT: f64 = 0.9;

/// On a master near its limit, or one whose last save failed: what a write
/// that writes nothing (SETRANGE of a missing key with an empty value is
/// flagged write and deny-oom, so the server refuses it as it would refuse
/// a user's write) answers. None where it was not asked or the ACL forbids it.
pub async fn probe(conn: &mut Conn, info: &Info) -> Option<ErrorKind> {
    if !info.is_master() {
        return None;
    }
    let (used, max, _) = memory(info);
    let near = max > 0 && used as f64 >= max as f64 * NEAR_LIMIT;
    let failed_save = info.get("rdb_last_bgsave_status") == Some("err");
    if !near && !failed_save {
        return None;
    }
    let cmd = redis::cmd("SETRANGE")
        .arg("redlab:serving-probe")
        .arg(0)
        .arg("")
        .clone();
    match conn.query::<i64>(&cmd).await {
        Ok(_) => Some(ErrorKind::Other),
        Err(e) if matches!(e.kind, ErrorKind::OutOfMemory | ErrorKind::Misconf) => Some(e.kind),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> Info {
        Info::parse(text)
    }

    #[test]
    fn loading_busy_and_misconf_come_from_what_the_node_answered() {
        let m = "role:master\r\nloading:0\r\n";
        assert_eq!(classify(&info(m), None, None), Serving::Normally);
        let l = info("role:master\r\nloading:1\r\nloading_loaded_perc:2.63\r\n");
        assert_eq!(
            classify(&l, None, None),
            Serving::Loading {
                percent: Some("2.63".into())
            }
        );
        assert!(!classify(&l, None, None).reads());
        let s = classify(&info(m), Some(ErrorKind::Misconf), None);
        assert_eq!(s, Serving::Misconf);
        assert!(s.reads() && !s.writes());
        // A replica's MISCONF does not stop its service (reads).
        assert_eq!(
            classify(&info("role:slave\r\n"), Some(ErrorKind::Misconf), None),
            Serving::Normally
        );
    }

    #[test]
    fn out_of_memory_only_where_the_policy_cannot_evict() {
        let full = |policy: &str, expires: u64| {
            info(&format!(
                "role:master\r\nused_memory:1100\r\nmaxmemory:1000\r\nmaxmemory_policy:{policy}\r\n\
                 db0:keys=5,expires={expires},avg_ttl=0\r\n"
            ))
        };
        assert!(matches!(
            classify(&full("noeviction", 0), None, None),
            Serving::OutOfMemory { .. }
        ));
        assert!(matches!(
            classify(&full("volatile-lru", 0), None, None),
            Serving::OutOfMemory { .. }
        ));
        assert_eq!(
            classify(&full("volatile-lru", 3), None, None),
            Serving::Normally
        );
        assert_eq!(
            classify(&full("allkeys-lru", 0), None, None),
            Serving::Normally
        );
        assert!(evicting_at_limit(&full("allkeys-lru", 0)));
        // The probe's answer wins over the figures.
        assert_eq!(
            classify(&full("noeviction", 0), None, Some(ErrorKind::Other)),
            Serving::Normally
        );
        let under = info("role:master\r\nused_memory:950\r\nmaxmemory:1000\r\n");
        assert!(matches!(
            classify(&under, None, Some(ErrorKind::OutOfMemory)),
            Serving::OutOfMemory { .. }
        ));
        assert!(classify(&under, None, Some(ErrorKind::OutOfMemory))
            .reason()
            .contains("every user's write gets OOM"));
    }
}
