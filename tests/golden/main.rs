//! Golden tests of the HTML and SVG renderers: fabricated reports (no Redis)
//! rendered, parsed as XML, and checked for what a reader must see: titles,
//! labelled axes, one series per node in its colour, verdict colours, and no
//! way for the page to reach the network.

mod fabricate;
mod text;

use std::collections::BTreeSet;

use redlab::report::figure::{Band, Figure, Kind, Mark, Palette, Rule, Series};
use redlab::report::Format;
use redlab::report::{plot, Details, Report, Section};
use roxmltree::{Document, Node, ParsingOptions};

fn parse(text: &str) -> Document<'_> {
    let opts = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts)
        .unwrap_or_else(|e| panic!("not well-formed ({e}):\n{}", &text[..text.len().min(2000)]))
}

fn by_id<'a, 'i>(doc: &'a Document<'i>, id: &str) -> Option<Node<'a, 'i>> {
    doc.descendants().find(|n| n.attribute("id") == Some(id))
}

/// Every text drawn in an element (SVG labels, table cells).
fn texts(n: Node) -> Vec<String> {
    n.descendants()
        .filter(|d| d.has_tag_name("text"))
        .filter_map(|d| d.text())
        .map(|t| t.trim().to_string())
        .collect()
}

/// Stroke colours of the drawn lines (polylines), lower case.
fn line_colours(n: Node) -> BTreeSet<String> {
    n.descendants()
        .filter(|d| d.has_tag_name("polyline"))
        .filter_map(|d| d.attribute("stroke"))
        .map(str::to_ascii_lowercase)
        .collect()
}

fn figure_svg<'a, 'i>(doc: &'a Document<'i>, id: &str) -> Node<'a, 'i> {
    let fig = by_id(doc, &format!("fig-{id}")).unwrap_or_else(|| panic!("no figure {id}"));
    fig.descendants()
        .find(|d| d.has_tag_name("svg"))
        .unwrap_or_else(|| panic!("figure {id} has no svg"))
}

fn palette() -> Palette {
    let nodes = ["master", "replica1", "replica2", "replica3"];
    Palette::new(nodes, &[])
}

#[test]
fn perf_page_is_self_contained_and_titled_with_its_verdict() {
    let html = fabricate::perf().render(Format::Html).unwrap();
    let doc = parse(&html);
    let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
    assert_eq!(title.text(), Some("redlab perf: PASS"));
    let badge = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("verdict v-pass"))
        .expect("a PASS badge");
    assert_eq!(badge.text(), Some("PASS"));
    // Nothing that could reach the network or run: no URL, script, link or image source.
    for bad in [
        "http:", "https:", "<script", "<link", "src=", "url(", "@import", "<iframe",
    ] {
        assert!(!html.contains(bad), "the page contains {bad}");
    }
    for section in ["run", "tables", "checks", "figures"] {
        assert!(by_id(&doc, section).is_some(), "no section {section}");
    }
    let cells: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("td"))
        .filter_map(|n| n.text())
        .collect();
    for want in ["replica3", "985000", "allkeys-lru"] {
        assert!(
            cells.iter().any(|c| c.contains(want)),
            "no cell with {want}"
        );
    }
}

#[test]
fn perf_has_its_four_figures_with_labelled_axes() {
    let doc_text = fabricate::perf().render(Format::Html).unwrap();
    let doc = parse(&doc_text);
    let spectrum = texts(figure_svg(&doc, "latency-spectrum"));
    for want in [
        "Latency by percentile",
        "percentile (log scale of 1/(1-p))",
        "latency (ms)",
        "0%",
        "90%",
        "99%",
        "99.9%",
        "99.99%",
        "99.999%",
    ] {
        assert!(
            spectrum.iter().any(|t| t == want),
            "spectrum lacks {want}: {spectrum:?}"
        );
    }
    let throughput = figure_svg(&doc, "throughput");
    let t = texts(throughput);
    assert!(t.contains(&"throughput (ops/s)".to_string()), "{t:?}");
    assert!(t.contains(&"time since the first request (s)".to_string()));
    // 30 slices of 100 ms: one bar each (plus the legend's swatch).
    let bars = throughput
        .descendants()
        .filter(|d| {
            d.has_tag_name("rect")
                && d.attribute("fill")
                    .is_some_and(|f| f.eq_ignore_ascii_case("#0072b2"))
        })
        .count();
    assert_eq!(bars, 31, "bars in the throughput figure");
    let over_time = texts(figure_svg(&doc, "latency-over-time"));
    for want in ["p50", "p99", "latency (ms)"] {
        assert!(
            over_time.contains(&want.to_string()),
            "{want}: {over_time:?}"
        );
    }
}

