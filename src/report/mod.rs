//! Reports are data: serde structs with units in their field names. Renderers
//! turn them into a terminal table, markdown, JSON or JUnit; subcommands never
//! format output themselves.

pub mod color;
mod compact;
mod copyable;
pub mod figure;
mod html;
mod json;
mod junit;
mod markdown;
mod markup;
mod output;
pub mod plot;
pub mod safe;
mod table;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use figure::Figure;
pub use safe::shorten;

use figure::Palette;

/// The formats a report renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Junit,
    /// One self-contained page with the figures.
    Html,
}

/// One format's renderer (hyperfine's `Exporter`): every format gets the same
/// document and returns the whole text.
pub trait Exporter {
    fn export(&self, doc: &Document<'_>) -> Result<String>;
}

/// The renderer of a format.
pub fn exporter(format: Format) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(table::TableExporter),
        Format::Markdown => Box::new(markdown::MarkdownExporter),
        Format::Json => Box::new(json::JsonExporter),
        Format::Junit => Box::new(junit::JunitExporter),
        Format::Html => Box::new(html::HtmlExporter),
    }
}

/// A report as the exporters see it: the common parts, its details turned
/// into tables and figures, and its JSON on demand.
pub struct Document<'a> {
    pub command: &'a str,
    pub verdict: Verdict,
    pub manifest: &'a Manifest,
    pub nodes: &'a [NodeInfo],
    pub checks: &'a [Check],
    /// The subcommand's own tables, in order.
    pub sections: Vec<Section>,
    /// Its figures worth drawing, and one colour per node across them.
    pub figures: Vec<Figure>,
    pub palette: Palette,
    /// Markdown only: links to the figures written beside the file (None on
    /// stdout, where a note says how to get them).
    pub figure_links: Option<String>,
    /// Width, colour and how much to show.
    pub view: View,
    /// Whether the subcommand's report is brief on a terminal (`Details::brief`).
    pub brief: bool,
    /// Whether it is one line per check there (`Details::compact`).
    pub compact: bool,
    /// The whole report as pretty JSON.
    pub json: &'a dyn Fn() -> Result<String>,
}

/// Bumped whenever a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// Ordered from least to most severe: a run's verdict is its worst check's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Not performed (nothing to check, a node unreachable, --skip): no
    /// evidence either way. A run of nothing but skipped checks proved nothing.
    #[serde(rename = "skipped")]
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Skip => "SKIPPED",
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }

    /// The worst of them; with none at all (or only skipped ones) nothing was
    /// checked, which is `Skip`, never `Pass`.
    pub fn worst(items: impl IntoIterator<Item = Verdict>) -> Verdict {
        items.into_iter().max().unwrap_or(Verdict::Skip)
    }
}

/// The verdict that fails a run (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Fail,
    /// Warnings are fatal too.
    Warn,
}

/// One named check with its outcome and a one-line reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Stable name, e.g. `replica1.link` or `parity.db0`.
    pub name: String,
    /// pass, warn or fail.
    pub verdict: Verdict,
    /// What was seen, in one line.
    pub reason: String,
}

impl Check {
    pub fn new(name: impl Into<String>, verdict: Verdict, reason: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict,
            reason: reason.into(),
        }
    }
    pub fn pass(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Pass, reason)
    }
    pub fn fail(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Fail, reason)
    }
    pub fn warn(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Warn, reason)
    }
    /// Not performed: the reason says why.
    pub fn skip(name: impl Into<String>, reason: impl Into<String>) -> Check {
        Check::new(name, Verdict::Skip, reason)
    }
}

/// Facts about one node, as every report shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `master`, `replica1`, ...
    pub name: String,
    /// host:port, never with credentials.
    pub address: String,
    /// The role it was given: master or replica.
    pub expected_role: crate::topology::Role,
    /// The role it reports (`master`, `slave`), or null when unreachable.
    pub role: Option<String>,
    /// `redis_version` from INFO (Valkey's is a compatibility number, 7.2.4).
    pub redis_version: Option<String>,
    /// What the server is: `redis 7.0.15`, `valkey 8.1.8` (INFO `server_name`
    /// and its own version); null when unreachable.
    #[serde(default)]
    pub server: Option<String>,
    /// maxmemory in bytes (0 = no limit).
    pub maxmemory_bytes: Option<u64>,
    /// maxmemory-policy.
    pub maxmemory_policy: Option<String>,
    /// `rdb` (save points set), `aof`, `rdb+aof` or `none`; null where unknown.
    pub persistence: Option<String>,
    /// The connection error, when it could not be reached.
    pub error: Option<String>,
}

