//! Download links (SPEC R6.3): a person asks for a link to one package,
//! and the browser fetches it by plain navigation, so a file of gigabytes
//! streams to disk instead of being held in the tab's memory (a fetch with
//! an `Authorization` header must read the whole body into a blob first).
//!
//! A link is a capability, so it is made as weak as it can be: random
//! (256 bits), good once, for two minutes, only from the address that
//! asked for it and only while the session that asked for it lives.
//! Nothing leaves when the link is made: fetching it runs the export
//! then, with every check and log entry of the direct route, as the
//! person whose session asked for it. Links are kept in the store, so a
//! link made through one node of a cluster is good on any other (issue
//! 26); the row is found by the secret's hash and what it carries is
//! sealed with a key only the secret gives
//! (`platekeeper_store::shared_state`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use platekeeper_core::read::format_time_ms;
use platekeeper_store::credentials::random_bytes;
use platekeeper_store::shared_state::StoredLink;
use platekeeper_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::{ClientAddr, Person, SessionUser};
use crate::json::ApiJson;
use crate::{retention, sharing, ApiError, AppState};

/// How long a link may wait to be fetched. The interface fetches it at
/// once; the margin is for a slow or busy machine.
pub const LINK_LIFETIME_MS: i64 = 120_000;
/// Links one person may hold unfetched at a time (counted by account,
/// not session, so no one fills the table for everyone).
pub const MAX_LINKS_PER_PERSON: usize = 4;
/// Links all sessions may hold unfetched at a time.
pub const MAX_LINKS: usize = 256;
const PREFIX: &str = "pkl_";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/download-links", post(create_link))
        .route(
            "/api/v1/download-links/{link}",
            get(fetch_link).head(no_head),
        )
}

/// A HEAD (a download manager's or a proxy's probe) would spend the link
/// and run the export for nothing; only GET fetches it.
async fn no_head() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "a download link is fetched with GET, once",
    )
}

/// What a link downloads.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LinkTarget {
    /// A hold's evidence package, as `POST /api/v1/evidence` (with the
    /// same optional `purpose`).
    Evidence {
        hold_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purpose: Option<crate::search::PurposeBody>,
    },
    /// An approved sharing request's package, as
    /// `GET /api/v1/sharing/requests/{id}/export`.
    SharingExport { request_id: i64 },
    /// A search's results as CSV (at most 10,000 reads, newest first):
    /// the body of `POST /api/v1/search`, purpose included (its `limit`
    /// and `cursor` are ignored). Logged as an export access and tracked
    /// as a download with a destroy-by date.
    SearchExport {
        #[schema(value_type = Object)]
        search: serde_json::Value,
    },
}

#[derive(Serialize, ToSchema)]
pub struct NewLink {
    /// Fetch this, without an `Authorization` header, before `expires_at`.
    pub url: String,
    pub expires_at: String,
}

/// What a link carries, sealed in its row.
#[derive(Serialize, Deserialize)]
struct Carried {
    /// The bearer token of the session that asked for it.
    session: String,
    target: LinkTarget,
}

/// A link being fetched.
struct Link {
    session: String,
    /// The address that asked for it: only that address may fetch it, so
    /// the fetch is logged with the requester's own address, and a link
    /// copied out of a log or a proxy elsewhere is worth nothing.
    client: Option<String>,
    target: LinkTarget,
}

/// A new link to `target` for `username`'s `session`, and when it
/// expires. Blocks: call it off the async threads.
fn issue(
    store: &Store,
    session: &str,
    client: Option<String>,
    username: &str,
    target: LinkTarget,
    now_ms: i64,
) -> Result<(String, i64), ApiError> {
    let secret = format!("{PREFIX}{}", hex::encode(random_bytes::<32>()?));
    let expires_ms = now_ms + LINK_LIFETIME_MS;
    let payload = serde_json::to_vec(&Carried {
        session: session.to_string(),
        target,
    })
    .map_err(|e| ApiError::internal(format!("download link: {e}")))?;
    let link = StoredLink {
        username: username.to_string(),
        client,
        payload,
    };
    match store.put_link(
        &secret,
        &link,
        expires_ms,
        now_ms,
        MAX_LINKS_PER_PERSON,
        MAX_LINKS,
    )? {
        Ok(()) => Ok((secret, expires_ms)),
        Err(full) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_links",
            format!(
                "{} of your download links are waiting to be fetched \
                 (at most {MAX_LINKS_PER_PERSON}, {MAX_LINKS} for everyone); fetch them \
                 or wait two minutes for them to expire",
                full.held
            ),
        )),
    }
}

/// Takes the link `secret` names, if it is unexpired: a link is good
/// once, whether or not its download then succeeds. Blocks.
fn redeem(store: &Store, secret: &str, now_ms: i64) -> Result<Option<Link>, ApiError> {
    let Some(stored) = store.take_link(secret, now_ms)? else {
        return Ok(None);
    };
    let carried: Carried = serde_json::from_slice(&stored.payload)
        .map_err(|e| ApiError::internal(format!("download link: {e}")))?;
    Ok(Some(Link {
        session: carried.session,
        client: stored.client,
        target: carried.target,
    }))
}

