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
    /// The server is at maxclients.
    MaxClients,
    /// Writes refused: min-replicas-to-write is not met.
    NoReplicas,
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
        _ => {}
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

fn first_word(op: &str) -> String {
    op.split_whitespace()
        .next()
        .unwrap_or(op)
        .to_ascii_lowercase()
}
