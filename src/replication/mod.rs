//! What a replica is to this master, decided one way for every check: does
//! it follow *this* master (same replication id **and** listed among the
//! master's own replicas, by ip:port), is its link up, is it syncing, how far
//! behind is it; the replica-count assertion; and one bounded poller that
//! waits for a replica to reach an offset.

pub mod lag;

use std::time::{Duration, Instant};

use crate::client::{Conn, Info, ReplicaLine};
use crate::report::Check;
use crate::survey::{Master, NodeState};
use crate::topology::{same_host, Node, ReplicaCount, Topology};

/// The master's INFO line for this replica: by ip:port, or by a port only
/// one line has (inside Docker the master may see another ip).
pub fn line_for<'a>(node: &Node, lines: &'a [ReplicaLine]) -> Option<&'a ReplicaLine> {
    lines
        .iter()
        .find(|l| l.port == node.port() && same_host(&l.ip, node.host()))
        .or_else(|| {
            let same_port: Vec<_> = lines.iter().filter(|l| l.port == node.port()).collect();
            (same_port.len() == 1).then(|| same_port[0])
        })
}

/// Why a replica's data cannot be compared with the master's, if it can't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Follows this master, link up, not syncing: comparable.
    Follows,
    Unreachable,
    /// Reachable but not a replica (promoted, or never made one).
    NotReplica,
    /// Loading or in a full sync: its data is not complete.
    Syncing,
    /// Its link to the master is down.
    LinkDown,
    /// Follows another master (other replication id), or is chained behind
    /// another replica, or follows an address that is not this master.
    Elsewhere,
}

/// Everything INFO says about one replica relative to this master.
#[derive(Debug, Clone)]
pub struct ReplicaView {
    pub standing: Standing,
    /// The role it reports, None when unreachable.
    pub role: Option<String>,
    pub link_status: Option<String>,
    /// What it follows, `host:port (name)` where the address is one of ours.
    pub follows: Option<String>,
    pub listed_by_master: bool,
    pub syncing: bool,
    /// Master offset minus the replica's: the offset it says it processed
    /// (its own INFO) when it follows this master, else the one it last
    /// acknowledged (the master's INFO, refreshed about once a second, so a
    /// burst just written shows as lag there).
    pub offset_lag_bytes: Option<u64>,
    /// Seconds since its last ACK, as the master reports.
    pub lag_s: Option<u64>,
    /// Every problem found, one line each; empty when it follows this master.
    pub problems: Vec<String>,
    /// Chained: the name of the replica of ours it follows with its link up
    /// and this master's replication id (its parent's listing is checked
    /// where the parent's INFO is at hand, `chain_problem`).
    pub chained_behind: Option<String>,
}

impl ReplicaView {
    /// The first problem, or what it follows.
    pub fn reason(&self) -> String {
        if self.problems.is_empty() {
            format!("follows {}", self.follows.as_deref().unwrap_or("-"))
        } else {
            self.problems.join("; ")
        }
    }
}

/// Judge one replica against the master's INFO.
pub fn view(st: &NodeState, master: &Info, topo: &Topology) -> ReplicaView {
    match &st.info {
        Some(info) => judge(&st.node, info, master, topo),
        None => {
            let mut v = judge_unread(&st.node, master);
            v.standing = Standing::Unreachable;
            v.problems.push(
                st.error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| "no answer".into()),
            );
            v
        }
    }
}

/// What the master's INFO alone says of a replica.
fn judge_unread(node: &Node, master: &Info) -> ReplicaView {
    let lines = master.replicas();
    let line = line_for(node, &lines);
    ReplicaView {
        standing: Standing::Follows,
        role: None,
        link_status: None,
        follows: None,
        listed_by_master: line.is_some(),
        syncing: false,
        offset_lag_bytes: line.map(|l| master.repl_offset().saturating_sub(l.offset)),
        lag_s: line.map(|l| l.lag_s),
        problems: Vec::new(),
        chained_behind: None,
    }
}

