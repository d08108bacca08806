//! Passkeys (WebAuthn credentials) as a second factor, and the one-time
//! challenges they answer (issue 24 item 4; SPEC R4.2, R11.4).
//!
//! The store keeps each passkey's credential as the server's WebAuthn
//! library serialises it (public key, signature counter, flags) and never
//! interprets it: the server checks assertions; the store keeps who owns
//! which passkey, records every change in the log, and hands out each
//! challenge exactly once. Challenges live in the database, not in one
//! server's memory, so any node of a cluster can finish what another
//! started, and a replayed assertion finds its challenge gone.

use rusqlite::params;
use serde::Serialize;
use serde_json::json;

use crate::accounts::Actor;
use crate::sql::Optional as _;
use crate::{log, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS passkeys(
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    credential_id BLOB NOT NULL UNIQUE,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    removed_at INTEGER,
    removed_by TEXT
);
CREATE INDEX IF NOT EXISTS passkeys_user ON passkeys(username);
CREATE TABLE IF NOT EXISTS webauthn_challenges(
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Most passkeys one person may hold (a phone, a laptop, a spare key or
/// two): a bound on what one account can make the server store.
pub const MAX_PASSKEYS: usize = 10;
/// How long a challenge may be answered.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60_000;
/// Longest passkey name kept.
pub const MAX_NAME_CHARS: usize = 60;

/// What a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    Register,
    SignIn,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::Register => "register",
            ChallengePurpose::SignIn => "sign_in",
        }
    }
}

/// A registered passkey, as its owner and the administrator see it.
#[derive(Debug, Clone, Serialize)]
pub struct Passkey {
    pub id: i64,
    #[serde(skip)]
    pub username: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    /// The WebAuthn library's credential (public key, counter), as it
    /// serialised it.
    #[serde(skip)]
    pub credential: String,
}

/// A passkey that answered a sign-in challenge: its row and its
/// credential with the new signature counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    pub passkey_id: i64,
    pub credential: String,
}

/// The name a person gave a passkey, tidied; an error if none is left.
pub fn clean_name(name: &str) -> Result<String, StoreError> {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(StoreError::InvalidUser(
            "name the passkey (for example \"work laptop\" or \"phone\"), so it can be told apart later".into(),
        ));
    }
    Ok(name)
}

