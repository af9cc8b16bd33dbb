//! Local master + replicas from `redis-server`, configured from the same
//! `redis-conf/` files that docker-compose.yml mounts.

pub use crate::topology::loopback_topology;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub mod binary;
pub mod cluster;
mod control;
mod roles;
pub mod sentinel;
mod state;

pub use cluster::{ClusterLab, ClusterLabOptions};
pub use sentinel::SentinelTimeouts;

pub use state::{
    claim_dir, default_state_dir, load_state, release_dir, save_state, state_file, LabState,
    ProcessState,
};

use crate::client::Conn;
use crate::topology::Topology;

pub const DEFAULT_BASE_PORT: u16 = 6379;
pub const MASTER_CONF: &str = include_str!("../../redis-conf/master.conf");
pub const REPLICA_CONF: &str = include_str!("../../redis-conf/replica.conf");
pub const CLUSTER_CONF: &str = include_str!("../../redis-conf/cluster.conf");

/// How long a lab may take to start and reach sync.
const START_BOUND: Duration = Duration::from_secs(30);

/// The server binary: `--server-bin`, $REDIS_SERVER, or redis-server on PATH.
pub fn redis_server() -> Result<PathBuf> {
    binary::server_binary()
}

/// A port the OS says is free now.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Whether a server could not bind `port` now. std binds with SO_REUSEADDR
/// on Unix, as redis-server and valkey-server do: a port held only by closed
/// connections in TIME-WAIT is free to them, and so it is here (a cluster
/// lab also keeps its ports out of the ephemeral range, where a live
/// outgoing connection may hold one: `cluster::ports`).
fn port_in_use(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// One redis-server process. An attached one is killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    pub port: u16,
    pub pid: u32,
    pub log: PathBuf,
    /// Everything after the binary: how to start it again (`control`).
    argv: Vec<OsString>,
    /// The binary it runs, to start it again the same.
    bin: PathBuf,
    /// Its start time (`binary::start_time`): with the pid, this process and no other.
    start: Option<u64>,
    child: Option<Child>,
}

impl Server {
    /// Start `redis-server <conf> --port P --bind 127.0.0.1 --dir D ... extra`.
    pub fn spawn(
        dir: &Path,
        name: &str,
        port: u16,
        conf: &str,
        extra: &[String],
    ) -> Result<Server> {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let conf_path = dir.join(format!("{name}.conf"));
        write_private(&conf_path, conf)?;
        let log = dir.join(format!("{name}.log"));
        let mut argv: Vec<OsString> = vec![conf_path.into()];
        for a in ["--port", &port.to_string(), "--bind", "127.0.0.1"] {
            argv.push(a.into());
        }
        argv.extend([
            "--daemonize".into(),
            "no".into(),
            "--dir".into(),
            data.into(),
        ]);
        argv.extend(["--logfile".into(), log.clone().into()]);
        argv.extend(extra.iter().map(OsString::from));
        Server::launch(name, port, log, argv)
    }

    /// Run `redis-server argv...` as a child in its own process group.
    fn launch(name: &str, port: u16, log: PathBuf, argv: Vec<OsString>) -> Result<Server> {
        let bin = redis_server()?;
        let mut cmd = Command::new(&bin);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Own process group: a Ctrl-C meant for redlab reaches redlab, which stops the lab in order.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} for {name}", bin.display()))?;
        Ok(Server {
            name: name.to_string(),
            port,
            pid: child.id(),
            log,
            argv,
            start: binary::start_time(child.id()),
            bin,
            child: Some(child),
        })
    }

    /// Spawn on a free port and wait until it answers, retrying if the port was taken meanwhile.
    pub fn start(dir: &Path, name: &str, conf: &str, extra: &[String]) -> Result<Server> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut s = Server::spawn(dir, name, free_port()?, conf, extra)?;
            match s.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(s),
                Err(e) if attempt < 3 && is_port_clash(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until it answers PING (or NOAUTH, which also means it is up).
    pub fn wait_ready(&mut self, bound: Duration) -> Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let mut err = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                bail!(
                    "{} (127.0.0.1:{}): redis-server exited ({status}) at start: {}{}",
                    self.name,
                    self.port,
                    err.trim(),
                    log_tail(&self.log)
                );
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} (127.0.0.1:{}): not answering PING after {bound:?}{}",
                    self.name,
                    self.port,
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        kill(Pid::from_raw(self.pid as i32), sig)
            .with_context(|| format!("sending {sig} to {} (pid {})", self.name, self.pid))
    }

    /// SIGSTOP: it keeps accepting TCP (the kernel queues) but never answers.
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// Kill and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Leave the process running after redlab exits (`lab up`).
    fn detach(&mut self) {
        self.child.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    if tail.is_empty() {
        String::new()
    } else {
        let lines: Vec<&str> = tail.into_iter().rev().collect();
        format!(" (log {}: {})", log.display(), lines.join(" | "))
    }
}

