//! Hot lists (SPEC R3.1, R3.2, R3.5): lists, hand-entered entries and
//! file imports. Every change goes to the audit trail (category
//! `hotlist`). Managing lists needs `manage_hot_lists`; seeing which lists
//! exist (names and counts, no plates) needs `view_alerts`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use platekeeper_core::hotlist::import::{self, Format};
use platekeeper_core::hotlist::{self, ListKind, RawEntry};
use platekeeper_core::read::parse_time_ms;
use platekeeper_core::Right;
use platekeeper_store::{HotEntry, HotList, ImportFile, NewHotList};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::Person;
use crate::json::ApiJson;
use crate::search::path_param;
use crate::{blocking, ApiError, AppState};

/// Largest import file: a 1M-line NCIC extract is about 70 MB.
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hotlists", post(create_list).get(list_lists))
        .route("/api/v1/hotlists/{id}", get(get_list).delete(delete_list))
        .route(
            "/api/v1/hotlists/{id}/entries",
            post(add_entry).get(list_entries),
        )
        .route(
            "/api/v1/hotlists/{id}/entries/{entry_id}",
            delete(remove_entry),
        )
        .route(
            "/api/v1/hotlists/{id}/import",
            post(import_file).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
}

#[derive(Deserialize, ToSchema)]
pub struct NewListBody {
    pub name: String,
    /// `stolen_vehicle`, `stolen_plate`, `wanted`, `missing_person`,
    /// `amber`, `warrant` or `agency`.
    pub kind: String,
    /// Days entries are kept (1–730); the daily job deletes older ones.
    pub retention_days: i64,
    /// Entries also match common misreads (0/O/D/Q, 1/I/L/T, 8/B, …).
    #[serde(default)]
    pub fuzzy: bool,
}

