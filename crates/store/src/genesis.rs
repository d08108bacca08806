//! Where the audit log starts (issue 22 finding 2).
//!
//! A new store's log opens with a genesis entry (`log_started`) naming a
//! random store id; `meta.log_genesis` records its number. A log is then
//! never empty again: retention keeps at least its `purge` entry, so an
//! empty log in a store that holds anything — users, cameras, reads,
//! checkpoints — means the log was deleted, and the store refuses to open
//! (rather than start a new chain over old data) and `verify` fails.
//!
//! A store made before genesis entries existed gets, at its first open by
//! this version, a `log_upgraded` entry appended to its intact log (the
//! old entries keep their numbers); from then on it is treated the same.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::sql::{Optional as _, Sql};
use serde_json::json;

use crate::accounts::Actor;
use crate::log::{self, Head, LogEntry};
use crate::StoreError;

/// The kind of a new log's first entry.
pub const GENESIS_KIND: &str = "log_started";
/// The kind of the entry that marks where this version first opened a
/// log written by an earlier one.
pub const UPGRADE_KIND: &str = "log_upgraded";

const META_GENESIS: &str = "log_genesis";
const META_STORE_ID: &str = "store_id";

fn meta(conn: &dyn Sql, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// The number of the log's opening entry, once it has one.
pub(crate) fn genesis_seq(conn: &dyn Sql) -> Result<Option<i64>, StoreError> {
    meta(conn, META_GENESIS)?
        .map(|v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("{META_GENESIS} {v:?}")))
        })
        .transpose()
}

/// The store's id (written with its opening entry).
pub(crate) fn store_id(conn: &dyn Sql) -> Result<Option<String>, StoreError> {
    meta(conn, META_STORE_ID)
}

/// Writes the log's opening entry after `head` (the empty log's for a new
/// store, the old head for an upgraded one) and records it.
pub(crate) fn open_log(
    tx: &Connection,
    head: Head,
    store_id: &str,
    now_ms: i64,
) -> Result<LogEntry, StoreError> {
    let (kind, details) = if head.seq == 0 {
        (
            GENESIS_KIND,
            json!({"store_id": store_id, "software": concat!("platekeeper ", env!("CARGO_PKG_VERSION"))}),
        )
    } else {
        (
            UPGRADE_KIND,
            json!({
                "store_id": store_id,
                "software": concat!("platekeeper ", env!("CARGO_PKG_VERSION")),
                "note": "entries before this one were written by a version without genesis entries or checkpoints",
                "entries_before": head.seq,
                "head_before": hex::encode(head.hash),
            }),
        )
    };
    let e = log::append(
        tx,
        head,
        Actor::system("log").entry(now_ms, "system", kind, details),
    )?;
    for (k, v) in [
        (META_GENESIS, e.seq.to_string()),
        (META_STORE_ID, store_id.into()),
    ] {
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [k, &v],
        )?;
    }
    Ok(e)
}

/// A new random store id (128 bits, hex).
pub(crate) fn new_store_id() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(format!("random: {e}")))?;
    Ok(hex::encode(b))
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// What the store holds besides its log, in words ("3 users", …); empty
/// for a store that holds nothing yet.
pub(crate) fn holdings(conn: &Connection, dir: &Path) -> Result<Vec<String>, StoreError> {
    const TABLES: [(&str, &str, &str); 11] = [
        ("users", "user", "users"),
        ("cameras", "camera", "cameras"),
        ("hotlists", "hot list", "hot lists"),
        ("holds", "legal hold", "legal holds"),
        ("alerts", "alert", "alerts"),
        ("audit_reports", "audit report", "audit reports"),
        ("agencies", "agency", "agencies"),
        ("transfers", "transfer", "transfers"),
        ("records_requests", "records request", "records requests"),
        ("corrections", "correction", "corrections"),
        ("checkpoints", "signed checkpoint", "signed checkpoints"),
    ];
    let mut out = Vec::new();
    for (table, one, many) in TABLES {
        if table_exists(conn, table)? {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            if n > 0 {
                out.push(format!("{n} {}", if n == 1 { one } else { many }));
            }
        }
    }
    let reads = dir.join("reads");
    if reads.is_dir() {
        let days = crate::partition::list(&reads)?.len();
        if days > 0 {
            out.push(format!(
                "{days} day{} of reads",
                if days == 1 { "" } else { "s" }
            ));
        }
    }
    if meta(conn, "policy")?.is_some() {
        out.push("the agency's policy settings".into());
    }
    Ok(out)
}

/// Whether the log starts where the store did: `Some((entry, problem))`
/// if not. `head` is the log's last entry, `anchor` where retention cut it.
pub(crate) fn problem(
    conn: &Connection,
    dir: &Path,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<(i64, String)>, StoreError> {
    let genesis = genesis_seq(conn)?;
    let count: i64 = conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
    if count == 0 {
        if let Some(g) = genesis {
            return Ok(Some((
                g,
                format!("the log was started at entry {g} but holds no entries: it was deleted"),
            )));
        }
        if let Some(a) = anchor {
            return Ok(Some((
                a.seq + 1,
                format!(
                    "entries up to {} were purged but none is left after them: the log was deleted",
                    a.seq
                ),
            )));
        }
        let held = holdings(conn, dir)?;
        if !held.is_empty() {
            return Ok(Some((
                1,
                format!(
                    "the log is empty but the store holds {}: the log was deleted",
                    held.join(", ")
                ),
            )));
        }
        return Ok(None);
    }
    // A log written before genesis entries: marked at the next open.
    let Some(g) = genesis else { return Ok(None) };
    // The opening entry itself went with retention.
    if anchor.is_some_and(|a| a.seq >= g) || head.seq < g {
        return Ok((head.seq < g).then(|| {
            (
                g,
                format!(
                    "the log was started at entry {g} but ends at entry {}",
                    head.seq
                ),
            )
        }));
    }
    let opening: Option<(String, String)> = conn
        .query_row("SELECT category, kind FROM log WHERE seq = ?1", [g], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let want = if g == 1 { GENESIS_KIND } else { UPGRADE_KIND };
    match opening {
        Some((c, k)) if c == "system" && k == want => Ok(None),
        _ => Ok(Some((
            g,
            format!("entry {g}, where the log started, is not its opening entry ({want}): the start of the log was replaced"),
        ))),
    }
}
