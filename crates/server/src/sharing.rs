//! Sharing with other agencies and public-records requests (SPEC R7):
//! the agency register, written requests and the administrator's decision,
//! exports of approved requests, transfers recorded by hand, and the
//! register of everything shared. Refusals cite Civil Code
//! § 1798.90.55(b) (`platekeeper_core::sharing`).

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use platekeeper_core::read::parse_time_ms;
use platekeeper_core::sharing::AgencyKind;
use platekeeper_core::{Purpose, Right};
use platekeeper_store::{
    AccessKind, Agency, Document, NewSharingRequest, RecordsRequest, RegisterLine, SharingRequest,
    Transfer,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::{access, Person};
use crate::json::ApiJson;
use crate::search::{build_query, id_cursor, page_limit, path_param, SearchRequest};
use crate::{blocking, ApiError, AppState};

/// Most reads one export carries.
pub const MAX_EXPORT_READS: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agencies", post(create_agency).get(list_agencies))
        .route(
            "/api/v1/sharing/requests",
            post(create_request).get(list_requests),
        )
        .route("/api/v1/sharing/requests/{id}", get(get_request))
        .route(
            "/api/v1/sharing/requests/{id}/document",
            get(get_document).put(attach_document),
        )
        .route("/api/v1/sharing/requests/{id}/approve", post(approve))
        .route("/api/v1/sharing/requests/{id}/deny", post(deny))
        .route("/api/v1/sharing/requests/{id}/export", get(export))
        .route("/api/v1/sharing/transfers", post(record_transfer))
        .route("/api/v1/sharing/register", get(register))
        .route(
            "/api/v1/records-requests",
            post(create_records_request).get(list_records_requests),
        )
}

#[derive(Deserialize, ToSchema)]
pub struct NewAgency {
    pub name: String,
    /// `ca_public`, `federal`, `out_of_state` or `private`.
    pub kind: String,
    /// Two-letter state code.
    pub state: String,
    pub contact: Option<String>,
}