/// Creates a hot list.
#[utoipa::path(
    post,
    path = "/api/v1/hotlists",
    request_body = NewListBody,
    responses(
        (status = 201, description = "The new list", body = Object),
        (status = 409, description = "A list with this name exists", body = crate::error::ErrorBody),
        (status = 422, description = "Bad kind, name or retention", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn create_list(
    State(state): State<AppState>,
    who: Person,
    ApiJson(body): ApiJson<NewListBody>,
) -> Result<(StatusCode, Json<HotList>), ApiError> {
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let kind = ListKind::parse(&body.kind).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_kind",
            format!(
                "kind {:?} must be one of stolen_vehicle, stolen_plate, wanted, missing_person, amber, warrant, agency",
                body.kind
            ),
        )
    })?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let list = blocking(move || {
        Ok(store.create_hotlist(
            NewHotList {
                name: body.name,
                kind,
                retention_days: body.retention_days,
                fuzzy: body.fuzzy,
            },
            &actor,
            now,
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[derive(serde::Serialize, ToSchema)]
pub struct ListOfLists {
    #[schema(value_type = Vec<Object>)]
    pub hotlists: Vec<HotList>,
    /// Always absent: every list is on one page.
    pub next_cursor: Option<String>,
}

/// Every list, with its entry count (lists are few: one page).
#[utoipa::path(
    get,
    path = "/api/v1/hotlists",
    responses((status = 200, description = "Lists by name", body = ListOfLists)),
    tag = "hotlists"
)]
pub async fn list_lists(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<ListOfLists>, ApiError> {
    if who.require(Right::ManageHotLists).is_err() {
        who.require(Right::ViewAlerts)?;
    }
    let store = state.store.clone();
    Ok(Json(ListOfLists {
        hotlists: blocking(move || Ok(store.hotlists()?)).await?,
        next_cursor: None,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/hotlists/{id}",
    params(("id" = i64, Path, description = "list id")),
    responses(
        (status = 200, description = "The list", body = Object),
        (status = 404, description = "No such list", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn get_list(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<HotList>, ApiError> {
    let id = path_param(path)?;
    if who.require(Right::ManageHotLists).is_err() {
        who.require(Right::ViewAlerts)?;
    }
    let store = state.store.clone();
    blocking(move || Ok(store.hotlist(id)?))
        .await?
        .map(Json)
        .ok_or_else(|| unknown_list(id))
}

fn unknown_list(id: i64) -> ApiError {
    platekeeper_store::StoreError::UnknownHotList(id).into()
}

/// Deletes a list and its entries (logged with the count).
#[utoipa::path(
    delete,
    path = "/api/v1/hotlists/{id}",
    params(("id" = i64, Path, description = "list id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such list", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn delete_list(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    blocking(move || Ok(store.delete_hotlist(id, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct EntryBody {
    /// A plate, or a partial plate with `?` and `*` (at least 3 known
    /// characters).
    pub plate: String,
    pub state: Option<String>,
    pub reason: String,
    pub case_number: Option<String>,
    /// RFC 3339. At most 30 days ahead (and within the list's retention)
    /// unless the ALPR Administrator enters it; defaults to that limit.
    pub expires_at: Option<String>,
}

/// Adds a hand-entered entry. It matches from the next read on.
#[utoipa::path(
    post,
    path = "/api/v1/hotlists/{id}/entries",
    params(("id" = i64, Path, description = "list id")),
    request_body = EntryBody,
    responses(
        (status = 201, description = "The new entry", body = Object),
        (status = 404, description = "No such list", body = crate::error::ErrorBody),
        (status = 422, description = "Bad plate (or too broad), state, reason or expiry", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn add_entry(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(body): ApiJson<EntryBody>,
) -> Result<(StatusCode, Json<HotEntry>), ApiError> {
    let id = path_param(path)?;
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let store = state.store.clone();
    let list = blocking(move || Ok(store.hotlist(id)?))
        .await?
        .ok_or_else(|| unknown_list(id))?;
    let now = state.now_ms();
    let override_allowed = who.account.role.may(Right::OverrideEntryExpiry);
    let limit = hotlist::manual_expiry_limit(now, list.retention_days, override_allowed);
    let expires_at_ms = match &body.expires_at {
        Some(t) => parse_time_ms("expires_at", t)
            .map_err(|e| ApiError::unprocessable(e.code, e.message))?,
        None => hotlist::manual_expiry_limit(now, list.retention_days, false),
    };
    let raw = RawEntry {
        plate: &body.plate,
        state: body.state.as_deref(),
        reason: &body.reason,
        case_number: body.case_number.as_deref(),
        expires_at_ms,
    };
    let draft = hotlist::check_entry(&raw, list.fuzzy, now, limit)
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))?;
    let store = state.store.clone();
    let actor = who.actor();
    let entry = blocking(move || Ok(store.add_hot_entry(id, draft, &actor, now)?)).await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

#[derive(Deserialize, IntoParams)]
pub struct EntryPage {
    /// Only entries whose plate holds these letters and digits.
    pub plate: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct EntryList {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<HotEntry>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A list's entries, by id.
#[utoipa::path(
    get,
    path = "/api/v1/hotlists/{id}/entries",
    params(("id" = i64, Path, description = "list id"), EntryPage),
    responses(
        (status = 200, description = "Entries", body = EntryList),
        (status = 404, description = "No such list", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn list_entries(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    page: Result<Query<EntryPage>, QueryRejection>,
) -> Result<Json<EntryList>, ApiError> {
    let id = path_param(path)?;
    let page = crate::search::query_param(page)?;
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let limit = crate::search::page_limit(page.limit)?;
    let after = crate::search::id_cursor(page.cursor.as_deref())?.unwrap_or(0);
    let store = state.store.clone();
    let entries =
        blocking(move || Ok(store.hot_entries(id, page.plate.as_deref(), after, limit)?)).await?;
    let next_cursor = (entries.len() >= limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(EntryList {
        entries,
        next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct RemoveParams {
    /// Why the entry goes (logged), e.g. "vehicle recovered".
    pub reason: Option<String>,
}

/// Removes an entry; the reason is logged.
#[utoipa::path(
    delete,
    path = "/api/v1/hotlists/{id}/entries/{entry_id}",
    params(("id" = i64, Path, description = "list id"), ("entry_id" = i64, Path, description = "entry id"), RemoveParams),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such entry in this list", body = crate::error::ErrorBody),
    ),
    tag = "hotlists"
)]
pub async fn remove_entry(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<(i64, i64)>, PathRejection>,
    params: Result<Query<RemoveParams>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let (list_id, entry_id) = path_param(path)?;
    let params = crate::search::query_param(params)?;
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let why = hotlist::clean_text(params.reason.as_deref().unwrap_or(""), "reason")
        .map_err(|e| ApiError::unprocessable(e.code(), e.to_string()))?;
    if why.chars().count() > hotlist::MAX_REASON_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_reason",
            "reason: at most 500 characters",
        ));
    }
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    blocking(move || {
        match store.hot_entry(entry_id)? {
            Some(e) if e.list_id == list_id => {}
            _ => {
                return Err(ApiError::not_found(
                    "unknown_entry",
                    format!("hot list {list_id} has no entry {entry_id}"),
                ))
            }
        }
        Ok(store.remove_hot_entry(entry_id, &why, &actor, now)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct ImportParams {
    /// `csv`, `doj` (California DOJ fixed-width: svs, sfr, slr) or `ncic`.
    /// When absent: told from the uploaded file's name, else its content.
    pub format: Option<String>,
    /// What the file is, e.g. `svs`: a later import of the same source
    /// replaces this one's entries. Defaults to the format's name.
    pub source: Option<String>,
    /// Accept a file that removes more than half of its source's entries
    /// (otherwise refused as a probable cut or wrong file).
    #[serde(default)]
    pub replace_all: bool,
}

/// The file of a `multipart/form-data` upload (its first part that has a
/// body) and its file name; `None` if the body is not such an upload.
fn multipart_file<'a>(content_type: &str, body: &'a [u8]) -> Option<(Option<String>, &'a [u8])> {
    let ct = content_type.to_ascii_lowercase();
    if !ct.starts_with("multipart/form-data") {
        return None;
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"'))?;
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    loop {
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = String::from_utf8_lossy(&body[at..head_end]).to_string();
        let start = head_end + 4;
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), start)?;
        let name = head
            .split("\r\n")
            .find(|h| h.to_ascii_lowercase().starts_with("content-disposition:"))
            .and_then(|h| {
                h.split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
            });
        if name.is_some() || next > start {
            return Some((name, &body[start..next]));
        }
        at = next + 2 + delimiter.len();
    }
}

/// Imports a file: the request body as sent, or the file of a
/// `multipart/form-data` upload. The format is `format`, or told from the
/// file's name or content. The source's previous
/// entries are replaced in one transaction; the report lists added,
/// removed and unchanged entries and every unusable line by number. A
/// file that looks cut short (a DOJ file without a matching `TOTAL
/// RECORD` footer) changes nothing and is answered 422 with the report.
#[utoipa::path(
    post,
    path = "/api/v1/hotlists/{id}/import",
    params(("id" = i64, Path, description = "list id"), ImportParams),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 200, description = "Imported; the report", body = Object),
        (status = 404, description = "No such list", body = crate::error::ErrorBody),
        (status = 413, description = "Over 256 MiB", body = crate::error::ErrorBody),
        (status = 422, description = "Unknown format, or the file was refused (report attached)", body = Object),
    ),
    tag = "hotlists"
)]
pub async fn import_file(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<ImportParams>, QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path_param(path)?;
    let params = crate::search::query_param(params)?;
    who.require_plate_data(&state, Right::ManageHotLists)?;
    let override_allowed = who.account.role.may(Right::OverrideEntryExpiry);
    let named = match &params.format {
        None => None,
        Some(f) => Some(Format::parse(f).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_format",
                format!("format {f:?} must be csv, doj or ncic"),
            )
        })?),
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let report = blocking(move || {
        let list = store.hotlist(id)?.ok_or_else(|| unknown_list(id))?;
        // A browser form upload, or the file as the body.
        let (file_name, bytes) = match multipart_file(&content_type, &body) {
            Some((name, bytes)) => (name, bytes),
            None if content_type.to_ascii_lowercase().starts_with("multipart/") => {
                return Err(ApiError::bad_request(
                    "invalid_upload",
                    "the multipart body holds no file part",
                ))
            }
            None => (None, &body[..]),
        };
        let sha = hex::encode(Sha256::digest(bytes));
        // Bytes that are not UTF-8 become U+FFFD: their lines are
        // reported as unreadable instead of failing the file.
        let text = String::from_utf8_lossy(bytes);
        let format = named.unwrap_or_else(|| Format::sniff(file_name.as_deref(), &text));
        let source = params
            .source
            .clone()
            .unwrap_or_else(|| format.as_str().to_string());
        let ctx = import::Context {
            kind: list.kind,
            fuzzy: list.fuzzy,
            retention_days: list.retention_days,
            now_ms: now,
            max_expiry_ms: hotlist::manual_expiry_limit(now, list.retention_days, override_allowed),
        };
        let parsed = import::parse(format, &text, &ctx);
        let file = ImportFile {
            source: &source,
            format,
            sha256: &sha,
            replace_all: params.replace_all,
        };
        Ok(store.import_hotlist(id, file, parsed, &actor, now)?)
    })
    .await?;
    metrics::counter!("platekeeper_hotlist_imports_total").increment(1);
    if report.applied {
        Ok((StatusCode::OK, Json(report)).into_response())
    } else {
        let body = serde_json::json!({
            "error": {
                "code": "import_refused",
                "message": report.refused.clone().unwrap_or_default(),
            },
            "report": report,
        });
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
    }
}
