//! Authorized users, their training and approvals, and sessions (SPEC R4.1,
//! R4.2, R4.6, R5). The rules live in `platekeeper_core::account`; this
//! module keeps the records, and logs every change in the same transaction
//! as the change itself.
//!
//! Credentials never leave this module in readable form: the API gives an
//! administrator a one-time password exactly once, and never a hash or a
//! TOTP secret.

use platekeeper_core::account::{check_username, AccountState, Approval, Training, DAY_MS};
use platekeeper_core::Role;
use rusqlite::params;
use serde::Serialize;
use serde_json::json;

use crate::credentials;
use crate::log::{self, LogEntry, NewEntry};
use crate::sql::{Optional as _, Sql};
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
    locked_until INTEGER,
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

/// Brings an older main database up to date; safe to run on every start.
///
/// * `users.locked_until` (issue 22 finding 7): added where missing.
/// * `users.requalify_after` (finding 6) used to be the start of the UTC
///   day of a role change or reactivation, so training and approval given
///   earlier that day still counted. Where such a day start is stored, the
///   instant of the change is taken back from the log (the last
///   `role_changed` or `account_reactivated` of that user on that day);
///   where the log no longer has it, the day start stays.
pub(crate) fn migrate(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    let has_locked_until: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'locked_until'")?
        .exists(())?;
    if !has_locked_until {
        conn.execute("ALTER TABLE users ADD COLUMN locked_until INTEGER", ())?;
    }
    conn.execute(
        "UPDATE users SET requalify_after = (
             SELECT max(l.ts) FROM log l
             WHERE l.ts >= users.requalify_after AND l.ts < users.requalify_after + ?1
               AND l.kind IN ('role_changed', 'account_reactivated')
               AND json_valid(l.details) AND json_extract(l.details, '$.user') = users.username)
         WHERE requalify_after IS NOT NULL AND requalify_after % ?1 = 0
           AND EXISTS (
             SELECT 1 FROM log l
             WHERE l.ts >= users.requalify_after AND l.ts < users.requalify_after + ?1
               AND l.kind IN ('role_changed', 'account_reactivated')
               AND json_valid(l.details) AND json_extract(l.details, '$.user') = users.username)",
        [DAY_MS],
    )?;
    Ok(())
}

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
    /// When a time-limited lock lifts (administrators always; others
    /// where the policy says so).
    pub locked_until_ms: Option<i64>,
    pub suspended: bool,
    pub must_change_password: bool,
    pub totp_enrolled: bool,
    pub training: Vec<Training>,
    pub approvals: Vec<Approval>,
    pub requalify_after_ms: Option<i64>,
    pub failed_logins: u32,
    /// Passkeys registered and not removed (issue 24 item 4).
    pub passkeys: u32,
}

impl Account {
    /// The account's state under the agency's account rules (whether a
    /// passkey is required depends on them).
    pub fn state_under(&self, policy: &platekeeper_core::account::AccountPolicy) -> AccountState {
        AccountState {
            passkey_required: policy.passkey_required(self.role),
            ..self.state()
        }
    }

