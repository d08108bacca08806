//! Signing in and out, and a person's own account: the first-login
//! enrolment flow (SPEC R4.1, R4.2, R4.6; API.md "Sessions").

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use platekeeper_core::account::{check_new_password, Denial, PasswordOwner};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::Role;
use platekeeper_store::credentials::otpauth_uri;
use platekeeper_store::{Actor, SignIn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::{
    affiliation, suspend_if_inactive, ClientAddr, DeviceSeen, SessionUser,
};
use crate::json::ApiJson;
use crate::{blocking, throttle, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        // A sign-in is a few hundred bytes; without an account nobody may
        // make the server read the general 32 MiB (issue 22 finding 7).
        .route(
            "/api/v1/session",
            post(sign_in)
                .delete(sign_out)
                .layer(DefaultBodyLimit::max(SIGN_IN_MAX_BYTES)),
        )
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/totp", post(begin_totp))
        .route("/api/v1/me/totp/confirm", post(confirm_totp))
}

/// The largest sign-in body read.
pub const SIGN_IN_MAX_BYTES: usize = 16 * 1024;

#[derive(Deserialize, ToSchema)]
pub struct SignInBody {
    pub username: String,
    pub password: String,
    /// The current 6-digit code, once two factors are enrolled.
    pub totp: Option<String>,
    /// Instead of a code: a passkey's answer to the challenge from
    /// `POST /api/v1/session/passkey` (issue 24 item 4).
    pub passkey: Option<crate::passkeys::PasskeyAnswer>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub token: String,
    pub expires_at: String,
    /// What remains before plate data is reachable: `change_password`,
    /// `enroll_totp`. Empty when done.
    pub next: Vec<String>,
}

/// Sign in. A new account signs in with its one-time password and no code;
/// its session is good only for finishing enrolment.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    request_body = SignInBody,
    responses(
        (status = 200, body = SessionCreated),
        (status = 401, description = "invalid_credentials", body = crate::error::ErrorBody),
        (status = 403, description = "account_suspended, training_required, approval_lapsed", body = crate::error::ErrorBody),
        (status = 423, description = "account_locked", body = crate::error::ErrorBody),
        (status = 429, description = "too_many_attempts: failed sign-ins from this address; wait Retry-After seconds", body = crate::error::ErrorBody),
    ),
    tag = "sessions"
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    crate::passkeys::MaybeRp(rp): crate::passkeys::MaybeRp,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<SessionCreated>, Response> {
    // Throttled before anything else: no password check, no count toward
    // the account's lock, no log entry (issue 22 finding 7).
    let now = state.now_ms();
    match throttle::check(&state.store, client.as_deref(), &body.username, now).await {
        Ok(Some(until)) => return Err(too_many_attempts(until - now)),
        Ok(None) => {}
        Err(e) => return Err(e.into_response()),
    }
    let store = state.store.clone();
    let username = body.username.clone();
    let addr = client.clone();
    let outcome = checked_sign_in(state, client, rp, body).await;
    let counted = match &outcome {
        Ok(_) => throttle::Outcome::Succeeded,
        // Only a wrong password or code, or a locked account, is a failed
        // guess; a refusal after the right credentials (training, …) is not.
        Err(e) if matches!(e.code, "invalid_credentials" | "account_locked") => {
            throttle::Outcome::Failed
        }
        Err(_) => throttle::Outcome::Other,
    };
    if let Some(b) = throttle::record(&store, addr.as_deref(), &username, counted, now).await {
        tracing::warn!(client = ?addr, username = %username, scope = b.scope.as_str(), failures = b.failures, "sign-ins throttled");
    }
    outcome.map_err(IntoResponse::into_response)
}

/// 429 `too_many_attempts` with `Retry-After` (whole seconds, rounded up).
pub(crate) fn too_many_attempts(wait_ms: i64) -> Response {
    let secs = (wait_ms.max(0) + 999) / 1000;
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed sign-ins from this address; try again in {secs} seconds"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The lock's refusal, saying when a time-limited lock lifts.
pub(crate) fn locked(until: Option<i64>, now: i64) -> ApiError {
    match until.filter(|u| *u > now) {
        Some(u) => ApiError::new(
            StatusCode::LOCKED,
            "account_locked",
            format!(
                "this account is locked after repeated failed sign-ins until {} (it unlocks by itself then), or until the ALPR Administrator unlocks it",
                format_time_ms(u)
            ),
        ),
        None => Denial::Locked.into(),
    }
}

/// Refuses credentials too long to be real (the same answer as wrong
/// ones: nothing is checked, nothing counted).
pub(crate) fn check_lengths(
    username: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<(), ApiError> {
    if username.len() > 64 || password.len() > 1024 || totp.is_some_and(|t| t.len() > 16) {
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "the username, password or code is wrong",
        ));
    }
    Ok(())
}

async fn checked_sign_in(
    state: AppState,
    client: Option<String>,
    rp: Result<webauthn_rs::prelude::Webauthn, ApiError>,
    body: SignInBody,
) -> Result<Json<SessionCreated>, ApiError> {
    check_lengths(&body.username, &body.password, body.totp.as_deref())?;
    if body.passkey.is_some() && body.totp.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_sign_in",
            "send a code or a passkey's answer, not both",
        ));
    }
    let store = state.store.clone();
    let now = state.now_ms();
    let policy = store.policy();
    let (token, expires, next) = blocking(move || {
        let factor = match &body.passkey {
            Some(answer) => platekeeper_store::SecondFactor::Passkey(
                crate::passkeys::check_answer(&state, &rp?, &body.username, answer, now)?,
            ),
            None => platekeeper_store::SecondFactor::Totp(body.totp.as_deref()),
        };
        let outcome = store.sign_in_with(
            &body.username,
            &body.password,
            factor,
            policy.accounts.lockout_attempts,
            client.clone(),
            now,
        )?;
        let account = match outcome {
            SignIn::Locked | SignIn::BadCredentials { locked_now: true } => {
                let until = store
                    .account(&body.username)?
                    .and_then(|a| a.locked_until_ms);
                return Err(locked(until, now));
            }
            SignIn::BadCredentials { .. } => {
                return Err(ApiError::unauthorized(
                    "invalid_credentials",
                    "the username, password or code is wrong",
                ))
            }
            SignIn::CodeUsed { next_code_in_s } => {
                return Err(ApiError::unauthorized(
                    "code_already_used",
                    format!(
                        "this code was already used to sign in (perhaps on another device); \
                         wait for the next code, in {next_code_in_s} s, and sign in with it. \
                         This did not count as a wrong code"
                    ),
                )
                .retry_after(next_code_in_s))
            }
            SignIn::PasskeyRequired => {
                return Err(ApiError::unauthorized(
                    "passkey_required",
                    "sign in with your passkey: the agency's policy no longer accepts a code from you. \
                     Lost your passkeys? The ALPR Administrator can remove them, and you can then sign in with a code to add a new one",
                ))
            }
            SignIn::Ok(a) => a,
        };
        suspend_if_inactive(&store, &account, &policy.accounts, now)?;
        let st = account.state_under(&policy.accounts);
        st.check_usable(&policy.accounts, now)?;
        let next = st.next_steps();
        // People whose work is only plate data have nothing to do here
        // without current training and approval.
        let data_only = matches!(
            account.role,
            Role::Officer | Role::Dispatcher | Role::Cso | Role::Analyst
        );
        if next.is_empty() && data_only {
            st.check_plate_data(&policy.accounts, now)?;
        }
        let expires = now + policy.accounts.session_hours as i64 * 3_600_000;
        let token = store.create_session(&account.username, expires, client, now)?;
        Ok((token, expires, next))
    })
    .await?;
    Ok(Json(SessionCreated {
        token,
        expires_at: format_time_ms(expires),
        next: next.into_iter().map(String::from).collect(),
    }))
}