/// Register an agency (administrator). Any kind may be registered;
/// only California public agencies can receive data.
#[utoipa::path(post, path = "/api/v1/agencies", request_body = NewAgency, responses((status = 201, body = Object)), tag = "sharing")]
pub async fn create_agency(
    State(state): State<AppState>,
    who: Person,
    ApiJson(req): ApiJson<NewAgency>,
) -> Result<(StatusCode, Json<Agency>), ApiError> {
    who.require(Right::ManageSharing)?;
    let kind = AgencyKind::parse(req.kind.trim()).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_kind",
            format!(
                "kind {:?} must be ca_public, federal, out_of_state or private",
                req.kind
            ),
        )
    })?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let agency = blocking(move || {
        Ok(store.create_agency(
            &req.name,
            kind,
            &req.state,
            req.contact.as_deref(),
            &actor,
            now,
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(agency)))
}

#[derive(Serialize, ToSchema)]
pub struct AgencyList {
    #[schema(value_type = Vec<Object>)]
    pub agencies: Vec<Agency>,
}

#[utoipa::path(get, path = "/api/v1/agencies", responses((status = 200, body = AgencyList)), tag = "sharing")]
pub async fn list_agencies(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<AgencyList>, ApiError> {
    who.require(Right::ManageSharing)?;
    let store = state.store.clone();
    Ok(Json(AgencyList {
        agencies: blocking(move || Ok(store.agencies()?)).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct DocumentBody {
    /// File name, e.g. `request.pdf`.
    pub name: String,
    pub media_type: String,
    /// The file, base64 (at most 10 MB decoded).
    pub content_base64: String,
}

#[derive(Deserialize, ToSchema)]
pub struct NewRequest {
    pub agency_id: i64,
    pub requester_name: String,
    /// The intended purpose, as the written request states it.
    pub purpose: String,
    /// The search asked for, in the form of `POST /api/v1/search` (no
    /// `purpose`, `limit` or `cursor` needed).
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// When the written request arrived (`YYYY-MM-DD`; today if absent).
    pub received_on: Option<String>,
    /// The requesting agency's case number, if given.
    pub case_number: Option<String>,
    /// The written request itself.
    pub document: Option<DocumentBody>,
}

/// The UTC date of `now_ms`, `YYYY-MM-DD`: the default for a date
/// received.
fn today(now_ms: i64) -> String {
    platekeeper_core::read::format_time_ms(now_ms)
        .chars()
        .take(10)
        .collect()
}

fn parse_query(v: &serde_json::Value) -> Result<SearchRequest, ApiError> {
    let req: SearchRequest = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::unprocessable(
            "invalid_query",
            format!("query is not a search request: {e}"),
        )
    })?;
    build_query(&req)?.check().map_err(ApiError::from)?;
    Ok(req)
}

/// Record a written request from another agency (administrator). It
/// waits for approval.
#[utoipa::path(post, path = "/api/v1/sharing/requests", request_body = NewRequest, responses((status = 201, body = Object)), tag = "sharing")]
pub async fn create_request(
    State(state): State<AppState>,
    who: Person,
    ApiJson(req): ApiJson<NewRequest>,
) -> Result<(StatusCode, Json<SharingRequest>), ApiError> {
    who.require(Right::ManageSharing)?;
    parse_query(&req.query)?;
    let document = req.document.map(decode_document).transpose()?;
    let now = state.now_ms();
    let received_on = req.received_on.unwrap_or_else(|| today(now));
    let new = NewSharingRequest {
        agency_id: req.agency_id,
        requester_name: req.requester_name,
        case_number: req.case_number,
        purpose: req.purpose,
        query: req.query,
        received_on,
        document,
    };
    let store = state.store.clone();
    let actor = who.actor();
    let r = blocking(move || Ok(store.create_sharing_request(new, &actor, now)?)).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

fn decode_document(d: DocumentBody) -> Result<Document, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d.content_base64.trim())
        .map_err(|e| {
            ApiError::unprocessable(
                "invalid_document",
                format!("document.content_base64 is not base64: {e}"),
            )
        })?;
    Ok(Document {
        name: d.name,
        media_type: d.media_type,
        bytes,
    })
}

/// File the written request of a pending request (administrator); the
/// request cannot be approved without it (SPEC R7.2). Logged with its
/// SHA-256.
#[utoipa::path(put, path = "/api/v1/sharing/requests/{id}/document", params(("id" = i64, Path)), request_body = DocumentBody,
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)), tag = "sharing")]
pub async fn attach_document(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<DocumentBody>,
) -> Result<Json<SharingRequest>, ApiError> {
    who.require(Right::ManageSharing)?;
    let id = path_param(path)?;
    let document = decode_document(body)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.attach_sharing_document(id, document, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct RequestListParams {
    /// `pending`, `approved`, `denied` or `fulfilled`.
    pub status: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestPage {
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<SharingRequest>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sharing/requests", params(RequestListParams), responses((status = 200, body = RequestPage)), tag = "sharing")]
pub async fn list_requests(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<RequestListParams>, QueryRejection>,
) -> Result<Json<RequestPage>, ApiError> {
    who.require(Right::ManageSharing)?;
    let p = crate::search::query_param(params)?;
    if let Some(s) = p.status.as_deref() {
        if !["pending", "approved", "denied", "fulfilled"].contains(&s) {
            return Err(ApiError::unprocessable(
                "invalid_status",
                format!("status {s:?} must be pending, approved, denied or fulfilled"),
            ));
        }
    }
    let limit = page_limit(p.limit)?;
    let before = id_cursor(p.cursor.as_deref())?;
    let store = state.store.clone();
    let requests =
        blocking(move || Ok(store.sharing_requests(p.status.as_deref(), before, limit)?)).await?;
    let next_cursor = (requests.len() == limit)
        .then(|| requests.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(RequestPage {
        requests,
        next_cursor,
    }))
}

async fn request_by_id(state: &AppState, id: i64) -> Result<SharingRequest, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(store.sharing_request(id)?))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_sharing_request",
                format!("sharing request {id} does not exist"),
            )
        })
}

#[utoipa::path(get, path = "/api/v1/sharing/requests/{id}", params(("id" = i64, Path)), responses((status = 200, body = Object)), tag = "sharing")]
pub async fn get_request(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<SharingRequest>, ApiError> {
    who.require(Right::ManageSharing)?;
    Ok(Json(request_by_id(&state, path_param(path)?).await?))
}

/// The written request on file.
#[utoipa::path(get, path = "/api/v1/sharing/requests/{id}/document", params(("id" = i64, Path)), responses((status = 200, description = "The document as received")), tag = "sharing")]
pub async fn get_document(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    who.require(Right::ManageSharing)?;
    let id = path_param(path)?;
    let store = state.store.clone();
    let (name, media_type, bytes) = blocking(move || Ok(store.sharing_document(id)?))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "no_document",
                format!("sharing request {id} has no document on file"),
            )
        })?;
    // The type was given by whoever uploaded it: never let a browser run
    // it as a page of this site.
    let safe_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let _ = media_type;
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe_name}\""),
        )
        .header("x-content-type-options", "nosniff")
        .body(Body::from(bytes))
        .unwrap_or_default())
}

