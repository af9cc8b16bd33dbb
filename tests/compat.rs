//! The compatibility matrix's core, run once per server by `.ci/compat.sh`:
//! the binary the fixtures start is `REDIS_SERVER` (redis-server on PATH
//! when unset), `REDLAB_COMPAT_MODULE` the modules every node loads (paths
//! separated by `:`), and each
//! subcommand's exit code and verdict is appended to `REDLAB_COMPAT_OUT`
//! (one `subcommand<TAB>exit<TAB>verdict` line) when that is set.
//!
//! Each test asserts what an operator expects on that server: a healthy
//! topology passes, a replica diverged on purpose fails compare naming each
//! key, a restricted server is skipped and not failed, a lab leaves nothing
//! running, and user data is unchanged.

mod common;

use common::*;
use redlab::lab::LabOptions;

/// The modules every node loads: `REDLAB_COMPAT_MODULE`, paths separated by `:`.
fn modules() -> Vec<String> {
    std::env::var("REDLAB_COMPAT_MODULE")
        .unwrap_or_default()
        .split(':')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect()
}

fn module_args() -> Vec<String> {
    modules()
        .into_iter()
        .flat_map(|m| ["--loadmodule".to_string(), m])
        .collect()
}

fn lab_of(replicas: usize, extra: &[String]) -> Lab {
    let mut args = module_args();
    args.extend(extra.iter().cloned());
    lab_with(LabOptions {
        replicas,
        master_args: args.clone(),
        replica_args: args,
        ..LabOptions::default()
    })
}

#[test]
fn a_healthy_topology_passes_every_subcommand() {
    let lab = lab_of(2, &debug_args());
    let guard = Untouched::seed_lab(&lab);
    let stats = expect_cell(&lab, "stats", &["stats"], 0);
    let version = std::process::Command::new(server_bin())
        .arg("--version")
        .output()
        .unwrap();
    let flavour = if String::from_utf8_lossy(&version.stdout).starts_with("Valkey") {
        "valkey "
    } else {
        "redis "
    };
    assert!(stats.stdout.contains(flavour), "{}", stats.stdout);
    expect_cell(&lab, "replicate-check", &["replicate-check"], 0);
    expect_cell(&lab, "keycount", &["keycount"], 0);
    let digest = expect_cell(&lab, "compare", &["compare"], 0);
    if module_args().is_empty() {
        assert!(
            digest.stdout.contains("DEBUG DIGEST read on every node"),
            "{}",
            digest.stdout
        );
    } else {
        assert!(
            digest.stdout.contains("modules loaded"),
            "{}",
            digest.stdout
        );
    }
    expect_cell(&lab, "compare --no-digest", &["compare", "--no-digest"], 0);
    expect_cell(
        &lab,
        "perf",
        &["perf", "-n", "2000", "--keyspace", "200", "--rounds", "1"],
        0,
    );
    let check = expect_cell(&lab, "check", &["check"], 0);
    assert!(!check.stdout.contains("FAIL"), "{}", check.stdout);
    guard.assert();
}

#[test]
fn a_replica_diverged_on_purpose_fails_compare_naming_each_key() {
    let mut extra = debug_args();
    extra.extend(["--replica-read-only".to_string(), "no".into()]);
    let lab = lab_of(1, &extra);
    let guard = Untouched::seed_lab(&lab);
    let mut r = conn(lab.replicas[0].port);
    redis::cmd("SET")
        .arg("user:0:3")
        .arg("changed")
        .exec(&mut r)
        .unwrap();
    redis::cmd("DEL").arg("user:0:7").exec(&mut r).unwrap();
    for (cell, args) in [
        ("compare (diverged)", vec!["compare"]),
        (
            "compare --no-digest (diverged)",
            vec!["compare", "--no-digest"],
        ),
    ] {
        let run = expect_cell(&lab, cell, &args, 1);
        for key in ["user:0:3", "user:0:7"] {
            assert!(run.stdout.contains(key), "{cell}: {}", run.stdout);
        }
    }
    guard.assert();
}

