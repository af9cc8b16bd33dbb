//! A real browser opens generated reports: Debian's headless chromium takes a
//! screenshot (decoded: the expected size, not blank) and dumps the DOM it
//! built (the SVG figures are there, and the page logged nothing to the
//! console). A machine without chromium fails this test, with how to install it.

#[path = "golden/fabricate.rs"]
mod fabricate;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use redlab::report::Format;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

fn chromium() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("chromium");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "chromium is not installed, and this test opens the HTML reports in it: \
         install it with apt-get install -y chromium (.ci/run does)"
    );
}

/// Headless chromium with nothing that reaches out (this machine's network
/// is closed; the page must not need one either), in a fresh profile.
fn run_chromium(args: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting chromium");
    // Read while it runs: a DOM larger than the pipe would otherwise block it.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // Bounded: a browser that hangs fails the test instead of the CI run.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn console_messages(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(String::from)
        .collect()
}

/// Decoded RGB(A) pixels: (width, height, share of non-white pixels, distinct colours seen).
fn inspect_png(path: &Path) -> (u32, u32, f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let px = &buf[..info.buffer_size()];
    let mut inked = 0usize;
    let mut colours = std::collections::BTreeSet::new();
    for p in px.chunks(channels) {
        if p[..3].iter().any(|c| *c < 235) {
            inked += 1;
        }
        if colours.len() < 10_000 {
            colours.insert((p[0] >> 3, p[1] >> 3, p[2] >> 3));
        }
    }
    let total = (info.width * info.height) as f64;
    (info.width, info.height, inked as f64 / total, colours.len())
}

fn open_in_browser(name: &str, html: &str, figures: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let url = format!("file://{}", page.display());
    let shot = dir.path().join(format!("{name}.png"));

    let out = run_chromium(&[
        format!("--screenshot={}", shot.display()),
        format!("--window-size={WIDTH},{HEIGHT}"),
        url.clone(),
    ]);
    assert!(
        shot.is_file(),
        "no screenshot; chromium said:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, inked, colours) = inspect_png(&shot);
    assert_eq!((w, h), (WIDTH, HEIGHT), "screenshot size");
    assert!(
        inked > 0.03,
        "the page looks blank: {:.1} % inked",
        inked * 100.0
    );
    assert!(colours > 20, "the page looks blank: {colours} colours");
    assert_eq!(console_messages(&out.stderr), Vec::<String>::new());

    let out = run_chromium(&["--dump-dom".into(), url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("</html>"),
        "no DOM dumped:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        dom.matches("<svg").count(),
        figures.len(),
        "SVG figures in the DOM"
    );
    for id in figures {
        assert!(
            dom.contains(&format!("id=\"fig-{id}\"")),
            "no figure {id} in the DOM"
        );
    }
    assert!(dom.contains("<text"), "the figures have no text");
    assert_eq!(console_messages(&out.stderr), Vec::<String>::new());
    if let Ok(keep) = std::env::var("REDLAB_KEEP_REPORTS") {
        // To look at what the browser drew: REDLAB_KEEP_REPORTS=/some/dir cargo test --test it browser::
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&page, Path::new(&keep).join(format!("{name}.html"))).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join(format!("{name}.png"))).unwrap();
    }
}

#[test]
fn chromium_renders_a_perf_report_with_its_figures() {
    let html = fabricate::perf().render(Format::Html).unwrap();
    open_in_browser(
        "perf",
        &html,
        &[
            "latency-spectrum",
            "throughput",
            "latency-over-time",
            "replica-lag",
        ],
    );
}

#[test]
fn chromium_renders_a_check_report_with_each_steps_figures() {
    let html = fabricate::check_report().render(Format::Html).unwrap();
    open_in_browser(
        "check",
        &html,
        &[
            "replication-visible-latency",
            "expiry-ttl",
            "expiry-expiry-timeline",
            "throughput-latency-spectrum",
            "throughput-throughput",
            "throughput-latency-over-time",
            "throughput-replica-lag",
        ],
    );
}