    /// The account's state, without the policy's passkey rule (see
    /// [`Account::state_under`]).
    pub fn state(&self) -> AccountState {
        AccountState {
            role: self.role,
            deleted: self.deleted_at_ms.is_some(),
            suspended: self.suspended,
            locked: self.locked,
            locked_until_ms: self.locked_until_ms,
            created_ms: self.created_at_ms,
            last_active_ms: self.last_active_ms,
            must_change_password: self.must_change_password,
            totp_enrolled: self.totp_enrolled,
            training: self.training.clone(),
            approvals: self.approvals.clone(),
            requalify_after_ms: self.requalify_after_ms,
            passkeys: self.passkeys,
            passkey_required: false,
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
    /// Someone who has named themselves but is not (yet) signed in.
    pub fn signing_in(username: &str, client: Option<String>) -> Actor {
        Actor {
            username: username.to_string(),
            affiliation: String::new(),
            role: None,
            client,
        }
    }

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
    /// The password was right and the code too, but the code had already
    /// been used (a second sign-in within the same 30-second window, on
    /// another device): not counted towards lockout (issue 23 item 4).
    /// `next_code_in_s`: when the authenticator shows a new one.
    CodeUsed {
        next_code_in_s: u64,
    },
    /// Password and code right, from someone who must sign in with a
    /// passkey and has one (issue 24 item 4): refused, not counted.
    PasskeyRequired,
    /// Password (and code, where enrolled) right.
    Ok(Box<Account>),
}

/// What [`Store::check_password`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Right,
    /// Wrong password or unknown user (not told apart).
    Wrong,
    /// Locked (before, or by this failure); `until` for a lock that lifts
    /// by itself.
    Locked {
        until: Option<i64>,
    },
}

/// The second factor of a sign-in.
#[derive(Debug, Clone)]
pub enum SecondFactor<'a> {
    /// A TOTP code; `None` if none was given.
    Totp(Option<&'a str>),
    /// A passkey assertion as the server found it: `Ok` with the passkey
    /// and its updated credential, `Err` naming why it was refused.
    Passkey(Result<crate::passkeys::PasskeyUse, String>),
}

const ACCOUNT_COLUMNS: &str =
    "username, name, title, role, created_at, created_by, last_active, deleted_at, \
     locked, suspended, must_change_password, totp_enrolled, requalify_after, failed_logins, locked_until, \
     (SELECT count(*) FROM passkeys p WHERE p.username = users.username AND p.removed_at IS NULL)";

fn account_row(r: &crate::sql::Row) -> rusqlite::Result<Account> {
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
        locked_until_ms: r.get(14)?,
        passkeys: r.get(15)?,
        training: Vec::new(),
        approvals: Vec::new(),
    })
}

