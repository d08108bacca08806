//! Passkeys (WebAuthn) as the second factor of a sign-in (issue 24 item
//! 4; SPEC R4.2, R11.4): registered by their owner, required for the
//! roles the policy names (or for everyone), removed by their owner or,
//! for a person who lost them, by the administrator (logged).
//!
//! A passkey answers a challenge for this server's address only, so a
//! look-alike site cannot pass on what it collects: phishing-resistant,
//! where a TOTP code typed into the wrong page works for whoever has it.
//!
//! Sign-in with a passkey takes two requests:
//! 1. `POST /api/v1/session/passkey {username, password}`: the password is
//!    checked (a wrong one counts towards the lock like any other), and
//!    the answer is a challenge for that person's passkeys;
//! 2. `POST /api/v1/session {username, password, passkey: {challenge_id,
//!    credential}}`: the browser's answer. Each challenge is kept in the
//!    store and taken once: a replayed answer finds it gone and is a
//!    failed sign-in.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use axum::{Json, Router};
use platekeeper_core::Right;
use platekeeper_store::passkeys::{ChallengePurpose, Passkey as StoredPasskey, PasskeyUse};
use platekeeper_store::{Actor, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
/// The address type of `--public-url`.
pub use webauthn_rs::prelude::Url;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::accountability::{ClientAddr, Person, SessionUser};
use crate::json::ApiJson;
use crate::{blocking, ApiError, AppState};

/// The largest passkey request read: an attestation with its
/// certificate chain is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/me/passkeys",
            post(register)
                .get(list)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/api/v1/me/passkeys/options", post(registration_options))
        .route("/api/v1/me/passkeys/{id}", delete(remove_own))
        .route(
            "/api/v1/session/passkey",
            post(sign_in_options).layer(DefaultBodyLimit::max(crate::sessions::SIGN_IN_MAX_BYTES)),
        )
        .route("/api/v1/users/{username}/passkeys", delete(reset))
}

/// Who the passkeys are for: the address people open Platekeeper at.
/// A passkey is bound to its host name, so it must not change.
#[derive(Debug, Clone, Default)]
pub struct RelyingParty {
    /// `--public-url`; without it passkeys work only on `localhost`.
    pub public_url: Option<Url>,
}

/// Reads `--public-url`: an `https://` address with a host name and
/// nothing after it (a passkey is bound to the host name; browsers allow
/// plain `http://` only for `localhost`).
pub fn parse_public_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not an address: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{text:?} has no host name"))?;
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        other => {
            return Err(format!(
                "{text:?}: passkeys need an https:// address (not {other}://), except on localhost"
            ))
        }
    }
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return Err(format!(
            "{text:?}: passkeys are bound to a host name, not an IP address"
        ));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "{text:?}: give only scheme, host and port (for example https://alpr.agency.gov)"
        ));
    }
    Ok(url)
}

fn unavailable(why: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "passkeys_unavailable", why)
}

impl RelyingParty {
    /// The WebAuthn relying party for a request: the configured address,
    /// or `localhost` as the request named it (the demo, a workstation).
    pub fn webauthn(
        &self,
        headers: &HeaderMap,
        over_tls: bool,
        name: &str,
    ) -> Result<Webauthn, ApiError> {
        let origin = match &self.public_url {
            Some(u) => u.clone(),
            None => {
                let host = headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("");
                let bare = host.rsplit_once(':').map_or(host, |(h, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                });
                if bare != "localhost" {
                    return Err(unavailable(format!(
                        "passkeys need the address people open Platekeeper at (they are bound to it): the server must be started with --public-url https://{}",
                        if host.is_empty() { "HOST" } else { host }
                    )));
                }
                let scheme = if over_tls { "https" } else { "http" };
                Url::parse(&format!("{scheme}://{host}"))
                    .map_err(|_| unavailable(format!("{host:?} is not an address")))?
            }
        };
        let rp_id = origin
            .host_str()
            .ok_or_else(|| unavailable("--public-url has no host name".into()))?
            .to_string();
        let name: String = name.chars().take(64).collect();
        WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| {
                b.rp_name(if name.trim().is_empty() {
                    "Platekeeper"
                } else {
                    &name
                })
                .build()
            })
            .map_err(|e| unavailable(format!("passkeys cannot work at {origin}: {e}")))
    }
}

/// The relying party of a request, from its parts.
pub struct Rp(pub Webauthn);

impl axum::extract::FromRequestParts<AppState> for Rp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let over_tls = parts.extensions.get::<crate::net::OverTls>().is_some();
        let name = state.store.policy().agency_name;
        state
            .passkey_rp
            .webauthn(&parts.headers, over_tls, &format!("Platekeeper — {name}"))
            .map(Rp)
    }
}

