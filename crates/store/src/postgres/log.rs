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

use platekeeper_core::checkpoint::Checkpoint;
use postgres::{GenericClient, Transaction};

use platekeeper_core::checkpoint::OnTamper;

use super::connect::{off_runtime, PgPool};
use super::PgError;
use crate::accounts::Actor;
use crate::checkpoint::LogStart;
use crate::checkpoint::{verify_signature, CheckpointKey};
use crate::genesis::GENESIS_KIND;
use crate::group_commit::HasHead;
use crate::log::{ChainWalk, Head, LogEntry, NewEntry, Verification};
use crate::sql::{Pg, Sql};
use crate::StoreError;

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
    // Where a purge cut the log's start (`crate::retention`): the walk
    // starts from the entry it recorded.
    let anchor = tx
        .query_opt("SELECT value FROM meta WHERE key = 'log_anchor'", &[])?
        .map(|r| r.get::<_, String>(0));
    let anchor = match anchor {
        None => None,
        Some(text) => match parse_anchor(&text) {
            Some(a) => Some(a),
            None => {
                return Ok(ChainWalk::new(Head::GENESIS, None).bad_end(format!(
                    "the record of where the purge cut the log ({text:?}) is damaged"
                )))
            }
        },
    };
    let stmt = tx.prepare(&format!(
        "SELECT {COLUMNS} FROM log WHERE seq > $1 ORDER BY seq"
    ))?;
    let start = anchor.unwrap_or(Head::GENESIS);
    let portal = tx.bind(&stmt, &[&start.seq])?;
    let mut walk = ChainWalk::new(start, anchor);
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

/// `seq:hash` as `crate::retention` records a purge's cut.
fn parse_anchor(text: &str) -> Option<Head> {
    let (seq, hash) = text.split_once(':')?;
    Some(Head {
        seq: seq.parse().ok()?,
        hash: hex::decode(hash).ok()?.try_into().ok()?,
    })
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

/// Replaces the log with `log`, numbered from 1 and chained anew, and
/// moves the head row to match: the consistent rewrite an insider who
/// can write the database can make (the embedded `crate::log::forge`).
/// Only checkpoints kept outside the database catch it; tests of
/// verification use this to play that insider.
pub fn forge(client: &mut postgres::Client, log: Vec<LogEntry>) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(db)?;
    let head = crate::log::rechain(&Pg::new(&mut tx), log)?;
    tx.execute(
        "UPDATE log_head SET seq = $1, hash = $2",
        &[&head.seq, &&head.hash[..]],
    )
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Opens the log of a new database with its genesis entry (`log_started`,
/// naming a random store id that checkpoints carry), once: under the
/// head row's lock, so two nodes starting together write one. Refuses a
/// database whose log is gone while its store id says it had one (a new
/// chain would hide the deletion). Returns the store id.
pub fn open_log(client: &mut postgres::Client, now_ms: i64) -> Result<String, PgError> {
    let q = |e: postgres::Error| PgError::Query(e.to_string());
    let mut tx = client.transaction().map_err(q)?;
    let head = tx
        .query_one("SELECT seq FROM log_head FOR UPDATE", &[])
        .map_err(q)?
        .get::<_, i64>(0);
    let id: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = 'store_id'", &[])
        .map_err(q)?
        .map(|r| r.get(0));
    let entries: i64 = tx
        .query_one("SELECT count(*) FROM log", &[])
        .map_err(q)?
        .get(0);
    match id {
        Some(id) if head > 0 && entries > 0 => Ok(id),
        Some(id) => Err(PgError::LogMissing(format!(
            "the database is store {id}, whose log had entries, but its log is empty: it was deleted; restore it from a backup (the store is not opened, so a new log cannot hide the deletion)"
        ))),
        None if head > 0 || entries > 0 => Err(PgError::LogMissing(
            "the log has entries but no store id: the store's records were altered".into(),
        )),
        None => {
            let id = crate::genesis::new_store_id().map_err(|e| PgError::Query(e.to_string()))?;
            append(
                &mut tx,
                Actor::system("log").entry(
                    now_ms,
                    "system",
                    GENESIS_KIND,
                    serde_json::json!({"store_id": id, "software": concat!("platekeeper ", env!("CARGO_PKG_VERSION"))}),
                ),
            )
            .map_err(q)?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('store_id', $1)",
                &[&id],
            )
            .map_err(q)?;
            tx.commit().map_err(q)?;
            Ok(id)
        }
    }
}

/// The store id the log's genesis entry names (read from the chained
/// entry itself, not from `meta`, which is not hash-chained).
fn genesis_store_id(client: &mut impl GenericClient) -> Result<Option<String>, postgres::Error> {
    let details: Option<String> = client
        .query_opt(
            "SELECT details FROM log WHERE kind = $1 ORDER BY seq LIMIT 1",
            &[&GENESIS_KIND],
        )?
        .map(|r| r.get(0));
    Ok(details.and_then(|d| {
        serde_json::from_str::<serde_json::Value>(&d)
            .ok()?
            .get("store_id")?
            .as_str()
            .map(str::to_string)
    }))
}

/// Signs the log's head now and keeps the checkpoint in the database;
/// the checkpoint is worth something only once it is also kept where
/// the database's administrators cannot change it (the transparency
/// page, the auditor's copy of a report).
pub fn checkpoint(
    client: &mut postgres::Client,
    key: &CheckpointKey,
    now_ms: i64,
) -> Result<Checkpoint, PgError> {
    let q = |e: postgres::Error| PgError::Query(e.to_string());
    let store_id = genesis_store_id(client)
        .map_err(q)?
        .ok_or_else(|| PgError::LogMissing("the log has no genesis entry".into()))?;
    let mut tx = client.transaction().map_err(q)?;
    // Under the head's lock: the checkpoint is of a committed head.
    let row = tx
        .query_one("SELECT seq, hash FROM log_head FOR SHARE", &[])
        .map_err(q)?;
    let head = Head {
        seq: row.get(0),
        hash: hash32(row.get(1)),
    };
    let c = key.sign(&store_id, head, now_ms);
    tx.execute(
        "INSERT INTO checkpoints(entries, head, time, store_id, public_key, signature)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &c.entries,
            &c.head,
            &c.time,
            &c.store_id,
            &c.public_key,
            &c.signature,
        ],
    )
    .map_err(q)?;
    tx.commit().map_err(q)?;
    Ok(c)
}