#[test]
fn a_restricted_topology_passes_check_with_the_skips_named() {
    let renamed: Vec<String> = ["CONFIG", "DEBUG", "MONITOR", "CLIENT", "MODULE"]
        .iter()
        .flat_map(|c| ["--rename-command".to_string(), c.to_string(), String::new()])
        .collect();
    let lab = lab_of(1, &renamed);
    let guard = Untouched::seed_lab(&lab);
    let run = expect_cell(&lab, "check (restricted)", &["check"], 0);
    assert!(
        run.stdout.contains("CONFIG GET is not available on master"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    let strict = expect_cell(
        &lab,
        "check --strict (restricted)",
        &["check", "--strict"],
        1,
    );
    assert!(strict.stdout.contains("--strict"), "{}", strict.stdout);
    expect_cell(&lab, "compare (restricted)", &["compare"], 0);
    guard.assert();
}

#[test]
fn an_acl_user_without_config_or_debug_passes_check_with_the_skips_named() {
    let lab = lab_of(1, &debug_args());
    let guard = Untouched::seed_lab(&lab);
    for port in ports(&lab) {
        redis::cmd("ACL")
            .arg(&[
                "SETUSER", "ops", "on", ">pw", "~*", "&*", "+@all", "-config", "-debug", "-client",
                "-monitor", "-module",
            ])
            .exec(&mut conn(port))
            .unwrap();
    }
    let u = |p: u16| format!("redis://ops:pw@127.0.0.1:{p}");
    let args = [
        "--master".to_string(),
        u(lab.master.port),
        "--replica".into(),
        u(lab.replicas[0].port),
        "--expect-replicas".into(),
        "1".into(),
        "check".into(),
    ];
    let run = redlab(&args);
    record_cell("check (ACL)", &run);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("denied to redlab's ACL user on master (NOPERM)"),
        "{}",
        run.stdout
    );
    guard.assert();
}

#[test]
fn lab_up_and_down_leave_no_process_no_port_and_no_folder() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("lab");
    let base = free_port_run(3);
    let dir_s = dir.to_str().unwrap();
    let bin = server_bin();
    let up = redlab(&[
        "lab",
        "up",
        "--replicas",
        "2",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    record_cell("lab up", &up);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
    let pids: Vec<u64> = saved["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    let down = redlab(&["lab", "down", "--state-dir", dir_s]);
    record_cell("lab down", &down);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    for pid in pids {
        assert_gone(pid);
    }
    for p in base..base + 3 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(),
            "port {p} still taken"
        );
    }
    assert!(!dir.join("data").exists(), "the lab's data folder was left");
}

/// The module the RediSearch test loads: the RediSearch among
/// `REDLAB_COMPAT_MODULE`, else Debian's (whatever other modules the run loads).
fn search_module() -> String {
    let m = modules()
        .into_iter()
        .find(|m| m.ends_with("redisearch.so"))
        .unwrap_or_else(|| "/usr/lib/redis/modules/redisearch.so".into());
    assert!(
        std::path::Path::new(&m).is_file(),
        "{m} is missing: apt-get install redis-redisearch (or name it in REDLAB_COMPAT_MODULE)"
    );
    m
}

#[test]
fn a_module_key_diverged_on_a_replica_is_caught_though_the_digests_agree() {
    let mut args = vec!["--loadmodule".to_string(), search_module()];
    args.extend(debug_args());
    args.extend(["--replica-read-only".to_string(), "no".into()]);
    let lab = lab_with(LabOptions {
        replicas: 1,
        master_args: args.clone(),
        replica_args: args,
        ..LabOptions::default()
    });
    let mut m = conn(lab.master.port);
    let q = |c: &mut redis::Connection, a: &[&str]| {
        redis::cmd(a[0]).arg(&a[1..]).exec(c).unwrap();
    };
    q(&mut m, &["FT.CREATE", "idx", "SCHEMA", "title", "TEXT"]);
    q(
        &mut m,
        &[
            "FT.ADD",
            "idx",
            "doc1",
            "1.0",
            "FIELDS",
            "title",
            "hello world",
        ],
    );
    q(
        &mut m,
        &[
            "FT.ADD",
            "idx",
            "doc2",
            "1.0",
            "FIELDS",
            "title",
            "hello there",
        ],
    );
    wait_sync(&lab);
    let healthy = expect_cell(&lab, "compare (module keys)", &["compare"], 0);
    assert!(
        healthy.stdout.contains("modules loaded"),
        "{}",
        healthy.stdout
    );
    let before = snapshot(&mut m);
    // The replica's inverted index for "hello" replaced by the one for "world":
    // a module value that DEBUG DIGEST does not see.
    let mut r = conn(lab.replicas[0].port);
    let other: Vec<u8> = redis::cmd("DUMP")
        .arg("ft:idx/world")
        .query(&mut r)
        .unwrap();
    redis::cmd("RESTORE")
        .arg("ft:idx/hello")
        .arg(0)
        .arg(other)
        .arg("REPLACE")
        .exec(&mut r)
        .unwrap();
    let run = expect_cell(&lab, "compare (module key diverged)", &["compare"], 1);
    assert!(run.stdout.contains("ft:idx/hello"), "{}", run.stdout);
    assert!(run.stdout.contains("value differs"), "{}", run.stdout);
    assert_eq!(snapshot(&mut m), before, "user data changed on the master");
}

#[test]
fn a_cluster_lab_comes_up_checks_and_goes_down_with_bus_ports_out_of_the_ephemeral_range() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("cluster");
    let dir_s = dir.to_str().unwrap();
    // Data and bus ports (+10000) below the kernel's ephemeral range, where
    // no outgoing connection can hold one: a server without cluster-port
    // (Redis before 7.0) always puts its bus there.
    let (lo, hi) = redlab::lab::binary::ephemeral_range();
    let base = cluster_base(6);
    let up = redlab(&[
        "lab",
        "up",
        "--cluster",
        "--shards",
        "3",
        "--replicas",
        "1",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
    ]);
    record_cell("lab up --cluster", &up);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
    let has_cluster_port =
        redlab::lab::binary::binary_version(&server_bin()).is_none_or(|v| v >= (7, 0));
    for n in saved["nodes"].as_array().unwrap() {
        let argv: Vec<&str> = n["argv"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        let bus = argv
            .iter()
            .position(|a| *a == "--cluster-port")
            .map(|i| argv[i + 1].parse::<u16>().unwrap());
        match (has_cluster_port, bus) {
            (true, Some(b)) => assert!(
                !(lo..=hi).contains(&b),
                "bus port {b} in the ephemeral range {lo}-{hi}"
            ),
            (true, None) => panic!("no --cluster-port in {argv:?}"),
            (false, b) => {
                assert_eq!(b, None, "Redis before 7.0 has no cluster-port");
                let data = n["port"].as_u64().unwrap();
                assert!(
                    !(lo as u64..=hi as u64).contains(&(data + 10000)),
                    "bus port {} in the ephemeral range {lo}-{hi}",
                    data + 10000
                );
            }
        }
    }
    let check = redlab(&[
        "--cluster",
        "--master",
        &url(base),
        "--expect-replicas",
        "1",
        "check",
    ]);
    record_cell("check --cluster", &check);
    assert!(check.code == 0, "{}\n{}", check.stdout, check.stderr);
    let down = redlab(&["lab", "down", "--state-dir", dir_s]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    for p in base..base + 6 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(),
            "port {p} still taken"
        );
    }
}

