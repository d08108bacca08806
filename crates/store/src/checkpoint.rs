//! Signed checkpoints of the audit log, and the log's check at open
//! (SPEC R4.5; issue 22 finding 2).
//!
//! The hash chain shows an entry edited, removed or moved, and the head
//! file an entry cut off the end — but someone who can write the
//! database and the data folder can rewrite the whole chain (hashes
//! recomputed) or delete it. What they cannot rewrite is a copy held by
//! someone else. So the server signs the log's head (entries, hash,
//! time) with an Ed25519 key ([`CheckpointKey`]) and publishes it: on the
//! transparency page, in every audit report, and for the auditor to
//! download. A checkpoint kept elsewhere proves later that the log still
//! extends it ([`prove_dir`], `platekeeper audit verify --checkpoint`).
//!
//! Checkpoints are also kept in the database (`checkpoints`) and the
//! newest in `log-checkpoint.json` beside it. At every open the store
//! checks that the log still extends the newest, then walks only the
//! entries after it ([`open_log`]); if it does not, the store refuses to
//! open, or — by the policy's `audit.on_tamper: "alarm"` — opens alarmed:
//! the alarm is logged, reported and blocks new checkpoints until an
//! administrator or auditor acknowledges it.
//!
//! What this cannot do is in docs/SECURITY.md: whoever holds the
//! signing key and the machine can rewrite the log and re-sign it until
//! a checkpoint has been kept somewhere they cannot reach.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use platekeeper_core::checkpoint::{message, Checkpoint, OnTamper};
use platekeeper_core::read::format_time_ms;
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::json;

use crate::accounts::Actor;
use crate::genesis;
use crate::log::{self, Head, Verification, HEAD_FILE};
use crate::retention::load_log_anchor;
use crate::sql::{Optional as _, Sql};
use crate::{Store, StoreError};

/// The signing key's default file, in the data folder. `serve
/// --checkpoint-key FILE` keeps it elsewhere.
pub const KEY_FILE: &str = "checkpoint.key";
/// The newest checkpoint, beside `platekeeper.db`: a file an operator
/// can copy off the machine on a schedule.
pub const CHECKPOINT_FILE: &str = "log-checkpoint.json";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints(
    id INTEGER PRIMARY KEY,
    entries INTEGER NOT NULL,
    head TEXT NOT NULL,
    time TEXT NOT NULL,
    store_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    -- The `log_alarm_acknowledged` entry that set this checkpoint aside:
    -- the log no longer extends it, and that entry records it.
    superseded_by INTEGER
);
CREATE INDEX IF NOT EXISTS checkpoints_entries ON checkpoints(entries);
";

/// The Ed25519 key checkpoints are signed with. Kept in a file of its own
/// (64 hex digits), never in the database: a copy of the database alone
/// cannot sign.
pub struct CheckpointKey {
    key: SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("path", &self.path)
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl CheckpointKey {
    /// The key in `path`; a new one, written there (mode 0600, never over
    /// an existing file), if there is none.
    pub fn load_or_create(path: &Path) -> Result<CheckpointKey, StoreError> {
        match CheckpointKey::load(path)? {
            Some(k) => Ok(k),
            None => CheckpointKey::create(path),
        }
    }

    /// The key in `path`, or `None` if there is no such file.
    pub fn load(path: &Path) -> Result<Option<CheckpointKey>, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                StoreError::CheckpointKey(format!(
                    "{}: not a checkpoint key (one line of 64 hex digits)",
                    path.display()
                ))
            })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "the checkpoint key can be read by other users of this machine; chmod 600 it"
                    );
                }
            }
        }
        Ok(Some(CheckpointKey {
            key: SigningKey::from_bytes(&seed),
            path: path.to_path_buf(),
        }))
    }

    fn create(path: &Path) -> Result<CheckpointKey, StoreError> {
        use std::io::Write;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| StoreError::Corrupt(format!("random: {e}")))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        let mut f = crate::private::new_file()
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| StoreError::io(path, e))?;
        Ok(CheckpointKey {
            key: SigningKey::from_bytes(&seed),
            path: path.to_path_buf(),
        })
    }

    /// The public key, hex: what verifiers compare with their copy.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Signs `head` of store `store_id` at `now_ms`.
    pub fn sign(&self, store_id: &str, head: Head, now_ms: i64) -> Checkpoint {
        let time = format_time_ms(now_ms);
        let head_hex = hex::encode(head.hash);
        let signature = self
            .key
            .sign(&message(store_id, head.seq, &head_hex, &time));
        Checkpoint {
            entries: head.seq,
            head: head_hex,
            time,
            store_id: store_id.to_string(),
            signature: hex::encode(signature.to_bytes()),
            public_key: self.public_key(),
        }
    }
}

