//! Alerts raised on one node reach the people connected to every other
//! node (issue 26 item 1). The transaction that stores a hot-list hit, or
//! marks an unacknowledged alert for re-sending, names the alert ids on
//! the channel `platekeeper_alerts` (delivered when, and only if, it
//! commits, so another node always finds the row it is told about); each
//! node's listener hands other nodes' ids to whatever the server
//! registered ([`Store::on_other_nodes_alerts`]), which loads the alerts
//! and sends them down its own streams. A node skips its own
//! announcements: it has sent those already.
//!
//! What a listener misses while its connection is down is not replayed:
//! an alert nobody acknowledges is re-sent by the re-send rule, which is
//! announced the same way.

use std::sync::RwLock;

use rusqlite::params;

use crate::sql::{Dialect, Sql};
use crate::{Store, StoreError};

/// The channel the announcements go on.
pub const CHANNEL: &str = "platekeeper_alerts";

/// Longest payload sent (PostgreSQL's limit is 8,000 bytes).
const MAX_PAYLOAD: usize = 7_800;

/// What a node does with other nodes' alert ids.
pub type AlertSink = Box<dyn Fn(Vec<i64>) + Send + Sync>;

/// This node's name on the channel, and where other nodes' ids go.
pub(crate) struct AlertRelay {
    /// Random per open store, so a node knows its own announcements.
    pub node: String,
    sink: RwLock<Option<AlertSink>>,
}

impl AlertRelay {
    pub(crate) fn new() -> Result<AlertRelay, StoreError> {
        Ok(AlertRelay {
            node: hex::encode(crate::credentials::random_bytes::<8>()?),
            sink: RwLock::new(None),
        })
    }

    /// Hands on the ids of one payload, unless this node sent it.
    pub(crate) fn heard(&self, payload: &str) {
        let Some((node, ids)) = parse(payload) else {
            return;
        };
        if node == self.node || ids.is_empty() {
            return;
        }
        if let Ok(sink) = self.sink.read() {
            if let Some(f) = sink.as_ref() {
                f(ids);
            }
        }
    }
}

/// Names `ids` to every node, in `tx` (nothing on the embedded store,
/// which is one node): `node:id,id,…`, as many notifications as the limit
/// needs.
pub(crate) fn announce(tx: &dyn Sql, node: &str, ids: &[i64]) -> Result<(), StoreError> {
    if tx.dialect() != Dialect::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut payload = String::new();
    let send = |payload: &mut String| -> Result<(), StoreError> {
        if !payload.is_empty() {
            tx.execute(
                "SELECT pg_notify(?1, ?2)",
                params![CHANNEL, payload.as_str()],
            )?;
            payload.clear();
        }
        Ok(())
    };
    for id in ids {
        if payload.len() > MAX_PAYLOAD {
            send(&mut payload)?;
        }
        if payload.is_empty() {
            payload.push_str(node);
            payload.push(':');
        } else {
            payload.push(',');
        }
        payload.push_str(&id.to_string());
    }
    send(&mut payload)
}

/// The sender and ids of one payload; `None` for what does not parse, and
/// ids that do not parse are skipped.
fn parse(payload: &str) -> Option<(&str, Vec<i64>)> {
    let (node, ids) = payload.split_once(':')?;
    Some((
        node,
        ids.split(',')
            .filter_map(|i| i.parse::<i64>().ok())
            .collect(),
    ))
}

impl Store {
    /// Registers what this node does with alerts other nodes raised or
    /// re-sent: `sink` gets their ids (on the listener's thread; it must
    /// not block). Replaces an earlier sink. The embedded store is one
    /// node and never calls it.
    pub fn on_other_nodes_alerts(&self, sink: AlertSink) {
        if let Ok(mut s) = self.alert_relay.sink.write() {
            *s = Some(sink);
        }
    }

    /// This node's name on the alert channel (random per open store).
    pub fn node_id(&self) -> &str {
        &self.alert_relay.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_node_and_junk_is_skipped() {
        assert_eq!(parse("ab12:5,7"), Some(("ab12", vec![5, 7])));
        assert_eq!(parse("ab12:x,9,"), Some(("ab12", vec![9])));
        assert_eq!(parse("nonsense"), None);
        let relay = AlertRelay::new().unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        *relay.sink.write().unwrap() = Some(Box::new(move |ids| g.lock().unwrap().extend(ids)));
        relay.heard(&format!("{}:1,2", relay.node));
        relay.heard("other:3,4");
        relay.heard("garbage");
        assert_eq!(*got.lock().unwrap(), vec![3, 4]);
    }
}
