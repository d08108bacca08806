//! Moving an agency's embedded store into PostgreSQL (issue 26 item 3;
//! `platekeeper migrate --data DIR --to URL`).
//!
//! Everything is copied as it is stored: accounts with their password
//! hashes and TOTP secrets (nobody enrols again), the log row for row
//! with its chain and head unchanged (so `audit verify` on the target
//! reports the same head hash), checkpoints, the policy and the store's
//! id, hot lists, alerts, holds, sharing, reports, corrections, cameras
//! with their key hashes, every read of every day, and every picture as
//! sealed bytes (both backends seal with the same key-derived scheme, so
//! a picture is never opened on the way).
//!
//! Resumable: every row goes in with `ON CONFLICT DO NOTHING` and every
//! read through the idempotent ingest, so a run stopped anywhere is
//! finished by running it again. The target must be empty, or hold this
//! very store's earlier, unfinished run (`meta.transfer_from` names the
//! source's store id); anything else is refused before a row is written.

use rusqlite::types::Value;

use super::connect::{statement_error, PgPool};
use super::reads::{self, PgRead};
use super::{DatabaseUrl, PgError};
use crate::images::ImageRef;
use crate::partition;
use crate::sql::{Pg, Sql};
use crate::{Store, StoreError};

fn db(e: postgres::Error) -> StoreError {
    StoreError::Postgres(statement_error(e))
}

/// The main tables, parents before the tables that name them.
const TABLES: &[&str] = &[
    "users",
    "training",
    "approvals",
    "sessions",
    "passkeys",
    "webauthn_challenges",
    "device_ca",
    "devices",
    "cameras",
    "hotlists",
    "hotlist_entries",
    "alerts",
    "holds",
    "held_reads",
    "hold_members",
    "agencies",
    "sharing_requests",
    "transfers",
    "downloads",
    "records_requests",
    "audit_reports",
    "corrections",
    "checkpoints",
    "log",
    "access_reads",
];

/// The identity columns whose sequences must continue after the copied
/// ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("training", "id"),
    ("approvals", "id"),
    ("passkeys", "id"),
    ("devices", "id"),
    ("cameras", "num"),
    ("hotlists", "id"),
    ("hotlist_entries", "id"),
    ("alerts", "id"),
    ("holds", "id"),
    ("agencies", "id"),
    ("sharing_requests", "id"),
    ("transfers", "id"),
    ("downloads", "id"),
    ("records_requests", "id"),
    ("audit_reports", "id"),
    ("corrections", "id"),
    ("checkpoints", "id"),
];

/// Reads per ingest batch.
const READ_BATCH: usize = 5_000;

/// What moved, source against target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferReport {
    /// Per table: (name, rows in the source, rows in the target).
    pub tables: Vec<(String, u64, u64)>,
    pub reads_source: u64,
    pub reads_target: u64,
    pub pictures_source: u64,
    pub pictures_target: u64,
    /// The log's head hash on each side.
    pub head_source: String,
    pub head_target: String,
    /// Whether this run finished an earlier one.
    pub resumed: bool,
}

impl TransferReport {
    /// Every count and the head agree.
    pub fn matches(&self) -> bool {
        self.tables.iter().all(|(_, a, b)| a == b)
            && self.reads_source == self.reads_target
            && self.pictures_source == self.pictures_target
            && self.head_source == self.head_target
    }
}

/// What the target holds at the start: nothing, or this store's own
/// unfinished run; anything else is refused.
fn check_target(
    conn: &mut postgres::Client,
    url: &DatabaseUrl,
    store_id: &str,
) -> Result<bool, StoreError> {
    let meta = |conn: &mut postgres::Client, key: &str| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .map_err(db)?
            .map(|r| r.get(0)))
    };
    if let Some(from) = meta(conn, "transfer_from")? {
        if from != store_id {
            return Err(StoreError::Postgres(PgError::ForeignDatabase {
                url: url.to_string(),
                holds: format!("a transfer of another store ({from})"),
            }));
        }
        if meta(conn, "transfer_done")?.is_some() {
            return Err(StoreError::conflict(
                "already_migrated",
                format!("{url} already holds this store, moved completely; nothing to do"),
            ));
        }
        return Ok(true);
    }
    let held: i64 = conn
        .query_one(
            "SELECT (SELECT count(*) FROM log) + (SELECT count(*) FROM users)
                    + (SELECT count(*) FROM read_days)",
            &[],
        )
        .map_err(db)?
        .get(0);
    if held > 0 {
        return Err(StoreError::Postgres(PgError::ForeignDatabase {
            url: url.to_string(),
            holds: "a Platekeeper store already (its log, accounts or reads)".into(),
        }));
    }
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('transfer_from', $1)",
        &[&store_id],
    )
    .map_err(db)?;
    Ok(false)
}

