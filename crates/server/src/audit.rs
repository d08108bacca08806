//! The audit log for auditors and the administrator (SPEC R4.5, R8.1):
//! the entries, and a verification of the whole chain.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::Right;
use platekeeper_store::{LogFilter, Verification};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/log", get(log))
        .route(
            "/api/v1/audit/verify",
            get(verify).post(crate::checkpoints::prove),
        )
        .route("/api/v1/policy", get(get_policy).put(put_policy))
        .route("/api/v1/audit/report", get(report))
        .route("/api/v1/audit/reports", get(stored_reports))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ReportParams {
    /// A quarter (`2026Q3`) or a year (`2026`), agency-local time.
    pub period: Option<String>,
    /// `json` (default), `csv` or `html`.
    pub format: Option<String>,
}

/// The periodic audit for a period (SPEC R8.1): accesses per user,
/// purposes that fell short, accesses without current training or
/// approval, after-hours work, unusual volume, hot-list changes, shares,
/// purges and purge compliance, corrections. Generating it is logged and
/// the report kept as an audit document.
#[utoipa::path(get, path = "/api/v1/audit/report", params(ReportParams),
    responses((status = 200, description = "The report (JSON, CSV or HTML)"), (status = 422, body = crate::error::ErrorBody)), tag = "audit")]
pub async fn report(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    who.require(Right::ProduceAuditReports)?;
    let p = crate::search::query_param(params)?;
    let policy = state.store.policy();
    let period = p.period.as_deref().ok_or_else(|| {
        ApiError::unprocessable("invalid_period", "period is required, e.g. 2026Q3 or 2026")
    })?;
    let period = platekeeper_core::audit_report::Period::parse(period, &policy.audit)
        .map_err(|m| ApiError::unprocessable("invalid_period", m))?;
    let format = p.format.unwrap_or_else(|| "json".into());
    if !["json", "csv", "html"].contains(&format.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_format",
            format!("format {format:?} must be json, csv or html"),
        ));
    }
    let store = state.store.clone();
    let actor = who.actor();
    let now = state.now_ms();
    let (id, report) = blocking(move || Ok(store.audit_report(period, &actor, now)?)).await?;
    let name = format!("alpr-audit-{}", report.period.label);
    let with = |ct: &'static str, ext: &str, body: String| {
        (
            [
                (axum::http::header::CONTENT_TYPE, ct.to_string()),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{name}.{ext}\""),
                ),
                (
                    axum::http::HeaderName::from_static("x-report-id"),
                    id.to_string(),
                ),
            ],
            body,
        )
            .into_response()
    };
    Ok(match format.as_str() {
        "csv" => with("text/csv; charset=utf-8", "csv", report.to_csv()),
        "html" => with(
            "text/html; charset=utf-8",
            "html",
            report.to_html(&policy.agency_name),
        ),
        _ => {
            let mut v =
                serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
            v["report_id"] = serde_json::json!(id);
            Json(v).into_response()
        }
    })
}