#[test]
fn replica_lag_draws_one_line_per_replica_in_its_colour() {
    let doc_text = fabricate::perf().render(Format::Html).unwrap();
    let doc = parse(&doc_text);
    let svg = figure_svg(&doc, "replica-lag");
    let pal = palette();
    let want: BTreeSet<String> = fabricate::REPLICAS.iter().map(|r| pal.hex(r)).collect();
    let drawn = line_colours(svg);
    for c in &want {
        assert!(drawn.contains(c), "no line in {c}: {drawn:?}");
    }
    assert!(
        !drawn.contains(&pal.hex("master")),
        "the master has no lag line"
    );
    let t = texts(svg);
    for want in [
        "replica1",
        "replica2",
        "replica3",
        "offset lag (KiB)",
        "load ended",
    ] {
        assert!(t.contains(&want.to_string()), "{want}: {t:?}");
    }
    // The same node has the same colour in the topology table.
    assert!(doc_text.contains(&format!(
        "background:{}\"></span>replica2",
        pal.hex("replica2")
    )));
}

#[test]
fn check_page_colours_verdicts_and_titles_each_steps_figures() {
    let html = fabricate::check_report().render(Format::Html).unwrap();
    let doc = parse(&html);
    let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
    assert_eq!(title.text(), Some("redlab check: FAIL"));
    let class_of = |text: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("td") && n.text() == Some(text))
            .filter_map(|n| n.attribute("class"))
            .next()
            .unwrap_or_else(|| panic!("no cell {text}"))
            .to_string()
    };
    assert_eq!(class_of("PASS"), "v v-pass");
    assert_eq!(class_of("WARN"), "v v-warn");
    assert_eq!(class_of("FAIL"), "v v-fail");
    assert!(
        html.contains("td.v-pass { background: #dafbe1"),
        "PASS is green"
    );
    assert!(
        html.contains("td.v-fail { background: #ffebe9"),
        "FAIL is red"
    );
    for id in [
        "replication-visible-latency",
        "expiry-ttl",
        "expiry-expiry-timeline",
        "throughput-latency-spectrum",
        "throughput-replica-lag",
    ] {
        let t = texts(figure_svg(&doc, id));
        let step = id.split('-').next().unwrap();
        assert!(
            t.iter().any(|s| s.ends_with(&format!("({step} check)"))),
            "{id}: {t:?}"
        );
    }
    let timeline = texts(figure_svg(&doc, "expiry-expiry-timeline"));
    for want in [
        "master",
        "replica3",
        "expired",
        "DEL arrived",
        "expected expiry",
    ] {
        assert!(timeline.contains(&want.to_string()), "{want}: {timeline:?}");
    }
    let cdf = texts(figure_svg(&doc, "replication-visible-latency"));
    assert!(cdf.contains(&"probes visible (%)".to_string()));
    assert!(cdf.contains(&"100".to_string()) && !cdf.contains(&"120".to_string()));
}

/// A details type of the future: a verdict this redlab has no variant for.
#[derive(serde::Serialize)]
struct Future;

impl Details for Future {
    fn sections(&self) -> Vec<Section> {
        let mut s = Section::new("Steps", &["step", "verdict"]);
        s.row(vec!["lint".into(), "SKIPPED".into()]);
        vec![s]
    }
}

