//! `GET /healthz` and `GET /metrics` (Prometheus text) for operators
//! (SPEC R10.4). Neither carries plate data.
//!
//! `/metrics` is not public (issue 22 finding 10): it names the counts
//! of cameras, reads, alerts and refusals, which tell an outsider how
//! the system is used and whether an attack is working. It answers only
//! with the operator's metrics token, or on a separate listen address
//! the operator keeps private; with neither set it answers 404.
//!
//! `/healthz` reports a full data disk (issue 22 finding 11): ingest then
//! answers 507 `storage_full` before writing, and the health check says
//! `degraded` with 503, so monitoring alerts before reads are lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
}

/// Only `/metrics`, for the separate metrics listener: `state.ops` must
/// say [`MetricsAccess::Open`] or [`MetricsAccess::Token`].
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once).
pub fn register_metrics() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Operators' settings every handler can reach.
#[derive(Clone, Default)]
pub struct Ops {
    pub metrics: MetricsAccess,
    pub storage: Arc<Storage>,
    /// This node's name in the health check, the metrics and the logs
    /// (issue 26: several nodes behind one address).
    pub node: String,
    /// Whether this node held the scheduled-work lease at its last
    /// maintenance run.
    pub leads: Arc<AtomicBool>,
}

/// Who may read `/metrics` on this listener.
#[derive(Clone, Default)]
pub enum MetricsAccess {
    /// Nobody: no token and no metrics listener configured.
    #[default]
    Off,
    /// Served on the separate metrics listener, not on this one.
    Elsewhere,
    /// Anyone who reaches this listener (the separate metrics listener,
    /// on an address the operator keeps private).
    Open,
    /// Whoever sends `Authorization: Bearer <token>`; holds the token's
    /// SHA-256, compared in constant time.
    Token([u8; 32]),
}

/// The shortest metrics token accepted (it is a password).
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;

impl MetricsAccess {
    /// Access by `token`; refused if it is too short to be a secret.
    pub fn token(token: &str) -> Result<MetricsAccess, String> {
        let token = token.trim();
        if token.chars().count() < MIN_METRICS_TOKEN_CHARS {
            return Err(format!(
                "the metrics token is {} characters; use at least {MIN_METRICS_TOKEN_CHARS} random ones",
                token.chars().count()
            ));
        }
        Ok(MetricsAccess::Token(
            Sha256::digest(token.as_bytes()).into(),
        ))
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            MetricsAccess::Open => Ok(()),
            MetricsAccess::Off => Err(ApiError::not_found(
                "metrics_disabled",
                "/metrics is off: start the server with PLATEKEEPER_METRICS_TOKEN (or --metrics-token) or --metrics-listen",
            )),
            MetricsAccess::Elsewhere => Err(ApiError::not_found(
                "metrics_disabled",
                "/metrics is served on the metrics listen address only",
            )),
            MetricsAccess::Token(want) => {
                let sent = crate::accountability::bearer_from_headers(headers).unwrap_or_default();
                let got: [u8; 32] = Sha256::digest(sent.as_bytes()).into();
                // Equal-length digests compared without an early exit, so
                // the time taken says nothing about how much matched.
                let diff = got.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b));
                if diff == 0 && !sent.is_empty() {
                    Ok(())
                } else {
                    Err(ApiError::unauthorized(
                        "invalid_metrics_token",
                        "send the metrics token as Authorization: Bearer <token>",
                    ))
                }
            }
        }
    }
}

/// The data disk's state: free space against the floor below which
/// ingest stops, and whether the last write found the disk full.
#[derive(Debug, Default)]
pub struct Storage {
    /// The data folder (None: free space is not checked).
    dir: Option<PathBuf>,
    min_free_bytes: u64,
    full: AtomicBool,
}

/// One reason the server is degraded.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

