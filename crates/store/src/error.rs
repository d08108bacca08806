use std::path::Path;

/// What can go wrong in the store. Input errors are refused before they
/// get here (see `platekeeper_core::read`); these are the store's own.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The data folder is not private to this account (issue 22).
    #[error("the data folder is not safe to use: {0}")]
    Insecure(String),
    #[error("a store lock was poisoned by a panic in another thread")]
    Poisoned,
    /// Encryption at rest ([`crate::at_rest`]): the folder and the key
    /// given do not go together. Reported before anything is changed.
    #[error("this data folder is encrypted (key {key_id}): give its key with --key-file FILE or the environment variable {env}", env = crate::at_rest::KEY_ENV)]
    KeyRequired { key_id: String },
    #[error("the key given (id {given}) is not this data folder's key (id {expected}); nothing was opened or changed")]
    WrongKey { given: String, expected: String },
    #[error("this data folder is not encrypted; to encrypt it, stop the server and run `platekeeper keys encrypt --data DIR --key-file FILE`")]
    NotEncrypted,
    #[error("a change of the data key (from {from} to key {to}) was interrupted; finish it by running the same `platekeeper keys` command again")]
    RekeyUnfinished { from: String, to: String },
    #[error("{path} cannot be read with the data key: it is under another key, or damaged")]
    Unreadable { path: String },
    #[error("picture {path}: {source}")]
    Picture {
        path: String,
        #[source]
        source: crate::at_rest::PictureError,
    },
    #[error(transparent)]
    Key(#[from] crate::at_rest::KeyError),
    #[error("{0}")]
    Encryption(String),
    #[error("camera {0:?} already exists")]
    CameraExists(String),
    #[error("camera {0:?} is not registered")]
    UnknownCamera(String),
    #[error("{0}")]
    InvalidCamera(String),
    #[error("the plate pattern matches {matched} distinct plates; add known characters or use a narrower pattern (at most {limit})")]
    PatternTooBroad { matched: usize, limit: usize },
    #[error("{0}")]
    QueryTooBroad(String),
    #[error("cursor {0:?} is not one this server issued")]
    BadCursor(String),
    /// Data found under one access offered for release under another.
    #[error("data found under one access cannot be released under another")]
    WrongAccess,
    /// The batch of logged changes holding this one was not committed:
    /// nothing of it is stored.
    #[error("the change was not stored: {why}")]
    CommitFailed { why: String, storage_full: bool },
    /// Something asked for under an access that is not (or no longer)
    /// there; `code` is the API's error code.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("access {0} does not exist")]
    UnknownAccess(i64),
    #[error("user {0:?} does not exist")]
    UnknownUser(String),
    #[error("user {0:?} already exists (usernames are never reused)")]
    UserExists(String),
    #[error("{0}")]
    InvalidUser(String),
    #[error("{0}")]
    InvalidPolicy(String),
    #[error("{0}")]
    InvalidHotList(String),
    #[error("a hot list named {0:?} already exists")]
    HotListExists(String),
    #[error("hot list {0} does not exist")]
    UnknownHotList(i64),
    #[error("hot-list entry {0} does not exist")]
    UnknownHotEntry(i64),
    #[error("alert {0} does not exist")]
    UnknownAlert(i64),
    #[error("{0}")]
    AlertState(String),
    #[error("{0}")]
    InvalidAlert(String),
    /// Something named by id that does not exist: `what` is the API's
    /// noun (`hold`, `agency`, `sharing_request`, …).
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    /// Input the store refuses; `code` is the API's error code.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A rule forbids the action (for example sharing outside California).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The thing is not in a state that allows the action.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The audit log is gone from a store that holds data: the store is
    /// not opened (a new log would hide the deletion).
    #[error("the audit log is missing: {0}")]
    LogMissing(String),
    /// The audit log failed its check at open and the policy says refuse.
    #[error("{0}")]
    LogTampered(String),
    #[error("{0}")]
    CheckpointKey(String),
    /// The PostgreSQL backend's own failures (unreachable, lost, …);
    /// `is_transient` ones are worth a retry.
    #[error(transparent)]
    Postgres(#[from] crate::postgres::PgError),
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}

impl StoreError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl std::fmt::Display) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl StoreError {
    /// The disk (or the user's quota) is full: SQLite's `SQLITE_FULL`, or
    /// a file write that failed with `ENOSPC`/`EDQUOT`. The server answers
    /// these with 507 `storage_full`, not a generic 500 (issue 22
    /// finding 11).
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io { source, .. } => is_storage_full_io(source),
            StoreError::CommitFailed { storage_full, .. } => *storage_full,
            _ => false,
        }
    }
}

/// `ENOSPC` and `EDQUOT`, as the standard library names them.
fn is_storage_full_io(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real SQLITE_FULL: a database whose page count is capped, filled
    /// until SQLite refuses, as a full disk makes it refuse.
    #[test]
    fn a_full_database_is_storage_full() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t(x BLOB); PRAGMA max_page_count = 4;")
            .unwrap();
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = db.execute("INSERT INTO t VALUES (zeroblob(4000))", []) {
                err = Some(e);
                break;
            }
        }
        let err = StoreError::from(err.expect("the capped database filled up"));
        assert!(err.is_storage_full(), "{err}");
        let other = StoreError::from(rusqlite::Error::QueryReturnedNoRows);
        assert!(!other.is_storage_full());
    }

    #[test]
    fn enospc_and_edquot_are_storage_full_other_io_errors_not() {
        let io = |e: std::io::Error| StoreError::Io {
            path: "images/x.jpg".into(),
            source: e,
        };
        #[cfg(target_os = "linux")]
        {
            assert!(io(std::io::Error::from_raw_os_error(28)).is_storage_full()); // ENOSPC
            assert!(io(std::io::Error::from_raw_os_error(122)).is_storage_full());
            // EDQUOT
        }
        assert!(io(std::io::ErrorKind::StorageFull.into()).is_storage_full());
        assert!(!io(std::io::ErrorKind::PermissionDenied.into()).is_storage_full());
    }
}
