//! Alerts: hot-list hits found at ingest (SPEC R3.3, R3.4). An alert keeps
//! a copy of what the entry said when it hit, so removing the entry later
//! does not change what the officer was told.

use platekeeper_core::hotlist::matcher::MatchEntry;
use platekeeper_core::hotlist::{self, Disposition};
use platekeeper_core::{GeoPoint, NewRead, ReadId, Region};
use rusqlite::params;
use serde::Serialize;
use serde_json::json;

use crate::access::{Access, AccessKind, Sealed};
use crate::accounts::Actor;
use crate::cameras::Camera;
use crate::sql::{Optional as _, Sql};
use crate::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts(
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    read_id BLOB NOT NULL,
    read_ts INTEGER NOT NULL,
    plate TEXT NOT NULL,
    state INTEGER,
    camera TEXT NOT NULL,
    lat INTEGER,
    lon INTEGER,
    list_id INTEGER NOT NULL,
    list_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    entry_id INTEGER NOT NULL,
    entry_plate TEXT NOT NULL,
    reason TEXT NOT NULL,
    case_number TEXT,
    details TEXT,
    sent_count INTEGER NOT NULL DEFAULT 1,
    last_sent_at INTEGER NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    disposition TEXT,
    disposition_note TEXT,
    disposition_by TEXT,
    disposition_at INTEGER,
    UNIQUE (read_id, read_ts, entry_id)
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(acknowledged_at, last_sent_at);
";

/// A stored read to check against the hot lists, and its camera.
#[derive(Debug, Clone, Copy)]
pub struct HotCheck<'a> {
    pub read: &'a NewRead,
    pub camera: &'a Camera,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub created_at_ms: i64,
    pub read_id: String,
    pub read_ts_ms: i64,
    pub plate: String,
    pub state: Option<Region>,
    pub camera: String,
    pub position: Option<GeoPoint>,
    pub list_id: i64,
    pub list_name: String,
    pub kind: String,
    pub entry_id: i64,
    pub entry_plate: String,
    pub reason: String,
    pub case_number: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub verify_notice: &'static str,
    pub sent_count: i64,
    pub last_sent_at_ms: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub disposition: Option<String>,
    pub disposition_note: Option<String>,
    pub disposition_by: Option<String>,
    pub disposition_at_ms: Option<i64>,
}

/// How an alert was handled: what acknowledging and closing it return.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertStatus {
    pub id: i64,
    pub sent_count: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub disposition: Option<String>,
    pub disposition_note: Option<String>,
    pub disposition_by: Option<String>,
    pub disposition_at_ms: Option<i64>,
}

/// An alert's case number, reason and list name.
pub type AlertPurpose = (Option<String>, String, String);

const COLUMNS: &str = "id, created_at, read_id, read_ts, plate, state, camera, lat, lon, \
     list_id, list_name, kind, entry_id, entry_plate, reason, case_number, details, sent_count, \
     last_sent_at, acknowledged_by, acknowledged_at, disposition, disposition_note, \
     disposition_by, disposition_at";

fn alert_row(r: &crate::sql::Row) -> Result<Alert, StoreError> {
    let id: Vec<u8> = r.get(2)?;
    let id: [u8; 16] = id
        .try_into()
        .map_err(|_| StoreError::Corrupt("alert read id length".into()))?;
    let state: Option<u8> = r.get(5)?;
    let lat: Option<i32> = r.get(7)?;
    let lon: Option<i32> = r.get(8)?;
    let details: Option<String> = r.get(16)?;
    Ok(Alert {
        id: r.get(0)?,
        created_at_ms: r.get(1)?,
        read_id: uuid::Uuid::from_bytes(id).to_string(),
        read_ts_ms: r.get(3)?,
        plate: r.get(4)?,
        state: state.and_then(Region::from_code),
        camera: r.get(6)?,
        position: lat.zip(lon).map(|(a, b)| GeoPoint::from_micro(a, b)),
        list_id: r.get(9)?,
        list_name: r.get(10)?,
        kind: r.get(11)?,
        entry_id: r.get(12)?,
        entry_plate: r.get(13)?,
        reason: r.get(14)?,
        case_number: r.get(15)?,
        details: match details {
            Some(d) => serde_json::from_str(&d)
                .map_err(|e| StoreError::Corrupt(format!("alert details: {e}")))?,
            None => serde_json::Map::new(),
        },
        verify_notice: hotlist::VERIFY_NOTICE,
        sent_count: r.get(17)?,
        last_sent_at_ms: r.get(18)?,
        acknowledged_by: r.get(19)?,
        acknowledged_at_ms: r.get(20)?,
        disposition: r.get(21)?,
        disposition_note: r.get(22)?,
        disposition_by: r.get(23)?,
        disposition_at_ms: r.get(24)?,
    })
}

