//! `POST /api/v1/search` and `GET /api/v1/reads/{id}/image`: every call
//! is an access, logged with its purpose before any data is returned
//! (SPEC R2, R4.3).

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use platekeeper_core::read::{format_time_ms, parse_time_ms};
use platekeeper_core::{Area, GeoPoint, Plate, PlatePattern, Purpose, ReadId, Region, Right};
use platekeeper_store::{AccessKind, Cursor, ReadQuery, StoredRead};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::{access, check_purpose, Person};
use crate::json::ApiJson;
use crate::{blocking, ApiError, AppState};

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/search", post(search))
        .route("/api/v1/reads/{id}/image", get(read_image))
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema, Default)]
pub struct PurposeBody {
    /// The case (or incident) number of the specific investigation.
    pub case_number: Option<String>,
    /// The offense under investigation, e.g. `211 PC`.
    pub offense: Option<String>,
    /// Why this search serves that investigation.
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

#[derive(Deserialize, ToSchema)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    /// A plate, or a pattern with `?` (one character) and `*` (any run).
    pub plate: Option<String>,
    /// Also match common misreads (0/O/D/Q, 1/I/L/T, 8/B, 5/S, 2/Z, 6/G).
    #[serde(default)]
    pub fuzzy: bool,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; inclusive.
    pub to: Option<String>,
    /// Canvass: reads within `radius_m` metres of a point.
    pub near: Option<Near>,
    /// Canvass: reads inside a polygon (3 to 1000 vertices).
    pub polygon: Option<Vec<LatLon>>,
    /// A camera id.
    pub camera: Option<String>,
    /// Issuing state, e.g. `CA`.
    pub state: Option<String>,
    pub purpose: Option<PurposeBody>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadResult {
    pub read_id: String,
    pub plate: String,
    pub state: Option<String>,
    pub ts: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub camera: String,
    pub confidence: Option<u8>,
    pub heading: Option<u16>,
    /// The vehicle image (or the plate crop if that is all there is),
    /// viewable under this access.
    pub image_url: Option<String>,
    pub plate_image_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    /// The access-log entry this search was recorded under.
    pub access_id: i64,
    pub results: Vec<ReadResult>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Distinct plates the plate condition matched.
    pub plates_matched: usize,
    /// On a first page: every read the search matches (this page and the
    /// pages after it), counted up to 10,000 (`at_least` then true).
    #[schema(value_type = Option<Object>)]
    pub total: Option<platekeeper_store::Total>,
}

/// A numeric paging cursor (the last id of the previous page), if any.
pub fn id_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    format!("cursor {c:?} is not one this server issued"),
                )
            })
        })
        .transpose()
}

/// A path parameter, or a 400 naming what is wrong with it.
pub fn path_param<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
}

/// Query-string parameters, or a 400 naming what is wrong with them.
pub fn query_param<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// A page size from a request: 1–1000, 100 when absent.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=platekeeper_store::search::MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::unprocessable(
            "invalid_limit",
            format!("limit is {n}; it must be between 1 and 1000"),
        )),
    }
}

pub(crate) fn purpose_of(body: Option<PurposeBody>) -> Result<Purpose, ApiError> {
    let p = body.unwrap_or_default();
    Purpose::new(
        p.case_number.as_deref().unwrap_or(""),
        p.offense.as_deref().unwrap_or(""),
        p.reason.as_deref().unwrap_or(""),
    )
    .map_err(|e| {
        let mut err = ApiError::unprocessable(e.code(), e.to_string());
        err.detail = Some(e.detail());
        err
    })
}

/// An optional RFC 3339 field of a request, as epoch ms.
pub(crate) fn time_field(name: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| parse_time_ms(name, s).map_err(|e| ApiError::unprocessable(e.code, e.message)))
        .transpose()
}

