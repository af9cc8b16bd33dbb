//! `demo --web`: the workshop's cache demo as a live web page, served until
//! Ctrl-C. The query box runs cache-aside against the real topology (a read
//! on a replica or the master, on a miss the slow simulated source and a SET
//! with TTL on the master, then the write timed until each replica has it);
//! one card per node, the replication lag, the cached entries counting down
//! and each entry's expiry seen on every node are pushed to every tab by
//! server-sent events. The workshop's JSON API answers at the same paths.
//!
//! Everything the page writes is under the run's prefix, with a TTL, and in
//! the run's ledger: the run's cleanup removes it when Ctrl-C ends the page.
//! The HTTP handlers share `State` (they must be `'static`); the loops that
//! watch the nodes run inside this run's future and borrow its `Ctx`s.

mod api;
mod expiry;
mod nodes;
pub(crate) mod query;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::discover::cluster::Cluster;
use crate::report::{Details, Report, Section};
use crate::run::Ctx;

pub use state::State;

/// Where the page listens unless --listen says otherwise (the workshop's port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";

/// How often every node is read (INFO, and the heartbeat's lag).
pub const TICK: Duration = Duration::from_millis(500);

/// How often a snapshot is pushed to every tab.
pub const PUSH: Duration = Duration::from_millis(250);

/// A node whose INFO has not come back for this long is shown down: with
/// TICK and PUSH, a node that stops is red on every tab within 1.5 s.
pub const STALL: Duration = Duration::from_millis(750);

/// The largest request body accepted (a query is a short text).
pub const BODY_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// --listen: host:port (a name is resolved; port 0 picks a free one).
    pub listen: String,
    /// --allow-remote: binding beyond loopback was asked for explicitly.
    pub allow_remote: bool,
    /// The simulated data source's delay on a miss.
    pub source_delay: Duration,
    /// TTL of a cached entry.
    pub ttl: Duration,
}

/// What a page run reports if it ever ends without a signal (it serves until one).
#[derive(Debug, Serialize, Deserialize)]
pub struct WebDetails {
    /// The page's address.
    pub url: String,
}

impl Details for WebDetails {
    fn sections(&self) -> Vec<Section> {
        Vec::new()
    }
}

/// Serve the page on `ctxs` (one per shard of a cluster, else one) until the
/// run is interrupted; an error (port taken, master refused) ends it with exit 2.
pub async fn run(
    cfg: Config,
    ctxs: &[Ctx],
    cluster: Option<&Cluster>,
) -> Result<Report<WebDetails>> {
    // Bind first: a port in use fails before anything is written.
    let listener = bind(&cfg).await?;
    let local = listener
        .local_addr()
        .context("reading the address the page listens on")?;
    let mut shards = Vec::with_capacity(ctxs.len());
    for ctx in ctxs {
        let survey = ctx.survey().await?;
        let master = survey.master()?;
        ctx.prepare_writes(&master, 1 << 20).await?;
        shards.push(state::Shard::new(ctx));
    }
    let state = Arc::new(State::new(cfg.clone(), shards, cluster.cloned(), ctxs));
    let url = format!("http://{local}/");
    eprintln!(
        "redlab demo --web: serving {url} (Ctrl-C to stop; the page's keys, under {}, are removed then)",
        ctxs[0].prefix()
    );
    let app = api::router(state.clone());
    let server = axum::serve(listener, app);
    tokio::select! {
        r = server.into_future() => {
            r.context("serving the page")?;
            bail!("the page's server stopped by itself")
        }
        never = nodes::watch(&state, ctxs) => match never {},
    }
}

use std::future::IntoFuture;

/// Bind --listen; beyond loopback only with --allow-remote, and then with a warning.
async fn bind(cfg: &Config) -> Result<tokio::net::TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(cfg.listen.as_str())
        .await
        .with_context(|| {
            format!(
                "--listen {}: not an address to listen on: give HOST:PORT, e.g. --listen 127.0.0.1:5000",
                cfg.listen
            )
        })?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        bail!(
            "--listen {}: resolves to no address: give HOST:PORT, e.g. --listen 127.0.0.1:5000",
            cfg.listen
        );
    };
    if !addr.ip().is_loopback() {
        if !cfg.allow_remote {
            bail!(
                "--listen {}: {addr} is reachable beyond this machine, and the page lets anyone \
                 who reaches it write cache entries on the master: add --allow-remote to mean it, \
                 or listen on 127.0.0.1",
                cfg.listen
            );
        }
        eprintln!(
            "redlab: warning: --allow-remote: the page listens on {addr}, beyond loopback; anyone \
             who reaches it can read the topology's stats and write cache entries on the master \
             (no authentication)"
        );
    }
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "listening on {addr} (--listen {}): pick a free port, e.g. --listen 127.0.0.1:0",
            cfg.listen
        )
    })
}
