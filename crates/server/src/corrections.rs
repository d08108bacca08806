//! Corrections of misreads (SPEC R8.2): a person who found a read can
//! correct its plate or state; the original, who, when and why are kept
//! and logged, and the correction is itself an access under the purpose
//! of the search that found the read.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use platekeeper_core::{Plate, ReadId, Region, Right};
use platekeeper_store::{AccessKind, Correction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::{access, Person};
use crate::json::ApiJson;
use crate::search::path_param;
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reads/{id}/correction", post(correct))
        .route("/api/v1/corrections", get(list))
}

#[derive(Deserialize, ToSchema)]
pub struct CorrectionRequest {
    /// The plate as it really reads.
    pub plate: String,
    /// The issuing state as it really is; the stored one if absent, none
    /// if empty.
    pub state: Option<String>,
    /// Why (e.g. "image shows 8ABC123; OCR read B as 8").
    pub reason: String,
    /// The access that returned the read; your newest one if absent.
    pub access_id: Option<i64>,
}

/// Correct a misread plate or state; the original is kept.
#[utoipa::path(post, path = "/api/v1/reads/{id}/correction", params(("id" = String, Path)), request_body = CorrectionRequest,
    responses((status = 201, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)), tag = "search")]
pub async fn correct(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<CorrectionRequest>,
) -> Result<(StatusCode, Json<Correction>), ApiError> {
    who.require_plate_data(&state, Right::CorrectReads)?;
    let id = path_param(path)?;
    let id = ReadId::parse(&id).map_err(|e| ApiError::bad_request(e.code, e.message))?;
    let plate = Plate::parse(&req.plate)
        .map_err(|e| ApiError::unprocessable("invalid_plate", format!("plate: {e}")))?;
    let new_state = match req.state.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(s) => Some(Some(Region::parse(s).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_state",
                format!("state {s:?} is not a known state code"),
            )
        })?)),
    };
    let store = state.store.clone();
    let username = who.account.username.clone();
    let access_id = req.access_id;
    let (parent, ts) = blocking(move || {
        // One answer for "not yours" and "did not return it": a named
        // access of someone else's must not reveal what it returned.
        let unseen = || {
            ApiError::not_found(
                "not_in_access",
                format!("read {id} was not returned to you by a search; find it first"),
            )
        };
        let found = match access_id {
            Some(a) => {
                let mine = store
                    .access_record(a)?
                    .is_some_and(|p| p.username == username);
                if !mine {
                    return Err(unseen());
                }
                store.access_returned(a, id)?.map(|ts| (a, ts))
            }
            None => store.latest_access_returning(&username, id)?,
        };
        let Some((a, ts)) = found else {
            return Err(unseen());
        };
        let parent = store
            .access_record(a)?
            .filter(|p| p.username == username)
            .ok_or_else(unseen)?;
        Ok((parent, ts))
    })
    .await?;
    let access = access(
        &who,
        AccessKind::Correction,
        serde_json::json!({"read_id": id.to_string(), "parent_access": parent.id}),
        parent.purpose,
    );
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let c = blocking(move || {
        let released =
            store.correct_read(access, id, ts, (plate, new_state), &req.reason, &actor, now)?;
        Ok(released.into_value())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[derive(Deserialize, IntoParams)]
pub struct CorrectionParams {
    pub read_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CorrectionList {
    #[schema(value_type = Vec<Object>)]
    pub corrections: Vec<Correction>,
}

/// Corrections, newest first (auditor, administrator).
#[utoipa::path(get, path = "/api/v1/corrections", params(CorrectionParams), responses((status = 200, body = CorrectionList)), tag = "audit")]
pub async fn list(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<CorrectionParams>, QueryRejection>,
) -> Result<Json<CorrectionList>, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let p = crate::search::query_param(params)?;
    let read = p
        .read_id
        .as_deref()
        .map(ReadId::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.code, e.message))?;
    let store = state.store.clone();
    Ok(Json(CorrectionList {
        corrections: blocking(move || Ok(store.corrections(read)?)).await?,
    }))
}
