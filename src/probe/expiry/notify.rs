//! Keyspace notifications, where the server already has them on: the exact
//! moment a key leaves a node. redlab never turns them on (no CONFIG SET on a
//! topology it did not start).

use std::time::Instant;

use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedSender;

use crate::client::{pubsub, Conn};
use crate::topology::{Node, Role};

/// Whether the node's `notify-keyspace-events` publishes the event that marks
/// the key leaving it: `expired` (class x) on the master, which expires keys
/// itself; `del` (class g) on a replica, which applies the master's DEL.
pub fn usable(flags: &str, role: Role) -> Result<(), String> {
    let has = |c: char| flags.contains(c);
    let channel = has('K') || has('E');
    let class = match role {
        Role::Master => has('x') || has('A'),
        Role::Replica => has('g') || has('A'),
    };
    match (channel, class) {
        (true, true) => Ok(()),
        _ if flags.is_empty() => Err("keyspace notifications are off".into()),
        _ => Err(format!(
            "notify-keyspace-events is '{flags}', without the {} events this needs",
            match role {
                Role::Master => "K/E and x (expired)",
                Role::Replica => "K/E and g (del)",
            }
        )),
    }
}

/// Subscribe on `node` and send `(index, arrival)` once the key leaves it.
/// Returns why not when notifications cannot be used there.
pub async fn subscribe(
    conn: &mut Conn,
    node: &Node,
    index: usize,
    key: &str,
    tx: UnboundedSender<(usize, Instant)>,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let flags = match conn.config_get("notify-keyspace-events").await {
        Ok(Some(f)) => f,
        Ok(None) | Err(_) => {
            return Err("CONFIG GET notify-keyspace-events is not allowed here".into())
        }
    };
    usable(&flags, node.role)?;
    let db = node.db();
    let (channels, by_event) = if flags.contains('E') {
        (
            vec![
                format!("__keyevent@{db}__:del"),
                format!("__keyevent@{db}__:expired"),
            ],
            true,
        )
    } else {
        (vec![format!("__keyspace@{db}__:{key}")], false)
    };
    let mut ps = pubsub(node, timeout).await.map_err(|e| e.message)?;
    for c in &channels {
        // The crate's pub/sub has no response timeout of its own.
        tokio::time::timeout(timeout, ps.subscribe(c))
            .await
            .map_err(|_| {
                format!(
                    "SUBSCRIBE {c}: no answer within {}",
                    humantime::format_duration(timeout)
                )
            })?
            .map_err(|e| format!("SUBSCRIBE {c} failed: {e}"))?;
    }
    let key = key.as_bytes().to_vec();
    tokio::spawn(async move {
        let mut stream = ps.into_on_message();
        while let Some(msg) = stream.next().await {
            let payload = msg.get_payload_bytes();
            let hit = if by_event {
                payload == key.as_slice()
            } else {
                payload == b"del" || payload == b"expired"
            };
            if hit {
                let _ = tx.send((index, Instant::now()));
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_need_del_events_masters_expired() {
        assert!(usable("Ex", Role::Master).is_ok());
        // A replica never expires keys: it sees the master's DEL, class g.
        assert!(usable("Ex", Role::Replica).is_err());
        assert!(usable("Eg", Role::Replica).is_ok());
        assert!(usable("KA", Role::Replica).is_ok());
        assert!(usable("", Role::Replica).unwrap_err().contains("off"));
        assert!(usable("xg", Role::Master).is_err());
    }
}