/// Checks a checkpoint's signature against the public key it names.
pub fn verify_signature(c: &Checkpoint) -> Result<(), String> {
    let key: [u8; 32] = hex::decode(&c.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("its public_key is not 64 hex digits")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| "its public_key is not an Ed25519 key")?;
    let sig: [u8; 64] = hex::decode(&c.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("its signature is not 128 hex digits")?;
    key.verify_strict(&c.message(), &Signature::from_bytes(&sig))
        .map_err(|_| "its signature does not match its contents and public key".to_string())
}

/// An alarm raised at open: the log did not pass its check and the
/// policy said to start anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogAlarm {
    /// What the check found.
    pub problem: String,
    /// When the store was opened alarmed.
    pub since: String,
    /// The `log_tamper_detected` entry recording it.
    pub entry: i64,
}

/// The outcome of checking the log against a checkpoint kept elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointProof {
    /// The log is intact and extends the checkpoint.
    pub ok: bool,
    pub checkpoint: Checkpoint,
    /// The log's own check (its whole chain).
    pub log: Verification,
    /// The key the store signs its checkpoints with now (its newest),
    /// for comparing with the checkpoint's and a copy kept elsewhere.
    pub store_public_key: Option<String>,
    pub problem: Option<String>,
    /// Something to look at that does not make the proof fail.
    pub note: Option<String>,
}

fn table_exists(conn: &dyn Sql) -> Result<bool, StoreError> {
    if conn.dialect() == crate::sql::Dialect::Postgres {
        // Made by the schema's migrations before anything runs.
        return Ok(true);
    }
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'",
            (),
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

const COLUMNS: &str = "entries, head, time, store_id, public_key, signature";

fn row(r: &impl crate::sql::Get) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        entries: r.col(0)?,
        head: r.col(1)?,
        time: r.col(2)?,
        store_id: r.col(3)?,
        public_key: r.col(4)?,
        signature: r.col(5)?,
    })
}

/// The newest checkpoint kept in the database.
pub(crate) fn latest_stored(conn: &dyn Sql) -> Result<Option<Checkpoint>, StoreError> {
    if !table_exists(conn)? {
        return Ok(None);
    }
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM checkpoints WHERE superseded_by IS NULL
                 ORDER BY entries DESC, id DESC LIMIT 1"
        ),
        (),
        row,
    )
    .optional()
}

/// The checkpoint in `log-checkpoint.json`: `None` without the file,
/// `Some(Err)` naming what is wrong with one that cannot be read.
fn read_file(dir: &Path) -> Option<Result<Checkpoint, String>> {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?;
    Some(
        serde_json::from_str(&text)
            .map_err(|e| format!("{CHECKPOINT_FILE} is not a checkpoint: {e}")),
    )
}

fn write_file(dir: &Path, c: &Checkpoint) -> Result<(), StoreError> {
    let path = dir.join(CHECKPOINT_FILE);
    let tmp = dir.join(format!(".{CHECKPOINT_FILE}.tmp"));
    let body = serde_json::to_vec_pretty(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::private::write(&tmp, &body)?;
    std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))
}