/// What the run was: reproducible context for every report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// redlab's version.
    pub redlab_version: String,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the whole run in milliseconds.
    pub duration_ms: f64,
    /// Host redlab ran on.
    pub host: String,
    /// The command line, with secrets replaced by ***.
    pub args: Vec<String>,
    /// Unique id of this run; redlab's keys are `redlab:<run_id>:...`.
    pub run_id: String,
    /// `--timings`: each start-up and shutdown step so far, with its duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<crate::timings::Step>,
}

/// A table in the human renderings.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
    /// Columns whose long values (cached JSON, say) a terminal table cuts
    /// with an ellipsis instead of wrapping them into the table.
    pub truncate: Vec<usize>,
}

impl Section {
    pub fn new(title: &str, header: &[&str]) -> Section {
        Section {
            title: title.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            ..Section::default()
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// The part of a report that is one subcommand's own.
pub trait Details: Serialize {
    /// The tables a human sees, in order.
    fn sections(&self) -> Vec<Section>;

    /// The plots of its series (HTML inline, markdown as SVG files beside it).
    fn figures(&self) -> Vec<Figure> {
        Vec::new()
    }

    /// Why redlab refused to go on although it reported (exit 2), if it did.
    fn refused(&self) -> Option<String> {
        None
    }

    /// Stopped by a signal with what it had found (a partial report): exit 130.
    fn interrupted(&self) -> bool {
        false
    }

    /// On a terminal, only the verdict and what did not pass (the demo has
    /// just told its story on stderr): the full report with -v or in a file.
    fn brief(&self) -> bool {
        false
    }

    /// On a terminal (and a pipe), one line per check, what failed first:
    /// a gate whose passing run must fit one screen (`check`). Its tables
    /// and findings with -v or in a file.
    fn compact(&self) -> bool {
        false
    }

    /// `--fail-on warn`, for details that carry verdicts of their own
    /// (check's steps): make their warnings failures, saying so. True when
    /// they did; the run's emit is the one caller (`Report::warnings_fatal`).
    fn warnings_fatal(&mut self) -> bool {
        false
    }
}

/// How a report is shown: the terminal's width and colours, and how much.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Fit tables to this many columns; None: as wide as they need (a pipe,
    /// a file).
    pub width: Option<usize>,
    /// ANSI colours: a terminal, not NO_COLOR, or --color always.
    pub color: bool,
    /// Everything: the topology table, a brief report in full (-v).
    pub verbose: bool,
}

impl View {
    /// A file or a machine reader: everything, no width, no colour.
    pub fn file() -> View {
        View {
            width: None,
            color: false,
            verbose: true,
        }
    }
}

/// A finished report of any subcommand, as the run handles it at the end:
/// checks added (cleanup, evictions), --fail-on applied, rendered.
pub trait AnyReport {
    fn command(&self) -> &str;
    fn verdict(&self) -> Verdict;
    fn add_checks(&mut self, checks: Vec<Check>);
    fn warnings_fatal(&mut self);
    fn render(&self, format: Format) -> Result<String>;
    fn render_view(&self, format: Format, view: View) -> Result<String>;
    fn write_to(&self, path: &Path, format: Format) -> Result<Vec<PathBuf>>;
    fn refused(&self) -> Option<String>;
    fn interrupted(&self) -> bool;
}

impl<D: Details> AnyReport for Report<D> {
    fn command(&self) -> &str {
        &self.command
    }
    fn verdict(&self) -> Verdict {
        self.verdict
    }
    fn add_checks(&mut self, checks: Vec<Check>) {
        self.checks.extend(checks);
        self.verdict = Verdict::worst(self.checks.iter().map(|c| c.verdict));
    }
    fn warnings_fatal(&mut self) {
        Report::warnings_fatal(self)
    }
    fn render(&self, format: Format) -> Result<String> {
        Report::render(self, format)
    }
    fn render_view(&self, format: Format, view: View) -> Result<String> {
        Report::render_view(self, format, view)
    }
    fn write_to(&self, path: &Path, format: Format) -> Result<Vec<PathBuf>> {
        Report::write_to(self, path, format)
    }
    fn refused(&self) -> Option<String> {
        self.details.refused()
    }
    fn interrupted(&self) -> bool {
        self.details.interrupted()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report<D: Details> {
    /// Version of this JSON layout.
    pub schema_version: u32,
    /// The subcommand, e.g. `replicate-check`.
    pub command: String,
    /// Version, time, host, arguments.
    pub manifest: Manifest,
    /// The topology as found.
    pub nodes: Vec<NodeInfo>,
    /// Every check with its verdict and reason.
    pub checks: Vec<Check>,
    /// The worst verdict of all checks.
    pub verdict: Verdict,
    /// The subcommand's own measurements.
    pub details: D,
}

impl<D: Details> Report<D> {
    pub fn new(
        command: &str,
        manifest: Manifest,
        nodes: Vec<NodeInfo>,
        checks: Vec<Check>,
        details: D,
    ) -> Self {
        let verdict = Verdict::worst(checks.iter().map(|c| c.verdict));
        Report {
            schema_version: SCHEMA_VERSION,
            command: command.to_string(),
            manifest,
            nodes,
            checks,
            verdict,
            details,
        }
    }

    /// `--fail-on warn`: every warning becomes a failure, saying so, in the
    /// checks and in the details that carry verdicts of their own.
    pub fn warnings_fatal(&mut self) {
        self.details.warnings_fatal();
        for c in &mut self.checks {
            if c.verdict == Verdict::Warn {
                c.verdict = Verdict::Fail;
                c.reason = format!("warning made fatal by --fail-on warn: {}", c.reason);
            }
        }
        self.verdict = Verdict::worst(self.checks.iter().map(|c| c.verdict));
    }

    pub fn render(&self, format: Format) -> Result<String> {
        self.export(format, None, View::file())
    }

    /// As `render`, for a terminal (or a pipe) as `view` describes it.
    pub fn render_view(&self, format: Format, view: View) -> Result<String> {
        self.export(format, None, view)
    }

    /// Render through the format's exporter; `figure_links` as in `Document`.
    pub(crate) fn export(
        &self,
        format: Format,
        figure_links: Option<String>,
        view: View,
    ) -> Result<String> {
        let json = || -> Result<String> {
            let mut s = serde_json::to_string_pretty(self).context("encoding the JSON report")?;
            s.push('\n');
            Ok(s)
        };
        let (figures, palette) = self.figures();
        // JSON keeps every name whole; the formats people read get them
        // shortened and with control characters shown (`safe`).
        let human = format != Format::Json;
        let mut sections = self.details.sections();
        let (checks, nodes, manifest);
        let (checks, nodes, manifest) = if human {
            safe_sections(&mut sections);
            checks = safe_checks(&self.checks);
            nodes = safe_nodes(&self.nodes);
            manifest = safe_manifest(&self.manifest);
            (&checks[..], &nodes[..], &manifest)
        } else {
            (&self.checks[..], &self.nodes[..], &self.manifest)
        };
        let doc = Document {
            command: &self.command,
            verdict: self.verdict,
            manifest,
            nodes,
            checks,
            sections,
            figures,
            palette,
            figure_links,
            view,
            brief: self.details.brief(),
            compact: self.details.compact(),
            json: &json,
        };
        exporter(format).export(&doc)
    }
}

fn safe_sections(sections: &mut [Section]) {
    for s in sections {
        s.title = safe::for_humans(&s.title);
        for r in &mut s.rows {
            for c in r.iter_mut() {
                *c = safe::for_humans(c);
            }
        }
        for n in &mut s.notes {
            *n = safe::for_humans(n);
        }
    }
}

fn safe_checks(checks: &[Check]) -> Vec<Check> {
    checks
        .iter()
        .map(|c| Check {
            name: safe::for_humans(&c.name),
            verdict: c.verdict,
            reason: safe::for_humans(&c.reason),
        })
        .collect()
}

fn safe_nodes(nodes: &[NodeInfo]) -> Vec<NodeInfo> {
    let f = |o: &Option<String>| o.as_deref().map(safe::for_humans);
    nodes
        .iter()
        .map(|n| NodeInfo {
            name: safe::for_humans(&n.name),
            address: safe::for_humans(&n.address),
            expected_role: n.expected_role,
            role: f(&n.role),
            redis_version: f(&n.redis_version),
            server: f(&n.server),
            maxmemory_bytes: n.maxmemory_bytes,
            maxmemory_policy: f(&n.maxmemory_policy),
            persistence: f(&n.persistence),
            error: f(&n.error),
        })
        .collect()
}

fn safe_manifest(m: &Manifest) -> Manifest {
    Manifest {
        args: m.args.iter().map(|a| safe::for_humans(a)).collect(),
        host: safe::for_humans(&m.host),
        ..m.clone()
    }
}

/// Sections alone, without a report around them (the live views of `stats
/// --watch` and `demo`). JSON and JUnit have no such view: they get the table.
pub fn render_sections(sections: &[Section], format: Format, view: View) -> String {
    let mut sections = sections.to_vec();
    safe_sections(&mut sections);
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&match format {
            Format::Markdown => markdown::section(s),
            _ => table::section(s, &view),
        });
    }
    out
}

/// The format a file gets: the one asked for, else its extension's.
pub fn format_for_path(path: &Path, asked: Option<Format>) -> Format {
    asked.unwrap_or_else(|| format_of_path(path).unwrap_or(Format::Json))
}

/// The format a file's extension names; an unknown one is an error (a
/// report must never land in a format nobody asked for).
pub fn format_of_path(path: &Path) -> Result<Format> {
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("md") | Some("markdown") => Format::Markdown,
        Some("html") | Some("htm") => Format::Html,
        Some("xml") => Format::Junit,
        Some("txt") => Format::Table,
        Some("json") => Format::Json,
        _ => anyhow::bail!(
            "{}: its extension does not say a format: end it in .json, .md, .html, .xml or .txt, or give --format",
            path.display()
        ),
    })
}

