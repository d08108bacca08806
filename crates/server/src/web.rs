//! The web interface (issue 7): a page and its scripts, compiled into the
//! binary and served from it, so an agency runs one file and no page
//! loads anything from another host.
//!
//! The pages are a thin client over the JSON API. They hold no rules of
//! their own: every refusal a person sees (purpose, role, training,
//! sharing) comes from the same handlers any other client calls, so the
//! interface cannot open a path to plate data that the API does not.
//! The session token lives in `sessionStorage` and goes out in the
//! `Authorization` header, never in a cookie, so a forged cross-site
//! request carries no credentials; a strict Content-Security-Policy (no
//! inline script, no other hosts) guards the token against injected
//! script.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::AppState;

/// One embedded file.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Everything the interface is made of. A file not listed here is not
/// served: there is no directory to walk.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/map.js", JS),
    asset!("js/geocode.js", JS),
    asset!("js/signin.js", JS),
    asset!("js/search.js", JS),
    asset!("js/alerts.js", JS),
    asset!("js/alertwatch.js", JS),
    asset!("js/hotlists.js", JS),
    asset!("js/admin.js", JS),
    asset!("js/devices.js", JS),
    asset!("js/passkeys.js", JS),
    asset!("js/sharing.js", JS),
    asset!("js/records.js", JS),
    asset!("js/audit.js", JS),
    asset!("manifest.webmanifest", "application/manifest+json"),
    asset!("sw.js", JS),
];

/// Total bytes of the interface's own files (the page-weight budget is
/// 300 KB; a test holds it).
pub fn assets_total_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        // The service worker is served from the root so that it may keep
        // the whole shell (its scope is its folder); the manifest beside it.
        .route("/sw.js", get(service_worker))
        .route("/manifest.webmanifest", get(manifest))
        .route("/api/v1/ui/settings", get(settings))
}

/// The Content-Security-Policy of every page: this host only, plus the
/// agency's tile server for map images when one is configured.
fn content_security_policy(tile_origin: Option<&str>, geocoder_origin: Option<&str>) -> String {
    let tiles = tile_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let geocoder = geocoder_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob:{tiles}; connect-src 'self'{geocoder}; media-src 'self' blob:; \
         worker-src 'self'; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

const PAGE: &str = "index.html";

/// Each file's ETag (a SHA-256 prefix of its bytes), computed once: the
/// files are fixed for the life of the binary.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..12])))
            .collect()
    })
}

/// Serves `ASSETS[i]`. `csp` is given for the page only: a policy
/// governs the document, not the scripts and styles it loads.
fn serve_asset(i: usize, csp: Option<String>, headers: &HeaderMap) -> Response {
    let a = &ASSETS[i];
    let tag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.mime)], a.body).into_response()
    };
    let h = resp.headers_mut();
    // Revalidate every time: an upgraded binary's files are seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == PAGE) {
        Some(i) => {
            let map = state.store.policy().map;
            let csp = content_security_policy(map.tile_origin(), map.geocoder_origin());
            serve_asset(i, Some(csp), &headers)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn service_worker(headers: HeaderMap) -> Response {
    root_file("sw.js", &headers)
}

async fn manifest(headers: HeaderMap) -> Response {
    root_file("manifest.webmanifest", &headers)
}

fn root_file(path: &str, headers: &HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(i) => serve_asset(i, None, headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path && a.path != PAGE) {
        Some(i) => serve_asset(i, None, &headers),
        None => crate::ApiError::not_found(
            "not_found",
            format!("no file {path:?} in the web interface"),
        )
        .into_response(),
    }
}

/// What the sign-in page and the map need before anyone signs in.
#[derive(Serialize, ToSchema)]
pub struct UiSettings {
    pub agency_name: String,
    pub map: MapSettings,
    /// What every purpose must say, in the words refusals use.
    pub purpose_rule: &'static str,
    /// What verifying an alert can find, in the menu's order.
    pub dispositions: Vec<DispositionChoice>,
}

#[derive(Serialize, ToSchema)]
pub struct DispositionChoice {
    pub value: &'static str,
    pub label: &'static str,
    /// Whether the API refuses it without a note.
    pub needs_note: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MapSettings {
    pub center_lat: f64,
    pub center_lon: f64,
    pub zoom: u8,
    /// Empty when the agency runs no tile server.
    pub tile_url: String,
    /// Set when the tiles come from a public service outside the agency
    /// (the areas viewed are sent to it).
    pub warning: Option<String>,
    /// The agency's geocoder (`{query}` stands for the address); empty
    /// when none is set, and then no address search is offered.
    pub geocoder_url: String,
    /// Set when the geocoder is a public service outside the agency.
    pub geocoder_warning: Option<String>,
}

/// The agency's name and map settings (public: no plate data).
#[utoipa::path(get, path = "/api/v1/ui/settings", responses((status = 200, body = UiSettings)), tag = "public")]
pub async fn settings(State(state): State<AppState>) -> Json<UiSettings> {
    let p = state.store.policy();
    Json(UiSettings {
        agency_name: p.agency_name.clone(),
        map: MapSettings {
            center_lat: p.map.center_lat,
            center_lon: p.map.center_lon,
            zoom: p.map.zoom,
            tile_url: p.map.served_tile_url().to_string(),
            warning: p.map.tile_warning(),
            geocoder_url: p.map.served_geocoder_url().to_string(),
            geocoder_warning: p.map.geocoder_warning(),
        },
        purpose_rule: platekeeper_core::purpose::PURPOSE_RULE,
        dispositions: platekeeper_core::hotlist::Disposition::ALL
            .iter()
            .map(|d| DispositionChoice {
                value: d.as_str(),
                label: d.label(),
                needs_note: d.needs_note(),
            })
            .collect(),
    })
}
