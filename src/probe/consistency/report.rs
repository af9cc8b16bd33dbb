//! What a comparison means: one verdict per replica (a PASS is earned:
//! nothing compared is a warning, a replica not compared fails), and the
//! tables a human reads.

use crate::compare::{self, CompareResult, Kind, Path, ReplicaResult};
use crate::report::{Check, Details, Section, Verdict};

use super::CompareDetails;

/// One replica's verdict and its reason.
fn judge(r: &ReplicaResult, d: &CompareResult) -> (Verdict, String) {
    let c = &r.counts;
    if let Some(why) = &r.not_compared {
        let state = serde_json::to_value(r.settle.state)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        return (Verdict::Fail, format!("not compared ({state}): {why}"));
    }
    if let Some(e) = &r.error {
        return (Verdict::Fail, format!("comparison ended early: {e}"));
    }
    if d.interrupted {
        return (
            Verdict::Fail,
            format!(
                "interrupted after {} keys: a partial comparison, no verdict",
                c.compared
            ),
        );
    }
    if c.differing() > 0 {
        let kinds: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| c.get(**k) > 0)
            .map(|k| format!("{} {}", c.get(*k), k.label()))
            .collect();
        let named: Vec<String> = r
            .samples
            .iter()
            .filter(|s| s.kind != Kind::Converging)
            .take(3)
            .map(|s| format!("{} db{} \"{}\"", s.kind.label(), s.db, s.key))
            .collect();
        return (
            Verdict::Fail,
            format!(
                "{} of {} keys differ from the master ({}): {}",
                c.differing(),
                c.compared,
                kinds.join(", "),
                named.join(", ")
            ),
        );
    }
    if c.compared == 0 {
        return (
            Verdict::Warn,
            "nothing to compare: no keys on the master, none on the replica".into(),
        );
    }
    let mut unproven = Vec::new();
    if c.converging > 0 {
        unproven.push(format!(
            "{} of {} keys still changing after {} round(s) (written to while compared): not proven identical",
            c.converging, c.compared, d.rounds_used
        ));
    }
    if c.not_compared > 0 {
        unproven.push(not_compared_reason(r));
    }
    if !unproven.is_empty() {
        return (
            Verdict::Warn,
            format!("{}; the other {} are", unproven.join("; "), c.identical),
        );
    }
    (Verdict::Pass, pass_reason(r, d))
}

/// Keys of module types that could not be compared, with their types.
fn not_compared_reason(r: &ReplicaResult) -> String {
    let c = &r.counts;
    let types = if r.not_compared_types.is_empty() {
        "a module type".to_string()
    } else {
        r.not_compared_types.join(", ")
    };
    format!(
        "{} of {} not compared ({types}): their DUMPs differ, and redlab does not know this module type's serialized form to be stable nor how else to read it, so that proves nothing either way",
        crate::report::plural(c.not_compared, "key"),
        c.compared
    )
}

fn pass_reason(r: &ReplicaResult, d: &CompareResult) -> String {
    let c = &r.counts;
    let how = match r.path {
        Some(Path::Digest) => format!(
            "DEBUG DIGEST equal to the master's ({} keys); {} expiry times compared on a sample, all within {:.0} ms; the consumer groups of {} compared key by key (the digest does not see them)",
            c.compared,
            r.ttl_checked_keys.unwrap_or(0),
            d.ttl_tolerance_ms,
            crate::report::plural(r.streams_checked_keys.unwrap_or(0), "stream")
        ),
        _ => {
            let s = &d.sample;
            let of = if s.master_keys_sampled < s.master_keys_total {
                format!(" (a sample of {} of the master's {} keys)", s.master_keys_sampled, s.master_keys_total)
            } else {
                String::new()
            };
            format!(
                "{} identical in type, value and TTL{of}",
                crate::report::plural(c.compared, "key")
            )
        }
    };
    match r.settle.behind_bytes {
        Some(b) => format!(
            "{how}; it was {} behind when compared, differences re-checked",
            crate::report::human_bytes_or_zero(b)
        ),
        None => how,
    }
}

