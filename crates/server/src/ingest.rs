//! `POST /api/v1/reads`: batches of reads from cameras (SPEC R1.1, R1.3,
//! R1.5), and the acceptance path every ingest route shares.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use platekeeper_core::read::{ReadError, TimeInput, MAX_IMAGE_BYTES};
use platekeeper_core::RawRead;
use std::collections::HashMap;

use platekeeper_store::{Camera, HotCheck, IngestItem, IngestStatus, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::json::{ApiJson, FieldError, Fields};
use crate::recognition::needs_reading;
use crate::{blocking, ApiError, AppState};

/// Most reads in one request; cameras batch a few hundred at most.
pub const MAX_BATCH: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/reads", post(post_reads))
}

/// The camera named by `Authorization: Bearer <api key>`.
pub struct CameraAuth(pub Camera);

impl FromRequestParts<AppState> for CameraAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = crate::accountability::bearer(
            parts,
            "send the camera's API key as Authorization: Bearer <key>",
        )?;
        state
            .store
            .authenticate_camera(&key, state.now_ms())
            .map(CameraAuth)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "invalid_camera_key",
                    "the Authorization key belongs to no registered camera, or it was revoked \
                     or replaced by a rotation whose grace period is over",
                )
            })
    }
}

/// The body of `POST /api/v1/reads`.
#[derive(Deserialize, ToSchema)]
pub struct ReadsBody {
    /// Each read: `{id, plate, state?, ts, lat, lon, heading?, confidence?,
    /// plate_image?, vehicle_image?}` (images base64 JPEG or PNG).
    #[schema(value_type = Vec<Object>)]
    pub reads: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct IngestResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
}

/// One read that was refused; the others in its batch are unaffected.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Rejected {
    /// Position in the batch (for CSV imports: the line number).
    pub index: usize,
    pub code: String,
    pub field: String,
    pub message: String,
}

impl Rejected {
    pub fn new(index: usize, (field, code, message): FieldError) -> Rejected {
        Rejected {
            index,
            code: code.to_string(),
            field: field.to_string(),
            message,
        }
    }

    fn from_read(index: usize, e: ReadError) -> Rejected {
        Rejected::new(index, (e.field, e.code, e.message))
    }
}

/// A read on its way in: where it was in its batch, which camera sent it,
/// and the read (or why it could not even be parsed).
pub struct Candidate {
    pub index: usize,
    pub camera: Camera,
    pub raw: Result<RawRead, Rejected>,
}

/// Validates every candidate, stores the good ones in one durable batch,
/// and reports on each. Every ingest route, the CSV import and the
/// benchmark go through here.
pub fn accept_batch(
    store: &Store,
    candidates: Vec<Candidate>,
    now_ms: i64,
) -> Result<Accepted, StoreError> {
    let mut rejected = Vec::new();
    let mut items = Vec::with_capacity(candidates.len());
    let mut indexes = Vec::with_capacity(candidates.len());
    // The batch's cameras, once each, and each item's camera among them.
    let mut cameras: Vec<Camera> = Vec::new();
    let mut camera_slot: HashMap<u32, usize> = HashMap::new();
    let mut item_camera: Vec<usize> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let raw = match c.raw {
            Ok(raw) => raw,
            Err(r) => {
                rejected.push(r);
                continue;
            }
        };
        match raw.validate(now_ms, &c.camera.id) {
            Ok(read) if read.position.is_none() && c.camera.home_micro().is_none() => {
                rejected.push(Rejected::new(
                    c.index,
                    (
                        "lat",
                        "missing_field",
                        format!(
                            "lat and lon are required: camera {} has no registered position",
                            c.camera.id
                        ),
                    ),
                ));
            }
            Ok(read) => {
                indexes.push(c.index);
                let num = c.camera.num;
                let slot = *camera_slot.entry(num).or_insert_with(|| {
                    cameras.push(c.camera);
                    cameras.len() - 1
                });
                item_camera.push(slot);
                items.push(IngestItem { camera: num, read })
            }
            Err(e) => rejected.push(Rejected::from_read(c.index, e)),
        }
    }
    let statuses = store.ingest(&items)?;
    // Hot lists are checked before the batch is acknowledged (R3.3).
    // Duplicates too: a batch re-sent because its answer was lost may
    // not have been matched; an alert already stored is not repeated.
    let checks: Vec<HotCheck<'_>> = statuses
        .iter()
        .zip(items.iter().zip(&item_camera))
        .filter(|(s, _)| matches!(s, IngestStatus::Accepted | IngestStatus::Duplicate))
        .map(|(_, (item, &slot))| HotCheck {
            read: &item.read,
            camera: &cameras[slot],
        })
        .collect();
    let alerts = store.match_hot(&checks, now_ms)?;
    metrics::counter!("platekeeper_alerts_total").increment(alerts.len() as u64);
    let (mut accepted, mut duplicates) = (0, 0);
    for (status, index) in statuses.iter().zip(&indexes) {
        match status {
            IngestStatus::Accepted => accepted += 1,
            IngestStatus::Duplicate => duplicates += 1,
            IngestStatus::MillisecondFull => rejected.push(Rejected::new(
                *index,
                (
                    "ts",
                    "millisecond_full",
                    "16 reads are already stored for this exact millisecond; send this read again"
                        .into(),
                ),
            )),
            IngestStatus::PastRetention => rejected.push(Rejected::new(
                *index,
                (
                    "ts",
                    "past_retention",
                    "ts is on a day past the agency's retention that was already purged".into(),
                ),
            )),
        }
    }
    rejected.sort_by_key(|r| r.index);
    metrics::counter!("platekeeper_reads_accepted_total").increment(accepted as u64);
    metrics::counter!("platekeeper_reads_duplicate_total").increment(duplicates as u64);
    for r in &rejected {
        metrics::counter!("platekeeper_reads_rejected_total", "code" => r.code.clone())
            .increment(1);
    }
    Ok(Accepted {
        report: IngestResponse {
            accepted,
            duplicates,
            rejected,
        },
        alerts,
    })
}