#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    pub replicas: usize,
    /// Consecutive ports from here; None takes free ports.
    pub base_port: Option<u16>,
    /// Data, config and logs; None uses a temporary dir removed with the lab.
    pub dir: Option<PathBuf>,
    /// Sets requirepass and masterauth on every node.
    pub password: Option<String>,
    pub master_args: Vec<String>,
    pub replica_args: Vec<String>,
    /// Sentinels watching the master (0: none), started once the replicas are in sync.
    pub sentinels: usize,
    /// Their timeouts (and the data nodes' repl-timeout) when there are Sentinels.
    pub sentinel_timeouts: SentinelTimeouts,
    /// `repl-backlog-size` of every data node, bytes (None: Redis's default, 1 MB).
    pub backlog: Option<u64>,
}

/// A master and its replicas. Dropping it stops them (unless detached).
#[derive(Debug)]
pub struct Lab {
    pub master: Server,
    pub replicas: Vec<Server>,
    /// Sentinels watching the master; empty without `--sentinels`.
    pub sentinels: Vec<Server>,
    pub dir: PathBuf,
    /// The Sentinels' timeouts, when it has Sentinels.
    pub timeouts: Option<SentinelTimeouts>,
    /// `repl-backlog-size` when set, bytes.
    pub backlog: Option<u64>,
    password: Option<String>,
    /// Found running (`lab up`'s), not started here: nothing is killed on
    /// drop, and a process restarted through it is left running.
    adopted: bool,
    _temp: Option<tempfile::TempDir>,
}

impl Lab {
    pub async fn start(opts: LabOptions) -> Result<Lab> {
        redis_server()?;
        let (dir, temp) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("redlab-lab-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // Free ports can be taken between the check and redis-server's bind: retry on fresh ones.
        let attempts = if opts.base_port.is_some() { 1 } else { 3 };
        let mut attempt = 0;
        let (master, replicas) = loop {
            attempt += 1;
            let ports = pick_ports(opts.base_port, opts.replicas + 1)?;
            match spawn_all(&dir, &ports, &opts) {
                Err(e) if attempt < attempts && is_port_clash(&e) => continue,
                other => break other?,
            }
        };
        let mut lab = Lab {
            master,
            replicas,
            sentinels: Vec::new(),
            dir,
            timeouts: None,
            backlog: opts.backlog,
            password: opts.password.clone(),
            adopted: false,
            _temp: temp,
        };
        lab.wait_in_sync(START_BOUND).await?;
        if opts.sentinels > 0 {
            sentinel::start(&mut lab, &opts).await?;
        }
        Ok(lab)
    }

    pub fn topology(&self) -> Topology {
        let mut nodes = vec![(self.master.name.as_str(), self.master.port)];
        nodes.extend(self.replicas.iter().map(|r| (r.name.as_str(), r.port)));
        let mut topo = loopback_topology(&nodes, self.password.as_deref());
        if !self.sentinels.is_empty() {
            topo.sentinel = Some(sentinel::set_of(&self.sentinels));
        }
        topo
    }

    /// Wait until every replica's link is up and its acknowledged offset
    /// equals the master's.
    pub async fn wait_in_sync(&self, bound: Duration) -> Result<()> {
        wait_in_sync(&self.topology(), bound).await
    }

    /// Leave the processes running; returns what `lab down` needs.
    pub fn detach(mut self) -> LabState {
        let state = self.state();
        self.master.detach();
        self.replicas.iter_mut().for_each(Server::detach);
        self.sentinels.iter_mut().for_each(Server::detach);
        state
    }

    /// What `lab down` and `lab status` need to find these processes.
    pub fn state(&self) -> LabState {
        let mut nodes = vec![ProcessState::of(&self.master)];
        nodes.extend(self.replicas.iter().map(ProcessState::of));
        LabState {
            dir: self.dir.clone(),
            nodes,
            sentinels: self.sentinels.iter().map(ProcessState::of).collect(),
            timeouts: self.timeouts,
            backlog_bytes: self.backlog,
            cluster: None,
        }
    }
}

fn spawn_all(dir: &Path, ports: &[u16], opts: &LabOptions) -> Result<(Server, Vec<Server>)> {
    // The password goes into the (0600) config file, not onto the command
    // line where `ps` would show it.
    let auth = match &opts.password {
        Some(p) => format!("\nrequirepass {0}\nmasterauth {0}\n", conf_quote(p)),
        None => String::new(),
    };
    let master_conf = format!("{MASTER_CONF}{auth}");
    let replica_conf = format!("{REPLICA_CONF}{auth}");
    let common = sentinel::data_args(opts);
    let mut master_args = common.clone();
    master_args.extend(opts.master_args.iter().cloned());
    let mut master = Server::spawn(dir, "master", ports[0], &master_conf, &master_args)?;
    master.wait_ready(Duration::from_secs(10))?;
    let mut replicas = Vec::new();
    for (i, port) in ports[1..].iter().enumerate() {
        let mut args = vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            ports[0].to_string(),
        ];
        args.extend(common.iter().cloned());
        args.extend(opts.replica_args.iter().cloned());
        replicas.push(Server::spawn(
            dir,
            &format!("replica{}", i + 1),
            *port,
            &replica_conf,
            &args,
        )?);
    }
    for r in &mut replicas {
        r.wait_ready(Duration::from_secs(10))?;
    }
    Ok((master, replicas))
}