#[derive(Deserialize, ToSchema, Default)]
pub struct Decision {
    pub note: Option<String>,
    /// Required to deny.
    pub reason: Option<String>,
}

/// Approve a request (administrator). Refused (403 `sharing_refused`,
/// citing Civil Code § 1798.90.55(b)) unless the agency is a California
/// public agency; the refusal is logged.
#[utoipa::path(post, path = "/api/v1/sharing/requests/{id}/approve", params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)), tag = "sharing")]
pub async fn approve(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    body: axum::body::Bytes,
) -> Result<Json<SharingRequest>, ApiError> {
    who.require(Right::ManageSharing)?;
    let id = path_param(path)?;
    // The body is optional: `{}`, `{"note": …}` or nothing.
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Decision>(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("body: {e}")))?
            .note
    };
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.approve_sharing_request(id, note.as_deref(), &actor, now)?))
            .await?,
    ))
}

/// Deny a request, with the reason (administrator).
#[utoipa::path(post, path = "/api/v1/sharing/requests/{id}/deny", params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = Object)), tag = "sharing")]
pub async fn deny(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(d): ApiJson<Decision>,
) -> Result<Json<SharingRequest>, ApiError> {
    who.require(Right::ManageSharing)?;
    let id = path_param(path)?;
    let reason = d.reason.or(d.note).unwrap_or_default();
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.deny_sharing_request(id, &reason, &actor, now)?)).await?,
    ))
}

/// Fulfil an approved request: its query runs as an access (purpose: the
/// request's), and the reads leave as a package like an evidence export,
/// recorded as a download, a transfer to the agency, and the request's
/// fulfilment.
#[utoipa::path(get, path = "/api/v1/sharing/requests/{id}/export", params(("id" = i64, Path)),
    responses((status = 200, description = "The zip", content_type = "application/zip"), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)), tag = "sharing")]
pub async fn export(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(path)?;
    sharing_zip(&state, &who, id).await
}

/// Checks that `who` may export request `id` now: the rights, and that
/// the request is approved and its agency may receive data (a refusal of
/// the agency is logged, as any attempt to share with it).
pub(crate) async fn may_export_sharing(
    state: &AppState,
    who: &Person,
    id: i64,
) -> Result<(SharingRequest, Agency), ApiError> {
    who.require(Right::ManageSharing)?;
    who.require_plate_data(state, Right::ExportReads)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    blocking(move || Ok(store.sharing_export_allowed(id, &actor, now)?)).await
}

