//! No Docker engine runs here: docker-compose.cluster.yml is read as YAML
//! and held to the rules of the Compose Specification for every attribute
//! it uses (and to the engine's rule that a container sharing another's
//! network namespace cannot publish ports), then to the cluster lab's shape.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn compose() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.cluster.yml");
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_else(|| panic!("not a string: {x}")))
        .collect()
}

/// A Compose duration: `{value}{unit}` pairs, units us, ms, s, m, h.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["us", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u) && !rest[u.len()..].starts_with('s'));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// Short port syntax `[[IP:]HOST:]CONTAINER[/PROTOCOL]`, as (ip, host, container).
fn port(p: &str) -> (Option<&str>, Option<u16>, u16) {
    let p = p.split('/').next().unwrap();
    let parts: Vec<&str> = p.split(':').collect();
    let n = |s: &str| {
        s.parse::<u16>()
            .unwrap_or_else(|_| panic!("{p}: {s} is not a port"))
    };
    match parts.as_slice() {
        [c] => (None, None, n(c)),
        [h, c] => (None, Some(n(h)), n(c)),
        [ip, h, c] => (Some(*ip), Some(n(h)), n(c)),
        _ => panic!("{p} is not a short port mapping"),
    }
}

fn flag<'a>(cmd: &[&'a str], name: &str) -> &'a str {
    let i = cmd
        .iter()
        .position(|a| *a == name)
        .unwrap_or_else(|| panic!("{name} missing in {cmd:?}"));
    cmd[i + 1]
}

#[test]
fn the_cluster_compose_file_follows_the_compose_specification() {
    let c = compose();
    let top = c.as_object().unwrap();
    for k in top.keys() {
        assert!(
            ["name", "services", "networks", "volumes", "configs", "secrets", "include"]
                .contains(&k.as_str())
                || k.starts_with("x-"),
            "{k} is not a top-level element of the Compose Specification"
        );
    }
    assert!(
        !top.contains_key("version"),
        "version is obsolete in the Compose Specification"
    );
    let project = c["name"].as_str().unwrap();
    assert!(
        project.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && project.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_'),
        "project name {project}: lowercase letters, digits, dashes and underscores, starting with a letter or digit"
    );
    let services = c["services"].as_object().unwrap();
    let used = [
        "image",
        "command",
        "ports",
        "network_mode",
        "depends_on",
        "volumes",
        "healthcheck",
        "restart",
    ];
    for (name, svc) in services {
        assert!(
            name.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch)),
            "service name {name}"
        );
        for k in svc.as_object().unwrap().keys() {
            assert!(
                used.contains(&k.as_str()),
                "{name}: {k} is not checked by this test"
            );
        }
        assert!(
            svc["image"].as_str().unwrap().starts_with("redis:7"),
            "{name}"
        );
        strs(&svc["command"]);
        if let Some(mode) = svc["network_mode"].as_str() {
            let target = mode.strip_prefix("service:").unwrap_or_else(|| {
                assert!(
                    ["none", "host"].contains(&mode) || mode.starts_with("container:"),
                    "{name}: network_mode {mode}"
                );
                ""
            });
            assert!(
                target.is_empty() || services.contains_key(target),
                "{name}: network_mode names no service"
            );
            assert!(
                svc.get("networks").is_none(),
                "{name}: networks is not allowed with network_mode"
            );
            // The engine refuses: conflicting options: port publishing and the container network mode.
            assert!(
                svc.get("ports").is_none(),
                "{name}: a shared network namespace cannot publish ports"
            );
            let deps: Vec<String> = match &svc["depends_on"] {
                Value::Array(a) => a.iter().map(|d| d.as_str().unwrap().to_string()).collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            assert!(
                deps.iter().any(|d| d == target),
                "{name}: must start after {target}"
            );
        }
        match &svc["depends_on"] {
            Value::Null => {}
            Value::Array(a) => a.iter().for_each(|d| {
                assert!(
                    services.contains_key(d.as_str().unwrap()),
                    "{name} depends on {d}"
                )
            }),
            Value::Object(o) => {
                for (dep, how) in o {
                    assert!(services.contains_key(dep), "{name} depends on {dep}");
                    let cond = how["condition"].as_str().unwrap();
                    assert!(
                        [
                            "service_started",
                            "service_healthy",
                            "service_completed_successfully"
                        ]
                        .contains(&cond),
                        "{name}: condition {cond}"
                    );
                    if cond == "service_healthy" {
                        assert!(
                            services[dep].get("healthcheck").is_some(),
                            "{dep} has no healthcheck"
                        );
                    }
                }
            }
            other => panic!("{name}: depends_on {other}"),
        }
        if let Some(h) = svc.get("healthcheck") {
            let test = strs(&h["test"]);
            assert!(
                ["CMD", "CMD-SHELL", "NONE"].contains(&test[0]),
                "{name}: healthcheck test {test:?}"
            );
            for d in ["interval", "timeout", "start_period", "start_interval"] {
                if let Some(v) = h.get(d) {
                    assert!(
                        is_duration(v.as_str().unwrap()),
                        "{name}: {d} {v} is not a duration"
                    );
                }
            }
            assert!(h["retries"].as_u64().is_some(), "{name}: retries");
        }
        if let Some(r) = svc.get("restart") {
            let r = r.as_str().unwrap();
            assert!(
                ["no", "always", "unless-stopped"].contains(&r) || r.starts_with("on-failure"),
                "{name}: restart {r}"
            );
        }
        for v in svc.get("volumes").map(strs).unwrap_or_default() {
            let parts: Vec<&str> = v.split(':').collect();
            assert!(
                parts.len() == 3 && parts[2] == "ro",
                "{name}: {v} should be SOURCE:TARGET:ro"
            );
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(parts[0]);
            assert!(
                src.is_file(),
                "{name} mounts {}, which does not exist",
                parts[0]
            );
        }
    }
    // No dependency cycle: every service starts after the ones it depends on.
    let mut started: BTreeSet<&str> = BTreeSet::new();
    while started.len() < services.len() {
        let before = started.len();
        for (name, svc) in services {
            let deps: Vec<&str> = match &svc["depends_on"] {
                Value::Array(a) => a.iter().map(|d| d.as_str().unwrap()).collect(),
                Value::Object(o) => o.keys().map(String::as_str).collect(),
                _ => Vec::new(),
            };
            if deps.iter().all(|d| started.contains(d)) {
                started.insert(name);
            }
        }
        assert!(started.len() > before, "depends_on has a cycle");
    }
    assert!(
        is_duration("1s") && is_duration("1m30s") && is_duration("500ms") && !is_duration("1 s")
    );
}

