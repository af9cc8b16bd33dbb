//! No Docker engine runs here: check that docker-compose.yml describes the
//! same topology as the local lab.
use std::path::Path;

use serde_json::Value;

fn compose() -> Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml"))
            .unwrap();
    // YAML read into JSON values: one value model for every test.
    serde_saphyr::from_str(&text).unwrap()
}

fn conf_value(conf: &str, key: &str) -> Option<String> {
    conf.lines()
        .map(str::trim)
        .find(|l| l.split_whitespace().next() == Some(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
}

#[test]
fn compose_agrees_with_the_lab() {
    let c = compose();
    let services = c["services"].as_object().unwrap();
    assert_eq!(services.len(), 4);
    let mut host_ports = Vec::new();
    for (name, svc) in services {
        let name = name.as_str();
        assert!(
            svc["image"].as_str().unwrap().starts_with("redis:7"),
            "{name}"
        );
        let ports = svc["ports"].as_array().unwrap();
        let p = ports[0].as_str().unwrap();
        assert!(
            p.starts_with("127.0.0.1:"),
            "{name} publishes beyond loopback: {p}"
        );
        let host_port: u16 = p.split(':').nth(1).unwrap().parse().unwrap();
        host_ports.push(host_port);
        for v in svc["volumes"].as_array().unwrap() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
            assert!(path.is_file(), "{name} mounts {src}, which does not exist");
            assert!(
                src.starts_with("./redis-conf/"),
                "{name} mounts {src} from outside redis-conf/"
            );
            let conf = std::fs::read_to_string(&path).unwrap();
            if name == "redis-master" {
                assert!(conf_value(&conf, "replicaof").is_none());
            } else {
                let target = conf_value(&conf, "replicaof").expect("replica config has replicaof");
                let (svc_name, port) = target.split_once(' ').unwrap();
                assert!(
                    services.contains_key(svc_name),
                    "replicaof {svc_name} is not a service"
                );
                assert_eq!(port, "6379");
                let cmd: Vec<&str> = svc["command"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let announce = cmd
                    .iter()
                    .position(|a| *a == "--replica-announce-port")
                    .expect("announce port");
                assert_eq!(
                    cmd[announce + 1].parse::<u16>().unwrap(),
                    host_port,
                    "{name} announces another port"
                );
                assert!(cmd.contains(&"--replica-announce-ip"));
            }
        }
    }
    host_ports.sort();
    let base = redlab::lab::DEFAULT_BASE_PORT;
    let lab_ports: Vec<u16> = (0..4).map(|i| base + i).collect();
    assert_eq!(
        host_ports, lab_ports,
        "compose ports differ from the lab's defaults"
    );
    let defaults: Vec<u16> = redlab::topology::DEFAULT_REPLICA_PORTS.to_vec();
    assert_eq!(&host_ports[1..], &defaults[..]);
}

#[test]
fn the_lab_embeds_the_shipped_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("redis-conf");
    assert_eq!(
        std::fs::read_to_string(dir.join("master.conf")).unwrap(),
        redlab::lab::MASTER_CONF
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("replica.conf")).unwrap(),
        redlab::lab::REPLICA_CONF
    );
}
