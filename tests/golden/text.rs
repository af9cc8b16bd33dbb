//! Golden tests of the text renderers: every subcommand's report, saved as
//! JSON from a real run (`reports/regen.sh`; the drill's is fabricated),
//! read back as that subcommand's report and rendered as a person and a
//! program meet it: a table at 80 and 200 columns and unwrapped, markdown,
//! JSON and JUnit. No Redis; the whole tier takes milliseconds.
//!
//! What is asserted holds for any report: no line wider than the terminal,
//! no word broken (every word of a narrow table is a word of the unwrapped
//! one, or ends in an ellipsis), every check and verdict shown, markdown
//! tables rectangular, JSON that reads back to the same report, JUnit with
//! one test case per check. The 80-column table and the markdown are also
//! compared with the files in `expected/`; after a deliberate change,
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites them (review the
//! diff).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redlab::report::{AnyReport, Format, View};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every saved report, by name, plus the fabricated drill.
fn saved() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir().join("reports"))
        .expect("tests/golden/reports")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        out.push((name, serde_json::from_str(&text).unwrap()));
    }
    out.push(("drill".into(), super::fabricate::drill_json()));
    out
}

fn typed(name: &str, v: Value) -> Box<dyn AnyReport> {
    redlab::app::rerender::typed(v)
        .unwrap_or_else(|(e, _)| panic!("{name}: the saved report does not read back: {e}"))
}

fn view(width: Option<usize>) -> View {
    View {
        width,
        color: false,
        verbose: false,
    }
}

/// Words as the table wraps them: runs between spaces and table rules.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || "│┆║╞═╪╡├─┼┤┌┬┐└┴┘╭╮╰╯|".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_subcommand_has_a_saved_report() {
    let have: BTreeSet<String> = saved()
        .into_iter()
        .map(|(_, v)| v["command"].as_str().unwrap().to_string())
        .collect();
    for c in [
        "replicate-check",
        "keycount",
        "perf",
        "ttl-watch",
        "stats",
        "demo",
        "check",
        "compare",
        "clean",
        "lab",
        "drill",
    ] {
        assert!(
            have.contains(c),
            "no saved {c} report in tests/golden/reports"
        );
    }
}

#[test]
fn tables_fit_the_terminal_and_break_no_word() {
    for (name, v) in saved() {
        let r = typed(&name, v);
        let wide = r.render_view(Format::Table, view(None)).unwrap();
        let known = words(&wide);
        for width in [80, 200] {
            let text = r.render_view(Format::Table, view(Some(width))).unwrap();
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{name} at {width} columns: a line of {} columns:\n{line}\n\n{text}",
                    line.chars().count()
                );
            }
            // A word in a narrow table's cell that the unwrapped table lacks
            // is a word cut in two, unless it was shortened with an ellipsis.
            // (Notes and the footer wrap as prose: a path may break after a /.)
            let cells = text
                .lines()
                .filter(|l| l.starts_with('│'))
                .collect::<Vec<_>>()
                .join("\n");
            for w in words(&cells) {
                assert!(
                    known.contains(&w) || w.ends_with('…'),
                    "{name} at {width} columns: {w:?} is not a word of the report (a word broken in two?)\n\n{text}"
                );
            }
        }
    }
}

#[test]
fn every_check_and_the_verdict_are_shown() {
    for (name, v) in saved() {
        let checks: Vec<(String, String)> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["verdict"].as_str().unwrap().to_uppercase(),
                )
            })
            .collect();
        let verdict = v["verdict"].as_str().unwrap().to_uppercase();
        let brief = matches!(v["command"].as_str(), Some("demo"));
        let r = typed(&name, v);
        for (format, width) in [(Format::Table, Some(200)), (Format::Markdown, None)] {
            let text = r.render_view(format, view(width)).unwrap();
            assert!(
                text.contains(&verdict),
                "{name} {format:?}: the verdict {verdict} is not shown\n{text}"
            );
            for (check, verdict) in &checks {
                // The demo's terminal report is brief: it names what did not pass.
                if brief && verdict == "PASS" {
                    continue;
                }
                assert!(
                    text.contains(check.as_str()),
                    "{name} {format:?}: check {check} ({verdict}) is not shown\n{text}"
                );
            }
        }
    }
}

#[test]
fn markdown_tables_are_rectangular() {
    for (name, v) in saved() {
        let md = typed(&name, v).render(Format::Markdown).unwrap();
        let mut columns: Option<usize> = None;
        for line in md.lines() {
            if !line.starts_with('|') {
                columns = None;
                continue;
            }
            let cells = line.replace("\\|", "").matches('|').count();
            match columns {
                None => columns = Some(cells),
                Some(n) => assert_eq!(
                    n, cells,
                    "{name}: a markdown row with another column count:\n{line}\n\n{md}"
                ),
            }
        }
    }
}

#[test]
fn json_reads_back_to_the_same_report() {
    for (name, v) in saved() {
        let r = typed(&name, v);
        let once = r.render(Format::Json).unwrap();
        let again = typed(&name, serde_json::from_str(&once).unwrap())
            .render(Format::Json)
            .unwrap();
        assert_eq!(once, again, "{name}: JSON does not survive a round trip");
    }
}

