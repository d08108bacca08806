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

use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Search,
    ImageView,
    Export,
    AlertView,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Search => "search",
            AccessKind::ImageView => "image_view",
            AccessKind::Export => "export",
            AccessKind::AlertView => "alert_view",
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
    /// True for accesses made by the development identity that stands in
    /// until accounts exist; marked so they can never pass for a person's.
    pub development: bool,
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
    /// Writes the access-log entry and, once it is durable, returns the
    /// [`Access`] that unlocks the data.
    pub fn open_access(&self, req: AccessRequest, now_ms: i64) -> Result<Access, StoreError> {
        let purpose_json = serde_json::to_string(&req.purpose)
            .map_err(|e| StoreError::Corrupt(format!("purpose: {e}")))?;
        let conn = self.main()?;
        conn.execute(
            "INSERT INTO access_log(ts, username, affiliation, kind, query, purpose, client, development)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now_ms,
                req.username,
                req.affiliation,
                req.kind.as_str(),
                req.query.to_string(),
                purpose_json,
                req.client,
                req.development
            ],
        )?;
        Ok(Access {
            id: conn.last_insert_rowid(),
            username: req.username,
            purpose: req.purpose,
        })
    }

    /// Records what an access returned: how many reads, and which (so an
    /// image can later be opened only under the access that found its
    /// read, and an auditor can see what was seen).
    pub fn record_results(
        &self,
        access: &Access,
        reads: &[(ReadId, i64)],
    ) -> Result<(), StoreError> {
        let mut conn = self.main()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO access_results(access_id, result_count) VALUES (?1, ?2)",
            params![access.id, reads.len() as i64],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO access_reads(access_id, read_id, ts) VALUES (?1, ?2, ?3)",
            )?;
            for (id, ts) in reads {
                stmt.execute(params![access.id, &id.as_bytes()[..], ts])?;
            }
        }
        tx.commit()?;
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
                "SELECT id, ts, username, kind, purpose FROM access_log WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, ts_ms, username, kind, purpose)| {
            let purpose = serde_json::from_str(&purpose)
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

    /// Number of entries in the access log.
    pub fn access_count(&self) -> Result<u64, StoreError> {
        let conn = self.main_readers.get()?;
        Ok(conn.query_row("SELECT count(*) FROM access_log", [], |r| {
            r.get::<_, i64>(0)
        })? as u64)
    }
}