/// Make a download link: one fetch, within two minutes, while this
/// session lives, with no `Authorization` header (so a browser can save
/// the file as it arrives). The checks of the export are made now, so a
/// refusal comes back here, and again when the link is fetched, which is
/// when the export is logged.
#[utoipa::path(post, path = "/api/v1/download-links", request_body = LinkTarget,
    responses((status = 201, body = NewLink), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 429, body = crate::error::ErrorBody)),
    tag = "retention")]
pub async fn create_link(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: SessionUser,
    ApiJson(target): ApiJson<LinkTarget>,
) -> Result<(StatusCode, Json<NewLink>), ApiError> {
    let token = session.token.clone();
    // The bare address the fetch must come from (`session.client` also
    // names the device, which the fetch checks on its own).
    let who = Person::of_session(&state, session)?;
    match &target {
        LinkTarget::Evidence { hold_id, purpose } => {
            retention::may_export_evidence(&state, &who, *hold_id, purpose.clone()).await?
        }
        LinkTarget::SharingExport { request_id } => {
            sharing::may_export_sharing(&state, &who, *request_id)
                .await
                .map(|_| ())?
        }
        LinkTarget::SearchExport { search } => {
            crate::search::may_export_search(&state, &who, search).await?;
        }
    }
    let store = state.store.clone();
    let username = who.account.username.clone();
    let now = state.now_ms();
    let (secret, expires_ms) =
        crate::blocking(move || issue(&store, &token, client, &username, target, now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewLink {
            url: format!("/api/v1/download-links/{secret}"),
            expires_at: format_time_ms(expires_ms),
        }),
    ))
}

/// Fetch a download link: the package, exported as the person who made
/// the link (logged and tracked as by the direct route).
#[utoipa::path(get, path = "/api/v1/download-links/{link}", params(("link" = String, Path)),
    responses((status = 200, description = "The zip", content_type = "application/zip"),
              (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    tag = "retention", security(()))]
pub async fn fetch_link(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    device: crate::accountability::DeviceSeen,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let gone = || {
        ApiError::not_found(
            "unknown_link",
            "this download link was used already, has expired or never existed; ask for a new one",
        )
    };
    // Anything else, however long or odd, matches no link's hash.
    let Ok(Path(secret)) = path else {
        return Err(gone());
    };
    let store = state.store.clone();
    let now = state.now_ms();
    let link = crate::blocking(move || redeem(&store, &secret, now))
        .await?
        .filter(|l| l.client == client)
        .ok_or_else(gone)?;
    let session = SessionUser::of_token(&state, link.session, client, device).await?;
    let who = Person::of_session(&state, session)?;
    let mut response = match link.target {
        LinkTarget::Evidence { hold_id, purpose } => {
            retention::evidence_zip(&state, &who, hold_id, purpose).await?
        }
        LinkTarget::SharingExport { request_id } => {
            sharing::sharing_zip(&state, &who, request_id).await?
        }
        LinkTarget::SearchExport { search } => {
            crate::search::search_csv(&state, &who, &search).await?
        }
    };
    // The secret is spent, but it should not travel further either.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_link_is_good_once_and_until_it_expires() {
        let (_d, s) = store();
        let t = LinkTarget::Evidence {
            hold_id: 7,
            purpose: None,
        };
        let (a, exp) = issue(&s, "pks_one", None, "ana", t.clone(), 1_000).unwrap();
        assert_eq!(exp, 1_000 + LINK_LIFETIME_MS);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        let got = redeem(&s, &a, 2_000).unwrap().unwrap();
        assert_eq!((got.session.as_str(), got.target), ("pks_one", t.clone()));
        assert!(redeem(&s, &a, 2_000).unwrap().is_none(), "used once");
        let (b, _) = issue(&s, "pks_one", None, "ana", t.clone(), 1_000).unwrap();
        assert!(redeem(&s, &b, exp).unwrap().is_none(), "expired");
        assert!(redeem(&s, "pkl_00", 1_000).unwrap().is_none());
    }

    #[test]
    fn a_person_holds_few_links_and_expired_ones_make_room() {
        let (_d, s) = store();
        let t = || LinkTarget::SharingExport { request_id: 1 };
        for i in 0..MAX_LINKS_PER_PERSON {
            // However many sessions they open.
            issue(&s, &format!("pks_{i}"), None, "ana", t(), 0).unwrap();
        }
        let err = issue(&s, "pks_9", None, "ana", t(), 0).unwrap_err();
        assert_eq!(err.code, "too_many_links");
        issue(&s, "pks_b", None, "bo", t(), 0).expect("another person has their own");
        issue(&s, "pks_0", None, "ana", t(), LINK_LIFETIME_MS)
            .expect("the first ones have expired");
        for i in 0..MAX_LINKS {
            let _ = issue(&s, "pks_x", None, &format!("u{i}"), t(), LINK_LIFETIME_MS);
        }
        let err = issue(&s, "pks_y", None, "zed", t(), LINK_LIFETIME_MS).unwrap_err();
        assert_eq!(err.code, "too_many_links", "the table has a size");
    }
}