#[test]
fn junit_has_a_test_case_per_check() {
    for (name, v) in saved() {
        let checks = v["checks"].as_array().unwrap().len();
        let failing = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail")
            .count();
        let xml = typed(&name, v).render(Format::Junit).unwrap();
        let doc = roxmltree::Document::parse(&xml)
            .unwrap_or_else(|e| panic!("{name}: JUnit is not XML ({e})"));
        let cases = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count();
        assert_eq!(cases, checks, "{name}: one test case per check\n{xml}");
        let failures = doc
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count();
        assert_eq!(
            failures, failing,
            "{name}: one failure per failed check\n{xml}"
        );
    }
}

/// The 80-column table and the markdown as they were when last reviewed
/// (and check's -v table).
#[test]
fn renderings_match_the_reviewed_ones() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let expected = dir().join("expected");
    let mut differ = Vec::new();
    for (name, v) in saved() {
        let r = typed(&name, v);
        let mut renderings = vec![
            (
                "80.txt",
                r.render_view(Format::Table, view(Some(80))).unwrap(),
            ),
            ("md", r.render(Format::Markdown).unwrap()),
        ];
        // check is compact on a terminal: its full table is -v's.
        if name.starts_with("check") {
            let verbose = View {
                verbose: true,
                ..view(Some(80))
            };
            renderings.push(("v.80.txt", r.render_view(Format::Table, verbose).unwrap()));
        }
        for (ext, text) in renderings {
            let path = expected.join(format!("{name}.{ext}"));
            if update {
                std::fs::create_dir_all(&expected).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if want != text {
                differ.push(format!(
                    "{}:\n--- expected\n{want}\n--- rendered\n{text}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "renderings changed (UPDATE_GOLDEN=1 cargo test --test golden rewrites them; review the diff):\n\n{}",
        differ.join("\n\n")
    );
}

/// The architecture page's table (docs/architecture.md) names every folder
/// and top-level file of src/, and nothing that is not there.
#[test]
fn readme_architecture_matches_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let section = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let named: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split(" | ").next().unwrap_or_default();
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut tree = BTreeSet::new();
    for e in std::fs::read_dir(root.join("src")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            tree.insert(format!("{name}/"));
        } else if name.ends_with(".rs") {
            tree.insert(name);
        }
    }
    let missing: Vec<_> = tree.difference(&named).collect();
    let stale: Vec<_> = named.difference(&tree).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/architecture.md's table: not named {missing:?}; named but not in src/ {stale:?}"
    );
}

/// At 80 columns a table drops its least important columns, never the one
/// that is its point: a verdict, or a replica's lag.
#[test]
fn the_point_of_a_table_survives_a_narrow_terminal() {
    for (name, v) in saved() {
        let text = typed(&name, v)
            .render_view(Format::Table, view(Some(80)))
            .unwrap();
        let hidden = text.replace("\n  ", " ");
        for line in hidden.lines() {
            let Some(cols) = line.trim().strip_prefix("not shown at this width: ") else {
                continue;
            };
            let cols = cols.split(" (").next().unwrap();
            for c in cols.split(", ") {
                assert!(
                    !matches!(c, "verdict" | "lag" | "lag bytes"),
                    "{name} at 80 columns hides its {c} column:\n{text}"
                );
            }
        }
    }
}

/// A command to copy (`redlab ... clean --run X`) is one line on a
/// terminal, outside any table, never wrapped.
#[test]
fn a_command_to_copy_is_one_line_outside_the_table() {
    let (_, v) = saved().into_iter().find(|(n, _)| n == "keycount").unwrap();
    let mut v = v;
    let cmd = "redlab --master redis://127.0.0.1:26500/0 clean --run abcdefghij";
    v["checks"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "run.cleanup",
        "verdict": "fail",
        "reason": format!("up to 3 keys of this run remain under redlab:abcdefghij:* (stopped); remove them with `{cmd}`"),
    }));
    let r = typed("keycount", v);
    let text = r.render_view(Format::Table, view(Some(80))).unwrap();
    assert!(
        text.lines().any(|l| l.trim() == cmd),
        "the command is not one line of its own:\n{text}"
    );
    let md = r.render(Format::Markdown).unwrap();
    // Markdown writes backticks as entities (a key name cannot open a code
    // span): the command itself stays whole, between rendered backticks.
    assert!(md.contains(&format!("&#96;{cmd}&#96;")), "{md}");
}

/// A passing check fits one screen at 80 columns: the verdict, one line
/// (or two) per step; a failing one starts with what failed.
#[test]
fn check_fits_a_screen_and_leads_with_what_failed() {
    for (name, v) in saved() {
        if v["command"] != "check" {
            continue;
        }
        let failed: Vec<String> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail")
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        let text = typed(&name, v)
            .render_view(Format::Table, view(Some(80)))
            .unwrap();
        let lines = text.lines().count();
        assert!(
            (5..=40).contains(&lines),
            "{name}: {lines} lines at 80 columns:\n{text}"
        );
        if failed.is_empty() {
            assert!(text.contains("\nChecks\n"), "{text}");
            continue;
        }
        // The first table is what failed, every failed step in it.
        let first = text.split("\n\n").nth(1).unwrap();
        assert!(first.starts_with("Did not pass\n"), "{name}:\n{text}");
        for f in &failed {
            assert!(first.contains(f.as_str()), "{name}: {f} not first:\n{text}");
        }
    }
}
