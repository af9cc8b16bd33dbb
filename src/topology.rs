//! Which nodes redlab talks to: named, addressed, with credentials kept out of
//! every message and report.

use anyhow::{bail, Context, Result};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use serde::{Deserialize, Serialize};

pub mod slot;

/// The most replicas a topology may have: a lab's one port each above the
/// privileged ones, and how far chain discovery goes.
pub const MAX_REPLICAS: usize = 1000;

pub const DEFAULT_MASTER: &str = "redis://127.0.0.1:6379";
/// The node a cluster is discovered from without --master (`lab up --cluster`'s first).
pub const DEFAULT_CLUSTER_SEED: &str = "redis://127.0.0.1:7000";
pub const DEFAULT_REPLICA_PORTS: [u16; 3] = [6380, 6381, 6382];

/// The role redlab was given for a node. The default (master) is only
/// there for data that derives Default to read reports saved without it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Master,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Redis server as redlab addresses it.
#[derive(Clone)]
pub struct Node {
    /// `master`, `replica1`, ...: used in every message.
    pub name: String,
    pub role: Role,
    pub info: ConnectionInfo,
    /// A Redis Cluster node: its connections send READONLY, so that a
    /// replica serves reads of its shard's slots instead of redirecting them.
    pub cluster: bool,
    /// A chained replica found by discovery: the name of the replica it
    /// follows (whose own INFO lists it), None for the master's own.
    pub via: Option<String>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.addr())
    }
}

impl Node {
    pub fn parse(name: &str, role: Role, url: &str) -> Result<Node> {
        let url = url.trim();
        let shown = redact_url(url);
        if url.bytes().all(|b| b.is_ascii_digit()) && !url.is_empty() {
            bail!(
                "{name}: '{url}' looks like a port number, not a URL: write redis://127.0.0.1:{url} \
                 (or the host it runs on)"
            );
        }
        let url = match url.split_once("://") {
            Some(("redis" | "rediss" | "valkey" | "valkeys", _)) => url.to_string(),
            Some((scheme, _)) => bail!(
                "{name}: '{shown}' is a {scheme}:// URL: give redis://host:port (rediss:// for TLS)"
            ),
            None => format!("redis://{url}"),
        };
        if let Some(port) = url_port(&url) {
            if !(1..=65535).contains(&port) {
                bail!("{name}: port {port} in '{shown}' is out of range: a port is 1 to 65535");
            }
        }
        let info = url.as_str().into_connection_info().map_err(|e| {
            let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.to_string());
            anyhow::anyhow!(
                "{name}: '{shown}' is not a Redis URL ({detail}): write redis://[user:password@]host:port[/db]"
            )
        })?;
        if matches!(info.addr(), ConnectionAddr::Unix(_)) {
            bail!("{name}: unix sockets are not supported; give redis://host:port");
        }
        Ok(Node {
            name: name.to_string(),
            role,
            info,
            cluster: false,
            via: None,
        })
    }

    pub fn host(&self) -> &str {
        match self.info.addr() {
            ConnectionAddr::Tcp(h, _) | ConnectionAddr::TcpTls { host: h, .. } => h,
            _ => "?",
        }
    }

    pub fn port(&self) -> u16 {
        match self.info.addr() {
            ConnectionAddr::Tcp(_, p) | ConnectionAddr::TcpTls { port: p, .. } => *p,
            _ => 0,
        }
    }

    pub fn tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }

    /// `host:port`, never with credentials.
    pub fn addr(&self) -> String {
        host_port(self.host(), self.port())
    }

    /// `replica2 (127.0.0.1:6381)`
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.addr())
    }

    /// The same credentials, scheme and db at another address (for discovery).
    pub fn sibling(&self, name: &str, host: &str, port: u16) -> Node {
        let addr = match self.info.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_string(), port),
        };
        Node {
            name: name.to_string(),
            role: Role::Replica,
            info: self.info.clone().set_addr(addr),
            cluster: self.cluster,
            via: None,
        }
    }

    /// Apply --user/--password where the URL gave none.
    pub fn with_credentials(mut self, user: Option<&str>, password: Option<&str>) -> Node {
        if self.password().is_none() {
            if let Some(p) = password {
                let mut rs = self.info.redis_settings().clone().set_password(p);
                if let Some(u) = user {
                    rs = rs.set_username(u);
                }
                self.info = self.info.set_redis_settings(rs);
            }
        }
        self
    }

    pub fn password(&self) -> Option<&str> {
        self.info.redis_settings().password()
    }

    /// `redis://user@host` with no password from anywhere: the user would
    /// be dropped without a word (AUTH needs a password) and the run would
    /// go on as the default user.
    pub fn refuse_user_without_password(&self) -> Result<()> {
        let rs = self.info.redis_settings();
        if let (Some(user), None) = (rs.username(), rs.password()) {
            bail!(
                "{}: the URL names the user {user:?} but no password: give \
                 redis://{user}:PASSWORD@{}, or the password in REDLAB_PASSWORD (or --password)",
                self.label(),
                self.addr()
            );
        }
        Ok(())
    }

    pub fn db(&self) -> i64 {
        self.info.redis_settings().db()
    }
}