/// Judge a replica from its own INFO replication against the master's: the
/// one rule every check uses (replicate-check, keycount, compare, perf).
/// Addresses are named after `topo`'s nodes.
pub fn judge(node: &Node, info: &Info, master: &Info, topo: &Topology) -> ReplicaView {
    let lines = master.replicas();
    let line = line_for(node, &lines);
    let mut v = judge_unread(node, master);
    v.role = Some(info.role().to_string());
    v.link_status = info.get("master_link_status").map(String::from);
    v.syncing = info.syncing();
    let follows = info.follows();
    v.follows = follows.as_ref().map(|(h, p)| describe(topo, h, *p));
    if info.role() != "replica" {
        v.standing = Standing::NotReplica;
        v.problems.push(format!(
            "role is {}: it follows no master (promoted, or never made a replica), not this one",
            info.role()
        ));
        return v;
    }
    let target = v.follows.clone().unwrap_or_else(|| "nothing".into());
    if v.syncing {
        v.standing = Standing::Syncing;
        v.problems.push(syncing_reason(info));
    } else if !info.link_up() {
        v.standing = Standing::LinkDown;
        v.problems.push(format!(
            "link to {target} is {} (master_link_down_since_seconds {}, master_last_io_seconds_ago {}): \
             wrong masterauth, or the master unreachable from the replica? its log says why",
            info.get("master_link_status").unwrap_or("unknown"),
            info.get("master_link_down_since_seconds").unwrap_or("-"),
            info.get("master_last_io_seconds_ago").unwrap_or("-"),
        ));
    }
    let same_id = info.get("master_replid") == master.get("master_replid");
    let upstream = follows.as_ref().and_then(|(h, p)| topo.name_of(h, *p));
    let follows_ours = upstream == Some(topo.master.name.as_str());
    // Behind one of our replicas (a deliberate chain): not listed by the
    // master, which only lists its own, but the same replication id.
    let parent = upstream.filter(|n| *n != topo.master.name && *n != node.name);
    let elsewhere = if info.link_up() && !same_id {
        Some(format!(
            "follows {target}, which is another master (different replication id), not this one"
        ))
    } else if line.is_none() && parent.is_some() {
        v.chained_behind = parent.map(String::from);
        None
    } else if info.link_up() && line.is_none() {
        Some(format!(
            "follows {target} but is not among the master's own replicas: chained behind another replica, or following another master"
        ))
    } else if !info.link_up() && !follows_ours && parent.is_none() {
        Some(format!("follows {target}, not this master"))
    } else {
        None
    };
    if let Some(why) = elsewhere {
        v.standing = Standing::Elsewhere;
        v.problems.push(why);
    } else if same_id && !v.syncing {
        let own = info
            .u64("slave_repl_offset")
            .unwrap_or_else(|| info.repl_offset());
        v.offset_lag_bytes = Some(master.repl_offset().saturating_sub(own));
    }
    v
}

/// A replica in a full sync or loading: say how far along, never a verdict on its data.
fn syncing_reason(info: &Info) -> String {
    format!(
        "syncing: {}; its data is not complete yet, so it is not compared",
        sync_progress(info)
    )
}

/// How far a loading or full-syncing replica is.
pub fn sync_progress(info: &Info) -> String {
    if info.flag("loading") {
        format!(
            "loading the dataset ({}% loaded)",
            info.get("loading_loaded_perc").unwrap_or("?")
        )
    } else {
        let read = info.get("master_sync_read_bytes").unwrap_or("?");
        match info.get("master_sync_total_bytes") {
            // A diskless sync does not know its size in advance.
            Some("-1") | None => format!("full sync in progress ({read} bytes received so far)"),
            Some(total) => format!("full sync in progress ({read} of {total} bytes received)"),
        }
    }
}

/// `127.0.0.1:6380 (replica1)` where the address is one of ours.
fn describe(topo: &Topology, host: &str, port: u16) -> String {
    match topo.name_of(host, port) {
        Some(name) => format!("{} ({name})", crate::topology::host_port(host, port)),
        None => crate::topology::host_port(host, port),
    }
}

/// `master`: it is a master with the replicas it should have. A discovered
/// topology whose count nobody asserted is a warning (`--fail-on warn`
/// fails it): a replica the master lost is simply not in its list.
pub fn count_check(topo: &Topology, master: &Master<'_>) -> Check {
    let chained = topo.replicas.iter().filter(|r| r.via.is_some()).count();
    count_check_chained(topo, master, chained)
}

/// `count_check`, with `chained` replicas of the topology found chained
/// behind another replica (their parent lists them, not the master): they
/// count towards the replicas expected.
pub fn count_check_chained(topo: &Topology, master: &Master<'_>, chained: usize) -> Check {
    // `master`, or on a cluster `shard1.master`.
    let name = topo.master.name.as_str();
    let lines = master.info.replicas();
    let listed = lines.len() + chained;
    let addrs: Vec<String> = lines
        .iter()
        .map(|l| crate::topology::host_port(&l.ip, l.port))
        .collect();
    let mut lists = match lines.len() {
        0 => "role master, it lists no replica".to_string(),
        1 => format!("role master, it lists 1 replica ({})", addrs[0]),
        n => format!("role master, it lists {n} replicas ({})", addrs.join(", ")),
    };
    if chained > 0 {
        lists.push_str(&format!(" and {chained} more chained behind them"));
    }
    match topo.expected {
        ReplicaCount::Given(n) | ReplicaCount::Asserted(n) if listed < n => Check::fail(
            name,
            format!(
                "{lists}, {n} expected: {} missing (stopped, or unable to reach the master?)",
                n - listed
            ),
        ),
        ReplicaCount::Given(n) if listed > n => Check::fail(
            name,
            format!("{lists}, {n} given: the others are not checked; give every replica with --replica"),
        ),
        ReplicaCount::Asserted(n) if listed > n => {
            Check::warn(name, format!("{lists}, {n} expected (--expect-replicas)"))
        }
        ReplicaCount::Given(n) | ReplicaCount::Asserted(n) => {
            Check::pass(name, format!("{lists}, {n} expected"))
        }
        ReplicaCount::NotAsserted => Check::warn(
            name,
            format!("replica count not asserted: {lists}; a replica it lost would not be listed, so give --expect-replicas N"),
        ),
    }
}

