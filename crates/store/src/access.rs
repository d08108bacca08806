//! Accesses to plate data and the access log (SPEC R4.3).
//!
//! Every store function that finds reads or images takes an [`Access`]
//! (who is looking, at what, why) and returns the data [`Sealed`]: its
//! contents are private to the store. Only [`Store::release`] opens it,
//! and only after writing the access's one log entry — the person, time,
//! purpose, query, result count and read ids — and committing it. A
//! caller therefore cannot see data without a durable record of what it
//! saw (issue 28: one entry and one commit per access, where there were
//! two).
//!
//! Deciding *whether* someone may open an access (role, training,
//! approval, purpose policy) belongs to the server's accountability layer.

use platekeeper_core::{Purpose, ReadId};
use rusqlite::params;
use serde::Serialize;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::group_commit::HasHead;
use crate::log::{self, LogEntry, NewEntry};
use crate::sql::{Optional as _, Sql};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Search,
    ImageView,
    Export,
    AlertView,
    /// Reads put on legal hold.
    Hold,
    /// A read opened to correct a misread.
    Correction,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Search => "search",
            AccessKind::ImageView => "image_view",
            AccessKind::Export => "export",
            AccessKind::AlertView => "alert_view",
            AccessKind::Hold => "hold",
            AccessKind::Correction => "correction",
        }
    }
}

/// Everything the access log records about one access.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub username: String,
    pub affiliation: String,
    pub kind: AccessKind,
    /// The data elements queried (plate, pattern, area, times, …).
    pub query: serde_json::Value,
    pub purpose: Purpose,
    pub client: Option<String>,
    /// The person's role, as logged.
    pub role: Option<String>,
}

/// An access about to happen: who looks at what and why, checked by the
/// server but not logged yet. Store functions that find plate data take
/// one and hand back [`Sealed`] data; [`Store::release`] writes the
/// access's one log entry and only then gives the data out. Deliberately
/// not `Clone`: one access, one entry.
#[derive(Debug)]
pub struct Access {
    token: u64,
    req: AccessRequest,
}

/// Ties sealed data to the access it was found under.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl Access {
    pub fn new(req: AccessRequest) -> Access {
        Access {
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            req,
        }
    }

    pub fn username(&self) -> &str {
        &self.req.username
    }

    pub fn purpose(&self) -> &Purpose {
        &self.req.purpose
    }
}

/// Plate data found under an [`Access`] and not yet released: nothing
/// outside the store can read it. [`Store::release`] opens it once the
/// access's entry, naming every read in it, is durable.
///
/// Released data can be read:
/// ```
/// fn shown(page: &platekeeper_store::Released<platekeeper_store::SearchPage>) -> usize {
///     page.value().reads.len()
/// }
/// ```
/// Sealed data cannot, not even its size (this does not compile):
/// ```compile_fail
/// fn shown(page: &platekeeper_store::Sealed<platekeeper_store::SearchPage>) -> usize {
///     page.value.reads.len()
/// }
/// ```
/// ```compile_fail
/// fn shown(page: &platekeeper_store::Sealed<platekeeper_store::SearchPage>) -> usize {
///     page.peek().reads.len()
/// }
/// ```
#[must_use = "data found under an access leaves only through Store::release"]
#[derive(Debug)]
pub struct Sealed<T> {
    value: T,
    /// The reads the data holds (id, time), for the entry and the index.
    returned: Vec<(ReadId, i64)>,
    token: u64,
}

impl<T> Sealed<T> {
    pub(crate) fn new(access: &Access, value: T, returned: Vec<(ReadId, i64)>) -> Sealed<T> {
        Sealed {
            value,
            returned,
            token: access.token,
        }
    }

    /// The data, for the store's own use before release.
    pub(crate) fn peek(&self) -> &T {
        &self.value
    }
}

/// Proof that an access's entry is in the log and durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    access_id: i64,
}

impl Receipt {
    /// The entry's number in the log: the access's id in the API.
    pub fn access_id(&self) -> i64 {
        self.access_id
    }
}

/// Plate data whose access entry is durable: the only form in which data
/// found under an access reaches the server.
#[derive(Debug)]
pub struct Released<T> {
    receipt: Receipt,
    value: T,
}