#[test]
fn a_taken_port_is_refused_naming_what_holds_it() {
    let (listener, port) = silent_listener();
    let state = tempfile::tempdir().unwrap();
    let run = redlab(&[
        "lab",
        "up",
        "--replicas",
        "0",
        "--base-port",
        &port.to_string(),
        "--state-dir",
        state.path().join("l").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let me = format!("pid {}", std::process::id());
    assert!(
        run.stderr.contains(&format!("port {port} is in use")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&me), "{}", run.stderr);
    drop(listener);
}

#[test]
fn spawn_runs_the_named_server_binary() {
    let bin = server_bin();
    let run = redlab(&[
        "--spawn",
        "--server-bin",
        bin.to_str().unwrap(),
        "--spawn-replicas",
        "1",
        "stats",
    ]);
    record_cell("--spawn stats", &run);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let v = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    let flavour = if String::from_utf8_lossy(&v.stdout).starts_with("Valkey") {
        "valkey "
    } else {
        "redis "
    };
    assert!(run.stdout.contains(flavour), "{}", run.stdout);
}

/// Gone, or a zombie its parent has yet to reap.
fn assert_gone(pid: u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        stat.is_empty() || state.starts_with('Z'),
        "pid {pid} runs: {stat}"
    );
}

#[test]
fn a_sentinel_lab_runs_on_this_server_and_stops_whole() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("sentinel");
    let dir_s = dir.to_str().unwrap();
    let base = free_port_run(2);
    let up = redlab(&[
        "lab",
        "up",
        "--replicas",
        "1",
        "--sentinels",
        "3",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
    ]);
    record_cell("lab up --sentinels", &up);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
    let of = |k: &str| -> Vec<(u64, u64)> {
        saved[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["pid"].as_u64().unwrap(), n["port"].as_u64().unwrap()))
            .collect()
    };
    let (nodes, sentinels) = (of("nodes"), of("sentinels"));
    assert_eq!(sentinels.len(), 3);
    let via = redlab(&[
        "--sentinel",
        &url(sentinels[0].1 as u16),
        "--master-name",
        "redlab",
        "--expect-replicas",
        "1",
        "replicate-check",
    ]);
    record_cell("replicate-check via Sentinel", &via);
    assert_eq!(via.code, 0, "{}\n{}", via.stdout, via.stderr);
    // A failover moves the master; `lab up` puts the recorded one back.
    let sentinel = url(sentinels[0].1 as u16);
    cmd(&sentinel, &["SENTINEL", "FAILOVER", "redlab"]);
    let master_port = nodes[0].1 as u16;
    wait_until("the Sentinels moved the master", || {
        let v = cmd(
            &sentinel,
            &["SENTINEL", "get-master-addr-by-name", "redlab"],
        );
        let port: Option<u16> = redis::from_redis_value::<Vec<String>>(v)
            .ok()
            .and_then(|a| a.get(1).and_then(|p| p.parse().ok()));
        port.is_some_and(|p| p != master_port)
    });
    let restored = redlab(&[
        "lab",
        "up",
        "--replicas",
        "1",
        "--sentinels",
        "3",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
    ]);
    record_cell("lab up (roles restored)", &restored);
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    let direct = redlab(&[
        "--master",
        &url(master_port),
        "--expect-replicas",
        "1",
        "replicate-check",
    ]);
    record_cell("replicate-check after a failover and lab up", &direct);
    assert_eq!(direct.code, 0, "{}\n{}", direct.stdout, direct.stderr);
    let down = redlab(&["lab", "down", "--state-dir", dir_s]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    for (pid, port) in nodes.iter().chain(&sentinels) {
        assert_gone(*pid);
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", *port as u16)).is_ok(),
            "port {port} still taken"
        );
    }
}

