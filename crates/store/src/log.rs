//! The audit log: append-only and tamper-evident (SPEC R4.5).
//!
//! Every access to plate data, every sign-in and every administrative
//! change is one entry. Entries are numbered 1, 2, 3 … and chained: each
//! holds the SHA-256 of the previous entry's hash and its own canonical
//! encoding. Anyone who can read the database can re-walk the chain
//! ([`verify`]) and find the first entry that was edited, deleted, inserted
//! or moved. Deleting the newest entries leaves a shorter but valid chain,
//! so after each append the head (entry count and hash) is also written
//! outside the database, to `log-head.json`; a log that ends before the
//! recorded head, or differs from it, fails verification too.
//!
//! Whoever can write both the database and the data folder can still
//! delete the whole log or rewrite it consistently. The log's first entry
//! ([`crate::genesis`]) makes a deleted log visible, and signed
//! checkpoints kept elsewhere ([`crate::checkpoint`]) make a rewrite
//! provable; verification checks both.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::sql::{Optional as _, Sql};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The file, beside `platekeeper.db`, that records the log's head.
pub const HEAD_FILE: &str = "log-head.json";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log(
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    category TEXT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    role TEXT,
    client TEXT,
    details TEXT NOT NULL,
    purpose TEXT,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_user ON log(username, seq);
CREATE INDEX IF NOT EXISTS log_ts ON log(ts);
";

/// What a new entry says. `details` and `purpose` are JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub ts_ms: i64,
    /// `access` (plate data), `auth` (sign-in), `admin` (accounts,
    /// cameras, policy) or `system` (scheduled jobs).
    pub category: &'static str,
    pub kind: String,
    pub username: String,
    pub affiliation: String,
    pub role: Option<String>,
    pub client: Option<String>,
    pub details: serde_json::Value,
    pub purpose: Option<serde_json::Value>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub seq: i64,
    pub ts_ms: i64,
    pub category: String,
    pub kind: String,
    pub username: String,
    pub affiliation: String,
    pub role: Option<String>,
    pub client: Option<String>,
    pub details: String,
    pub purpose: Option<String>,
    #[serde(serialize_with = "as_hex")]
    pub prev: [u8; 32],
    #[serde(serialize_with = "as_hex")]
    pub hash: [u8; 32],
}

fn as_hex<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

impl LogEntry {
    /// The head the log has once this entry is its newest.
    pub fn as_head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// The entry's hash in hex, as shown to auditors.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// The newest entry's number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl Head {
    pub const GENESIS: Head = Head {
        seq: 0,
        hash: [0; 32],
    };
}

#[derive(Serialize, Deserialize)]
struct HeadFile {
    entries: i64,
    head: String,
}

/// The hash of an entry: SHA-256 over a label, the previous hash, and each
/// field length-prefixed (so no two different entries encode alike).
pub fn entry_hash(e: &LogEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"platekeeper-log-v1");
    h.update(e.prev);
    let mut field = |b: Option<&[u8]>| match b {
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        None => h.update([0u8]),
    };
    field(Some(e.seq.to_string().as_bytes()));
    field(Some(e.ts_ms.to_string().as_bytes()));
    field(Some(e.category.as_bytes()));
    field(Some(e.kind.as_bytes()));
    field(Some(e.username.as_bytes()));
    field(Some(e.affiliation.as_bytes()));
    field(e.role.as_deref().map(str::as_bytes));
    field(e.client.as_deref().map(str::as_bytes));
    field(Some(e.details.as_bytes()));
    field(e.purpose.as_deref().map(str::as_bytes));
    h.finalize().into()
}

/// Appends an entry inside `tx`, chaining it to `head`, and returns it.
/// The caller commits, then calls [`write_head`] and advances its head.
pub(crate) fn append(tx: &dyn Sql, head: Head, new: NewEntry) -> Result<LogEntry, StoreError> {
    let e = chained(head, new);
    insert(tx, &e)?;
    tx.appended(&e.kind);
    Ok(e)
}

/// The entry `new` becomes when chained after `head`: numbered next and
/// hashed (both backends append exactly this).
pub fn chained(head: Head, new: NewEntry) -> LogEntry {
    let mut e = LogEntry {
        seq: head.seq + 1,
        ts_ms: new.ts_ms,
        category: new.category.to_string(),
        kind: new.kind,
        username: new.username,
        affiliation: new.affiliation,
        role: new.role,
        client: new.client,
        details: new.details.to_string(),
        purpose: new.purpose.map(|p| p.to_string()),
        prev: head.hash,
        hash: [0; 32],
    };
    e.hash = entry_hash(&e);
    e
}

