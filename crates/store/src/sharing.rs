//! Sharing with other agencies and release (SPEC R7; Civil Code
//! § 1798.90.55(b); policies 000 § 462.14, 001 § 467.7, 003 § 429.7,
//! 004 § 462.5), and the tracking of downloads (SPEC R6.3).
//!
//! The register holds every agency data was, or was asked to be, shared
//! with; each written request (with its document) and the administrator's
//! decision; every transfer — exports made here and e-mails recorded by
//! hand; and public-records requests, which are logged and routed to the
//! records process, never answered with plate data. Whether an agency may
//! receive data is `platekeeper_core::sharing::may_share`, applied at
//! approval, at export and at every recorded transfer.

use platekeeper_core::read::format_time_ms;
use platekeeper_core::sharing::{may_share, AgencyKind};
use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::accounts::Actor;
use crate::evidence::Package;
use crate::sql::{Optional as _, Sql};
use crate::{log, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agencies(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    contact TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sharing_requests(
    id INTEGER PRIMARY KEY,
    agency_id INTEGER NOT NULL REFERENCES agencies(id),
    requester_name TEXT NOT NULL,
    case_number TEXT,
    purpose TEXT NOT NULL,
    query TEXT NOT NULL,
    received_on TEXT NOT NULL,
    document_name TEXT,
    document_type TEXT,
    document BLOB,
    document_sha256 TEXT,
    status TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    decision_note TEXT,
    fulfilled_at INTEGER
);
CREATE TABLE IF NOT EXISTS transfers(
    id INTEGER PRIMARY KEY,
    agency_id INTEGER NOT NULL REFERENCES agencies(id),
    request_id INTEGER REFERENCES sharing_requests(id),
    method TEXT NOT NULL,
    description TEXT NOT NULL,
    reads INTEGER,
    download_id INTEGER,
    sent_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS downloads(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref_id INTEGER NOT NULL,
    access_id INTEGER NOT NULL,
    username TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    destroy_by INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    reads INTEGER NOT NULL,
    destroyed_at INTEGER,
    destroyed_by TEXT,
    destruction_note TEXT
);
CREATE TABLE IF NOT EXISTS records_requests(
    id INTEGER PRIMARY KEY,
    requester TEXT NOT NULL,
    organisation TEXT,
    received_on TEXT NOT NULL,
    description TEXT NOT NULL,
    routed_to TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
";

/// Largest written request accepted (a scanned letter or a PDF).
pub const MAX_DOCUMENT_BYTES: usize = 10 << 20;
/// Where public-records requests are routed.
pub const RECORDS_PROCESS: &str = "Custodian of Records (public records process)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agency {
    pub id: i64,
    pub name: String,
    pub kind: AgencyKind,
    pub state: String,
    pub contact: Option<String>,
    pub created_by: String,
    pub created_at: String,
    /// Whether data may go to it (California public agencies only).
    pub may_receive: bool,
}

fn agency_row(r: &crate::sql::Row) -> Result<Agency, StoreError> {
    let kind: String = r.get(2)?;
    let kind = AgencyKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("agency kind {kind:?}")))?;
    let name: String = r.get(1)?;
    let state: String = r.get(3)?;
    Ok(Agency {
        id: r.get(0)?,
        may_receive: may_share(&name, kind, &state).is_ok(),
        name,
        kind,
        state,
        contact: r.get(4)?,
        created_by: r.get(5)?,
        created_at: format_time_ms(r.get(6)?),
    })
}

/// The written request as received.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewSharingRequest {
    pub agency_id: i64,
    pub requester_name: String,
    pub case_number: Option<String>,
    pub purpose: String,
    /// The search the agency asks for, as the API's search request.
    pub query: serde_json::Value,
    /// `YYYY-MM-DD`.
    pub received_on: String,
    pub document: Option<Document>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharingRequest {
    pub id: i64,
    pub agency_id: i64,
    pub agency_name: String,
    pub requester_name: String,
    pub case_number: Option<String>,
    pub purpose: String,
    pub query: serde_json::Value,
    pub received_on: String,
    pub document_name: Option<String>,
    pub document_sha256: Option<String>,
    /// `pending`, `approved`, `denied` or `fulfilled`.
    pub status: String,
    pub recorded_by: String,
    pub recorded_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    pub fulfilled_at: Option<String>,
}

const REQUEST_COLUMNS: &str =
    "s.id, s.agency_id, a.name, s.requester_name, s.case_number, s.purpose, s.query, \
     s.received_on, s.document_name, s.document_sha256, s.status, s.recorded_by, s.recorded_at, \
     s.decided_by, s.decided_at, s.decision_note, s.fulfilled_at";

fn request_row(r: &crate::sql::Row) -> Result<SharingRequest, StoreError> {
    let query: String = r.get(6)?;
    let time = |i: usize| -> Result<Option<String>, StoreError> {
        Ok(r.get::<_, Option<i64>>(i)?.map(format_time_ms))
    };
    Ok(SharingRequest {
        id: r.get(0)?,
        agency_id: r.get(1)?,
        agency_name: r.get(2)?,
        requester_name: r.get(3)?,
        case_number: r.get(4)?,
        purpose: r.get(5)?,
        query: serde_json::from_str(&query).unwrap_or(serde_json::Value::Null),
        received_on: r.get(7)?,
        document_name: r.get(8)?,
        document_sha256: r.get(9)?,
        status: r.get(10)?,
        recorded_by: r.get(11)?,
        recorded_at: format_time_ms(r.get(12)?),
        decided_by: r.get(13)?,
        decided_at: time(14)?,
        decision_note: r.get(15)?,
        fulfilled_at: time(16)?,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub id: i64,
    pub agency_id: i64,
    pub agency_name: String,
    pub request_id: Option<i64>,
    /// `export` (made here) or what was recorded by hand: `email`,
    /// `portable_media`, `other`.
    pub method: String,
    pub description: String,
    pub reads: Option<i64>,
    pub download_id: Option<i64>,
    pub sent_at: String,
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Download {
    pub id: i64,
    /// `evidence`, `sharing_export` or `search_export` (its reference is the access).
    pub kind: String,
    /// The hold or sharing request exported.
    pub ref_id: i64,
    pub access_id: i64,
    pub username: String,
    pub created_at: String,
    pub destroy_by: String,
    pub file_name: String,
    pub sha256: String,
    pub bytes: i64,
    pub reads: i64,
    pub destroyed_at: Option<String>,
    pub destroyed_by: Option<String>,
    pub destruction_note: Option<String>,
    /// Past its destroy-by date with no destruction recorded.
    pub overdue: bool,
}

const DOWNLOAD_COLUMNS: &str =
    "id, kind, ref_id, access_id, username, created_at, destroy_by, file_name, sha256, \
     bytes, reads, destroyed_at, destroyed_by, destruction_note";

fn download_row(r: &crate::sql::Row, now_ms: i64) -> Result<Download, StoreError> {
    let destroy_by: i64 = r.get(6)?;
    let destroyed_at: Option<i64> = r.get(11)?;
    Ok(Download {
        id: r.get(0)?,
        kind: r.get(1)?,
        ref_id: r.get(2)?,
        access_id: r.get(3)?,
        username: r.get(4)?,
        created_at: format_time_ms(r.get(5)?),
        destroy_by: format_time_ms(destroy_by),
        file_name: r.get(7)?,
        sha256: r.get(8)?,
        bytes: r.get(9)?,
        reads: r.get(10)?,
        destroyed_at: destroyed_at.map(format_time_ms),
        destroyed_by: r.get(12)?,
        destruction_note: r.get(13)?,
        overdue: destroyed_at.is_none() && destroy_by <= now_ms,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordsRequest {
    pub id: i64,
    pub requester: String,
    pub organisation: Option<String>,
    pub received_on: String,
    pub description: String,
    pub routed_to: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// One agency's line in the register of data shared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisterLine {
    pub agency: Agency,
    pub requests: i64,
    pub approved: i64,
    pub refused_or_denied: i64,
    pub transfers: Vec<Transfer>,
    pub reads_shared: i64,
}

/// Checks a text field: trimmed, 1 to `max` characters.
pub(crate) fn text(field: &str, v: &str, max: usize) -> Result<String, StoreError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(StoreError::invalid(
            "invalid_field",
            format!("{field} must be 1 to {max} characters of text"),
        ));
    }
    Ok(v.to_string())
}

/// The reason a change is logged with (lifting a hold, revoking a
/// device): 1 to 500 characters; `what` completes "reason must say why …".
pub(crate) fn reason(v: &str, what: &str) -> Result<String, StoreError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 500 {
        return Err(StoreError::invalid(
            "invalid_reason",
            format!("reason must say why {what} (1 to 500 characters)"),
        ));
    }
    Ok(v.to_string())
}

/// Checks a `YYYY-MM-DD` date no later than today.
fn date_not_future(field: &str, v: &str, now_ms: i64) -> Result<String, StoreError> {
    let bad = || {
        StoreError::invalid(
            "invalid_date",
            format!("{field} {v:?} is not a date like 2026-07-14"),
        )
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(v.trim(), &fmt).map_err(|_| bad())?;
    let day_ms = d.midnight().assume_utc().unix_timestamp() * 1000;
    if day_ms > now_ms + 86_400_000 {
        return Err(StoreError::invalid(
            "invalid_date",
            format!("{field} {v} is in the future"),
        ));
    }
    if d.year() < 2000 {
        return Err(bad());
    }
    Ok(d.to_string())
}

impl Store {
    /// Adds an agency to the register (any kind: requests from agencies
    /// that may not receive data are recorded too, and refused).
    pub fn create_agency(
        &self,
        name: &str,
        kind: AgencyKind,
        state: &str,
        contact: Option<&str>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Agency, StoreError> {
        let name = text("name", name, 200)?;
        let state = state.trim().to_ascii_uppercase();
        if state.len() != 2 || !state.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(StoreError::invalid(
                "invalid_state",
                format!("state {state:?} must be a two-letter code such as CA"),
            ));
        }
        let contact = contact.map(|c| text("contact", c, 300)).transpose()?;
        let (id, _) = self.with_log(|tx, head| {
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM agencies WHERE lower(name) = lower(?1)", [&name], |r| r.get(0))
                .optional()?;
            if let Some(id) = exists {
                return Err(StoreError::conflict(
                    "agency_exists",
                    format!("agency {name:?} is already registered (id {id})"),
                ));
            }
            tx.execute(
                "INSERT INTO agencies(name, kind, state, contact, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, kind.as_str(), state, contact, actor.username, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(
                tx,
                head,
                actor.entry(now_ms, "admin", "agency_registered",
                    serde_json::json!({"agency_id": id, "name": name, "kind": kind.as_str(), "state": state})),
            )?;
            Ok((id, e))
        })?;
        self.agency(id)?
            .ok_or_else(|| StoreError::not_found("agency", id))
    }

    pub fn agency(&self, id: i64) -> Result<Option<Agency>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, kind, state, contact, created_by, created_at FROM agencies WHERE id = ?1",
        )?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(agency_row).transpose()
    }

    pub fn agencies(&self) -> Result<Vec<Agency>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, kind, state, contact, created_by, created_at FROM agencies ORDER BY name",
        )?;
        crate::sql::collect_rows(&mut stmt, (), agency_row)
    }

    /// Records a written request. It waits for the administrator.
    pub fn create_sharing_request(
        &self,
        req: NewSharingRequest,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SharingRequest, StoreError> {
        let agency = self.agency(req.agency_id)?.ok_or_else(|| {
            StoreError::invalid(
                "unknown_agency",
                format!("agency_id {} is not registered", req.agency_id),
            )
        })?;
        let requester = text("requester_name", &req.requester_name, 200)?;
        let purpose = text("purpose", &req.purpose, 2000)?;
        let case_number = req
            .case_number
            .as_deref()
            .map(|c| text("case_number", c, 100))
            .transpose()?;
        let received_on = date_not_future("received_on", &req.received_on, now_ms)?;
        if !req.query.is_object() {
            return Err(StoreError::invalid(
                "invalid_query",
                "query must be a search request object",
            ));
        }
        let query = req.query.to_string();
        if query.len() > 100_000 {
            return Err(StoreError::invalid(
                "invalid_query",
                "query is longer than 100 KB",
            ));
        }
        let doc = req.document.as_ref().map(checked_document).transpose()?;
        let (id, _) = self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO sharing_requests(agency_id, requester_name, case_number, purpose, query, received_on,
                     document_name, document_type, document, document_sha256, status, recorded_by, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12)",
                params![
                    agency.id, requester, case_number, purpose, query, received_on,
                    doc.as_ref().map(|d| d.0.clone()), doc.as_ref().map(|d| d.1.clone()),
                    doc.as_ref().map(|d| d.3.as_slice()), doc.as_ref().map(|d| d.2.clone()),
                    actor.username, now_ms
                ],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(
                tx,
                head,
                actor.entry(now_ms, "admin", "sharing_request_recorded", serde_json::json!({
                    "request_id": id, "agency_id": agency.id, "agency": agency.name,
                    "requester_name": requester, "purpose": purpose, "document_sha256": doc.as_ref().map(|d| d.2.clone()),
                })),
            )?;
            Ok((id, e))
        })?;
        self.sharing_request(id)?
            .ok_or_else(|| StoreError::not_found("sharing_request", id))
    }

    pub fn sharing_request(&self, id: i64) -> Result<Option<SharingRequest>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM sharing_requests s JOIN agencies a ON a.id = s.agency_id WHERE s.id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(request_row).transpose()
    }

    /// The written request on file: (name, media type, bytes).
    pub fn sharing_document(
        &self,
        id: i64,
    ) -> Result<Option<(String, String, Vec<u8>)>, StoreError> {
        let conn = self.reader()?;
        conn
            .query_row(
                "SELECT document_name, document_type, document FROM sharing_requests WHERE id = ?1 AND document IS NOT NULL",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
    }

    /// Files the written request of a pending request recorded without
    /// it (it came by post after the phone call). A request is approved
    /// only with its document on file; once decided, what was decided on
    /// stays as it was. Logged with the document's SHA-256.
    pub fn attach_sharing_document(
        &self,
        id: i64,
        document: Document,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SharingRequest, StoreError> {
        let (name, media_type, sha, bytes) = checked_document(&document)?;
        self.with_log(|tx, head| {
            let status: Option<String> = tx
                .query_row("SELECT status FROM sharing_requests WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            match status.as_deref() {
                None => return Err(StoreError::not_found("sharing_request", id)),
                Some("pending") => {}
                Some(other) => {
                    return Err(StoreError::conflict(
                        "request_decided",
                        format!("sharing request {id} is already {other}: the document it was decided on stays as it was"),
                    ))
                }
            }
            tx.execute(
                "UPDATE sharing_requests SET document_name = ?2, document_type = ?3, document = ?4, document_sha256 = ?5
                 WHERE id = ?1",
                params![id, name, media_type, bytes.as_slice(), sha],
            )?;
            log::append(tx, head, actor.entry(now_ms, "admin", "sharing_document_attached", serde_json::json!({
                "request_id": id, "document_name": name, "document_sha256": sha,
            })))
        })?;
        self.sharing_request(id)?
            .ok_or_else(|| StoreError::not_found("sharing_request", id))
    }

    /// Requests, newest first; `status` filters.
    pub fn sharing_requests(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SharingRequest>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM sharing_requests s JOIN agencies a ON a.id = s.agency_id
             WHERE s.id < ?1 AND (CAST(?2 AS TEXT) IS NULL OR s.status = ?2) ORDER BY s.id DESC LIMIT ?3"
        ))?;
        crate::sql::collect_rows(
            &mut stmt,
            params![before.unwrap_or(i64::MAX), status, limit as i64],
            request_row,
        )
    }

    /// Checks the request's agency may receive data; a refusal is
    /// logged (the audit lists it with the shares) and returned.
    fn refuse_unless_shareable(
        &self,
        req: &SharingRequest,
        action: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Agency, StoreError> {
        let agency = self
            .agency(req.agency_id)?
            .ok_or_else(|| StoreError::not_found("agency", req.agency_id))?;
        if let Err(refusal) = may_share(&agency.name, agency.kind, &agency.state) {
            self.log_event(actor.entry(
                now_ms,
                "admin",
                "sharing_refused",
                serde_json::json!({
                    "request_id": req.id, "agency_id": agency.id, "agency": agency.name,
                    "kind": agency.kind.as_str(), "state": agency.state, "action": action,
                    "reason": refusal.to_string(),
                }),
            ))?;
            return Err(StoreError::Refused {
                code: refusal.code(),
                message: format!("{action} refused: {refusal}"),
            });
        }
        Ok(agency)
    }

    /// The administrator's approval: refused, by statute, for anything
    /// but a California public agency.
    pub fn approve_sharing_request(
        &self,
        id: i64,
        note: Option<&str>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SharingRequest, StoreError> {
        self.decide(id, true, note, actor, now_ms)
    }

    pub fn deny_sharing_request(
        &self,
        id: i64,
        reason: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SharingRequest, StoreError> {
        let reason = text("reason", reason, 1000)?;
        self.decide(id, false, Some(&reason), actor, now_ms)
    }

    fn decide(
        &self,
        id: i64,
        approve: bool,
        note: Option<&str>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SharingRequest, StoreError> {
        let req = self
            .sharing_request(id)?
            .ok_or_else(|| StoreError::not_found("sharing_request", id))?;
        if req.status != "pending" {
            return Err(StoreError::conflict(
                "request_decided",
                format!("sharing request {id} is already {}", req.status),
            ));
        }
        if approve {
            self.refuse_unless_shareable(&req, "approval", actor, now_ms)?;
            // SPEC R7.2: a share follows a written request, reviewed and
            // kept on file; it is on file before the approval.
            if req.document_sha256.is_none() {
                return Err(StoreError::conflict(
                    "document_required",
                    format!("sharing request {id} has no written request on file: attach it (PUT /api/v1/sharing/requests/{id}/document) before approving"),
                ));
            }
        }
        let note = note.map(|n| text("note", n, 1000)).transpose()?;
        let status = if approve { "approved" } else { "denied" };
        self.with_log(|tx, head| {
            let changed = tx.execute(
                "UPDATE sharing_requests SET status = ?2, decided_by = ?3, decided_at = ?4, decision_note = ?5
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status, actor.username, now_ms, note],
            )?;
            if changed == 0 {
                return Err(StoreError::conflict("request_decided", format!("sharing request {id} was decided meanwhile")));
            }
            log::append(tx, head, actor.entry(now_ms, "admin", &format!("sharing_request_{status}"), serde_json::json!({
                "request_id": id, "agency_id": req.agency_id, "agency": req.agency_name, "note": note,
            })))
        })?;
        self.sharing_request(id)?
            .ok_or_else(|| StoreError::not_found("sharing_request", id))
    }

    /// Before an export of an approved request: the request and its
    /// agency, or the refusal (logged).
    pub fn sharing_export_allowed(
        &self,
        id: i64,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(SharingRequest, Agency), StoreError> {
        let req = self
            .sharing_request(id)?
            .ok_or_else(|| StoreError::not_found("sharing_request", id))?;
        let agency = self.refuse_unless_shareable(&req, "export", actor, now_ms)?;
        if req.status != "approved" && req.status != "fulfilled" {
            return Err(StoreError::conflict(
                "request_not_approved",
                format!(
                    "sharing request {id} is {}; only an approved request is fulfilled",
                    req.status
                ),
            ));
        }
        Ok((req, agency))
    }

    /// Records a transfer made outside the system (for example by
    /// e-mail) under an approved request.
    #[allow(clippy::too_many_arguments)]
    pub fn record_transfer(
        &self,
        request_id: i64,
        method: &str,
        description: &str,
        reads: Option<i64>,
        sent_at_ms: i64,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Transfer, StoreError> {
        if !["email", "portable_media", "other"].contains(&method) {
            return Err(StoreError::invalid(
                "invalid_method",
                format!("method {method:?} must be email, portable_media or other (exports made here are recorded by themselves)"),
            ));
        }
        let description = text("description", description, 2000)?;
        if sent_at_ms > now_ms + 300_000 {
            return Err(StoreError::invalid(
                "invalid_date",
                "sent_at is in the future",
            ));
        }
        let (req, agency) = self.sharing_export_allowed(request_id, actor, now_ms)?;
        let (id, _) = self.with_log(|tx, head| {
            let id = insert_transfer(tx, agency.id, Some(req.id), method, &description, reads, None, sent_at_ms, actor, now_ms)?;
            tx.execute(
                "UPDATE sharing_requests SET status = 'fulfilled', fulfilled_at = coalesce(fulfilled_at, ?2) WHERE id = ?1",
                params![req.id, now_ms],
            )?;
            let e = log::append(tx, head, actor.entry(now_ms, "admin", "transfer_recorded", serde_json::json!({
                "transfer_id": id, "request_id": req.id, "agency_id": agency.id, "agency": agency.name,
                "method": method, "reads": reads, "sent_at": format_time_ms(sent_at_ms),
            })))?;
            Ok((id, e))
        })?;
        self.transfers(Some(agency.id))?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::not_found("transfer", id))
    }

    pub fn transfers(&self, agency_id: Option<i64>) -> Result<Vec<Transfer>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT t.id, t.agency_id, a.name, t.request_id, t.method, t.description, t.reads, t.download_id,
                    t.sent_at, t.recorded_by
             FROM transfers t JOIN agencies a ON a.id = t.agency_id
             WHERE CAST(?1 AS BIGINT) IS NULL OR t.agency_id = ?1 ORDER BY t.id",
        )?;
        crate::sql::collect_rows(&mut stmt, [agency_id], |r| {
            Ok(Transfer {
                id: r.get(0)?,
                agency_id: r.get(1)?,
                agency_name: r.get(2)?,
                request_id: r.get(3)?,
                method: r.get(4)?,
                description: r.get(5)?,
                reads: r.get(6)?,
                download_id: r.get(7)?,
                sent_at: format_time_ms(r.get(8)?),
                recorded_by: r.get(9)?,
            })
        })
    }

    /// The register: every agency, its requests and every transfer.
    pub fn sharing_register(&self) -> Result<Vec<RegisterLine>, StoreError> {
        let transfers = self.transfers(None)?;
        let conn = self.reader()?;
        let mut out = Vec::new();
        for agency in self.agencies()? {
            let (requests, approved, refused): (i64, i64, i64) = conn.query_row(
                "SELECT count(*), count(*) FILTER (WHERE status IN ('approved', 'fulfilled')),
                        count(*) FILTER (WHERE status = 'denied')
                 FROM sharing_requests WHERE agency_id = ?1",
                [agency.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mine: Vec<Transfer> = transfers
                .iter()
                .filter(|t| t.agency_id == agency.id)
                .cloned()
                .collect();
            out.push(RegisterLine {
                reads_shared: mine.iter().filter_map(|t| t.reads).sum(),
                transfers: mine,
                requests,
                approved,
                refused_or_denied: refused,
                agency,
            });
        }
        Ok(out)
    }

    /// One download, with `overdue` judged at `now_ms`.
    pub fn download(&self, id: i64, now_ms: i64) -> Result<Option<Download>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DOWNLOAD_COLUMNS} FROM downloads WHERE id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(|r| download_row(r, now_ms)).transpose()
    }

    /// Downloads, newest first; only those overdue for destruction if
    /// asked.
    pub fn downloads(
        &self,
        overdue_only: bool,
        now_ms: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Download>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DOWNLOAD_COLUMNS} FROM downloads
             WHERE id < ?1 AND (NOT ?2 OR (destroyed_at IS NULL AND destroy_by <= ?3))
             ORDER BY id DESC LIMIT ?4"
        ))?;
        crate::sql::collect_rows(
            &mut stmt,
            params![
                before.unwrap_or(i64::MAX),
                overdue_only,
                now_ms,
                limit as i64
            ],
            |r| download_row(r, now_ms),
        )
    }

    /// Records that a downloaded copy was destroyed.
    pub fn record_destruction(
        &self,
        id: i64,
        note: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Download, StoreError> {
        let note = text("note", note, 1000)?;
        let d = self
            .download(id, now_ms)?
            .ok_or_else(|| StoreError::not_found("download", id))?;
        if d.destroyed_at.is_some() {
            return Err(StoreError::conflict(
                "already_destroyed",
                format!("download {id}'s destruction is already recorded"),
            ));
        }
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE downloads SET destroyed_at = ?2, destroyed_by = ?3, destruction_note = ?4 WHERE id = ?1",
                params![id, now_ms, actor.username, note],
            )?;
            log::append(tx, head, actor.entry(now_ms, "admin", "download_destroyed", serde_json::json!({
                "download_id": id, "kind": d.kind, "ref_id": d.ref_id, "file_name": d.file_name, "note": note,
            })))
        })?;
        self.download(id, now_ms)?
            .ok_or_else(|| StoreError::not_found("download", id))
    }

    /// Records a public-records request and routes it to the records
    /// process. Nothing is answered from the ALPR data (SPEC R7.4, R7.5).
    pub fn record_records_request(
        &self,
        requester: &str,
        organisation: Option<&str>,
        received_on: &str,
        description: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<RecordsRequest, StoreError> {
        let requester = text("requester", requester, 200)?;
        let organisation = organisation
            .map(|o| text("organisation", o, 200))
            .transpose()?;
        let received_on = date_not_future("received_on", received_on, now_ms)?;
        let description = text("description", description, 5000)?;
        let (id, _) = self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO records_requests(requester, organisation, received_on, description, routed_to, recorded_by, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![requester, organisation, received_on, description, RECORDS_PROCESS, actor.username, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(tx, head, actor.entry(now_ms, "admin", "records_request_routed", serde_json::json!({
                "records_request_id": id, "requester": requester, "organisation": organisation,
                "routed_to": RECORDS_PROCESS,
            })))?;
            Ok((id, e))
        })?;
        self.records_requests()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| StoreError::not_found("records_request", id))
    }

    pub fn records_requests(&self) -> Result<Vec<RecordsRequest>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, requester, organisation, received_on, description, routed_to, recorded_by, recorded_at
             FROM records_requests ORDER BY id DESC",
        )?;
        crate::sql::collect_rows(&mut stmt, (), |r| {
            Ok(RecordsRequest {
                id: r.get(0)?,
                requester: r.get(1)?,
                organisation: r.get(2)?,
                received_on: r.get(3)?,
                description: r.get(4)?,
                routed_to: r.get(5)?,
                recorded_by: r.get(6)?,
                recorded_at: format_time_ms(r.get(7)?),
            })
        })
    }
}