/// Checks that the log extends `c`, a checkpoint kept outside the
/// database: its signature, that it is of this store, and that the
/// chain holds entry `c.entries` with `c.head` and is intact from the
/// start to its end. `Ok(None)`: it does; `Ok(Some(problem))`: it does not.
pub fn prove(
    client: &mut postgres::Client,
    c: &Checkpoint,
) -> Result<(Verification, Option<String>), PgError> {
    let q = |e: postgres::Error| PgError::Query(e.to_string());
    if let Err(e) = verify_signature(c) {
        let v = verify(client, None).map_err(q)?;
        return Ok((v, Some(format!(
            "the checkpoint is not validly signed: {e} (it was altered, or is not a Platekeeper checkpoint)"
        ))));
    }
    match genesis_store_id(client).map_err(q)? {
        Some(id) if id == c.store_id => {}
        Some(id) => {
            let v = verify(client, None).map_err(q)?;
            return Ok((
                v,
                Some(format!(
                    "the checkpoint is of store {}, but this log is of store {id}",
                    c.store_id
                )),
            ));
        }
        None => {
            let v = verify(client, None).map_err(q)?;
            return Ok((
                v,
                Some("this log has no genesis entry, so no checkpoint is of it".into()),
            ));
        }
    }
    let kept = Head {
        seq: c.entries,
        hash: hex::decode(&c.head)
            .ok()
            .and_then(|h| h.try_into().ok())
            .unwrap_or([0xFF; 32]),
    };
    let v = verify(client, Some(kept)).map_err(q)?;
    let problem = (!v.ok).then(|| v.problem.clone().unwrap_or_default());
    Ok((v, problem))
}

fn db(e: postgres::Error) -> StoreError {
    StoreError::Postgres(super::connect::statement_error(e))
}