impl<T> Released<T> {
    pub fn receipt(&self) -> Receipt {
        self.receipt
    }

    pub fn access_id(&self) -> i64 {
        self.receipt.access_id
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn into_value(self) -> T {
        self.value
    }

    /// The same receipt with what the store made of the released data.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Released<U> {
        Released {
            receipt: self.receipt,
            value: f(self.value),
        }
    }
}

/// A logged access as read back (for checking an image request's parent).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub id: i64,
    pub ts_ms: i64,
    pub username: String,
    pub kind: String,
    pub purpose: Purpose,
}

/// A change's value with the log head it left.
struct Logged<V> {
    value: V,
    head: log::Head,
}

impl<V> HasHead for Logged<V> {
    fn head(&self) -> Option<log::Head> {
        Some(self.head)
    }
}

/// Reads returned per statement that records them (each row three
/// parameters, well under either backend's limit).
const RETURNED_PER_STATEMENT: usize = 200;

/// Records which reads access `access_id` returned, a few hundred rows
/// per statement: one round trip per statement to PostgreSQL, so a row
/// at a time cost a search more than the search itself.
fn record_returned(
    tx: &dyn Sql,
    access_id: i64,
    returned: &[(ReadId, i64)],
) -> Result<(), StoreError> {
    for chunk in returned.chunks(RETURNED_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(?1, ?{}, ?{})", 2 + 2 * i, 3 + 2 * i))
            .collect();
        let ids: Vec<[u8; 16]> = chunk.iter().map(|(id, _)| *id.as_bytes()).collect();
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&access_id];
        for ((_, ts), id) in chunk.iter().zip(&ids) {
            params.push(id);
            params.push(ts);
        }
        tx.execute(
            &format!(
                "INSERT INTO access_reads(access_id, read_id, ts) VALUES {}
                 ON CONFLICT DO NOTHING",
                rows.join(", ")
            ),
            params.as_slice(),
        )?;
    }
    Ok(())
}

impl Store {
    /// Appends an entry to the audit log and returns it once durable.
    pub fn log_event(&self, new: NewEntry) -> Result<LogEntry, StoreError> {
        self.with_log(|tx, head| log::append(tx, head, new))
    }

