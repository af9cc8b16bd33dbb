//! JUnit XML: one testcase per check, so CI systems show them natively.
//! The run manifest goes into the suite's properties.

use super::{Check, Manifest, Verdict};

pub fn render(suite: &str, checks: &[Check], m: &Manifest) -> String {
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
    for (k, v) in [
        ("redlab_version", m.redlab_version.clone()),
        ("run_id", m.run_id.clone()),
        ("started_at", m.started_at.clone()),
        ("args", m.args.join(" ")),
    ] {
        out.push_str(&format!(
            "      <property name=\"{k}\" value=\"{}\"/>\n",
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