/// Sign out: the token stops working at once.
#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204)), tag = "sessions")]
pub async fn sign_out(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let now = state.now_ms();
    blocking(move || Ok(store.end_session(&who.token, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    pub name: String,
    pub title: Option<String>,
    pub role: String,
    pub affiliation: String,
    pub next: Vec<String>,
    pub training_current: bool,
    pub approval_current: bool,
    /// The rights of the role, from the role table.
    #[schema(value_type = Vec<String>)]
    pub rights: Vec<platekeeper_core::Right>,
    /// The agency device this connection presents, if it is one.
    #[schema(value_type = Option<Object>)]
    pub device: Option<MeDevice>,
    /// Whether plate data needs a registered device (and, when this
    /// connection has none, why it is not one).
    pub devices_required: bool,
    pub device_problem: Option<String>,
    /// Passkeys registered (issue 24 item 4).
    pub passkeys: u32,
    /// Whether the policy requires this person to sign in with a passkey.
    pub passkey_required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeDevice {
    pub id: i64,
    pub name: String,
}

/// The signed-in person's own account (no credentials).
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me)), tag = "sessions")]
pub async fn me(State(state): State<AppState>, who: SessionUser) -> Json<Me> {
    let now = state.now_ms();
    let a = &who.account;
    let policy = state.store.policy();
    let st = a.state_under(&policy.accounts);
    Json(Me {
        username: a.username.clone(),
        name: a.name.clone(),
        title: a.title.clone(),
        role: a.role.as_str().into(),
        affiliation: affiliation(&policy.agency_name, a.title.as_deref()),
        next: st.next_steps().into_iter().map(String::from).collect(),
        training_current: st.training_current(now),
        approval_current: st.approval_current(now),
        rights: a.role.rights().to_vec(),
        device: match &who.device {
            DeviceSeen::Device(d) => Some(MeDevice {
                id: d.id,
                name: d.name.clone(),
            }),
            DeviceSeen::NotADevice(_) => None,
        },
        devices_required: policy.devices_required,
        passkeys: a.passkeys,
        passkey_required: policy.accounts.passkey_required(a.role),
        device_problem: match &who.device {
            DeviceSeen::NotADevice(why) => Some(why.clone()),
            DeviceSeen::Device(_) => None,
        },
    })
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    pub current: String,
    pub new: String,
}