impl Store {
    /// A person's passkeys, oldest first (removed ones left out).
    pub fn passkeys(&self, username: &str) -> Result<Vec<Passkey>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, username, name, created_at, last_used_at, credential FROM passkeys
             WHERE username = ?1 AND removed_at IS NULL ORDER BY id",
        )?;
        crate::sql::collect_rows(&mut stmt, [username], |r| {
            Ok(Passkey {
                id: r.get(0)?,
                username: r.get(1)?,
                name: r.get(2)?,
                created_at_ms: r.get(3)?,
                last_used_at_ms: r.get(4)?,
                credential: r.get(5)?,
            })
        })
    }

    /// Keeps a challenge's state for `username` and returns its id (128
    /// random bits). Expired challenges are cleared on the way.
    pub fn put_challenge(
        &self,
        username: &str,
        purpose: ChallengePurpose,
        state: &str,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| StoreError::Corrupt(format!("no random bytes for a challenge: {e}")))?;
        let id = hex::encode(id);
        self.unlogged(|tx| {
            tx.execute(
                "DELETE FROM webauthn_challenges WHERE expires_at <= ?1",
                [now_ms],
            )?;
            tx.execute(
                "INSERT INTO webauthn_challenges(id, username, purpose, state, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, username, purpose.as_str(), state, now_ms + CHALLENGE_TTL_MS],
            )
        })?;
        Ok(id)
    }

    /// Takes a challenge's state: once only, only for the person and
    /// purpose it was made for, only before it expires. A second take (a
    /// replayed answer) finds nothing.
    pub fn take_challenge(
        &self,
        id: &str,
        username: &str,
        purpose: ChallengePurpose,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, String, String, i64)> = self.unlogged(|tx| {
            tx.query_opt(
                "DELETE FROM webauthn_challenges WHERE id = ?1 RETURNING username, purpose, state, expires_at",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })?;
        Ok(row.and_then(|(user, p, state, expires)| {
            (user == username && p == purpose.as_str() && now_ms < expires).then_some(state)
        }))
    }

    /// Registers a passkey for the actor (logged `passkey_registered`).
    pub fn add_passkey(
        &self,
        actor: &Actor,
        name: &str,
        credential_id: &[u8],
        credential: &str,
        now_ms: i64,
    ) -> Result<Passkey, StoreError> {
        let name = clean_name(name)?;
        let (id, _) = self.with_log(|tx, head| {
            let held: i64 = tx.query_row(
                "SELECT count(*) FROM passkeys WHERE username = ?1 AND removed_at IS NULL",
                [&actor.username],
                |r| r.get(0),
            )?;
            if held as usize >= MAX_PASSKEYS {
                return Err(StoreError::InvalidUser(format!(
                    "you already have {MAX_PASSKEYS} passkeys; remove one you no longer use first"
                )));
            }
            let taken: bool = tx
                .query_row(
                    "SELECT 1 FROM passkeys WHERE credential_id = ?1",
                    [credential_id],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            if taken {
                return Err(StoreError::InvalidUser(
                    "this passkey is already registered".into(),
                ));
            }
            tx.execute(
                "INSERT INTO passkeys(username, name, credential_id, credential, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![actor.username, name, credential_id, credential, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(
                tx,
                head,
                actor.entry(now_ms, "admin", "passkey_registered", json!({"passkey": id, "name": name})),
            )?;
            Ok((id, e))
        })?;
        Ok(Passkey {
            id,
            username: actor.username.clone(),
            name,
            created_at_ms: now_ms,
            last_used_at_ms: None,
            credential: credential.to_string(),
        })
    }

    /// Removes one of the actor's own passkeys (logged
    /// `passkey_removed`). `keep_one`: refuse to remove the last one
    /// (the person's policy requires a passkey).
    pub fn remove_own_passkey(
        &self,
        actor: &Actor,
        id: i64,
        keep_one: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with_log(|tx, head| {
            let held: i64 = tx.query_row(
                "SELECT count(*) FROM passkeys WHERE username = ?1 AND removed_at IS NULL",
                [&actor.username],
                |r| r.get(0),
            )?;
            let name: Option<String> = tx
                .query_row(
                    "SELECT name FROM passkeys WHERE id = ?1 AND username = ?2 AND removed_at IS NULL",
                    params![id, actor.username],
                    |r| r.get(0),
                )
                .optional()?;
            // Another person's passkey is as absent as one that never was.
            let name = name.ok_or_else(|| StoreError::not_found("passkey", id))?;
            if keep_one && held <= 1 {
                return Err(StoreError::Conflict {
                    code: "last_passkey",
                    message: "the agency's policy requires a passkey to sign in: register another before removing this one".into(),
                });
            }
            tx.execute(
                "UPDATE passkeys SET removed_at = ?2, removed_by = ?3 WHERE id = ?1",
                params![id, now_ms, actor.username],
            )?;
            let e = log::append(
                tx,
                head,
                actor.entry(now_ms, "admin", "passkey_removed", json!({"passkey": id, "name": name})),
            )?;
            Ok(((), e))
        })?;
        Ok(())
    }

    /// The administrator's recovery for a person who lost their passkeys:
    /// every passkey of `username` removed, with the reason (logged
    /// `passkeys_reset`). The person then signs in with their code (if
    /// the policy still allows codes, or to register a new passkey).
    pub fn reset_passkeys(
        &self,
        admin: &Actor,
        username: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let reason = crate::sharing::reason(reason, "the person's passkeys are removed")?;
        let (removed, _) = self.with_log(|tx, head| {
            crate::accounts::live(tx, username)?;
            let removed = tx.execute(
                "UPDATE passkeys SET removed_at = ?2, removed_by = ?3 WHERE username = ?1 AND removed_at IS NULL",
                params![username, now_ms, admin.username],
            )?;
            let e = log::append(
                tx,
                head,
                admin.entry(now_ms, "admin", "passkeys_reset", json!({"user": username, "removed": removed, "reason": reason})),
            )?;
            Ok((removed, e))
        })?;
        Ok(removed)
    }
}