/// A written request's (name, media type, SHA-256, bytes), checked.
fn checked_document(d: &Document) -> Result<(String, String, String, &Vec<u8>), StoreError> {
    if d.bytes.is_empty() || d.bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::invalid(
            "invalid_document",
            format!("document must be 1 byte to {} MB", MAX_DOCUMENT_BYTES >> 20),
        ));
    }
    Ok((
        text("document.name", &d.name, 200)?,
        text("document.media_type", &d.media_type, 100)?,
        hex::encode(Sha256::digest(&d.bytes)),
        &d.bytes,
    ))
}

#[allow(clippy::too_many_arguments)]
fn insert_download(
    tx: &dyn Sql,
    kind: &str,
    ref_id: i64,
    access_id: i64,
    package: &Package,
    destroy_by: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO downloads(kind, ref_id, access_id, username, created_at, destroy_by, file_name, sha256, bytes, reads)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![kind, ref_id, access_id, actor.username, now_ms, destroy_by, package.file_name,
                package.sha256, package.size as i64, package.reads as i64],
    )?;
    tx.last_insert_rowid()
}

#[allow(clippy::too_many_arguments)]
fn insert_transfer(
    tx: &dyn Sql,
    agency_id: i64,
    request_id: Option<i64>,
    method: &str,
    description: &str,
    reads: Option<i64>,
    download_id: Option<i64>,
    sent_at_ms: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO transfers(agency_id, request_id, method, description, reads, download_id, sent_at, recorded_by, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![agency_id, request_id, method, description, reads, download_id, sent_at_ms, actor.username, now_ms],
    )?;
    tx.last_insert_rowid()
}