/// Request `id`'s package, exported by `who` (see [`export`]).
pub(crate) async fn sharing_zip(
    state: &AppState,
    who: &Person,
    id: i64,
) -> Result<Response, ApiError> {
    let (req, agency) = may_export_sharing(state, who, id).await?;
    let now = state.now_ms();
    let search = parse_query(&req.query)?;
    let mut query = build_query(&search)?;
    query.limit = platekeeper_store::search::MAX_LIMIT;
    query.cursor = None;
    // What was approved is what existed when it was approved: a query
    // with no end (or one past the approval) never sends reads made
    // after it, however late or often the export runs (issue 22's sweep).
    let approved_at = req
        .decided_at
        .as_deref()
        .and_then(|t| platekeeper_core::read::parse_time_ms("decided_at", t).ok())
        .ok_or_else(|| ApiError::internal(format!("sharing request {id} has no approval time")))?;
    query.to_ms = Some(query.to_ms.map_or(approved_at, |to| to.min(approved_at)));
    let purpose = Purpose {
        case_number: req
            .case_number
            .clone()
            .unwrap_or_else(|| format!("SR-{}", req.id)),
        offense: "sharing request".into(),
        reason: format!(
            "Approved sharing request {} from {}: {}",
            req.id, agency.name, req.purpose
        ),
    };
    let access = access(
        who,
        AccessKind::Export,
        serde_json::json!({"sharing_request": req.id, "agency": agency.name, "query": req.query}),
        purpose,
    );
    let store = state.store.clone();
    let actor = who.actor();
    let (package, download) = blocking(move || {
        let plan = store.plan(query)?;
        let found = store.sharing_reads(&access, plan, MAX_EXPORT_READS)?;
        Ok(store
            .export_sharing(access, found, &req, &agency, &actor, now)?
            .into_value())
    })
    .await?;
    Ok(crate::retention::package_response(
        package,
        &download,
        "application/zip",
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct NewTransfer {
    /// The approved request the transfer fulfils.
    pub request_id: i64,
    /// `email`, `portable_media` or `other`.
    pub method: String,
    /// What was sent, to whom (e.g. the e-mail's subject and recipient).
    pub description: String,
    pub reads: Option<i64>,
    /// When it was sent (RFC 3339); now if absent.
    pub sent_at: Option<String>,
}

/// Record a transfer made outside the system, such as an e-mail (SPEC
/// R7.3). Refused for agencies that may not receive data.
#[utoipa::path(post, path = "/api/v1/sharing/transfers", request_body = NewTransfer, responses((status = 201, body = Object)), tag = "sharing")]
pub async fn record_transfer(
    State(state): State<AppState>,
    who: Person,
    ApiJson(t): ApiJson<NewTransfer>,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    who.require(Right::ManageSharing)?;
    let now = state.now_ms();
    let sent_at = match t.sent_at.as_deref() {
        Some(s) => {
            parse_time_ms("sent_at", s).map_err(|e| ApiError::unprocessable(e.code, e.message))?
        }
        None => now,
    };
    let store = state.store.clone();
    let actor = who.actor();
    let transfer = blocking(move || {
        Ok(store.record_transfer(
            t.request_id,
            &t.method,
            &t.description,
            t.reads,
            sent_at,
            &actor,
            now,
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(transfer)))
}

#[derive(Serialize, ToSchema)]
pub struct Register {
    #[schema(value_type = Vec<Object>)]
    pub agencies: Vec<RegisterLine>,
}

/// Every agency, its requests, and every transfer of data to it.
#[utoipa::path(get, path = "/api/v1/sharing/register", responses((status = 200, body = Register)), tag = "sharing")]
pub async fn register(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<Register>, ApiError> {
    if !who.account.role.may(Right::ReadAuditLog) {
        who.require(Right::ManageSharing)?;
    }
    let store = state.store.clone();
    Ok(Json(Register {
        agencies: blocking(move || Ok(store.sharing_register()?)).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewRecordsRequest {
    pub requester: String,
    pub organisation: Option<String>,
    /// `YYYY-MM-DD`; today if absent.
    pub received_on: Option<String>,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordsRequestReceipt {
    #[schema(value_type = Object)]
    pub request: RecordsRequest,
    /// What happens next: routed to the records process; no plate data is
    /// released by the system.
    pub note: String,
}

/// Record a public-records request from a non-law-enforcement party: it
/// is logged and routed to the records process, never answered with
/// plate data (SPEC R7.4, R7.5).
#[utoipa::path(post, path = "/api/v1/records-requests", request_body = NewRecordsRequest, responses((status = 201, body = RecordsRequestReceipt)), tag = "sharing")]
pub async fn create_records_request(
    State(state): State<AppState>,
    who: Person,
    ApiJson(r): ApiJson<NewRecordsRequest>,
) -> Result<(StatusCode, Json<RecordsRequestReceipt>), ApiError> {
    who.require(Right::ManageSharing)?;
    let now = state.now_ms();
    let received_on = r.received_on.unwrap_or_else(|| today(now));
    let store = state.store.clone();
    let actor = who.actor();
    let request = blocking(move || {
        Ok(store.record_records_request(
            &r.requester,
            r.organisation.as_deref(),
            &received_on,
            &r.description,
            &actor,
            now,
        )?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(RecordsRequestReceipt {
            note: format!(
                "Routed to the {}. ALPR data is confidential and is not released to the public by this system.",
                request.routed_to
            ),
            request,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RecordsRequestList {
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<RecordsRequest>,
}

#[utoipa::path(get, path = "/api/v1/records-requests", responses((status = 200, body = RecordsRequestList)), tag = "sharing")]
pub async fn list_records_requests(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<RecordsRequestList>, ApiError> {
    who.require(Right::ManageSharing)?;
    let store = state.store.clone();
    Ok(Json(RecordsRequestList {
        requests: blocking(move || Ok(store.records_requests()?)).await?,
    }))
}
