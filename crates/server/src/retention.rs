//! Retention, legal holds, evidence and downloads (SPEC R6): holds on
//! reads a person has found, evidence packages of a hold, the tracking of
//! every download until its destruction is recorded, and the purge.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use platekeeper_core::legal_hold::{self, HoldAction};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::{Purpose, ReadId, Right, Role};
use platekeeper_store::{Access, AccessKind, Download, Hold, PurgeReport, MAX_HOLD_READS};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::{access, check_purpose, Person};
use crate::json::ApiJson;
use crate::search::{id_cursor, page_limit, path_param, PurposeBody};
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/holds", post(create_hold).get(list_holds))
        .route("/api/v1/holds/{id}", get(get_hold).delete(lift_hold))
        .route("/api/v1/holds/{id}/reads", get(hold_reads))
        .route("/api/v1/holds/{id}/members", post(share_hold))
        .route(
            "/api/v1/holds/{id}/members/{username}",
            delete(unshare_hold),
        )
        .route("/api/v1/evidence", post(export_evidence))
        .route("/api/v1/downloads", get(list_downloads))
        .route("/api/v1/downloads/{id}/destroyed", post(record_destruction))
        .route("/api/v1/purge", post(purge).get(purge_status))
}

#[derive(Deserialize, ToSchema)]
pub struct HoldRequest {
    /// The case the reads are evidence in.
    pub case_number: String,
    /// Reads returned to you by a search (or alert); at most 10,000.
    pub read_ids: Vec<String>,
    /// Optional: the offense, checked against the agency's list.
    pub offense: Option<String>,
    /// Optional: why these reads are evidence.
    pub reason: Option<String>,
}

/// The purpose a hold is placed (and later exported) under.
fn hold_purpose(state: &AppState, req: &HoldRequest) -> Result<Purpose, ApiError> {
    let policy = state.store.policy().purpose;
    let case = req.case_number.trim();
    let refuse = |e: platekeeper_core::PurposeError| {
        let mut err = ApiError::unprocessable(e.code(), e.to_string());
        err.detail = Some(e.detail());
        err
    };
    if case.is_empty() {
        return Err(refuse(platekeeper_core::PurposeError::Missing(
            "case_number",
        )));
    }
    let purpose = Purpose {
        case_number: case.to_string(),
        offense: req
            .offense
            .clone()
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| "legal hold".into()),
        reason: req
            .reason
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| format!("Legal hold: reads preserved as evidence in case {case}")),
    };
    if req.offense.is_some() && req.reason.is_some() {
        policy.check(&purpose).map_err(refuse)?;
    } else {
        policy.check_case_number(case).map_err(refuse)?;
    }
    Ok(purpose)
}