/// Change one's own password (at once, if it may be compromised). A
/// password is refused (422 `weak_password`, with `detail` naming why:
/// `too_short`, `common_password`, `repeated_characters`, `sequence`,
/// `keyboard_pattern`, `contains_username`, `contains_name`,
/// `too_predictable`, …) when it is short or easy to guess.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    request_body = PasswordBody,
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    tag = "sessions"
)]
pub async fn change_password(
    State(state): State<AppState>,
    who: SessionUser,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let policy = state.store.policy();
    let username = who.account.username.clone();
    if body.current.len() > 1024 {
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "the current password is wrong",
        ));
    }
    // The person's name and agency are words an attacker tries first.
    let owner = PasswordOwner {
        username: &username,
        name: &who.account.name,
        agency: &policy.agency_name,
    };
    check_new_password(&policy.accounts, owner, &body.current, &body.new).map_err(|r| {
        let mut e = ApiError::unprocessable("weak_password", r.message);
        e.detail = Some(r.reason);
        e
    })?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = Actor {
        username: username.clone(),
        affiliation: affiliation(&policy.agency_name, who.account.title.as_deref()),
        role: Some(who.account.role.as_str().into()),
        client: who.client.clone(),
    };
    blocking(move || {
        if !store.password_matches(&username, &body.current)? {
            let now_locked = store.count_failure(
                &username,
                "wrong current password",
                policy.accounts.lockout_attempts,
                &actor,
                now,
            )?;
            if now_locked {
                let until = store.account(&username)?.and_then(|a| a.locked_until_ms);
                return Err(locked(until, now));
            }
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "the current password is wrong",
            ));
        }
        Ok(store.change_password(&username, &body.new, &actor, now)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// For a QR code.
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code (SVG), drawn here so the secret
    /// never goes to an outside QR service.
    pub qr_svg: String,
}

/// Start two-factor enrolment: a new secret, active once confirmed.
#[utoipa::path(post, path = "/api/v1/me/totp", responses((status = 200, body = TotpEnrolment), (status = 422, body = crate::error::ErrorBody)), tag = "sessions")]
pub async fn begin_totp(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<TotpEnrolment>, ApiError> {
    let store = state.store.clone();
    let now = state.now_ms();
    let username = who.account.username.clone();
    let secret = blocking(move || Ok(store.begin_totp(&username, now)?)).await?;
    let issuer = format!("Platekeeper {}", state.store.policy().agency_name);
    let uri = otpauth_uri(&secret, &who.account.username, &issuer);
    let qr_svg = qr_svg(&uri)?;
    Ok(Json(TotpEnrolment {
        otpauth_uri: uri,
        qr_svg,
        secret,
    }))
}

/// A QR code for an authenticator app, as a standalone SVG document.
fn qr_svg(text: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    pub code: String,
}

/// Confirm two-factor enrolment with a current code.
#[utoipa::path(
    post,
    path = "/api/v1/me/totp/confirm",
    request_body = CodeBody,
    responses((status = 204), (status = 422, description = "invalid_code", body = crate::error::ErrorBody)),
    tag = "sessions"
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    who: SessionUser,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let now = state.now_ms();
    let username = who.account.username.clone();
    let ok = blocking(move || Ok(store.confirm_totp(&username, &body.code, now)?)).await?;
    if ok {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unprocessable(
            "invalid_code",
            "the code does not match; check the authenticator's clock and try the current code",
        ))
    }
}
