//! One load split among client processes (`perf --client K/N
//! --start-at`) and merged back (`report --merge`), on real servers: the
//! clients together send exactly one run's requests, write disjoint keys,
//! and merge into one report whose histograms are the clients' added up;
//! reports of different plans are refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use redlab::latency::{decode_v2, LatencyUs};

/// A --start-at a few seconds ahead, as Unix seconds.
fn soon(secs: u64) -> String {
    let at = SystemTime::now() + Duration::from_secs(secs);
    format!(
        "{:.3}",
        at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    )
}

/// N clients of one load at once, each `base_args` + `--client K/N` +
/// `--output <dir>/cK.json`; their runs, in K order.
fn clients(n: u32, base: &[String], dir: &Path) -> Vec<Run> {
    let handles: Vec<_> = (1..=n)
        .map(|k| {
            let mut args = base.to_vec();
            args.extend([
                "--client".to_string(),
                format!("{k}/{n}"),
                "--output".into(),
                dir.join(format!("c{k}.json")).display().to_string(),
            ]);
            std::thread::spawn(move || redlab(&args))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A round's latency histogram of a (shard's) perf details, decoded.
fn round_hdr(details: &serde_json::Value, round: usize) -> hdrhistogram::Histogram<u64> {
    decode_v2(
        details["round_results"][round]["latency_hdr"]
            .as_str()
            .unwrap_or_else(|| panic!("no histogram in round {round}: {details}")),
    )
    .unwrap()
}

#[test]
fn three_clients_on_a_cluster_are_one_run_merged_exactly() {
    let lab = cluster_lab(3);
    let masters: Vec<u16> = lab.shards.iter().map(|s| s.master.port).collect();
    for p in &masters {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .exec(&mut conn(*p))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (n, rounds, warmup) = (3000u64, 2u64, 30u64);
    let base: Vec<String> = [
        "--cluster",
        "--master",
        &url(masters[0]),
        "--timeout",
        "5s",
        "--format",
        "json",
        "perf",
        "-n",
        &n.to_string(),
        "-P",
        "8",
        "-c",
        "3",
        "--rounds",
        &rounds.to_string(),
        "--warmup",
        &warmup.to_string(),
        "--keep-keys",
        "--start-at",
        &soon(3),
    ]
    .map(String::from)
    .to_vec();
    let runs = clients(3, &base, dir.path());
    for (k, r) in runs.iter().enumerate() {
        assert_eq!(r.code, 0, "client {}/3\n{}", k + 1, r.stderr);
    }
    // Exactly one run's SETs: every round's -n and the warm-up, over the
    // masters. A registry heartbeat is one HSET and one SET: not the load's.
    let sets: u64 = masters
        .iter()
        .map(|p| cmdstat_calls(*p, "set") - cmdstat_calls(*p, "hset"))
        .sum();
    assert_eq!(sets, n * rounds + warmup, "SET calls on the masters");
    // Disjoint keys: each client's under its own `perf:KofN:`, the union
    // of them one key per request of a round.
    let mut all = BTreeSet::new();
    let mut per_client = [0u64; 3];
    for p in &masters {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("redlab:*:perf:*")
            .query(&mut conn(*p))
            .unwrap();
        for key in keys {
            let k = (1..=3)
                .find(|k| key.contains(&format!(":perf:{k}of3:")))
                .unwrap_or_else(|| panic!("a key of no client: {key}"));
            per_client[k - 1] += 1;
            assert!(all.insert(key.clone()), "written twice: {key}");
        }
    }
    assert_eq!(per_client, [1000, 1000, 1000], "keys per client");
    assert_eq!(all.len() as u64, n);
    // Each client's report says its share and its window.
    let reports: Vec<serde_json::Value> = (1..=3)
        .map(|k| read(&dir.path().join(format!("c{k}.json"))))
        .collect();
    for (k, j) in reports.iter().enumerate() {
        for s in j["details"]["shards"].as_array().unwrap() {
            let c = &s["details"]["client"];
            assert_eq!(
                (c["index"].as_u64(), c["of"].as_u64()),
                (Some(k as u64 + 1), Some(3))
            );
            assert_eq!(c["total_requests_per_round"], n);
            assert!(c["start_at"].is_string() && c["late_ms"].is_number(), "{c}");
            assert!(c["ended_unix_ms"].as_f64() >= c["started_unix_ms"].as_f64());
        }
        assert_eq!(
            j["details"]["total"]["requests_per_round"],
            1000,
            "client {}",
            k + 1
        );
    }
    // The merge: the whole load's figures.
    let r = redlab(&[
        "report",
        "--merge",
        &dir.path().display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let m = r.json();
    // Pass, or a warning that they started apart (a loaded machine may
    // start them late): never a failure, every share is there.
    assert_ne!(check(&m, "merge.clients")["verdict"], "fail", "{m}");
    assert_eq!(check(&m, "perf.requests")["verdict"], "pass");
    let merged = &m["details"]["merged"];
    assert_eq!(
        (merged["of"].as_u64(), merged["clients_merged"].as_u64()),
        (Some(3), Some(3))
    );
    let total = &m["details"]["total"];
    let median = total["median_round"].as_u64().unwrap() as usize;
    for round in total["round_results"].as_array().unwrap() {
        assert_eq!(round["completed"], n);
    }
    assert_eq!(total["latency"]["count"], n, "{total}");
    // The same histograms added here, in one process: the same percentiles.
    let mut here = redlab::latency::histogram();
    for j in &reports {
        for s in j["details"]["shards"].as_array().unwrap() {
            here.add(round_hdr(&s["details"], median)).unwrap();
        }
    }
    assert_eq!(here.len(), n);
    let want = serde_json::to_value(LatencyUs::from_ns(&here)).unwrap();
    assert_eq!(total["latency"], want);
    // And shard by shard.
    for (i, s) in m["details"]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let d = &s["details"];
        let med = d["median_round"].as_u64().unwrap() as usize;
        let mut h = redlab::latency::histogram();
        for j in &reports {
            h.add(round_hdr(&j["details"]["shards"][i]["details"], med))
                .unwrap();
        }
        assert_eq!(
            d["latency"],
            serde_json::to_value(LatencyUs::from_ns(&h)).unwrap()
        );
        assert_eq!(d["latency"]["count"], d["round_results"][med]["completed"]);
    }
    // Every other format renders the merged report too.
    for format in ["table", "markdown", "html"] {
        let r = redlab(&[
            "report",
            "--merge",
            &dir.path().join("c1.json").display().to_string(),
            &dir.path().join("c2.json").display().to_string(),
            &dir.path().join("c3.json").display().to_string(),
            "--format",
            format,
        ]);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert!(
            r.stdout.contains("Clients merged"),
            "{format}: {}",
            r.stdout
        );
    }
    // A shard one client did not measure: its figures are the others'
    // only, and the merge fails there, saying whose are missing.
    let mut lacking = reports[1].clone();
    lacking["details"]["shards"][1]["details"] = serde_json::Value::Null;
    let other = tempfile::tempdir().unwrap();
    let c2 = other.path().join("c2.json");
    std::fs::write(&c2, lacking.to_string()).unwrap();
    let r = redlab(&[
        "report",
        "--merge",
        &dir.path().join("c1.json").display().to_string(),
        &c2.display().to_string(),
        &dir.path().join("c3.json").display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let m = r.json();
    let c = check(&m, "shard2.merge");
    assert_eq!(c["verdict"], "fail", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("not measured by client 2/3"),
        "{c}"
    );
    let s2 = &m["details"]["shards"][1];
    assert_eq!(s2["verdict"], "fail", "{s2}");
    // The two clients that measured it: two thirds of its requests.
    let med = s2["details"]["median_round"].as_u64().unwrap() as usize;
    let mut h = redlab::latency::histogram();
    for j in [&reports[0], &reports[2]] {
        h.add(round_hdr(&j["details"]["shards"][1]["details"], med))
            .unwrap();
    }
    assert_eq!(s2["details"]["latency"]["count"], h.len(), "{s2}");
    assert_eq!(check(&m, "shard1.perf.requests")["verdict"], "pass");
}

#[test]
fn merges_of_other_plans_twice_one_share_or_a_failed_client_say_so() {
    let (srv, _d) = server("master", &["--maxclients", "8"]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let perf = |client: &str, pipeline: &str, conns: &str, out: &str| {
        redlab(&[
            "--master",
            &url(srv.port),
            "--format",
            "json",
            "--output",
            &path(out),
            "perf",
            "-n",
            "301",
            "-P",
            pipeline,
            "-c",
            conns,
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--client",
            client,
        ])
    };
    for (client, p, out) in [
        ("1/2", "16", "a.json"),
        ("2/2", "16", "b.json"),
        ("2/2", "8", "p8.json"),
    ] {
        let r = perf(client, p, "1", out);
        assert_eq!(r.code, 0, "{client} -P {p}: {}", r.stderr);
    }
    assert_eq!(
        read(Path::new(&path("a.json")))["details"]["requests_per_round"],
        151
    );
    // One load: merged, every request of it counted.
    let r = redlab(&[
        "report",
        "--merge",
        &path("a.json"),
        &path("b.json"),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["details"]["latency"]["count"], 301);
    assert_eq!(j["details"]["requests_per_round"], 301);
    // Another -P: refused, naming what differs.
    let r = redlab(&["report", "--merge", &path("a.json"), &path("p8.json")]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("not one load") && r.stderr.contains("-P 16 in"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("-P 8 in"), "{}", r.stderr);
    // One share twice.
    let r = redlab(&["report", "--merge", &path("b.json"), &path("b.json")]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("both client 2/2"), "{}", r.stderr);
    // A client whose run failed: its share is named, the merge fails.
    let r = perf("2/2", "16", "20", "failed.json");
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = redlab(&[
        "report",
        "--merge",
        &path("a.json"),
        &path("failed.json"),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let c = check(&j, "merge.clients");
    assert_eq!(c["verdict"], "fail");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains("1 of 2 clients merged") && reason.contains("client 2/2 failed"),
        "{reason}"
    );
}

#[test]
fn ctrl_c_ends_the_wait_for_start_at_and_the_keys_go() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let (srv, _d) = server("master", &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlab"))
        .args([
            "--master",
            &url(srv.port),
            "--format",
            "json",
            "perf",
            "-n",
            "100",
            "--warmup",
            "20",
            "--client",
            "1/2",
            "--start-at",
            &soon(600),
        ])
        .env_remove("REDLAB_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its warm-up wrote keys, then it waits (the line says so; a run that
    // never waits ends its stderr without it and fails here).
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("(--start-at) to start the rounds"));
    assert!(waiting.is_some(), "perf never waited for --start-at");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_no_redlab_keys(&[srv.port]);
}