/// One `replicaN.consistency` check per replica; none at all fails.
pub fn checks(d: &CompareDetails) -> Vec<Check> {
    let r = &d.result;
    let mut out = Vec::new();
    if r.interrupted {
        out.push(Check::fail(
            "interrupted",
            "stopped by a signal before it finished: the counts are partial",
        ));
    }
    if r.replicas.is_empty() {
        out.push(Check::fail(
            "consistency",
            "no replica to compare with the master (none given or discovered)",
        ));
    }
    for rep in &r.replicas {
        let (verdict, reason) = judge(rep, r);
        out.push(Check::new(
            format!("{}.consistency", rep.name),
            verdict,
            reason,
        ));
    }
    out
}

fn path_label(r: &ReplicaResult) -> String {
    match r.path {
        Some(Path::Digest) => "digest".into(),
        Some(Path::Keys) => "keys".into(),
        None => "-".into(),
    }
}

impl Details for CompareDetails {
    /// Ctrl-C ends a comparison with its partial counts, marked interrupted.
    fn interrupted(&self) -> bool {
        self.result.interrupted
    }

    fn sections(&self) -> Vec<Section> {
        let r = &self.result;
        // Only when a module type could not be compared: the usual table stays as it is.
        let opaque = r.replicas.iter().any(|x| x.counts.not_compared > 0);
        let mut columns = vec![
            "node",
            "verdict",
            "compared",
            "identical",
            "missing",
            "extra",
            "type",
            "value",
            "TTL",
            "converging",
        ];
        if opaque {
            columns.push("not compared");
        }
        columns.extend(["path", "address"]);
        // By importance: a narrow terminal drops from the right, and the
        // verdict is the point.
        let mut s = Section::new("Consistency", &columns);
        for rep in &r.replicas {
            let c = &rep.counts;
            let verdict = match (&rep.not_compared, judge(rep, r).0) {
                (Some(_), _) => format!("{:?}", rep.settle.state).to_lowercase(),
                (None, v) => v.as_str().to_string(),
            };
            let n = |v: u64| {
                if rep.path.is_some() {
                    v.to_string()
                } else {
                    "-".into()
                }
            };
            let mut row = vec![
                rep.name.clone(),
                verdict,
                n(c.compared),
                n(c.identical),
                n(c.missing),
                n(c.extra),
                n(c.type_differs),
                n(c.value_differs),
                n(c.ttl_differs),
                n(c.converging),
            ];
            if opaque {
                row.push(n(c.not_compared));
            }
            row.extend([path_label(rep), rep.address.clone()]);
            s.row(row);
        }
        s.notes = self.notes();
        let mut out = vec![s];
        let keys: Vec<(&ReplicaResult, &compare::KeySample)> = r
            .replicas
            .iter()
            .flat_map(|rep| rep.samples.iter().map(move |k| (rep, k)))
            .collect();
        if !keys.is_empty() {
            let mut t = Section::new("Differing keys", &["node", "kind", "db", "key", "detail"]);
            for (rep, k) in keys {
                t.row(vec![
                    rep.name.clone(),
                    k.kind.label().into(),
                    k.db.to_string(),
                    k.key.clone(),
                    k.detail.clone(),
                ]);
            }
            t.notes.push(format!(
                "up to {} keys per kind and replica (--show); {}",
                self.show_per_kind,
                if self.show_values {
                    "values as their first 64 bytes (--show-values)"
                } else {
                    "values are not shown (--show-values shows their first bytes)"
                }
            ));
            out.push(t);
        }
        out
    }
}