/// What [`accept_batch`] did: the report for the sender, and the alerts
/// its reads raised (stored; the server pushes them to people).
pub struct Accepted {
    pub report: IngestResponse,
    pub alerts: Vec<platekeeper_store::Alert>,
}

/// 200 when anything was stored (or already was); 422 when every read was
/// refused, carrying the first refusal as the error and the full report.
pub fn ingest_reply(report: IngestResponse) -> Response {
    if report.accepted + report.duplicates == 0 {
        if let Some(first) = report.rejected.first() {
            let body = serde_json::json!({
                "error": {
                    "code": first.code,
                    "message": format!("reads[{}].{}", first.index, first.message),
                },
                "accepted": 0,
                "duplicates": 0,
                "rejected": report.rejected,
            });
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    }
    (StatusCode::OK, Json(report)).into_response()
}

/// Decodes a base64 image field (plain, or as a `data:` URL).
pub fn decode_image(field: &'static str, text: &str) -> Result<Vec<u8>, FieldError> {
    let payload = match text.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => text,
    };
    // Check the size before decoding: base64 is 4/3 of the bytes.
    if payload.len() / 4 * 3 > MAX_IMAGE_BYTES + 3 {
        return Err((
            field,
            "image_too_large",
            format!("{field} is over {MAX_IMAGE_BYTES} bytes (2 MiB) once decoded"),
        ));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(payload.trim()).map_err(|e| {
        (
            field,
            "invalid_image_encoding",
            format!("{field} is not valid base64: {e}"),
        )
    })
}

/// Reads one element of `reads` into a [`RawRead`].
pub fn parse_read(v: &Value) -> Result<RawRead, FieldError> {
    let f = Fields::of(v)?;
    let ts = match f.get("ts") {
        None => None,
        Some(Value::String(s)) => Some(TimeInput::Text(s.clone())),
        Some(Value::Number(n)) => Some(TimeInput::EpochMs(n.as_i64().ok_or((
            "ts",
            "invalid_timestamp",
            "ts must be RFC 3339 text or integer epoch milliseconds".to_string(),
        ))?)),
        Some(_) => {
            return Err((
                "ts",
                "invalid_timestamp",
                "ts must be RFC 3339 text such as 2026-11-22T15:04:05Z".to_string(),
            ))
        }
    };
    let image = |name: &'static str| -> Result<Option<Vec<u8>>, FieldError> {
        f.string(name)?.map(|s| decode_image(name, &s)).transpose()
    };
    Ok(RawRead {
        id: f.string("id")?,
        plate: f.string("plate")?,
        state: f.string("state")?,
        ts,
        lat: f.number("lat")?,
        lon: f.number("lon")?,
        heading: f.number("heading")?,
        confidence: f.number("confidence")?,
        plate_image: image("plate_image")?,
        vehicle_image: image("vehicle_image")?,
    })
}