/// Put reads on legal hold for a case (SPEC R6.2). The reads must have
/// been returned to you; they are copied apart and survive purge until
/// the hold is lifted.
#[utoipa::path(post, path = "/api/v1/holds", request_body = HoldRequest,
    responses((status = 201, body = Object), (status = 422, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn create_hold(
    State(state): State<AppState>,
    who: Person,
    ApiJson(req): ApiJson<HoldRequest>,
) -> Result<(axum::http::StatusCode, Json<Hold>), ApiError> {
    who.require_plate_data(&state, Right::HoldReads)?;
    if req.read_ids.is_empty() || req.read_ids.len() > MAX_HOLD_READS {
        return Err(ApiError::unprocessable(
            "invalid_hold",
            format!(
                "read_ids has {} ids; a hold takes 1 to {MAX_HOLD_READS}",
                req.read_ids.len()
            ),
        ));
    }
    let mut ids = Vec::with_capacity(req.read_ids.len());
    for s in &req.read_ids {
        ids.push(ReadId::parse(s).map_err(|e| {
            ApiError::unprocessable("invalid_read_id", format!("read_ids: {}", e.message))
        })?);
    }
    ids.sort_unstable_by_key(|i| i.0);
    ids.dedup();
    let purpose = hold_purpose(&state, &req)?;
    let store = state.store.clone();
    let username = who.account.username.clone();
    let lookup = ids.clone();
    let times = blocking(move || Ok(store.read_times_seen_by(&username, &lookup)?)).await?;
    let unseen: Vec<String> = ids
        .iter()
        .filter(|i| !times.contains_key(i))
        .take(20)
        .map(|i| i.to_string())
        .collect();
    if !unseen.is_empty() {
        return Err(ApiError::unprocessable(
            "unknown_reads",
            format!(
                "read_ids names reads no search returned to you: {}",
                unseen.join(", ")
            ),
        ));
    }
    let access = access(
        &who,
        AccessKind::Hold,
        serde_json::json!({"case_number": purpose.case_number, "read_ids": req.read_ids.len()}),
        purpose,
    );
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let named: Vec<(ReadId, i64)> = ids.iter().map(|id| (*id, times[id])).collect();
    let hold =
        blocking(move || Ok(store.place_hold(access, &named, &actor, now)?.into_value())).await?;
    Ok((axum::http::StatusCode::CREATED, Json(hold)))
}

#[derive(Deserialize, IntoParams)]
pub struct HoldListParams {
    /// Include lifted holds.
    pub include_lifted: Option<bool>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HoldPage {
    #[schema(value_type = Vec<Object>)]
    pub holds: Vec<Hold>,
    pub next_cursor: Option<String>,
}

/// Who may list holds: the administrator and the auditor see every hold
/// (no plate data); anyone else with the right sees the holds they placed
/// or were shared (`None`: all).
fn hold_list_scope<'a>(who: &'a Person, state: &AppState) -> Result<Option<&'a str>, ApiError> {
    let role = who.account.role;
    if role == Role::Administrator || role == Role::Auditor {
        return Ok(None);
    }
    who.require_plate_data(state, Right::HoldReads)?;
    Ok(Some(&who.account.username))
}

/// Holds, newest first (open ones unless `include_lifted`): every hold
/// for the administrator and the auditor, one's own and those shared with
/// one for everyone else (issue 22 finding 1).
#[utoipa::path(get, path = "/api/v1/holds", params(HoldListParams), responses((status = 200, body = HoldPage)), tag = "retention")]
pub async fn list_holds(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<HoldListParams>, QueryRejection>,
) -> Result<Json<HoldPage>, ApiError> {
    let party = hold_list_scope(&who, &state)?.map(str::to_string);
    let p = crate::search::query_param(params)?;
    let limit = page_limit(p.limit)?;
    let before = id_cursor(p.cursor.as_deref())?;
    let store = state.store.clone();
    let holds = blocking(move || {
        Ok(store.holds(
            p.include_lifted.unwrap_or(false),
            party.as_deref(),
            before,
            limit,
        )?)
    })
    .await?;
    let next_cursor = (holds.len() == limit)
        .then(|| holds.last().map(|h| h.id.to_string()))
        .flatten();
    Ok(Json(HoldPage { holds, next_cursor }))
}

/// One hold: its case, who placed it, who it is shared with, and how many
/// reads it keeps.
#[utoipa::path(get, path = "/api/v1/holds/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn get_hold(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Hold>, ApiError> {
    let id = path_param(path)?;
    hold_for(&state, &who, id, HoldAction::See).await.map(Json)
}