fn insert(conn: &dyn Sql, e: &LogEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO log(seq, ts, category, kind, username, affiliation, role, client, details, purpose, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
        e.seq,
        e.ts_ms,
        e.category,
        e.kind,
        e.username,
        e.affiliation,
        e.role,
        e.client,
        e.details,
        e.purpose,
        &e.prev[..],
        &e.hash[..]
    ])?;
    Ok(())
}

/// Replaces the log in `conn` with `log`, numbered from 1 and chained
/// anew, and writes a head file in `dir` to match: the consistent rewrite
/// an insider who can write the data folder can make. Only checkpoints
/// kept elsewhere catch it; tests of verification use this to play that
/// insider.
pub fn forge(conn: &Connection, dir: &Path, log: Vec<LogEntry>) -> Result<(), StoreError> {
    let head = rechain(conn, log)?;
    write_head(dir, head)
}

/// Replaces the log in `conn` with `log`, numbered from 1 and chained
/// anew; returns the new head ([`forge`] on either backend).
pub(crate) fn rechain(conn: &dyn Sql, mut log: Vec<LogEntry>) -> Result<Head, StoreError> {
    conn.execute("DELETE FROM log", ())?;
    let mut head = Head::GENESIS;
    for (i, e) in log.iter_mut().enumerate() {
        e.seq = i as i64 + 1;
        e.prev = head.hash;
        e.hash = entry_hash(e);
        insert(conn, e)?;
        head = e.as_head();
    }
    Ok(head)
}

/// Records the head outside the database (write, then rename: a reader
/// sees the old head or the new one, never half of either).
pub(crate) fn write_head(dir: &Path, head: Head) -> Result<(), StoreError> {
    let path = dir.join(HEAD_FILE);
    let tmp = dir.join(format!(".{HEAD_FILE}.tmp"));
    let body = serde_json::to_vec(&HeadFile {
        entries: head.seq,
        head: hex::encode(head.hash),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::private::write(&tmp, &body)?;
    std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))
}

/// The head as stored in the database (the last entry).
pub(crate) fn load_head(conn: &Connection) -> Result<Head, StoreError> {
    Ok(conn
        .query_row(
            "SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                let hash: Vec<u8> = r.get(1)?;
                Ok((r.get::<_, i64>(0)?, hash))
            },
        )
        .optional()?
        .map(|(seq, hash)| Head {
            seq,
            hash: hash.try_into().unwrap_or([0; 32]),
        })
        .unwrap_or(Head::GENESIS))
}

pub(crate) fn row_entry(r: &impl crate::sql::Get) -> rusqlite::Result<LogEntry> {
    let blob = |i: usize| -> rusqlite::Result<[u8; 32]> {
        let v: Vec<u8> = r.col(i)?;
        Ok(v.try_into().unwrap_or([0xFF; 32]))
    };
    Ok(LogEntry {
        seq: r.col(0)?,
        ts_ms: r.col(1)?,
        category: r.col(2)?,
        kind: r.col(3)?,
        username: r.col(4)?,
        affiliation: r.col(5)?,
        role: r.col(6)?,
        client: r.col(7)?,
        details: r.col(8)?,
        purpose: r.col(9)?,
        prev: blob(10)?,
        hash: blob(11)?,
    })
}

/// Every entry in `conn`'s log, in order, as stored (read-only; for tools
/// and tests that inspect or, as an attacker would, rewrite it).
pub fn read_entries(conn: &Connection) -> Result<Vec<LogEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM log ORDER BY seq"))?;
    let rows = stmt.query_map([], |r| row_entry(r))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) const COLUMNS: &str =
    "seq, ts, category, kind, username, affiliation, role, client, details, purpose, prev, hash";

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Entries walked.
    pub entries: i64,
    /// Hex hash of the last entry.
    pub head: String,
    /// The first entry found wrong, and why.
    pub first_bad: Option<i64>,
    pub problem: Option<String>,
}