/// Store a batch of reads from the authenticated camera.
#[utoipa::path(
    post,
    path = "/api/v1/reads",
    request_body = ReadsBody,
    responses(
        (status = 200, description = "The batch is durable; per-read outcome", body = IngestResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong camera key", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the configured limit", body = crate::error::ErrorBody),
        (status = 422, description = "Every read refused, or no `reads` array", body = crate::error::ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout (`body_timeout`)", body = crate::error::ErrorBody),
        (status = 429, description = "Nothing stored: pictures over the camera's recognition queue (`recognition_busy`, with `Retry-After` and the full report)", body = crate::error::ErrorBody),
        (status = 507, description = "The data disk is full (`storage_full`, with `Retry-After`); nothing stored", body = crate::error::ErrorBody),
    ),
    security(("camera_key" = [])),
    tag = "ingest"
)]
pub async fn post_reads(
    State(state): State<AppState>,
    CameraAuth(camera): CameraAuth,
    ApiJson(body): ApiJson<ReadsBody>,
) -> Result<Response, ApiError> {
    let raws: Vec<Result<RawRead, FieldError>> = body.reads.iter().map(parse_read).collect();
    ingest_raws(&state, camera, raws, "reads").await
}

/// Stores what one request from `camera` carried: refuses batches over
/// [`MAX_BATCH`], then validates, stores and reports (see
/// [`accept_batch`]). Shared by every camera-facing route.
pub async fn ingest_raws(
    state: &AppState,
    camera: Camera,
    raws: Vec<Result<RawRead, FieldError>>,
    field: &str,
) -> Result<Response, ApiError> {
    if raws.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{field} holds {} reads; send at most {MAX_BATCH} per request",
                raws.len()
            ),
        ));
    }
    // A disk short of space refuses before any work (issue 22 finding 11).
    state.ops.storage.refuse_if_low()?;
    let mut candidates: Vec<Candidate> = raws
        .into_iter()
        .enumerate()
        .map(|(index, raw)| Candidate {
            index,
            camera: camera.clone(),
            raw: raw.map_err(|e| Rejected::new(index, e)),
        })
        .collect();
    let busy = recognize_pictures(state, camera.num, &mut candidates).await;
    let store = state.store.clone();
    let now = state.now_ms();
    let done = blocking(move || Ok(accept_batch(&store, candidates, now)?)).await;
    state.ops.storage.note(&done);
    let done = done?;
    state.alerts.publish(done.alerts);
    match busy {
        Some(retry_after_s) => Ok(busy_reply(done.report, retry_after_s)),
        None => Ok(ingest_reply(done.report)),
    }
}

/// Reads the plates of picture-only reads (see [`crate::recognition`]) in
/// the places the camera's queue has free; a read that cannot be read,
/// or finds no place, becomes a rejection as any other bad field. Returns
/// the seconds to wait when some found no place.
async fn recognize_pictures(
    state: &AppState,
    camera: u32,
    candidates: &mut [Candidate],
) -> Option<u64> {
    let wanted = candidates
        .iter()
        .filter(|c| c.raw.as_ref().is_ok_and(needs_reading))
        .count();
    if wanted == 0 {
        return None;
    }
    let mut ticket = state.recognition.admit(camera, wanted);
    let mut refused = false;
    for c in candidates.iter_mut() {
        let raw = match &mut c.raw {
            Ok(raw) if needs_reading(raw) => std::mem::take(raw),
            _ => continue,
        };
        let field = if raw.plate_image.is_some() {
            "plate_image"
        } else {
            "vehicle_image"
        };
        c.raw = match ticket.read(raw).await {
            Some(read) => read.map_err(|e| Rejected::new(c.index, e)),
            None => {
                refused = true;
                Err(Rejected::new(
                    c.index,
                    (
                        field,
                        "recognition_busy",
                        format!(
                            "the server is still reading this camera's earlier pictures (at most {} at a time); send this read again later",
                            state.recognition.limits().per_camera
                        ),
                    ),
                ))
            }
        };
    }
    drop(ticket);
    refused.then(|| state.recognition.retry_after_s(camera))
}

/// As [`ingest_reply`] when some pictures found no place in the camera's
/// recognition queue: 429 with `Retry-After` if nothing was stored (the
/// camera sends the batch again later), else 200 with the refused reads
/// in `rejected` and the same `Retry-After` as a hint.
pub fn busy_reply(report: IngestResponse, retry_after_s: u64) -> Response {
    let retry = (
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after_s),
    );
    if report.accepted + report.duplicates == 0 {
        let first = report
            .rejected
            .iter()
            .find(|r| r.code == "recognition_busy")
            .map(|r| format!("reads[{}].{}", r.index, r.message))
            .unwrap_or_default();
        let body = serde_json::json!({
            "error": {"code": "recognition_busy", "message": first},
            "accepted": 0,
            "duplicates": 0,
            "rejected": report.rejected,
        });
        return (StatusCode::TOO_MANY_REQUESTS, [retry], Json(body)).into_response();
    }
    let mut resp = ingest_reply(report);
    resp.headers_mut().insert(retry.0, retry.1);
    resp
}
