//! The terminal table and markdown share one walk over the report
//! (hyperfine's `MarkupExporter`): a title, the topology, the subcommand's
//! tables, the checks, and a footer naming the run.

use super::{Document, NodeInfo, Section, Verdict, View};

pub(super) trait Markup {
    fn title(&self, text: &str) -> String;
    fn section(&self, s: &Section) -> String;
    fn footer(&self, text: &str) -> String;

    /// What goes between the checks and the footer (markdown's figures).
    fn extra(&self, _doc: &Document<'_>) -> String {
        String::new()
    }

    /// The view it renders for (files: everything).
    fn view(&self) -> View {
        View::file()
    }

    /// Each thing once: the topology table only where it is the point
    /// (stats, lab) or asked for (-v, and every file); a brief report (the
    /// demo, whose story stderr just told) only its verdict and what did
    /// not pass.
    fn walk(&self, doc: &Document<'_>) -> String {
        let verbose = self.view().verbose;
        let mut sections = Vec::new();
        if (verbose || matches!(doc.command, "stats" | "lab")) && !doc.nodes.is_empty() {
            sections.push(nodes_section(doc.nodes));
        }
        if doc.brief && !verbose {
            let mut c = checks_section(doc);
            c.rows.retain(|r| r[1] != Verdict::Pass.as_str());
            c.notes.push(format!(
                "{} passed; the full report: -v, --output FILE or --report",
                crate::report::plural(
                    doc.checks
                        .iter()
                        .filter(|c| c.verdict == Verdict::Pass)
                        .count() as u64,
                    "check"
                )
            ));
            if c.rows.is_empty() {
                c.header.clear();
            }
            sections.push(c);
        } else if doc.compact && !verbose {
            sections.extend(super::compact::sections(doc.checks));
        } else {
            sections.extend(doc.sections.iter().cloned());
            sections.push(checks_section(doc));
        }
        let mut out = self.title(&format!("redlab {}: {}", doc.command, doc.verdict.as_str()));
        for s in &sections {
            out.push('\n');
            out.push_str(&self.section(s));
        }
        out.push_str(&self.extra(doc));
        let m = doc.manifest;
        out.push_str(&self.footer(&format!(
            "redlab {} on {}, started {}, took {}, run {}: {}",
            m.redlab_version,
            m.host,
            m.started_at,
            crate::report::took(m.duration_ms),
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
            "server",
            "maxmemory",
            "policy",
            "persistence",
        ],
    );
    for n in nodes {
        let role = match (&n.role, &n.error) {
            (Some(r), _) => crate::report::role_word(r).to_string(),
            (None, Some(_)) => "unreachable".into(),
            _ => "-".into(),
        };
        s.row(vec![
            n.name.clone(),
            n.address.clone(),
            role,
            n.server
                .clone()
                .unwrap_or_else(|| super::opt(&n.redis_version)),
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
