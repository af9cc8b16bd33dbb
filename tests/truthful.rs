//! Messages that tell the truth (issue 20, item 9), against real servers:
//! each case asserts the exit code, the one-line reason, that user data is
//! unchanged (DEBUG DIGEST) and that no redlab key is left.

use std::process::{Command, Stdio};

use crate::common::*;

fn one_line(run: &Run) -> String {
    let line = run.stderr.trim().to_string();
    assert_eq!(line.lines().count(), 1, "{}", run.stderr);
    eprintln!("observed: {line}");
    line
}

#[test]
fn a_password_for_a_node_without_one_says_so() {
    let lab = debug_lab(0);
    let m = url(lab.master.port);
    seed_user_data(&mut conn_url(&m));
    let before = digest(&m);
    let with_pw = format!("redis://:secret@127.0.0.1:{}", lab.master.port);
    let run = redlab(&["--master", with_pw.as_str(), "keycount"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let line = one_line(&run);
    assert!(
        line.contains("a password was given, but this node has no password configured")
            && line.contains("drop the password")
            && !line.contains("wrong user or password"),
        "{line}"
    );
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

#[test]
fn bad_lists_and_half_credentials_are_refused() {
    let lab = debug_lab(1);
    let m = url(lab.master.port);
    seed_user_data(&mut conn_url(&m));
    wait_sync(&lab);
    let before = digest(&m);
    // REDLAB_REPLICAS=',,,' from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(["--master", m.as_str(), "keycount"])
        .env("REDLAB_REPLICAS", ",,,")
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: std::time::Duration::ZERO,
    };
    assert_eq!(run.code, 2, "{}", run.stdout);
    let line = one_line(&run);
    assert!(
        line.contains("REDLAB_REPLICAS has 4 empty items of 4")
            && line.contains("unset REDLAB_REPLICAS"),
        "{line}"
    );
    // A trailing comma on the command line.
    let r1 = format!("{},", url(lab.replicas[0].port));
    let run = redlab(&["--master", m.as_str(), "--replica", r1.as_str(), "keycount"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(one_line(&run).contains("--replica has 1 empty item of 2"));
    // A user without a password.
    let bob = format!("redis://bob@127.0.0.1:{}", lab.master.port);
    let run = redlab(&["--master", bob.as_str(), "check"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let line = one_line(&run);
    assert!(
        line.contains("the URL names the user \"bob\" but no password")
            && line.contains(&format!(
                "redis://bob:PASSWORD@127.0.0.1:{}",
                lab.master.port
            )),
        "{line}"
    );
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

#[test]
fn replicas_announcing_one_address_are_named_as_such() {
    let (master, _d0) = server("master", &["--enable-debug-command", "local"]);
    let port = master.port.to_string();
    let follow = [
        "--replicaof",
        "127.0.0.1",
        port.as_str(),
        "--replica-announce-ip",
        "127.0.0.1",
        "--replica-announce-port",
        "9",
    ];
    let (_r1, _d1) = server("replica1", &follow);
    let (_r2, _d2) = server("replica2", &follow);
    let m = url(master.port);
    wait_until("both replicas are listed", || {
        info(&m, "replication").contains("connected_slaves:2")
    });
    seed_user_data(&mut conn_url(&m));
    let before = digest(&m);
    for sub in ["keycount", "check"] {
        let run = redlab(&["--master", m.as_str(), sub]);
        assert_eq!(run.code, 2, "{sub}: {}", run.stdout);
        let line = one_line(&run);
        assert!(
            line.contains("the master lists 2 replicas at one address, 127.0.0.1:9")
                && line.contains("replica-announce-ip/replica-announce-port")
                && !line.contains("give each node once"),
            "{line}"
        );
    }
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

#[test]
fn ipv6_nodes_print_in_brackets() {
    let (master, _d0) = server(
        "master",
        &[
            "--bind",
            "127.0.0.1",
            "::1",
            "--enable-debug-command",
            "local",
        ],
    );
    let port = master.port.to_string();
    let (replica, _d1) = server(
        "replica1",
        &[
            "--bind",
            "127.0.0.1",
            "::1",
            "--replicaof",
            "::1",
            port.as_str(),
        ],
    );
    let m = url(master.port);
    wait_until("the replica is listed at ::1", || {
        info(&m, "replication").contains("ip=::1")
    });
    wait_link_up(replica.port);
    seed_user_data(&mut conn_url(&m));
    let before = digest(&m);
    let m6 = format!("redis://[::1]:{}", master.port);
    let run = redlab(&["--master", m6.as_str(), "--format", "json", "keycount"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let j = run.json();
    let master_reason = reason(&j, "master");
    eprintln!("observed: {master_reason}");
    let want = format!("[::1]:{}", replica.port);
    assert!(master_reason.contains(&want), "{master_reason}");
    for n in j["nodes"].as_array().unwrap() {
        assert!(n["address"].as_str().unwrap().starts_with("[::1]:"), "{n}");
    }
    // Nowhere an unbracketed ::1:port, in any format.
    for f in ["table", "json", "markdown"] {
        let run = redlab(&["--master", m6.as_str(), "--format", f, "keycount"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let bare = format!(" ::1:{}", replica.port);
        let bare2 = format!("(::1:{}", replica.port);
        assert!(
            !run.stdout.contains(&bare) && !run.stdout.contains(&bare2),
            "{f}: {}",
            run.stdout
        );
    }
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

#[test]
fn the_clean_command_an_interrupted_run_prints_works_at_once() {
    let lab = debug_lab(0);
    let m = url(lab.master.port);
    seed_user_data(&mut conn_url(&m));
    let before = digest(&m);
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(with(&topo_args(&lab), &LONG_PERF))
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .env_remove("REDLAB_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("perf writes", || keys(&m, "redlab:*:perf:*").len() > 1000);
    // Writes wait while paused: the cleanup cannot finish before both
    // signals are in, so the second one stops it with keys left.
    cmd(&m, &["CLIENT", "PAUSE", "600000", "WRITE"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    cmd(&m, &["CLIENT", "UNPAUSE"]);
    let out = {
        let _ = child.stdout.take();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let status = child.wait().unwrap();
        (status.code().unwrap_or(-1), err)
    };
    assert_eq!(out.0, 130, "{}", out.1);
    let printed = out
        .1
        .split('`')
        .find(|s| s.contains(" clean --run "))
        .unwrap_or_else(|| panic!("no clean command printed: {}", out.1))
        .to_string();
    eprintln!("observed: {printed}");
    assert!(!keys(&m, "redlab:*:perf:*").is_empty());
    // Run at once, as printed: the run marked itself finished on its way out.
    let argv: Vec<&str> = printed.split(' ').skip(1).collect();
    let run = redlab(&argv);
    assert_eq!(run.code, 0, "{printed}: {}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stderr.contains("still running") && !run.stdout.contains("still running"),
        "{}",
        run.stderr
    );
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}

#[test]
fn a_slowly_loading_replica_is_named_as_loading() {
    let (master, _d0) = server("master", &["--enable-debug-command", "local", "--save", ""]);
    let m = url(master.port);
    cmd(&m, &["DEBUG", "POPULATE", "300000", "user:pop"]);
    seed_user_data(&mut conn_url(&m));
    let before = digest(&m);
    let port = master.port.to_string();
    // The replica loads the master's RDB from disk, 200 µs per key: about a
    // minute, during which it answers only between 2 MB chunks.
    let (replica, dir) = server(
        "replica1",
        &[
            "--replicaof",
            "127.0.0.1",
            port.as_str(),
            "--repl-diskless-load",
            "disabled",
            "--key-load-delay",
            "200",
        ],
    );
    let log = dir.path().join("replica1.log");
    wait_until("the replica loads the RDB", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Loading DB in memory"))
    });
    let r = url(replica.port);
    let run = redlab(&[
        "--master",
        m.as_str(),
        "--replica",
        r.as_str(),
        "--timeout",
        "1s",
        "--format",
        "json",
        "keycount",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let j = run.json();
    let said = reason(&j, "replica1.parity");
    eprintln!("observed: {said}");
    assert!(said.contains("loading"), "{said}");
    assert_eq!(digest(&m), before);
    Untouched::assert_no_redlab_keys_on(&[m]);
}
