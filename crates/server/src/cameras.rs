//! `POST /api/v1/cameras` and `GET /api/v1/cameras`: registering cameras
//! and issuing their API keys (administrator).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::GeoPoint;
use platekeeper_store::{Camera, CameraKind, NewCamera};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::json::{ApiJson, OptionalJson};
use crate::{blocking, ApiError, AppState};
use platekeeper_core::Right;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cameras", post(create_camera).get(list_cameras))
        .route("/api/v1/cameras/{id}/rotate", post(rotate_key))
        .route("/api/v1/cameras/{id}/revoke", post(revoke))
        .route("/api/v1/cameras/{id}", axum::routing::patch(rename))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraChange {
    /// The camera's new name. Nothing else can change: a fixed camera's
    /// reads take their place from its position, so a camera that moves
    /// is registered again under a new id.
    pub name: String,
}

/// Rename a camera (administrator). Logged with the old and new names.
#[utoipa::path(patch, path = "/api/v1/cameras/{id}", params(("id" = String, Path)), request_body = CameraChange,
    responses((status = 200, body = CameraInfo), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    tag = "cameras")]
pub async fn rename(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<CameraChange>,
) -> Result<Json<CameraInfo>, ApiError> {
    change_camera(&state, &who, path, move |store, id, actor, now| {
        store.rename_camera(id, &body.name, actor, now)
    })
    .await
}

/// An administrator's logged change to the camera the path names.
async fn change_camera(
    state: &AppState,
    who: &Person,
    path: Result<Path<String>, PathRejection>,
    change: impl FnOnce(
            &platekeeper_store::Store,
            &str,
            &platekeeper_store::Actor,
            i64,
        ) -> Result<Camera, platekeeper_store::StoreError>
        + Send
        + 'static,
) -> Result<Json<CameraInfo>, ApiError> {
    who.require(Right::ManageCameras)?;
    let id = crate::search::path_param(path)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let cam = blocking(move || change(&store, &id, &actor, now).map_err(camera_error)).await?;
    Ok(Json(CameraInfo::from(&cam)))
}

