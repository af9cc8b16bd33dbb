//! Putting a lab back to its recorded roles after a drill moved its master:
//! the recorded master masters again, every recorded replica follows it.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Lab;
use crate::client::Conn;
use crate::topology::DEFAULT_MASTER_NAME;

impl Lab {
    /// Whether every node has its recorded role (the master a master, each
    /// replica following it).
    pub async fn has_recorded_roles(&self) -> Result<bool> {
        let topo = self.topology();
        let t = Duration::from_secs(2);
        let info = Conn::connect(&topo.master, t)
            .await?
            .info("replication")
            .await?;
        if !info.is_master() {
            return Ok(false);
        }
        for r in &topo.replicas {
            let i = Conn::connect(r, t).await?.info("replication").await?;
            if i.follows().map(|(_, p)| p) != Some(topo.master.port()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Move the master back to the recorded one. With Sentinels, through
    /// them (a failover where only the recorded master may be promoted:
    /// every other replica's replica-priority is 0 meanwhile), else with
    /// REPLICAOF. Bounded; then the lab is in sync and the Sentinels agree.
    pub async fn restore_roles(&self, bound: Duration) -> Result<()> {
        let topo = self.topology();
        let t = Duration::from_secs(2);
        let deadline = Instant::now() + bound;
        let mut master = Conn::connect(&topo.master, t).await?;
        let mut replicas = Vec::new();
        for r in &topo.replicas {
            replicas.push(Conn::connect(r, t).await?);
        }
        let priority = |c: &mut Conn, p: u32| {
            let mut c = c.clone();
            async move {
                c.query::<()>(
                    redis::cmd("CONFIG")
                        .arg("SET")
                        .arg("replica-priority")
                        .arg(p),
                )
                .await
            }
        };
        if let Some(set) = &topo.sentinel {
            for r in &mut replicas {
                priority(r, 0).await?;
            }
            priority(&mut master, 100).await?;
            let mut s = Conn::connect(&set.nodes[0], t).await?;
            let port = topo.master.port();
            loop {
                let addr: Vec<String> = s
                    .query(
                        redis::cmd("SENTINEL")
                            .arg("get-master-addr-by-name")
                            .arg(DEFAULT_MASTER_NAME),
                    )
                    .await?;
                if addr.get(1).and_then(|p| p.parse::<u16>().ok()) == Some(port) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the Sentinels did not promote the recorded master (port {port}) within {bound:?}");
                }
                // Refused while a failover runs or the replica is not ready yet: ask again.
                let _ = s
                    .query::<()>(
                        redis::cmd("SENTINEL")
                            .arg("FAILOVER")
                            .arg(DEFAULT_MASTER_NAME),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            // Sentinel closes the clients of the nodes it reconfigures: fresh
            // connections, again until the reconfiguration is over.
            for r in &topo.replicas {
                loop {
                    let done = match Conn::connect(r, t).await {
                        Ok(mut c) => priority(&mut c, 100).await,
                        Err(e) => Err(e),
                    };
                    match done {
                        Ok(()) => break,
                        Err(e) if Instant::now() > deadline => return Err(e.into()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        } else {
            master
                .query::<()>(redis::cmd("REPLICAOF").arg("NO").arg("ONE"))
                .await?;
            for r in &mut replicas {
                r.query::<()>(
                    redis::cmd("REPLICAOF")
                        .arg("127.0.0.1")
                        .arg(topo.master.port()),
                )
                .await?;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_in_sync(left.max(Duration::from_secs(5))).await?;
        if let Some(set) = &topo.sentinel {
            super::sentinel::wait_agreed(
                set,
                topo.master.port(),
                topo.replicas.len(),
                left.max(Duration::from_secs(5)),
            )
            .await?;
        }
        Ok(())
    }
}