/// Reports generated so far (kept for the audit-document retention).
#[utoipa::path(get, path = "/api/v1/audit/reports", responses((status = 200, body = Object)), tag = "audit")]
pub async fn stored_reports(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<serde_json::Value>, ApiError> {
    who.require(Right::ProduceAuditReports)?;
    let store = state.store.clone();
    let reports = blocking(move || Ok(store.stored_reports()?)).await?;
    Ok(Json(serde_json::json!({ "reports": reports })))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct LogParams {
    /// Only this person's entries.
    pub username: Option<String>,
    /// Only this category (`access`, `auth`, `admin`, `alert`, `refused`, …).
    pub category: Option<String>,
    /// Only this kind (`search`, `signed_in`, `evidence_export`, …).
    pub kind: Option<String>,
    /// Only entries whose purpose names this case number.
    pub case_number: Option<String>,
    /// From this time (RFC 3339, inclusive).
    pub from: Option<String>,
    /// To this time (RFC 3339, exclusive).
    pub to: Option<String>,
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryView {
    pub seq: i64,
    pub ts: String,
    /// access, auth, admin, system
    pub category: String,
    pub kind: String,
    pub username: String,
    pub affiliation: String,
    pub role: Option<String>,
    pub client: Option<String>,
    /// The data elements queried, or the change made.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[schema(value_type = Object)]
    pub purpose: Option<serde_json::Value>,
    pub hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct LogPage {
    pub entries: Vec<LogEntryView>,
    pub next_cursor: Option<i64>,
}

/// Log entries, newest first: who, when, what was queried, why, results,
/// and each entry's hash.
#[utoipa::path(get, path = "/api/v1/audit/log", params(LogParams), responses((status = 200, body = LogPage)), tag = "audit")]
pub async fn log(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<LogParams>, QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let p = crate::search::query_param(params)?;
    let limit = crate::search::page_limit(p.limit)?;
    let store = state.store.clone();
    let text = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.len() > 200 => Err(ApiError::unprocessable(
                "invalid_filter",
                format!("{name} is longer than 200 characters"),
            )),
            s => Ok(s),
        }
    };
    let filter = LogFilter {
        from_ms: crate::search::time_field("from", &p.from)?,
        to_ms: crate::search::time_field("to", &p.to)?,
        username: text("username", p.username)?,
        category: text("category", p.category)?,
        kind: text("kind", p.kind)?,
        case_number: text("case_number", p.case_number)?,
    };
    let cursor = p.cursor;
    let entries = blocking(move || Ok(store.log_entries_matching(&filter, cursor, limit)?)).await?;
    let next_cursor = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let parse =
        |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::String(s.to_string()));
    Ok(Json(LogPage {
        entries: entries
            .iter()
            .map(|e| LogEntryView {
                seq: e.seq,
                ts: format_time_ms(e.ts_ms),
                category: e.category.clone(),
                kind: e.kind.clone(),
                username: e.username.clone(),
                affiliation: e.affiliation.clone(),
                role: e.role.clone(),
                client: e.client.clone(),
                details: parse(&e.details),
                purpose: e.purpose.as_deref().map(parse),
                hash: e.hash_hex(),
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResult {
    /// The chain is intact and the server is not alarmed.
    pub ok: bool,
    pub entries: i64,
    pub head: String,
    pub first_bad: Option<i64>,
    pub problem: Option<String>,
    /// Set when the server started with a log that failed its check
    /// against the last checkpoint, until acknowledged (`POST
    /// /api/v1/audit/checkpoint` with `acknowledge_alarm`).
    #[schema(value_type = Object)]
    pub alarm: Option<platekeeper_store::LogAlarm>,
    /// The newest signed checkpoint, to keep elsewhere.
    #[schema(value_type = Object)]
    pub checkpoint: Option<platekeeper_core::checkpoint::Checkpoint>,
}

impl From<Verification> for VerifyResult {
    fn from(v: Verification) -> VerifyResult {
        VerifyResult {
            ok: v.ok,
            entries: v.entries,
            head: v.head,
            first_bad: v.first_bad,
            problem: v.problem,
            alarm: None,
            checkpoint: None,
        }
    }
}

/// Re-walk the whole hash chain, compare its end with the recorded head
/// and the checkpoints kept with it, and report any alarm raised at start.
#[utoipa::path(get, path = "/api/v1/audit/verify", responses((status = 200, body = VerifyResult)), tag = "audit")]
pub async fn verify(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<VerifyResult>, ApiError> {
    who.require(Right::ReadAuditLog)?;
    let store = state.store.clone();
    let (v, checkpoint) =
        blocking(move || Ok((store.verify_log()?, store.latest_checkpoint()?))).await?;
    let mut r = VerifyResult::from(v);
    r.checkpoint = checkpoint;
    if let Some(a) = state.store.log_alarm() {
        if r.ok {
            r.ok = false;
            r.first_bad = Some(a.entry);
            r.problem = Some(format!(
                "the server started alarmed (entry {}): {}",
                a.entry, a.problem
            ));
        }
        r.alarm = Some(a);
    }
    Ok(Json(r))
}

/// The agency's policy settings.
#[utoipa::path(get, path = "/api/v1/policy", responses((status = 200, body = Object)), tag = "policy")]
pub async fn get_policy(
    State(state): State<AppState>,
    _who: Person,
) -> Json<platekeeper_core::policy::AgencyPolicy> {
    Json(state.store.policy())
}

/// Replace the policy settings (administrator); logged in full.
#[utoipa::path(put, path = "/api/v1/policy", request_body = Object, responses((status = 200, body = Object), (status = 422, body = crate::error::ErrorBody)), tag = "policy")]
pub async fn put_policy(
    State(state): State<AppState>,
    who: Person,
    crate::json::ApiJson(policy): crate::json::ApiJson<platekeeper_core::policy::AgencyPolicy>,
) -> Result<Json<platekeeper_core::policy::AgencyPolicy>, ApiError> {
    who.require(Right::ManagePolicy)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let p = policy.clone();
    blocking(move || Ok(store.set_policy(p, &actor, now)?)).await?;
    Ok(Json(policy))
}