fn load_account(conn: &dyn Sql, username: &str) -> Result<Option<Account>, StoreError> {
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
        "SELECT course, completed_at, expires_at, recorded_at FROM training WHERE username = ?1 ORDER BY id",
    )?;
    acc.training = stmt
        .query_map([username], |r| {
            Ok(Training {
                course: r.get(0)?,
                completed_ms: r.get(1)?,
                expires_ms: r.get(2)?,
                recorded_ms: r.get(3)?,
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
pub(crate) fn live(tx: &dyn Sql, username: &str) -> Result<Account, StoreError> {
    load_account(tx, username)?
        .filter(|a| a.deleted_at_ms.is_none())
        .ok_or_else(|| StoreError::UnknownUser(username.to_string()))
}

fn logged(
    tx: &dyn Sql,
    head: log::Head,
    actor: &Actor,
    now: i64,
    kind: &str,
    details: serde_json::Value,
) -> Result<LogEntry, StoreError> {
    log::append(tx, head, actor.entry(now, "admin", kind, details))
}

/// The instant from which training and approval count again after a
/// role change or reactivation: now, or just after the latest record
/// already kept if the clock reads earlier (two requests in the same
/// millisecond, a clock set back). Every record made before the change
/// is then voided, whatever the clock says (issue 22 finding 6).
fn requalify_instant(tx: &dyn Sql, username: &str, now_ms: i64) -> Result<i64, StoreError> {
    let latest: Option<i64> = tx.query_row(
        "SELECT max(t) FROM (
             SELECT max(recorded_at) AS t FROM training WHERE username = ?1
             UNION ALL SELECT max(approved_at) FROM approvals WHERE username = ?1
             UNION ALL SELECT requalify_after FROM users WHERE username = ?1) AS latest",
        [username],
        |r| r.get(0),
    )?;
    Ok(latest.map_or(now_ms, |t| now_ms.max(t + 1)))
}

/// A change that may or may not have happened, and its log entry if it
/// did.
impl<T> crate::group_commit::HasHead for (T, Option<LogEntry>) {
    fn head(&self) -> Option<log::Head> {
        self.1.as_ref().and_then(crate::group_commit::HasHead::head)
    }
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
        let conn = self.reader()?;
        load_account(&conn, username)
    }

    /// Every account, including deleted ones, by username.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.reader()?;
        let names: Vec<String> = conn
            .prepare("SELECT username FROM users ORDER BY username")?
            .query_map((), |r| r.get(0))?
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

    /// Checks a password and TOTP code (see [`Store::sign_in_with`]).
    pub fn sign_in(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
        lockout_attempts: u32,
        client: Option<String>,
        now_ms: i64,
    ) -> Result<SignIn, StoreError> {
        self.sign_in_with(
            username,
            password,
            SecondFactor::Totp(totp),
            lockout_attempts,
            client,
            now_ms,
        )
    }

    /// Checks a password and a second factor: a TOTP code, or a passkey
    /// assertion the server has verified. Every failure is logged and
    /// counted towards the lock, except a right code used twice and a
    /// code from someone who must use a passkey (both logged).
    pub fn sign_in_with(
        &self,
        username: &str,
        password: &str,
        factor: SecondFactor,
        lockout_attempts: u32,
        client: Option<String>,
        now_ms: i64,
    ) -> Result<SignIn, StoreError> {
        let row = {
            let conn = self.reader()?;
            conn.query_row(
                "SELECT password_hash, totp_secret, totp_enrolled, totp_last_step, locked, locked_until, role,
                        (SELECT count(*) FROM passkeys p WHERE p.username = users.username AND p.removed_at IS NULL)
                 FROM users WHERE username = ?1 AND deleted_at IS NULL",
                [username],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, bool>(2)?,
                        r.get::<_, Option<i64>>(3)?, r.get::<_, bool>(4)?, r.get::<_, Option<i64>>(5)?,
                        r.get::<_, String>(6)?, r.get::<_, u32>(7)?)),
            )
            .optional()?
        };
        let actor = Actor::signing_in(username, client);
        let Some((hash, secret, enrolled, last_step, locked, locked_until, role, passkeys)) = row
        else {
            self.refuse_unknown_user(&actor, password, now_ms)?;
            return Ok(SignIn::BadCredentials { locked_now: false });
        };
        if self.refused_for_lock(&actor, locked, locked_until, now_ms)? {
            return Ok(SignIn::Locked);
        }
        let password_ok = credentials::verify_password(password, &hash);
        let totp = match factor {
            SecondFactor::Totp(code) => code,
            SecondFactor::Passkey(result) => {
                return self.passkey_sign_in(
                    username,
                    password_ok,
                    result,
                    lockout_attempts,
                    &actor,
                    now_ms,
                )
            }
        };
        let step = match (&secret, enrolled) {
            (Some(s), true) => totp.and_then(|c| {
                credentials::totp_step_matching(s, c, (now_ms / 1000).max(0) as u64, last_step)
            }),
            _ => Some(-1),
        };
        if password_ok && step.is_none() && enrolled {
            if let (Some(s), Some(c), Some(last)) = (&secret, totp, last_step) {
                if credentials::totp_step_matching(s, c, (now_ms / 1000).max(0) as u64, None)
                    .is_some_and(|used| used <= last)
                {
                    return self.code_used(&actor, now_ms);
                }
            }
        }
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
        // A code, right as it is, from someone who must use a passkey and
        // has one: refused, not counted (the person knows both secrets).
        let role = Role::parse(&role).unwrap_or(Role::Vendor);
        let required = self
            .policy
            .read()
            .map(|p| p.accounts.passkey_required(role))
            .unwrap_or(true);
        if required && passkeys > 0 && step.is_some_and(|s| s >= 0) {
            self.log_event(actor.entry(
                now_ms,
                "auth",
                "sign_in_refused",
                json!({"reason": "passkey required"}),
            ))?;
            return Ok(SignIn::PasskeyRequired);
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
            // Another sign-in claimed this code's step first.
            return Ok(SignIn::CodeUsed {
                next_code_in_s: credentials::seconds_to_next_code(now_ms),
            });
        }
        let account = self
            .account(username)?
            .ok_or_else(|| StoreError::UnknownUser(username.into()))?;
        Ok(SignIn::Ok(Box::new(account)))
    }

    /// An unknown name: answered after a dummy hash, so the time taken
    /// does not tell it apart from a wrong password; logged.
    fn refuse_unknown_user(
        &self,
        actor: &Actor,
        password: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        credentials::dummy_verify(password);
        self.log_event(actor.entry(
            now_ms,
            "auth",
            "sign_in_failed",
            json!({"reason": "unknown user"}),
        ))
        .map(|_| ())
    }

    /// Whether a lock refuses this sign-in (logged); a time-limited lock
    /// that has run out is lifted, and logged, first.
    fn refused_for_lock(
        &self,
        actor: &Actor,
        locked: bool,
        locked_until: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if !locked {
            return Ok(false);
        }
        if locked_until.is_some_and(|until| now_ms >= until) {
            self.lift_expired_lock(&actor.username, now_ms)?;
            return Ok(false);
        }
        self.log_event(actor.entry(
            now_ms,
            "auth",
            "sign_in_refused",
            json!({"reason": "locked"}),
        ))?;
        Ok(true)
    }

    /// Step one of a passkey sign-in: the password alone. A wrong one is
    /// logged and counted towards the lock like any failed sign-in; a
    /// right one is not logged (the sign-in that follows is).
    pub fn check_password(
        &self,
        username: &str,
        password: &str,
        lockout_attempts: u32,
        client: Option<String>,
        now_ms: i64,
    ) -> Result<PasswordCheck, StoreError> {
        let row = {
            let conn = self.reader()?;
            conn.query_row(
                "SELECT password_hash, locked, locked_until FROM users WHERE username = ?1 AND deleted_at IS NULL",
                [username],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<i64>>(2)?)),
            )
            .optional()?
        };
        let actor = Actor::signing_in(username, client);
        let Some((hash, locked, locked_until)) = row else {
            self.refuse_unknown_user(&actor, password, now_ms)?;
            return Ok(PasswordCheck::Wrong);
        };
        if self.refused_for_lock(&actor, locked, locked_until, now_ms)? {
            return Ok(PasswordCheck::Locked {
                until: locked_until,
            });
        }
        if credentials::verify_password(password, &hash) {
            return Ok(PasswordCheck::Right);
        }
        if self.count_failure(username, "wrong password", lockout_attempts, &actor, now_ms)? {
            let until = self.account(username)?.and_then(|a| a.locked_until_ms);
            return Ok(PasswordCheck::Locked { until });
        }
        Ok(PasswordCheck::Wrong)
    }

    /// The passkey half of [`Store::sign_in_with`]: the assertion was
    /// checked by the server against a challenge this store issued once;
    /// here the passkey must still be this person's (not removed
    /// meanwhile), and its signature counter is saved with the sign-in.
    fn passkey_sign_in(
        &self,
        username: &str,
        password_ok: bool,
        result: Result<crate::passkeys::PasskeyUse, String>,
        lockout_attempts: u32,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<SignIn, StoreError> {
        let refused = match (password_ok, result) {
            (true, Ok(used)) => Ok(used),
            (false, _) => Err("wrong password".to_string()),
            (true, Err(why)) => Err(format!("passkey not accepted: {why}")),
        };
        let used = match refused {
            Ok(used) => used,
            Err(reason) => {
                let locked_now =
                    self.count_failure(username, &reason, lockout_attempts, actor, now_ms)?;
                return Ok(SignIn::BadCredentials { locked_now });
            }
        };
        let (claimed, _) = self.with_log(|tx, head| {
            let claimed = tx.execute(
                "UPDATE passkeys SET credential = ?3, last_used_at = ?4
                 WHERE id = ?1 AND username = ?2 AND removed_at IS NULL",
                params![used.passkey_id, username, used.credential, now_ms],
            )? == 1;
            let (kind, details) = if claimed {
                tx.execute(
                    "UPDATE users SET failed_logins = 0 WHERE username = ?1",
                    [username],
                )?;
                (
                    "signed_in",
                    json!({"factor": "passkey", "passkey": used.passkey_id}),
                )
            } else {
                (
                    "sign_in_failed",
                    json!({"reason": "passkey no longer registered", "passkey": used.passkey_id}),
                )
            };
            let e = log::append(tx, head, actor.entry(now_ms, "auth", kind, details))?;
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

    /// A right password with a code already used: logged, not counted.
    fn code_used(&self, actor: &Actor, now_ms: i64) -> Result<SignIn, StoreError> {
        self.log_event(actor.entry(
            now_ms,
            "auth",
            "sign_in_failed",
            json!({"reason": "code already used"}),
        ))?;
        Ok(SignIn::CodeUsed {
            next_code_in_s: credentials::seconds_to_next_code(now_ms),
        })
    }

    /// When the person's newer sign-in ended the session `token` names
    /// (one session per person: a sign-in revokes the others at the
    /// moment it creates its own); `None` if it ended otherwise, or lives.
    pub fn replaced_at(&self, token: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT old.revoked_at FROM sessions old JOIN sessions new
                   ON new.username = old.username AND new.created_at = old.revoked_at
                  AND new.token_hash != old.token_hash
                 WHERE old.token_hash = ?1 LIMIT 1",
            [&credentials::token_hash(token)[..]],
            |r| r.get(0),
        )
        .optional()
    }

    /// Counts a failed proof of identity (a wrong password or code, at
    /// sign-in or when changing the password) and locks the account once
    /// `lockout_attempts` fail in a row: an administrator's for the
    /// policy's `admin_lockout_minutes`, anyone else's for its
    /// `lockout_minutes` (`0`: until unlocked). Returns whether it locked
    /// now.
    pub fn count_failure(
        &self,
        username: &str,
        reason: &str,
        lockout_attempts: u32,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let policy = self.policy().accounts;
        let (lock, _) = self.with_log(|tx, head| {
            let (failures, role): (u32, String) = tx.query_row(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ?1 RETURNING failed_logins, role",
                [username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let lock = failures >= lockout_attempts;
            let mut details = json!({"reason": reason, "consecutive_failures": failures});
            if lock {
                let role = Role::parse(&role).unwrap_or(Role::Vendor);
                let until = policy.lock_duration_ms(role).map(|d| now_ms + d);
                tx.execute(
                    "UPDATE users SET locked = 1, locked_until = ?2 WHERE username = ?1",
                    params![username, until],
                )?;
                details["locked_until_ms"] = json!(until);
            }
            let kind = if lock { "account_locked" } else { "sign_in_failed" };
            let e = log::append(tx, head, actor.entry(now_ms, "auth", kind, details))?;
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
        self.unlogged(|tx| {
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
            )
        })?;
        Ok(token)
    }

    /// The live session a token names, if any.
    pub fn session(&self, token: &str, now_ms: i64) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.reader()?;
        conn.query_row(
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
        .optional()
    }

    pub fn end_session(&self, token: &str, now_ms: i64) -> Result<(), StoreError> {
        self.unlogged(|tx| {
            tx.execute(
                "UPDATE sessions SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
                params![&credentials::token_hash(token)[..], now_ms],
            )
        })?;
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
        self.unlogged(|tx| {
            tx.execute(
                "UPDATE users SET last_active = ?2 WHERE username = ?1",
                params![account.username, now_ms],
            )
        })?;
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
        let conn = self.reader()?;
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
        let actor = Actor::signing_in(username, None);
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
        let actor = Actor::signing_in(username, None);
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
            let after = requalify_instant(tx, username, now_ms)?;
            tx.execute(
                "UPDATE users SET role = ?2, requalify_after = ?3 WHERE username = ?1",
                params![username, role.as_str(), after],
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
                    json!({"user": username, "from": before.role.as_str(), "to": role.as_str(), "requalify_after_ms": after}),
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
            let account = live(tx, username)?;
            // Only a suspended account is reactivated: on any other, the
            // carried-over approval below would undo the re-approval a
            // role change demands (issue 22's sweep).
            if !account.suspended {
                return Err(StoreError::conflict(
                    "not_suspended",
                    format!("{username} is not suspended; there is nothing to reactivate"),
                ));
            }
            let voided_before: i64 = tx.query_row(
                "SELECT coalesce(requalify_after, 0) FROM users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )?;
            let after = requalify_instant(tx, username, now_ms)?;
            tx.execute(
                "UPDATE users SET suspended = 0, last_active = ?2, requalify_after = ?3 WHERE username = ?1",
                params![username, now_ms, after],
            )?;
            // Reactivation voids old training; approvals given before now
            // would be voided too by `requalify_after`, so carry over a
            // current one by re-stating it at the requalification instant,
            // if it was given since the account's last role change.
            tx.execute(
                "INSERT INTO approvals(username, approved_by, approved_at, expires_at)
                 SELECT username, ?2, ?3, max(expires_at) FROM approvals
                 WHERE username = ?1 AND expires_at > ?3 AND approved_at >= ?4 GROUP BY username",
                params![username, actor.username, after, voided_before],
            )?;
            Ok(((), logged(tx, head, actor, now_ms, "account_reactivated", json!({"user": username, "requalify_after_ms": after}))?))
        })?;
        Ok(())
    }

    pub fn unlock(&self, username: &str, actor: &Actor, now_ms: i64) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            live(tx, username)?;
            tx.execute(
                "UPDATE users SET locked = 0, locked_until = NULL, failed_logins = 0 WHERE username = ?1",
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

    /// Lifts a time-limited lock whose time has run out, logging
    /// `account_unlocked` by `system:lockout-expiry` with the time it ran
    /// out. Returns whether it lifted one (a lock already lifted, or one
    /// an administrator must lift, is left alone).
    pub fn lift_expired_lock(&self, username: &str, now_ms: i64) -> Result<bool, StoreError> {
        let actor = Actor::system("lockout-expiry");
        let (lifted, _) = self.with_log(|tx, head| {
            let until: Option<i64> = tx
                .query_row(
                    "SELECT locked_until FROM users
                     WHERE username = ?1 AND locked = 1 AND locked_until IS NOT NULL AND locked_until <= ?2",
                    params![username, now_ms],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(until) = until else {
                return Ok((false, None));
            };
            tx.execute(
                "UPDATE users SET locked = 0, locked_until = NULL, failed_logins = 0 WHERE username = ?1",
                [username],
            )?;
            let e = logged(tx, head, &actor, now_ms, "account_unlocked",
                json!({"user": username, "reason": "the lock's time ran out", "locked_until_ms": until}))?;
            Ok((true, Some(e)))
        })?;
        Ok(lifted)
    }

    /// Lifts every time-limited lock that has run out (the periodic job;
    /// sign-in lifts one as it meets it). Returns whose.
    pub fn lift_expired_locks(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let names: Vec<String> = {
            let conn = self.reader()?;
            let mut stmt = conn.prepare(
                "SELECT username FROM users WHERE locked = 1 AND locked_until IS NOT NULL AND locked_until <= ?1 AND deleted_at IS NULL",
            )?;

            stmt.query_map([now_ms], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut lifted = Vec::new();
        for n in names {
            if self.lift_expired_lock(&n, now_ms)? {
                lifted.push(n);
            }
        }
        Ok(lifted)
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
                 totp_last_step = NULL, locked = 0, locked_until = NULL, failed_logins = 0 WHERE username = ?1",
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
            let conn = self.reader()?;
            let mut stmt = conn.prepare(
                "SELECT username FROM users WHERE deleted_at IS NULL AND suspended = 0 AND COALESCE(last_active, created_at) < ?1",
            )?;

            stmt.query_map([cutoff], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let actor = Actor::system("inactivity");
        for n in &names {
            self.suspend(n, "unused for 12 months", &actor, now_ms)?;
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const T: i64 = 20_000 * DAY + 14 * 3_600_000; // 14:00 UTC

    fn store_with(role: Role) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_user(
                NewUser {
                    username: "jdoe".into(),
                    name: "Jo Doe".into(),
                    role,
                    title: None,
                },
                &Actor::system("t"),
                T - 10 * DAY,
            )
            .unwrap();
        (dir, store)
    }

    #[test]
    fn a_role_change_voids_every_record_kept_before_it_whatever_the_clock() {
        // Issue 22 finding 6: an instant, and after every record already
        // kept even if the clock reads earlier.
        let (_dir, store) = store_with(Role::Officer);
        let a = Actor::system("t");
        store.record_approval("jdoe", T + 300 * DAY, &a, T).unwrap();
        store.change_role("jdoe", Role::Vendor, &a, T - 5).unwrap();
        let acc = store.account("jdoe").unwrap().unwrap();
        assert_eq!(acc.requalify_after_ms, Some(T + 1));
        assert!(!acc.state().approval_current(T + 10));
        store
            .change_role("jdoe", Role::Officer, &a, T + 3_600_000)
            .unwrap();
        assert_eq!(
            store.account("jdoe").unwrap().unwrap().requalify_after_ms,
            Some(T + 3_600_000)
        );
    }

    #[test]
    fn a_stored_day_start_is_replaced_by_the_instant_the_log_recorded() {
        let (_dir, store) = store_with(Role::Officer);
        store
            .change_role("jdoe", Role::Analyst, &Actor::system("t"), T)
            .unwrap();
        // As an older version stored it: the start of the day.
        let conn = store.main().unwrap();
        conn.execute(
            "UPDATE users SET requalify_after = ?1 WHERE username = 'jdoe'",
            [T - T.rem_euclid(DAY)],
        )
        .unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        drop(conn);
        assert_eq!(
            store.account("jdoe").unwrap().unwrap().requalify_after_ms,
            Some(T)
        );
    }

    /// Five wrong passwords for jdoe, a millisecond apart from `T`.
    fn five_wrong_passwords(store: &Store) {
        let a = Actor::system("t");
        for i in 0..5 {
            store
                .count_failure("jdoe", "wrong password", 5, &a, T + i)
                .unwrap();
        }
    }

    #[test]
    fn an_administrators_lock_lifts_at_its_time_and_is_logged() {
        let (_dir, store) = store_with(Role::Administrator);
        five_wrong_passwords(&store);
        let acc = store.account("jdoe").unwrap().unwrap();
        let until = T + 4 + 15 * 60_000;
        assert_eq!((acc.locked, acc.locked_until_ms), (true, Some(until)));
        assert!(!store.lift_expired_lock("jdoe", until - 1).unwrap());
        assert!(store.lift_expired_locks(until - 1).unwrap().is_empty());
        assert_eq!(store.lift_expired_locks(until).unwrap(), ["jdoe"]);
        let acc = store.account("jdoe").unwrap().unwrap();
        assert_eq!(
            (acc.locked, acc.locked_until_ms, acc.failed_logins),
            (false, None, 0)
        );
        let e = &store.log_entries(None, None, 1).unwrap()[0];
        assert_eq!(
            (e.kind.as_str(), e.username.as_str()),
            ("account_unlocked", "system:lockout-expiry")
        );
        assert!(!store.lift_expired_lock("jdoe", until + 1).unwrap(), "once");
        assert!(store.verify_log().unwrap().ok);
    }

    #[test]
    fn other_peoples_locks_wait_for_an_administrator() {
        let (_dir, store) = store_with(Role::Officer);
        five_wrong_passwords(&store);
        let acc = store.account("jdoe").unwrap().unwrap();
        assert_eq!((acc.locked, acc.locked_until_ms), (true, None));
        assert!(store.lift_expired_locks(T + 365 * DAY).unwrap().is_empty());
    }
}
