//! Accounts, administered by the ALPR Administrator (SPEC R5; API.md
//! "Accounts"). Every change is logged with who made it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use platekeeper_core::account::{ReviewKind, Training, DAY_MS};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::{Right, Role};
use platekeeper_store::{Account, NewUser};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accountability::Person;
use crate::json::{ApiJson, OptionalJson};
use crate::{blocking, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(create).get(list))
        .route("/api/v1/users/{username}", get(show).delete(delete))
        .route("/api/v1/users/{username}/training", post(training))
        .route("/api/v1/users/{username}/approval", post(approval))
        .route("/api/v1/users/{username}/role", post(role))
        .route("/api/v1/users/{username}/suspend", post(suspend))
        .route("/api/v1/users/{username}/reactivate", post(reactivate))
        .route("/api/v1/users/{username}/unlock", post(unlock))
        .route("/api/v1/users/{username}/reset", post(reset))
        .route("/api/v1/reviews", get(reviews))
}

#[derive(Deserialize, ToSchema)]
pub struct NewUserBody {
    pub username: String,
    pub name: String,
    /// officer, dispatcher, cso, analyst, administrator, auditor, vendor
    pub role: String,
    pub title: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OneTimePassword {
    pub username: String,
    /// Shown once; the person changes it at first sign-in.
    pub one_time_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub name: String,
    pub title: Option<String>,
    pub role: String,
    /// active, enrolling, locked, suspended, deleted
    pub status: String,
    /// Passkeys registered (the administrator can remove them all for a
    /// person who lost theirs: `DELETE /api/v1/users/{username}/passkeys`).
    pub passkeys: u32,
    /// While `locked` by a time-limited lock: when it lifts by itself
    /// (administrators always; others where the policy sets
    /// `accounts.lockout_minutes`). Absent for a lock only an
    /// administrator lifts.
    pub locked_until: Option<String>,
    pub next: Vec<String>,
    pub training_current: bool,
    pub training_expires_on: Option<String>,
    pub approval_current: bool,
    pub approval_expires_on: Option<String>,
    pub last_active: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub deleted_at: Option<String>,
}

fn view(a: &Account, accounts: &platekeeper_core::account::AccountPolicy, now: i64) -> UserView {
    let st = a.state_under(accounts);
    let status = if a.deleted_at_ms.is_some() {
        "deleted"
    } else if a.suspended {
        "suspended"
    } else if st.is_locked(now) {
        "locked"
    } else if !st.next_steps().is_empty() {
        "enrolling"
    } else {
        "active"
    };
    UserView {
        username: a.username.clone(),
        name: a.name.clone(),
        title: a.title.clone(),
        role: a.role.as_str().into(),
        status: status.into(),
        passkeys: a.passkeys,
        locked_until: a
            .locked_until_ms
            .filter(|_| status == "locked")
            .map(format_time_ms),
        next: st.next_steps().into_iter().map(String::from).collect(),
        training_current: st.training_current(now),
        training_expires_on: st.training_end().map(format_time_ms),
        approval_current: st.approval_current(now),
        approval_expires_on: st.approval_end().map(format_time_ms),
        last_active: a.last_active_ms.map(format_time_ms),
        created_at: format_time_ms(a.created_at_ms),
        created_by: a.created_by.clone(),
        deleted_at: a.deleted_at_ms.map(format_time_ms),
    }
}

/// Refuses an administrator `what` their own account, where the rule
/// needs a second person (approval, reactivation, deletion).
fn not_self(who: &Person, username: &str, code: &'static str, what: &str) -> Result<(), ApiError> {
    if username == who.account.username {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code,
            format!("an administrator cannot {what}"),
        ));
    }
    Ok(())
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_role",
            format!("role {s:?} must be one of officer, dispatcher, cso, analyst, administrator, auditor, vendor"),
        )
    })
}

/// `YYYY-MM-DD` → epoch ms at 00:00 UTC.
fn parse_date(field: &'static str, s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_date",
            format!("{field} {s:?} must be a date like 2026-11-22"),
        )
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &fmt).map_err(|_| bad())?;
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Create an account; the answer holds its one-time password, once.
#[utoipa::path(post, path = "/api/v1/users", request_body = NewUserBody,
    responses((status = 201, body = OneTimePassword), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    tag = "accounts")]
