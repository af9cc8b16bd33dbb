//! Breaking the lab on purpose and mending it: what `drill` does to the
//! processes redlab started (a `--spawn` lab, or `lab up`'s found through
//! its state file), and nothing else.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::{redis_server, Lab, LabState, ProcessState, Server};

impl Lab {
    /// The lab `lab up` left running, as found in its state: every process
    /// must still be the one it started. Nothing is killed when it is dropped.
    pub fn adopt(state: &LabState, password: Option<String>) -> Result<Lab> {
        if state.cluster.is_some() {
            bail!("the lab that is up is a cluster (`lab up --cluster`); drill breaks a master with replicas and Sentinels");
        }
        let server = |p: &ProcessState| -> Result<Server> {
            if !p.is_ours() {
                bail!(
                    "the lab's {} (pid {}, port {}) is not running: `redlab lab status` shows the lab, \
                     `redlab lab down && redlab lab up` restarts it",
                    p.name,
                    p.pid,
                    p.port
                );
            }
            Ok(adopted(&state.dir, p))
        };
        let Some((first, rest)) = state.nodes.split_first() else {
            bail!("the lab state lists no node");
        };
        Ok(Lab {
            master: server(first)?,
            replicas: rest.iter().map(server).collect::<Result<_>>()?,
            sentinels: state.sentinels.iter().map(server).collect::<Result<_>>()?,
            dir: state.dir.clone(),
            timeouts: state.timeouts,
            backlog: state.backlog_bytes,
            password,
            adopted: true,
            _temp: None,
        })
    }

    /// Found running (`lab up`'s) rather than started by this process.
    pub fn is_adopted(&self) -> bool {
        self.adopted
    }

    /// The data nodes, the one started as master first.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        std::iter::once(&self.master).chain(self.replicas.iter())
    }

    /// Data node `i` in `servers()` order.
    pub fn server_mut(&mut self, i: usize) -> &mut Server {
        if i == 0 {
            &mut self.master
        } else {
            &mut self.replicas[i - 1]
        }
    }

    /// Start data node `i` again, the same way (port, config file, data
    /// dir), after it died; an adopted lab's stays running after redlab.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        let adopted = self.adopted;
        let s = self.server_mut(i);
        s.respawn()?;
        let ready = wait_answering(s.port, Duration::from_secs(10)).await;
        if adopted {
            s.detach();
        }
        ready.with_context(|| format!("restarting {} (log {})", s.name, s.log.display()))
    }

    /// `restart` without waiting for it to answer (from a `Drop`).
    pub fn restart_now(&mut self, i: usize) -> Result<()> {
        let adopted = self.adopted;
        let s = self.server_mut(i);
        s.respawn()?;
        if adopted {
            s.detach();
        }
        Ok(())
    }
}

fn adopted(dir: &Path, p: &ProcessState) -> Server {
    Server {
        name: p.name.clone(),
        port: p.port,
        pid: p.pid,
        log: dir.join(format!("{}.log", p.name)),
        argv: p.argv.iter().map(Into::into).collect(),
        bin: p
            .bin
            .clone()
            .or_else(|| redis_server().ok())
            .unwrap_or_else(|| "redis-server".into()),
        start: p.start_time,
        child: None,
    }
}

impl Server {
    /// Whether the process still runs (not exited, not a zombie).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => ProcessState::of(self).is_ours(),
        }
    }

    /// SIGKILL, and reap it when it is our child: a crash.
    pub fn crash(&mut self) -> Result<()> {
        self.signal(Signal::SIGKILL)?;
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        Ok(())
    }

    /// SIGTERM (a clean shutdown: it saves if `save` is set), bounded; then SIGKILL.
    pub async fn terminate(&mut self, bound: Duration) -> Result<()> {
        let _ = self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGTERM)?;
        let deadline = Instant::now() + bound;
        while self.is_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.is_running() {
            self.crash()?;
        } else if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        Ok(())
    }

    /// Run the same command line again (it must have exited).
    pub fn respawn(&mut self) -> Result<()> {
        if self.argv.is_empty() {
            bail!(
                "{} cannot be restarted: the lab was started by an older redlab; \
                 `redlab lab down && redlab lab up` starts one that can",
                self.name
            );
        }
        let bin = self.bin.clone();
        let mut cmd = Command::new(&bin);
        cmd.args(&self.argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("restarting {} for {}", bin.display(), self.name))?;
        self.pid = child.id();
        self.start = super::binary::start_time(child.id());
        self.child = Some(child);
        Ok(())
    }
}

/// Wait, without blocking the runtime, until 127.0.0.1:port answers PING.
pub async fn wait_answering(port: u16, bound: Duration) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + bound;
    loop {
        let probe = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(b"PING\r\n").await?;
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).await?;
            Ok::<bool, std::io::Error>(
                buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
            )
        };
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_millis(300), probe).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("127.0.0.1:{port} does not answer PING after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
