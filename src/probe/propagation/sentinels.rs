//! Every Sentinel given is asserted: each answers (`sentinelN`), the
//! answering Sentinels agree on the master and it is the master under test
//! (`sentinels.master`), and the quorum can be reached (`sentinels.quorum`,
//! `SENTINEL CKQUORUM`). One silent Sentinel of two is a failover that
//! cannot happen: it fails the run, it is not left out of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::NodeError;
use crate::discover::sentinel::{self, flags_down, Observation, SentinelSet};
use crate::report::{plural, Check, Section};
use crate::topology::{same_host, Node};

/// One Sentinel as the health checks found it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SentinelResult {
    /// `sentinel1`, ...
    pub name: String,
    /// host:port.
    pub address: String,
    /// pass or fail.
    pub verdict: String,
    /// The master it names (`get-master-addr-by-name`), host:port; null when
    /// it did not answer or knows no master by that name.
    pub master: Option<String>,
    /// Its flags for that master (`master`, `s_down`, `o_down`, ...).
    pub master_flags: Option<String>,
    /// Replicas it lists, and how many of those it flags down.
    pub replicas: Option<usize>,
    pub replicas_down: Option<usize>,
    /// Other Sentinels it knows.
    pub other_sentinels: Option<usize>,
    /// Its `SENTINEL CKQUORUM` reply, as it answered.
    pub quorum: Option<String>,
    /// Why it failed its own check.
    pub problem: Option<String>,
}

/// What each Sentinel answers now, or what it answered when the topology
/// was resolved through them moments ago.
pub async fn observe(set: &SentinelSet, timeout: Duration) -> Vec<Result<Observation, NodeError>> {
    match sentinel::observed(set) {
        Some(seen) => seen.clone(),
        None => sentinel::observe(set, timeout).await,
    }
}

/// The checks, and each Sentinel's row.
pub async fn checks(
    set: &SentinelSet,
    master: &Node,
    timeout: Duration,
) -> (Vec<Check>, Vec<SentinelResult>) {
    let seen = observe(set, timeout).await;
    evaluate(set, master, &seen)
}

/// The checks from what each Sentinel answered (no network).
pub fn evaluate(
    set: &SentinelSet,
    master: &Node,
    seen: &[Result<Observation, NodeError>],
) -> (Vec<Check>, Vec<SentinelResult>) {
    let name = &set.master_name;
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for (node, o) in set.nodes.iter().zip(seen) {
        let row = one(node, name, o);
        checks.push(match &row.problem {
            Some(p) => Check::fail(&row.name, format!("{} ({}): {p}", row.name, row.address)),
            None => Check::pass(
                &row.name,
                format!(
                    "names {} as the master of '{name}' (flags {}), lists {} ({} down), knows {}",
                    row.master.as_deref().unwrap_or("-"),
                    row.master_flags.as_deref().unwrap_or("-"),
                    plural(row.replicas.unwrap_or(0) as u64, "replica"),
                    row.replicas_down.unwrap_or(0),
                    plural(row.other_sentinels.unwrap_or(0) as u64, "other Sentinel"),
                ),
            ),
        });
        rows.push(row);
    }
    checks.push(agreement(name, master, &rows));
    checks.push(quorum(name, &rows));
    (checks, rows)
}

fn one(node: &Node, name: &str, o: &Result<Observation, NodeError>) -> SentinelResult {
    let mut r = SentinelResult {
        name: node.name.clone(),
        address: node.addr(),
        ..SentinelResult::default()
    };
    match o {
        Err(e) => r.problem = Some(e.message.clone()),
        Ok(o) => {
            let v = &o.view;
            r.quorum = Some(match &o.quorum {
                Ok(s) | Err(s) => s.clone(),
            });
            match &v.master {
                None => {
                    r.problem = Some(format!(
                        "knows no master named '{name}' (give --master-name as its configuration calls it)"
                    ))
                }
                Some((h, p)) => {
                    r.master = Some(format!("{h}:{p}"));
                    r.master_flags = Some(v.master_flags.clone());
                    r.replicas = Some(v.replicas.len());
                    r.replicas_down = Some(v.replicas.iter().filter(|p| p.is_down()).count());
                    r.other_sentinels = Some(v.sentinels.len());
                    if flags_down(&v.master_flags) {
                        r.problem = Some(format!(
                            "sees the master {h}:{p} as down (flags {}): a failover may follow",
                            v.master_flags
                        ));
                    }
                }
            }
        }
    }
    r.verdict = if r.problem.is_some() { "fail" } else { "pass" }.into();
    r
}