/// The port written in a URL, as a number (whatever its size), if any.
fn url_port(url: &str) -> Option<u64> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let port = if let Some(end) = hostport.strip_prefix('[') {
        end.split_once("]:")?.1
    } else {
        hostport.rsplit_once(':')?.1
    };
    port.parse().ok()
}

/// Whether two hosts name the same machine as far as loopback goes.
pub fn same_host(a: &str, b: &str) -> bool {
    let norm = |h: &str| match h.trim_matches(['[', ']']).to_ascii_lowercase().as_str() {
        "localhost" | "::1" | "0:0:0:0:0:0:0:1" => "loopback".to_string(),
        h if h.starts_with("127.") => "loopback".to_string(),
        other => other.to_string(),
    };
    norm(a) == norm(b)
}

/// A URL with any password replaced, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            let shown = if creds.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{}{}{}", &url[..s + 3], shown, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// How many replicas the master should have, and who said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaCount {
    /// The user listed them (`--replica`), or redlab started them (the lab).
    Given(usize),
    /// `--expect-replicas N` with discovered replicas.
    Asserted(usize),
    /// Discovered and not asserted: whatever the master lists now, which a
    /// lost replica silently leaves.
    NotAsserted,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub master: Node,
    pub replicas: Vec<Node>,
    /// The replica list must come from the master's INFO replication.
    pub discover: bool,
    pub expected: ReplicaCount,
    /// The Sentinels watching this master (`--sentinel`, or a lab's own).
    pub sentinel: Option<SentinelSet>,
}

/// The topology as the user described it (flags or environment).
#[derive(Debug, Clone, Default)]
pub struct TopologySpec {
    pub master: Option<String>,
    pub replicas: Vec<String>,
    pub discover: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `--expect-replicas N`.
    pub expect_replicas: Option<usize>,
    /// `--sentinel URL`s: find the master and replicas through Sentinel.
    pub sentinels: Vec<String>,
    /// `--master-name`: the name the Sentinels know the master by.
    pub master_name: Option<String>,
    /// `--cluster`: the master URL is a seed node of a Redis Cluster.
    pub cluster: bool,
    /// `--expect-shards N`: how many shards the cluster must have.
    pub expect_shards: Option<usize>,
}

impl Topology {
    /// The topology the flags describe. Discovery and Sentinel, which need
    /// the network, happen in `resolve`.
    pub fn from_spec(g: &TopologySpec) -> Result<Topology> {
        let user = g.user.as_deref();
        let pass = g.password.as_deref();
        let default = if g.cluster {
            DEFAULT_CLUSTER_SEED
        } else {
            DEFAULT_MASTER
        };
        let master_url = g.master.as_deref().unwrap_or(default);
        let master = Node::parse("master", Role::Master, master_url)?.with_credentials(user, pass);
        // A cluster's replicas are discovered too (from CLUSTER SHARDS).
        let discover = g.discover || g.cluster || (g.master.is_some() && g.replicas.is_empty());
        let replicas = if !g.replicas.is_empty() {
            if g.discover {
                bail!("--discover and --replica both given: use one or the other");
            }
            let mut v = Vec::new();
            for (i, url) in g
                .replicas
                .iter()
                .filter(|u| !u.trim().is_empty())
                .enumerate()
            {
                let name = format!("replica{}", i + 1);
                v.push(
                    Node::parse(&name, Role::Replica, url.trim())
                        .with_context(|| format!("--replica {}", redact_url(url)))?
                        .with_credentials(user, pass),
                );
            }
            v
        } else if discover {
            Vec::new()
        } else {
            DEFAULT_REPLICA_PORTS
                .iter()
                .enumerate()
                .map(|(i, p)| master.sibling(&format!("replica{}", i + 1), master.host(), *p))
                .collect()
        };
        let expected = match (discover, g.expect_replicas) {
            (true, Some(n)) => ReplicaCount::Asserted(n),
            (true, None) => ReplicaCount::NotAsserted,
            (false, Some(n)) if n != replicas.len() => bail!(
                "--expect-replicas {n} but {} given: give every replica with --replica, \
                 or drop --replica to discover them from the master",
                crate::text::plural(replicas.len() as u64, "replica")
            ),
            (false, _) => ReplicaCount::Given(replicas.len()),
        };
        let topo = Topology {
            master,
            replicas,
            discover,
            expected,
            sentinel: None,
        };
        topo.refuse_duplicates()?;
        for n in topo.nodes() {
            n.refuse_user_without_password()?;
        }
        Ok(topo)
    }