    /// Appends several entries in one transaction (one disk sync), in
    /// order; returns the last.
    pub fn log_events(&self, entries: Vec<NewEntry>) -> Result<Option<LogEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let last = self.with_log(|tx, mut head| {
            let mut last = None;
            for e in entries {
                let entry = log::append(tx, head, e)?;
                head = log::Head {
                    seq: entry.seq,
                    hash: entry.hash,
                };
                last = Some(entry);
            }
            last.ok_or(StoreError::Poisoned)
        })?;
        Ok(Some(last))
    }

    /// Runs `f` on the main database with the log's head, in the open
    /// batch of logged changes (see [`crate::group_commit`]), and returns
    /// once the batch is durable: the way every change that must be
    /// logged is written, so the change and its entry commit together or
    /// not at all.
    pub(crate) fn with_log<T>(
        &self,
        f: impl FnOnce(&dyn Sql, log::Head) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>
    where
        T: HasHead,
    {
        match &self.main {
            crate::Main::Embedded { writer, .. } => {
                writer.with_log(&self.dir, |conn, head| f(conn, head))
            }
            crate::Main::Postgres { pool, commits, .. } => {
                let value = crate::postgres::log::with_log(pool, f)?;
                commits.fetch_add(1, Ordering::SeqCst);
                Ok(value)
            }
        }
    }

    /// Writes `access`'s one log entry — who, when, why, what was asked,
    /// how many reads came back and which — and, once it is durable,
    /// releases the data found under it (SPEC R4.3).
    pub fn release<T>(
        &self,
        access: Access,
        found: Sealed<T>,
        now_ms: i64,
    ) -> Result<Released<T>, StoreError> {
        let (released, ()) =
            self.release_with(access, found, now_ms, |_, head, _, _| Ok(((), head)))?;
        Ok(released)
    }

    /// [`Store::release`] with a change that commits together with the
    /// access entry (placing a hold, recording an export): `change` gets
    /// the head after the entry, the receipt and the found data, and
    /// returns its value and the head it leaves.
    pub(crate) fn release_with<T, U>(
        &self,
        access: Access,
        found: Sealed<T>,
        now_ms: i64,
        change: impl FnOnce(&dyn Sql, log::Head, &Receipt, &T) -> Result<(U, log::Head), StoreError>,
    ) -> Result<(Released<T>, U), StoreError> {
        if found.token != access.token {
            return Err(StoreError::WrongAccess);
        }
        let Sealed {
            value, returned, ..
        } = found;
        let req = access.req;
        let purpose = serde_json::to_value(&req.purpose)
            .map_err(|e| StoreError::Corrupt(format!("purpose: {e}")))?;
        let mut details = match req.query {
            serde_json::Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("query".into(), other);
                m
            }
        };
        details.insert("result_count".into(), returned.len().into());
        details.insert(
            "reads".into(),
            returned.iter().map(|(id, _)| id.to_string()).collect(),
        );
        let entry = NewEntry {
            ts_ms: now_ms,
            category: "access",
            kind: req.kind.as_str().to_string(),
            username: req.username,
            affiliation: req.affiliation,
            role: req.role,
            client: req.client,
            details: serde_json::Value::Object(details),
            purpose: Some(purpose),
        };
        let logged = self.with_log(|tx, head| {
            let e = log::append(tx, head, entry)?;
            record_returned(tx, e.seq, &returned)?;
            let receipt = Receipt { access_id: e.seq };
            let (changed, head) = change(tx, e.as_head(), &receipt, &value)?;
            Ok(Logged {
                value: (receipt, changed),
                head,
            })
        })?;
        let (receipt, changed) = logged.value;
        Ok((Released { receipt, value }, changed))
    }

    /// The newest access of `username` (only of `kind`, when given) that
    /// returned each of `reads`: its id and the read's time. Reads no
    /// such access returned are absent.
    ///
    /// The person's own accesses are walked newest first, stopping once
    /// every read is found, so the usual case (a hold or a correction
    /// soon after the search) reads a few rows, and the worst only what
    /// was ever shown to that one person. There is no index by read: it
    /// would cost every access a write at a random place in it, which
    /// made each access's commit several times dearer (issue 28).
    pub fn reads_seen_by(
        &self,
        username: &str,
        reads: &[ReadId],
        kind: Option<&str>,
    ) -> Result<HashMap<ReadId, (i64, i64)>, StoreError> {
        let mut wanted: HashMap<[u8; 16], ReadId> =
            reads.iter().map(|id| (*id.as_bytes(), *id)).collect();
        let mut found = HashMap::with_capacity(wanted.len());
        if wanted.is_empty() {
            return Ok(found);
        }
        let conn = self.reader()?;
        // An access and the reads it returned are committed together and
        // never change afterwards, so no snapshot is needed for the walk.
        let seqs = conn.query_map(
            "SELECT seq FROM log WHERE username = ?1 AND category = 'access' AND kind != 'result'
             AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2) ORDER BY seq DESC",
            params![username, kind],
            |r| Ok(r.get::<_, i64>(0)?),
        )?;
        for access in seqs {
            for r in conn.rows(
                "SELECT read_id, ts FROM access_reads WHERE access_id = ?1",
                [access],
            )? {
                let bytes: Vec<u8> = r.get(0)?;
                let Ok(key) = <[u8; 16]>::try_from(bytes.as_slice()) else {
                    continue;
                };
                if let Some(id) = wanted.remove(&key) {
                    found.insert(id, (access, r.get(1)?));
                }
            }
            if wanted.is_empty() {
                break;
            }
        }
        Ok(found)
    }

    /// The time of a read that `access_id` returned, if it returned it.
    pub fn access_returned(&self, access_id: i64, read: ReadId) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT ts FROM access_reads WHERE access_id = ?1 AND read_id = ?2",
            params![access_id, &read.as_bytes()[..]],
            |r| r.get(0),
        )
        .optional()
    }

    /// A logged access, by id.
    pub fn access_record(&self, id: i64) -> Result<Option<AccessRecord>, StoreError> {
        let conn = self.reader()?;
        let row = conn
            .query_row(
                "SELECT seq, ts, username, kind, purpose FROM log
                 WHERE seq = ?1 AND category = 'access' AND kind != 'result'",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, ts_ms, username, kind, purpose)| {
            let purpose = serde_json::from_str(purpose.as_deref().unwrap_or("null"))
                .map_err(|e| StoreError::Corrupt(format!("access {id} purpose: {e}")))?;
            Ok(AccessRecord {
                id,
                ts_ms,
                username,
                kind,
                purpose,
            })
        })
        .transpose()
    }

    /// Number of accesses to plate data in the log.
    pub fn access_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT count(*) FROM log WHERE category = 'access' AND kind != 'result'",
            (),
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Log entries, newest first, optionally only one person's, before
    /// entry `before` (for paging).
    pub fn log_entries(
        &self,
        username: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let filter = LogFilter {
            username: username.map(String::from),
            ..LogFilter::default()
        };
        self.log_entries_matching(&filter, before, limit)
    }

    /// Log entries, newest first, that match every field `filter` sets,
    /// with `seq` below `before`.
    pub fn log_entries_matching(
        &self,
        filter: &LogFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.reader()?;
        let case_number = crate::sql::json_field(conn.dialect(), "purpose", "case_number");
        conn.query_map(
            &format!(
                "SELECT {} FROM log WHERE (CAST(?1 AS TEXT) IS NULL OR username = ?1) \
                 AND (CAST(?2 AS TEXT) IS NULL OR category = ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR kind = ?3) \
                 AND (CAST(?4 AS TEXT) IS NULL OR {case_number} = ?4) \
                 AND ts >= ?5 AND ts < ?6 AND seq < ?7 ORDER BY seq DESC LIMIT ?8",
                log::COLUMNS
            ),
            params![
                filter.username,
                filter.category,
                filter.kind,
                filter.case_number,
                filter.from_ms.unwrap_or(i64::MIN),
                filter.to_ms.unwrap_or(i64::MAX),
                before.unwrap_or(i64::MAX),
                limit as i64
            ],
            |r| Ok(log::row_entry(r)?),
        )
    }

    /// Walks the whole log (see [`log::verify_conn`]).
    pub fn verify_log(&self) -> Result<log::Verification, StoreError> {
        match &self.main {
            crate::Main::Embedded { readers, .. } => {
                let conn = readers.get()?;
                log::verify_conn(&conn, &self.dir)
            }
            crate::Main::Postgres { pool, .. } => crate::postgres::connect::off_runtime(|| {
                let mut conn = pool.get()?;
                let v = crate::postgres::log::verify(&mut conn, None)
                    .map_err(crate::postgres::connect::statement_error)?;
                if !v.ok {
                    return Ok(v);
                }
                // The chain is intact: it must also still match every
                // checkpoint kept in the database.
                let head = log::Head {
                    seq: v.entries,
                    hash: hex::decode(&v.head)
                        .ok()
                        .and_then(|h| h.try_into().ok())
                        .unwrap_or([0; 32]),
                };
                let sql = crate::sql::Pg::new(&mut *conn);
                let anchor = crate::retention::load_log_anchor(&sql)?;
                Ok(
                    match crate::checkpoint::stored_problem(&sql, Vec::new(), head, anchor)? {
                        Some((seq, problem)) => log::Verification {
                            ok: false,
                            first_bad: Some(seq),
                            problem: Some(problem),
                            ..v
                        },
                        None => v,
                    },
                )
            }),
        }
    }
}

/// What an auditor narrows the log to; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub username: Option<String>,
    /// `access`, `auth`, `admin`, `alert`, `refused`, …
    pub category: Option<String>,
    /// `search`, `signed_in`, `evidence_export`, …
    pub kind: Option<String>,
    /// The purpose's case number, exactly.
    pub case_number: Option<String>,
    /// From this time (epoch ms, inclusive) …
    pub from_ms: Option<i64>,
    /// … to this time (exclusive).
    pub to_ms: Option<i64>,
}
