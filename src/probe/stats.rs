//! The stats probe (stats' rows, demo's node table): for every node, what
//! the workshop's page showed (status, role, keys, memory, uptime) and what an
//! operator looks at next (ops/s, hit rate, expired and evicted keys,
//! replication offset and lag), from one survey.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::client::{DbCounts, Status};
use crate::report::{Check, Section, Verdict};
use crate::run::Ctx;
use crate::survey::{NodeState, Survey};
use crate::topology::Role;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeStats {
    pub name: String,
    /// host:port.
    pub address: String,
    /// `up`, `down` (unreachable), `loading`, `syncing` (full sync) or `link-down`.
    pub status: crate::client::Status,
    /// The role it reports (`master`, `slave`), null when down.
    pub role: Option<String>,
    /// `db<N>` -> keys and keys with a TTL, from INFO keyspace.
    pub keys: BTreeMap<String, DbCounts>,
    /// `used_memory`, bytes.
    pub used_memory_bytes: Option<u64>,
    /// `used_memory_human`, e.g. `1.05M`.
    pub used_memory_human: Option<String>,
    /// `uptime_in_seconds`.
    pub uptime_s: Option<u64>,
    /// `connected_clients`.
    pub connected_clients: Option<u64>,
    /// `instantaneous_ops_per_sec`.
    pub ops_per_sec: Option<u64>,
    /// `keyspace_hits`.
    pub keyspace_hits: Option<u64>,
    /// `keyspace_misses`.
    pub keyspace_misses: Option<u64>,
    /// hits / (hits + misses) in percent; null before the first lookup.
    pub hit_rate_pct: Option<f64>,
    /// `expired_keys` since start.
    pub expired_keys: Option<u64>,
    /// `evicted_keys` since start.
    pub evicted_keys: Option<u64>,
    /// `master_repl_offset` of the master, `slave_repl_offset` of a replica, bytes.
    pub repl_offset_bytes: Option<u64>,
    /// Replicas: master offset minus the offset this replica acknowledged, bytes.
    pub lag_bytes: Option<u64>,
    /// Replicas: seconds since its last ACK, as the master reports it.
    pub lag_s: Option<u64>,
    /// Why it is down.
    pub error: Option<String>,
}

/// One concurrent INFO pass over every node; a down node is a row, not an error.
pub async fn collect(ctx: &Ctx) -> Result<(Survey, Vec<NodeStats>)> {
    let survey = ctx.survey().await?;
    let nodes = node_stats(survey.all());
    Ok((survey, nodes))
}

/// Stats of every surveyed node (master first); replica lag comes from the master's own view.
pub fn node_stats(states: &[NodeState]) -> Vec<NodeStats> {
    let master = states
        .iter()
        .find(|s| s.node.role == Role::Master)
        .and_then(|s| s.info.as_ref());
    let lines = master.map(|m| m.replicas()).unwrap_or_default();
    states
        .iter()
        .map(|st| {
            let mut n = NodeStats {
                name: st.node.name.clone(),
                address: st.node.addr(),
                status: Status::Down,
                error: st.error.as_ref().map(|e| e.message.clone()),
                ..NodeStats::default()
            };
            let Some(i) = &st.info else { return n };
            n.status = i.status();
            n.role = Some(i.role().to_string());
            n.keys = i
                .keyspace()
                .into_iter()
                .map(|(db, c)| (format!("db{db}"), c))
                .collect();
            n.used_memory_bytes = i.u64("used_memory");
            n.used_memory_human = i.get("used_memory_human").map(String::from);
            n.uptime_s = i.u64("uptime_in_seconds");
            n.connected_clients = i.u64("connected_clients");
            n.ops_per_sec = i.u64("instantaneous_ops_per_sec");
            n.keyspace_hits = i.u64("keyspace_hits");
            n.keyspace_misses = i.u64("keyspace_misses");
            n.hit_rate_pct = hit_rate(n.keyspace_hits, n.keyspace_misses);
            n.expired_keys = i.u64("expired_keys");
            n.evicted_keys = i.u64("evicted_keys");
            n.repl_offset_bytes = if i.is_master() {
                Some(i.repl_offset())
            } else {
                i.u64("slave_repl_offset")
            };
            if st.node.role == Role::Replica {
                if let (Some(m), Some(l)) = (master, crate::replication::line_for(&st.node, &lines))
                {
                    n.lag_bytes = Some(m.repl_offset().saturating_sub(l.offset));
                    n.lag_s = Some(l.lag_s);
                }
            }
            n
        })
        .collect()
}

