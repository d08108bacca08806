//! Who is asking, what they may do, and the access that lets them see
//! plate data (SPEC R4, R5).
//!
//! Every request that is not a camera's or public carries a session token.
//! [`Person`] resolves it and applies the account rules on every request
//! (not only at sign-in): deleted → 401, suspended or unused for 12 months
//! → 403, locked → 423, enrolment unfinished → 403. Rights come from the
//! role table in `platekeeper_core::role`; plate data additionally needs
//! current training and approval ([`Person::require_plate_data`]) and a
//! purpose that passes the agency's rules. Only then is an [`Access`]
//! made ([`access`]); the store writes its log entry before any data
//! found under it is released.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use platekeeper_core::account::Denial;
use platekeeper_core::{Purpose, Right};
use platekeeper_store::{Access, AccessKind, AccessRequest, Account, Actor};

use crate::{blocking, ApiError, AppState};

impl From<Denial> for ApiError {
    fn from(d: Denial) -> ApiError {
        ApiError::new(
            StatusCode::from_u16(d.status()).unwrap_or(StatusCode::FORBIDDEN),
            d.code(),
            d.to_string(),
        )
    }
}

/// The bearer token of a request; `missing` says what to send.
pub fn bearer(parts: &Parts, missing: &str) -> Result<String, ApiError> {
    bearer_from_headers(&parts.headers)
        .ok_or_else(|| ApiError::unauthorized("missing_credentials", missing))
}

/// The token of an `Authorization: Bearer` header ("" when another
/// scheme is used: it then matches no session or key).
pub fn bearer_from_headers(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    Some(
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or("")
            .trim()
            .to_string(),
    )
}

fn client_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The client's address, where the server knows it.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_of(parts)))
    }
}

/// The agency device a request came from, or why it is none (issue 24
/// item 3): the client certificate of its TLS connection, or the one a
/// trusted TLS-terminating proxy passed on in `x-client-cert`.
#[derive(Debug, Clone)]
pub enum DeviceSeen {
    Device(Box<platekeeper_store::Device>),
    NotADevice(String),
}

impl DeviceSeen {
    /// What the log records of it, after the client's address.
    fn label(&self) -> Option<String> {
        match self {
            DeviceSeen::Device(d) => Some(format!("device {} ({})", d.id, d.name)),
            DeviceSeen::NotADevice(_) => None,
        }
    }
}

/// The header a trusted proxy passes the client's certificate in: the
/// PEM, URL-escaped (nginx's `$ssl_client_escaped_cert`).
pub const CLIENT_CERT_HEADER: &str = "x-client-cert";

fn device_of(parts: &Parts, state: &AppState) -> DeviceSeen {
    use crate::device_certs::NotADevice;
    let chain = match parts.extensions.get::<crate::net::PeerCertificates>() {
        Some(c) => Some(c.0.to_vec()),
        None => proxied_certificate(parts, state),
    };
    let checked = match chain {
        Some(chain) => state.devices.check(&chain, state.now_ms()),
        None => Err(NotADevice::NoCertificate),
    };
    let fingerprint = match checked {
        Ok(fp) => fp,
        Err(e) => return DeviceSeen::NotADevice(e.to_string()),
    };
    match state.store.device_by_fingerprint(&fingerprint) {
        Ok(Some(d)) if d.revoked_at.is_none() => DeviceSeen::Device(Box::new(d)),
        Ok(Some(d)) => DeviceSeen::NotADevice(format!(
            "device {} ({}) was revoked at {}",
            d.id,
            d.name,
            d.revoked_at.unwrap_or_default()
        )),
        Ok(None) => DeviceSeen::NotADevice(
            "the certificate is the agency's but no registered device holds it".into(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "reading the device list failed");
            DeviceSeen::NotADevice("the device list could not be read".into())
        }
    }
}

