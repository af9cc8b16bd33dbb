//! Faults at the door: what sits on the port, the scheme, credentials and
//! ACLs. Each ends with its named outcome within --timeout, and no user key
//! changed, no redlab key left.

use std::time::Duration;

use crate::common::*;

fn args(master: &str, replicas: &[String], timeout: &str) -> Vec<String> {
    let mut v = vec!["--master".to_string(), master.to_string()];
    for r in replicas {
        v.extend(["--replica".to_string(), r.clone()]);
    }
    v.extend(["--timeout".to_string(), timeout.to_string()]);
    v
}

fn replica_urls(lab: &Lab) -> Vec<String> {
    lab.replicas.iter().map(|r| url(r.port)).collect()
}

/// The master is unusable: exit 2, the message on stderr, and the report
/// still says it in the reachability check.
fn assert_refused(run: &Run, needles: &[&str]) -> String {
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "{n:?} not in stderr: {}",
            run.stderr
        );
    }
    let r = run.json();
    assert_eq!(verdict(&r, "reachability"), "fail");
    assert!(reason(&r, "replication").starts_with("not run: "));
    run.stderr.lines().last().unwrap_or("").to_string()
}

#[test]
fn closed_port_is_connection_refused_naming_the_node() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let closed = redlab::lab::free_port().unwrap();
    let run = gate(&args(&url(closed), &replica_urls(&lab), "1s"), &[]);
    let line = assert_refused(
        &run,
        &[&format!("master (127.0.0.1:{closed}): connection refused")],
    );
    eprintln!("observed: {line}");
    // Given alone, the master is asked for its replicas first: the same outcome.
    let run = gate(&["--master".into(), url(closed)], &[]);
    assert_refused(
        &run,
        &[&format!("master (127.0.0.1:{closed}): connection refused")],
    );
    let run = gate(
        &args(
            &url(lab.master.port),
            &[url(lab.replicas[0].port), url(closed)],
            "1s",
        ),
        &["--probes", "2"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    let reach = reason(&r, "reachability");
    assert!(
        reach.contains("replica2.reachable: connection refused during connect"),
        "{reach}"
    );
    assert_eq!(verdict(&r, "replication"), "pass", "replica1 still probed");
    eprintln!("observed: {reach}");
    guard.assert();
}

#[test]
fn an_http_server_is_not_redis() {
    let (_http, port) = http_server();
    let run = gate(&args(&url(port), &[], "2s"), &[]);
    let line = assert_refused(&run, &["master (127.0.0.1:", "not a Redis server"]);
    assert!(run.elapsed < Duration::from_secs(40), "{:?}", run.elapsed);
    eprintln!("observed: {line}");
}

#[test]
fn a_silent_listener_times_out_naming_the_node() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    let (_l, port) = silent_listener();
    let run = gate(&args(&url(port), &[], "700ms"), &[]);
    let line = assert_refused(
        &run,
        &[&format!("master (127.0.0.1:{port}): no answer"), "700ms"],
    );
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    eprintln!("observed: {line}");
    let run = gate(
        &args(
            &url(lab.master.port),
            &[url(lab.replicas[0].port), url(port)],
            "700ms",
        ),
        &["--probes", "2"],
    );
    assert_eq!(run.code, 1);
    assert!(run.elapsed < Duration::from_secs(50), "{:?}", run.elapsed);
    let reach = reason(&run.json(), "reachability");
    assert!(
        reach.contains("replica2.reachable: no answer to PING within 700ms"),
        "{reach}"
    );
    guard.assert();
}

