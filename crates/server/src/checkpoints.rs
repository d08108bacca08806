//! Signed checkpoints of the audit log over HTTP (SPEC R4.5; issue 22
//! finding 2): the newest for auditors to download and keep, one signed
//! on demand (which is also how an alarm is acknowledged), and the proof
//! that the log extends a checkpoint kept elsewhere
//! (`POST /api/v1/audit/verify`). The public gets the newest on
//! `/transparency`; every audit report carries one.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use platekeeper_core::checkpoint::Checkpoint;
use platekeeper_core::Right;
use platekeeper_store::CheckpointProof;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::json::{ApiJson, OptionalJson};
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit/checkpoint", get(latest).post(sign))
}

/// `Content-Disposition` naming a checkpoint's file, so a browser saves it.
fn as_file(c: &Checkpoint) -> Response {
    (
        [(
            header::CONTENT_DISPOSITION,
            format!(
                "inline; filename=\"platekeeper-checkpoint-{}.json\"",
                c.entries
            ),
        )],
        Json(c),
    )
        .into_response()
}

/// The newest signed checkpoint of the audit log: `{entries, head, time,
/// store_id, signature, public_key}`. Keep it somewhere the server's
/// administrators cannot write; `platekeeper audit verify --checkpoint
/// FILE` (or `POST /api/v1/audit/verify`) later proves the log still
/// extends it.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint",
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)), tag = "audit")]
pub async fn latest(State(state): State<AppState>, who: Person) -> Result<Response, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let store = state.store.clone();
    match blocking(move || Ok(store.latest_checkpoint()?)).await? {
        Some(c) => Ok(as_file(&c)),
        None => Err(ApiError::not_found(
            "no_checkpoint",
            "no checkpoint has been signed yet (the server signs one at start and hourly)",
        )),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// While the log is alarmed: what was found and done. Acknowledging
    /// is logged with the note and clears the alarm.
    pub acknowledge_alarm: Option<String>,
}

/// Signs a checkpoint of the log's head now (returns the newest if the
/// log has not moved). While the log is alarmed, 409 `log_alarm` unless
/// the body acknowledges the alarm.
#[utoipa::path(post, path = "/api/v1/audit/checkpoint", request_body = SignRequest,
    responses((status = 200, body = Object), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)), tag = "audit")]
pub async fn sign(
    State(state): State<AppState>,
    who: Person,
    OptionalJson(req): OptionalJson<SignRequest>,
) -> Result<Response, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let c = blocking(move || {
        Ok(match req.acknowledge_alarm {
            Some(note) => store.acknowledge_log_alarm(&actor, &note, now)?,
            None => store.checkpoint(now)?,
        })
    })
    .await?;
    Ok(as_file(&c))
}

/// The body of `POST /api/v1/audit/verify`: a checkpoint as downloaded,
/// or a document that carries one under `checkpoint` (the transparency
/// page's JSON) or `log_checkpoint` (an audit report's JSON).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum CheckpointDocument {
    Bare(Checkpoint),
    Transparency { checkpoint: Checkpoint },
    Report { log_checkpoint: Checkpoint },
}

impl CheckpointDocument {
    pub fn into_checkpoint(self) -> Checkpoint {
        match self {
            CheckpointDocument::Bare(c)
            | CheckpointDocument::Transparency { checkpoint: c }
            | CheckpointDocument::Report { log_checkpoint: c } => c,
        }
    }
}

/// Proves that the log extends a checkpoint kept elsewhere: its signature
/// holds, it is of this store, the whole chain is intact and entry
/// `entries` still has hash `head`. 200 either way; `ok` says which, and
/// `problem` why not.
#[utoipa::path(post, path = "/api/v1/audit/verify", request_body = Object,
    responses((status = 200, body = Object), (status = 422, body = crate::error::ErrorBody)), tag = "audit")]
pub async fn prove(
    State(state): State<AppState>,
    who: Person,
    ApiJson(doc): ApiJson<CheckpointDocument>,
) -> Result<Json<CheckpointProof>, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let store = state.store.clone();
    let c = doc.into_checkpoint();
    Ok(Json(
        blocking(move || Ok(store.prove_checkpoint(&c)?)).await?,
    ))
}

/// Signs a checkpoint unless the log is alarmed or the store has no key;
/// for start-up and the hourly maintenance.
pub async fn sign_quietly(state: &AppState) {
    if state.store.log_alarm().is_some() || state.store.checkpoint_public_key().is_none() {
        return;
    }
    let store = state.store.clone();
    let now = state.now_ms();
    match tokio::task::spawn_blocking(move || store.checkpoint(now)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "signing a checkpoint of the audit log failed"),
        Err(e) => tracing::error!(error = %e, "maintenance task failed"),
    }
}
