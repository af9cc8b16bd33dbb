//! The redis client layer: connecting with a bound on every step, INFO
//! parsing, and errors that name the node.

pub mod error;
mod first_contact;
pub mod info;
pub mod server;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, FromRedisValue};

pub use error::{ErrorKind, NodeError};
pub use info::{DbCounts, Info, LinkState, ReplicaLine, Status};
pub use server::Server;

use crate::topology::Node;

/// A connection to one node. Every command is bounded by the timeout: a
/// SIGSTOPped server accepts TCP but never answers.
#[derive(Clone)]
pub struct Conn {
    name: String,
    addr: String,
    tls: bool,
    timeout: Duration,
    /// PING answered: a later drop is a lost connection, not a wrong scheme.
    established: bool,
    /// What PING answered at connect when it was a refusal of a server that
    /// still answers INFO (LOADING, MASTERDOWN, MISCONF): how it serves. A
    /// later silence after LOADING is the load, not a stop.
    ping_refused: Option<ErrorKind>,
    inner: MultiplexedConnection,
    /// Ends the connection's task when the last clone of this Conn goes
    /// (None where the redis crate spawned the task and owns it).
    _driver: Option<Arc<first_contact::Driver>>,
}

impl Conn {
    pub async fn connect(node: &Node, timeout: Duration) -> Result<Conn, NodeError> {
        Self::connect_with_response_timeout(node, timeout, timeout).await
    }

