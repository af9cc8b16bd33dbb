//! Every run ends within its bounds whatever the input: a service that
//! streams bytes without a line end, --output to a FIFO nobody reads, a
//! stdout closed under a live view.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Wait for the child to exit; a generous bound turns a hang into a failure.
fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redlab did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut s);
    s
}

/// A TCP service that answers every connection with an endless run of bytes
/// and no line end (the first one `+`, as if a RESP simple string).
fn streaming_service() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 * 1024];
                let _ = c.write_all(b"+");
                while c.write_all(&chunk).is_ok() {}
            });
        }
    });
    port
}

#[test]
fn a_service_streaming_bytes_without_a_line_end_is_not_redis_at_once() {
    let port = streaming_service();
    for sub in ["check", "keycount", "perf"] {
        let run = redlab(&["--master", &url(port), "--timeout", "60s", sub]);
        assert_eq!(run.code, 2, "{sub}: {}\n{}", run.stdout, run.stderr);
        let last = run.stderr.lines().last().unwrap_or("");
        assert!(
            last.contains(&format!("master (127.0.0.1:{port})"))
                && last.contains("not a Redis server: it sent")
                && last.contains("bytes without a RESP reply"),
            "{sub}: {}",
            run.stderr
        );
        eprintln!("observed {sub}: {last}");
    }
}

/// A TCP service that does what Redis does at maxclients or in protected
/// mode: writes one error line on accept, before any command, and closes.
fn refusing_service(line: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let _ = c.write_all(line.as_bytes());
        }
    });
    port
}

/// Whether the refusal arrives before redlab's first command is queued (the
/// client then drops it as unsolicited and sees only the close) or as the
/// reply to it, redlab says what the server said, never "not Redis".
#[test]
fn a_refusal_written_on_accept_is_named_whenever_it_arrives() {
    for (line, want) in [
        (
            "-ERR max number of clients reached\r\n",
            "the server has reached maxclients",
        ),
        (
            "-DENIED Redis is running in protected mode because protected mode is enabled\r\n",
            "protected mode",
        ),
    ] {
        let port = refusing_service(line);
        for _ in 0..5 {
            let run = redlab(&["--master", &url(port), "keycount"]);
            assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
            assert!(
                run.stderr.contains(&format!("master (127.0.0.1:{port})"))
                    && run.stderr.contains(want)
                    && !run.stderr.contains("not Redis"),
                "{}",
                run.stderr
            );
        }
    }
}

/// Some thread of `pid` is blocked opening a FIFO (Linux: wchan).
fn blocked_on_fifo(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan"))
            .is_ok_and(|w| w.contains("fifo") || w.contains("partner"))
    })
}

#[test]
fn output_to_a_fifo_nobody_reads_ends_on_a_signal_and_on_the_timeout() {
    let lab = lab(0);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.json");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let guard = Untouched::seed(&url(lab.master.port), &[url(lab.master.port)]);
    for (sig, bound) in [
        (Some(nix::sys::signal::Signal::SIGINT), "60s"),
        (Some(nix::sys::signal::Signal::SIGTERM), "60s"),
        (None, "1s"),
    ] {
        let mut args = topo_args(&lab);
        args.extend(
            [
                "--timeout",
                bound,
                "--output",
                fifo.to_str().unwrap(),
                "keycount",
            ]
            .map(String::from),
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        if let Some(sig) = sig {
            wait_until("redlab waits for a reader of the FIFO", || {
                blocked_on_fifo(pid)
            });
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
        }
        let code = wait_exit(&mut child);
        let err = stderr_of(&mut child);
        let want = match sig {
            Some(_) => (130, "interrupted by a signal before anybody read it"),
            None => (2, "not done within 1s (a FIFO with no reader"),
        };
        assert_eq!(code, want.0, "{sig:?}: {err}");
        assert!(
            err.contains(want.1) && err.contains("report.json"),
            "{sig:?}: {err}"
        );
        eprintln!("observed {sig:?}: {}", err.lines().last().unwrap_or(""));
    }
    guard.assert();
}

#[test]
fn a_live_view_ends_when_its_stdout_is_closed() {
    let lab = lab(1);
    let mut args = topo_args(&lab);
    args.extend(["stats", "--watch", "200ms"].map(String::from));
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first frame's first line, then close the pipe (`| head -1`).
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("redlab stats: refresh 1"), "{first}");
    drop(out);
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, 0, "{err}");
    assert_no_redlab_keys(&ports(&lab));
}

/// A first contact is one connection, even to a listener that never
/// answers: on it only the PING (no probe on a socket of its own, no CLIENT
/// SETINFO), and after the timeout it is closed while the runtime goes on
/// (redlab drives that connection's task itself now, to bound its first
/// reply).
#[test]
fn a_timed_out_first_contact_closes_its_socket() {
    use redlab::client::{Conn, ErrorKind};
    use redlab::topology::{Node, Role};
    use tokio::io::AsyncReadExt;

    let (listener, port) = silent_listener();
    listener.set_nonblocking(true).unwrap();
    let node = Node::parse("master", Role::Master, &url(port)).unwrap();
    let (got, end) = rt().block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let err = Conn::connect(&node, Duration::from_millis(300))
            .await
            .err()
            .expect("a listener that never answers cannot be connected to");
        assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
        // The kernel accepted the connection; take it and read what came:
        // the PING, then the end of the stream (a guard turns a hang into a
        // failure).
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut got)).await;
        // No second connection is queued behind it (accept tries at once).
        tokio::select! {
            biased;
            second = listener.accept() => panic!("a second connection: {second:?}"),
            _ = std::future::ready(()) => {}
        }
        (got, end)
    });
    assert!(matches!(end, Ok(Ok(_))), "the socket stayed open: {end:?}");
    assert_eq!(String::from_utf8_lossy(&got), "*1\r\n$4\r\nPING\r\n");
}