pub fn extension(format: Format) -> &'static str {
    match format {
        Format::Table => "txt",
        Format::Markdown => "md",
        Format::Json => "json",
        Format::Junit => "xml",
        Format::Html => "html",
    }
}

/// `reports/<command>-<UTC timestamp>.<ext>`
pub fn default_path(command: &str, format: Format) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("reports").join(format!("{command}-{stamp}.{}", extension(format)))
}

pub use crate::text::{human_bytes, human_bytes_or_zero, opt, plural, role_word, took};

pub fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let what = || format!("writing the report to {}", path.display());
    // A regular file (or a new one) is written at once; a FIFO or a device
    // may block in open or write for ever (no reader): that is done on a
    // thread of its own, and given up on a signal or after the bound.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if !special {
        return std::fs::write(path, text).with_context(what);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (p, t) = (path.to_path_buf(), text.to_string());
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::write(&p, t));
    });
    let signals = crate::interrupt::received();
    // After a signal (the interrupted run's report) a reader has a second.
    let bound = match signals {
        0 => write_bound(),
        _ => write_bound().min(std::time::Duration::from_secs(1)),
    };
    let deadline = std::time::Instant::now() + bound;
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(r) => return r.with_context(what),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => bail!("{}: failed", what()),
            Err(_) if crate::interrupt::received() != signals => {
                return Err(anyhow::Error::new(WriteInterrupted).context(what()))
            }
            Err(_) if std::time::Instant::now() >= deadline => bail!(
                "{}: not done within {} (a FIFO with no reader, or a device that does not take it)",
                what(),
                humantime::format_duration(bound)
            ),
            Err(_) => {}
        }
    }
}