/// Audit documents past retention: decided requests, transfers,
/// destroyed downloads' records, records requests and audit reports.
const DOCUMENT_TABLES: &[(&str, &str)] = &[
    ("sharing_requests", "status <> 'pending' AND coalesce(fulfilled_at, decided_at) < ?1 AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.request_id = sharing_requests.id AND t.recorded_at >= ?1)"),
    ("transfers", "recorded_at < ?1"),
    ("downloads", "destroyed_at IS NOT NULL AND destroyed_at < ?1"),
    ("records_requests", "recorded_at < ?1"),
    ("audit_reports", "generated_at < ?1"),
];

pub(crate) fn count_documents_before(conn: &dyn Sql, cutoff_ms: i64) -> Result<u64, StoreError> {
    let mut n = 0;
    for (table, cond) in DOCUMENT_TABLES {
        n += conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE {cond}"),
            [cutoff_ms],
            |r| r.get::<_, i64>(0),
        )?;
    }
    Ok(n as u64)
}

pub(crate) fn purge_documents_before(tx: &dyn Sql, cutoff_ms: i64) -> Result<u64, StoreError> {
    let mut n = 0;
    // Transfers first: a request goes only once no kept transfer names it.
    for (table, cond) in [
        DOCUMENT_TABLES[1],
        DOCUMENT_TABLES[0],
        DOCUMENT_TABLES[2],
        DOCUMENT_TABLES[3],
        DOCUMENT_TABLES[4],
    ] {
        n += tx.execute(&format!("DELETE FROM {table} WHERE {cond}"), [cutoff_ms])? as u64;
    }
    Ok(n)
}

