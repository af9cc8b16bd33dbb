//! `clean` removes only what redlab wrote (issue 20, item 2): keys of runs
//! recorded in the registry, or of the run named with `--run ID`; any other
//! key under `redlab:` is the user's, named and left alone. `--prefix` (and
//! REDLAB_PREFIX) moves redlab's whole namespace. Each case checks the user
//! data by DEBUG DIGEST before and after, and what redlab left.

use std::process::{Child, Command, Stdio};

use crate::common::*;

/// The user's own keys that happen to start with `redlab:`; the last one is
/// named like a run id but no run of redlab's recorded it.
const USER_KEYS: [&str; 3] = [
    "redlab:myapp:important",
    "redlab:prod-cache:session:42",
    "redlab:0123456789:mine",
];

fn seed(lab: &Lab) -> String {
    let m = url(lab.master.port);
    seed_user_data(&mut conn_url(&m));
    for k in USER_KEYS {
        cmd(&m, &["SET", k, "the user's"]);
    }
    wait_sync(lab);
    m
}

fn spawn(args: &[String], env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redlab"));
    c.args(args)
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .env_remove("REDLAB_PASSWORD")
        .env_remove("REDLAB_PREFIX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("running redlab")
}

/// A perf run SIGKILLed once it has written, its heartbeat expired: what a
/// dead run leaves. Returns its run id (from the registry `ns`:runs).
fn dead_run(lab: &Lab, ns: &str, extra: &[&str]) -> String {
    let m = url(lab.master.port);
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(topo_args(lab));
    args.extend(LONG_PERF.map(String::from));
    let mut child = spawn(&args, &[]);
    wait_until("perf writes", || {
        keys(&m, &format!("{ns}:*:perf:*")).len() > 1000
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let ids: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{ns}:runs"))
        .query(&mut conn_url(&m))
        .unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    // The heartbeat would expire 15 s after the kill; expire it now.
    cmd(&m, &["DEL", &format!("{ns}:{}:alive", ids[0])]);
    ids[0].clone()
}

#[test]
fn user_keys_under_redlab_survive_clean_and_a_dead_runs_keys_go() {
    let lab = debug_lab(1);
    let m = seed(&lab);
    let r = url(lab.replicas[0].port);
    let before = (digest(&m), digest(&r));
    let id = dead_run(&lab, "redlab", &[]);
    let written = keys(&m, &format!("redlab:{id}:*")).len();
    let run = redlab(&with(&topo_args(&lab), &["--format", "json", "clean"]));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let j = run.json();
    assert_eq!(j["details"]["removed"].as_u64().unwrap() as usize, written);
    assert_eq!(j["details"]["runs"][0]["run_id"], id.as_str());
    assert_eq!(j["details"]["foreign_keys"], 3);
    let foreign = reason(&j, "clean.foreign");
    eprintln!("observed: {}", reason(&j, "clean.master"));
    eprintln!("observed: {foreign}");
    assert_eq!(verdict(&j, "clean.foreign"), "warn");
    assert!(
        foreign.starts_with("left alone: 3 keys under redlab: that no redlab run recorded")
            && USER_KEYS.iter().all(|k| foreign.contains(k))
            && foreign.contains("--prefix"),
        "{foreign}"
    );
    assert_eq!(
        reason(&j, "clean.master"),
        format!("removed {written} keys of 1 dead run")
    );
    wait_sync(&lab);
    assert_eq!((digest(&m), digest(&r)), before, "user data changed");
    for u in [&m, &r] {
        assert_eq!(keys(u, "redlab:*"), sorted(&USER_KEYS), "on {u}");
    }
    // The table says the same, on one line each.
    let run = redlab(&with(&topo_args(&lab), &["clean"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stdout
        .contains("left alone (not redlab's): 3 keys under redlab:"));
}

#[test]
fn clean_run_takes_only_a_run_id() {
    let lab = debug_lab(0);
    let m = seed(&lab);
    let before = digest(&m);
    for bad in ["myapp", "prod-cache", "0123*", "01234567890"] {
        let run = redlab(&with(&topo_args(&lab), &["clean", "--run", bad]));
        assert_eq!(run.code, 2, "{bad}: {}\n{}", run.stdout, run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains(&format!("--run {bad:?} is not a run id")),
            "{line}"
        );
        eprintln!("observed: {line}");
    }
    assert_eq!(digest(&m), before);
    assert_eq!(keys(&m, "redlab:*"), sorted(&USER_KEYS));
    // A run id no registry lists: the user vouches for it by naming it.
    let run = redlab(&with(
        &topo_args(&lab),
        &["--format", "json", "clean", "--run", "0123456789"],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["details"]["removed"], 1);
    assert!(!keys(&m, "redlab:*").contains(&USER_KEYS[2].to_string()));
}

#[test]
fn prefix_moves_redlabs_whole_namespace() {
    let lab = debug_lab(1);
    let m = seed(&lab);
    // A user key named as redlab's registry would be: untouched under --prefix.
    cmd(&m, &["SET", "redlab:runs", "the user's"]);
    wait_sync(&lab);
    let r = url(lab.replicas[0].port);
    let user_redlab = keys(&m, "redlab:*");
    let before = (digest(&m), digest(&r));
    // A whole gate, with the namespace from the environment.
    let mut args = topo_args(&lab);
    args.extend(["--format", "json", "check"].map(String::from));
    let out = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args(&args)
        .env_remove("REDLAB_MASTER")
        .env_remove("REDLAB_REPLICAS")
        .env("REDLAB_PREFIX", "myco-redlab")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_sync(&lab);
    assert_eq!((digest(&m), digest(&r)), before);
    for u in [&m, &r] {
        assert!(keys(u, "myco-redlab:*").is_empty(), "{u}");
        assert_eq!(keys(u, "redlab:*"), user_redlab, "{u}");
    }
    // A dead run under the new namespace: the next run names it with the
    // namespace, and the command it prints removes it.
    let id = dead_run(&lab, "myco-redlab", &["--prefix", "myco-redlab"]);
    assert!(
        keys(&m, "redlab:*") == user_redlab,
        "wrote outside its namespace"
    );
    let run = redlab(&with(
        &topo_args(&lab),
        &["--prefix", "myco-redlab", "--format", "json", "keycount"],
    ));
    let j = run.json();
    let said = check(&j, "master.leftovers")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    eprintln!("observed: {said}");
    let printed = said
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {said}"));
    assert!(
        said.contains(&format!("under myco-redlab:{id}:"))
            && printed.contains("--prefix myco-redlab")
            && printed.ends_with(&format!("clean --run {id}")),
        "{said}"
    );
    let argv: Vec<&str> = printed.split(' ').skip(1).collect();
    let run = redlab(&argv);
    assert_eq!(run.code, 0, "{printed}: {}\n{}", run.stdout, run.stderr);
    // Plain `clean` (default namespace) finds nothing of redlab's: the
    // user's keys there are named and left.
    let run = redlab(&with(&topo_args(&lab), &["--format", "json", "clean"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["details"]["removed"], 0);
    wait_sync(&lab);
    assert_eq!((digest(&m), digest(&r)), before);
    for u in [&m, &r] {
        assert!(keys(u, "myco-redlab:*").is_empty(), "{u}");
        assert_eq!(keys(u, "redlab:*"), user_redlab, "{u}");
    }
}

#[test]
fn a_prefix_that_cannot_be_a_namespace_is_refused() {
    for bad in ["", "a*b", "x{1}"] {
        let run = redlab(&[
            "--prefix",
            bad,
            "--master",
            "redis://127.0.0.1:1",
            "keycount",
        ]);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("--prefix"), "{}", run.stderr);
    }
}

fn sorted(k: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