/// A base port for a cluster lab of `n` nodes: its data ports and the ports
/// 10000 above them free, all below the kernel's ephemeral range.
fn cluster_base(n: u16) -> u16 {
    // The bases handed out in this process: tests run in parallel, and a
    // port one test leaves free for a moment (the TIME-WAIT test drops its
    // listener on purpose) must not be handed to another.
    static GIVEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let (lo, _) = redlab::lab::binary::ephemeral_range();
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let top = lo - 10000 - n;
    let seed = std::process::id() as u64;
    let b = (0..2000u64)
        .map(|i| 10000 + ((seed.wrapping_mul(2654435761) + i * 7919) % (top - 10000) as u64) as u16)
        .filter(|b| {
            // Data ports and bus ports (+10000) of each base, pairwise apart.
            given.iter().all(|(g, m)| {
                [*b, b + 10000]
                    .iter()
                    .all(|x| [*g, g + 10000].iter().all(|y| x + n <= *y || y + m <= *x))
            })
        })
        .find(|b| (*b..b + n).chain(b + 10000..b + 10000 + n).all(free))
        .unwrap_or_else(|| panic!("no cluster base port below {lo}"));
    given.push((b, n));
    b
}

/// Whether a socket in TIME-WAIT has local port `port` (/proc/net/tcp).
fn in_time_wait(port: u16) -> bool {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local = f.get(1).and_then(|a| a.rsplit(':').next());
        local.and_then(|h| u16::from_str_radix(h, 16).ok()) == Some(port) && f.get(3) == Some(&"06")
    })
}

