//! Failures talking to a node, told apart so that checks and exit codes can
//! act on them, each with a message that says what to do.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Refused,
    Timeout,
    NotRedis,
    TlsMismatch,
    AuthRequired,
    AuthFailed,
    NoPermission,
    ReadOnly,
    OutOfMemory,
    MasterDown,
    Loading,
    /// Busy running a long script or function (BUSY): it answers nothing
    /// else until the script ends or is killed.
    Busy,
    /// Writes refused with MISCONF: a failed RDB save with
    /// stop-writes-on-bgsave-error (reads still work).
    Misconf,
    /// The server is at maxclients.
    MaxClients,
    /// Writes refused: min-replicas-to-write is not met.
    NoReplicas,
    /// The command (or subcommand) does not exist here: renamed away
    /// (`rename-command X ""`), removed by a provider, or newer than the server.
    UnknownCommand,
    /// The command exists but a setting disables it (`enable-debug-command no`,
    /// `enable-module-command no`).
    CommandDisabled,
    /// INFO answered without a section it was asked for: hidden by a
    /// managed service or a proxy (the message names the sections).
    InfoHidden,
    Closed,
    Other,
}

/// An error from one node, naming it and the operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{node} ({addr}): {message}")]
pub struct NodeError {
    pub node: String,
    pub addr: String,
    pub kind: ErrorKind,
    /// One line: what happened and what to do.
    pub message: String,
}

impl NodeError {
    pub fn new(node: &str, addr: &str, kind: ErrorKind, message: impl Into<String>) -> NodeError {
        NodeError {
            node: node.to_string(),
            addr: addr.to_string(),
            kind,
            message: message.into(),
        }
    }

    /// Why a step that needs `command` cannot run on this node, when the
    /// server refused the command itself (renamed, disabled, denied by ACL),
    /// with how to allow it; None for any other failure. A restricted server
    /// is not a broken one: callers skip the step with this reason.
    pub fn restricted(&self, command: &str) -> Option<String> {
        let cmd = command.to_ascii_uppercase();
        let word = cmd.split_whitespace().next().unwrap_or("").to_string();
        let on = &self.node;
        Some(match self.kind {
            ErrorKind::NoPermission => format!(
                "{cmd} is denied to redlab's ACL user on {on} (NOPERM): allow it with ACL SETUSER <user> +{}",
                word.to_ascii_lowercase()
            ),
            ErrorKind::UnknownCommand => format!(
                "{cmd} is not available on {on} (renamed by rename-command, removed by the provider, or newer than this server): allow {word} to run this step"
            ),
            ErrorKind::CommandDisabled => format!(
                "{cmd} is disabled on {on} ({}): enable it to run this step",
                disabled_by(&word)
            ),
            ErrorKind::InfoHidden => format!("{on}: {}", self.message),
            _ => return None,
        })
    }

    /// Whether redlab cannot go on at all when this is the master's error.
    pub fn is_access(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::AuthRequired | ErrorKind::AuthFailed | ErrorKind::NoPermission
        )
    }
}

pub fn timeout_message(op: &str, timeout: Duration, tls: bool) -> String {
    let hint = if tls {
        "the server may not speak TLS (then use redis://), or the process may be stopped"
    } else {
        "the process may be stopped, busy (loading a large dataset, a slow command), not Redis, or expect TLS (try rediss://)"
    };
    format!(
        "no answer to {op} within {} ({hint})",
        humantime::format_duration(timeout)
    )
}