pub async fn create(
    State(state): State<AppState>,
    who: Person,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<OneTimePassword>), ApiError> {
    who.require(Right::ManageAccounts)?;
    let new = NewUser {
        username: body.username.trim().to_string(),
        name: body.name,
        role: parse_role(&body.role)?,
        title: body.title.filter(|t| !t.trim().is_empty()),
    };
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let username = new.username.clone();
    let otp = blocking(move || Ok(store.create_user(new, &actor, now)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(OneTimePassword {
            username,
            one_time_password: otp,
        }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (a username).
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewItem {
    pub username: String,
    pub name: String,
    pub role: String,
    /// enrolment_pending, approval_lapsing, approval_lapsed,
    /// training_expiring, training_expired, inactive
    #[schema(value_type = String)]
    pub kind: ReviewKind,
    /// When it falls (or fell) due.
    pub due_at: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewList {
    /// Soonest first.
    pub reviews: Vec<ReviewItem>,
    pub notice_days: i64,
}

/// What the administrator should act on within the notice period:
/// approvals lapsing, training expiring, accounts about to be suspended
/// for inactivity, enrolments not finished (R5.3, R5.4).
#[utoipa::path(get, path = "/api/v1/reviews", responses((status = 200, body = ReviewList)), tag = "accounts")]
pub async fn reviews(
    State(state): State<AppState>,
    who: Person,
) -> Result<Json<ReviewList>, ApiError> {
    who.require(Right::ManageAccounts)?;
    let store = state.store.clone();
    let all = blocking(move || Ok(store.accounts()?)).await?;
    let now = state.now_ms();
    let policy = state.store.policy().accounts;
    let mut due: Vec<(i64, ReviewItem)> = all
        .iter()
        .flat_map(|a| {
            a.state().reviews(&policy, now).into_iter().map(move |r| {
                (
                    r.due_ms,
                    ReviewItem {
                        username: a.username.clone(),
                        name: a.name.clone(),
                        role: a.role.as_str().into(),
                        kind: r.kind,
                        due_at: format_time_ms(r.due_ms),
                        message: r.kind.describe().into(),
                    },
                )
            })
        })
        .collect();
    due.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.username.cmp(&b.1.username)));
    Ok(Json(ReviewList {
        reviews: due.into_iter().map(|(_, r)| r).collect(),
        notice_days: platekeeper_core::account::REVIEW_NOTICE_DAYS,
    }))
}

/// Every account with its status, training and approval dates.
#[utoipa::path(get, path = "/api/v1/users", params(ListParams), responses((status = 200, body = UserList)), tag = "accounts")]
pub async fn list(
    State(state): State<AppState>,
    who: Person,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<UserList>, ApiError> {
    who.require(Right::ManageAccounts)?;
    let params = crate::search::query_param(params)?;
    let limit = crate::search::page_limit(params.limit)?;
    let store = state.store.clone();
    let all = blocking(move || Ok(store.accounts()?)).await?;
    let now = state.now_ms();
    let page: Vec<&Account> = all
        .iter()
        .filter(|a| {
            params
                .cursor
                .as_deref()
                .is_none_or(|c| a.username.as_str() > c)
        })
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].username.clone());
    Ok(Json(UserList {
        users: {
            let accounts = state.store.policy().accounts;
            page.iter()
                .take(limit)
                .map(|a| view(a, &accounts, now))
                .collect()
        },
        next_cursor,
    }))
}

async fn account(state: &AppState, username: &str) -> Result<Account, ApiError> {
    let store = state.store.clone();
    let u = username.to_string();
    blocking(move || {
        store.account(&u)?.ok_or_else(|| {
            ApiError::not_found("unknown_user", format!("user {u:?} does not exist"))
        })
    })
    .await
}

/// One account.
#[utoipa::path(get, path = "/api/v1/users/{username}", responses((status = 200, body = UserView)), tag = "accounts")]
pub async fn show(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    who.require(Right::ManageAccounts)?;
    Ok(Json(view(
        &account(&state, &username).await?,
        &state.store.policy().accounts,
        state.now_ms(),
    )))
}

#[derive(Deserialize, ToSchema)]
pub struct TrainingBody {
    pub course: String,
    /// `YYYY-MM-DD`
    pub completed_on: String,
    /// `YYYY-MM-DD`, the last day the training counts.
    pub expires_on: String,
}

/// Record completed training.
#[utoipa::path(post, path = "/api/v1/users/{username}/training", request_body = TrainingBody, responses((status = 204)), tag = "accounts")]
pub async fn training(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<TrainingBody>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    // Training gates plate data (R5.2): nobody certifies it for
    // themselves while another administrator can (issue 22's sweep). An
    // agency's only administrator must record their own, or could never
    // reach plate data; it is logged as theirs like any other.
    if username == who.account.username {
        let store = state.store.clone();
        let me = username.clone();
        let others: Vec<String> = blocking(move || {
            Ok(store
                .accounts()?
                .into_iter()
                .filter(|a| {
                    a.role == platekeeper_core::Role::Administrator
                        && a.username != me
                        && a.deleted_at_ms.is_none()
                        && !a.suspended
                })
                .map(|a| a.username)
                .collect())
        })
        .await?;
        if !others.is_empty() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "self_certification",
                format!(
                    "an administrator does not record their own training while another can; ask {}",
                    others.join(" or ")
                ),
            ));
        }
    }
    let now = state.now_ms();
    let completed = parse_date("completed_on", &body.completed_on)?;
    let expires = parse_date("expires_on", &body.expires_on)? + DAY_MS - 1;
    let course = body.course.trim().to_string();
    if course.is_empty() || course.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_training",
            "course must be 1 to 200 characters",
        ));
    }
    if completed > now {
        return Err(ApiError::unprocessable(
            "invalid_training",
            "completed_on is in the future",
        ));
    }
    let longest = state.store.policy().accounts.training_days as i64 * DAY_MS;
    if expires <= completed || expires > completed + longest {
        return Err(ApiError::unprocessable(
            "invalid_training",
            format!(
                "expires_on must be after completed_on and at most {} days later (the agency's training period)",
                longest / DAY_MS
            ),
        ));
    }
    let store = state.store.clone();
    let actor = who.actor();
    blocking(move || {
        Ok(store.record_training(
            &username,
            Training {
                course,
                completed_ms: completed,
                expires_ms: expires,
                recorded_ms: now,
            },
            &actor,
            now,
        )?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ApprovalBody {
    /// `YYYY-MM-DD`; default and maximum: the policy's approval period.
    pub expires_on: Option<String>,
}

/// Approve an account for the approval period (renewal is the same call).
#[utoipa::path(post, path = "/api/v1/users/{username}/approval", request_body = ApprovalBody, responses((status = 204)), tag = "accounts")]
pub async fn approval(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
    OptionalJson(body): OptionalJson<ApprovalBody>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    not_self(
        &who,
        &username,
        "self_approval",
        "approve their own account",
    )?;
    let now = state.now_ms();
    let max = now + state.store.policy().accounts.approval_days as i64 * DAY_MS;
    let expires = match body.expires_on {
        Some(d) => {
            let e = parse_date("expires_on", &d)? + DAY_MS - 1;
            if e <= now || e > max {
                return Err(ApiError::unprocessable(
                    "invalid_approval",
                    "expires_on must be in the future and within the approval period",
                ));
            }
            e
        }
        None => max,
    };
    let store = state.store.clone();
    let actor = who.actor();
    blocking(move || Ok(store.record_approval(&username, expires, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    pub role: String,
}

/// Change an account's role; training and approval must then be redone.
#[utoipa::path(post, path = "/api/v1/users/{username}/role", request_body = RoleBody, responses((status = 204)), tag = "accounts")]
pub async fn role(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    let role = parse_role(&body.role)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    blocking(move || Ok(store.change_role(&username, role, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

/// Suspend an account; its sessions end.
#[utoipa::path(post, path = "/api/v1/users/{username}/suspend", request_body = ReasonBody, responses((status = 204)), tag = "accounts")]
pub async fn suspend(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    let reason = body
        .reason
        .unwrap_or_else(|| "suspended by the administrator".into());
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    blocking(move || Ok(store.suspend(&username, &reason, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! simple_action {
    ($name:ident, $path:literal, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, responses((status = 204)), tag = "accounts")]
        pub async fn $name(
            State(state): State<AppState>,
            who: Person,
            Path(username): Path<String>,
        ) -> Result<StatusCode, ApiError> {
            who.require(Right::ManageAccounts)?;
            let store = state.store.clone();
            let now = state.now_ms();
            let actor = who.actor();
            blocking(move || Ok(store.$method(&username, &actor, now)?)).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

/// Reactivate a suspended account; training must be taken again, and only
/// an approval given since its last role change carries over. Not one's
/// own account.
#[utoipa::path(post, path = "/api/v1/users/{username}/reactivate", responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)), tag = "accounts")]
pub async fn reactivate(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    not_self(
        &who,
        &username,
        "self_reactivation",
        "reactivate their own account",
    )?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    blocking(move || Ok(store.reactivate(&username, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

simple_action!(
    unlock,
    "/api/v1/users/{username}/unlock",
    unlock,
    "Unlock an account locked by failed sign-ins (logged as account_unlocked)."
);

/// Force new credentials: a one-time password (shown once) and a new
/// two-factor enrolment; every session ends.
#[utoipa::path(post, path = "/api/v1/users/{username}/reset", responses((status = 200, body = OneTimePassword)), tag = "accounts")]
pub async fn reset(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
) -> Result<Json<OneTimePassword>, ApiError> {
    who.require(Right::ManageAccounts)?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    let u = username.clone();
    let otp = blocking(move || Ok(store.reset_credentials(&u, &actor, now)?)).await?;
    Ok(Json(OneTimePassword {
        username,
        one_time_password: otp,
    }))
}

/// Delete an account (its holder left). Its log entries stay.
#[utoipa::path(delete, path = "/api/v1/users/{username}", responses((status = 204)), tag = "accounts")]
pub async fn delete(
    State(state): State<AppState>,
    who: Person,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Right::ManageAccounts)?;
    not_self(&who, &username, "self_delete", "delete their own account")?;
    let store = state.store.clone();
    let now = state.now_ms();
    let actor = who.actor();
    blocking(move || Ok(store.delete_user(&username, &actor, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
