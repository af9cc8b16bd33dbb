//! JUnit XML: one testcase per check, so CI systems show them natively.
//! The run manifest goes into the suite's properties.

use anyhow::Result;

use super::{Check, Document, Exporter, Manifest, NodeInfo, Verdict};

pub struct JunitExporter;

impl Exporter for JunitExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        Ok(render(doc.command, doc.checks, doc.manifest, doc.nodes))
    }
}

fn render(suite: &str, checks: &[Check], m: &Manifest, nodes: &[NodeInfo]) -> String {
    let failures = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let time = m.duration_ms / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"redlab\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n",
        checks.len(),
    ));
    // The JUnit schema's timestamp has no zone designator.
    let stamp = m
        .started_at
        .trim_end_matches('Z')
        .split('.')
        .next()
        .unwrap_or("");
    out.push_str(&format!(
        "  <testsuite name=\"redlab {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{}\" hostname=\"{}\">\n",
        esc(suite),
        checks.len(),
        esc(stamp),
        esc(&m.host),
    ));
    out.push_str("    <properties>\n");
    let mut props = vec![
        ("redlab_version".to_string(), m.redlab_version.clone()),
        ("run_id".into(), m.run_id.clone()),
        ("started_at".into(), m.started_at.clone()),
        ("args".into(), m.args.join(" ")),
    ];
    props.extend(
        nodes
            .iter()
            .map(|n| (format!("node.{}", n.name), node_summary(n))),
    );
    for (k, v) in props {
        out.push_str(&format!(
            "      <property name=\"{}\" value=\"{}\"/>\n",
            esc(&k),
            esc(&v)
        ));
    }
    out.push_str("    </properties>\n");
    for c in checks {
        let open = format!(
            "    <testcase classname=\"redlab.{}\" name=\"{}\"",
            esc(suite),
            esc(&c.name)
        );
        match c.verdict {
            Verdict::Pass => out.push_str(&format!("{open}>\n      <system-out>{}</system-out>\n    </testcase>\n", esc(&c.reason))),
            Verdict::Warn => out.push_str(&format!(
                "{open}>\n      <system-out>WARN: {}</system-out>\n    </testcase>\n",
                esc(&c.reason)
            )),
            Verdict::Fail => out.push_str(&format!(
                "{open}>\n      <failure message=\"{}\" type=\"fail\">{}</failure>\n    </testcase>\n",
                esc(&c.reason),
                esc(&c.reason)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `127.0.0.1:6379 master redis 7.0.15, persistence rdb, maxmemory 268435456 allkeys-lru`
fn node_summary(n: &NodeInfo) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match &n.error {
        Some(e) => format!("{} unreachable: {e}", n.address),
        None => format!(
            "{} {} redis {}, persistence {}, maxmemory {} {}",
            n.address,
            o(&n.role),
            o(&n.redis_version),
            o(&n.persistence),
            n.maxmemory_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            o(&n.maxmemory_policy)
        ),
    }
}

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}