/// Why an update to alert `id` changed nothing: it does not exist, or
/// it is past the state the update needs (`how`).
fn not_open(tx: &dyn Sql, id: i64, how: &str) -> Result<StoreError, StoreError> {
    let exists: bool = tx.query_row("SELECT count(*) FROM alerts WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    Ok(if exists {
        StoreError::AlertState(format!("alert {id} {how}"))
    } else {
        StoreError::UnknownAlert(id)
    })
}

impl Store {
    /// Checks reads against every active hot-list entry and stores an
    /// alert per hit; returns the new alerts. Call after the reads are
    /// stored and before acknowledging them (R3.3). A read already
    /// alerted on for an entry (a re-send) is not alerted again.
    pub fn match_hot(&self, reads: &[HotCheck<'_>], now_ms: i64) -> Result<Vec<Alert>, StoreError> {
        self.refresh_stale();
        let mut hits: Vec<(usize, i64)> = Vec::new();
        {
            let m = self.hot.read().map_err(|_| StoreError::Poisoned)?;
            if m.is_empty() {
                return Ok(Vec::new());
            }
            let mut found: Vec<&MatchEntry> = Vec::new();
            for (i, r) in reads.iter().enumerate() {
                found.clear();
                m.matches(&r.read.plate, r.read.region, now_ms, &mut found);
                hits.extend(found.iter().map(|e| (i, e.id)));
            }
        }
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        self.unlogged(|tx| {
            let mut ids = Vec::with_capacity(hits.len());
            {
                // The entry's fields are copied as they are now; an entry
                // removed since the match gives no alert.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO alerts(created_at, read_id, read_ts, plate, state, camera, lat, lon,
                        list_id, list_name, kind, entry_id, entry_plate, reason, case_number, details, last_sent_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, l.id, l.name, l.kind, e.id, e.plate, e.reason,
                        e.case_number, e.details, ?1
                     FROM hotlist_entries e JOIN hotlists l ON l.id = e.list_id WHERE e.id = ?9
                     ON CONFLICT DO NOTHING",
                )?;
                for (i, entry) in hits {
                    let HotCheck { read, camera } = reads[i];
                    let micro = read.position.or(camera.position).map(GeoPoint::to_micro);
                    if insert.execute(params![
                        now_ms,
                        &read.id.0.as_bytes()[..],
                        read.ts_ms,
                        read.plate.as_str(),
                        read.region.map(|g| g.code()),
                        camera.id,
                        micro.map(|m| m.0),
                        micro.map(|m| m.1),
                        entry
                    ])? == 1
                    {
                        ids.push(tx.last_insert_rowid()?);
                    }
                }
            }
            let mut alerts = Vec::with_capacity(ids.len());
            {
                let mut get =
                    tx.prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"))?;
                for id in ids {
                    let mut rows = get.query([id])?;
                    if let Some(row) = rows.next()? {
                        alerts.push(alert_row(row)?);
                    }
                }
            }
            let ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
            crate::postgres::alert_bus::announce(tx, &self.alert_relay.node, &ids)?;
            Ok(alerts)
        })
    }

