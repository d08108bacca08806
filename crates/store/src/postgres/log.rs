//! The audit log in PostgreSQL: the same hash chain as the embedded
//! store's (`crate::log`: same entries, same hashes, same walk), appended
//! in order by any number of connections and nodes.
//!
//! Appends are serialized in the database: each takes the row lock on
//! `log_head` (`SELECT … FOR UPDATE`), chains its entry to the head it
//! read, and moves the head in the same transaction. A second writer waits
//! on the lock until the first commits, then reads the new head, so the
//! chain's order is the commit order and no two entries share a number.
//!
//! `log_head` also lets verification see entries cut from the end (the
//! head row records more than the walk reached). Someone who can write
//! the database can move the head row too; the check against a head kept
//! outside the database ([`verify`]'s `recorded`, from a signed
//! checkpoint) is what catches that.

use postgres::{GenericClient, Transaction};

use super::PgError;
use crate::log::{ChainWalk, Head, LogEntry, NewEntry, Verification};

const COLUMNS: &str =
    "seq, ts, category, kind, username, affiliation, role, client, details, purpose, prev, hash";

fn hash32(v: Vec<u8>) -> [u8; 32] {
    // A stored hash of another length is damage: it can match nothing.
    v.try_into().unwrap_or([0xFF; 32])
}

/// Appends an entry inside `tx`; it is in the log once `tx` commits.
pub fn append(tx: &mut Transaction<'_>, new: NewEntry) -> Result<LogEntry, postgres::Error> {
    let row = tx.query_one("SELECT seq, hash FROM log_head FOR UPDATE", &[])?;
    let head = Head {
        seq: row.get(0),
        hash: hash32(row.get(1)),
    };
    let e = crate::log::chained(head, new);
    tx.execute(
        &format!(
            "INSERT INTO log({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            &e.seq,
            &e.ts_ms,
            &e.category,
            &e.kind,
            &e.username,
            &e.affiliation,
            &e.role,
            &e.client,
            &e.details,
            &e.purpose,
            &&e.prev[..],
            &&e.hash[..],
        ],
    )?;
    tx.execute(
        "UPDATE log_head SET seq = $1, hash = $2",
        &[&e.seq, &&e.hash[..]],
    )?;
    Ok(e)
}

/// The head as the database records it.
pub fn head(client: &mut impl GenericClient) -> Result<Head, postgres::Error> {
    let row = client.query_one("SELECT seq, hash FROM log_head", &[])?;
    Ok(Head {
        seq: row.get(0),
        hash: hash32(row.get(1)),
    })
}

/// Entries read per round trip while walking the chain.
const WALK_BATCH: i32 = 5_000;

/// Walks the whole chain in one consistent snapshot and checks its end
/// against the head row and, when given, a head recorded outside the
/// database (the newest signed checkpoint the auditor holds).
pub fn verify(
    client: &mut postgres::Client,
    recorded: Option<Head>,
) -> Result<Verification, postgres::Error> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let head_row = head(&mut tx)?;
    let stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM log ORDER BY seq"))?;
    let portal = tx.bind(&stmt, &[])?;
    let mut walk = ChainWalk::new(Head::GENESIS, None);
    loop {
        let rows = tx.query_portal(&portal, WALK_BATCH)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if let Err(v) = walk.step(row_entry(r).map_err(|_| ())) {
                return Ok(v);
            }
        }
    }
    let reached = walk.head();
    if head_row.seq > reached.seq {
        return Ok(walk.bad_end(format!(
            "the log ends at entry {} but its head row records entry {}: entries were removed from the end",
            reached.seq, head_row.seq
        )));
    }
    if head_row != reached {
        return Ok(walk.bad_end(format!(
            "the log's head row (entry {}) is not its last entry ({}): entries were added or changed around the chain's lock",
            head_row.seq, reached.seq
        )));
    }
    if let Some(kept) = recorded {
        if kept.seq > reached.seq {
            return Ok(walk.bad_end(format!(
                "the log ends at entry {} but a head kept outside the database records entry {}: entries were removed from the end",
                reached.seq, kept.seq
            )));
        }
        let at = tx
            .query_opt("SELECT hash FROM log WHERE seq = $1", &[&kept.seq])?
            .map(|r| hash32(r.get(0)));
        if kept.seq > 0 && at != Some(kept.hash) {
            return Ok(walk.bad_at(
                kept.seq,
                format!(
                    "entry {} differs from the head kept outside the database: the log was rewritten",
                    kept.seq
                ),
            ));
        }
    }
    Ok(walk.finish())
}

fn row_entry(r: &postgres::Row) -> Result<LogEntry, postgres::Error> {
    Ok(LogEntry {
        seq: r.try_get(0)?,
        ts_ms: r.try_get(1)?,
        category: r.try_get(2)?,
        kind: r.try_get(3)?,
        username: r.try_get(4)?,
        affiliation: r.try_get(5)?,
        role: r.try_get(6)?,
        client: r.try_get(7)?,
        details: r.try_get(8)?,
        purpose: r.try_get(9)?,
        prev: hash32(r.try_get(10)?),
        hash: hash32(r.try_get(11)?),
    })
}

/// Every entry, in order (for tools and for tests that play an insider).
pub fn read_entries(client: &mut impl GenericClient) -> Result<Vec<LogEntry>, PgError> {
    let rows = client
        .query(&format!("SELECT {COLUMNS} FROM log ORDER BY seq"), &[])
        .map_err(|e| PgError::Query(e.to_string()))?;
    rows.iter()
        .map(|r| row_entry(r).map_err(|e| PgError::Query(e.to_string())))
        .collect()
}
