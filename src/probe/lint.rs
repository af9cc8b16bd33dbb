//! config-lint: settings that are legal but hurt a replicated Redis. Each
//! finding warns, or fails with --strict. A node whose CONFIG is renamed or
//! denied (a managed service) is skipped, naming the command and how to allow
//! it (failed with --strict); any other failure to read it fails the check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::NodeError;
use crate::report::{plural, Check, Verdict};
use crate::survey::Survey;
use crate::topology::Role;

const PARAMS: &[&str] = &[
    "save",
    "appendonly",
    "bind",
    "protected-mode",
    "replica-read-only",
    "maxmemory-policy",
    "min-replicas-to-write",
    "min-replicas-max-lag",
];

/// What the lint reads about one node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    pub name: String,
    /// The host redlab reached it at.
    pub host: String,
    /// `master` for the given master, else `replica`.
    pub expected_role: String,
    /// Whether redlab reached it without a password.
    pub no_password: bool,
    /// The master's `connected_slaves`.
    pub connected_replicas: u64,
    /// CONFIG GET of `PARAMS`.
    pub config: BTreeMap<String, String>,
}

/// What the lint read: each node's facts, and the nodes whose CONFIG could
/// not be read, with why.
#[derive(Debug, Default)]
pub struct Lint {
    pub facts: Vec<Facts>,
    pub unread: Vec<(String, NodeError)>,
}

/// How the findings are judged.
pub struct Rules {
    /// --strict: a finding fails instead of warning, and so does a node
    /// whose configuration cannot be read.
    pub strict: bool,
    /// --require-min-replicas.
    pub min_replicas: Option<u32>,
}

/// CONFIG GET of the parameters the lint reads, on every node that answered
/// the survey (reachability judges the others).
pub async fn measure(survey: &Survey) -> Lint {
    let mut lint = Lint::default();
    for st in survey.all() {
        let Some(mut conn) = st.conn.clone() else {
            continue; // reachability already fails it
        };
        match conn.config_get_many(PARAMS).await {
            Ok(config) => lint.facts.push(Facts {
                name: st.node.name.clone(),
                host: st.node.host().to_string(),
                expected_role: match st.node.role {
                    Role::Master => "master".into(),
                    Role::Replica => "replica".into(),
                },
                no_password: st.node.password().is_none(),
                connected_replicas: st
                    .info
                    .as_ref()
                    .and_then(|i| i.u64("connected_slaves"))
                    .unwrap_or(0),
                config,
            }),
            Err(e) => lint.unread.push((st.node.name.clone(), e)),
        }
    }
    lint
}

/// The unread nodes, then every finding; one passing `config-lint` when
/// nodes were read and nothing was found (none read, nothing checked).
pub fn checks(d: &Lint, rules: &Rules) -> Vec<Check> {
    let mut items: Vec<Check> = d
        .unread
        .iter()
        .map(|(node, e)| unread(node, e, rules.strict))
        .collect();
    let severity = if rules.strict {
        Verdict::Fail
    } else {
        Verdict::Warn
    };
    items.extend(findings(&d.facts, rules.min_replicas, severity));
    if !d.facts.is_empty() && items.is_empty() {
        items.push(Check::pass("config-lint", summary(d, rules)));
    }
    items
}

/// The step's one line when nothing was found.
pub fn summary(d: &Lint, rules: &Rules) -> String {
    format!(
        "{} linted: replicas read-only, persistence, passwords, eviction policy{}",
        plural(d.facts.len() as u64, "node"),
        if rules.min_replicas.is_some() {
            ", min-replicas-to-write"
        } else {
            ""
        }
    )
}

/// A node whose configuration could not be read: a restricted server is a
/// skip (a failure with --strict), anything else a failure.
fn unread(node: &str, e: &NodeError, strict: bool) -> Check {
    let name = format!("{node}.config");
    match e.restricted("CONFIG GET") {
        Some(why) if strict => Check::fail(
            name,
            format!("{why} (--strict fails a step that cannot run)"),
        ),
        Some(why) => Check::skip(name, format!("not linted: {why}")),
        None => Check::fail(name, e.message.clone()),
    }
}

