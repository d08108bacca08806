//! `POST /api/v1/cameras` and `GET /api/v1/cameras`: registering cameras
//! and issuing their API keys (administrator).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use platekeeper_core::GeoPoint;
use platekeeper_store::{Camera, CameraKind, NewCamera};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::json::ApiJson;
use crate::{blocking, ApiError, AppState};
use platekeeper_core::Right;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/cameras", post(create_camera).get(list_cameras))
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
}

impl From<&Camera> for CameraInfo {
    fn from(c: &Camera) -> CameraInfo {
        CameraInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str().to_string(),
            lat: c.position.map(|p| p.lat),
            lon: c.position.map(|p| p.lon),
        }
    }
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