#[test]
fn an_unknown_verdict_is_grey_and_no_figures_is_said() {
    let v = fabricate::perf_json();
    let mut r: Report<Future> = Report::new(
        "lint",
        serde_json::from_value(v["manifest"].clone()).unwrap(),
        serde_json::from_value(v["nodes"].clone()).unwrap(),
        Vec::new(),
        Future,
    );
    r.checks.clear();
    let html = r.render(Format::Html).unwrap();
    let doc = parse(&html);
    let cell = doc
        .descendants()
        .find(|n| n.has_tag_name("td") && n.text() == Some("SKIPPED"))
        .unwrap();
    assert_eq!(cell.attribute("class"), Some("v v-skip"));
    assert!(html.contains("no measured series to plot"));
}

#[test]
fn markdown_file_links_svg_files_written_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.md");
    let written = fabricate::perf().write_to(&path, Format::Markdown).unwrap();
    assert_eq!(written.len(), 5, "{written:?}");
    let md = std::fs::read_to_string(&path).unwrap();
    assert!(md.starts_with("# redlab perf: PASS\n"));
    for id in [
        "latency-spectrum",
        "throughput",
        "latency-over-time",
        "replica-lag",
    ] {
        let name = format!("run-{id}.svg");
        assert!(
            md.contains(&format!("]({name})")),
            "no link to {name}:\n{md}"
        );
        let svg = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        assert!(root.attribute("viewBox").is_some());
    }
    // On stdout there is nowhere to put them: the markdown says how to get them.
    let out = fabricate::perf().render(Format::Markdown).unwrap();
    assert!(out.contains("written as SVG files beside the report with `--output NAME.md`"));
    assert!(!out.contains(".svg)"));
}

#[test]
fn json_keeps_the_series_and_reads_back_to_the_same_page() {
    let r = fabricate::perf();
    let json = r.render(Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lag = &v["details"]["replica_lag"]["replicas"][1];
    assert_eq!(lag["name"], "replica2");
    assert_eq!(lag["samples"][5]["t_ms"], 500.0);
    assert!(v["details"]["latency_spectrum"].as_array().unwrap().len() > 50);
    assert_eq!(
        v["details"]["per_100ms_latency"].as_array().unwrap().len(),
        30
    );
    let again: Report<redlab::PerfDetails> = serde_json::from_value(v).unwrap();
    assert_eq!(
        again.render(Format::Html).unwrap(),
        r.render(Format::Html).unwrap()
    );
}

#[test]
fn a_drill_timeline_shades_the_unavailability_window() {
    let mut f = Figure::new(
        "drill",
        "Failover drill",
        Kind::Timeline,
        "time since the drill started (s)",
        "",
    );
    let mut master = Series::new("master", Vec::new());
    master.marks.push(Mark {
        x: 1.0,
        label: "killed".into(),
    });
    let mut r1 = Series::new("replica1", Vec::new());
    r1.marks.push(Mark {
        x: 4.2,
        label: "promoted".into(),
    });
    r1.spans.push(Band {
        from: 1.0,
        to: 4.2,
        label: "no master".into(),
    });
    f.series = vec![master, r1];
    f.shaded.push(Band {
        from: 1.0,
        to: 4.6,
        label: "writes refused".into(),
    });
    f.rules.push(Rule {
        x: 4.6,
        label: "first write accepted".into(),
    });
    let svg = plot::svg(&f, &palette()).unwrap();
    let doc = parse(&svg);
    let t = texts(doc.root_element());
    for want in [
        "Failover drill",
        "master",
        "replica1",
        "killed",
        "promoted",
        "writes refused",
        "first write accepted",
        "time since the drill started (s)",
    ] {
        assert!(t.contains(&want.to_string()), "{want}: {t:?}");
    }
    // The shaded window is a translucent rectangle across the plot.
    assert!(doc.descendants().any(|n| n.has_tag_name("rect")
        && n.attribute("opacity")
            .and_then(|o| o.parse::<f64>().ok())
            .is_some_and(|o| o > 0.0 && o < 0.5)));
}

#[test]
fn a_drill_report_shows_its_costs_timeline_and_shaded_outage() {
    let r: Report<redlab::DrillDetails> = fabricate::typed(fabricate::drill_json());
    let table = r.render(Format::Table).unwrap();
    for want in [
        "redlab drill: PASS",
        "kill-master on master (127.0.0.1:6379)",
        "writes unavailable",
        "2.26 s (bound 6.00 s)",
        "Writes by acknowledgement",
        "SIGKILL master (pid 100, port 6379)",
        "2 Sentinels",
        "+switch-master",
    ] {
        assert!(table.contains(want), "{want} missing in\n{table}");
    }
    let html = r.render(Format::Html).unwrap();
    let doc = parse(&html);
    let timeline = figure_svg(&doc, "drill-timeline");
    let t = texts(timeline);
    for want in [
        "writes",
        "Sentinels",
        "replica1",
        "+convert-to-slave",
        "-> replica1",
    ] {
        assert!(t.iter().any(|s| s == want), "{want}: {t:?}");
    }
    assert!(
        t.iter().any(|s| s.starts_with("writes unavailable 2.26 s")),
        "{t:?}"
    );
    assert!(by_id(&doc, "fig-drill-writes").is_some());
    // Saved and rendered again by `redlab report`, it is the same page.
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), "drill.json", &fabricate::drill_json());
    let (code, again, err) = redlab(&["report", "drill.json", "--format", "html"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, html);
}