/// The columns of `table` in the embedded database.
fn columns(conn: &rusqlite::Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// Copies one table's rows, a few hundred per statement.
fn copy_table(
    source: &rusqlite::Connection,
    target: &dyn Sql,
    table: &str,
) -> Result<u64, StoreError> {
    let cols = columns(source, table)?;
    if cols.is_empty() {
        return Ok(0);
    }
    let per_statement = (2_000 / cols.len()).max(1);
    let list = cols.join(", ");
    let mut stmt = source.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut pending: Vec<Vec<Value>> = Vec::with_capacity(per_statement);
    let mut copied = 0u64;
    let flush = |pending: &mut Vec<Vec<Value>>| -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut n = 0;
        let tuples: Vec<String> = pending
            .iter()
            .map(|row| {
                let marks: Vec<String> = row
                    .iter()
                    .map(|_| {
                        n += 1;
                        format!("?{n}")
                    })
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let params: Vec<&dyn rusqlite::ToSql> = pending
            .iter()
            .flatten()
            .map(|v| v as &dyn rusqlite::ToSql)
            .collect();
        target.execute(
            &format!(
                "INSERT INTO {table}({list}) VALUES {} ON CONFLICT DO NOTHING",
                tuples.join(", ")
            ),
            params.as_slice(),
        )?;
        pending.clear();
        Ok(())
    };
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            values.push(Value::from(r.get_ref(i)?));
        }
        pending.push(values);
        copied += 1;
        if pending.len() >= per_statement {
            flush(&mut pending)?;
        }
    }
    flush(&mut pending)?;
    Ok(copied)
}

/// Each picture once.
fn distinct(refs: impl Iterator<Item = ImageRef>) -> Vec<ImageRef> {
    let mut v: Vec<ImageRef> = refs.collect();
    v.sort_by_key(|r| (r.sha256, r.kind_code()));
    v.dedup();
    v
}

