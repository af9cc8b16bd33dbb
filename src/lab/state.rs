//! What `lab up` leaves on disk so that `lab down` and `lab status` find
//! exactly the processes it started.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// What `lab up` leaves behind for `lab down` and `lab status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub dir: PathBuf,
    pub nodes: Vec<ProcessState>,
    /// Sentinels watching the master (`lab up --sentinels N`).
    #[serde(default)]
    pub sentinels: Vec<ProcessState>,
    /// Their timeouts, when there are Sentinels.
    #[serde(default)]
    pub timeouts: Option<super::SentinelTimeouts>,
    /// `repl-backlog-size` when set, bytes.
    #[serde(default)]
    pub backlog_bytes: Option<u64>,
    /// A cluster lab (`lab up --cluster`): its shape. Its nodes are named
    /// `shard1.master`, `shard1.replica1`, ...
    #[serde(default)]
    pub cluster: Option<super::cluster::Shape>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessState {
    pub name: String,
    pub port: u16,
    pub pid: u32,
    /// The arguments it was started with (after the binary), to restart it
    /// the same way; empty in a state written by an older redlab.
    #[serde(default)]
    pub argv: Vec<String>,
    /// Its start time in clock ticks since boot: the pid is ours only while
    /// the process of that pid started then (pids get reused, and a server
    /// names itself as it likes: valkey-server, redis-server, a renamed copy).
    #[serde(default)]
    pub start_time: Option<u64>,
    /// The server binary it runs; null in a state written by an older redlab.
    #[serde(default)]
    pub bin: Option<PathBuf>,
}

impl ProcessState {
    pub(super) fn of(s: &super::Server) -> ProcessState {
        ProcessState {
            name: s.name.clone(),
            port: s.port,
            pid: s.pid,
            argv: s
                .argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            start_time: s.start,
            bin: Some(s.bin.clone()),
        }
    }

    /// Alive and still the process we started: the same pid with the same
    /// start time (a state from an older redlab: a server on that port).
    pub fn is_ours(&self) -> bool {
        if is_zombie(self.pid) {
            return false;
        }
        match self.start_time {
            Some(t) => super::binary::start_time(self.pid) == Some(t),
            None => std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c).replace('\0', " ");
                    c.contains("-server") && c.contains(&format!(":{}", self.port))
                })
                .unwrap_or(false),
        }
    }

    /// Stop it whatever it calls itself: `SHUTDOWN NOSAVE` (a server whose
    /// `dir` is gone ignores SIGTERM, its final save failing), then SIGTERM,
    /// then SIGKILL, each bounded. Whether it was running; an error when it
    /// still runs after all that.
    pub fn stop(&self, password: Option<&str>) -> Result<bool> {
        if !self.is_ours() {
            return Ok(false);
        }
        let pid = Pid::from_raw(self.pid as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let gone = |bound: Duration| {
            let deadline = Instant::now() + bound;
            while self.is_ours() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            !self.is_ours()
        };
        shutdown_nosave(self.port, password);
        if gone(Duration::from_secs(5)) {
            return Ok(true);
        }
        let _ = kill(pid, Signal::SIGTERM);
        if gone(Duration::from_secs(5)) {
            return Ok(true);
        }
        let _ = kill(pid, Signal::SIGKILL);
        if gone(Duration::from_secs(5)) {
            return Ok(true);
        }
        anyhow::bail!(
            "{} (pid {}, port {}) still runs after SHUTDOWN NOSAVE, SIGTERM and SIGKILL",
            self.name,
            self.pid,
            self.port
        )
    }
}

/// `SHUTDOWN NOSAVE` on 127.0.0.1:port (after AUTH when there is a
/// password), without waiting for an answer: a server that obeys closes the
/// connection.
fn shutdown_nosave(port: u16, password: Option<&str>) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(500),
    ) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let resp = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        out
    };
    let mut msg = String::new();
    if let Some(p) = password {
        msg.push_str(&resp(&["AUTH", p]));
    }
    msg.push_str(&resp(&["SHUTDOWN", "NOSAVE"]));
    if s.write_all(msg.as_bytes()).is_ok() {
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// `$REDLAB_STATE_DIR`, else `$XDG_STATE_HOME/redlab`, else `~/.local/state/redlab`.
pub fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("redlab");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/redlab")
}

pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("lab.json")
}

pub fn load_state(state_dir: &Path) -> Result<Option<LabState>> {
    let path = state_file(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn save_state(state_dir: &Path, state: &LabState) -> Result<()> {
    let path = state_file(state_dir);
    std::fs::write(&path, serde_json::to_string_pretty(state)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Marks a data folder as the lab's own, so that `lab down` removes only that.
const MARKER: &str = ".redlab-lab";

/// Take `dir` for the lab's data: new, empty, or already the lab's.
pub fn claim_dir(dir: &Path) -> Result<()> {
    let foreign = dir.is_dir()
        && !dir.join(MARKER).exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if foreign {
        anyhow::bail!(
            "{} exists and is not a redlab lab's: choose another --state-dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `redlab lab up`; removed by `redlab lab down`\n",
    )
    .with_context(|| format!("writing in {}", dir.display()))
}

/// Remove the lab's data folder, and nothing that is not marked as the lab's.
pub fn release_dir(dir: &Path) -> Result<()> {
    if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_ours_by_pid_and_start_time_whatever_its_name() {
        let pid = std::process::id();
        let me = |start_time| ProcessState {
            name: "master".into(),
            port: 1,
            pid,
            argv: Vec::new(),
            start_time,
            bin: None,
        };
        let started = crate::lab::binary::start_time(pid);
        assert!(started.is_some());
        assert!(
            me(started).is_ours(),
            "this test process, by pid and start time"
        );
        assert!(
            !me(started.map(|t| t + 1)).is_ours(),
            "a reused pid is not ours"
        );
    }
}