    /// `response_timeout` may exceed `timeout` for commands that block by design (WAIT).
    pub async fn connect_with_response_timeout(
        node: &Node,
        timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Conn, NodeError> {
        tls::install_provider();
        let err = |kind, msg: String| NodeError::new(&node.name, &node.addr(), kind, msg);
        let settings = node.info.redis_settings().clone().set_skip_set_lib_name();
        let client = Client::open(node.info.clone().set_redis_settings(settings.clone()))
            .map_err(|e| err(ErrorKind::Other, format!("bad connection settings: {e}")))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(response_timeout));
        // Plain TCP: one socket, opened here with its first reply bounded
        // (first_contact). TLS: the crate's own connect, unbounded as before
        // (a plain service there fails the handshake).
        let watch = first_contact::Watch::default();
        let fut = async {
            if node.tls() {
                let inner = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok((inner, None))
            } else {
                let (inner, driver) = first_contact::open(node, &settings, &config, &watch).await?;
                Ok::<_, redis::RedisError>((inner, Some(Arc::new(driver))))
            }
        };
        let outcome = match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err((
                ErrorKind::Timeout,
                error::timeout_message("connect", timeout, node.tls()),
            )),
            Ok(Err(e)) => Err(error::classify("connect", &e, node.tls(), timeout)),
            Ok(Ok((inner, driver))) => Ok(Self::ready(node, timeout, inner, driver).await),
        };
        if let Some(why) = watch.not_redis() {
            return Err(err(ErrorKind::NotRedis, why));
        }
        // Closed, with an error line the server sent first (maxclients,
        // protected mode): that line says why, whichever step saw the close.
        let refusal = || {
            let line = watch.first_error()?;
            let (kind, msg) = error::classify_refusal("connect", &line);
            Some(err(kind, msg))
        };
        let (kind, msg) = match outcome {
            Ok(Err(e)) if e.kind == ErrorKind::Closed => return Err(refusal().unwrap_or(e)),
            Ok(ready) => return ready,
            Err((ErrorKind::Closed, msg)) => match refusal() {
                Some(e) => return Err(e),
                None => (ErrorKind::Closed, msg),
            },
            Err(e) => e,
        };
        // Redis answers AUTH to a node without a password with an error the
        // client reports as a failed login: say what is true instead.
        if kind == ErrorKind::AuthFailed && answers_without_auth(node, timeout).await {
            return Err(err(
                ErrorKind::AuthFailed,
                "a password was given, but this node has no password configured (it answers \
                 without one): drop the password (--password, REDLAB_PASSWORD, the URL's), \
                 or configure one on the node (requirepass)"
                    .into(),
            ));
        }
        // A plain Redis may sit on a ClientHello forever: ask it in plain RESP.
        if node.tls() && kind != ErrorKind::Refused && speaks_plain_resp(node).await {
            return Err(err(
                ErrorKind::TlsMismatch,
                "the server speaks plain RESP, not TLS: use redis:// instead of rediss://".into(),
            ));
        }
        Err(err(kind, msg))
    }

    async fn ready(
        node: &Node,
        timeout: Duration,
        inner: MultiplexedConnection,
        driver: Option<Arc<first_contact::Driver>>,
    ) -> Result<Conn, NodeError> {
        let mut conn = Conn {
            name: node.name.clone(),
            addr: node.addr(),
            tls: node.tls(),
            timeout,
            established: false,
            ping_refused: None,
            inner,
            _driver: driver,
        };
        // The handshake alone does not prove a Redis is there (without AUTH nothing is sent).
        match conn.ping().await {
            // A Redis that answers but does not serve (no data yet, or no
            // writes): INFO still works, and says why.
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::MasterDown | ErrorKind::Loading | ErrorKind::Misconf
                ) =>
            {
                conn.ping_refused = Some(e.kind)
            }
            other => other?,
        }
        conn.established = true;
        // A cluster replica redirects every read (MOVED) unless the
        // connection says it reads from replicas; a master ignores it.
        if node.cluster {
            let _ = conn.query::<()>(&redis::cmd("READONLY")).await;
        }
        Ok(conn)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What PING answered at connect, when it was a refusal (LOADING,
    /// MASTERDOWN, MISCONF) of a server that still answers INFO.
    pub fn ping_refused(&self) -> Option<ErrorKind> {
        self.ping_refused
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn error(&self, kind: ErrorKind, message: impl Into<String>) -> NodeError {
        NodeError::new(&self.name, &self.addr, kind, message)
    }

    /// Run one command, bounded by the timeout (plus `extra` for blocking commands).
    pub async fn query_for<T: FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        extra: Duration,
    ) -> Result<T, NodeError> {
        let op = op_name(cmd);
        let bound = self.timeout + extra;
        let reply = tokio::time::timeout(bound, cmd.query_async::<T>(&mut self.inner)).await;
        self.settle(&op, bound, reply)
    }

    /// A bounded reply, or the error that names the node and says what to do.
    fn settle<T>(
        &self,
        op: &str,
        bound: Duration,
        reply: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, NodeError> {
        match reply {
            Err(_) => Err(self.timed_out(op, bound)),
            Ok(Err(e)) => Err(self.classified(op, &e, bound)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn timed_out(&self, op: &str, bound: Duration) -> NodeError {
        let msg = if self.ping_refused == Some(ErrorKind::Loading) {
            format!(
                "no answer to {op} within {}: the node is loading its dataset (it answered \
                 LOADING) and answers only between chunks of it; wait until it has loaded, \
                 or raise --timeout",
                humantime::format_duration(bound)
            )
        } else if self.established {
            format!(
                "no answer to {op} within {}: the server stopped answering (paused, overloaded, or blocked by a slow command)",
                humantime::format_duration(bound)
            )
        } else {
            error::timeout_message(op, bound, self.tls)
        };
        self.error(ErrorKind::Timeout, msg)
    }

    fn classified(&self, op: &str, e: &redis::RedisError, bound: Duration) -> NodeError {
        let (kind, msg) = error::classify(op, e, self.tls, bound);
        // The client's own response timeout fires as an error, not as our bound.
        if kind == ErrorKind::Timeout {
            return self.timed_out(op, bound);
        }
        if self.established && matches!(kind, ErrorKind::Closed | ErrorKind::Refused) {
            return self.error(
                ErrorKind::Closed,
                format!("connection lost during {op}: the server closed it (restarted, killed, or CLIENT KILL?)"),
            );
        }
        self.error(kind, msg)
    }

    pub async fn query<T: FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, NodeError> {
        self.query_for(cmd, Duration::ZERO).await
    }

    /// Several commands in one round trip.
    pub async fn pipe<T: FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> Result<T, NodeError> {
        let reply =
            tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut self.inner)).await;
        self.settle("a pipeline", self.timeout, reply)
    }

    pub async fn ping(&mut self) -> Result<(), NodeError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(self.error(
                ErrorKind::NotRedis,
                format!("not a Redis server: PING answered {pong:?}"),
            ));
        }
        Ok(())
    }

    /// One INFO section; a reply without it (hidden by a managed service or
    /// a proxy) is an `InfoHidden` error naming it, never an empty answer
    /// (no replicas, no keys) taken for the truth.
    pub async fn info(&mut self, section: &str) -> Result<Info, NodeError> {
        let text: String = self.query(redis::cmd("INFO").arg(section)).await?;
        self.all_there(Info::parse(&text), &[section])
    }

    /// Several INFO sections in one round trip (one INFO per section: Redis
    /// before 7 takes one section per call), read as one.
    pub async fn info_sections(&mut self, sections: &[&str]) -> Result<Info, NodeError> {
        let mut pipe = redis::pipe();
        for s in sections {
            pipe.cmd("INFO").arg(*s);
        }
        let texts: Vec<String> = self.pipe(&pipe).await?;
        self.all_there(Info::parse(&texts.concat()), sections)
    }

    fn all_there(&self, info: Info, asked: &[&str]) -> Result<Info, NodeError> {
        let missing = info.missing(asked);
        if missing.is_empty() {
            return Ok(info);
        }
        Err(self.error(ErrorKind::InfoHidden, hidden_message(&missing)))
    }

    /// INFO and one configuration value in one round trip; the value is None
    /// where CONFIG GET is not allowed (an ACL user), as in `config_get`.
    pub async fn info_and_config(
        &mut self,
        section: &str,
        key: &str,
    ) -> Result<(Info, Option<String>), NodeError> {
        let (info, mut config) = self.info_and_configs(section, &[key]).await?;
        Ok((info, config.remove(key)))
    }

    /// INFO and several configuration values in one round trip (one CONFIG
    /// GET each: Redis 6 takes one parameter per call). A parameter CONFIG
    /// does not give (denied, renamed, unknown) is absent from the map.
    pub async fn info_and_configs(
        &mut self,
        section: &str,
        keys: &[&str],
    ) -> Result<(Info, std::collections::BTreeMap<String, String>), NodeError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors().cmd("INFO").arg(section);
        for k in keys {
            pipe.cmd("CONFIG").arg("GET").arg(*k);
        }
        let replies: Vec<redis::Value> = self.pipe(&pipe).await?;
        let mut replies = replies.into_iter();
        let info = replies.next().map(redis::from_redis_value::<String>);
        let config = replies.flat_map(|v| pairs(&v)).collect();
        match info {
            Some(Ok(text)) => Ok((Info::parse(&text), config)),
            // An error reply to INFO: ask again alone, for the classified error.
            _ => Ok((self.info(section).await?, config)),
        }
    }

    /// A configuration value, or None where this Redis has no such parameter.
    pub async fn config_get(&mut self, key: &str) -> Result<Option<String>, NodeError> {
        Ok(self.config_get_many(&[key]).await?.remove(key))
    }

    /// The masters a Sentinel monitors, as `name at host:port`.
    pub async fn sentinel_masters(&mut self) -> Result<Vec<String>, NodeError> {
        let v: redis::Value = self.query(redis::cmd("SENTINEL").arg("MASTERS")).await?;
        let masters = match v {
            redis::Value::Array(items) | redis::Value::Set(items) => items,
            _ => Vec::new(),
        };
        Ok(masters
            .iter()
            .map(|m| {
                let kv: std::collections::BTreeMap<String, String> = pairs(m).into_iter().collect();
                let get = |k: &str| kv.get(k).cloned().unwrap_or_else(|| "?".into());
                format!(
                    "'{}' at {}",
                    get("name"),
                    crate::topology::host_port(&get("ip"), get("port"))
                )
            })
            .collect())
    }

    /// Several configuration values in one round trip; a parameter this
    /// server does not know is absent. Redis 7 takes many parameters in one
    /// `CONFIG GET`; Redis 6 refuses that, so there it is one `CONFIG GET`
    /// per parameter, pipelined.
    pub async fn config_get_many(
        &mut self,
        keys: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>, NodeError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(keys);
        match self.query::<redis::Value>(&cmd).await {
            Ok(v) => Ok(pairs(&v).into_iter().collect()),
            Err(e) if keys.len() > 1 && one_parameter_only(&e) => {
                let mut pipe = redis::pipe();
                for k in keys {
                    pipe.cmd("CONFIG").arg("GET").arg(*k);
                }
                let replies: Vec<redis::Value> = self.pipe(&pipe).await?;
                Ok(replies.iter().flat_map(pairs).collect())
            }
            Err(e) => Err(e),
        }
    }
}