/// Classify a redis-crate error (its text, since error kinds alone do not
/// separate e.g. an HTTP server from a TLS listener).
pub fn classify(
    op: &str,
    err: &redis::RedisError,
    tls: bool,
    bound: Duration,
) -> (ErrorKind, String) {
    let text = err.to_string();
    let code = err.code().unwrap_or("");
    let has = |s: &str| text.contains(s);
    match code {
        "NOAUTH" => {
            return (
                ErrorKind::AuthRequired,
                "authentication required: give --password, REDLAB_PASSWORD or redis://:PASSWORD@host:port".into(),
            )
        }
        "WRONGPASS" => {
            return (
                ErrorKind::AuthFailed,
                "authentication failed: wrong user or password (check --user/--password)".into(),
            )
        }
        "NOPERM" => {
            return (
                ErrorKind::NoPermission,
                format!("the ACL user may not run {op}: grant it (e.g. ACL SETUSER <user> +{})", first_word(op)),
            )
        }
        "READONLY" => {
            return (
                ErrorKind::ReadOnly,
                format!("{op} refused: this node is a read-only replica, not a master"),
            )
        }
        "OOM" => {
            return (
                ErrorKind::OutOfMemory,
                format!("{op} refused: used memory is over maxmemory and the policy is noeviction; free memory or raise maxmemory"),
            )
        }
        "MASTERDOWN" => {
            return (
                ErrorKind::MasterDown,
                format!("{op} refused with MASTERDOWN: the replica lost its master and replica-serve-stale-data is no"),
            )
        }
        "NOREPLICAS" => {
            return (
                ErrorKind::NoReplicas,
                format!("{op} refused with NOREPLICAS: the master has fewer good replicas than min-replicas-to-write requires"),
            )
        }
        "LOADING" => {
            return (
                ErrorKind::Loading,
                format!("{op} refused: Redis is loading the dataset in memory; wait and retry"),
            )
        }
        "BUSY" => {
            return (
                ErrorKind::Busy,
                format!("{op} refused with BUSY: the server is running a long script or function and answers nothing else; end it (SCRIPT KILL or FUNCTION KILL) or wait"),
            )
        }
        "MISCONF" => {
            return (
                ErrorKind::Misconf,
                format!("{op} refused with MISCONF: its last RDB save failed and stop-writes-on-bgsave-error is on, so every write is refused; fix the save (disk, dir, permissions) or BGSAVE again"),
            )
        }
        _ => {}
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("unknown command") || lower.contains("unknown subcommand") {
        return (
            ErrorKind::UnknownCommand,
            format!("{op} is not available here (renamed, removed by the provider, or newer than this server): {text}"),
        );
    }
    if lower.contains("command not allowed") {
        return (
            ErrorKind::CommandDisabled,
            format!("{op} is disabled here ({}): {text}", disabled_by(op)),
        );
    }
    if has("max number of clients reached") {
        return (
            ErrorKind::MaxClients,
            format!("{op} refused: the server has reached maxclients (max number of clients reached); close other clients or raise maxclients"),
        );
    }
    if has("invalid password") || has("WRONGPASS") || has("AuthenticationFailed") {
        return (
            ErrorKind::AuthFailed,
            "authentication failed: wrong user or password (check --user/--password)".into(),
        );
    }
    if err.is_connection_refusal() || has("Connection refused") {
        return (
            ErrorKind::Refused,
            format!("connection refused during {op}: is redis-server running there? (`redlab lab up` starts one)"),
        );
    }
    if has("corrupt message")
        || has("InvalidContentType")
        || has("InvalidMessage")
        || has("HandshakeFailure")
    {
        return (
            ErrorKind::TlsMismatch,
            "TLS handshake failed: the server does not speak TLS here; use redis:// instead of rediss://".into(),
        );
    }
    if tls && (has("certificate") || has("UnknownIssuer")) {
        return (
            ErrorKind::TlsMismatch,
            format!("TLS certificate not accepted: {text}"),
        );
    }
    if err.is_timeout() {
        return (ErrorKind::Timeout, timeout_message(op, bound, tls));
    }
    if matches!(err.kind(), redis::ErrorKind::Parse) || has("parse") || has("Parse") {
        return (
            ErrorKind::NotRedis,
            "not a Redis server: the reply to PING was not RESP (wrong port? an HTTP or other service answers there)".into(),
        );
    }
    if has("broken pipe")
        || has("reset by peer")
        || has("Connection reset")
        || has("closed")
        || has("EOF")
        || has("terminated")
    {
        let hint = if tls {
            "the server closed the connection (does it speak TLS? try redis://)"
        } else {
            "the server closed the connection (does it expect TLS? try rediss://; or it is not Redis)"
        };
        return (ErrorKind::Closed, format!("{op}: {hint}"));
    }
    (ErrorKind::Other, format!("{op} failed: {text}"))
}

/// A server's refusal written on accept, before any command (`ERR max
/// number of clients reached`, `DENIED Redis is running in protected mode
/// ...`): what it means, the line as the server wrote it.
pub fn classify_refusal(op: &str, line: &str) -> (ErrorKind, String) {
    if line.contains("max number of clients reached") {
        return (
            ErrorKind::MaxClients,
            format!("{op} refused: the server has reached maxclients (max number of clients reached); close other clients or raise maxclients"),
        );
    }
    (
        ErrorKind::Other,
        format!("{op} refused by the server, which closed the connection: {line}"),
    )
}

/// The setting that turns `command` off.
fn disabled_by(command: &str) -> &'static str {
    match command.to_ascii_uppercase().as_str() {
        "DEBUG" => "enable-debug-command no, the default since Redis 7.0; `local` allows it from loopback, at startup",
        "MODULE" => "enable-module-command no; set it at startup",
        _ => "a server setting",
    }
}

fn first_word(op: &str) -> String {
    op.split_whitespace()
        .next()
        .unwrap_or(op)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_command_is_a_restriction_naming_it_and_how_to_allow_it() {
        let e = |kind| NodeError::new("replica1", "127.0.0.1:6380", kind, "x");
        let acl = e(ErrorKind::NoPermission).restricted("CONFIG GET").unwrap();
        assert!(
            acl.contains("CONFIG GET") && acl.contains("+config"),
            "{acl}"
        );
        let gone = e(ErrorKind::UnknownCommand)
            .restricted("config get")
            .unwrap();
        assert!(
            gone.contains("CONFIG GET") && gone.contains("rename-command"),
            "{gone}"
        );
        let off = e(ErrorKind::CommandDisabled)
            .restricted("DEBUG DIGEST")
            .unwrap();
        assert!(off.contains("enable-debug-command"), "{off}");
        assert_eq!(e(ErrorKind::Timeout).restricted("CONFIG GET"), None);
        assert_eq!(e(ErrorKind::Other).restricted("CONFIG GET"), None);
    }
}
