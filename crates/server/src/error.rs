//! The API's error shape: `{"error": {"code": "...", "message": "..."}}`
//! with a fitting status. Codes are stable for programs; messages name the
//! field and the problem for people.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use platekeeper_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A finer reason, where one code covers several (e.g. the purpose
    /// rules: `generic_reason`, `missing_case_number`).
    pub detail: Option<&'static str>,
    /// Seconds after which the client may try again (`Retry-After`).
    pub retry_after_s: Option<u64>,
    /// When the thing the error is about happened (RFC 3339), for the
    /// client to show in the person's own time (e.g. the other sign-in
    /// that ended this session).
    pub at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_plate`.
    pub code: String,
    /// A sentence naming the field and the problem.
    pub message: String,
    /// A finer reason, where one code covers several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When what the error is about happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            retry_after_s: None,
            at: None,
        }
    }

    /// Adds `Retry-After: seconds` to the answer.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    /// 507 `storage_full`: the data disk has no room for the write.
    pub fn storage_full(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", message)
            .retry_after(STORAGE_FULL_RETRY_S)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(%message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to complete the request; it has been logged",
        )
    }
}

/// How long a client is asked to wait when the disk is full: long enough
/// for an operator to be alerted, short enough that reads resume soon
/// after space is made.
pub const STORAGE_FULL_RETRY_S: u64 = 60;
/// How long a client is asked to wait while the database is away (a
/// PostgreSQL fail-over takes seconds).
pub const DATABASE_RETRY_S: u64 = 5;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_storage_full() {
            tracing::error!(error = %e, "the data disk is full");
            return ApiError::storage_full(
                "the server's data disk is full; nothing was stored: send again later",
            );
        }
        match &e {
            // The database is away, restarting or failing over: nothing was
            // stored; a camera sends again after the pause (issue 25).
            StoreError::Postgres(p) if p.is_transient() => {
                tracing::error!(error = %e, "the database cannot be reached");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database cannot be reached; nothing was stored: send again later",
                )
                .retry_after(DATABASE_RETRY_S)
            }
            StoreError::CameraExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "camera_exists", e.to_string())
            }
            StoreError::UnknownCamera(_) => {
                ApiError::unprocessable("unknown_camera", e.to_string())
            }
            StoreError::InvalidCamera(_) => {
                ApiError::unprocessable("invalid_camera", e.to_string())
            }
            StoreError::PatternTooBroad { .. } => {
                ApiError::unprocessable("pattern_too_broad", e.to_string())
            }
            StoreError::QueryTooBroad(_) => {
                ApiError::unprocessable("query_too_broad", e.to_string())
            }
            StoreError::BadCursor(_) => ApiError::bad_request("invalid_cursor", e.to_string()),
            StoreError::UnknownAccess(_) => ApiError::not_found("unknown_access", e.to_string()),
            StoreError::UnknownUser(_) => ApiError::not_found("unknown_user", e.to_string()),
            StoreError::UserExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "user_exists", e.to_string())
            }
            StoreError::InvalidUser(_) => ApiError::unprocessable("invalid_user", e.to_string()),
            StoreError::InvalidPolicy(_) => {
                ApiError::unprocessable("invalid_policy", e.to_string())
            }
            StoreError::InvalidHotList(_) => {
                ApiError::unprocessable("invalid_hotlist", e.to_string())
            }
            StoreError::HotListExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "hotlist_exists", e.to_string())
            }
            StoreError::UnknownHotList(_) => ApiError::not_found("unknown_hotlist", e.to_string()),
            StoreError::UnknownHotEntry(_) => ApiError::not_found("unknown_entry", e.to_string()),
            StoreError::UnknownAlert(_) => ApiError::not_found("unknown_alert", e.to_string()),
            StoreError::AlertState(_) => {
                ApiError::new(StatusCode::CONFLICT, "alert_closed", e.to_string())
            }
            StoreError::InvalidAlert(_) => ApiError::unprocessable("invalid_note", e.to_string()),
            StoreError::NotFound { what, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, not_found_code(what), e.to_string())
            }
            StoreError::Invalid { code, .. } => ApiError::unprocessable(code, e.to_string()),
            StoreError::Gone { code, .. } => ApiError::not_found(code, e.to_string()),
            StoreError::Refused { code, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
            }
            StoreError::Conflict { code, .. } => {
                ApiError::new(StatusCode::CONFLICT, code, e.to_string())
            }
            _ => ApiError::internal(e.to_string()),
        }
    }
}

/// `unknown_<what>` for the nouns the store names.
fn not_found_code(what: &str) -> &'static str {
    match what {
        "hold" => "unknown_hold",
        "read" => "unknown_read",
        "agency" => "unknown_agency",
        "sharing_request" => "unknown_sharing_request",
        "download" => "unknown_download",
        "records_request" => "unknown_records_request",
        "report" => "unknown_report",
        _ => "not_found",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                detail: self.detail.map(str::to_string),
                at: self.at,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real SQLITE_FULL (a database capped by `max_page_count`, filled
    /// until SQLite refuses) and a real ENOSPC: 507 `storage_full` with
    /// `Retry-After`, not a generic 500 (issue 22 finding 11).
    #[test]
    fn a_full_disk_answers_507_storage_full_not_500() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t(x BLOB); PRAGMA max_page_count = 4;")
            .unwrap();
        let full = (0..100)
            .find_map(|_| {
                db.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .err()
            })
            .expect("the capped database filled up");
        let io = StoreError::Io {
            path: "images/2026-11-22/ab/x.jpg".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        for e in [StoreError::from(full), io] {
            let e = ApiError::from(e);
            assert_eq!(
                (e.status, e.code, e.retry_after_s),
                (StatusCode::INSUFFICIENT_STORAGE, "storage_full", Some(60))
            );
            let resp = e.into_response();
            assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "60");
        }
        let other = ApiError::from(StoreError::Corrupt("x".into()));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    /// A database that is away answers 503 with `Retry-After` (a camera
    /// sends again), never a 2xx; a query the database refused is a 500
    /// (issue 25).
    #[test]
    fn a_database_that_is_away_answers_503_with_retry_after() {
        use platekeeper_store::postgres::PgError;
        for p in [
            PgError::Unreachable {
                url: "postgres://pk@db/alpr".into(),
                why: "connection refused".into(),
            },
            PgError::Lost {
                url: "postgres://pk@db/alpr".into(),
                why: "connection closed".into(),
            },
            PgError::Unavailable {
                url: "postgres://pk@db/alpr".into(),
                why: "the database system is starting up".into(),
            },
        ] {
            let e = ApiError::from(StoreError::Postgres(p));
            assert_eq!(
                (e.status, e.code, e.retry_after_s),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    Some(5)
                )
            );
            assert!(!e.message.contains("postgres://"), "{}", e.message);
            let resp = e.into_response();
            assert_eq!(resp.headers()[axum::http::header::RETRY_AFTER], "5");
        }
        let refused = ApiError::from(StoreError::Postgres(PgError::Query("syntax".into())));
        assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