/// The certificate in [`CLIENT_CERT_HEADER`], only when the connection
/// comes from a proxy the operator named (anyone else could write it).
fn proxied_certificate(
    parts: &Parts,
    state: &AppState,
) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    // A dual-stack listener sees an IPv4 proxy as ::ffff:a.b.c.d.
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip()
        .to_canonical();
    if !state.devices.trusted_proxies.contains(&peer) {
        return None;
    }
    let raw = parts.headers.get(CLIENT_CERT_HEADER)?.as_bytes();
    if raw.len() > 4 * crate::device_certs::MAX_CERT_BYTES {
        return None;
    }
    let pem = percent_decode(raw)?;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .ok()?;
    (!certs.is_empty()).then_some(certs)
}

fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

impl FromRequestParts<AppState> for DeviceSeen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(device_of(parts, state))
    }
}

/// A live session, whatever the state of enrolment: enough to sign out,
/// change the one-time password and enrol two factors.
pub struct SessionUser {
    pub token: String,
    pub account: Account,
    /// The client's address, and its device when it is one (as logged).
    pub client: Option<String>,
    pub device: DeviceSeen,
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts, "sign in and send Authorization: Bearer <token>")?;
        let device = device_of(parts, state);
        SessionUser::of_token(state, token, client_of(parts), device).await
    }
}

impl SessionUser {
    /// The session `token` names, checked as on every request: live, its
    /// account usable (and its use recorded).
    pub async fn of_token(
        state: &AppState,
        token: String,
        client: Option<String>,
        device: DeviceSeen,
    ) -> Result<SessionUser, ApiError> {
        let store = state.store.clone();
        let now = state.now_ms();
        let policy = store.policy();
        let (account, token) = blocking(move || {
            let invalid = || {
                ApiError::unauthorized(
                    "invalid_session",
                    "the session has ended or never existed; sign in again",
                )
            };
            let Some(session) = store.session(&token, now)? else {
                return Err(match store.replaced_at(&token)? {
                    Some(at_ms) => {
                        let at = platekeeper_core::read::format_time_ms(at_ms);
                        let mut e = ApiError::unauthorized(
                            "signed_in_elsewhere",
                            format!(
                                "you signed in again (on another device or tab) at {at}; one \
                                 session per person, so this one ended then"
                            ),
                        );
                        e.at = Some(at);
                        e
                    }
                    None => invalid(),
                });
            };
            let account = store.account(&session.username)?.ok_or_else(invalid)?;
            suspend_if_inactive(&store, &account, &policy.accounts, now)?;
            account.state().check_usable(&policy.accounts, now)?;
            store.touch(&account, now)?;
            Ok((account, token))
        })
        .await?;
        let client = match (client, device.label()) {
            (Some(addr), Some(d)) => Some(format!("{addr} · {d}")),
            (None, Some(d)) => Some(d),
            (addr, None) => addr,
        };
        Ok(SessionUser {
            token,
            account,
            client,
            device,
        })
    }
}

/// Suspends an account found unused past the policy's limit (the same
/// rule the hourly job applies), so the suspension is on record.
pub fn suspend_if_inactive(
    store: &platekeeper_store::Store,
    account: &Account,
    policy: &platekeeper_core::account::AccountPolicy,
    now: i64,
) -> Result<(), ApiError> {
    if account.state().is_inactive(policy, now)
        && !account.suspended
        && account.deleted_at_ms.is_none()
    {
        store.suspend(
            &account.username,
            "unused for 12 months",
            &Actor::system("inactivity"),
            now,
        )?;
    }
    Ok(())
}

/// A signed-in person who has finished enrolment.
pub struct Person {
    pub account: Account,
    pub client: Option<String>,
    pub affiliation: String,
    pub device: DeviceSeen,
}

impl FromRequestParts<AppState> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let s = SessionUser::from_request_parts(parts, state).await?;
        Person::of_session(state, s)
    }
}

/// "Oakland Police Department — Sergeant": agency and title, as logged.
pub fn affiliation(agency: &str, title: Option<&str>) -> String {
    match title.filter(|t| !t.trim().is_empty()) {
        Some(t) => format!("{agency} — {t}"),
        None => agency.to_string(),
    }
}