/// Checks a request and turns it into a store query, before any access is
/// opened: a malformed request is not an access to data.
pub(crate) fn build_query(req: &SearchRequest) -> Result<ReadQuery, ApiError> {
    let plate = match req
        .plate
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(p) if p.contains(['?', '*', '_', '%']) => {
            Some(PlatePattern::parse(p, req.fuzzy).map_err(|e| {
                ApiError::unprocessable("invalid_plate_pattern", format!("plate: {e}"))
            })?)
        }
        Some(p) => {
            let plate = Plate::parse(p)
                .map_err(|e| ApiError::unprocessable("invalid_plate", format!("plate: {e}")))?;
            Some(PlatePattern::exact(&plate, req.fuzzy))
        }
    };
    let geo =
        |e: platekeeper_core::GeoError| ApiError::unprocessable("invalid_area", e.to_string());
    let area = match (&req.near, &req.polygon) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "invalid_area",
                "give either near or polygon, not both",
            ))
        }
        (Some(n), None) => Some(
            Area::circle(
                GeoPoint::named(n.lat, n.lon, "near.lat", "near.lon").map_err(geo)?,
                n.radius_m,
            )
            .map_err(geo)?,
        ),
        (None, Some(poly)) => {
            let pts = poly
                .iter()
                .map(|p| GeoPoint::named(p.lat, p.lon, "polygon.lat", "polygon.lon"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(geo)?;
            Some(Area::polygon(pts).map_err(geo)?)
        }
        (None, None) => None,
    };
    let region = match req
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(Region::parse(s).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_state",
                format!("state {s:?} is not a known state code"),
            )
        })?),
    };
    let cursor = req
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(ApiError::from)?;
    Ok(ReadQuery {
        plate,
        from_ms: time_field("from", &req.from)?,
        to_ms: time_field("to", &req.to)?,
        area,
        camera: req.camera.clone(),
        region,
        limit: page_limit(req.limit)?,
        cursor,
    })
}

pub(crate) fn result_of(r: &StoredRead, access_id: i64) -> ReadResult {
    let url = |kind: &str| {
        format!(
            "/api/v1/reads/{}/image?access_id={access_id}&kind={kind}",
            r.id
        )
    };
    ReadResult {
        read_id: r.id.to_string(),
        plate: r.plate.to_string(),
        state: r.region.map(|g| g.to_string()),
        ts: format_time_ms(r.ts_ms),
        lat: r.position.map(|p| p.lat),
        lon: r.position.map(|p| p.lon),
        camera: r.camera.clone(),
        confidence: r.confidence,
        heading: r.heading,
        image_url: if r.vehicle_image.is_some() {
            Some(url("vehicle"))
        } else {
            r.plate_image.map(|_| url("plate"))
        },
        plate_image_url: r.plate_image.map(|_| url("plate")),
    }
}

