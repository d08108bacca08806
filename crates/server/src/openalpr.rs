//! `POST /api/v1/ingest/openalpr`: the OpenALPR agent's webhook (SPEC
//! R1.4), both per-frame `alpr_results` and per-vehicle `alpr_group`.
//!
//! The agent's identifiers are not UUIDs, so each read's id is derived
//! from the camera, the frame's time, the agent's own uuid for the frame
//! and the plate's place in it:
//! when the agent re-sends after an outage, the ids come out the same
//! and nothing is stored twice.

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use platekeeper_core::read::TimeInput;
use platekeeper_core::{RawRead, ReadId, Region};
use serde_json::Value;

use crate::ingest::{decode_image, ingest_raws, CameraAuth};
use crate::json::{ApiJson, FieldError, Fields};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/ingest/openalpr", post(post_openalpr))
}

fn derived_id(parts: &[&[u8]]) -> String {
    let mut all: Vec<&[u8]> = vec![b"openalpr"];
    all.extend_from_slice(parts);
    ReadId::derive(&all).to_string()
}

/// OpenALPR regions look like `us-ca`; a region it could not tell (`us`,
/// empty) or one outside North America is dropped rather than refused:
/// the plate is still a read.
fn region(text: Option<String>) -> Option<String> {
    text.filter(|r| Region::parse(r).is_some())
}

fn epoch_ms(f: &Fields<'_>, name: &'static str) -> Result<TimeInput, FieldError> {
    f.integer(name)?.map(TimeInput::EpochMs).ok_or((
        name,
        "missing_field",
        format!("{name} is required"),
    ))
}

/// The reads in an `alpr_results` message: one per plate in the frame.
fn alpr_results(
    f: &Fields<'_>,
    camera: &str,
) -> Result<Vec<Result<RawRead, FieldError>>, FieldError> {
    let ts = epoch_ms(f, "epoch_time")?;
    let when = match &ts {
        TimeInput::EpochMs(ms) => *ms,
        TimeInput::Text(_) => 0,
    };
    let uuid = f.string("uuid")?.unwrap_or_default();
    let (lat, lon) = (f.number("gps_latitude")?, f.number("gps_longitude")?);
    let results = match f.get("results") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err((
                "results",
                "missing_field",
                "results must be an array of plates".into(),
            ))
        }
    };
    Ok(results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rf = Fields::of(r)?;
            let index = rf.integer("plate_index")?.unwrap_or(i as i64);
            Ok(RawRead {
                id: Some(derived_id(&[
                    camera.as_bytes(),
                    &when.to_le_bytes(),
                    uuid.as_bytes(),
                    &index.to_le_bytes(),
                ])),
                plate: rf.string("plate")?,
                state: region(rf.string("region")?),
                ts: Some(ts.clone()),
                lat,
                lon,
                heading: None,
                confidence: rf.number("confidence")?,
                plate_image: None,
                vehicle_image: None,
            })
        })
        .collect())
}

/// The read in an `alpr_group` message: the best plate of one vehicle.
fn alpr_group(f: &Fields<'_>, camera: &str) -> Result<RawRead, FieldError> {
    let ts = epoch_ms(f, "epoch_start")?;
    let plate = f.string("best_plate_number")?;
    let key = f
        .string("best_uuid")?
        .or(f.string("agent_uid")?)
        .unwrap_or_default();
    let plate_crop = match f.object("best_plate")? {
        Some(bp) => bp
            .string("plate_crop_jpeg")?
            .map(|s| decode_image("best_plate.plate_crop_jpeg", &s))
            .transpose()?,
        None => None,
    };
    let vehicle = f
        .string("vehicle_crop_jpeg")?
        .map(|s| decode_image("vehicle_crop_jpeg", &s))
        .transpose()?;
    let when = match &ts {
        TimeInput::EpochMs(ms) => *ms,
        TimeInput::Text(_) => 0,
    };
    Ok(RawRead {
        id: Some(derived_id(&[
            camera.as_bytes(),
            key.as_bytes(),
            &when.to_le_bytes(),
            plate.as_deref().unwrap_or("").as_bytes(),
        ])),
        plate,
        state: region(f.string("best_region")?),
        ts: Some(ts),
        lat: f.number("gps_latitude")?,
        lon: f.number("gps_longitude")?,
        heading: f.number("travel_direction")?.map(|d| d.rem_euclid(360.0)),
        confidence: f.number("best_confidence")?,
        plate_image: plate_crop,
        vehicle_image: vehicle,
    })
}

/// Receive an OpenALPR agent webhook message.
#[utoipa::path(
    post,
    path = "/api/v1/ingest/openalpr",
    request_body(content = Object, description = "OpenALPR agent JSON (`data_type` `alpr_results` or `alpr_group`)"),
    responses(
        (status = 200, description = "Stored; per-plate outcome", body = crate::ingest::IngestResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or wrong camera key", body = crate::error::ErrorBody),
        (status = 422, description = "Unsupported data_type or every plate refused", body = crate::error::ErrorBody),
    ),
    security(("camera_key" = [])),
    tag = "ingest"
)]
pub async fn post_openalpr(
    State(state): State<AppState>,
    CameraAuth(camera): CameraAuth,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let f = Fields::of(&body)
        .map_err(|_| ApiError::unprocessable("invalid_body", "the body must be a JSON object"))?;
    let data_type = f
        .string("data_type")
        .map_err(|(_, code, msg)| ApiError::unprocessable(code, msg))?
        .unwrap_or_default();
    let raws: Vec<Result<RawRead, FieldError>> = match data_type.as_str() {
        "alpr_results" => alpr_results(&f, &camera.id)
            .map_err(|(_, code, msg)| ApiError::unprocessable(code, msg))?,
        "alpr_group" => vec![alpr_group(&f, &camera.id)],
        // The agent sends heartbeats to the same address; they carry no
        // plates and are acknowledged so the agent does not retry them.
        "heartbeat" => Vec::new(),
        other => {
            return Err(ApiError::unprocessable(
                "unsupported_data_type",
                format!("data_type {other:?} is not one of alpr_results, alpr_group, heartbeat"),
            ))
        }
    };
    ingest_raws(&state, camera, raws, "results").await
}