/// How the log stands to a checkpoint.
enum Relation {
    /// Entry `entries` has the checkpoint's hash.
    Extends,
    /// The log ends before the checkpoint's entry.
    Beyond,
    /// Entry `entries` has another hash.
    Differs,
    /// Entry `entries` was purged by retention (the log now starts after
    /// the anchor): the checkpoint can no longer be checked.
    Purged(i64),
}

fn relate(
    conn: &dyn Sql,
    c: &Checkpoint,
    head: Head,
    anchor: Option<Head>,
) -> Result<Relation, StoreError> {
    if c.entries > head.seq {
        return Ok(Relation::Beyond);
    }
    if let Some(a) = anchor {
        if c.entries < a.seq {
            return Ok(Relation::Purged(a.seq));
        }
        if c.entries == a.seq {
            return Ok(if hex::encode(a.hash) == c.head {
                Relation::Extends
            } else {
                Relation::Differs
            });
        }
    }
    Ok(match log::hash_at(conn, c.entries)? {
        Some(h) if hex::encode(h) == c.head => Relation::Extends,
        _ => Relation::Differs,
    })
}

/// What is wrong between the log and one checkpoint, in words; `None` if
/// the log extends it (or it covers only purged entries).
fn check_one(
    conn: &dyn Sql,
    c: &Checkpoint,
    store_id: Option<&str>,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<(i64, String)>, StoreError> {
    let which = format!("the checkpoint of entry {} signed {}", c.entries, c.time);
    if let Err(e) = verify_signature(c) {
        return Ok(Some((
            c.entries,
            format!("{which} is not validly signed: {e}"),
        )));
    }
    if store_id != Some(c.store_id.as_str()) {
        return Ok(Some((
            c.entries,
            format!(
                "{which} is of store {}, but this log is of store {}",
                c.store_id,
                store_id.unwrap_or("(none recorded)")
            ),
        )));
    }
    Ok(match relate(conn, c, head, anchor)? {
        Relation::Extends | Relation::Purged(_) => None,
        Relation::Beyond => Some((
            head.seq + 1,
            format!(
                "the log ends at entry {} but {which} vouches for {} entries: entries were removed",
                head.seq, c.entries
            ),
        )),
        Relation::Differs => Some((
            c.entries,
            format!(
                "entry {} differs from {which}: the log was rewritten at or before entry {}",
                c.entries, c.entries
            ),
        )),
    })
}

/// The check at open of a PostgreSQL store's log against its newest
/// checkpoint kept in the database: validly signed, by `key` when the
/// server's key is known, and still matched by the log ending at `head`.
pub(crate) fn newest_checkpoint_problem(
    conn: &dyn Sql,
    store_id: &str,
    key: Option<&CheckpointKey>,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<String>, StoreError> {
    let Some(c) = latest_stored(conn)? else {
        return Ok(None);
    };
    if let Some((_, p)) = check_one(conn, &c, Some(store_id), head, anchor)? {
        return Ok(Some(p));
    }
    Ok(replaced_key(key, &c))
}

/// The problem when `c` was signed with another key than the server's
/// own (`key`, when known): the signing key was replaced.
fn replaced_key(key: Option<&CheckpointKey>, c: &Checkpoint) -> Option<String> {
    key.filter(|k| k.public_key() != c.public_key).map(|k| {
        format!(
            "the checkpoint of entry {} signed {} was signed with key {}, not with this server's key {} ({}): the key was replaced",
            c.entries,
            c.time,
            c.public_key,
            k.public_key(),
            k.path().display()
        )
    })
}

/// Checks the log that ends at `head` against every checkpoint kept with
/// it (the database's and the file's): part of a full verification.
pub(crate) fn kept_problem(
    conn: &Connection,
    dir: &Path,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<(i64, String)>, StoreError> {
    let mut kept = Vec::new();
    match read_file(dir) {
        Some(Ok(c)) => kept.push(c),
        Some(Err(e)) => return Ok(Some((head.seq, e))),
        None => {}
    }
    stored_problem(conn, kept, head, anchor)
}

/// Checks the log that ends at `head` against `kept` and every checkpoint
/// kept in the database (all a PostgreSQL store has: no file).
pub(crate) fn stored_problem(
    conn: &dyn Sql,
    mut kept: Vec<Checkpoint>,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<(i64, String)>, StoreError> {
    let store_id = crate::genesis::store_id(conn)?;
    if table_exists(conn)? {
        kept.extend(conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM checkpoints WHERE entries > ?1 AND superseded_by IS NULL
                 ORDER BY entries"
            ),
            [anchor.map_or(0, |a| a.seq) - 1],
            |r| Ok(row(r)?),
        )?);
    }
    for c in &kept {
        if let Some(p) = check_one(conn, c, store_id.as_deref(), head, anchor)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// What the store found when it opened its log.
pub(crate) struct LogStart {
    pub head: Head,
    pub store_id: String,
    pub alarm: Option<LogAlarm>,
}

/// Opens the log: writes a new store's genesis entry, marks a log written
/// by an earlier version, refuses an emptied log, and checks the log
/// against its newest checkpoint (refusing, or alarming, by `on_tamper`).
pub(crate) fn open_log(
    conn: &mut Connection,
    dir: &Path,
    key: Option<&CheckpointKey>,
    on_tamper: OnTamper,
    now_ms: i64,
) -> Result<LogStart, StoreError> {
    let anchor = load_log_anchor(conn)?;
    let mut head = log::load_head(conn)?;
    let genesis = genesis::genesis_seq(conn)?;
    let count: i64 = conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0))?;
    if count == 0 {
        let v = log::verify_tail(conn, dir, Head::GENESIS)?;
        let problem = v.problem.filter(|_| !v.ok).or_else(|| {
            read_file(dir).map(|c| match c {
                Ok(c) => format!(
                    "the log is empty but {CHECKPOINT_FILE} holds a checkpoint of entry {} signed {}",
                    c.entries, c.time
                ),
                Err(e) => e,
            })
        });
        if let Some(p) = problem {
            return Err(StoreError::LogMissing(format!(
                "{}: {p}. Platekeeper does not start a new log over data whose log is gone: \
                 restore platekeeper.db and {HEAD_FILE} from a backup",
                dir.display()
            )));
        }
        let store_id = genesis::new_store_id()?;
        let tx = conn.transaction()?;
        let e = genesis::open_log(&tx, head, &store_id, now_ms)?;
        tx.commit()?;
        head = Head {
            seq: e.seq,
            hash: e.hash,
        };
        log::write_head(dir, head)?;
        return Ok(LogStart {
            head,
            store_id,
            alarm: None,
        });
    }
    let problem = match genesis {
        // Written by an earlier version: its whole chain is checked once,
        // before it is marked.
        None => {
            let v = log::verify_conn(conn, dir)?;
            v.problem.filter(|_| !v.ok)
        }
        Some(_) => startup_problem(conn, dir, key, head, anchor)?,
    };
    if let (Some(p), OnTamper::Refuse) = (&problem, on_tamper) {
        return Err(StoreError::LogTampered(format!(
            "{}: the audit log failed its check: {p}. The store was not opened. Investigate (run \
             `platekeeper audit verify --checkpoint FILE` with checkpoints kept elsewhere); to run \
             anyway, alarmed, start the server with `--on-tamper alarm` or set the policy's \
             audit.on_tamper to \"alarm\"",
            dir.display()
        )));
    }
    let before = head;
    let tx = conn.transaction()?;
    let store_id = match genesis::store_id(&tx)? {
        Some(id) => id,
        None => genesis::new_store_id()?,
    };
    if genesis.is_none() {
        let e = genesis::open_log(&tx, head, &store_id, now_ms)?;
        head = Head {
            seq: e.seq,
            hash: e.hash,
        };
    } else if genesis::store_id(&tx)?.is_none() {
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('store_id', ?1)",
            [&store_id],
        )?;
    }
    let alarm = match problem {
        Some(problem) => {
            let e = log::append(
                &tx,
                head,
                Actor::system("log").entry(
                    now_ms,
                    "system",
                    "log_tamper_detected",
                    json!({"problem": problem, "on_tamper": "alarm"}),
                ),
            )?;
            head = Head {
                seq: e.seq,
                hash: e.hash,
            };
            tracing::error!(%problem, "the audit log failed its check; starting alarmed");
            Some(LogAlarm {
                problem,
                since: format_time_ms(now_ms),
                entry: e.seq,
            })
        }
        None => None,
    };
    tx.commit()?;
    if head != before {
        log::write_head(dir, head)?;
    }
    Ok(LogStart {
        head,
        store_id,
        alarm,
    })
}

/// The check at open of a log that has a genesis entry: its newest
/// checkpoint (the database's or the file's) must be validly signed — by
/// `key`, when the server's key is known — and still match the log; then
/// the entries after it are walked, and the log's end compared with the
/// head file. Returns what is wrong, in words.
fn startup_problem(
    conn: &Connection,
    dir: &Path,
    key: Option<&CheckpointKey>,
    head: Head,
    anchor: Option<Head>,
) -> Result<Option<String>, StoreError> {
    let Some(store_id) = genesis::store_id(conn)? else {
        return Ok(Some(
            "the store's id is missing from its settings (meta.store_id): the database was edited"
                .into(),
        ));
    };
    let stored = latest_stored(conn)?;
    let mut newest = Vec::new();
    match read_file(dir) {
        Some(Err(e)) => return Ok(Some(e)),
        Some(Ok(c)) => {
            if stored.as_ref().is_none_or(|s| s.entries < c.entries) {
                return Ok(Some(format!(
                    "{CHECKPOINT_FILE} holds the checkpoint of entry {} signed {}, which the database lacks: checkpoints were removed from it",
                    c.entries, c.time
                )));
            }
            newest.push(c);
        }
        None => {}
    }
    newest.extend(stored);
    let mut from = anchor.unwrap_or(Head::GENESIS);
    for c in &newest {
        if let Some((_, p)) = check_one(conn, c, Some(&store_id), head, anchor)? {
            return Ok(Some(p));
        }
        if let Some(p) = replaced_key(key, c) {
            return Ok(Some(p));
        }
        if c.entries > from.seq {
            if let Some(hash) = hex::decode(&c.head).ok().and_then(|h| h.try_into().ok()) {
                from = Head {
                    seq: c.entries,
                    hash,
                };
            }
        }
    }
    let v = log::verify_tail(conn, dir, from)?;
    Ok(v.problem.filter(|_| !v.ok))
}

/// What to look at when `c` was signed with another key than the one
/// the store signs with now (`store_key`): not a failure of the proof.
fn key_note(store_key: Option<&str>, c: &Checkpoint) -> Option<String> {
    store_key.filter(|k| *k != c.public_key).map(|k| {
        format!(
            "the checkpoint was signed with key {}; this store now signs with key {k}: check which one is the agency's",
            c.public_key
        )
    })
}

/// Checks the log in `conn` against `c`, a checkpoint kept elsewhere.
fn prove_conn(
    conn: &Connection,
    dir: &Path,
    c: &Checkpoint,
) -> Result<CheckpointProof, StoreError> {
    let log = log::verify_conn(conn, dir)?;
    let store_public_key = latest_stored(conn)?.map(|s| s.public_key);
    let note = key_note(store_public_key.as_deref(), c);
    let mut proof = CheckpointProof {
        ok: false,
        checkpoint: c.clone(),
        log: log.clone(),
        store_public_key,
        problem: None,
        note,
    };
    let problem = (|| -> Result<Option<String>, StoreError> {
        if let Err(e) = verify_signature(c) {
            return Ok(Some(format!(
                "the checkpoint is not validly signed: {e} (it was altered, or is not a Platekeeper checkpoint)"
            )));
        }
        match genesis::store_id(conn)? {
            Some(id) if id == c.store_id => {}
            Some(id) => {
                return Ok(Some(format!(
                    "the checkpoint is of store {}, but this log is of store {id}",
                    c.store_id
                )))
            }
            None => {
                return Ok(Some(
                    "this log has no store id (it was written by an earlier version and not opened since), so no checkpoint is of it"
                        .into(),
                ))
            }
        }
        if !log.ok {
            return Ok(Some(format!(
                "the log itself fails its check: {}",
                log.problem.clone().unwrap_or_default()
            )));
        }
        let head = Head {
            seq: log.entries,
            hash: hex::decode(&log.head)
                .ok()
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 32]),
        };
        let anchor = load_log_anchor(conn)?;
        Ok(match relate(conn, c, head, anchor)? {
            Relation::Extends => None,
            Relation::Beyond => Some(format!(
                "the log ends at entry {} but the checkpoint signed {} vouches for {} entries: entries were removed",
                head.seq, c.time, c.entries
            )),
            Relation::Differs => Some(format!(
                "entry {} differs from the checkpoint signed {}: the log was rewritten at or before entry {}",
                c.entries, c.time, c.entries
            )),
            Relation::Purged(a) => Some(format!(
                "entries up to {a} were purged by retention, so entry {} of the checkpoint signed {} can no longer be checked: use a checkpoint of entry {a} or later",
                c.entries, c.time
            )),
        })
    })()?;
    proof.ok = problem.is_none();
    proof.problem = problem;
    Ok(proof)
}