    /// One node given twice (a replica twice, the master as a replica,
    /// `localhost` and `127.0.0.1` of one port) would pass "2 of 2" while
    /// the second replica is never looked at: refused before anything runs.
    /// Aliases this cannot see (two names of one host) are caught by the
    /// survey, which compares run ids.
    pub fn refuse_duplicates(&self) -> Result<()> {
        let nodes: Vec<&Node> = self.nodes().collect();
        for (i, a) in nodes.iter().enumerate() {
            if let Some(b) = nodes[i + 1..]
                .iter()
                .find(|b| b.port() == a.port() && same_host(a.host(), b.host()))
            {
                bail!(
                    "{} and {} are the same node: give each node once",
                    a.label(),
                    b.label()
                );
            }
        }
        Ok(())
    }

    /// The replica count the master must have, when someone said so.
    pub fn expected_count(&self) -> Option<usize> {
        match self.expected {
            ReplicaCount::Given(n) | ReplicaCount::Asserted(n) => Some(n),
            ReplicaCount::NotAsserted => None,
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.master).chain(self.replicas.iter())
    }

    pub fn find_replica(&self, host: &str, port: u16) -> Option<&Node> {
        self.replicas
            .iter()
            .find(|r| r.port() == port && same_host(r.host(), host))
    }

    pub fn name_of(&self, host: &str, port: u16) -> Option<&str> {
        self.nodes()
            .find(|n| n.port() == port && same_host(n.host(), host))
            .map(|n| n.name.as_str())
    }
}

/// `host:port` as every report prints an address: an IPv6 host in
/// brackets (`[::1]:6379`), so the port cannot read as part of it.
pub fn host_port(host: &str, port: impl std::fmt::Display) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Lab processes on 127.0.0.1, the first one the master. The password is set
/// on the connection settings, never formatted into a URL.
pub fn loopback_topology(nodes: &[(&str, u16)], password: Option<&str>) -> Topology {
    let node = |(name, port): (&str, u16), role| {
        Node::parse(name, role, &format!("redis://127.0.0.1:{port}"))
            .expect("a loopback URL parses")
            .with_credentials(None, password)
    };
    Topology {
        master: node(nodes[0], Role::Master),
        replicas: nodes[1..].iter().map(|n| node(*n, Role::Replica)).collect(),
        discover: false,
        expected: ReplicaCount::Given(nodes.len() - 1),
        sentinel: None,
    }
}

/// The name the lab's Sentinels know its master by, and `--master-name`'s default.
pub const DEFAULT_MASTER_NAME: &str = "redlab";

/// The Sentinels that watch the master, and the name they know it by.
#[derive(Clone)]
pub struct SentinelSet {
    pub master_name: String,
    /// `sentinel1`, ...: a Sentinel is addressed like a node (its role is
    /// not meaningful), with the credentials of its own URL.
    pub nodes: Vec<Node>,
    /// What each Sentinel answered when the topology was resolved through
    /// them, kept for the health checks: `discover::sentinel::observed`
    /// reads it (the type lives there, with the look-ups; topology only
    /// carries it). None for a lab's own Sentinels.
    pub observed: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for SentinelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSet")
            .field("master_name", &self.master_name)
            .field("nodes", &self.nodes)
            .field("observed", &self.observed.is_some())
            .finish()
    }
}

impl SentinelSet {
    pub fn parse(urls: &[String], master_name: &str) -> Result<SentinelSet> {
        let mut nodes = Vec::new();
        for (i, url) in urls.iter().filter(|u| !u.trim().is_empty()).enumerate() {
            let name = format!("sentinel{}", i + 1);
            nodes.push(
                Node::parse(&name, Role::Replica, url.trim())
                    .with_context(|| format!("--sentinel {}", redact_url(url)))?,
            );
        }
        if nodes.is_empty() {
            bail!("--sentinel given without an address: give redis://host:port of a Sentinel");
        }
        Ok(SentinelSet {
            master_name: master_name.to_string(),
            nodes,
            observed: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_mistakes_get_redlabs_own_words() {
        let err = |u: &str| format!("{:#}", Node::parse("master", Role::Master, u).unwrap_err());
        assert!(
            err("26379").contains("looks like a port number"),
            "{}",
            err("26379")
        );
        assert!(err("http://h:6379").contains("is a http:// URL"));
        assert!(err("redis://h:70000").contains("port 70000"));
        assert!(!err("redis://h:70000").contains("InvalidClientConfig"));
        assert!(Node::parse("m", Role::Master, "localhost:6379").is_ok());
    }

    #[test]
    fn loopback_names_are_the_same_host() {
        assert!(same_host("localhost", "127.0.0.1"));
        assert!(!same_host("10.0.0.1", "127.0.0.1"));
    }
}
