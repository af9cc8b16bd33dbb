use crate::common::*;

#[test]
fn up_status_down_manage_exactly_the_lab_processes() {
    let state = tempfile::tempdir().unwrap();
    let base = free_port_run(3).to_string();
    let dir = state.path().to_str().unwrap();
    let up = redlab(&[
        "lab",
        "--state-dir",
        dir,
        "up",
        "--replicas",
        "2",
        "--base-port",
        &base,
        "--format",
        "json",
    ]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let r = up.json();
    let procs = r["details"]["processes"].as_array().unwrap().clone();
    assert_eq!(procs.len(), 3);
    let ports: Vec<u16> = procs
        .iter()
        .map(|p| p["port"].as_u64().unwrap() as u16)
        .collect();
    // It returned in sync: a replica already has what the master has.
    let mut m = conn(ports[0]);
    redis::cmd("SET")
        .arg("lab-test")
        .arg("1")
        .exec(&mut m)
        .unwrap();

    let again = redlab(&["lab", "--state-dir", dir, "up", "--base-port", &base]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already up"), "{}", again.stderr);

    let status = redlab(&["lab", "--state-dir", dir, "status", "--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(
        status.json()["details"]["processes"][2]["link_status"],
        "up"
    );

    let down = redlab(&["lab", "--state-dir", dir, "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    // It says what it did to each process, not that they are running.
    let rows: Vec<&str> = down
        .stdout
        .lines()
        .filter(|l| l.contains("replica") || l.contains("master"))
        .filter(|l| l.starts_with('│'))
        .collect();
    assert!(
        rows.len() >= 3 && rows.iter().all(|l| l.contains("stopped")),
        "{}",
        down.stdout
    );
    assert!(!down.stdout.contains("running"), "{}", down.stdout);
    for (p, port) in procs.iter().zip(&ports) {
        let pid = p["pid"].as_u64().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid),
            "pid {pid} still runs"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "port {port} still answers"
        );
    }
    let status = redlab(&["lab", "--state-dir", dir, "status"]);
    assert_eq!(status.code, 2);
    assert!(status.stderr.contains("no lab found"));
}

fn zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)
}

#[test]
fn no_redis_server_is_a_one_line_error_saying_how_to_get_one() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(["--spawn", "keycount"])
        .env("PATH", "/nonexistent")
        .env_remove("REDIS_SERVER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apt-get install redis-server") && err.trim().lines().count() == 1,
        "{err}"
    );
}
