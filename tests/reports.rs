//! Where reports go: stdout in the asked format, --output by extension,
//! --report into reports/ with a timestamped name; a failing run writes too.

use std::process::Command;

use crate::common::*;

fn redlab_in(dir: &std::path::Path, args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_by_extension_and_report_into_reports_dir() {
    let lab = lab(1);
    let dir = tempfile::tempdir().unwrap();
    let mut args = topo_args(&lab);
    args.extend(["keycount", "--output", "out/kc.md", "--report"].map(String::from));
    let (code, stdout, stderr) = redlab_in(dir.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    // --output sends the report to the file: stdout gets nothing.
    assert!(stdout.is_empty(), "{stdout}");
    let md = std::fs::read_to_string(dir.path().join("out/kc.md")).unwrap();
    assert!(
        md.starts_with("# redlab keycount: PASS") && md.contains("| node |"),
        "{md}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(written.len(), 1);
    let name = written[0].file_name().into_string().unwrap();
    assert!(
        name.starts_with("keycount-") && name.ends_with(".json"),
        "{name}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(written[0].path()).unwrap()).unwrap();
    assert_eq!(v["command"], "keycount");
    assert!(
        stderr.contains("report written to reports/keycount-"),
        "{stderr}"
    );
    assert!(
        stderr.contains("redlab keycount: PASS\nredlab: report written to out/kc.md\n"),
        "{stderr}"
    );
}

#[test]
fn a_failing_run_still_writes_its_report() {
    let mut lab = lab(1);
    lab.replicas[0].kill();
    let dir = tempfile::tempdir().unwrap();
    let mut args = topo_args(&lab);
    args.extend(
        [
            "--format", "junit", "--output", "kc.xml", "keycount", "--settle", "200ms",
        ]
        .map(String::from),
    );
    let (code, stdout, stderr) = redlab_in(dir.path(), &args);
    assert_eq!(code, 1, "{stderr}");
    // The report went to a file: stderr says the verdict and where.
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("redlab keycount: FAIL\nredlab: report written to kc.xml\n"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(dir.path().join("kc.xml")).unwrap();
    assert!(
        xml.contains("<failure message=\"down: ") && xml.contains("connection refused"),
        "{xml}"
    );
}

#[test]
fn json_on_stdout_is_clean_even_with_progress_asked_for() {
    let lab = lab(1);
    let mut args = topo_args(&lab);
    args.extend(["--format", "json", "replicate-check", "--probes", "3"].map(String::from));
    let run = redlab(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json();
    assert_eq!(v["verdict"], "pass");
    assert!(run.stdout.trim_end().ends_with('}'));
}

#[test]
fn quiet_silences_progress_never_the_report() {
    let lab = lab(1);
    let dir = tempfile::tempdir().unwrap();
    let mut args = topo_args(&lab);
    args.extend(["-q", "keycount", "--report", "kc.json"].map(String::from));
    let (code, stdout, stderr) = redlab_in(dir.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    // --report writes a copy; stdout still gets the report, -q or not.
    assert!(stdout.starts_with("redlab keycount: PASS\n"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("kc.json")).unwrap())
            .unwrap();
    assert_eq!(v["command"], "keycount");
    let mut args = topo_args(&lab);
    args.extend(["--output", "-", "--format", "json", "keycount"].map(String::from));
    let (code, stdout, _) = redlab_in(dir.path(), &args);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["command"], "keycount");
}