    /// One alert (plate data: under an access).
    pub fn alert(&self, access: &Access, id: i64) -> Result<Sealed<Alert>, StoreError> {
        let (alert, read) = self.alert_and_read(id)?;
        Ok(Sealed::new(access, alert, read.into_iter().collect()))
    }

    /// One alert and the read behind it (gone once its day is purged),
    /// under an access.
    pub fn alert_with_read(
        &self,
        access: &Access,
        id: i64,
    ) -> Result<Sealed<(Alert, Option<crate::search::StoredRead>)>, StoreError> {
        let (alert, read) = self.alert_and_read(id)?;
        let stored = match read {
            Some((read_id, ts)) => self.find_read_at(read_id, ts)?,
            None => None,
        };
        Ok(Sealed::new(
            access,
            (alert, stored),
            read.into_iter().collect(),
        ))
    }

    /// An alert, and the read it was raised on (id and time).
    fn alert_and_read(&self, id: i64) -> Result<(Alert, Option<(ReadId, i64)>), StoreError> {
        let alert = self
            .alert_unlogged(id)?
            .ok_or(StoreError::UnknownAlert(id))?;
        let read = alert_read_of(&alert);
        Ok((alert, read))
    }

    fn alert_unlogged(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(alert_row).transpose()
    }

    /// Alerts newest first, before id `before` (`i64::MAX` to start);
    /// only those without a disposition when `open_only`.
    pub fn alerts(
        &self,
        access: &Access,
        before: i64,
        limit: usize,
        open_only: bool,
    ) -> Result<Sealed<Vec<Alert>>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE id < ?1 AND (?2 = 0 OR disposition IS NULL)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let mut rows = stmt.query(params![before, open_only, limit.clamp(1, 500) as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(alert_row(r)?);
        }
        let returned = out.iter().filter_map(alert_read_of).collect();
        Ok(Sealed::new(access, out, returned))
    }