/// Runs `f` in one transaction holding the chain's lock, with the head,
/// and moves the head to where `f` left it: the PostgreSQL form of the
/// embedded store's group commit (`crate::group_commit`). The change and
/// its entries commit together, or not at all; with `synchronous_commit`
/// on, the commit is durable when this returns.
pub(crate) fn with_log<T: HasHead>(
    pool: &PgPool,
    f: impl FnOnce(&dyn Sql, Head) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.get()?;
    let (mut tx, row) = off_runtime(|| {
        let mut tx = conn.transaction()?;
        let row = tx.query_one("SELECT seq, hash FROM log_head FOR UPDATE", &[])?;
        Ok((tx, row))
    })
    .map_err(db)?;
    let head = Head {
        seq: row.get(0),
        hash: hash32(row.get(1)),
    };
    let pg = Pg::new(&mut tx);
    let outcome = f(&pg, head);
    let kinds = pg.appended_kinds();
    drop(pg);
    let value = match outcome {
        Ok(v) => v,
        Err(e) => {
            // Rolled back here, not by the drop (which may be on an async
            // thread, where the client cannot block).
            let _ = off_runtime(move || tx.rollback());
            return Err(e);
        }
    };
    let moved = value.head().filter(|h| *h != head);
    off_runtime(move || {
        if let Some(h) = moved {
            tx.execute(
                "UPDATE log_head SET seq = $1, hash = $2",
                &[&h.seq, &&h.hash[..]],
            )?;
            // Other nodes drop the caches this change makes stale (its
            // entries' kinds say which), when it commits.
            for topic in super::listener::topics_of(kinds.iter().map(String::as_str)) {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&super::listener::CHANGES, &topic],
                )?;
            }
        }
        tx.commit()
    })
    .map_err(db)?;
    Ok(value)
}

/// Runs `f` in one transaction, for changes that are not logged.
pub(crate) fn unlogged<T>(
    pool: &PgPool,
    f: impl FnOnce(&dyn Sql) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.get()?;
    let mut tx = off_runtime(|| conn.transaction()).map_err(db)?;
    match f(&Pg::new(&mut tx)) {
        Ok(value) => {
            off_runtime(move || tx.commit()).map_err(db)?;
            Ok(value)
        }
        Err(e) => {
            let _ = off_runtime(move || tx.rollback());
            Err(e)
        }
    }
}

/// Opens the log for a store: the chain is walked and checked against
/// the newest checkpoint kept in the database; a failure refuses the
/// store or, as `on_tamper` says, opens it alarmed with a
/// `log_tamper_detected` entry (as the embedded store does).
pub(crate) fn start(
    pool: &PgPool,
    key: Option<&CheckpointKey>,
    on_tamper: OnTamper,
    now_ms: i64,
) -> Result<LogStart, StoreError> {
    let mut conn = pool.get()?;
    let store_id = genesis_store_id(&mut *conn)
        .map_err(db)?
        .ok_or_else(|| PgError::LogMissing("the log has no genesis entry".into()))?;
    let v = verify(&mut conn, None).map_err(db)?;
    let head = Head {
        seq: v.entries,
        hash: hex::decode(&v.head)
            .ok()
            .and_then(|h| h.try_into().ok())
            .unwrap_or([0; 32]),
    };
    let problem = match v.problem.filter(|_| !v.ok) {
        Some(p) => Some(p),
        None => {
            let sql = Pg::new(&mut *conn);
            let anchor = crate::retention::load_log_anchor(&sql)?;
            crate::checkpoint::newest_checkpoint_problem(&sql, &store_id, key, head, anchor)?
        }
    };
    drop(conn);
    let Some(problem) = problem else {
        return Ok(LogStart {
            head,
            store_id,
            alarm: None,
        });
    };
    if on_tamper == OnTamper::Refuse {
        return Err(StoreError::LogTampered(format!(
            "the audit log in PostgreSQL failed its check: {problem}. The store was not opened. \
             Investigate (run `platekeeper audit verify --database URL --checkpoint FILE` with \
             checkpoints kept elsewhere); to run anyway, alarmed, start with `--on-tamper alarm` \
             or set the policy's audit.on_tamper to \"alarm\""
        )));
    }
    let entry = with_log(pool, |tx, head| {
        crate::log::append(
            tx,
            head,
            Actor::system("log").entry(
                now_ms,
                "system",
                "log_tamper_detected",
                serde_json::json!({"problem": problem, "on_tamper": "alarm"}),
            ),
        )
    })?;
    tracing::error!(%problem, "the audit log failed its check; starting alarmed");
    Ok(LogStart {
        head: entry.as_head(),
        store_id,
        alarm: Some(crate::checkpoint::LogAlarm {
            problem,
            since: platekeeper_core::read::format_time_ms(now_ms),
            entry: entry.seq,
        }),
    })
}