/// Hold `id`, if `who` may do `action` with it (SPEC R4.8, R6.2; the rule
/// is `platekeeper_core::legal_hold`). A role without the right gets 403;
/// a person the hold does not belong to gets the same 404 as for a hold
/// that does not exist (ids are sequential: the answer must not tell
/// which ids are holds, nor their cases); someone it is shared with who
/// asks for more gets 403. Every refusal is logged.
pub(crate) async fn hold_for(
    state: &AppState,
    who: &Person,
    id: i64,
    action: HoldAction,
) -> Result<Hold, ApiError> {
    let role = who.account.role;
    if role != Role::Auditor {
        who.require(action.right())?;
    }
    if matches!(action, HoldAction::View | HoldAction::Export) {
        who.require_plate_data(state, action.right())?;
    }
    let unknown = || ApiError::not_found("unknown_hold", format!("hold {id} does not exist"));
    let store = state.store.clone();
    let Some(hold) = blocking(move || Ok(store.hold(id)?)).await? else {
        return Err(unknown());
    };
    let relation = hold.relation(&who.account.username);
    if legal_hold::may(role, relation, action) {
        return Ok(hold);
    }
    let visible = legal_hold::may(role, relation, HoldAction::See);
    let entry = platekeeper_store::NewEntry {
        ts_ms: state.now_ms(),
        category: "refused",
        kind: "hold_forbidden".into(),
        username: who.account.username.clone(),
        affiliation: who.affiliation.clone(),
        role: Some(role.as_str().into()),
        client: who.client.clone(),
        details: serde_json::json!({"hold_id": id, "action": format!("{action:?}").to_lowercase()}),
        purpose: None,
    };
    let store = state.store.clone();
    blocking(move || Ok(store.log_event(entry)?)).await?;
    if visible {
        // Someone it is shared with knows it exists; say what they lack.
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "hold_forbidden",
            format!(
                "hold {id} is shared with you to view and export; only {} (who placed it) \
                 or the administrator may lift or share it",
                hold.created_by
            ),
        ));
    }
    Err(unknown())
}

/// The purpose a hold's reads are opened under: always the requester's
/// own. Whoever opens a hold states why, for the hold's case; the person
/// who placed it may leave it out, and then their own purpose from
/// placing it stands (it is theirs, stated for this case). Nobody's
/// access is ever logged under another person's purpose.
fn hold_access_purpose(
    state: &AppState,
    who: &Person,
    hold: &Hold,
    given: Option<PurposeBody>,
) -> Result<Purpose, ApiError> {
    let given = given.filter(|p| {
        [&p.case_number, &p.offense, &p.reason]
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| !v.trim().is_empty()))
    });
    let Some(body) = given else {
        if hold.created_by == who.account.username {
            return Ok(hold.purpose.clone());
        }
        return Err(ApiError::unprocessable(
            "purpose_insufficient",
            format!(
                "purpose is missing: hold {} was placed by {}; say why you open it \
                 (purpose.case_number {}, purpose.offense, purpose.reason)",
                hold.id, hold.created_by, hold.case_number
            ),
        ));
    };
    let purpose = crate::search::purpose_of(Some(body))?;
    check_purpose(state, &purpose)?;
    if !purpose
        .case_number
        .trim()
        .eq_ignore_ascii_case(hold.case_number.trim())
    {
        return Err(ApiError::unprocessable(
            "purpose_case_mismatch",
            format!(
                "purpose.case_number is {}, but hold {} is for case {}; a hold is opened for its own case",
                purpose.case_number, hold.id, hold.case_number
            ),
        ));
    }
    Ok(purpose)
}

/// A hold by id, if `who` may do `action` with it, and a new access of
/// `kind` under `who`'s own purpose whose query names the hold under
/// `what`: how a hold's reads are opened, to view or to export.
async fn hold_access(
    state: &AppState,
    who: &Person,
    id: i64,
    action: HoldAction,
    given: Option<PurposeBody>,
    kind: AccessKind,
    what: &str,
) -> Result<(Hold, Access), ApiError> {
    let hold = hold_for(state, who, id, action).await?;
    let purpose = hold_access_purpose(state, who, &hold, given)?;
    let mut query = serde_json::Map::new();
    query.insert(
        what.to_string(),
        serde_json::json!({"hold_id": hold.id, "case_number": hold.case_number}),
    );
    let access = access(who, kind, serde_json::Value::Object(query), purpose);
    Ok((hold, access))
}

#[derive(Deserialize, ToSchema)]
pub struct ShareRequest {
    /// The colleague on the case who may then view and export the hold.
    pub username: String,
}