/// Every finding over the nodes' facts; `facts[0]` is the master when it
/// could be read (its `expected_role` says so).
pub fn findings(facts: &[Facts], min_replicas: Option<u32>, severity: Verdict) -> Vec<Check> {
    let mut out = Vec::new();
    let mut flag = |name: String, reason: String| out.push(Check::new(name, severity, reason));
    let master = facts.iter().find(|f| f.expected_role == "master");
    for f in facts {
        let get = |k: &str| f.config.get(k).map(String::as_str).unwrap_or("");
        if f.expected_role == "replica" && get("replica-read-only") == "no" {
            flag(
                format!("{}.read-only", f.name),
                "replica-read-only is no: writes to this replica succeed and silently diverge from the master; set replica-read-only yes".into(),
            );
        }
        if f.no_password && beyond_loopback(&f.host, get("bind")) {
            flag(
                format!("{}.password", f.name),
                format!(
                    "no password while listening beyond loopback (bind '{}', protected-mode {}): set requirepass (and masterauth on replicas), or bind 127.0.0.1",
                    get("bind"),
                    get("protected-mode")
                ),
            );
        }
        if let Some(m) = master.filter(|m| m.name != f.name) {
            let (mine, theirs) = (get("maxmemory-policy"), m.config.get("maxmemory-policy"));
            if theirs.is_some_and(|t| t != mine) {
                flag(
                    format!("{}.maxmemory-policy", f.name),
                    format!(
                        "maxmemory-policy {mine} differs from the master's {}: after a failover this node evicts differently",
                        theirs.map(String::as_str).unwrap_or("")
                    ),
                );
            }
        }
    }
    if let Some(m) = master {
        let get = |k: &str| m.config.get(k).map(String::as_str).unwrap_or("");
        let persistence_off = get("save").trim().is_empty() && get("appendonly") != "yes";
        if persistence_off && m.connected_replicas > 0 {
            flag(
                format!("{}.persistence", m.name),
                format!(
                    "persistence is off (no save points, appendonly no) and {} {} it: a restart brings it back empty and the replicas resync to empty, wiping them",
                    plural(m.connected_replicas, "replica"),
                    if m.connected_replicas == 1 { "follows" } else { "follow" }
                ),
            );
        }
        let to_write: u32 = get("min-replicas-to-write").parse().unwrap_or(0);
        if let Some(want) = min_replicas.filter(|w| to_write < *w) {
            flag(
                format!("{}.min-replicas-to-write", m.name),
                format!(
                    "min-replicas-to-write is {to_write}, below the {want} asked for with --require-min-replicas: writes are accepted with fewer replicas connected; set min-replicas-to-write {want} (and min-replicas-max-lag, now {})",
                    get("min-replicas-max-lag")
                ),
            );
        }
    }
    out
}

/// Whether a node can be reached from other hosts: it was reached at a
/// non-loopback address, or it binds one.
fn beyond_loopback(host: &str, bind: &str) -> bool {
    let loopback = |a: &str| {
        let a = a.trim_start_matches('-');
        a == "localhost" || a == "::1" || a.starts_with("127.")
    };
    !loopback(host.trim_matches(['[', ']'])) || bind.split_whitespace().any(|a| !loopback(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: &str, config: &[(&str, &str)]) -> Facts {
        let mut base: BTreeMap<String, String> = [
            ("save", "3600 1 300 100"),
            ("appendonly", "no"),
            ("bind", "127.0.0.1"),
            ("protected-mode", "no"),
            ("replica-read-only", "yes"),
            ("maxmemory-policy", "allkeys-lru"),
            ("min-replicas-to-write", "0"),
            ("min-replicas-max-lag", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in config {
            base.insert(k.to_string(), v.to_string());
        }
        Facts {
            name: name.into(),
            host: "127.0.0.1".into(),
            expected_role: role.into(),
            no_password: true,
            connected_replicas: 1,
            config: base,
        }
    }

    fn names(c: &[Check]) -> Vec<&str> {
        c.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_sane_loopback_pair_is_clean() {
        let f = [
            node("master", "master", &[]),
            node("replica1", "replica", &[]),
        ];
        assert!(findings(&f, None, Verdict::Warn).is_empty());
    }

    #[test]
    fn each_rule_names_node_and_setting() {
        let f = [
            node("master", "master", &[("save", ""), ("bind", "0.0.0.0")]),
            node(
                "replica1",
                "replica",
                &[
                    ("replica-read-only", "no"),
                    ("maxmemory-policy", "noeviction"),
                ],
            ),
        ];
        let found = findings(&f, Some(1), Verdict::Fail);
        assert_eq!(
            names(&found),
            vec![
                "master.password",
                "replica1.read-only",
                "replica1.maxmemory-policy",
                "master.persistence",
                "master.min-replicas-to-write"
            ]
        );
        assert!(found.iter().all(|c| c.verdict == Verdict::Fail));
        assert!(found[2]
            .reason
            .contains("noeviction differs from the master's allkeys-lru"));
    }

    #[test]
    fn loopback_binds_and_passwords_are_fine() {
        assert!(beyond_loopback("127.0.0.1", "* -::*"));
        assert!(!beyond_loopback("localhost", "127.0.0.1 -::1"));
        assert!(beyond_loopback("10.0.0.5", "127.0.0.1"));
        let mut m = node("master", "master", &[("bind", "0.0.0.0")]);
        m.no_password = false;
        assert!(findings(&[m], None, Verdict::Warn).is_empty());
    }

    #[test]
    fn aof_counts_as_persistence_and_durability_is_opt_in() {
        let f = [node(
            "master",
            "master",
            &[("save", ""), ("appendonly", "yes")],
        )];
        assert!(findings(&f, None, Verdict::Warn).is_empty());
        let f = [node("master", "master", &[("min-replicas-to-write", "2")])];
        assert!(findings(&f, Some(2), Verdict::Warn).is_empty());
        assert_eq!(findings(&f, Some(3), Verdict::Warn).len(), 1);
    }
}