/// Proves, read-only, that the log of a data folder extends `c` (safe
/// while a server runs).
pub fn prove_dir(
    dir: &Path,
    key: Option<&crate::at_rest::DataKey>,
    c: &Checkpoint,
) -> Result<CheckpointProof, StoreError> {
    let conn = crate::at_rest::open_main_read_only(dir, key)?;
    prove_conn(&conn, dir, c)
}

impl Store {
    /// The store's id (in its genesis entry and every checkpoint).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The public key checkpoints are signed with, if this store has the
    /// key (the server does; command-line tools need not).
    pub fn checkpoint_public_key(&self) -> Option<String> {
        self.checkpoint_key.as_ref().map(CheckpointKey::public_key)
    }

    /// The alarm the store was opened with, until acknowledged.
    pub fn log_alarm(&self) -> Option<LogAlarm> {
        self.alarm.read().ok().and_then(|a| a.clone())
    }

    /// The newest checkpoint kept.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        latest_stored(&*self.reader()?)
    }

    /// Signs the log's current head and keeps the checkpoint (in the
    /// database and `log-checkpoint.json`); if the newest checkpoint is of
    /// the current head already, returns it. Refused while alarmed: a
    /// signature would vouch for a log known to have failed its check.
    pub fn checkpoint(&self, now_ms: i64) -> Result<Checkpoint, StoreError> {
        if let Some(a) = self.log_alarm() {
            return Err(StoreError::conflict(
                "log_alarm",
                format!(
                    "the audit log failed its check at start ({}); an administrator or auditor must acknowledge the alarm before a checkpoint is signed",
                    a.problem
                ),
            ));
        }
        let key = self.checkpoint_key.as_ref().ok_or_else(|| {
            StoreError::conflict(
                "no_checkpoint_key",
                "this store was opened without its checkpoint key, so it cannot sign checkpoints",
            )
        })?;
        if let crate::Main::Postgres { pool, .. } = &self.main {
            // Signed under the head row's lock, in the database only: a
            // node has no file of its own to keep it in (see
            // docs/ARCHITECTURE.md on checkpoints kept elsewhere).
            return crate::postgres::connect::off_runtime(|| {
                let mut conn = pool.get()?;
                Ok(crate::postgres::log::checkpoint(&mut conn, key, now_ms)?)
            });
        }
        // The writer's lock: no entry is appended while the head is signed
        // and the checkpoint written.
        let conn = self.main()?;
        let head = conn.durable_head();
        if let Some(latest) = latest_stored(&conn)? {
            if latest.entries == head.seq
                && latest.head == hex::encode(head.hash)
                && latest.public_key == key.public_key()
            {
                return Ok(latest);
            }
        }
        let c = key.sign(&self.store_id, head, now_ms);
        conn.execute(
            &format!("INSERT INTO checkpoints({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                c.entries,
                c.head,
                c.time,
                c.store_id,
                c.public_key,
                c.signature
            ],
        )?;
        write_file(&self.dir, &c)?;
        Ok(c)
    }

    /// Records that `actor` has looked into the alarm (`note` says what
    /// was found), clears it, and signs a checkpoint of the log as it now
    /// is. The alarm, the acknowledgment and the note stay in the log.
    pub fn acknowledge_log_alarm(
        &self,
        actor: &Actor,
        note: &str,
        now_ms: i64,
    ) -> Result<Checkpoint, StoreError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 2000 {
            return Err(StoreError::invalid(
                "invalid_acknowledgment",
                "acknowledge_alarm must say, in 1 to 2000 characters, what was found and done",
            ));
        }
        let alarm = self
            .log_alarm()
            .ok_or_else(|| StoreError::conflict("no_log_alarm", "the audit log is not alarmed"))?;
        self.with_log(|tx, head| {
            // Checkpoints the log no longer extends are set aside, and
            // listed in the acknowledgment: the evidence stays in the
            // chain, and later checks judge the log from here on.
            let anchor = load_log_anchor(tx)?;
            let mut stmt = tx.prepare(&format!(
                "SELECT id, {COLUMNS} FROM checkpoints WHERE superseded_by IS NULL"
            ))?;
            let kept = crate::sql::collect_rows(&mut stmt, (), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Checkpoint {
                        entries: r.get(1)?,
                        head: r.get(2)?,
                        time: r.get(3)?,
                        store_id: r.get(4)?,
                        public_key: r.get(5)?,
                        signature: r.get(6)?,
                    },
                ))
            })?;
            drop(stmt);
            let mut set_aside = Vec::new();
            for (id, c) in kept {
                let broken = verify_signature(&c).is_err()
                    || c.store_id != self.store_id
                    || matches!(
                        relate(tx, &c, head, anchor)?,
                        Relation::Beyond | Relation::Differs
                    );
                if broken {
                    set_aside.push((id, c));
                }
            }
            let e = log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "system",
                    "log_alarm_acknowledged",
                    json!({
                        "problem": alarm.problem,
                        "alarm_entry": alarm.entry,
                        "note": note,
                        "public_key": self.checkpoint_public_key(),
                        "checkpoints_set_aside": set_aside.iter().map(|(_, c)| c).collect::<Vec<_>>(),
                    }),
                ),
            )?;
            for (id, _) in &set_aside {
                tx.execute(
                    "UPDATE checkpoints SET superseded_by = ?1 WHERE id = ?2",
                    [e.seq, *id],
                )?;
            }
            Ok(e)
        })?;
        *self.alarm.write().map_err(|_| StoreError::Poisoned)? = None;
        self.checkpoint(now_ms)
    }

    /// Checks that the log extends `c`, a checkpoint kept elsewhere.
    pub fn prove_checkpoint(&self, c: &Checkpoint) -> Result<CheckpointProof, StoreError> {
        match &self.main {
            crate::Main::Embedded { readers, .. } => {
                let conn = readers.get()?;
                prove_conn(&conn, &self.dir, c)
            }
            crate::Main::Postgres { pool, .. } => {
                let mut conn = pool.get()?;
                let (log, problem) = crate::postgres::connect::off_runtime(|| {
                    crate::postgres::log::prove(&mut conn, c)
                })?;
                let store_public_key =
                    latest_stored(&crate::sql::Pg::new(&mut *conn))?.map(|s| s.public_key);
                let note = key_note(store_public_key.as_deref(), c);
                Ok(CheckpointProof {
                    ok: problem.is_none() && log.ok,
                    checkpoint: c.clone(),
                    log,
                    store_public_key,
                    problem,
                    note,
                })
            }
        }
    }
}