/// Share a hold with a colleague on its case (its maker or the
/// administrator): they may then view and export it, not lift or share it.
#[utoipa::path(post, path = "/api/v1/holds/{id}/members", params(("id" = i64, Path)), request_body = ShareRequest,
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn share_hold(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<ShareRequest>,
) -> Result<Json<Hold>, ApiError> {
    let id = path_param(path)?;
    let hold = hold_for(&state, &who, id, HoldAction::Share).await?;
    let username = req.username.trim().to_string();
    let store = state.store.clone();
    let name = username.clone();
    let account = blocking(move || Ok(store.account(&name)?)).await?;
    let account = account
        .filter(|a| a.deleted_at_ms.is_none())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_user",
                format!("username {username:?} names no account"),
            )
        })?;
    if !legal_hold::may_receive(account.role) {
        return Err(ApiError::unprocessable(
            "role_cannot_hold",
            format!(
                "{} is a{} {}; a hold is shared only with roles that may hold reads",
                account.username,
                if account.role.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "n"
                } else {
                    ""
                },
                account.role.as_str()
            ),
        ));
    }
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.share_hold(hold.id, &account.username, true, &actor, now)?))
            .await?,
    ))
}

/// Take a hold back from a colleague it was shared with.
#[utoipa::path(delete, path = "/api/v1/holds/{id}/members/{username}", params(("id" = i64, Path), ("username" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn unshare_hold(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> Result<Json<Hold>, ApiError> {
    let (id, username) = path_param(path)?;
    let hold = hold_for(&state, &who, id, HoldAction::Share).await?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.share_hold(hold.id, &username, false, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct HoldReadsParams {
    /// Reads per page (default 100, at most 1,000).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Your purpose: the hold's case number. The hold's maker may leave
    /// the purpose out (their purpose from placing it stands).
    pub case_number: Option<String>,
    /// Your purpose: the offense.
    pub offense: Option<String>,
    /// Your purpose: why you open the hold.
    pub reason: Option<String>,
}

/// The reads a hold keeps, in time order, a page at a time, as search
/// results with picture links. Each page is a search access under the
/// requester's own purpose for the hold's case, logged with every read it
/// returns: how held reads are seen once their days are purged. Only the
/// hold's maker, those it is shared with and the administrator may.
#[utoipa::path(get, path = "/api/v1/holds/{id}/reads", params(("id" = i64, Path), HoldReadsParams),
    responses((status = 200, body = crate::search::SearchResponse), (status = 404, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn hold_reads(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<HoldReadsParams>, QueryRejection>,
) -> Result<Json<crate::search::SearchResponse>, ApiError> {
    let id = path_param(path)?;
    let p = crate::search::query_param(params)?;
    let limit = page_limit(p.limit)?;
    let skip = id_cursor(p.cursor.as_deref())?.unwrap_or(0) as usize;
    let given = PurposeBody {
        case_number: p.case_number,
        offense: p.offense,
        reason: p.reason,
    };
    let (hold, access) = hold_access(
        &state,
        &who,
        id,
        HoldAction::View,
        Some(given),
        AccessKind::Search,
        "hold",
    )
    .await?;
    let store = state.store.clone();
    let now = state.now_ms();
    let released = blocking(move || {
        let found = store.held_reads_page(&access, hold.id, skip, limit)?;
        Ok(store.release(access, found, now)?)
    })
    .await?;
    let access_id = released.access_id();
    let page = released.into_value();
    let next = skip + page.reads.len();
    Ok(Json(crate::search::SearchResponse {
        access_id,
        results: page
            .reads
            .iter()
            .map(|r| crate::search::result_of(r, access_id))
            .collect(),
        next_cursor: (next < page.total).then(|| next.to_string()),
        plates_matched: page.plates,
        total: Some(platekeeper_store::Total {
            count: page.total,
            at_least: false,
        }),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct LiftParams {
    /// Why the hold ends (case closed, released by the court, …).
    pub reason: Option<String>,
}

/// Lift a hold: its reads go at the next purge once past retention. Only
/// its maker and the administrator may.
#[utoipa::path(delete, path = "/api/v1/holds/{id}", params(("id" = i64, Path), LiftParams),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn lift_hold(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<LiftParams>, QueryRejection>,
) -> Result<Json<Hold>, ApiError> {
    who.require_plate_data(&state, Right::HoldReads)?;
    let id = path_param(path)?;
    let p = crate::search::query_param(params)?;
    let reason = p.reason.unwrap_or_default();
    hold_for(&state, &who, id, HoldAction::Lift).await?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.lift_hold(id, &reason, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct EvidenceRequest {
    pub hold_id: i64,
    /// Your purpose, for the hold's case. The hold's maker may leave it
    /// out (their purpose from placing it stands); anyone else must say it.
    pub purpose: Option<PurposeBody>,
}

/// A zip response with the download's tracking headers, streamed from
/// the package's spool file (a package may be gigabytes).
/// A package (`application/zip`) or other export file streamed from its
/// spool file, with the download it was recorded as.
pub(crate) fn package_response(
    package: platekeeper_store::Package,
    download: &Download,
    content_type: &'static str,
) -> Response {
    let file = tokio::fs::File::from_std(package.file);
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, package.size)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", package.file_name),
        )
        .header("x-download-id", download.id.to_string())
        .header("x-destroy-by", download.destroy_by.clone())
        .header("x-package-sha256", package.sha256.clone())
        .body(Body::from_stream(
            tokio_util::io::ReaderStream::with_capacity(file, 256 << 10),
        ))
        .unwrap_or_default()
}

/// Export a hold's reads as an evidence package: `reads.json`,
/// `reads.csv`, the images, `custody.json` and `manifest.json` (SHA-256 of
/// every file). Only the hold's maker, those it is shared with and the
/// administrator may. Logged as an access under the requester's own
/// purpose for the hold's case and tracked as a
/// download with a destroy-by date (`x-download-id`, `x-destroy-by`).
#[utoipa::path(post, path = "/api/v1/evidence", request_body = EvidenceRequest,
    responses((status = 200, description = "The zip", content_type = "application/zip"), (status = 404, body = crate::error::ErrorBody)), tag = "retention")]
pub async fn export_evidence(
    State(state): State<AppState>,
    who: Person,
    ApiJson(req): ApiJson<EvidenceRequest>,
) -> Result<Response, ApiError> {
    evidence_zip(&state, &who, req.hold_id, req.purpose).await
}

/// Checks that `who` may export hold `id`'s evidence now, under the
/// purpose they give (the checks of [`evidence_zip`], before a link).
pub(crate) async fn may_export_evidence(
    state: &AppState,
    who: &Person,
    id: i64,
    purpose: Option<PurposeBody>,
) -> Result<(), ApiError> {
    let hold = hold_for(state, who, id, HoldAction::Export).await?;
    hold_access_purpose(state, who, &hold, purpose).map(|_| ())
}

/// Hold `hold_id`'s evidence package, exported by `who` (see
/// [`export_evidence`]).
pub(crate) async fn evidence_zip(
    state: &AppState,
    who: &Person,
    hold_id: i64,
    purpose: Option<PurposeBody>,
) -> Result<Response, ApiError> {
    let (hold, access) = hold_access(
        state,
        who,
        hold_id,
        HoldAction::Export,
        purpose,
        AccessKind::Export,
        "evidence",
    )
    .await?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let (package, download) = blocking(move || {
        Ok(store
            .export_evidence(access, &hold, &actor, now)?
            .into_value())
    })
    .await?;
    Ok(package_response(package, &download, "application/zip"))
}

#[derive(Deserialize, IntoParams)]
pub struct DownloadParams {
    /// Only downloads past their destroy-by date with no destruction
    /// recorded.
    pub overdue: Option<bool>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DownloadPage {
    #[schema(value_type = Vec<Object>)]
    pub downloads: Vec<Download>,
    pub overdue: usize,
    pub next_cursor: Option<String>,
}

/// Downloads and exports, newest first, with their destroy-by dates
/// (administrator; SPEC R6.3).
#[utoipa::path(get, path = "/api/v1/downloads", params(DownloadParams), responses((status = 200, body = DownloadPage)), tag = "retention")]
pub async fn list_downloads(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<DownloadParams>, QueryRejection>,
) -> Result<Json<DownloadPage>, ApiError> {
    who.require(Right::ManagePolicy)?;
    let p = crate::search::query_param(params)?;
    let limit = page_limit(p.limit)?;
    let before = id_cursor(p.cursor.as_deref())?;
    let store = state.store.clone();
    let now = state.now_ms();
    let downloads =
        blocking(move || Ok(store.downloads(p.overdue.unwrap_or(false), now, before, limit)?))
            .await?;
    let next_cursor = (downloads.len() == limit)
        .then(|| downloads.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Json(DownloadPage {
        overdue: downloads.iter().filter(|d| d.overdue).count(),
        downloads,
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct DestructionRequest {
    /// How and by whom the copy was destroyed.
    pub note: String,
}

/// Record that a downloaded copy was destroyed (administrator).
#[utoipa::path(post, path = "/api/v1/downloads/{id}/destroyed", params(("id" = i64, Path)), request_body = DestructionRequest,
    responses((status = 200, body = Object)), tag = "retention")]
pub async fn record_destruction(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(req): ApiJson<DestructionRequest>,
) -> Result<Json<Download>, ApiError> {
    who.require(Right::ManagePolicy)?;
    let id = path_param(path)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || Ok(store.record_destruction(id, &req.note, &actor, now)?)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct PurgeParams {
    /// Count what would go; change nothing.
    pub dry_run: Option<bool>,
}

/// Apply retention now (administrator); the server also runs it daily.
#[utoipa::path(post, path = "/api/v1/purge", params(PurgeParams), responses((status = 200, body = Object)), tag = "retention")]
pub async fn purge(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<PurgeParams>, QueryRejection>,
) -> Result<Json<PurgeReport>, ApiError> {
    who.require(Right::ManagePolicy)?;
    let p = crate::search::query_param(params)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    Ok(Json(
        blocking(move || Ok(store.purge(now, p.dry_run.unwrap_or(false), &actor)?)).await?,
    ))
}

/// Purges shown at most by [`purge_status`].
const PURGE_RUNS_SHOWN: usize = 30;

#[derive(Serialize, ToSchema)]
pub struct PurgeRun {
    /// The log entry recording it.
    pub seq: i64,
    pub at: String,
    /// `system:retention` for the daily run, else the administrator who
    /// ran it.
    pub by: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct PurgeStatus {
    /// The latest purges that removed something, newest first (a run
    /// that found nothing due changes nothing and is not logged).
    pub runs: Vec<PurgeRun>,
    /// The daily purge runs at the first maintenance pass (hourly) after
    /// the UTC day turns: between these two times.
    pub next_run_after: String,
    pub next_run_before: String,
    /// What a purge now would remove (a dry run; nothing changes).
    #[schema(value_type = Object)]
    pub due: PurgeReport,
}

/// Past purges, the next one, and what is due now (administrator).
#[utoipa::path(get, path = "/api/v1/purge", responses((status = 200, body = PurgeStatus)), tag = "retention")]
pub async fn purge_status(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<PurgeStatus>, ApiError> {
    who.require(Right::ManagePolicy)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let (entries, due) = blocking(move || {
        let filter = platekeeper_store::LogFilter {
            category: Some("system".into()),
            kind: Some("purge".into()),
            ..Default::default()
        };
        let entries = store.log_entries_matching(&filter, None, PURGE_RUNS_SHOWN)?;
        Ok((entries, store.purge(now, true, &actor)?))
    })
    .await?;
    let day = platekeeper_core::retention::DAY_MS;
    let next = (now.div_euclid(day) + 1) * day;
    let every = i64::try_from(crate::MAINTENANCE_EVERY.as_millis()).unwrap_or(i64::MAX);
    Ok(Json(PurgeStatus {
        runs: entries
            .into_iter()
            .map(|e| PurgeRun {
                seq: e.seq,
                at: format_time_ms(e.ts_ms),
                by: e.username,
                details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
        next_run_after: format_time_ms(next),
        next_run_before: format_time_ms(next.saturating_add(every)),
        due,
    }))
}