impl Store {
    /// Moves this (embedded) store into the PostgreSQL database `url`,
    /// which must be empty or hold this store's unfinished earlier run.
    /// `progress` is told each step as it finishes. Run it with the
    /// server stopped (the caller holds the data folder's lock).
    pub fn transfer_to(
        &self,
        url: &DatabaseUrl,
        mut progress: impl FnMut(&str),
    ) -> Result<TransferReport, StoreError> {
        let crate::Main::Embedded { readers, .. } = &self.main else {
            return Err(StoreError::conflict(
                "not_embedded",
                "this store is in PostgreSQL already",
            ));
        };
        let pool = PgPool::open(url)?;
        let mut conn = pool.get()?;
        super::migrate::migrate(&mut conn, url)?;
        let resumed = check_target(&mut conn, url, &self.store_id)?;
        let source = readers.get()?;

        // The main tables, each in one transaction.
        let mut tables = Vec::new();
        for table in TABLES {
            let mut tx = conn.transaction().map_err(db)?;
            let n = copy_table(&source, &Pg::new(&mut tx), table)?;
            tx.commit().map_err(db)?;
            tables.push((table.to_string(), n));
            progress(&format!("{table}: {n} rows"));
        }
        // The store's settings (its id, the policy, purge marks), then
        // the identities continue after the copied ids and the chain's
        // head row names the copied head.
        {
            let mut tx = conn.transaction().map_err(db)?;
            let pg = Pg::new(&mut tx);
            let sql: &dyn Sql = &pg;
            let src: &dyn Sql = &*source;
            for (key, value) in src.query_map(
                "SELECT key, value FROM meta WHERE key NOT IN ('schema_version')",
                (),
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )? {
                sql.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    rusqlite::params![key, value],
                )?;
            }
            for (table, column) in IDENTITIES {
                sql.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('platekeeper.{table}', '{column}'),
                                       coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                    ),
                    (),
                )?;
            }
            let head = crate::log::load_head(&source)?;
            tx.execute(
                "UPDATE log_head SET seq = $1, hash = $2",
                &[&head.seq, &&head.hash[..]],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        drop(source);

        // Reads, day by day, with their pictures' names; then the
        // pictures themselves, as sealed.
        let day_rows = |file: &crate::partition::DayFile| -> Result<Vec<PgRead>, StoreError> {
            let day_conn = file.reader()?;
            let mut stmt = day_conn.prepare(
                "SELECT r.rid, r.plate, r.meta, r.pos, r.id,
                        i.plate_sha, i.plate_kind, i.vehicle_sha, i.vehicle_kind
                 FROM reads r LEFT JOIN images i ON i.rid = r.rid ORDER BY r.rid",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: Vec<u8> = r.get(4)?;
                let [plate_image, vehicle_image] = ImageRef::pair_in_row(r, 5)?;
                Ok(PgRead {
                    ts_ms: partition::rowid_time(file.day, r.get(0)?),
                    plate: r.get(1)?,
                    meta: r.get(2)?,
                    id: uuid::Uuid::from_slice(&id).unwrap_or(uuid::Uuid::nil()),
                    pos: r.get(3)?,
                    plate_image,
                    vehicle_image,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        let days = reads::Days::default();
        let mut reads_source = 0u64;
        let mut pictures_source = 0u64;
        for file in self.day_files() {
            let rows = day_rows(&file)?;
            reads_source += rows.len() as u64;
            for batch in rows.chunks(READ_BATCH) {
                reads::ingest(&mut conn, &days, batch, i32::MIN).map_err(db)?;
            }
            let named = distinct(
                rows.iter()
                    .flat_map(|r| [r.plate_image, r.vehicle_image])
                    .flatten(),
            );
            for r in &named {
                let path = self.images.path(file.day, r);
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        super::pictures::insert(&mut *conn, file.day, r, &bytes)?;
                        pictures_source += 1;
                    }
                    // Named by a read but gone (past image retention).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&path, e)),
                }
            }
            progress(&format!(
                "{}: {} reads, {} pictures",
                partition::file_name(file.day).trim_end_matches(".db"),
                rows.len(),
                named.len()
            ));
        }
        // Held copies of pictures (legal holds past their day).
        let held_rows = {
            let source = readers.get()?;
            let src: &dyn Sql = &*source;
            src.query_map(
                "SELECT plate_sha, plate_kind, vehicle_sha, vehicle_kind FROM held_reads",
                (),
                |r| Ok(ImageRef::pair_in_row(r, 0)?),
            )?
        };
        let held = distinct(held_rows.into_iter().flatten().flatten());
        for r in &held {
            if let Ok(bytes) = std::fs::read(self.images.held_path(r)) {
                conn.execute(
                    "INSERT INTO held_pictures(sha256, kind, sealed) VALUES ($1, $2, $3)
                     ON CONFLICT (sha256) DO NOTHING",
                    &[&&r.sha256[..], &(r.kind_code() as i16), &bytes],
                )
                .map_err(db)?;
                pictures_source += 1;
            }
        }

        // The comparison.
        let source = readers.get()?;
        let mut compared = Vec::with_capacity(tables.len());
        for (table, _) in &tables {
            let count = |sql: &dyn Sql| -> Result<u64, StoreError> {
                Ok(
                    sql.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| {
                        r.get::<_, i64>(0)
                    })? as u64,
                )
            };
            let a = count(&*source as &rusqlite::Connection)?;
            let b = count(&Pg::new(&mut *conn))?;
            compared.push((table.clone(), a, b));
        }
        let reads_target: i64 = conn
            .query_one("SELECT count(*) FROM reads", &[])
            .map_err(db)?
            .get(0);
        let pictures_target: i64 = conn
            .query_one(
                "SELECT (SELECT count(*) FROM pictures) + (SELECT count(*) FROM held_pictures)",
                &[],
            )
            .map_err(db)?
            .get(0);
        let head_source = hex::encode(crate::log::load_head(&source)?.hash);
        let head_target = hex::encode(super::log::head(&mut *conn).map_err(db)?.hash);
        let report = TransferReport {
            tables: compared,
            reads_source,
            reads_target: reads_target as u64,
            pictures_source,
            pictures_target: pictures_target as u64,
            head_source,
            head_target,
            resumed,
        };
        if report.matches() {
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('transfer_done', $1)
                 ON CONFLICT (key) DO NOTHING",
                &[&platekeeper_core::read::format_time_ms(super::now_ms())],
            )
            .map_err(db)?;
        }
        Ok(report)
    }
}
