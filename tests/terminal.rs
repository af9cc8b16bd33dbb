//! What a person meets at a terminal besides the reports: --help at 80
//! columns, and the man pages the main page names.

use std::process::Command;

fn redlab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(args)
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The pages a page names under SUBCOMMANDS, as roff writes them
/// (`redlab\-lab\-up(1)`): `redlab-lab-up`.
fn see_also(page: &str) -> Vec<String> {
    page.split(".SH SUBCOMMANDS")
        .nth(1)
        .unwrap_or_default()
        .split(".SH ")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_suffix("(1)"))
        .map(|l| l.replace("\\-", "-"))
        .collect()
}

/// Every page a man page names (its SUBCOMMANDS) is one `redlab man` produces, down the tree.
#[test]
fn every_page_a_man_page_names_is_produced() {
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args = vec!["man"];
        args.extend(path.iter().map(String::as_str));
        let (code, page, err) = redlab(&args);
        assert_eq!(code, 0, "redlab {args:?}: {err}");
        let name = std::iter::once("redlab".to_string())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        assert!(
            page.contains(&format!(".TH {name} 1")),
            "redlab {args:?} is not {name}(1):\n{}",
            &page[..page.len().min(300)]
        );
        seen += 1;
        for named in see_also(&page) {
            let rest = named
                .strip_prefix(&format!("{name}-"))
                .unwrap_or_else(|| panic!("{name}(1) names {named}(1), not one of its own"));
            let mut sub = path.clone();
            sub.push(rest.to_string());
            todo.push(sub);
        }
    }
    assert!(seen > 15, "only {seen} pages");
    let (code, _, err) = redlab(&["man", "lab", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no page for nope: redlab-lab(1) has sub-pages for up, down, status"),
        "{err}"
    );
}

/// Every subcommand's --help fits an 80-column terminal.
#[test]
fn help_fits_80_columns() {
    for sub in [
        "",
        "demo",
        "check",
        "perf",
        "drill",
        "lab",
        "compare",
        "stats",
        "ttl-watch",
        "man",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        let (_, text, _) = redlab(&args);
        assert!(text.lines().count() > 3, "{sub}: {text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{sub} --help: a line of {} columns:\n{line}",
                line.chars().count()
            );
        }
    }
}