/// The head file's record, if the file exists.
fn read_head_file(dir: &Path) -> Result<Option<HeadFile>, StoreError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!("{}: {e}", path.display()))
        })?)),
        Err(_) => Ok(None),
    }
}

/// The hash of entry `seq`, if it is in the log.
pub(crate) fn hash_at(conn: &dyn Sql, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
    let h: Option<Vec<u8>> = conn
        .query_row("SELECT hash FROM log WHERE seq = ?1", [seq], |r| r.get(0))
        .optional()?;
    Ok(h.map(|h| h.try_into().unwrap_or([0xFF; 32])))
}

fn bad(seq: i64, head: Head, problem: String) -> Verification {
    Verification {
        ok: false,
        entries: head.seq,
        head: hex::encode(head.hash),
        first_bad: Some(seq),
        problem: Some(problem),
    }
}

/// How a walk of the chain ended.
enum Walk {
    /// Every entry after the start followed on: the last one reached, and
    /// whether a `purge` entry named `anchor`.
    End {
        head: Head,
        anchor_named: bool,
    },
    Bad(Verification),
}

/// The check of a chain, entry by entry, whatever holds it: each entry
/// must follow the one before and be unaltered (both backends walk their
/// log with this).
pub struct ChainWalk {
    head: Head,
    anchor: Option<Head>,
    anchor_named: bool,
}

impl ChainWalk {
    /// A walk from `start` (trusted: the log's start, or an entry matched
    /// with a signed checkpoint); `anchor` is where a purge cut the log.
    pub fn new(start: Head, anchor: Option<Head>) -> ChainWalk {
        ChainWalk {
            head: start,
            anchor,
            anchor_named: false,
        }
    }

    /// Checks the next entry (`Err(())`: a row that cannot be read as an
    /// entry). The first wrong one ends the walk with its verdict.
    pub fn step(&mut self, entry: Result<LogEntry, ()>) -> Result<(), Verification> {
        let expected = self.head.seq + 1;
        let Ok(e) = entry else {
            return Err(self.bad_at(
                expected,
                format!("entry {expected} cannot be read: its columns were changed"),
            ));
        };
        if e.seq != expected {
            return Err(self.bad_at(
                expected,
                format!(
                    "entry {expected} is missing (the next entry present is {})",
                    e.seq
                ),
            ));
        }
        if e.prev != self.head.hash {
            return Err(self.bad_at(
                e.seq,
                format!(
                    "entry {} does not follow entry {}: entries were inserted, removed or reordered",
                    e.seq, self.head.seq
                ),
            ));
        }
        if entry_hash(&e) != e.hash {
            return Err(self.bad_at(
                e.seq,
                format!("entry {} was altered after it was written", e.seq),
            ));
        }
        if let (Some(a), "purge") = (self.anchor, e.kind.as_str()) {
            let through = serde_json::from_str::<serde_json::Value>(&e.details)
                .ok()
                .and_then(|d| d.get("log_through").and_then(|v| v.as_i64()));
            self.anchor_named |= through == Some(a.seq);
        }
        self.head = e.as_head();
        Ok(())
    }

    /// The last entry reached.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Whether a `purge` entry named the anchor.
    pub fn anchor_named(&self) -> bool {
        self.anchor_named
    }

    /// The verdict that entry `seq` is wrong.
    pub fn bad_at(&self, seq: i64, problem: String) -> Verification {
        bad(seq, self.head, problem)
    }

    /// The verdict that the log's end is wrong.
    pub fn bad_end(&self, problem: String) -> Verification {
        bad(self.head.seq + 1, self.head, problem)
    }

    /// The verdict that the whole walk was sound.
    pub fn finish(&self) -> Verification {
        Verification {
            ok: true,
            entries: self.head.seq,
            head: hex::encode(self.head.hash),
            first_bad: None,
            problem: None,
        }
    }
}

/// Walks the entries after `start` (which the caller trusts), checking
/// that each follows the one before and is unaltered.
fn walk(conn: &Connection, start: Head, anchor: Option<Head>) -> Result<Walk, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM log WHERE seq > ?1 ORDER BY seq"
    ))?;
    let mut rows = stmt.query([start.seq])?;
    let mut chain = ChainWalk::new(start, anchor);
    while let Some(row) = rows.next()? {
        if let Err(v) = chain.step(row_entry(row).map_err(|_| ())) {
            return Ok(Walk::Bad(v));
        }
    }
    Ok(Walk::End {
        head: chain.head(),
        anchor_named: chain.anchor_named(),
    })
}