/// The relying party of a request where passkeys are optional (a
/// sign-in with a code needs none): the reason it is missing is kept
/// for when a passkey is offered after all.
pub struct MaybeRp(pub Result<Webauthn, ApiError>);

impl axum::extract::FromRequestParts<AppState> for MaybeRp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(MaybeRp(
            Rp::from_request_parts(parts, state).await.map(|r| r.0),
        ))
    }
}

/// A person's WebAuthn user handle: fixed, and telling nothing about
/// them (a digest of the username, which is never reused).
fn user_handle(username: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("platekeeper user handle\0{username}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.into())
}

fn stored_passkeys(list: &[StoredPasskey]) -> Vec<(i64, Passkey)> {
    list.iter()
        .filter_map(|p| {
            serde_json::from_str::<Passkey>(&p.credential)
                .ok()
                .map(|k| (p.id, k))
        })
        .collect()
}

/// Whether a session may manage its own passkeys: once its password is
/// its own and a code is set up (registering a passkey may be the last
/// step of enrolment).
fn may_manage(who: &SessionUser, state: &AppState) -> Result<(), ApiError> {
    let policy = state.store.policy();
    let next = who.account.state_under(&policy.accounts).next_steps();
    if next.iter().any(|s| *s != "enroll_passkey") {
        return Err(platekeeper_core::account::Denial::EnrolmentIncomplete.into());
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationOptions {
    /// Send back with the answer.
    pub challenge_id: String,
    /// `navigator.credentials.create(…)`'s argument (`publicKey` inside;
    /// binary fields base64url).
    #[schema(value_type = Object)]
    pub options: CreationChallengeResponse,
}

/// Starts registering a passkey for the signed-in person.
#[utoipa::path(post, path = "/api/v1/me/passkeys/options",
    responses((status = 200, body = RegistrationOptions), (status = 409, description = "passkeys_unavailable", body = crate::error::ErrorBody)),
    tag = "sessions")]
pub async fn registration_options(
    State(state): State<AppState>,
    who: SessionUser,
    Rp(rp): Rp,
) -> Result<Json<RegistrationOptions>, ApiError> {
    may_manage(&who, &state)?;
    let store = state.store.clone();
    let now = state.now_ms();
    blocking(move || {
        let existing = store.passkeys(&who.account.username)?;
        if existing.len() >= platekeeper_store::passkeys::MAX_PASSKEYS {
            return Err(bad_request(
                "too_many_passkeys",
                format!(
                    "you already have {} passkeys; remove one you no longer use first",
                    existing.len()
                ),
            ));
        }
        let exclude: Vec<_> = stored_passkeys(&existing)
            .into_iter()
            .map(|(_, k)| k.cred_id().clone())
            .collect();
        let (options, reg) = rp
            .start_passkey_registration(
                user_handle(&who.account.username),
                &who.account.username,
                &who.account.name,
                Some(exclude),
            )
            .map_err(|e| ApiError::internal(format!("passkey options: {e}")))?;
        let state_json = serde_json::to_string(&reg)
            .map_err(|e| ApiError::internal(format!("passkey state: {e}")))?;
        let challenge_id = store.put_challenge(
            &who.account.username,
            ChallengePurpose::Register,
            &state_json,
            now,
        )?;
        Ok(Json(RegistrationOptions {
            challenge_id,
            options,
        }))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub challenge_id: String,
    /// What the person calls it ("work laptop", "phone").
    pub name: String,
    /// `navigator.credentials.create(…)`'s result, binary fields base64url.
    #[schema(value_type = Object)]
    pub credential: RegisterPublicKeyCredential,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        use platekeeper_core::read::format_time_ms;
        PasskeyView {
            id: p.id,
            name: p.name.clone(),
            created_at: format_time_ms(p.created_at_ms),
            last_used_at: p.last_used_at_ms.map(format_time_ms),
        }
    }
}

fn actor_of(who: &SessionUser, state: &AppState) -> Actor {
    let policy = state.store.policy();
    Actor {
        username: who.account.username.clone(),
        affiliation: crate::accountability::affiliation(
            &policy.agency_name,
            who.account.title.as_deref(),
        ),
        role: Some(who.account.role.as_str().to_string()),
        client: who.client.clone(),
    }
}

/// Finishes registering a passkey (logged `passkey_registered`).
#[utoipa::path(post, path = "/api/v1/me/passkeys", request_body = RegisterBody,
    responses((status = 201, body = PasskeyView), (status = 422, description = "passkey_not_accepted, invalid_user", body = crate::error::ErrorBody)),
    tag = "sessions")]
