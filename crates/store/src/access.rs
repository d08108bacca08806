//! Accesses to plate data and the access log (SPEC R4.3).
//!
//! An [`Access`] is the only key to plate data: every function that
//! returns reads or images takes one. The store makes an `Access` only in
//! [`Store::open_access`], after the log entry describing who is looking,
//! at what and why has been committed. A caller therefore cannot see data
//! without leaving a durable record first.
//!
//! Deciding *whether* someone may open an access (role, training,
//! approval, purpose policy) belongs to the server's accountability layer.

use platekeeper_core::{Purpose, ReadId};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::log::{self, LogEntry, NewEntry};
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

/// Proof that an access was logged. Deliberately not `Clone`: each data
/// request goes with exactly one log entry.
#[derive(Debug)]
pub struct Access {
    id: i64,
    username: String,
    purpose: Purpose,
}

impl Access {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn purpose(&self) -> &Purpose {
        &self.purpose
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

impl Store {
    /// Appends an entry to the audit log in its own transaction and
    /// returns it once durable.
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

    /// Runs `f` in a transaction on the main database with the log's head
    /// held, commits, and records the new head: the way every change that
    /// must be logged is written, so the change and its entry commit
    /// together or not at all.
    pub(crate) fn with_log<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, log::Head) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>
    where
        T: HasHead,
    {
        let mut conn = self.main()?;
        let mut head = self.head.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction()?;
        let out = f(&tx, *head)?;
        tx.commit()?;
        if let Some(h) = out.head() {
            *head = h;
            log::write_head(&self.dir, h)?;
        }
        Ok(out)
    }

    /// Writes the access-log entry and, once it is durable, returns the
    /// [`Access`] that unlocks the data.
    pub fn open_access(&self, req: AccessRequest, now_ms: i64) -> Result<Access, StoreError> {
        let purpose = serde_json::to_value(&req.purpose)
            .map_err(|e| StoreError::Corrupt(format!("purpose: {e}")))?;
        let details = req.query;
        let entry = self.log_event(NewEntry {
            ts_ms: now_ms,
            category: "access",
            kind: req.kind.as_str().to_string(),
            username: req.username.clone(),
            affiliation: req.affiliation,
            role: req.role,
            client: req.client,
            details,
            purpose: Some(purpose),
        })?;
        Ok(Access {
            id: entry.seq,
            username: req.username,
            purpose: req.purpose,
        })
    }

    /// Records what an access returned — how many reads, and which — in
    /// the log (so an auditor sees what was seen) and in an index (so an
    /// image can be opened only under the access that found its read).
    pub fn record_results(
        &self,
        access: &Access,
        reads: &[(ReadId, i64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = reads.iter().map(|(id, _)| id.to_string()).collect();
        self.with_log(|tx, head| {
            let entry = log::append(
                tx,
                head,
                NewEntry {
                    ts_ms: now_ms,
                    category: "access",
                    kind: "result".into(),
                    username: access.username.clone(),
                    affiliation: String::new(),
                    role: None,
                    client: None,
                    details: serde_json::json!({"access": access.id, "result_count": reads.len(), "reads": ids}),
                    purpose: None,
                },
            )?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO access_reads(access_id, read_id, ts) VALUES (?1, ?2, ?3)",
            )?;
            for (id, ts) in reads {
                stmt.execute(params![access.id, &id.as_bytes()[..], ts])?;
            }
            Ok(entry)
        })?;
        Ok(())
    }

    /// The time of a read that `access_id` returned, if it returned it.
    pub fn access_returned(&self, access_id: i64, read: ReadId) -> Result<Option<i64>, StoreError> {
        let conn = self.main_readers.get()?;
        Ok(conn
            .query_row(
                "SELECT ts FROM access_reads WHERE access_id = ?1 AND read_id = ?2",
                params![access_id, &read.as_bytes()[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A logged access, by id.
    pub fn access_record(&self, id: i64) -> Result<Option<AccessRecord>, StoreError> {
        let conn = self.main_readers.get()?;
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
        let conn = self.main_readers.get()?;
        Ok(conn.query_row(
            "SELECT count(*) FROM log WHERE category = 'access' AND kind != 'result'",
            [],
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
        let conn = self.main_readers.get()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM log WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR category = ?2) \
             AND (?3 IS NULL OR kind = ?3) \
             AND (?4 IS NULL OR (purpose IS NOT NULL AND json_valid(purpose) AND json_extract(purpose, '$.case_number') = ?4)) \
             AND ts >= ?5 AND ts < ?6 AND seq < ?7 ORDER BY seq DESC LIMIT ?8",
            log::COLUMNS
        ))?;
        let rows = stmt.query_map(
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
            log::row_entry,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Walks the whole log (see [`log::verify_conn`]).
    pub fn verify_log(&self) -> Result<log::Verification, StoreError> {
        let conn = self.main_readers.get()?;
        log::verify_conn(&conn, &self.dir)
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

/// Results of a logged change that carry the log's new head.
pub(crate) trait HasHead {
    fn head(&self) -> Option<log::Head>;
}

impl HasHead for LogEntry {
    fn head(&self) -> Option<log::Head> {
        Some(log::Head {
            seq: self.seq,
            hash: self.hash,
        })
    }
}

impl<T> HasHead for (T, LogEntry) {
    fn head(&self) -> Option<log::Head> {
        self.1.head()
    }
}
