//! Corrections of misreads (SPEC R8.2; policy 003 § 429.8): the plate or
//! state of a read is changed where it is stored, so searches find it by
//! its true plate, while the original, who changed it, when and why are
//! kept in `corrections` and in the log.
//!
//! The record commits first, then the day file changes: the two are
//! separate files, and a change without its record must never happen.

use platekeeper_core::read::format_time_ms;
use platekeeper_core::{Plate, ReadId, Region};
use rusqlite::params;
use serde::Serialize;

use crate::access::{Access, Released, Sealed};
use crate::accounts::Actor;
use crate::{canvass_index, log, partition, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS corrections(
    id INTEGER PRIMARY KEY,
    read_id BLOB NOT NULL,
    read_ts INTEGER NOT NULL,
    old_plate TEXT NOT NULL,
    new_plate TEXT NOT NULL,
    old_state TEXT,
    new_state TEXT,
    reason TEXT NOT NULL,
    corrected_by TEXT NOT NULL,
    corrected_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_read ON corrections(read_id);
";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correction {
    pub id: i64,
    pub read_id: String,
    pub read_ts: String,
    pub old_plate: String,
    pub new_plate: String,
    pub old_state: Option<String>,
    pub new_state: Option<String>,
    pub reason: String,
    pub corrected_by: String,
    pub corrected_at: String,
}

impl Store {
    /// Corrects read `id` (stored at `ts_ms`), opened under `access`, to
    /// `to`: the true plate and, when given, the true state (`None`
    /// keeps the stored one). The access's entry and the correction's
    /// record commit together, then the day file changes.
    #[allow(clippy::too_many_arguments)]
    pub fn correct_read(
        &self,
        access: Access,
        id: ReadId,
        ts_ms: i64,
        to: (Plate, Option<Option<Region>>),
        reason: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Released<Correction>, StoreError> {
        let read = self.stored_read(id, ts_ms)?;
        let (plate, state) = to;
        let state = state.unwrap_or(read.region);
        let reason = crate::sharing::text("reason", reason, 1000)?;
        if plate == read.plate && state == read.region {
            return Err(StoreError::invalid(
                "nothing_to_correct",
                "the plate and state given are those already stored",
            ));
        }
        let day = read.locator.day;
        // The embedded store rewrites the row in its day file once the
        // correction is committed; PostgreSQL in the same transaction.
        let file = if self.on_postgres() {
            None
        } else {
            Some(
                self.day_files()
                    .into_iter()
                    .find(|f| f.day == day)
                    .ok_or_else(|| StoreError::not_found("read", read.id))?,
            )
        };
        let found = Sealed::new(&access, read, vec![(id, ts_ms)]);
        let (released, id) = self.release_with(access, found, now_ms, |tx, head, receipt, read| {
            tx.execute(
                "INSERT INTO corrections(read_id, read_ts, old_plate, new_plate, old_state, new_state, reason, corrected_by, corrected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![&read.id.as_bytes()[..], read.ts_ms, read.plate.to_string(), plate.to_string(),
                        read.region.map(|g| g.to_string()), state.map(|g| g.to_string()), reason,
                        actor.username, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            tx.execute(
                "UPDATE held_reads SET plate = ?2, state = ?3 WHERE read_id = ?1",
                params![&read.id.as_bytes()[..], plate.to_string(), state.map(|g| g.to_string())],
            )?;
            if file.is_none() {
                let table = crate::postgres::reads::partition_name(day);
                let meta: i64 = tx.query_row(
                    &format!("SELECT meta FROM {table} WHERE ts = ?1 AND id = ?2"),
                    params![read.ts_ms, &read.id.as_bytes()[..]],
                    |r| r.get(0),
                )?;
                let (cam, conf, _, heading) = partition::unpack_meta(meta);
                let meta = partition::pack_meta(cam, conf, state.map(|g| g.code()), heading);
                tx.execute(
                    &format!("UPDATE {table} SET plate = ?3, meta = ?4 WHERE ts = ?1 AND id = ?2"),
                    params![read.ts_ms, &read.id.as_bytes()[..], plate.code(), meta],
                )?;
            }
            let e = log::append(tx, head, actor.entry(now_ms, "admin", "read_corrected", serde_json::json!({
                "correction_id": id, "read_id": read.id.to_string(), "read_ts": format_time_ms(read.ts_ms),
                "access": receipt.access_id(),
                "plate": {"from": read.plate.to_string(), "to": plate.to_string()},
                "state": {"from": read.region.map(|g| g.to_string()), "to": state.map(|g| g.to_string())},
                "reason": reason,
            })))?;
            Ok((id, e.as_head()))
        })?;
        let read = released.value();
        if let Some(file) = file {
            let mut guard = file.writer()?;
            let conn = guard.as_mut().ok_or(StoreError::Poisoned)?;
            let rowid = read.locator.rowid;
            let (meta, pos): (i64, Option<i64>) =
                conn.query_row("SELECT meta, pos FROM reads WHERE rid = ?1", [rowid], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let (cam, conf, _, heading) = partition::unpack_meta(meta);
            let meta = partition::pack_meta(cam, conf, state.map(|g| g.code()), heading);
            conn.execute(
                "UPDATE reads SET plate = ?2, meta = ?3 WHERE rid = ?1",
                params![rowid, plate.code(), meta],
            )?;
            file.index_rows(&[(plate.code(), rowid, canvass_index::group_of(meta, pos))])?;
            if file.is_sealed() {
                *guard = None;
            }
        }
        self.dictionary
            .write()
            .map_err(|_| StoreError::Poisoned)?
            .observe(&plate, day);
        // The correction stands either way; a plate left behind only
        // lingers until the purge of its days, as before.
        if plate != read.plate {
            if let Err(e) = self.forget_if_unread(&read.plate) {
                tracing::warn!(error = %e, "a corrected read's old plate stays in the dictionary");
            }
        }
        let correction = Correction {
            id,
            read_id: read.id.to_string(),
            read_ts: format_time_ms(read.ts_ms),
            old_plate: read.plate.to_string(),
            new_plate: plate.to_string(),
            old_state: read.region.map(|g| g.to_string()),
            new_state: state.map(|g| g.to_string()),
            reason,
            corrected_by: actor.username.clone(),
            corrected_at: format_time_ms(now_ms),
        };
        Ok(released.map(|_| correction))
    }

    /// Takes `plate` out of the dictionary if no stored read carries it
    /// any more (a correction moved its only read away), so a pattern
    /// search neither counts nor names it. The days are looked at without
    /// the dictionary's lock (searches and ingest do not wait for them);
    /// the plate is watched meanwhile, and kept if ingest observed it.
    fn forget_if_unread(&self, plate: &Plate) -> Result<(), StoreError> {
        let span = {
            let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
            let span = dict.get(plate);
            if span.is_some() {
                dict.watch(plate);
            }
            span
        };
        let Some(span) = span else {
            return Ok(());
        };
        // The first day with the plate, or the first error, ends the look.
        let seen = if self.on_postgres() {
            self.pg_has_plate(plate)
        } else {
            self.day_files()
                .iter()
                .filter(|f| span.maybe_on(f.day))
                .map(|f| f.has_plate(plate.code()))
                .find(|r| !matches!(r, Ok(false)))
                .unwrap_or(Ok(false))
        };
        let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
        let observed = dict.unwatch(plate);
        if !seen? && !observed {
            dict.forget(plate);
        }
        Ok(())
    }

    /// Corrections, newest first (all, or one read's).
    pub fn corrections(
        &self,
        read: Option<platekeeper_core::ReadId>,
    ) -> Result<Vec<Correction>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, read_id, read_ts, old_plate, new_plate, old_state, new_state, reason, corrected_by, corrected_at
             FROM corrections WHERE CAST(?1 AS BYTEA) IS NULL OR read_id = ?1 ORDER BY id DESC LIMIT 10000",
        )?;
        let key = read.map(|r| r.as_bytes().to_vec());
        let mut rows = stmt.query([key])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: Vec<u8> = r.get(1)?;
            out.push(Correction {
                id: r.get(0)?,
                read_id: uuid::Uuid::from_slice(&id)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                read_ts: format_time_ms(r.get(2)?),
                old_plate: r.get(3)?,
                new_plate: r.get(4)?,
                old_state: r.get(5)?,
                new_state: r.get(6)?,
                reason: r.get(7)?,
                corrected_by: r.get(8)?,
                corrected_at: format_time_ms(r.get(9)?),
            });
        }
        Ok(out)
    }
}
