//! The server binary a lab runs (any Redis-compatible one: redis-server,
//! valkey-server), what it supports, and the process facts that tell our
//! servers from others: a pid with its start time, and who holds a port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();

/// The binary `--server-bin` named, for every lab this process starts.
pub fn use_server_binary(path: PathBuf) {
    let _ = CHOSEN.set(path);
}

/// The server binary: `--server-bin`, else $REDIS_SERVER, else `redis-server`
/// (then `valkey-server`) on PATH.
pub fn server_binary() -> Result<PathBuf> {
    if let Some(p) = CHOSEN.get() {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("REDIS_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    on_path("redis-server")
        .or_else(|| on_path("valkey-server"))
        .context(
            "redis-server not found on PATH: install it (apt-get install redis-server, \
         brew install redis), name another compatible binary with --server-bin or \
         REDIS_SERVER (valkey-server), or run the topology with `docker compose up -d`",
        )
}

/// `(major, minor)` of the Redis commands `bin` implements, from `--version`
/// (Valkey 7.2 and later implement Redis 7.2's); None when it does not say.
pub fn binary_version(bin: &Path) -> Option<(u32, u32)> {
    type Seen = std::sync::Mutex<Vec<(PathBuf, Option<(u32, u32)>)>>;
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some((_, v)) = seen.lock().ok()?.iter().find(|(p, _)| p == bin) {
        return *v;
    }
    let out = Command::new(bin).arg("--version").output().ok();
    let v = out.and_then(|o| parse_version_line(&String::from_utf8_lossy(&o.stdout)));
    seen.lock().ok()?.push((bin.to_path_buf(), v));
    v
}

/// `Redis server v=6.2.14 sha=...` -> (6, 2); `Valkey server v=8.1.8` -> (7, 2).
fn parse_version_line(line: &str) -> Option<(u32, u32)> {
    let v = line.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor) = (it.next()??, it.next()??);
    if line.to_ascii_lowercase().starts_with("valkey") {
        return Some((7, 2));
    }
    Some((major, minor))
}

/// Whether the chosen binary takes `cluster-port` and `CLUSTER ADDSLOTSRANGE`
/// (Redis 7.0+); an unknown version is taken as a current one.
pub fn has_cluster_port() -> bool {
    server_binary()
        .ok()
        .and_then(|b| binary_version(&b))
        .is_none_or(|v| v >= (7, 0))
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// /proc/PID/stat): with the pid, it names one process, whatever it calls itself.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The kernel's ephemeral port range (outgoing connections take their local
/// port from it), from /proc/sys/net/ipv4/ip_local_port_range.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// What holds loopback port `port`, for a message: the listening process
/// (`pid 123 (redis-server)`) or the state of the connections using it.
pub fn port_holder(port: u16) -> String {
    let mut states = Vec::new();
    let mut listen_inode = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = f.get(1) else { continue };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p != Some(port) {
                continue;
            }
            let state = match f.get(3).copied().unwrap_or("") {
                "0A" => "listening",
                "01" => "an established connection",
                "06" => "a connection in TIME-WAIT",
                _ => "a connection",
            };
            if state == "listening" {
                listen_inode = f.get(9).map(|s| s.to_string());
            }
            if !states.contains(&state) {
                states.push(state);
            }
        }
    }
    if let Some(who) = listen_inode.and_then(|i| owner_of_socket(&i)) {
        return format!("{who} listens on it");
    }
    match states.is_empty() {
        true => "no socket the kernel lists here (a port of another network namespace?)".into(),
        false => format!("held by {}", states.join(", ")),
    }
}

/// `pid N (name)` of the process holding socket inode `inode`, when visible.
fn owner_of_socket(inode: &str) -> Option<String> {
    let target = format!("socket:[{inode}]");
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                let comm = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    Some("another user's process".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_the_binaries_own_words() {
        let redis6 =
            "Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=dff95a8e7a99d269";
        assert_eq!(parse_version_line(redis6), Some((6, 2)));
        let valkey =
            "Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64 build=7eb4ebc9d7e91f4e";
        assert_eq!(parse_version_line(valkey), Some((7, 2)));
        assert_eq!(parse_version_line("something else"), None);
    }

    #[test]
    fn this_process_has_a_start_time_and_a_dead_pid_none() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}