/// A report write given up because a signal arrived: the run was interrupted.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by a signal before anybody read it")]
pub struct WriteInterrupted;

static WRITE_BOUND_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(5000);

/// How long writing a report to a FIFO or device may block: the run's --timeout.
pub fn set_write_bound(d: std::time::Duration) {
    WRITE_BOUND_MS.store(
        d.as_millis().max(1) as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
}

fn write_bound() -> std::time::Duration {
    std::time::Duration::from_millis(WRITE_BOUND_MS.load(std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample {
        /// A measured number.
        p99_us: f64,
    }

    impl Details for Sample {
        fn sections(&self) -> Vec<Section> {
            let mut s = Section::new("Latency", &["metric", "value"]);
            s.row(vec!["p99 | tail".into(), format!("{}", self.p99_us)]);
            s.notes.push("a note".into());
            vec![s]
        }
    }

    fn sample(verdict: Verdict) -> Report<Sample> {
        let manifest = Manifest {
            redlab_version: "0.1.0".into(),
            started_at: "2026-11-26T13:45:00Z".into(),
            duration_ms: 12.5,
            host: "ci".into(),
            args: vec!["redlab".into()],
            run_id: "abc".into(),
            timings: Vec::new(),
        };
        let node = NodeInfo {
            name: "master".into(),
            address: "127.0.0.1:6379".into(),
            expected_role: crate::topology::Role::Master,
            role: Some("master".into()),
            redis_version: Some("7.0.15".into()),
            server: Some("redis 7.0.15".into()),
            maxmemory_bytes: Some(256 << 20),
            maxmemory_policy: Some("allkeys-lru".into()),
            persistence: Some("rdb".into()),
            error: None,
        };
        let checks = vec![
            Check::pass("master", "ok"),
            Check::new("replica1.lag", verdict, "lag <3> & \"more\""),
        ];
        Report::new(
            "keycount",
            manifest,
            vec![node],
            checks,
            Sample { p99_us: 812.5 },
        )
    }

    #[test]
    fn verdict_is_the_worst_check() {
        assert_eq!(sample(Verdict::Warn).verdict, Verdict::Warn);
        assert_eq!(sample(Verdict::Fail).verdict, Verdict::Fail);
    }

    #[test]
    fn json_is_the_struct_itself() {
        let v: serde_json::Value =
            serde_json::from_str(&sample(Verdict::Fail).render(Format::Json).unwrap()).unwrap();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["details"]["p99_us"], 812.5);
        assert_eq!(v["nodes"][0]["maxmemory_bytes"], 268435456);
        assert_eq!(v["checks"][1]["name"], "replica1.lag");
    }

    #[test]
    fn table_shows_every_section_and_the_verdict() {
        let t = sample(Verdict::Fail).render(Format::Table).unwrap();
        assert!(t.starts_with("redlab keycount: FAIL\n"), "{t}");
        for s in [
            "Topology",
            "Latency",
            "Checks",
            "256.0 MiB",
            "812.5",
            "a note",
            "took 12.5 ms",
        ] {
            assert!(t.contains(s), "missing {s} in\n{t}");
        }
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let m = sample(Verdict::Pass).render(Format::Markdown).unwrap();
        assert!(m.starts_with("# redlab keycount: PASS\n"));
        assert!(
            m.contains(
                "## Latency\n\n| metric | value |\n| --- | --- |\n| p99 \\| tail | 812.5 |\n"
            ),
            "{m}"
        );
        assert!(m.contains("- a note"));
    }

    #[test]
    fn junit_has_a_testcase_per_check_and_escapes() {
        let x = sample(Verdict::Fail).render(Format::Junit).unwrap();
        assert!(x.starts_with("<?xml"));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert!(x.contains("failures=\"1\""));
        assert!(
            x.contains("<failure message=\"lag &lt;3&gt; &amp; &quot;more&quot;\""),
            "{x}"
        );
    }

    #[test]
    fn file_format_follows_the_extension() {
        assert_eq!(format_for_path(Path::new("r.md"), None), Format::Markdown);
        assert_eq!(format_for_path(Path::new("r.xml"), None), Format::Junit);
        assert_eq!(format_for_path(Path::new("r.json"), None), Format::Json);
        assert_eq!(
            format_for_path(Path::new("r.md"), Some(Format::Json)),
            Format::Json
        );
        let p = default_path("keycount", Format::Json);
        assert!(p.starts_with("reports") && p.to_str().unwrap().ends_with(".json"));
    }
}
