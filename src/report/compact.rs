//! A gate's report as a person at a terminal reads it (`Details::compact`):
//! what did not pass first, then one line per check; a check that passed
//! on every shard of a cluster is one line, not one per shard. The tables
//! and findings behind each line are in the file (`--output`, `--report`)
//! and with -v.

use super::{Check, Section, Verdict};

/// Where the rest is: every format but this one has it.
pub const REST: &str =
    "the findings and measurements behind each line: -v, --output FILE or --report";

/// The sections of the compact view of `checks`.
pub fn sections(checks: &[Check]) -> Vec<Section> {
    let rows = grouped(checks);
    let (mut bad, rest): (Vec<Check>, Vec<Check>) = rows
        .into_iter()
        .partition(|c| matches!(c.verdict, Verdict::Fail | Verdict::Warn));
    let mut out = Vec::new();
    if !bad.is_empty() {
        // Failures before warnings; each kind in gate order.
        bad.sort_by_key(|c| std::cmp::Reverse(c.verdict));
        out.push(table("Did not pass", &bad));
    }
    let title = if out.is_empty() {
        "Checks"
    } else {
        "The other checks"
    };
    let mut s = table(title, &rest);
    if rest.is_empty() {
        s.header.clear();
    }
    s.notes.push(REST.into());
    out.push(s);
    out
}

fn table(title: &str, rows: &[Check]) -> Section {
    let mut s = Section::new(title, &["check", "verdict", "reason"]);
    for c in rows {
        s.row(vec![
            c.name.clone(),
            c.verdict.as_str().into(),
            c.reason.clone(),
        ]);
    }
    s
}

/// `shard2.expiry` -> (`shard2`, `expiry`).
fn shard_of(name: &str) -> Option<(&str, &str)> {
    let (shard, step) = name.split_once('.')?;
    let n = shard.strip_prefix("shard")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((shard, step))
}

/// The checks, with a step that passed on every shard, or ended alike on
/// each (the same verdict for the same reason), made one row where the
/// first of them was.
fn grouped(checks: &[Check]) -> Vec<Check> {
    let mut out: Vec<Check> = Vec::new();
    let mut done = vec![false; checks.len()];
    for (i, c) in checks.iter().enumerate() {
        if done[i] {
            continue;
        }
        let Some((_, step)) = shard_of(&c.name) else {
            out.push(c.clone());
            continue;
        };
        let same: Vec<usize> = (i..checks.len())
            .filter(|&j| shard_of(&checks[j].name).is_some_and(|(_, s)| s == step))
            .collect();
        // The same reason on each shard, its own name aside.
        let unshard = |j: usize| {
            let o = &checks[j];
            let shard = shard_of(&o.name).map(|(s, _)| s).unwrap_or_default();
            o.reason.replace(&format!("{shard}."), "")
        };
        let same_reason = same.iter().all(|&j| unshard(j) == unshard(i));
        let alike = same.iter().all(|&j| checks[j].verdict == c.verdict)
            && (c.verdict == Verdict::Pass || same_reason);
        if same.len() < 2 || !alike {
            out.push(c.clone());
            continue;
        }
        let shards: Vec<&str> = same
            .iter()
            .filter_map(|&j| shard_of(&checks[j].name).map(|(s, _)| s))
            .collect();
        let reason = if c.verdict == Verdict::Pass && !same_reason {
            format!(
                "passed on each of {} shards ({})",
                shards.len(),
                shards.join(", ")
            )
        } else {
            format!("on {}: {}", shards.join(", "), unshard(i))
        };
        for j in same {
            done[j] = true;
        }
        out.push(Check::new(step, c.verdict, reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_leads_and_passes_follow_one_line_each() {
        let checks = vec![
            Check::pass("reachability", "4 nodes answer"),
            Check::warn("config-lint", "master: no persistence"),
            Check::fail("replication", "replica2: link down"),
            Check::pass("expiry", "in time"),
        ];
        let s = sections(&checks);
        assert_eq!(s[0].title, "Did not pass");
        let names: Vec<&str> = s[0].rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["replication", "config-lint"]);
        let names: Vec<&str> = s[1].rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["reachability", "expiry"]);
        assert_eq!(s[1].notes, [REST]);
    }

    #[test]
    fn a_step_that_passed_on_every_shard_is_one_line_and_a_failing_shard_stays() {
        let mut checks = vec![Check::pass("cluster", "3 shards serving slots")];
        for shard in ["shard1", "shard2", "shard3"] {
            checks.push(Check::pass(
                format!("{shard}.reachability"),
                format!("4 nodes answer on {shard}"),
            ));
            let expiry = format!("{shard}.expiry");
            checks.push(if shard == "shard2" {
                Check::fail(expiry, "late")
            } else {
                Check::pass(expiry, "in time")
            });
        }
        checks.extend(["shard1", "shard2"].map(|shard| {
            Check::warn(
                format!("{shard}.config-lint"),
                format!("{shard}.master.persistence: off"),
            )
        }));
        let s = sections(&checks);
        let bad: Vec<(&str, &str)> = s[0]
            .rows
            .iter()
            .map(|r| (r[0].as_str(), r[2].as_str()))
            .collect();
        assert_eq!(
            bad,
            [
                ("shard2.expiry", "late"),
                ("config-lint", "on shard1, shard2: master.persistence: off")
            ]
        );
        let rest: Vec<(&str, &str)> = s[1]
            .rows
            .iter()
            .map(|r| (r[0].as_str(), r[2].as_str()))
            .collect();
        assert_eq!(
            rest,
            [
                ("cluster", "3 shards serving slots"),
                (
                    "reachability",
                    "passed on each of 3 shards (shard1, shard2, shard3)"
                ),
                ("shard1.expiry", "in time"),
                ("shard3.expiry", "in time"),
            ]
        );
    }
}