    /// What an alert's read is to be opened for: the entry's case number,
    /// reason and list name (no plate data).
    pub fn alert_purpose(&self, id: i64) -> Result<Option<AlertPurpose>, StoreError> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT case_number, reason, list_name FROM alerts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
    }

    /// Whether `username` has opened alert `id`: an access of theirs
    /// returned its read (listing alerts, opening the alert or its read).
    /// Acknowledging and closing an alert is for those who saw it.
    pub fn has_opened_alert(&self, username: &str, id: i64) -> Result<bool, StoreError> {
        let conn = self.reader()?;
        let read: Option<Vec<u8>> = conn
            .query_row("SELECT read_id FROM alerts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(read) = read.and_then(|b| uuid::Uuid::from_slice(&b).ok().map(ReadId)) else {
            return Err(StoreError::not_found("alert", id));
        };
        drop(conn);
        Ok(!self
            .reads_seen_by(username, &[read], Some(AccessKind::AlertView.as_str()))?
            .is_empty())
    }

    /// An alert's handling, without its plate data.
    pub fn alert_status(&self, id: i64) -> Result<Option<AlertStatus>, StoreError> {
        Ok(self.alert_unlogged(id)?.map(|a| AlertStatus {
            id: a.id,
            sent_count: a.sent_count,
            acknowledged_by: a.acknowledged_by,
            acknowledged_at_ms: a.acknowledged_at_ms,
            disposition: a.disposition,
            disposition_note: a.disposition_note,
            disposition_by: a.disposition_by,
            disposition_at_ms: a.disposition_at_ms,
        }))
    }

    /// Records that a person has seen the alert (stops re-sending).
    pub fn acknowledge_alert(
        &self,
        id: i64,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<AlertStatus, StoreError> {
        self.with_log(|tx, head| {
            let n = tx.execute(
                "UPDATE alerts SET acknowledged_by = ?2, acknowledged_at = ?3
                 WHERE id = ?1 AND acknowledged_at IS NULL",
                params![id, actor.username, now_ms],
            )?;
            if n == 0 {
                return Err(not_open(tx, id, "is already acknowledged")?);
            }
            let e = crate::log::append(
                tx,
                head,
                actor.entry(now_ms, "alert", "alert_acknowledged", json!({"alert": id})),
            )?;
            Ok(((), e))
        })?;
        self.alert_status(id)?.ok_or(StoreError::UnknownAlert(id))
    }

    /// Records what the officer found (R3.4). Once set, a disposition is
    /// not overwritten: a correction is a new log entry by an
    /// administrator, not an edit. Setting one also acknowledges.
    pub fn set_alert_disposition(
        &self,
        id: i64,
        disposition: Disposition,
        note: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<AlertStatus, StoreError> {
        let note = hotlist::clean_text(note, "note")
            .map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
        if note.chars().count() > hotlist::MAX_NOTE_CHARS {
            return Err(StoreError::InvalidAlert(format!(
                "note: at most {} characters",
                hotlist::MAX_NOTE_CHARS
            )));
        }
        if disposition.needs_note() && note.is_empty() {
            return Err(StoreError::InvalidAlert(format!(
                "note: required when the disposition is {:?} (say what was done or why)",
                disposition.as_str()
            )));
        }
        self.with_log(|tx, head| {
            let n = tx.execute(
                "UPDATE alerts SET disposition = ?2, disposition_note = ?3, disposition_by = ?4,
                    disposition_at = ?5,
                    acknowledged_by = coalesce(acknowledged_by, ?4),
                    acknowledged_at = coalesce(acknowledged_at, ?5)
                 WHERE id = ?1 AND disposition IS NULL",
                params![id, disposition.as_str(), note, actor.username, now_ms],
            )?;
            if n == 0 {
                return Err(not_open(tx, id, "already has a disposition")?);
            }
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "alert",
                    "alert_disposition",
                    json!({"alert": id, "disposition": disposition.as_str(), "note": note}),
                ),
            )?;
            Ok(((), e))
        })?;
        self.alert_status(id)?.ok_or(StoreError::UnknownAlert(id))
    }

    /// Unacknowledged alerts last sent at least `after_ms` ago, marked as
    /// sent again now; at most `max_sends` sends each, and only within
    /// `after_ms × max_sends` of the hit: after a restart, hits from long
    /// ago are not worth an officer's attention again (the vehicle has
    /// moved on; they stay in `GET /api/v1/alerts`).
    pub fn alerts_to_resend(
        &self,
        now_ms: i64,
        after_ms: i64,
        max_sends: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        self.unlogged(|tx| {
            let mut out = Vec::new();
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE alerts SET sent_count = sent_count + 1, last_sent_at = ?1
                     WHERE acknowledged_at IS NULL AND last_sent_at <= ?2 AND sent_count < ?3
                       AND created_at > ?4
                     RETURNING {COLUMNS}"
                ))?;
                let window = now_ms - after_ms.saturating_mul(max_sends);
                let mut rows = stmt.query(params![now_ms, now_ms - after_ms, max_sends, window])?;
                while let Some(r) = rows.next()? {
                    out.push(alert_row(r)?);
                }
            }
            // Every node's streams re-send it, not only this one's.
            let ids: Vec<i64> = out.iter().map(|a| a.id).collect();
            crate::postgres::alert_bus::announce(tx, &self.alert_relay.node, &ids)?;
            Ok(out)
        })
    }

    /// Alerts by id, for sending down this node's streams alerts another
    /// node raised or re-sent ([`Store::on_other_nodes_alerts`]): not an
    /// access of its own, as with the alerts this node raises; each
    /// person's first delivery is logged by the server's alert hub. Ids
    /// that name no alert are skipped.
    pub fn alerts_to_relay(&self, ids: &[i64]) -> Result<Vec<Alert>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            out.extend(self.alert_unlogged(id)?);
        }
        Ok(out)
    }
}

/// The read an alert was raised on (id and time), as logged with an
/// access that shows the alert.
fn alert_read_of(alert: &Alert) -> Option<(ReadId, i64)> {
    ReadId::parse(&alert.read_id)
        .ok()
        .map(|id| (id, alert.read_ts_ms))
}
