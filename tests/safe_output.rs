//! Every output format is safe (issue 20, item 4): a real compare that finds
//! hostile key names differing (HTML, `</script>`, a terminal escape, a NUL
//! byte and the four characters `\x00`, a name of 1 MiB) prints them as
//! text in every format, shortened where people read them, whole and
//! unambiguous in JSON. User data unchanged (DEBUG DIGEST), no redlab key left.

use crate::common::*;

const IMG: &[u8] = b"<img src=x onerror=alert(1)>";
const SCRIPT: &[u8] = b"</script><script>alert(1)</script>";
const ESCAPE: &[u8] = b"\x1b[31mred\x1b]0;pwned\x07";
const NUL: &[u8] = b"a\0b";
const BACKSLASH: &[u8] = b"a\\x00b";

fn set(u: &str, key: &[u8], v: &str) {
    redis::cmd("SET")
        .arg(key)
        .arg(v)
        .exec(&mut conn_url(u))
        .unwrap();
}

#[test]
fn hostile_key_names_are_text_in_every_format() {
    // The replica takes writes of its own: its data differs from the master's.
    let lab = writable_debug_lab(1);
    let m = url(lab.master.port);
    let r = url(lab.replicas[0].port);
    seed_user_data(&mut conn_url(&m));
    let huge = vec![b'k'; 1 << 20];
    let names: Vec<&[u8]> = vec![IMG, SCRIPT, ESCAPE, NUL, BACKSLASH, &huge];
    for k in &names {
        set(&m, k, "master's");
    }
    wait_sync(&lab);
    for k in &names {
        set(&r, k, "replica's");
    }
    let before = (digest(&m), digest(&r));
    let dir = tempfile::tempdir().unwrap();
    let base = with(&topo_args(&lab), &[]);

    // JSON: every name whole, each with one reading.
    let run = redlab(&with(&base, &["--format", "json", "compare"]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let j = run.json();
    assert_eq!(verdict(&j, "replica1.consistency"), "fail");
    let samples = j["details"]["replicas"][0]["samples"].as_array().unwrap();
    let by = |name: &str| {
        samples
            .iter()
            .find(|s| s["key"] == name)
            .unwrap_or_else(|| panic!("no sample {name:?} in {samples:?}"))
    };
    assert_eq!(by(r"a\x00b")["key_base64"], "YQBi");
    assert_eq!(by(r"a\\x00b")["key_base64"], "YVx4MDBi");
    assert!(by("<img src=x onerror=alert(1)>")["key_base64"].is_null());
    assert_eq!(by(r"\x1b[31mred\x1b]0;pwned\x07")["kind"], "value_differs");
    assert!(samples
        .iter()
        .any(|s| s["key"].as_str().unwrap().len() == 1 << 20));

    // The terminal table (a pipe here): short, escapes shown, no live ones.
    let run = redlab(&with(&base, &["compare"]));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let table = &run.stdout;
    eprintln!("observed table: {} bytes", table.len());
    assert!(table.len() < 64 * 1024, "{} bytes", table.len());
    assert!(table.contains(&format!("… (+{} bytes)", (1 << 20) - 64)));
    assert!(!table.contains('\x1b') && !table.contains('\x07'));
    assert!(table.contains(r"\x1b[31mred"));

    // Markdown (a CI job summary): no tag can open, no escape is live.
    let md_path = dir.path().join("c.md");
    let run = redlab(&with(
        &base,
        &["--output", md_path.to_str().unwrap(), "compare"],
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.len() < 64 * 1024, "{} bytes", md.len());
    for live in ["<img", "</script", "<script", "\x1b", "\x07", "\0"] {
        assert!(
            !md.contains(live),
            "{live:?} is live in the markdown:\n{md}"
        );
    }
    assert!(md.contains("&lt;img src=x onerror=alert(1)>"), "{md}");
    assert!(
        md.contains("&lt;/script>&lt;script>alert(1)&lt;/script>"),
        "{md}"
    );
    // A NUL byte and `\x00` still read differently (markdown shows `\\` as `\`).
    assert!(md.contains(r"a\\x00b") && md.contains(r"a\\\\x00b"), "{md}");
    assert!(md.contains("… (+"), "{md}");

    // HTML and JUnit escape as they did.
    for (ext, fmt) in [("html", "html"), ("xml", "junit")] {
        let path = dir.path().join(format!("c.{ext}"));
        let run = redlab(&with(
            &base,
            &[
                "--format",
                fmt,
                "--output",
                path.to_str().unwrap(),
                "compare",
            ],
        ));
        assert_eq!(run.code, 1, "{}", run.stderr);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 256 * 1024, "{fmt}: {} bytes", text.len());
        for live in ["<img", "</script><script>alert", "\x1b", "\x07"] {
            assert!(!text.contains(live), "{live:?} is live in {fmt}");
        }
    }

    assert_eq!((digest(&m), digest(&r)), before, "data changed");
    Untouched::assert_no_redlab_keys_on(&[m, r]);
}