#[test]
fn a_cluster_lab_comes_up_on_a_port_held_only_by_a_connection_in_time_wait() {
    use std::io::Read;
    let base = cluster_base(6);
    // The side that closes first keeps TIME-WAIT: the accepted socket, whose
    // local port is the lab's first data port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", base)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    drop(accepted);
    let mut buf = [0u8; 1];
    assert_eq!(client.read(&mut buf).unwrap(), 0, "the server side closed");
    drop(client);
    drop(listener);
    wait_until(
        "the lab's port is held by a connection in TIME-WAIT",
        || in_time_wait(base),
    );
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("cluster");
    let dir_s = dir.to_str().unwrap();
    let up = redlab(&[
        "lab",
        "up",
        "--cluster",
        "--shards",
        "3",
        "--replicas",
        "1",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
    ]);
    record_cell("lab up --cluster (a port in TIME-WAIT)", &up);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let down = redlab(&["lab", "down", "--state-dir", dir_s]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
}

#[test]
fn a_base_port_putting_a_fixed_bus_port_in_the_ephemeral_range_is_refused_or_moved() {
    let (lo, hi) = redlab::lab::binary::ephemeral_range();
    // Data ports just below the range: +10000 lands inside it.
    let base = (lo - 10000..lo - 9000)
        .step_by(7)
        .find(|b| (*b..b + 6).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()))
        .expect("a free run below the ephemeral range");
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("cluster");
    let dir_s = dir.to_str().unwrap();
    let up = redlab(&[
        "lab",
        "up",
        "--cluster",
        "--shards",
        "3",
        "--replicas",
        "1",
        "--base-port",
        &base.to_string(),
        "--state-dir",
        dir_s,
    ]);
    let fixed = redlab::lab::binary::binary_version(&server_bin()).is_some_and(|v| v < (7, 0));
    if fixed {
        assert_eq!(up.code, 2, "{}\n{}", up.stdout, up.stderr);
        let want = format!(
            "{} lies in the kernel's ephemeral range {lo}-{hi}",
            base + 10000
        );
        assert!(up.stderr.contains(&want), "{}", up.stderr);
        assert!(
            up.stderr.contains("pick a --base-port from 1024 to"),
            "{}",
            up.stderr
        );
    } else {
        // cluster-port: the bus ports follow the data ports instead.
        assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
        let saved = std::fs::read_to_string(dir.join("lab.json")).unwrap();
        assert!(saved.contains(&format!("\"{}\"", base + 6)), "{saved}");
        let down = redlab(&["lab", "down", "--state-dir", dir_s]);
        assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    }
}
