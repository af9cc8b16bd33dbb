//! The terminal table and markdown share one walk over the report
//! (hyperfine's `MarkupExporter`): a title, the topology, the subcommand's
//! tables, the checks, and a footer naming the run.

use super::{Document, NodeInfo, Section};

pub(super) trait Markup {
    fn title(&self, text: &str) -> String;
    fn section(&self, s: &Section) -> String;
    fn footer(&self, text: &str) -> String;

    /// What goes between the checks and the footer (markdown's figures).
    fn extra(&self, _doc: &Document<'_>) -> String {
        String::new()
    }

    fn walk(&self, doc: &Document<'_>) -> String {
        let mut sections = vec![nodes_section(doc.nodes)];
        sections.extend(doc.sections.iter().cloned());
        sections.push(checks_section(doc));
        let mut out = self.title(&format!("redlab {}: {}", doc.command, doc.verdict.as_str()));
        for s in &sections {
            out.push('\n');
            out.push_str(&self.section(s));
        }
        out.push_str(&self.extra(doc));
        let m = doc.manifest;
        out.push_str(&self.footer(&format!(
            "redlab {} on {}, started {}, took {:.1} ms, run {}: {}",
            m.redlab_version,
            m.host,
            m.started_at,
            m.duration_ms,
            m.run_id,
            m.args.join(" ")
        )));
        out
    }
}

pub(super) fn nodes_section(nodes: &[NodeInfo]) -> Section {
    let mut s = Section::new(
        "Topology",
        &[
            "node",
            "address",
            "role",
            "version",
            "maxmemory",
            "policy",
            "persistence",
        ],
    );
    for n in nodes {
        let role = match (&n.role, &n.error) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => "unreachable".into(),
            _ => "-".into(),
        };
        s.row(vec![
            n.name.clone(),
            n.address.clone(),
            role,
            super::opt(&n.redis_version),
            n.maxmemory_bytes
                .map(super::human_bytes)
                .unwrap_or_else(|| "-".into()),
            super::opt(&n.maxmemory_policy),
            super::opt(&n.persistence),
        ]);
    }
    s
}

fn checks_section(doc: &Document<'_>) -> Section {
    let mut s = Section::new("Checks", &["check", "verdict", "reason"]);
    for c in doc.checks {
        s.row(vec![
            c.name.clone(),
            c.verdict.as_str().into(),
            c.reason.clone(),
        ]);
    }
    s
}