#[test]
fn the_cluster_compose_file_has_the_labs_shape() {
    let c = compose();
    let services = c["services"].as_object().unwrap();
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("redis-conf/cluster.conf"),
    )
    .unwrap();
    assert_eq!(
        conf,
        redlab::lab::CLUSTER_CONF,
        "the lab embeds the shipped cluster.conf"
    );
    assert!(conf.lines().any(|l| l.trim() == "cluster-enabled yes"));
    // Every node: its port, announced as 127.0.0.1:<port> with a bus port, and published on loopback.
    let owner = services
        .iter()
        .find(|(_, s)| s.get("ports").is_some())
        .expect("one service publishes")
        .1;
    let published: BTreeMap<u16, u16> = strs(&owner["ports"])
        .into_iter()
        .map(|p| {
            let (ip, host, container) = port(p);
            assert_eq!(ip, Some("127.0.0.1"), "{p} is published beyond loopback");
            (container, host.unwrap())
        })
        .collect();
    let mut node_ports = Vec::new();
    for (name, svc) in services
        .iter()
        .filter(|(n, _)| n.starts_with("redis-node-"))
    {
        let cmd = strs(&svc["command"]);
        assert_eq!(cmd[0], "redis-server");
        let p: u16 = flag(&cmd, "--port").parse().unwrap();
        assert_eq!(flag(&cmd, "--cluster-announce-ip"), "127.0.0.1", "{name}");
        assert_eq!(
            flag(&cmd, "--cluster-announce-port")
                .parse::<u16>()
                .unwrap(),
            p,
            "{name}"
        );
        assert_eq!(
            flag(&cmd, "--cluster-announce-bus-port")
                .parse::<u16>()
                .unwrap(),
            p + 10000,
            "{name}"
        );
        assert_eq!(
            published.get(&p),
            Some(&p),
            "{name}: port {p} is not published as itself"
        );
        node_ports.push(p);
    }
    node_ports.sort();
    let shards = 3usize;
    let replicas = 1usize;
    let base = redlab::lab::cluster::DEFAULT_CLUSTER_BASE_PORT;
    assert_eq!(
        node_ports,
        (0..(shards * (1 + replicas)) as u16)
            .map(|i| base + i)
            .collect::<Vec<_>>()
    );
    // The join: every node, `replicas` per master.
    let init = strs(&services["cluster-init"]["command"]).join(" ");
    let create = init
        .split("redis-cli --cluster create")
        .nth(1)
        .expect("redis-cli --cluster create");
    let addrs: Vec<u16> = create
        .split_whitespace()
        .take_while(|a| !a.starts_with("--"))
        .map(|a| a.strip_prefix("127.0.0.1:").unwrap().parse().unwrap())
        .collect();
    assert_eq!(addrs, node_ports);
    assert!(create.contains(&format!("--cluster-replicas {replicas}")));
    // Formed already: nothing to do (an `up` after a `stop` must not fail).
    assert!(init.contains("cluster_state:ok ||"));
}