fn hit_rate(hits: Option<u64>, misses: Option<u64>) -> Option<f64> {
    let (h, m) = (hits?, misses?);
    (h + m > 0).then(|| (h as f64 * 1000.0 / (h + m) as f64).round() / 10.0)
}

/// One check per node: up passes, down fails, loading/syncing/link-down warns.
pub fn checks(nodes: &[NodeStats]) -> Vec<Check> {
    nodes
        .iter()
        .map(|n| {
            let name = format!("{}.status", n.name);
            match n.status {
                Status::Up => Check::pass(
                    name,
                    format!("up, {} role", n.role.as_deref().unwrap_or("-")),
                ),
                Status::Down => Check::fail(
                    name,
                    format!("down: {}", n.error.as_deref().unwrap_or("unreachable")),
                ),
                other => Check::new(
                    name,
                    Verdict::Warn,
                    format!("{other}: its data is not complete yet"),
                ),
            }
        })
        .collect()
}

/// The stats table, shared by the report, `--watch` and the demo. Columns
/// in order of what an operator looks at first: a narrow terminal shows the
/// left ones and names the rest.
pub fn sections(nodes: &[NodeStats]) -> Vec<Section> {
    let mut s = Section::new(
        "Stats",
        &[
            "node", "status", "role", "lag", "keys", "memory", "ops/s", "hit rate", "evicted",
            "expired", "clients", "uptime", "offset", "address",
        ],
    );
    let o = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
    for n in nodes {
        let keys: Vec<String> = n
            .keys
            .iter()
            .map(|(db, c)| format!("{db}:{}", c.keys))
            .collect();
        let lag = match (n.lag_bytes, n.lag_s) {
            (Some(b), Some(s)) => format!("{}, {s} s", crate::report::human_bytes_or_zero(b)),
            _ => "-".into(),
        };
        s.row(vec![
            n.name.clone(),
            n.status.as_str().to_uppercase(),
            n.role
                .as_deref()
                .map(|r| crate::report::role_word(r).to_string())
                .unwrap_or_else(|| "-".into()),
            lag,
            if n.role.is_none() {
                "-".into()
            } else if keys.is_empty() {
                "0".into()
            } else {
                keys.join(" ")
            },
            n.used_memory_bytes
                .map(crate::report::human_bytes_or_zero)
                .unwrap_or_else(|| "-".into()),
            o(n.ops_per_sec),
            n.hit_rate_pct
                .map(|p| format!("{p:.1} %"))
                .unwrap_or_else(|| "-".into()),
            o(n.evicted_keys),
            o(n.expired_keys),
            o(n.connected_clients),
            n.uptime_s
                .map(|s| humantime::format_duration(Duration::from_secs(s)).to_string())
                .unwrap_or_else(|| "-".into()),
            o(n.repl_offset_bytes),
            n.address.clone(),
        ]);
    }
    for n in nodes.iter().filter(|n| n.error.is_some()) {
        s.notes.push(format!(
            "{} is down: {}",
            n.name,
            n.error.as_deref().unwrap_or("")
        ));
    }
    vec![s]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_is_a_percentage_or_null() {
        assert_eq!(hit_rate(Some(95), Some(5)), Some(95.0));
        assert_eq!(hit_rate(Some(2), Some(1)), Some(66.7));
        assert_eq!(hit_rate(Some(0), Some(0)), None);
        assert_eq!(hit_rate(None, Some(3)), None);
    }

    #[test]
    fn status_from_info() {
        let i = |t: &str| crate::client::Info::parse(t);
        assert_eq!(i("role:master\r\n").status(), Status::Up);
        assert_eq!(
            i("role:slave\r\nmaster_link_status:down\r\n").status(),
            Status::LinkDown
        );
        assert_eq!(
            i("role:slave\r\nmaster_link_status:up\r\n").status(),
            Status::Up
        );
        assert_eq!(i("role:slave\r\nloading:1\r\n").status(), Status::Loading);
    }
}