#[test]
fn figure_text_is_escaped() {
    let mut f = Figure::new("x", "a <b> & \"c\"", Kind::Line, "x & y (s)", "<y>");
    f.series
        .push(Series::new("master", vec![(0.0, 1.0), (1.0, 2.0)]).label("p<50>"));
    let svg = plot::svg(&f, &palette()).unwrap();
    let doc = parse(&svg);
    let t = texts(doc.root_element());
    assert!(t.contains(&"a <b> & \"c\"".to_string()), "{t:?}");
    assert!(t.contains(&"p<50>".to_string()));
}

/// The built binary on `args`; (exit code, stdout, stderr).
fn redlab(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(args)
        .current_dir(dir)
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running redlab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn saved(dir: &std::path::Path, name: &str, v: &serde_json::Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn redlab_report_renders_a_saved_report_as_html_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), "perf.json", &fabricate::perf_json());
    let (code, html, err) = redlab(&["report", "perf.json", "--format", "html"], dir.path());
    assert_eq!(code, 0, "{err}");
    let doc = parse(&html);
    assert!(by_id(&doc, "fig-replica-lag").is_some());
    assert_eq!(html, fabricate::perf().render(Format::Html).unwrap());

    let (code, table, err) = redlab(
        &["report", "perf.json", "--output", "out/perf.md"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    // --output sends the report to its file: stdout stays empty.
    assert!(table.is_empty(), "{table}");
    for f in [
        "perf.md",
        "perf-latency-spectrum.svg",
        "perf-replica-lag.svg",
    ] {
        assert!(dir.path().join("out").join(f).is_file(), "no {f}");
    }
    // A saved failure renders and exits as the run did (1), also when the
    // file's top-level verdict says otherwise: its checks decide.
    let mut failed = fabricate::perf_json();
    failed["checks"][0]["verdict"] = "fail".into();
    for stated in ["fail", "pass"] {
        failed["verdict"] = stated.into();
        saved(dir.path(), "failed.json", &failed);
        let (code, out, err) = redlab(&["report", "failed.json"], dir.path());
        assert_eq!(code, 1, "{err}");
        assert!(out.starts_with("redlab perf: FAIL\n"), "{out}");
        assert_eq!(
            err.contains("its checks make it FAIL, not the PASS it states"),
            stated == "pass",
            "{err}"
        );
    }
}

#[test]
fn redlab_report_compare_overlays_two_spectra_with_a_table_of_deltas() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), "new.json", &fabricate::perf_json());
    let mut old = fabricate::perf_json();
    old["details"] = fabricate::perf_details(0.7);
    saved(dir.path(), "old.json", &old);
    let (code, html, err) = redlab(
        &[
            "report",
            "new.json",
            "--compare",
            "old.json",
            "--format",
            "html",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let doc = parse(&html);
    let svg = figure_svg(&doc, "latency-spectrum-compared");
    let t = texts(svg);
    assert!(t.contains(&"this run (new.json)".to_string()), "{t:?}");
    assert!(t.contains(&"other run (old.json)".to_string()), "{t:?}");
    // This run in the master's colour, the other in the first colour no node has.
    let mut f = Figure::new("x", "x", Kind::Line, "x", "y");
    f.series.push(Series::new("other run", vec![]));
    let pal = Palette::new(["master", "replica1", "replica2", "replica3"], &[f]);
    let drawn = line_colours(svg);
    assert!(
        drawn.contains(&pal.hex("master")) && drawn.contains(&pal.hex("other run")),
        "{drawn:?}"
    );
    assert!(
        by_id(&doc, "fig-latency-spectrum").is_none(),
        "the single spectrum is replaced"
    );
    let h3: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("h3"))
        .filter_map(|n| n.text())
        .collect();
    assert!(h3.contains(&"Compared with old.json"), "{h3:?}");
    // Latency 1/0.7 of the other run's: p99 is worse by ~43 %.
    let row: String = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .map(|tr| {
            tr.children()
                .filter_map(|c| c.text())
                .collect::<Vec<_>>()
                .join("|")
        })
        .find(|r| r.starts_with("p99|"))
        .expect("a p99 row");
    assert!(row.contains("+42.9 % (worse)"), "{row}");

    saved(dir.path(), "check.json", &fabricate::check_json());
    let (code, _, err) = redlab(
        &["report", "new.json", "--compare", "check.json"],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("check.json is a check report"), "{err}");
}

