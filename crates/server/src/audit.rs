//! The audit log for auditors and the administrator (SPEC R4.5, R8.1):
//! the entries, and a verification of the whole chain.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use platekeeper_core::policy::AgencyPolicy;
use platekeeper_core::policy_change::{self, FieldError};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::Right;
use platekeeper_store::{Confirm, LogFilter, PolicyOutcome, StoreError, Verification};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::json::ApiJson;
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/log", get(log))
        .route(
            "/api/v1/audit/verify",
            get(verify).post(crate::checkpoints::prove),
        )
        .route(
            "/api/v1/policy",
            get(get_policy).put(put_policy).patch(patch_policy),
        )
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

/// How a policy body is refused: 422 `invalid_policy`, with `detail`
/// `missing_fields`, `unknown_fields` or `wrong_type` and a message naming
/// each field.
fn field_error(e: FieldError) -> ApiError {
    let detail = match &e {
        FieldError::NotAnObject | FieldError::WrongType(_) => "wrong_type",
        FieldError::Missing(_) => "missing_fields",
        FieldError::Unknown(_) => "unknown_fields",
    };
    let mut err = ApiError::unprocessable("invalid_policy", e.to_string());
    err.detail = Some(detail);
    err
}

/// Takes `confirm_weakening` (the names of the weakened fields the
/// administrator confirms) out of a policy body.
fn confirmations(body: &mut Value) -> Result<Vec<String>, ApiError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| field_error(FieldError::NotAnObject))?;
    let bad = || {
        ApiError::unprocessable(
            "invalid_policy",
            "confirm_weakening must be a list of the weakened fields' names, e.g. [\"retention.reads_days\"]",
        )
    };
    match obj.remove("confirm_weakening") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) if a.len() <= 100 => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) if s.len() <= 100 => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmationRequiredBody {
    pub error: ConfirmationRequired,
}

#[derive(Serialize, ToSchema)]
pub struct ConfirmationRequired {
    /// `confirmation_required`
    pub code: String,
    pub message: String,
    /// Every weakening in the change: `{field, old, new, why}`. Send the
    /// change again with `"confirm_weakening": [field, …]` naming them.
    #[schema(value_type = Vec<Object>)]
    pub weakenings: Vec<platekeeper_core::policy_change::Weakening>,
}

/// Applies a new policy; 409 `confirmation_required` lists weakenings
/// not confirmed.
async fn apply_policy(
    state: &AppState,
    who: &Person,
    change: impl FnOnce(&AgencyPolicy) -> Result<AgencyPolicy, StoreError> + Send + 'static,
    confirmed: Vec<String>,
) -> Result<Response, ApiError> {
    who.require(Right::ManagePolicy)?;
    // The rules (the device rule among them) change only from an agency
    // device once devices are required.
    who.require_device(state, "change_policy")?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let outcome = blocking(move || {
        Ok(store.update_policy(change, Confirm::Fields(&confirmed), &actor, now)?)
    })
    .await?;
    match outcome {
        PolicyOutcome::Applied(c) => Ok(Json(c.policy).into_response()),
        PolicyOutcome::NeedsConfirmation(weakenings) => {
            let missing: Vec<&str> = weakenings.iter().map(|w| w.field.as_str()).collect();
            let all: Vec<&_> = weakenings.iter().collect();
            let body = ConfirmationRequiredBody {
                error: ConfirmationRequired {
                    code: "confirmation_required".into(),
                    message: format!(
                        "this change weakens the agency's rules and was not made: {}. To make it, send it again with \"confirm_weakening\": {}",
                        policy_change::describe(&all),
                        serde_json::to_string(&missing).unwrap_or_default()
                    ),
                    weakenings,
                },
            };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
    }
}

/// Replace the policy settings (administrator). The body is the whole
/// policy as `GET` gives it: a missing field is refused by name (it used
/// to fall back to its default, so `{}` reset every setting), as is an
/// unknown one. A change that weakens a rule (a retention shortened, more
/// sign-in attempts, longer sessions, …: see `WEAKENING_RULES`) is made
/// only if `confirm_weakening` names each weakened field; otherwise 409
/// `confirmation_required` lists them. Logged with each changed field's
/// old and new value.
#[utoipa::path(put, path = "/api/v1/policy", request_body = Object,
    responses((status = 200, body = Object), (status = 409, description = "confirmation_required", body = ConfirmationRequiredBody),
              (status = 422, description = "invalid_policy", body = crate::error::ErrorBody)), tag = "policy")]
pub async fn put_policy(
    State(state): State<AppState>,
    who: Person,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    who.require(Right::ManagePolicy)?;
    let confirmed = confirmations(&mut body)?;
    policy_change::check_fields(&body).map_err(field_error)?;
    let change = move |current: &AgencyPolicy| {
        let mut body = body;
        policy_change::keep_absent(&mut body, current);
        serde_json::from_value::<AgencyPolicy>(body)
            .map_err(|e| StoreError::InvalidPolicy(format!("the policy: {e}")))
    };
    apply_policy(&state, &who, change, confirmed).await
}

/// Change some policy settings (administrator): an RFC 7396 merge patch
/// of the policy (`{"retention": {"reads_days": 90}}`); what it does not
/// name stays as it is. Unknown fields are refused by name; weakenings
/// need `confirm_weakening` as for `PUT`.
#[utoipa::path(patch, path = "/api/v1/policy", request_body = Object,
    responses((status = 200, body = Object), (status = 409, description = "confirmation_required", body = ConfirmationRequiredBody),
              (status = 422, description = "invalid_policy", body = crate::error::ErrorBody)), tag = "policy")]
pub async fn patch_policy(
    State(state): State<AppState>,
    who: Person,
    ApiJson(mut patch): ApiJson<Value>,
) -> Result<Response, ApiError> {
    who.require(Right::ManagePolicy)?;
    let confirmed = confirmations(&mut patch)?;
    policy_change::check_patch(&patch).map_err(field_error)?;
    // Merged into the policy in force when the change is made.
    let change = move |current: &AgencyPolicy| {
        let mut v =
            serde_json::to_value(current).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        policy_change::merge_patch(&mut v, &patch);
        serde_json::from_value(v).map_err(|e| StoreError::InvalidPolicy(format!("the policy: {e}")))
    };
    apply_policy(&state, &who, change, confirmed).await
}