/// Search reads by plate (exact, wildcard, substring, misread-tolerant)
/// and/or canvass an area, within a time window.
#[utoipa::path(
    post,
    path = "/api/v1/search",
    request_body = SearchRequest,
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, description = "Malformed JSON or cursor", body = crate::error::ErrorBody),
        (status = 422, description = "purpose_insufficient, invalid_plate, pattern_too_broad, query_too_broad, …", body = crate::error::ErrorBody),
    ),
    tag = "search"
)]
pub async fn search(
    State(state): State<AppState>,
    who: Person,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    who.require_plate_data(&state, Right::SearchReads)?;
    let query = build_query(&req)?;
    let raw_purpose = serde_json::to_value(&req.purpose).ok();
    let checked =
        purpose_of(req.purpose.clone()).and_then(|p| check_purpose(&state, &p).map(|()| p));
    let purpose = match checked {
        Ok(p) => p,
        Err(e) => {
            // A refused purpose is recorded (for the audit of purposes
            // that fall short) but is not an access: no data is touched.
            let store = state.store.clone();
            let entry = platekeeper_store::NewEntry {
                ts_ms: state.now_ms(),
                category: "refused",
                kind: e.code.to_string(),
                username: who.account.username.clone(),
                affiliation: who.affiliation.clone(),
                role: Some(who.account.role.as_str().into()),
                client: who.client.clone(),
                details: serde_json::json!({"endpoint": "search", "detail": e.detail, "plate": req.plate}),
                purpose: raw_purpose,
            };
            blocking(move || Ok(store.log_event(entry)?)).await?;
            return Err(e);
        }
    };
    // Everything that can refuse the query runs before the access is
    // opened: a refused query is not an access.
    let store = state.store.clone();
    let plan = blocking(move || Ok(store.plan(query)?.count_total())).await?;
    let mut logged = logged_query(&req, &plan);
    logged["cursor"] = serde_json::json!(req.cursor);
    let access = access(&who, AccessKind::Search, logged, purpose);
    let store = state.store.clone();
    let started = std::time::Instant::now();
    let now = state.now_ms();
    let released = blocking(move || {
        let found = store.run(&access, &plan)?;
        Ok(store.release(access, found, now)?)
    })
    .await?;
    metrics::histogram!("platekeeper_search_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("platekeeper_searches_total").increment(1);
    let access_id = released.access_id();
    let page = released.into_value();
    Ok(Json(SearchResponse {
        access_id,
        results: page.reads.iter().map(|r| result_of(r, access_id)).collect(),
        next_cursor: page.next.map(|c| c.encode()),
        plates_matched: page.plates_matched,
        total: page.total,
    }))
}

/// Most reads one CSV export of a search carries.
pub const MAX_SEARCH_EXPORT_READS: usize = 10_000;

/// The checks of a search export before anything is found: the rights,
/// the purpose and the query (see [`search_csv`]).
async fn export_plan(
    state: &AppState,
    who: &Person,
    search: &serde_json::Value,
) -> Result<(platekeeper_store::SearchPlan, Purpose, serde_json::Value), ApiError> {
    who.require_plate_data(state, Right::SearchReads)?;
    who.require_plate_data(state, Right::ExportReads)?;
    let req: SearchRequest = serde_json::from_value(search.clone()).map_err(|e| {
        ApiError::unprocessable(
            "invalid_query",
            format!("search is not a search request: {e}"),
        )
    })?;
    let mut query = build_query(&req)?;
    query.limit = platekeeper_store::search::MAX_LIMIT;
    query.cursor = None;
    let purpose = purpose_of(req.purpose.clone())?;
    check_purpose(state, &purpose)?;
    let store = state.store.clone();
    let plan = blocking(move || Ok(store.plan(query)?)).await?;
    let mut logged = logged_query(&req, &plan);
    logged["export"] = serde_json::json!("csv");
    Ok((plan, purpose, logged))
}

/// What an access log entry records of a search: its plate as planned
/// and every condition as asked.
fn logged_query(req: &SearchRequest, plan: &platekeeper_store::SearchPlan) -> serde_json::Value {
    serde_json::json!({
        "plate": plan.query().plate.as_ref().map(|p| p.as_str()),
        "fuzzy": req.fuzzy,
        "from": req.from, "to": req.to,
        "near": req.near.as_ref().map(|n| serde_json::json!({"lat": n.lat, "lon": n.lon, "radius_m": n.radius_m})),
        "polygon": req.polygon.as_ref().map(|p| p.iter().map(|v| [v.lat, v.lon]).collect::<Vec<_>>()),
        "camera": req.camera, "state": req.state,
    })
}

/// Checks that `who` may export `search` now (before a download link).
pub(crate) async fn may_export_search(
    state: &AppState,
    who: &Person,
    search: &serde_json::Value,
) -> Result<(), ApiError> {
    export_plan(state, who, search).await.map(|_| ())
}

/// A search's results as CSV, exported by `who`: one access (kind
/// `export`) naming every read, and a download with a destroy-by date,
/// in one commit.
pub(crate) async fn search_csv(
    state: &AppState,
    who: &Person,
    search: &serde_json::Value,
) -> Result<axum::response::Response, ApiError> {
    let (plan, purpose, logged) = export_plan(state, who, search).await?;
    let access = access(who, AccessKind::Export, logged, purpose);
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let (package, download) = blocking(move || {
        let found = store.sharing_reads(&access, plan, MAX_SEARCH_EXPORT_READS)?;
        Ok(store
            .export_search(access, found, &actor, now)?
            .into_value())
    })
    .await?;
    Ok(crate::retention::package_response(
        package,
        &download,
        "text/csv; charset=utf-8",
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct ImageParams {
    /// The search access that returned this read.
    pub access_id: Option<i64>,
    /// `vehicle` (default) or `plate`.
    pub kind: Option<String>,
}

/// How long a search's access lets its results' images be opened.
pub const IMAGE_ACCESS_VALID_MS: i64 = 12 * 3_600_000;

/// A read's image, viewable only under the search access that returned
/// the read (within 12 hours, by the same person); the view is itself
/// logged as an access with that search's purpose.
#[utoipa::path(
    get,
    path = "/api/v1/reads/{id}/image",
    params(("id" = String, Path, description = "read id"), ImageParams),
    responses(
        (status = 200, description = "The image", content_type = "image/jpeg"),
        (status = 400, description = "Missing or malformed access_id, id or kind", body = crate::error::ErrorBody),
        (status = 403, description = "The access belongs to someone else, or has expired", body = crate::error::ErrorBody),
        (status = 404, description = "No such access, the access did not return this read, or no image", body = crate::error::ErrorBody),
    ),
    tag = "search"
)]
pub async fn read_image(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ImageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let params = crate::search::query_param(params)?;
    let id = ReadId::parse(&id).map_err(|e| ApiError::bad_request(e.code, e.message))?;
    let access_id = params.access_id.ok_or_else(|| {
        ApiError::bad_request(
            "missing_access",
            "access_id is required: images are opened under the search that found the read",
        )
    })?;
    let want_plate = match params.kind.as_deref() {
        None | Some("vehicle") => false,
        Some("plate") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_kind",
                format!("kind {other:?} must be \"vehicle\" or \"plate\""),
            ))
        }
    };
    who.require_plate_data(&state, Right::ViewImages)?;
    let store = state.store.clone();
    let (parent, at) = blocking(move || {
        let parent = store.access_record(access_id)?;
        let at = store.access_returned(access_id, id)?;
        Ok((parent, at))
    })
    .await?;
    let parent = parent
        .filter(|p| {
            p.kind == AccessKind::Search.as_str() || p.kind == AccessKind::AlertView.as_str()
        })
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_access",
                format!("search access {access_id} does not exist"),
            )
        })?;
    if parent.username != who.account.username {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "access_not_yours",
            "images can be viewed only under a search access of your own",
        ));
    }
    if state.now_ms() - parent.ts_ms > IMAGE_ACCESS_VALID_MS {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "access_expired",
            format!(
                "search access {access_id} is more than 12 hours old; search again with a purpose"
            ),
        ));
    }
    let at = at.ok_or_else(|| {
        ApiError::not_found(
            "not_in_access",
            format!("search access {access_id} did not return read {id}"),
        )
    })?;
    let access = access(
        &who,
        AccessKind::ImageView,
        serde_json::json!({"read_id": id.to_string(), "parent_access": parent.id, "kind": if want_plate {"plate"} else {"vehicle"}}),
        parent.purpose,
    );
    let store = state.store.clone();
    let now = state.now_ms();
    let (bytes, kind) = blocking(move || {
        // A read on legal hold keeps its copy (and pictures) after its
        // day is purged.
        let found = store.read_image(&access, id, at, want_plate)?;
        Ok(store.release(access, found, now)?.into_value())
    })
    .await?;
    Response::builder()
        .header(header::CONTENT_TYPE, kind.content_type())
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(bytes))
        .map_err(|e| ApiError::internal(e.to_string()))
}