impl CompareDetails {
    fn notes(&self) -> Vec<String> {
        let r = &self.result;
        let s = &r.sample;
        let dbs: Vec<String> = r.dbs.iter().map(|d| format!("db{d}")).collect();
        let mut notes = vec![format!(
            "{}: {} in {}; {}",
            r.master,
            crate::report::plural(s.master_keys_total, "key"),
            if dbs.is_empty() {
                "no db".into()
            } else {
                dbs.join(", ")
            },
            match (s.requested_keys, s.requested_ratio) {
                (None, None) => "every key compared".to_string(),
                _ => format!(
                    "a random sample of {} compared (method: {})",
                    crate::report::plural(s.master_keys_sampled, "key"),
                    s.method
                ),
            }
        )];
        notes.push(match (&r.master_digest, &r.digest_unavailable) {
            (Some(_), _) => "DEBUG DIGEST read on every node: equal digests mean the same keys, types and values, but record only whether a key has an expire, so expiry times are compared on a sample, and nothing of a stream's consumer groups, so every stream's groups are compared key by key".into(),
            (None, Some(why)) => format!("compared key by key: {why}"),
            (None, None) => "DEBUG DIGEST not read".into(),
        });
        notes.extend(r.streams_note.clone());
        notes.push(format!(
            "rounds used {}/{} (differing keys re-read after {:.0} ms; a key that converges is not a difference); TTL tolerance {:.0} ms plus the time between the two reads",
            r.rounds_used, r.rounds, self.interval_ms, r.ttl_tolerance_ms
        ));
        for rep in &r.replicas {
            if rep.settle.behind_bytes.is_some() || rep.not_compared.is_some() {
                notes.push(format!("{}: {}", rep.name, rep.settle.detail));
            }
            if rep.not_rechecked > 0 {
                notes.push(format!(
                    "{}: {} differences past the re-check cap were counted from their first read",
                    rep.name, rep.not_rechecked
                ));
            }
        }
        let ops: u64 = r.master_ops + r.replicas.iter().map(|x| x.ops).sum::<u64>();
        notes.push(format!(
            "took {:.0} ms, {:.0} ms before the re-checks ({:.0} keys/s per replica); {} commands in all, at most {} per second per node (--max-ops); redlab peak memory {}",
            r.elapsed_ms,
            r.first_pass_ms,
            r.keys_per_sec_per_node,
            ops,
            self.max_ops_per_sec.map(|m| m.to_string()).unwrap_or_else(|| "unlimited".into()),
            self.redlab_peak_rss_bytes
                .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
                .unwrap_or_else(|| "unknown".into())
        ));
        if r.interrupted {
            notes.push("INTERRUPTED: the comparison was stopped before it finished; these counts are partial".into());
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One replica, 10 keys compared, as a saved report holds it.
    fn details(counts: serde_json::Value, types: &[&str]) -> CompareDetails {
        serde_json::from_value(serde_json::json!({
            "master": "master", "master_address": "127.0.0.1:1", "dbs": [0],
            "master_digest": null, "digest_unavailable": "modules loaded",
            "sample": {"method": "all", "requested_keys": null, "requested_ratio": null,
                       "master_keys_sampled": 10, "master_keys_total": 10},
            "rounds": 3, "rounds_used": 3, "ttl_tolerance_ms": 250.0,
            "replicas": [{
                "name": "replica1", "address": "127.0.0.1:2",
                "settle": {"state": "caught_up", "detail": "", "caught_up_ms": 1.0, "behind_bytes": null},
                "not_compared": null, "path": "keys", "path_reason": "", "counts": counts,
                "samples": [], "not_rechecked": 0, "ttl_checked_keys": null,
                "not_compared_types": types, "error": null, "ops": 1
            }],
            "interrupted": false, "elapsed_ms": 1.0, "first_pass_ms": 1.0, "master_ops": 1,
            "keys_per_sec_per_node": 1.0, "settle_ms": 1.0, "interval_ms": 1000.0,
            "max_ops_per_sec": null, "show_per_kind": 10, "show_values": false,
            "redlab_peak_rss_bytes": null
        }))
        .unwrap()
    }

    fn counts(identical: u64, value_differs: u64, not_compared: u64) -> serde_json::Value {
        serde_json::json!({"compared": 10, "identical": identical, "missing": 0, "extra": 0,
            "type_differs": 0, "value_differs": value_differs, "ttl_differs": 0,
            "converging": 0, "not_compared": not_compared})
    }

    #[test]
    fn keys_not_compared_warn_naming_their_types_and_never_pass() {
        let d = details(counts(8, 0, 2), &["TSDB-TYPE"]);
        let c = &checks(&d)[0];
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(
            c.reason
                .starts_with("2 keys of 10 not compared (TSDB-TYPE): their DUMPs differ"),
            "{}",
            c.reason
        );
        assert!(c.reason.ends_with("the other 8 are"), "{}", c.reason);
        let table = &d.sections()[0];
        assert!(table.header.iter().any(|h| h == "not compared"));
        // A real difference beside them still fails.
        let d = details(counts(7, 1, 2), &["TSDB-TYPE"]);
        assert_eq!(checks(&d)[0].verdict, Verdict::Fail);
        // None: the usual table, without the column.
        let d = details(counts(10, 0, 0), &[]);
        assert_eq!(checks(&d)[0].verdict, Verdict::Pass);
        assert!(!d.sections()[0].header.iter().any(|h| h == "not compared"));
    }
}