#[derive(Deserialize, ToSchema)]
pub struct CameraBody {
    /// Letters, digits, `-`, `_`, `.`; 1–64 characters.
    pub id: String,
    pub name: String,
    /// `fixed` or `mobile`.
    pub kind: String,
    /// A fixed camera's position (reads without their own are placed here).
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct CameraCreated {
    pub id: String,
    /// Shown once; only its hash is kept.
    pub api_key: String,
    pub name: String,
    pub kind: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// When its keys were revoked; it sends nothing until a rotation.
    pub revoked_at: Option<String>,
    /// Until when the key replaced by its last rotation still works.
    pub old_key_valid_until: Option<String>,
}

impl From<&Camera> for CameraInfo {
    fn from(c: &Camera) -> CameraInfo {
        CameraInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str().to_string(),
            lat: c.position.map(|p| p.lat),
            lon: c.position.map(|p| p.lon),
            revoked_at: c.revoked_at_ms.map(format_time_ms),
            old_key_valid_until: c.old_key_until_ms.map(format_time_ms),
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the key being replaced keeps working, in minutes (0 to
    /// 10080, a week; default 60), while the new key is put in the camera.
    pub grace_minutes: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    /// Shown once; only its hash is kept.
    pub api_key: String,
    /// Until when the replaced key still works (null: it stopped at once).
    pub old_key_valid_until: Option<String>,
}

/// A camera's own key is its only credential: an administrator replaces
/// it (a technician left, a key was pasted somewhere) without losing the
/// reads sent while the new one is installed. Logged.
#[utoipa::path(post, path = "/api/v1/cameras/{id}/rotate", params(("id" = String, Path)), request_body = RotateBody,
    responses((status = 200, body = RotatedKey), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    tag = "cameras")]
pub async fn rotate_key(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<String>, PathRejection>,
    OptionalJson(body): OptionalJson<RotateBody>,
) -> Result<Json<RotatedKey>, ApiError> {
    who.require(Right::ManageCameras)?;
    let id = crate::search::path_param(path)?;
    let minutes = body.grace_minutes.unwrap_or(60);
    let max = platekeeper_store::MAX_ROTATION_GRACE_MS / 60_000;
    if !(0..=max).contains(&minutes) {
        return Err(ApiError::unprocessable(
            "invalid_grace",
            format!("grace_minutes is {minutes}; it must be 0 to {max} (a week)"),
        ));
    }
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let (cam, key) = blocking(move || {
        store
            .rotate_camera_key(&id, minutes * 60_000, &actor, now)
            .map_err(camera_error)
    })
    .await?;
    Ok(Json(RotatedKey {
        id: cam.id,
        api_key: key,
        old_key_valid_until: cam.old_key_until_ms.map(format_time_ms),
    }))
}

/// A camera named in the path that does not exist is 404 here (in a read
/// it is a field error, 422).
fn camera_error(e: platekeeper_store::StoreError) -> ApiError {
    match e {
        platekeeper_store::StoreError::UnknownCamera(_) => {
            ApiError::not_found("unknown_camera", e.to_string())
        }
        e => e.into(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// Why (stolen, key leaked, decommissioned).
    pub reason: String,
}

/// Revoke every key of a camera at once: its next request gets 401. Its
/// reads stay; a rotation brings it back with a new key. Logged.
#[utoipa::path(post, path = "/api/v1/cameras/{id}/revoke", params(("id" = String, Path)), request_body = RevokeBody,
    responses((status = 200, body = CameraInfo), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    tag = "cameras")]
pub async fn revoke(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<CameraInfo>, ApiError> {
    change_camera(&state, &who, path, move |store, id, actor, now| {
        store.revoke_camera(id, &body.reason, actor, now)
    })
    .await
}

/// Register a camera; the answer holds its API key, shown only this once.
#[utoipa::path(
    post,
    path = "/api/v1/cameras",
    request_body = CameraBody,
    responses(
        (status = 201, body = CameraCreated),
        (status = 409, description = "A camera with this id exists", body = crate::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::error::ErrorBody),
    ),
    tag = "cameras"
)]
pub async fn create_camera(
    State(state): State<AppState>,
    who: Person,
    ApiJson(body): ApiJson<CameraBody>,
) -> Result<(StatusCode, Json<CameraCreated>), ApiError> {
    who.require(Right::ManageCameras)?;
    let kind = CameraKind::parse(&body.kind).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_camera",
            format!("kind {:?} must be \"fixed\" or \"mobile\"", body.kind),
        )
    })?;
    let position = match (body.lat, body.lon) {
        (Some(lat), Some(lon)) => Some(
            GeoPoint::new(lat, lon)
                .map_err(|e| ApiError::unprocessable("invalid_coordinates", e.to_string()))?,
        ),
        (None, None) => None,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_coordinates",
                "give both lat and lon, or neither",
            ))
        }
    };
    let new = NewCamera {
        id: body.id,
        name: body.name,
        kind,
        position,
    };
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let (cam, key) = blocking(move || Ok(store.create_camera(new, &actor, now)?)).await?;
    let info = CameraInfo::from(&cam);
    Ok((
        StatusCode::CREATED,
        Json(CameraCreated {
            id: info.id,
            api_key: key,
            name: info.name,
            kind: info.kind,
            lat: info.lat,
            lon: info.lon,
        }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CameraList {
    pub cameras: Vec<CameraInfo>,
    pub next_cursor: Option<String>,
}

/// The registered cameras (never their keys), a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/cameras",
    params(ListParams),
    responses((status = 200, body = CameraList), (status = 400, body = crate::error::ErrorBody)),
    tag = "cameras"
)]
pub async fn list_cameras(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<CameraList>, ApiError> {
    if !who.account.role.may(Right::ManageCameras) {
        who.require(Right::ViewCameraHealth)?;
    }
    let params = crate::search::query_param(params)?;
    let limit = crate::search::page_limit(params.limit)?;
    let after = crate::search::id_cursor(params.cursor.as_deref())?.unwrap_or(0);
    let page: Vec<Camera> = state
        .store
        .cameras()
        .into_iter()
        .filter(|c| i64::from(c.num) > after)
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].num.to_string());
    Ok(Json(CameraList {
        cameras: page.iter().take(limit).map(CameraInfo::from).collect(),
        next_cursor,
    }))
}