pub async fn register(
    State(state): State<AppState>,
    who: SessionUser,
    Rp(rp): Rp,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    may_manage(&who, &state)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = actor_of(&who, &state);
    blocking(move || {
        let reg: PasskeyRegistration = store
            .take_challenge(
                body.challenge_id.get(..64).unwrap_or(&body.challenge_id),
                &actor.username,
                ChallengePurpose::Register,
                now,
            )?
            .and_then(|s| serde_json::from_str(&s).ok())
            .ok_or_else(|| {
                bad_request(
                    "challenge_gone",
                    "this registration was already finished, expired (5 minutes) or is not yours: start again",
                )
            })?;
        let key = rp
            .finish_passkey_registration(&body.credential, &reg)
            .map_err(|e| bad_request("passkey_not_accepted", format!("the passkey was not accepted: {e}")))?;
        let json = serde_json::to_string(&key)
            .map_err(|e| ApiError::internal(format!("passkey: {e}")))?;
        let added = store.add_passkey(&actor, &body.name, key.cred_id().as_ref(), &json, now)?;
        Ok((StatusCode::CREATED, Json(PasskeyView::from(&added))))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
    /// Whether the agency's policy requires this person to sign in with
    /// a passkey.
    pub required: bool,
    /// Whether a code (TOTP) is still accepted from this person.
    pub code_accepted: bool,
}

/// The signed-in person's passkeys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", responses((status = 200, body = PasskeyList)), tag = "sessions")]
pub async fn list(
    State(state): State<AppState>,
    who: SessionUser,
) -> Result<Json<PasskeyList>, ApiError> {
    let store = state.store.clone();
    let required = store.policy().accounts.passkey_required(who.account.role);
    blocking(move || {
        let keys = store.passkeys(&who.account.username)?;
        Ok(Json(PasskeyList {
            code_accepted: !required || keys.is_empty(),
            passkeys: keys.iter().map(PasskeyView::from).collect(),
            required,
        }))
    })
    .await
}

/// Removes one of the signed-in person's passkeys (logged
/// `passkey_removed`); the last one only where none is required.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}",
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "last_passkey", body = crate::error::ErrorBody)),
    tag = "sessions")]
pub async fn remove_own(
    State(state): State<AppState>,
    who: SessionUser,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id.map_err(|_| bad_request("invalid_id", "a passkey id is a number"))?;
    may_manage(&who, &state)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let required = store.policy().accounts.passkey_required(who.account.role);
    let actor = actor_of(&who, &state);
    blocking(move || {
        store.remove_own_passkey(&actor, id, required, now)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct ResetQuery {
    /// Why (logged): "lost phone, identity checked in person".
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetOutcome {
    pub removed: usize,
}

/// The administrator's recovery for a person who lost their passkeys:
/// every passkey of theirs removed, with the reason (logged
/// `passkeys_reset`). They then sign in with their code and register a
/// new passkey.
#[utoipa::path(delete, path = "/api/v1/users/{username}/passkeys", params(ResetQuery),
    responses((status = 200, body = ResetOutcome), (status = 404, body = crate::error::ErrorBody)),
    tag = "users")]
pub async fn reset(
    State(state): State<AppState>,
    person: Person,
    username: Result<Path<String>, PathRejection>,
    query: Result<Query<ResetQuery>, QueryRejection>,
) -> Result<Json<ResetOutcome>, ApiError> {
    person.require(Right::ManageAccounts)?;
    person.require_device(&state, "remove a person's passkeys")?;
    let Path(username) = username.map_err(|_| bad_request("invalid_user", "name a user"))?;
    let Query(q) = query.map_err(|_| {
        bad_request(
            "invalid_reason",
            "say why with ?reason=… (for example: lost phone, identity checked in person)",
        )
    })?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = person.actor();
    blocking(move || {
        let removed = store.reset_passkeys(&actor, &username, &q.reason, now)?;
        Ok(Json(ResetOutcome { removed }))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignInStart {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignInOptions {
    pub challenge_id: String,
    /// `navigator.credentials.get(…)`'s argument.
    #[schema(value_type = Object)]
    pub options: RequestChallengeResponse,
}

/// Step 1 of a passkey sign-in: the password, then a challenge for the
/// person's passkeys.
#[utoipa::path(post, path = "/api/v1/session/passkey", request_body = PasskeySignInStart,
    responses((status = 200, body = SignInOptions),
        (status = 401, description = "invalid_credentials", body = crate::error::ErrorBody),
        (status = 409, description = "no_passkey: sign in with a code; passkeys_unavailable", body = crate::error::ErrorBody),
        (status = 423, description = "account_locked", body = crate::error::ErrorBody),
        (status = 429, description = "too_many_attempts", body = crate::error::ErrorBody)),
    tag = "sessions")]
pub async fn sign_in_options(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Rp(rp): Rp,
    ApiJson(body): ApiJson<PasskeySignInStart>,
) -> Result<Json<SignInOptions>, axum::response::Response> {
    use axum::response::IntoResponse;
    let now = state.now_ms();
    match crate::throttle::check(&state.store, client.as_deref(), &body.username, now).await {
        Ok(Some(until)) => return Err(crate::sessions::too_many_attempts(until - now)),
        Ok(None) => {}
        Err(e) => return Err(e.into_response()),
    }
    let username = body.username.clone();
    let addr = client.clone();
    let store = state.store.clone();
    let lockout = store.policy().accounts.lockout_attempts;
    let outcome = blocking(move || {
        crate::sessions::check_lengths(&body.username, &body.password, None)?;
        match store.check_password(&body.username, &body.password, lockout, client, now)? {
            platekeeper_store::PasswordCheck::Right => {}
            platekeeper_store::PasswordCheck::Locked { until } => {
                return Err(crate::sessions::locked(until, now))
            }
            platekeeper_store::PasswordCheck::Wrong => {
                return Err(ApiError::unauthorized(
                    "invalid_credentials",
                    "the username, password or code is wrong",
                ))
            }
        }
        let keys = stored_passkeys(&store.passkeys(&body.username)?);
        if keys.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_passkey",
                "you have no passkey yet: sign in with the code from your authenticator app, then add one",
            ));
        }
        let keys: Vec<Passkey> = keys.into_iter().map(|(_, k)| k).collect();
        let (options, auth) = rp
            .start_passkey_authentication(&keys)
            .map_err(|e| ApiError::internal(format!("passkey options: {e}")))?;
        let state_json = serde_json::to_string(&auth)
            .map_err(|e| ApiError::internal(format!("passkey state: {e}")))?;
        let challenge_id =
            store.put_challenge(&body.username, ChallengePurpose::SignIn, &state_json, now)?;
        Ok(Json(SignInOptions {
            challenge_id,
            options,
        }))
    })
    .await;
    if matches!(&outcome, Err(e) if matches!(e.code, "invalid_credentials" | "account_locked")) {
        crate::throttle::record(
            &state.store,
            addr.as_deref(),
            &username,
            crate::throttle::Outcome::Failed,
            now,
        )
        .await;
    }
    outcome.map_err(IntoResponse::into_response)
}

/// A passkey's answer to a sign-in challenge, in a sign-in body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAnswer {
    pub challenge_id: String,
    /// `navigator.credentials.get(…)`'s result, binary fields base64url.
    #[schema(value_type = Object)]
    pub credential: PublicKeyCredential,
}