/// Redis 6's answer to a `CONFIG GET` of several parameters.
fn one_parameter_only(e: &NodeError) -> bool {
    let m = e.message.to_ascii_lowercase();
    matches!(e.kind, ErrorKind::Other | ErrorKind::UnknownCommand)
        && (m.contains("wrong number of arguments") || m.contains("unknown subcommand"))
}

/// The bytes of a string-like reply (bulk, simple, verbatim, +OK).
pub fn bytes(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        redis::Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        redis::Value::Okay => Some(b"OK"),
        _ => None,
    }
}

/// Field/value pairs of a reply that is a map under RESP3 and a flat array
/// of alternating fields and values under RESP2 (CONFIG GET, SENTINEL
/// MASTERS entries, HGETALL): redlab reads both the same way.
pub fn pairs(v: &redis::Value) -> Vec<(String, String)> {
    use redis::Value;
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            Value::VerbatimString { text, .. } => Some(text.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Double(d) => Some(d.to_string()),
            _ => None,
        }
    };
    match v {
        Value::Map(kv) => kv
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the node answers PING without AUTH (plain TCP only): its
/// default user needs no password.
async fn answers_without_auth(node: &Node, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let no_user = node
        .info
        .redis_settings()
        .username()
        .is_none_or(|u| u == "default");
    if node.tls() || !no_user {
        return false;
    }
    let probe = async {
        let mut s = tokio::net::TcpStream::connect((node.host(), node.port())).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 8];
        let n = s.read(&mut buf).await?;
        Ok::<bool, std::io::Error>(buf[..n].starts_with(b"+PONG"))
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Ok(true)))
}