impl Storage {
    /// Watches the disk of `dir`; ingest stops while less than
    /// `min_free_bytes` is free there (0: only a write that fails stops it).
    pub fn new(dir: impl Into<PathBuf>, min_free_bytes: u64) -> Storage {
        Storage {
            dir: Some(dir.into()),
            min_free_bytes,
            full: AtomicBool::new(false),
        }
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    /// Bytes free to this process on the data folder's disk.
    pub fn free_bytes(&self) -> Option<u64> {
        free_bytes(self.dir.as_ref()?)
    }

    /// Why new reads cannot be stored now, if they cannot.
    pub fn problem(&self) -> Option<Problem> {
        if let Some(free) = self.free_bytes() {
            if free < self.min_free_bytes {
                return Some(Problem {
                    code: "storage_full".into(),
                    message: format!(
                        "the data disk has {free} bytes free, under the {} bytes kept free; ingest is refused until space is made",
                        self.min_free_bytes
                    ),
                });
            }
        }
        if self.full.load(Ordering::Acquire) {
            return Some(Problem {
                code: "storage_full".into(),
                message: "the last write found the data disk full; ingest is refused until a write succeeds".into(),
            });
        }
        None
    }

    /// 507 `storage_full` while the disk is under the floor: checked
    /// before ingest does any work, so that what space is left goes to
    /// the access log and accounts, which must keep working.
    pub fn refuse_if_low(&self) -> Result<(), ApiError> {
        match self.free_bytes() {
            Some(free) if free < self.min_free_bytes => {
                metrics::counter!("platekeeper_storage_full_total").increment(1);
                Err(ApiError::storage_full(format!(
                    "the server's data disk has {free} bytes free, under the {} it keeps free; nothing was stored: send again later",
                    self.min_free_bytes
                )))
            }
            _ => Ok(()),
        }
    }

    /// Remembers how a write went: a full disk marks storage degraded
    /// until a later write succeeds.
    pub fn note<T>(&self, result: &Result<T, ApiError>) {
        match result {
            Ok(_) => self.full.store(false, Ordering::Release),
            Err(e) if e.code == "storage_full" => {
                metrics::counter!("platekeeper_storage_full_total").increment(1);
                self.full.store(true, Ordering::Release)
            }
            Err(_) => {}
        }
    }
}

#[cfg(unix)]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_: &std::path::Path) -> Option<u64> {
    None
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `log_alarm` when the audit log failed its check at start
    /// and no one has acknowledged it yet (details for the administrator
    /// and auditors at `GET /api/v1/audit/verify`); or `degraded` (with
    /// 503) when something in `problems` stops part of the service.
    pub status: String,
    /// The node that answered (`--node-name`, or the machine's name).
    pub node: String,
    /// Where the main tables are, and whether this node writes there
    /// now (`primary: false` is a standby: degraded).
    #[schema(value_type = Object)]
    pub database: platekeeper_store::postgres::DatabaseState,
    /// Whether this node runs the cluster's scheduled work (purge,
    /// suspensions, hot-list expiry): exactly one node should.
    pub leads_scheduled_work: bool,
    pub log_alarm: bool,
    pub database_bytes: u64,
    pub distinct_plates: usize,
    pub cameras: usize,
    /// Bytes free on the data disk (absent where it cannot be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_free_bytes: Option<u64>,
    pub problems: Vec<Problem>,
}

/// Liveness and a few sizes; 503 if the database cannot be read, or with
/// `status: "degraded"` while the data disk is full.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health), (status = 503, description = "Degraded (a `Health` with its problems) or the database unreadable (an error)", body = Health)), tag = "operations")]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let store = state.store.clone();
    let ok = blocking(move || {
        store.access_count()?;
        Ok(store.database_state()?)
    })
    .await;
    match ok {
        Ok(database) => {
            let mut problems: Vec<Problem> = state.ops.storage.problem().into_iter().collect();
            if !database.primary {
                problems.push(Problem {
                    code: "database_read_only".into(),
                    message: format!(
                        "the database server this node reaches ({}) is a standby and takes no writes; name the primary (or every host, with target_session_attrs=read-write) in --database",
                        database.server.as_deref().unwrap_or("?")
                    ),
                });
            }
            let status = if problems.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let health = Health {
                status: if !problems.is_empty() {
                    "degraded"
                } else if state.store.log_alarm().is_some() {
                    "log_alarm"
                } else {
                    "ok"
                }
                .into(),
                node: state.ops.node.clone(),
                database,
                leads_scheduled_work: state.ops.leads.load(Ordering::Relaxed),
                log_alarm: state.store.log_alarm().is_some(),
                database_bytes: state.store.database_bytes(),
                distinct_plates: state.store.distinct_plates(),
                cameras: state.store.cameras().len(),
                storage_free_bytes: state.ops.storage.free_bytes(),
                problems,
            };
            (status, Json(health)).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"node": state.ops.node, "error": {"code": "database_unavailable", "message": e.message}}),
            ),
        )
            .into_response(),
    }
}