/// Checks a sign-in's passkey answer against its challenge (taken, so
/// it cannot be answered twice): the passkey that answered and its new
/// counter, or why it is refused.
pub fn check_answer(
    state: &AppState,
    rp: &Webauthn,
    username: &str,
    answer: &PasskeyAnswer,
    now: i64,
) -> Result<Result<PasskeyUse, String>, StoreError> {
    let store = &state.store;
    let Some(auth) = store
        .take_challenge(
            answer
                .challenge_id
                .get(..64)
                .unwrap_or(&answer.challenge_id),
            username,
            ChallengePurpose::SignIn,
            now,
        )?
        .and_then(|s| serde_json::from_str::<PasskeyAuthentication>(&s).ok())
    else {
        return Ok(Err(
            "the challenge was already answered, expired, or is not this person's".into(),
        ));
    };
    let result = match rp.finish_passkey_authentication(&answer.credential, &auth) {
        Ok(r) => r,
        Err(e) => return Ok(Err(format!("the answer does not verify ({e})"))),
    };
    for (id, mut key) in stored_passkeys(&store.passkeys(username)?) {
        if key.cred_id() == result.cred_id() {
            key.update_credential(&result);
            let credential = serde_json::to_string(&key)
                .map_err(|e| StoreError::Corrupt(format!("passkey: {e}")))?;
            return Ok(Ok(PasskeyUse {
                passkey_id: id,
                credential,
            }));
        }
    }
    Ok(Err("the passkey is not registered to this person".into()))
}

#[cfg(test)]
mod tests {
    use super::parse_public_url;

    #[test]
    fn public_url_takes_only_an_https_host_name() {
        assert_eq!(
            parse_public_url("https://alpr.agency.gov").map(|u| u.to_string()),
            Ok("https://alpr.agency.gov/".to_string())
        );
        assert!(parse_public_url("https://alpr.agency.gov:8443/").is_ok());
        assert!(parse_public_url("http://localhost:8080").is_ok());
        for (bad, says) in [
            ("http://alpr.agency.gov", "https://"),
            ("ftp://alpr.agency.gov", "https://"),
            ("https://10.0.0.5", "IP address"),
            ("https://[::1]", "IP address"),
            ("https://alpr.agency.gov/platekeeper", "only scheme"),
            ("https://alpr.agency.gov/?x=1", "only scheme"),
            ("https://u:p@alpr.agency.gov", "only scheme"),
            ("alpr.agency.gov", "not an address"),
            ("", "not an address"),
        ] {
            let err = parse_public_url(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
