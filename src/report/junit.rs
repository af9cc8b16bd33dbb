//! JUnit XML (quick-junit): one testcase per check, so CI systems show them
//! natively; a skipped check is `<skipped/>` with its reason. The run
//! manifest and each node's facts go into the suite's properties.

use std::time::Duration;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Check, Document, Exporter, NodeInfo, Verdict};

pub struct JunitExporter;

impl Exporter for JunitExporter {
    fn export(&self, doc: &Document<'_>) -> Result<String> {
        let m = doc.manifest;
        let time = Duration::from_secs_f64(m.duration_ms.max(0.0) / 1000.0);
        let started = chrono::DateTime::parse_from_rfc3339(&m.started_at).ok();
        let mut suite = TestSuite::new(format!("redlab {}", doc.command));
        suite.set_time(time);
        if let Some(t) = started {
            suite.set_timestamp(t);
        }
        suite
            .extra
            .insert("hostname".into(), m.host.as_str().into());
        let mut props = vec![
            Property::new("redlab_version", m.redlab_version.as_str()),
            Property::new("run_id", m.run_id.as_str()),
            Property::new("started_at", m.started_at.as_str()),
            Property::new("args", m.args.join(" ")),
        ];
        props.extend(
            doc.nodes
                .iter()
                .map(|n| Property::new(format!("node.{}", n.name), node_summary(n))),
        );
        suite.add_properties(props);
        suite.add_test_cases(doc.checks.iter().map(|c| test_case(doc.command, c)));
        let mut report = quick_junit::Report::new("redlab");
        report.set_time(time);
        report.add_test_suite(suite);
        report.to_string().context("writing the JUnit report")
    }
}

fn test_case(suite: &str, c: &Check) -> TestCase {
    let status = match c.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Warn => TestCaseStatus::success(),
        Verdict::Skip => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(c.reason.as_str());
            s
        }
        Verdict::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(c.reason.as_str())
                .set_type("fail")
                .set_description(c.reason.as_str());
            s
        }
    };
    let mut t = TestCase::new(c.name.as_str(), status);
    t.set_classname(format!("redlab.{suite}"));
    match c.verdict {
        Verdict::Pass => {
            t.set_system_out(c.reason.as_str());
        }
        Verdict::Warn => {
            t.set_system_out(format!("WARN: {}", c.reason));
        }
        _ => {}
    }
    t
}

/// `127.0.0.1:6379 master redis 7.0.15, persistence rdb, maxmemory 268435456 allkeys-lru`
fn node_summary(n: &NodeInfo) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match &n.error {
        Some(e) => format!("{} unreachable: {e}", n.address),
        None => format!(
            "{} {} {}, persistence {}, maxmemory {} {}",
            n.address,
            o(&n.role),
            n.server
                .clone()
                .unwrap_or_else(|| format!("redis {}", o(&n.redis_version))),
            o(&n.persistence),
            n.maxmemory_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            o(&n.maxmemory_policy)
        ),
    }
}
