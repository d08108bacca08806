//! `/api/v1/devices`: the agency's own computers, phones and tablets
//! (issue 24 item 3). The administrator registers a device and receives
//! its client certificate once, as a PKCS#12 file with a one-time
//! passphrase; revoking it refuses it from its next request. The first
//! registration turns `devices_required` on: from then, plate data is
//! served only to connections that present a registered device's
//! certificate (`Person::require_plate_data`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use base64::Engine;
use platekeeper_core::Right;
use platekeeper_store::{Device, NewDevice, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accountability::Person;
use crate::device_certs::{self, CertError};
use crate::json::ApiJson;
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/devices",
            post(register)
                .get(list)
                .layer(DefaultBodyLimit::max(4 * 1024)),
        )
        .route("/api/v1/devices/{id}", delete(revoke))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    /// What the agency calls it, e.g. "Unit 12 MDT".
    pub name: String,
    /// The username of the person it is issued to, if one.
    pub assigned_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredDevice {
    #[schema(value_type = Object)]
    pub device: Device,
    /// The device's key and certificate with the agency authority's,
    /// PKCS#12, base64. Shown once: nothing here can make it again.
    pub pkcs12_base64: String,
    /// Opens the file; shown once.
    pub passphrase: String,
    pub file_name: String,
    /// Whether plate data now needs a device (the first registration
    /// turns it on).
    pub devices_required: bool,
}

fn cert_error(e: CertError) -> ApiError {
    match e {
        CertError::Store(s) => s.into(),
        e => ApiError::internal(e.to_string()),
    }
}

/// Register a device and issue its certificate (administrator).
#[utoipa::path(post, path = "/api/v1/devices", request_body = NewDeviceBody,
    responses((status = 201, body = RegisteredDevice), (status = 422, body = crate::error::ErrorBody)), tag = "devices")]
pub async fn register(
    State(state): State<AppState>,
    who: Person,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, &'static str); 1],
        Json<RegisteredDevice>,
    ),
    ApiError,
> {
    who.require(Right::ManageAccounts)?;
    // Once devices are required, only from one of them, unless none is
    // left in service (every one revoked: the agency must be able to
    // start again, as with its first).
    let store = state.store.clone();
    let in_service =
        blocking(move || Ok(store.devices()?.iter().any(|d| d.revoked_at.is_none()))).await?;
    if in_service {
        who.require_device(&state, "register_device")?;
    }
    let store = state.store.clone();
    let authority = state.devices.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let name = body.name.trim().to_string();
    let (device, issued, required) = blocking(move || {
        let ca = authority.ensure(&store, &actor, now).map_err(cert_error)?;
        let issued = device_certs::issue(&ca, &name, now).map_err(cert_error)?;
        let device = store.register_device(
            NewDevice {
                name,
                assigned_to: body.assigned_to,
                fingerprint: issued.fingerprint,
                serial: issued.serial.clone(),
                not_after_ms: issued.not_after_ms,
            },
            &actor,
            now,
        )?;
        // The policy's rule from the first device on: turning it on is a
        // strengthening, logged as any policy change.
        if !store.policy().devices_required {
            store.update_policy(
                |p| {
                    let mut p = p.clone();
                    p.devices_required = true;
                    Ok::<_, StoreError>(p)
                },
                platekeeper_store::Confirm::Fields(&[]),
                &actor,
                now,
            )?;
        }
        Ok((device, issued, store.policy().devices_required))
    })
    .await?;
    let file_name = format!(
        "device-{}-{}.p12",
        device.id,
        device
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
    );
    Ok((
        StatusCode::CREATED,
        // The key's passphrase is in this answer: no cache may keep it.
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(RegisteredDevice {
            device,
            pkcs12_base64: base64::engine::general_purpose::STANDARD.encode(&issued.pkcs12),
            passphrase: issued.passphrase,
            file_name,
            devices_required: required,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    #[schema(value_type = Vec<Object>)]
    pub devices: Vec<Device>,
    pub devices_required: bool,
}

/// Every device, newest first (administrator).
#[utoipa::path(get, path = "/api/v1/devices", responses((status = 200, body = DeviceList)), tag = "devices")]
pub async fn list(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<DeviceList>, ApiError> {
    who.require(Right::ManageAccounts)?;
    let store = state.store.clone();
    let devices = blocking(move || Ok(store.devices()?)).await?;
    Ok(Json(DeviceList {
        devices,
        devices_required: state.store.policy().devices_required,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct RevokeParams {
    /// Why (lost, stolen, retired); logged.
    pub reason: Option<String>,
}

/// Revoke a device (administrator): its certificate is refused from its
/// next request on.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", params(("id" = i64, Path), RevokeParams),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)), tag = "devices")]
pub async fn revoke(
    State(state): State<AppState>,
    who: Person,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<RevokeParams>, QueryRejection>,
) -> Result<Json<Device>, ApiError> {
    who.require(Right::ManageAccounts)?;
    who.require_device(&state, "revoke_device")?;
    let id = crate::search::path_param(path)?;
    let p = crate::search::query_param(params)?;
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    Ok(Json(
        blocking(move || {
            Ok(store.revoke_device(id, p.reason.as_deref().unwrap_or(""), &actor, now)?)
        })
        .await?,
    ))
}