/// Prometheus metrics, for the holder of the metrics token (or on the
/// metrics listener).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 401, description = "Missing or wrong metrics token", body = crate::error::ErrorBody),
    (status = 404, description = "Metrics are off, or served on the metrics listener only", body = crate::error::ErrorBody),
), tag = "operations")]
pub async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = state.ops.metrics.check(&headers) {
        return e.into_response();
    }
    metrics::gauge!("platekeeper_distinct_plates").set(state.store.distinct_plates() as f64);
    metrics::gauge!("platekeeper_database_bytes").set(state.store.database_bytes() as f64);
    metrics::gauge!("platekeeper_cameras").set(state.store.cameras().len() as f64);
    metrics::gauge!("platekeeper_hotlist_entries").set(state.store.hot_entry_count() as f64);
    metrics::gauge!("platekeeper_alert_streams").set(state.alerts.connected() as f64);
    // Which node this is, for a dashboard that joins the nodes' series.
    metrics::gauge!("platekeeper_node_info", "node" => state.ops.node.clone()).set(1.0);
    metrics::gauge!("platekeeper_leads_scheduled_work").set(
        if state.ops.leads.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        },
    );
    // Durable commits of logged changes and the changes they held since
    // start: their ratio is how far group commit shares the disk's sync
    // (issue 28).
    if let Ok(c) = state.store.log_commits() {
        metrics::gauge!("platekeeper_log_commits").set(c.commits as f64);
        metrics::gauge!("platekeeper_log_changes").set(c.changes as f64);
    }
    if let Some(free) = state.ops.storage.free_bytes() {
        metrics::gauge!("platekeeper_storage_free_bytes").set(free as f64);
    }
    let body = register_metrics().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_metrics_token_is_a_secret_of_16_characters_or_more() {
        assert!(MetricsAccess::token("short").is_err());
        let access = MetricsAccess::token("0123456789abcdefXYZ").unwrap();
        assert!(access.check(&bearer("0123456789abcdefXYZ")).is_ok());
        let wrong = access.check(&bearer("0123456789abcdefXYz")).unwrap_err();
        assert_eq!(
            (wrong.status, wrong.code),
            (StatusCode::UNAUTHORIZED, "invalid_metrics_token")
        );
        assert!(access.check(&HeaderMap::new()).is_err());
        let off = MetricsAccess::Off.check(&HeaderMap::new()).unwrap_err();
        assert_eq!(
            (off.status, off.code),
            (StatusCode::NOT_FOUND, "metrics_disabled")
        );
    }

    #[test]
    fn storage_is_degraded_under_the_floor_or_after_a_full_write() {
        let dir = tempfile::tempdir().unwrap();
        let fine = Storage::new(dir.path(), 0);
        assert!(fine.free_bytes().is_some_and(|b| b > 0));
        assert_eq!(fine.problem(), None);
        assert!(fine.refuse_if_low().is_ok());
        fine.note::<()>(&Err(ApiError::storage_full("disk full")));
        assert_eq!(fine.problem().map(|p| p.code), Some("storage_full".into()));
        fine.note(&Ok(()));
        assert_eq!(fine.problem(), None, "a successful write clears it");
        let low = Storage::new(dir.path(), u64::MAX);
        assert_eq!(low.problem().map(|p| p.code), Some("storage_full".into()));
        let e = low.refuse_if_low().unwrap_err();
        assert_eq!(
            (e.status, e.code, e.retry_after_s),
            (StatusCode::INSUFFICIENT_STORAGE, "storage_full", Some(60))
        );
    }
}