/// `sentinels.master`: every answering Sentinel names the same master, and
/// it is the one under test.
fn agreement(name: &str, master: &Node, rows: &[SentinelResult]) -> Check {
    const CHECK: &str = "sentinels.master";
    let said: Vec<(&str, &str)> = rows
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.master.as_deref()?)))
        .collect();
    let Some((_, first)) = said.first() else {
        return Check::fail(
            CHECK,
            format!("no Sentinel named a master for '{name}': see each Sentinel's check"),
        );
    };
    if said.iter().any(|(_, m)| m != first) {
        let each: Vec<String> = said.iter().map(|(n, m)| format!("{n} says {m}")).collect();
        return Check::fail(
            CHECK,
            format!(
                "the Sentinels disagree on the master of '{name}': {}; a failover in progress, \
                 or a Sentinel monitoring another master under this name",
                each.join(", ")
            ),
        );
    }
    let is_ours = first
        .rsplit_once(':')
        .is_some_and(|(h, p)| p.parse() == Ok(master.port()) && same_host(h, master.host()));
    let who = said.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    if !is_ours {
        return Check::fail(
            CHECK,
            format!(
                "{who} name {first} as the master of '{name}', not the master under test ({}): a failover since the run began?",
                master.addr()
            ),
        );
    }
    let only = if said.len() < rows.len() {
        format!(
            " (the only {} that answered)",
            plural(said.len() as u64, "Sentinel")
        )
    } else {
        String::new()
    };
    Check::pass(
        CHECK,
        format!("{who} name {first}, the master under test, as the master of '{name}'{only}"),
    )
}

/// `sentinels.quorum`: every answering Sentinel says CKQUORUM is reachable.
fn quorum(name: &str, rows: &[SentinelResult]) -> Check {
    const CHECK: &str = "sentinels.quorum";
    let asked: Vec<&SentinelResult> = rows.iter().filter(|r| r.quorum.is_some()).collect();
    if asked.is_empty() {
        return Check::fail(
            CHECK,
            format!("not checked: no Sentinel answered SENTINEL CKQUORUM {name}"),
        );
    }
    let bad: Vec<String> = asked
        .iter()
        .filter(|r| !r.quorum.as_deref().unwrap_or("").starts_with("OK"))
        .map(|r| format!("{} answers {}", r.name, r.quorum.as_deref().unwrap_or("")))
        .collect();
    if !bad.is_empty() {
        return Check::fail(
            CHECK,
            format!("SENTINEL CKQUORUM {name}: {}", bad.join("; ")),
        );
    }
    Check::pass(
        CHECK,
        format!(
            "SENTINEL CKQUORUM {name} on {}: {}",
            plural(asked.len() as u64, "Sentinel"),
            asked[0].quorum.as_deref().unwrap_or("")
        ),
    )
}