#[test]
fn tls_and_plain_mixed_up_suggest_the_other_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let (_tls, tls_port) = tls_server(dir.path());
    let (plain, _d) = server("plain", &[]);
    // TLS expected, plain given.
    let run = gate(
        &args(
            &format!("rediss://127.0.0.1:{}/#insecure", plain.port),
            &[],
            "2s",
        ),
        &[],
    );
    let line = assert_refused(&run, &["use redis:// instead of rediss://"]);
    eprintln!("observed: {line}");
    // Plain given to a TLS port.
    let run = gate(&args(&url(tls_port), &[], "2s"), &[]);
    let line = assert_refused(&run, &["try rediss://"]);
    eprintln!("observed: {line}");
    // And the right scheme works.
    let run = gate(
        &args(
            &format!("rediss://127.0.0.1:{tls_port}/#insecure"),
            &[],
            "2s",
        ),
        &["--probes", "2"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn password_required_none_given_then_wrong_one_never_printed() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        password: Some("s3cret-pw".into()),
        ..LabOptions::default()
    });
    let urls: Vec<String> = ports(&lab)
        .iter()
        .map(|p| url_pw(*p, "s3cret-pw"))
        .collect();
    let guard = Untouched::seed(&urls[0], &urls);
    let topo = topo_args(&lab);
    let mut none = topo.clone();
    none.extend(["--timeout".into(), "1s".into()]);
    let run = gate(&none, &[]);
    let line = assert_refused(
        &run,
        &[
            "master (127.0.0.1:",
            "authentication required: give --password",
        ],
    );
    eprintln!("observed: {line}");
    let mut wrong = none.clone();
    wrong.extend(["--password".into(), "hunter2-wrong".into()]);
    let run = gate(&wrong, &[]);
    let line = assert_refused(&run, &["authentication failed: wrong user or password"]);
    assert!(
        !run.stdout.contains("hunter2-wrong") && !run.stderr.contains("hunter2-wrong"),
        "the secret was printed"
    );
    eprintln!("observed: {line}");
    let mut right = none.clone();
    right.extend(["--password".into(), "s3cret-pw".into()]);
    let run = gate(&right, &["--probes", "2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("s3cret-pw"), "the secret was printed");
    guard.assert();
}

#[test]
fn acl_user_lacking_a_command_fails_that_check_only_and_without_config_lint_is_skipped() {
    let lab = lab(1);
    let guard = Untouched::seed_lab(&lab);
    for p in ports(&lab) {
        cmd(
            &url(p),
            &[
                "ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "&*", "+@all", "-config",
            ],
        );
        cmd(
            &url(p),
            &[
                "ACL", "SETUSER", "noset", "on", ">pw", "~*", "&*", "+@all", "-set",
            ],
        );
    }
    let mut a = topo_args(&lab);
    a.extend(["--user", "noconfig", "--password", "pw"].map(String::from));
    // A restricted server is not a broken one: the lint is skipped, naming
    // the command and how to allow it, and the gate passes.
    let run = gate(&a, &["--probes", "3"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let lint = reason(&r, "config-lint");
    assert_eq!(verdict(&r, "config-lint"), "skipped", "{lint}");
    assert!(
        lint.contains("CONFIG GET is denied to redlab's ACL user on master (NOPERM)")
            && lint.contains("ACL SETUSER <user> +config"),
        "{lint}"
    );
    for other in ["reachability", "replication", "keycount"] {
        assert_eq!(verdict(&r, other), "pass", "{}", all_reasons(&r));
    }
    eprintln!("observed: {lint}");
    let mut a = topo_args(&lab);
    a.extend(["--user", "noset", "--password", "pw"].map(String::from));
    let run = gate(&a, &["--probes", "3"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let repl = reason(&r, "replication");
    assert!(repl.contains("may not run SET"), "{repl}");
    for other in ["reachability", "keycount", "config-lint"] {
        assert_eq!(verdict(&r, other), "pass", "{}", all_reasons(&r));
    }
    eprintln!("observed: {repl}");
    guard.assert();
}

#[test]
fn perf_runs_over_tls_on_the_slower_path_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_tls, tls_port) = tls_server(dir.path());
    let master = format!("rediss://127.0.0.1:{tls_port}/#insecure");
    let mut a = args(&master, &[], "3s");
    a.extend(
        [
            "--format",
            "json",
            "perf",
            "-n",
            "2000",
            "-P",
            "100",
            "-c",
            "2",
            "-d",
            "5",
            "--rounds",
            "2",
            "--keep-keys",
        ]
        .map(String::from),
    );
    let run = redlab(&a);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let d = &r["details"];
    assert_eq!(d["client_path"], "tls");
    assert_eq!(d["round_results"][1]["completed"], 2000);
    assert!(d["latency"]["p50_us"].as_f64().unwrap() > 0.0);
    // The same keys and values as the plain engine writes.
    let prefix = d["key_prefix"].as_str().unwrap();
    let mut c = redis::Client::open(master.as_str())
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(3))
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("redlab:*").query(&mut c).unwrap();
    assert_eq!(keys.len(), 2000);
    let v: Vec<u8> = redis::cmd("GET")
        .arg(format!("{prefix}1999"))
        .query(&mut c)
        .unwrap();
    assert_eq!(v, redlab::loadgen::engine::expected_value(1999, 5));
}