/// Compares the log's end with the head recorded in the head file.
fn check_end(
    conn: &Connection,
    head: Head,
    recorded: Option<HeadFile>,
) -> Result<Option<Verification>, StoreError> {
    if let Some(recorded) = recorded {
        if recorded.entries > head.seq {
            return Ok(Some(bad(
                head.seq + 1,
                head,
                format!(
                    "the log ends at entry {} but entry {} was recorded: entries were removed from the end",
                    head.seq, recorded.entries
                ),
            )));
        }
        let matches = match hash_at(conn, recorded.entries)? {
            Some(h) => hex::encode(h) == recorded.head,
            None => recorded.entries == 0,
        };
        if !matches {
            return Ok(Some(bad(
                recorded.entries,
                head,
                format!(
                    "entry {} differs from the head recorded in {HEAD_FILE}",
                    recorded.entries
                ),
            )));
        }
    } else if head.seq > 0 {
        return Ok(Some(bad(
            head.seq,
            head,
            format!("{HEAD_FILE} is missing: the end of the log cannot be checked"),
        )));
    }
    Ok(None)
}

/// Walks the whole chain in `conn` and compares its end with the head file
/// in `dir`; checks that the log starts where the store did (its genesis
/// entry) and that it extends every checkpoint kept with it.
pub fn verify_conn(conn: &Connection, dir: &Path) -> Result<Verification, StoreError> {
    // The head file first: entries appended while the walk runs are then
    // beyond it, not mistaken for a cut-off tail.
    let recorded = read_head_file(dir)?;
    // Entries purged past retention: the chain starts after the anchor,
    // which a later `purge` entry must name (checked below).
    let anchor = crate::retention::load_log_anchor(conn)?;
    let (head, anchor_named) = match walk(conn, anchor.unwrap_or(Head::GENESIS), anchor)? {
        Walk::End { head, anchor_named } => (head, anchor_named),
        Walk::Bad(v) => return Ok(v),
    };
    if let Some(a) = anchor.filter(|_| !anchor_named) {
        return Ok(bad(
            a.seq + 1,
            head,
            format!(
                "the log starts after entry {} but no purge entry records removing entries up to it",
                a.seq
            ),
        ));
    }
    finish(conn, dir, head, anchor, recorded, true)
}

/// The checks after a walk that reached `head`: the head file, the
/// genesis rules, and (when `checkpoints`) every kept checkpoint.
fn finish(
    conn: &Connection,
    dir: &Path,
    head: Head,
    anchor: Option<Head>,
    recorded: Option<HeadFile>,
    checkpoints: bool,
) -> Result<Verification, StoreError> {
    if let Some(v) = check_end(conn, head, recorded)? {
        return Ok(v);
    }
    if let Some((seq, problem)) = crate::genesis::problem(conn, dir, head, anchor)? {
        return Ok(bad(seq, head, problem));
    }
    if checkpoints {
        if let Some((seq, problem)) = crate::checkpoint::kept_problem(conn, dir, head, anchor)? {
            return Ok(bad(seq, head, problem));
        }
    }
    Ok(Verification {
        ok: true,
        entries: head.seq,
        head: hex::encode(head.hash),
        first_bad: None,
        problem: None,
    })
}

/// Checks the log from `from` (an entry whose hash the caller has matched
/// with a signed checkpoint, or the log's start) to its end: the cheap
/// check at start-up, when everything up to `from` was already vouched
/// for.
pub(crate) fn verify_tail(
    conn: &Connection,
    dir: &Path,
    from: Head,
) -> Result<Verification, StoreError> {
    let recorded = read_head_file(dir)?;
    let anchor = crate::retention::load_log_anchor(conn)?;
    let head = match walk(conn, from, None)? {
        Walk::End { head, .. } => head,
        Walk::Bad(v) => return Ok(v),
    };
    finish(conn, dir, head, anchor, recorded, false)
}

/// Verifies the log of a data folder, read-only (safe while a server runs).
pub fn verify_dir(
    dir: &Path,
    key: Option<&crate::at_rest::DataKey>,
) -> Result<Verification, StoreError> {
    let conn = crate::at_rest::open_main_read_only(dir, key)?;
    verify_conn(&conn, dir)
}