/// The Sentinels table.
pub fn section(rows: &[SentinelResult]) -> Section {
    let mut s = Section::new(
        "Sentinels",
        &[
            "sentinel",
            "verdict",
            "master",
            "flags",
            "replicas",
            "sentinels",
            "quorum",
            "address",
        ],
    );
    let opt = |v: &Option<usize>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    for r in rows {
        s.row(vec![
            r.name.clone(),
            r.verdict.to_uppercase(),
            r.master.clone().unwrap_or_else(|| "-".into()),
            r.master_flags.clone().unwrap_or_else(|| "-".into()),
            match (r.replicas, r.replicas_down) {
                (Some(n), Some(d)) if d > 0 => format!("{n} ({d} down)"),
                (n, _) => opt(&n),
            },
            opt(&r.other_sentinels),
            r.quorum
                .clone()
                .or_else(|| r.problem.clone())
                .unwrap_or_else(|| "-".into()),
            r.address.clone(),
        ]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorKind;
    use crate::discover::sentinel::SentinelView;
    use crate::report::Verdict;
    use crate::topology::Role;

    fn says(port: u16, flags: &str, quorum: Result<&str, &str>) -> Result<Observation, NodeError> {
        Ok(Observation {
            view: SentinelView {
                master: Some(("127.0.0.1".into(), port)),
                master_flags: flags.into(),
                replicas: Vec::new(),
                sentinels: Vec::new(),
            },
            quorum: quorum.map(String::from).map_err(String::from),
        })
    }

    fn set() -> SentinelSet {
        SentinelSet::parse(
            &["redis://127.0.0.1:1".into(), "redis://127.0.0.1:2".into()],
            "redlab",
        )
        .unwrap()
    }

    fn verdicts(checks: &[Check]) -> Vec<(String, Verdict)> {
        checks.iter().map(|c| (c.name.clone(), c.verdict)).collect()
    }

    #[test]
    fn a_silent_sentinel_fails_its_own_check_and_the_others_still_count() {
        let master = Node::parse("master", Role::Master, "redis://127.0.0.1:6379").unwrap();
        let ok = "OK 2 usable Sentinels. Quorum and failover authorization can be reached";
        let silent = Err(NodeError::new(
            "sentinel2",
            "127.0.0.1:2",
            ErrorKind::Timeout,
            "no answer to PING within 1s",
        ));
        let (checks, rows) = evaluate(&set(), &master, &[says(6379, "master", Ok(ok)), silent]);
        assert_eq!(
            verdicts(&checks),
            [
                ("sentinel1".to_string(), Verdict::Pass),
                ("sentinel2".to_string(), Verdict::Fail),
                ("sentinels.master".to_string(), Verdict::Pass),
                ("sentinels.quorum".to_string(), Verdict::Pass),
            ]
        );
        assert_eq!(
            checks[1].reason,
            "sentinel2 (127.0.0.1:2): no answer to PING within 1s"
        );
        assert!(checks[2]
            .reason
            .contains("the only 1 Sentinel that answered"));
        assert_eq!(rows[1].verdict, "fail");
    }

    #[test]
    fn disagreement_another_master_and_no_quorum_fail() {
        let master = Node::parse("master", Role::Master, "redis://127.0.0.1:6379").unwrap();
        let ok = Ok("OK 1 usable Sentinels");
        let (c, _) = evaluate(
            &set(),
            &master,
            &[says(6379, "master", ok), says(7000, "master", ok)],
        );
        assert_eq!(c[2].verdict, Verdict::Fail);
        assert!(
            c[2].reason
                .contains("sentinel1 says 127.0.0.1:6379, sentinel2 says 127.0.0.1:7000"),
            "{}",
            c[2].reason
        );
        let (c, _) = evaluate(
            &set(),
            &master,
            &[says(7000, "master", ok), says(7000, "master", ok)],
        );
        assert!(
            c[2].reason
                .contains("not the master under test (127.0.0.1:6379)"),
            "{}",
            c[2].reason
        );
        let no = Err("NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master");
        let (c, _) = evaluate(
            &set(),
            &master,
            &[says(6379, "master", no), says(6379, "s_down,master", ok)],
        );
        assert_eq!(c[1].verdict, Verdict::Fail);
        assert!(
            c[1].reason
                .contains("sees the master 127.0.0.1:6379 as down"),
            "{}",
            c[1].reason
        );
        assert!(
            c[3].reason.contains("sentinel1 answers NOQUORUM 1 usable"),
            "{}",
            c[3].reason
        );
    }
}