/// `count_check` for a load on the master (perf): a master that lists no
/// replica, when nobody named or asserted any, is a lone master benchmarked
/// as such, not a replica count left unasserted. Replicas listed, given or
/// expected keep `count_check`'s verdict (a lost one would go unseen).
pub fn count_check_for_load(topo: &Topology, master: &Master<'_>) -> Check {
    let check = count_check(topo, master);
    if topo.expected == ReplicaCount::NotAsserted && master.info.replicas().is_empty() {
        return Check::pass(
            check.name,
            "role master, it lists no replica and none was asked for: a lone master \
             (--expect-replicas N asserts a count)",
        );
    }
    check
}

/// Where a replica stands after waiting for it to reach an offset.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// Bytes behind the target at the first read.
    pub first_lag_bytes: Option<u64>,
    /// Time from the start of the wait until it reached the target.
    pub caught_up_after: Option<Duration>,
    /// Why not, when it did not.
    pub behind: Option<(Standing, String)>,
}

/// Poll the replica's INFO replication until its offset reaches `target`
/// or `deadline` passes: the one "wait until caught up" loop.
pub async fn wait_caught_up(
    mut c: Conn,
    target: u64,
    start: Instant,
    deadline: Instant,
    every: Duration,
) -> CatchUp {
    let mut out = CatchUp {
        first_lag_bytes: None,
        caught_up_after: None,
        behind: None,
    };
    loop {
        let why = match c.info("replication").await {
            Err(e) => {
                out.behind = Some((Standing::Unreachable, e.message));
                return out;
            }
            Ok(i) if i.role() != "replica" => (
                Standing::NotReplica,
                format!("role is {}, not a replica", i.role()),
            ),
            // A full sync takes the link down too: say which it is.
            Ok(i) if i.syncing() => (Standing::Syncing, "loading or in a full sync".to_string()),
            Ok(i) if !i.link_up() => (
                Standing::LinkDown,
                format!(
                    "link to master is {}",
                    i.get("master_link_status").unwrap_or("?")
                ),
            ),
            Ok(i) => {
                let off = i.u64("slave_repl_offset").unwrap_or(0);
                out.first_lag_bytes
                    .get_or_insert(target.saturating_sub(off));
                if off >= target {
                    out.caught_up_after = Some(start.elapsed());
                    return out;
                }
                (
                    Standing::Follows,
                    format!(
                        "offset {off} behind the master's {target} by {} bytes",
                        target - off
                    ),
                )
            }
        };
        if Instant::now() >= deadline {
            out.behind = Some(why);
            return out;
        }
        tokio::time::sleep(every).await;
    }
}

/// A chained replica's link, from its parent's INFO: the parent must list
/// it (by ip:port) and itself follow this master. None when the link holds.
pub fn chain_problem(node: &Node, parent: &NodeState, parent_view: &ReplicaView) -> Option<String> {
    let Some(info) = &parent.info else {
        return Some(format!(
            "follows {}, which could not be reached to confirm it lists it",
            parent.node.label()
        ));
    };
    if line_for(node, &info.replicas()).is_none() {
        return Some(format!(
            "follows {} but {} does not list it among its replicas",
            parent.node.label(),
            parent.node.name
        ));
    }
    if !parent_view.problems.is_empty() {
        return Some(format!(
            "chained behind {}, which does not follow this master ({})",
            parent.node.label(),
            parent_view.reason()
        ));
    }
    None
}

/// Every replica of the survey judged, chained ones against their parent's
/// listing too (the one rule replicate-check and keycount use).
pub fn views(survey: &crate::survey::Survey, master: &Info, topo: &Topology) -> Vec<ReplicaView> {
    let replicas = survey.replicas();
    let mut out: Vec<ReplicaView> = replicas.iter().map(|st| view(st, master, topo)).collect();
    // A chain is checked link by link, from the master down: a parent's own
    // problems are known before its children's.
    for _ in 0..replicas.len() {
        let mut changed = false;
        for i in 0..replicas.len() {
            let Some(parent) = out[i].chained_behind.clone() else {
                continue;
            };
            let Some(j) = replicas.iter().position(|p| p.node.name == parent) else {
                continue;
            };
            if let Some(p) = chain_problem(&replicas[i].node, &replicas[j], &out[j]) {
                if !out[i].problems.contains(&p) {
                    out[i].problems.push(p);
                    out[i].standing = Standing::Elsewhere;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// Replicas of the survey whose chain link holds (their parent lists them).
pub fn chained_count(views: &[ReplicaView]) -> usize {
    views
        .iter()
        .filter(|v| v.chained_behind.is_some() && v.problems.is_empty())
        .count()
}