/// A config value in double quotes, as redis.conf reads it.
fn conf_quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Write a file only its owner can read (it may hold a password).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn is_port_clash(e: &anyhow::Error) -> bool {
    let s = format!("{e:#}");
    s.contains("Address already in use") || s.contains("bind")
}

/// Bounded wait for a topology to be in sync (used by the lab and tests).
pub async fn wait_in_sync(topo: &Topology, bound: Duration) -> Result<()> {
    let deadline = Instant::now() + bound;
    let timeout = Duration::from_secs(2);
    let mut master = Conn::connect(&topo.master, timeout).await?;
    let mut last = String::new();
    while Instant::now() < deadline {
        let info = master.info("replication").await?;
        let lines = info.replicas();
        let offset = info.repl_offset();
        let synced = topo.replicas.iter().all(|r| {
            lines.iter().any(|l| {
                l.port == r.port()
                    && l.state == crate::client::LinkState::Online
                    && l.offset >= offset
            })
        });
        if synced {
            let mut all_up = true;
            for r in &topo.replicas {
                let ok = match Conn::connect(r, timeout).await {
                    Ok(mut c) => c
                        .info("replication")
                        .await
                        .map(|i| i.link_up() && !i.syncing())
                        .unwrap_or(false),
                    Err(_) => false,
                };
                all_up &= ok;
            }
            // After a diskless full sync the master streams to a replica only
            // once that replica's first REPLCONF ACK arrives (up to a second
            // later), even though INFO already says online. A replicated
            // PUBLISH acknowledged by every replica proves the stream flows.
            if all_up && stream_flows(&mut master, topo.replicas.len(), deadline).await? {
                return Ok(());
            }
        }
        last = format!("master offset {offset}, replicas {lines:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("replicas did not reach the master's offset within {bound:?}: {last}")
}

async fn stream_flows(master: &mut Conn, replicas: usize, deadline: Instant) -> Result<bool> {
    if replicas == 0 {
        return Ok(true);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    master
        .query::<u64>(
            redis::cmd("PUBLISH")
                .arg(format!("{}lab:sync", crate::namespace::root()))
                .arg("1"),
        )
        .await?;
    let acked: u64 = master
        .query_for(
            redis::cmd("WAIT")
                .arg(replicas)
                .arg(left.as_millis() as u64),
            left,
        )
        .await?;
    Ok(acked as usize >= replicas)
}

/// The most replicas a lab may have: one port each, above the privileged ones.
pub use crate::topology::MAX_REPLICAS;

fn pick_ports(base: Option<u16>, n: usize) -> Result<Vec<u16>> {
    if n > MAX_REPLICAS + 1 {
        bail!(
            "{} replicas is more than a local lab can hold (at most {MAX_REPLICAS}: each is a \
             redis-server process on a port of its own)",
            n - 1
        );
    }
    match base {
        Some(b) => {
            let last = u16::try_from(n - 1)
                .ok()
                .and_then(|k| b.checked_add(k))
                .filter(|_| b > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--base-port {b} leaves no room for {n} consecutive ports (at most 65535)"
                    )
                })?;
            let ports: Vec<u16> = (b..=last).collect();
            for &p in &ports {
                if !port_in_use(p) {
                    continue;
                }
                // Taken at the bind, then only TIME-WAIT by the look: a
                // connection that was closing. Free if a second bind says so.
                let holder = binary::port_holder(p);
                if holder.ends_with("TIME-WAIT") && !port_in_use(p) {
                    continue;
                }
                bail!(
                    "port {p} is in use ({holder}): is a lab already up (`redlab lab status`)? Pick another --base-port"
                );
            }
            Ok(ports)
        }
        None => {
            let mut ports: Vec<u16> = Vec::new();
            while ports.len() < n {
                let p = free_port()?;
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            Ok(ports)
        }
    }
}
