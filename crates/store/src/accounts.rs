//! Authorized users, their training and approvals, and sessions (SPEC R4.1,
//! R4.2, R4.6, R5). The rules live in `platekeeper_core::account`; this
//! module keeps the records, and logs every change in the same transaction
//! as the change itself.
//!
//! Credentials never leave this module in readable form: the API gives an
//! administrator a one-time password exactly once, and never a hash or a
//! TOTP secret.

use platekeeper_core::account::{check_username, AccountState, Approval, Training};
use platekeeper_core::Role;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;
use serde_json::json;

use crate::credentials;
use crate::log::{self, LogEntry, NewEntry};
use crate::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    username TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    totp_secret TEXT,
    totp_enrolled INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0,
    requalify_after INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_active INTEGER,
    deleted_at INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS training(
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    course TEXT NOT NULL,
    completed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS approvals(
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS sessions(
    token_hash BLOB PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(username),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    client TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(username);
";

/// An account as the API shows it (no credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    pub username: String,
    pub name: String,
    pub title: Option<String>,
    pub role: Role,
    pub created_at_ms: i64,
    pub created_by: String,
    pub last_active_ms: Option<i64>,
    pub deleted_at_ms: Option<i64>,
    pub locked: bool,
    pub suspended: bool,
    pub must_change_password: bool,
    pub totp_enrolled: bool,
    pub training: Vec<Training>,
    pub approvals: Vec<Approval>,
    pub requalify_after_ms: Option<i64>,
    pub failed_logins: u32,
}

impl Account {
    pub fn state(&self) -> AccountState {
        AccountState {
            role: self.role,
            deleted: self.deleted_at_ms.is_some(),
            suspended: self.suspended,
            locked: self.locked,
            created_ms: self.created_at_ms,
            last_active_ms: self.last_active_ms,
            must_change_password: self.must_change_password,
            totp_enrolled: self.totp_enrolled,
            training: self.training.clone(),
            approvals: self.approvals.clone(),
            requalify_after_ms: self.requalify_after_ms,
        }
    }
}

/// Who is making an administrative change, for the log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub username: String,
    pub affiliation: String,
    pub role: Option<String>,
    pub client: Option<String>,
}

impl Actor {
    pub fn system(what: &str) -> Actor {
        Actor {
            username: format!("system:{what}"),
            affiliation: "Platekeeper".into(),
            role: None,
            client: None,
        }
    }

    pub(crate) fn entry(
        &self,
        now_ms: i64,
        category: &'static str,
        kind: &str,
        details: serde_json::Value,
    ) -> NewEntry {
        NewEntry {
            ts_ms: now_ms,
            category,
            kind: kind.to_string(),
            username: self.username.clone(),
            affiliation: self.affiliation.clone(),
            role: self.role.clone(),
            client: self.client.clone(),
            details,
            purpose: None,
        }
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub username: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What a sign-in attempt found.
#[derive(Debug, Clone, PartialEq)]
pub enum SignIn {
    /// Unknown user, wrong password or wrong code (not told apart).
    BadCredentials {
        locked_now: bool,
    },
    Locked,
    /// Password (and code, where enrolled) right.
    Ok(Box<Account>),
}

const ACCOUNT_COLUMNS: &str =
    "username, name, title, role, created_at, created_by, last_active, deleted_at, \
     locked, suspended, must_change_password, totp_enrolled, requalify_after, failed_logins";

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let role: String = r.get(3)?;
    Ok(Account {
        username: r.get(0)?,
        name: r.get(1)?,
        title: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Vendor),
        created_at_ms: r.get(4)?,
        created_by: r.get(5)?,
        last_active_ms: r.get(6)?,
        deleted_at_ms: r.get(7)?,
        locked: r.get(8)?,
        suspended: r.get(9)?,
        must_change_password: r.get(10)?,
        totp_enrolled: r.get(11)?,
        requalify_after_ms: r.get(12)?,
        failed_logins: r.get(13)?,
        training: Vec::new(),
        approvals: Vec::new(),
    })
}

fn load_account(
    conn: &rusqlite::Connection,
    username: &str,
) -> Result<Option<Account>, StoreError> {
    let mut acc = match conn
        .query_row(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE username = ?1"),
            [username],
            account_row,
        )
        .optional()?
    {
        Some(a) => a,
        None => return Ok(None),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT course, completed_at, expires_at FROM training WHERE username = ?1 ORDER BY id",
    )?;
    acc.training = stmt
        .query_map([username], |r| {
            Ok(Training {
                course: r.get(0)?,
                completed_ms: r.get(1)?,
                expires_ms: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT approved_by, approved_at, expires_at FROM approvals WHERE username = ?1 ORDER BY id",
    )?;
    acc.approvals = stmt
        .query_map([username], |r| {
            Ok(Approval {
                approved_by: r.get(0)?,
                approved_ms: r.get(1)?,
                expires_ms: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(acc))
}

/// An account that exists and is not deleted, or an error naming it.
fn live(tx: &Transaction<'_>, username: &str) -> Result<Account, StoreError> {
    load_account(tx, username)?
        .filter(|a| a.deleted_at_ms.is_none())
        .ok_or_else(|| StoreError::UnknownUser(username.to_string()))
}

fn logged(
    tx: &Transaction<'_>,
    head: log::Head,
    actor: &Actor,
    now: i64,
    kind: &str,
    details: serde_json::Value,
) -> Result<LogEntry, StoreError> {
    log::append(tx, head, actor.entry(now, "admin", kind, details))
}

/// Training is recorded by day (00:00 UTC); requalification counts from
/// the start of the day it was required, so training taken that same day
/// counts.
fn start_of_day(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// Fields of a new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub role: Role,
    pub title: Option<String>,
}

impl Store {
    /// An account by username (deleted ones included, marked).
    pub fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let conn = self.main_readers.get()?;
        load_account(&conn, username)
    }

    /// Every account, including deleted ones, by username.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.main_readers.get()?;
        let names: Vec<String> = conn
            .prepare("SELECT username FROM users ORDER BY username")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        names
            .iter()
            .filter_map(|n| load_account(&conn, n).transpose())
            .collect()
    }

    /// Creates an account; returns its one-time password, shown once.
    pub fn create_user(
        &self,
        new: NewUser,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        check_username(&new.username).map_err(StoreError::InvalidUser)?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(StoreError::InvalidUser(
                "name must be 1 to 200 characters".into(),
            ));
        }
        let otp = credentials::one_time_password()?;
        let hash = credentials::hash_password(&otp)?;
        self.with_log(|tx, head| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM users WHERE username = ?1", [&new.username], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if exists {
                // Usernames are never reused, even after deletion: the log
                // must always mean one person by one name.
                return Err(StoreError::UserExists(new.username.clone()));
            }
            tx.execute(
                "INSERT INTO users(username, name, title, role, password_hash, must_change_password, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
                params![new.username, name, new.title, new.role.as_str(), hash, now_ms, actor.username],
            )?;
            let e = logged(tx, head, actor, now_ms, "user_created",
                json!({"user": new.username, "name": name, "role": new.role.as_str(), "title": new.title}))?;
            Ok(((), e))
        })?;
        Ok(otp)
    }

    /// Creates the first ALPR Administrator from the command line: already
    /// enrolled in two-factor sign-in (the secret is returned once),
    /// approved by the installation for the approval period, with a
    /// one-time password to change at first sign-in.
    pub fn create_administrator(
        &self,
        new: NewUser,
        approval_days: u32,
        now_ms: i64,
    ) -> Result<(String, String), StoreError> {
        let actor = Actor::system("admin-create");
        let otp = self.create_user(
            NewUser {
                role: Role::Administrator,
                ..new.clone()
            },
            &actor,
            now_ms,
        )?;
        let secret = credentials::new_totp_secret()?;
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE users SET totp_secret = ?2, totp_enrolled = 1 WHERE username = ?1",
                params![new.username, secret],
            )?;
            tx.execute(
                "INSERT INTO approvals(username, approved_by, approved_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![new.username, actor.username, now_ms, now_ms + approval_days as i64 * 86_400_000],
            )?;
            let e = logged(tx, head, &actor, now_ms, "administrator_created",
                json!({"user": new.username, "name": new.name, "title": new.title}))?;
            Ok(((), e))
        })?;
        Ok((otp, secret))
    }

    /// Checks a sign-in. Counts failures and locks the account after
    /// `lockout_attempts` in a row; logs every outcome.
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
        lockout_attempts: u32,
        client: Option<String>,
        now_ms: i64,
    ) -> Result<SignIn, StoreError> {
        let row = {
            let conn = self.main_readers.get()?;
            conn.query_row(
                "SELECT password_hash, totp_secret, totp_enrolled, totp_last_step, locked FROM users WHERE username = ?1 AND deleted_at IS NULL",
                [username],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, bool>(2)?,
                        r.get::<_, Option<i64>>(3)?, r.get::<_, bool>(4)?)),
            )
            .optional()?
        };
        let actor = Actor {
            username: username.to_string(),
            affiliation: String::new(),
            role: None,
            client,
        };
        let Some((hash, secret, enrolled, last_step, locked)) = row else {
            credentials::dummy_verify(password);
            self.log_event(actor.entry(
                now_ms,
                "auth",
                "sign_in_failed",
                json!({"reason": "unknown user"}),
            ))?;
            return Ok(SignIn::BadCredentials { locked_now: false });
        };

        if locked {
            self.log_event(actor.entry(
                now_ms,
                "auth",
                "sign_in_refused",
                json!({"reason": "locked"}),
            ))?;
            return Ok(SignIn::Locked);
        }
        let password_ok = credentials::verify_password(password, &hash);
        let step = match (&secret, enrolled) {
            (Some(s), true) => totp.and_then(|c| {
                credentials::totp_step_matching(s, c, (now_ms / 1000).max(0) as u64, last_step)
            }),
            _ => Some(-1),
        };
        if !password_ok || step.is_none() {
            let reason = if password_ok {
                "wrong or missing code"
            } else {
                "wrong password"
            };
            let locked_now =
                self.count_failure(username, reason, lockout_attempts, &actor, now_ms)?;
            return Ok(SignIn::BadCredentials { locked_now });
        }
        // Claim the code's time step only if no other sign-in used it (or
        // a later one) meanwhile: a code works once, even under a race.
        let (claimed, _) = self.with_log(|tx, head| {
            let claimed = match step.filter(|s| *s >= 0) {
                Some(s) => {
                    tx.execute(
                        "UPDATE users SET failed_logins = 0, totp_last_step = ?2
                         WHERE username = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                        params![username, s],
                    )? == 1
                }
                None => {
                    tx.execute(
                        "UPDATE users SET failed_logins = 0 WHERE username = ?1",
                        [username],
                    )?;
                    true
                }
            };
            let kind = if claimed {
                "signed_in"
            } else {
                "sign_in_failed"
            };
            let e = log::append(tx, head, actor.entry(now_ms, "auth", kind, json!({})))?;
            Ok((claimed, e))
        })?;
        if !claimed {
            return Ok(SignIn::BadCredentials { locked_now: false });
        }
        let account = self
            .account(username)?
            .ok_or_else(|| StoreError::UnknownUser(username.into()))?;
        Ok(SignIn::Ok(Box::new(account)))
    }

    /// Counts a failed proof of identity (a wrong password or code, at
    /// sign-in or when changing the password) and locks the account once
    /// `lockout_attempts` fail in a row. Returns whether it locked now.
    pub fn count_failure(
        &self,
        username: &str,
        reason: &str,
        lockout_attempts: u32,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (lock, _) = self.with_log(|tx, head| {
            let failures: u32 = tx.query_row(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ?1 RETURNING failed_logins",
                [username],
                |r| r.get(0),
            )?;
            let lock = failures >= lockout_attempts;
            if lock {
                tx.execute("UPDATE users SET locked = 1 WHERE username = ?1", [username])?;
            }
            let kind = if lock { "account_locked" } else { "sign_in_failed" };
            let e = log::append(
                tx,
                head,
                actor.entry(now_ms, "auth", kind, json!({"reason": reason, "consecutive_failures": failures})),
            )?;
            Ok((lock, e))
        })?;
        Ok(lock)
    }

    /// Starts a session, ending every other session of the same person
    /// (one live session per person: a shared account would keep logging
    /// its other user out, and the log shows it).
    pub fn create_session(
        &self,
        username: &str,
        expires_at_ms: i64,
        client: Option<String>,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let (token, hash) = credentials::new_session_token()?;
        let mut conn = self.main()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL",
            params![username, now_ms],
        )?;
        tx.execute(
            "INSERT INTO sessions(token_hash, username, created_at, expires_at, client) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&hash[..], username, now_ms, expires_at_ms, client],
        )?;
        tx.execute(
            "UPDATE users SET last_active = ?2 WHERE username = ?1",
            params![username, now_ms],
        )?;
        tx.commit()?;
        Ok(token)
    }

    /// The live session a token names, if any.
    pub fn session(&self, token: &str, now_ms: i64) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.main_readers.get()?;
        Ok(conn
            .query_row(
                "SELECT username, created_at, expires_at FROM sessions
                 WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2",
                params![&credentials::token_hash(token)[..], now_ms],
                |r| {
                    Ok(SessionRecord {
                        username: r.get(0)?,
                        created_at_ms: r.get(1)?,
                        expires_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn end_session(&self, token: &str, now_ms: i64) -> Result<(), StoreError> {
        self.main()?.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
            params![&credentials::token_hash(token)[..], now_ms],
        )?;
        Ok(())
    }

    /// Notes that the person used the system (at most once an hour, so
    /// requests do not each cost a write).
    pub fn touch(&self, account: &Account, now_ms: i64) -> Result<(), StoreError> {
        if account
            .last_active_ms
            .is_some_and(|t| now_ms - t < 3_600_000)
        {
            return Ok(());
        }
        self.main()?.execute(
            "UPDATE users SET last_active = ?2 WHERE username = ?1",
            params![account.username, now_ms],
        )?;
        Ok(())
    }

    /// Sets a new password chosen by its holder.
    pub fn change_password(
        &self,
        username: &str,
        new_password: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let hash = credentials::hash_password(new_password)?;
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET password_hash = ?2, must_change_password = 0 WHERE username = ?1",
                params![username, hash],
            )?;
            Ok((
                (),
                logged(
                    tx,
                    head,
                    actor,
                    now_ms,
                    "password_changed",
                    json!({"user": username}),
                )?,
            ))
        })?;
        Ok(())
    }

    /// Whether `password` is the account's current one.
    pub fn password_matches(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        let conn = self.main_readers.get()?;
        let hash: Option<String> = conn
            .query_row(
                "SELECT password_hash FROM users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()?;
        Ok(hash.is_some_and(|h| credentials::verify_password(password, &h)))
    }

    /// Starts TOTP enrolment: a new secret, not active until confirmed.
    pub fn begin_totp(&self, username: &str, now_ms: i64) -> Result<String, StoreError> {
        let secret = credentials::new_totp_secret()?;
        let actor = Actor {
            username: username.into(),
            affiliation: String::new(),
            role: None,
            client: None,
        };
        self.with_log(|tx, head| {
            let acc = live(tx, username)?;
            if acc.totp_enrolled {
                return Err(StoreError::InvalidUser(
                    "two-factor authentication is already enrolled".into(),
                ));
            }
            tx.execute(
                "UPDATE users SET totp_secret = ?2 WHERE username = ?1",
                params![username, secret],
            )?;
            Ok((
                (),
                log::append(
                    tx,
                    head,
                    actor.entry(now_ms, "auth", "totp_enrolment_started", json!({})),
                )?,
            ))
        })?;
        Ok(secret)
    }

    /// Confirms TOTP enrolment with a code from the new secret.
    pub fn confirm_totp(
        &self,
        username: &str,
        code: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let actor = Actor {
            username: username.into(),
            affiliation: String::new(),
            role: None,
            client: None,
        };
        let (ok, _) = self.with_log(|tx, head| {
            let secret: Option<String> = tx
                .query_row(
                    "SELECT totp_secret FROM users WHERE username = ?1 AND deleted_at IS NULL AND totp_enrolled = 0",
                    [username],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let step = secret.as_deref().and_then(|s| {
                credentials::totp_step_matching(s, code, (now_ms / 1000).max(0) as u64, None)
            });
            if let Some(step) = step {
                tx.execute(
                    "UPDATE users SET totp_enrolled = 1, totp_last_step = ?2 WHERE username = ?1",
                    params![username, step],
                )?;
            }
            let e = log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "auth",
                    if step.is_some() {
                        "totp_enrolled"
                    } else {
                        "totp_confirmation_failed"
                    },
                    json!({}),
                ),
            )?;
            Ok((step.is_some(), e))
        })?;
        Ok(ok)
    }

    /// Records a completed training course.
    pub fn record_training(
        &self,
        username: &str,
        t: Training,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "INSERT INTO training(username, course, completed_at, expires_at, recorded_by, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![username, t.course, t.completed_ms, t.expires_ms, actor.username, now_ms],
            )?;
            Ok(((), logged(tx, head, actor, now_ms, "training_recorded",
                json!({"user": username, "course": t.course, "completed_ms": t.completed_ms, "expires_ms": t.expires_ms}))?))
        })?;
        Ok(())
    }

    /// Records the administrator's approval, valid until `expires_ms`.
    pub fn record_approval(
        &self,
        username: &str,
        expires_ms: i64,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "INSERT INTO approvals(username, approved_by, approved_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![username, actor.username, now_ms, expires_ms],
            )?;
            Ok(((), logged(tx, head, actor, now_ms, "approval_recorded", json!({"user": username, "expires_ms": expires_ms}))?))
        })?;
        Ok(())
    }

    /// Changes a role. Earlier training and approval stop counting: the
    /// person must be re-approved and retrained for the new role (policy
    /// 003 § 429.4). Sessions end.
    pub fn change_role(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            let before = live(tx, username)?;
            tx.execute(
                "UPDATE users SET role = ?2, requalify_after = ?3 WHERE username = ?1",
                params![username, role.as_str(), start_of_day(now_ms)],
            )?;
            tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL",
                params![username, now_ms],
            )?;
            Ok((
                (),
                logged(
                    tx,
                    head,
                    actor,
                    now_ms,
                    "role_changed",
                    json!({"user": username, "from": before.role.as_str(), "to": role.as_str()}),
                )?,
            ))
        })?;
        Ok(())
    }

    /// Suspends an account (sessions end).
    pub fn suspend(
        &self,
        username: &str,
        reason: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET suspended = 1 WHERE username = ?1",
                [username],
            )?;
            tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL",
                params![username, now_ms],
            )?;
            Ok((
                (),
                logged(
                    tx,
                    head,
                    actor,
                    now_ms,
                    "account_suspended",
                    json!({"user": username, "reason": reason}),
                )?,
            ))
        })?;
        Ok(())
    }

    /// Reactivates a suspended account. Training must be taken again
    /// before plate data is reachable (policy 003 § 429.5); the approval
    /// stands if still current.
    pub fn reactivate(&self, username: &str, actor: &Actor, now_ms: i64) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                                "UPDATE users SET suspended = 0, last_active = ?2, requalify_after = ?3 WHERE username = ?1",
                params![username, now_ms, start_of_day(now_ms)],
            )?;
            // Reactivation voids old training; approvals given before now
            // would be voided too by `requalify_after`, so carry over a
            // current one by re-stating it.
            tx.execute(
                "INSERT INTO approvals(username, approved_by, approved_at, expires_at)
                 SELECT username, ?2, ?3, max(expires_at) FROM approvals WHERE username = ?1 AND expires_at > ?3 GROUP BY username",
                params![username, actor.username, now_ms],
            )?;
            Ok(((), logged(tx, head, actor, now_ms, "account_reactivated", json!({"user": username}))?))
        })?;
        Ok(())
    }

    pub fn unlock(&self, username: &str, actor: &Actor, now_ms: i64) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET locked = 0, failed_logins = 0 WHERE username = ?1",
                [username],
            )?;
            Ok((
                (),
                logged(
                    tx,
                    head,
                    actor,
                    now_ms,
                    "account_unlocked",
                    json!({"user": username}),
                )?,
            ))
        })?;
        Ok(())
    }

    /// Forces a new one-time password (and a new TOTP enrolment); every
    /// session ends. Returns the one-time password, shown once.
    pub fn reset_credentials(
        &self,
        username: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let otp = credentials::one_time_password()?;
        let hash = credentials::hash_password(&otp)?;
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET password_hash = ?2, must_change_password = 1, totp_secret = NULL, totp_enrolled = 0,
                 totp_last_step = NULL, locked = 0, failed_logins = 0 WHERE username = ?1",
                params![username, hash],
            )?;
            tx.execute("UPDATE sessions SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL", params![username, now_ms])?;
            Ok(((), logged(tx, head, actor, now_ms, "credentials_reset", json!({"user": username}))?))
        })?;
        Ok(otp)
    }

    /// Deletes an account (its holder left): credentials are erased and
    /// sessions end; the record of who they were, and every log entry,
    /// stay.
    pub fn delete_user(
        &self,
        username: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET deleted_at = ?2, password_hash = '', totp_secret = NULL, totp_enrolled = 0 WHERE username = ?1",
                params![username, now_ms],
            )?;
            tx.execute("UPDATE sessions SET revoked_at = ?2 WHERE username = ?1 AND revoked_at IS NULL", params![username, now_ms])?;
            Ok(((), logged(tx, head, actor, now_ms, "user_deleted", json!({"user": username}))?))
        })?;
        Ok(())
    }

    /// Suspends every account unused for longer than the limit (the daily
    /// job; sign-in checks the same rule). Returns who was suspended.
    pub fn suspend_inactive(
        &self,
        inactivity_days: u32,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let cutoff = now_ms - inactivity_days as i64 * 86_400_000;
        let names: Vec<String> = {
            let conn = self.main_readers.get()?;
            let mut stmt = conn.prepare(
                "SELECT username FROM users WHERE deleted_at IS NULL AND suspended = 0 AND COALESCE(last_active, created_at) < ?1",
            )?;
            let v = stmt
                .query_map([cutoff], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            v
        };
        let actor = Actor::system("inactivity");
        for n in &names {
            self.suspend(n, "unused for 12 months", &actor, now_ms)?;
        }
        Ok(names)
    }
}