async fn speaks_plain_resp(node: &Node) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect((node.host(), node.port())).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await?;
        Ok::<bool, std::io::Error>(n > 0 && matches!(buf[0], b'+' | b'-'))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(300), probe).await,
        Ok(Ok(true))
    )
}

/// A dedicated pub/sub connection (keyspace notifications), bounded like `Conn::connect`.
pub async fn pubsub(node: &Node, timeout: Duration) -> Result<redis::aio::PubSub, NodeError> {
    tls::install_provider();
    let err = |kind, msg: String| NodeError::new(&node.name, &node.addr(), kind, msg);
    let client = Client::open(node.info.clone())
        .map_err(|e| err(ErrorKind::Other, format!("bad connection settings: {e}")))?;
    match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
        Err(_) => Err(err(
            ErrorKind::Timeout,
            error::timeout_message("SUBSCRIBE", timeout, node.tls()),
        )),
        Ok(Err(e)) => {
            let (kind, msg) = error::classify("SUBSCRIBE", &e, node.tls(), timeout);
            Err(err(kind, msg))
        }
        Ok(Ok(p)) => Ok(p),
    }
}

fn op_name(cmd: &redis::Cmd) -> String {
    // The first argument is the command name; keys and values stay out of messages.
    cmd.args_iter()
        .next()
        .and_then(|a| match a {
            redis::Arg::Simple(b) => std::str::from_utf8(b).ok().map(str::to_ascii_uppercase),
            _ => None,
        })
        .unwrap_or_else(|| "a command".into())
}

/// What to say when INFO hides sections: which, and what to do.
pub fn hidden_message(missing: &[String]) -> String {
    let names: Vec<String> = missing.iter().map(|m| format!("INFO {m}")).collect();
    format!(
        "{} answered without its section (hidden by the provider or a proxy): allow {} to run this step",
        names.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    )
}
