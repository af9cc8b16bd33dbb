//! The page, its assets (embedded: the page works offline), the event
//! stream, and the workshop's JSON API at its paths.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as Shared};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::query;
use super::state::{lock, State};
use crate::client::Status;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

type S = Shared<Arc<State>>;

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/api/events", get(events))
        .route("/api/cache/stats", get(stats))
        .route("/api/query", post(query))
        .route("/api/cache/keys", get(keys))
        .route("/api/cache/clear", get(clear).post(clear))
        .layer(DefaultBodyLimit::max(super::BODY_LIMIT))
        .with_state(state)
}

/// An embedded asset; no script or style from anywhere else may run.
fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}
async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}
async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// One stream per tab: `hello` (the topology, the settings, the lag history,
/// the expiries so far), then every snapshot and every query and expiry event.
async fn events(Shared(state): S) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = Event::default()
        .event("hello")
        .data(state.hello().to_string());
    let snaps = state.snapshot.subscribe();
    let news = state.events.subscribe();
    let first = stream::iter([Ok(hello)]);
    let rest = stream::unfold((snaps, news), |(mut snaps, mut news)| async move {
        loop {
            tokio::select! {
                changed = snaps.changed() => {
                    changed.ok()?;
                    let snap = snaps.borrow_and_update().clone();
                    let data = serde_json::to_string(&*snap).ok()?;
                    return Some((Ok(Event::default().event("snapshot").data(data)), (snaps, news)));
                }
                got = news.recv() => match got {
                    Ok((name, data)) => {
                        return Some((Ok(Event::default().event(name).data(data.as_str())), (snaps, news)));
                    }
                    // A slow tab missed events; the next snapshot still brings it up to date.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(futures_util::StreamExt::chain(first, rest)).keep_alive(KeepAlive::default())
}

/// The workshop's stats: one object per node, by name.
async fn stats(Shared(state): S) -> Response {
    let snap = state.snapshot.borrow().clone();
    let mut out = serde_json::Map::new();
    for n in &snap.nodes {
        out.insert(
            n.name.clone(),
            serde_json::json!({
                "connected": !matches!(n.status, Status::Down | Status::Unknown),
                "status": n.status,
                "address": n.address,
                "role": n.role,
                "expected_role": n.expected_role,
                "keys": n.keys,
                "memory": n.memory,
                "used_memory_human": n.memory,
                "uptime_in_seconds": n.uptime_s,
                "lag_ms": n.lag_ms,
                "error": n.error,
            }),
        );
    }
    Json(serde_json::Value::Object(out)).into_response()
}

#[derive(Deserialize)]
struct Query {
    query: String,
}

/// The body is read as JSON whatever its Content-Type says (`curl -d` sends
/// form encoding by default); its size is bounded by `BODY_LIMIT`.
async fn query(Shared(state): S, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let q = match serde_json::from_slice::<Query>(&body) {
        Ok(q) => q.query,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not {{\"query\": \"...\"}} as JSON: {e}"),
            )
        }
    };
    let q = match query::validate(&q) {
        Ok(q) => q,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    match query::lookup(&state, q).await {
        Ok(a) => {
            state.publish("query", &a);
            Json(a).into_response()
        }
        Err(why) => error(StatusCode::BAD_GATEWAY, why),
    }
}

/// The page's cached entries, read on their master now: TTL and value.
async fn keys(Shared(state): S) -> Response {
    let entries: Vec<(String, String, usize)> = lock(&state.entries)
        .iter()
        .map(|(k, e)| (k.clone(), e.query.clone(), e.shard))
        .collect();
    let mut out = Vec::new();
    for (key, q, shard) in entries {
        let slot = &state.nodes[state.shards[shard].master];
        let read = async {
            let mut c = slot.conn().await?;
            c.pipe::<(i64, Option<String>)>(
                redis::pipe().cmd("PTTL").arg(&key).cmd("GET").arg(&key),
            )
            .await
        }
        .await;
        match read {
            Ok((ttl_ms, Some(value))) if ttl_ms != -2 => out.push(serde_json::json!({
                "key": key,
                "query": q,
                "ttl": (ttl_ms.max(0) as f64 / 1000.0).ceil() as i64,
                "ttl_ms": ttl_ms,
                "value": serde_json::from_str::<serde_json::Value>(&value).unwrap_or(serde_json::Value::String(value)),
            })),
            Ok(_) => {}
            Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
    Json(serde_json::json!({ "count": out.len(), "keys": out })).into_response()
}

/// Remove the page's own cached entries (never FLUSHDB: the database may hold
/// anybody's data). The heartbeat key stays until the run ends.
async fn clear(Shared(state): S) -> Response {
    let entries: Vec<(String, usize)> = lock(&state.entries)
        .iter()
        .map(|(k, e)| (k.clone(), e.shard))
        .collect();
    let mut removed = 0u64;
    for (i, sh) in state.shards.iter().enumerate() {
        let keys: Vec<&String> = entries
            .iter()
            .filter(|(_, s)| *s == i)
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            continue;
        }
        let slot = &state.nodes[sh.master];
        let mut unlink = redis::cmd("UNLINK");
        for k in &keys {
            unlink.arg(k.as_str());
        }
        let done = async {
            let mut c = slot.conn().await?;
            c.query::<u64>(&unlink).await
        }
        .await;
        match done {
            Ok(n) => {
                removed += n;
                let mut e = lock(&state.entries);
                for k in keys {
                    e.remove(k);
                }
            }
            Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
    let prefix = state
        .shards
        .first()
        .map(|s| s.prefix.clone())
        .unwrap_or_default();
    state.publish("cleared", &serde_json::json!({ "removed": removed }));
    Json(serde_json::json!({
        "status": "ok",
        "removed": removed,
        "message": format!(
            "removed {removed} cached entries written by this page ({prefix}query:*); nothing else was touched"
        ),
    }))
    .into_response()
}