#[test]
fn redlab_report_falls_back_on_details_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = fabricate::perf_json();
    v["details"] = serde_json::json!({"interrupted": true});
    saved(dir.path(), "stopped.json", &v);
    let (code, out, err) = redlab(&["report", "stopped.json"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("showing them as saved"), "{err}");
    assert!(
        out.contains("interrupted") && out.contains("perf.requests"),
        "{out}"
    );
    std::fs::write(dir.path().join("x.json"), "[1, 2]").unwrap();
    let (code, _, err) = redlab(&["report", "x.json"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("not a redlab report"), "{err}");
}

#[test]
fn report_takes_a_file_name_that_says_its_format() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path(), "perf.json", &fabricate::perf_json());
    let (code, _, err) = redlab(
        &["report", "perf.json", "--report", "again.html"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(dir.path().join("again.html"))
        .unwrap()
        .contains("<svg"));
    let (code, _, err) = redlab(&["--report", "perf", "lab", "status"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("not a report file name"), "{err}");
}

/// One truth about catching up: the perf page's caption says what its
/// table says (each replica's own offset, polled every 2 ms), and the
/// master's view (its next acknowledgement, about a second later) as that.
#[test]
fn the_perf_caption_and_table_agree_on_the_catch_up() {
    let mut v = fabricate::perf_json();
    for (i, r) in v["details"]["replicas"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        r["catch_up_ms"] = serde_json::json!(8.5 + i as f64);
    }
    for r in v["details"]["replica_lag"]["replicas"]
        .as_array_mut()
        .unwrap()
    {
        r["catch_up_ms"] = serde_json::json!(996.0);
    }
    let report: Report<redlab::PerfDetails> = serde_json::from_value(v).unwrap();
    let html = report.render(Format::Html).unwrap();
    let doc = parse(&html);
    let caption: String = by_id(&doc, "fig-replica-lag")
        .expect("the lag figure")
        .descendants()
        .filter(|n| n.has_tag_name("figcaption"))
        .flat_map(|n| n.descendants().filter_map(|d| d.text()))
        .collect();
    for (i, name) in ["replica1", "replica2", "replica3"].iter().enumerate() {
        let own = format!("{:.1} ms", 8.5 + i as f64);
        assert!(html.contains(&format!("<td>{own}</td>")), "table: {own}");
        assert!(
            caption.contains(&format!("{name} peaked"))
                && caption.contains(&format!("caught up in {own} after the load")),
            "{name}: {caption}"
        );
    }
    assert!(!caption.contains("caught up 996"), "{caption}");
    assert!(
        caption.contains("next acknowledgement, 996 ms after"),
        "{caption}"
    );
}