impl Person {
    /// The person of a session that has finished enrolment.
    pub fn of_session(state: &AppState, s: SessionUser) -> Result<Person, ApiError> {
        let policy = state.store.policy();
        if !s
            .account
            .state_under(&policy.accounts)
            .next_steps()
            .is_empty()
        {
            return Err(Denial::EnrolmentIncomplete.into());
        }
        Ok(Person {
            affiliation: affiliation(&policy.agency_name, s.account.title.as_deref()),
            account: s.account,
            client: s.client,
            device: s.device,
        })
    }

    /// Refuses unless the role table grants `right`.
    pub fn require(&self, right: Right) -> Result<(), ApiError> {
        if self.account.role.may(right) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "role_forbidden",
                format!("the {} role may not do this", self.account.role.as_str()),
            ))
        }
    }

    /// Refuses unless `right` is granted and the account may reach plate
    /// data now (enrolled, trained, approved).
    pub fn require_plate_data(&self, state: &AppState, right: Right) -> Result<(), ApiError> {
        self.require(right)?;
        let policy = state.store.policy();
        self.account
            .state()
            .check_plate_data(&policy.accounts, state.now_ms())?;
        self.refuse_unless_device(state, policy.devices_required, &format!("{right:?}"))
    }

    /// While `devices_required` is on, refuses (403, logged) a connection
    /// that is not a registered agency device: before plate data, and
    /// before anything that could hand out a device or switch the rule
    /// off (a stolen administrator's login on a personal laptop must not
    /// issue itself a certificate).
    pub fn require_device(&self, state: &AppState, what: &str) -> Result<(), ApiError> {
        self.refuse_unless_device(state, state.store.policy().devices_required, what)
    }

    fn refuse_unless_device(
        &self,
        state: &AppState,
        required: bool,
        what: &str,
    ) -> Result<(), ApiError> {
        if let (true, DeviceSeen::NotADevice(why)) = (required, &self.device) {
            // Refused and on record: a search from a personal laptop is
            // something the audit must show (issue 24 item 3).
            let entry = platekeeper_store::NewEntry {
                ts_ms: state.now_ms(),
                category: "refused",
                kind: "device_not_registered".into(),
                username: self.account.username.clone(),
                affiliation: self.affiliation.clone(),
                role: Some(self.account.role.as_str().into()),
                client: self.client.clone(),
                details: serde_json::json!({"right": what, "why": why}),
                purpose: None,
            };
            if let Err(e) = state.store.log_event(entry) {
                tracing::error!(error = %e, "logging a refused device failed");
            }
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "device_not_registered",
                format!("only on the agency's own devices: {why}"),
            ));
        }
        Ok(())
    }

    /// The actor of administrative changes, for the log.
    pub fn actor(&self) -> Actor {
        Actor {
            username: self.account.username.clone(),
            affiliation: self.affiliation.clone(),
            role: Some(self.account.role.as_str().to_string()),
            client: self.client.clone(),
        }
    }
}

/// Applies the agency's purpose rules (SPEC R4.4).
pub fn check_purpose(state: &AppState, purpose: &Purpose) -> Result<(), ApiError> {
    state.store.policy().purpose.check(purpose).map_err(|e| {
        let mut err = ApiError::unprocessable(e.code(), e.to_string());
        err.detail = Some(e.detail());
        err
    })
}

/// The access `who` is about to make, once every check has passed: the
/// store finds data under it sealed, and releases the data only after
/// writing its one log entry (see `platekeeper_store::access`).
pub fn access(
    who: &Person,
    kind: AccessKind,
    query: serde_json::Value,
    purpose: Purpose,
) -> Access {
    Access::new(AccessRequest {
        username: who.account.username.clone(),
        affiliation: who.affiliation.clone(),
        kind,
        query,
        purpose,
        client: who.client.clone(),
        role: Some(who.account.role.as_str().to_string()),
    })
}
