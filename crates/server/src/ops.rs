//! `GET /healthz` and `GET /metrics` (Prometheus text) for operators
//! (SPEC R10.4). Neither carries plate data.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{blocking, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once).
pub fn register_metrics() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `log_alarm` when the audit log failed its check at start
    /// and no one has acknowledged it yet (details for the administrator
    /// and auditors at `GET /api/v1/audit/verify`).
    pub status: String,
    pub log_alarm: bool,
    pub database_bytes: u64,
    pub distinct_plates: usize,
    pub cameras: usize,
}

/// Liveness and a few sizes; 503 if the database cannot be read.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)), tag = "operations")]
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    let ok = blocking(move || Ok(store.access_count()?)).await;
    match ok {
        Ok(_) => (
            StatusCode::OK,
            Json(
                serde_json::to_value(Health {
                    status: if state.store.log_alarm().is_some() {
                        "log_alarm"
                    } else {
                        "ok"
                    }
                    .into(),
                    log_alarm: state.store.log_alarm().is_some(),
                    database_bytes: state.store.database_bytes(),
                    distinct_plates: state.store.distinct_plates(),
                    cameras: state.store.cameras().len(),
                })
                .unwrap_or_default(),
            ),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"error": {"code": "database_unavailable", "message": e.message}}),
            ),
        ),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")), tag = "operations")]
pub async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("platekeeper_distinct_plates").set(state.store.distinct_plates() as f64);
    metrics::gauge!("platekeeper_database_bytes").set(state.store.database_bytes() as f64);
    metrics::gauge!("platekeeper_cameras").set(state.store.cameras().len() as f64);
    metrics::gauge!("platekeeper_hotlist_entries").set(state.store.hot_entry_count() as f64);
    metrics::gauge!("platekeeper_alert_streams").set(state.alerts.connected() as f64);
    let body = register_metrics().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