pub(crate) fn count_overdue_downloads(conn: &dyn Sql, now_ms: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM downloads WHERE destroyed_at IS NULL AND destroy_by <= ?1",
        [now_ms],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

/// Records an export of an approved request inside `tx`, after `head`:
/// the download, the transfer, the fulfilment and the log entry. Returns
/// the download's id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_sharing_export(
    tx: &dyn Sql,
    head: log::Head,
    req: &SharingRequest,
    access_id: i64,
    package: &Package,
    destroy_by: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<(i64, log::LogEntry), StoreError> {
    let download = insert_download(
        tx,
        "sharing_export",
        req.id,
        access_id,
        package,
        destroy_by,
        actor,
        now_ms,
    )?;
    let transfer = insert_transfer(
        tx,
        req.agency_id,
        Some(req.id),
        "export",
        &format!("export {} ({} reads)", package.file_name, package.reads),
        Some(package.reads as i64),
        Some(download),
        now_ms,
        actor,
        now_ms,
    )?;
    tx.execute(
        "UPDATE sharing_requests SET status = 'fulfilled', fulfilled_at = coalesce(fulfilled_at, ?2) WHERE id = ?1",
        params![req.id, now_ms],
    )?;
    let e = log::append(
        tx,
        head,
        actor.entry(
            now_ms,
            "admin",
            "sharing_exported",
            serde_json::json!({
                "request_id": req.id, "agency_id": req.agency_id, "agency": req.agency_name,
                "access": access_id, "download_id": download, "transfer_id": transfer,
                "reads": package.reads, "sha256": package.sha256,
            }),
        ),
    )?;
    Ok((download, e))
}

/// What a tracked download holds besides a sharing request's package.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exported {
    /// A hold's evidence package.
    Evidence { hold_id: i64 },
    /// A search's results as CSV; the download's reference is the access
    /// that found them.
    Search,
}

/// Records an export as a tracked download inside `tx`, after `head`,
/// with its log entry (`evidence_exported` or `search_exported`).
/// Returns the download's id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_export(
    tx: &dyn Sql,
    head: log::Head,
    what: Exported,
    access_id: i64,
    package: &Package,
    destroy_by: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<(i64, log::LogEntry), StoreError> {
    let (kind, ref_id, log_kind) = match what {
        Exported::Evidence { hold_id } => ("evidence", hold_id, "evidence_exported"),
        Exported::Search => ("search_export", access_id, "search_exported"),
    };
    let download = insert_download(
        tx, kind, ref_id, access_id, package, destroy_by, actor, now_ms,
    )?;
    let mut details = serde_json::json!({
        "access": access_id, "download_id": download,
        "reads": package.reads, "images": package.images, "sha256": package.sha256,
        "destroy_by": format_time_ms(destroy_by),
    });
    if let Exported::Evidence { hold_id } = what {
        details["hold_id"] = hold_id.into();
    }
    let e = log::append(tx, head, actor.entry(now_ms, "admin", log_kind, details))?;
    Ok((download, e))
}
