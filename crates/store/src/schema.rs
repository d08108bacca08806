//! Connection settings, and the main database's tables (cameras, the
//! access log). Day files have their own schema (see [`crate::partition`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Writer,
    Reader,
}

/// Opens a connection with the settings every connection needs.
///
/// `synchronous = FULL` in WAL mode makes each commit wait for the log to
/// reach the disk, which is what "acknowledged only once durable" (SPEC
/// R1.3) means; batching keeps the cost to one sync per batch. Readers keep
/// a small page cache each (the operating system's file cache does the
/// rest), so many open day files cost little memory. Temporary data
/// (sorts for index builds, VACUUM's copy) stays in memory: SQLCipher's
/// build keeps it there, so no unencrypted copy reaches the disk.
pub(crate) fn open_connection(
    path: &Path,
    role: Role,
    cipher: &crate::at_rest::Cipher,
) -> Result<Connection, StoreError> {
    // Only a writer creates a file: a reader opened on a day file the
    // purge has just deleted must fail, not bring back an empty one.
    let create = match role {
        Role::Writer => {
            crate::private::precreate(path)?;
            OpenFlags::SQLITE_OPEN_CREATE
        }
        Role::Reader => OpenFlags::empty(),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | create | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    cipher.apply(&conn)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // After a checkpoint the log file is cut back to this size instead of
    // keeping its largest size forever (one per day file adds up).
    conn.pragma_update(None, "journal_size_limit", 4i64 << 20)?;
    match role {
        Role::Writer => conn.pragma_update(None, "cache_size", -16_384)?,
        Role::Reader => {
            conn.pragma_update(None, "cache_size", -cipher.reader_cache_kib())?;
            conn.pragma_update(None, "query_only", true)?;
        }
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS cameras(
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fixed', 'mobile')),
    lat INTEGER,
    lon INTEGER,
    key_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS access_reads(
    access_id INTEGER NOT NULL,
    read_id BLOB NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (access_id, read_id)
) WITHOUT ROWID;
-- Earlier versions indexed every returned read by its id, a write at a
-- random place for each read of each access (issue 28); holds and
-- corrections now walk their author's own accesses instead.
DROP INDEX IF EXISTS access_reads_read;
";

/// Creates the main database's tables; safe to run on every start.
pub(crate) fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(crate::log::SCHEMA)?;
    conn.execute_batch(crate::accounts::SCHEMA)?;
    conn.execute_batch(crate::hotlists::SCHEMA)?;
    conn.execute_batch(crate::alerts::SCHEMA)?;
    conn.execute_batch(crate::holds::SCHEMA)?;
    conn.execute_batch(crate::sharing::SCHEMA)?;
    conn.execute_batch(crate::reports::SCHEMA)?;
    conn.execute_batch(crate::corrections::SCHEMA)?;
    conn.execute_batch(crate::checkpoint::SCHEMA)?;
    conn.execute_batch(crate::devices::SCHEMA)?;
    conn.execute_batch(crate::passkeys::SCHEMA)?;
    conn.execute_batch(crate::shared_state::SCHEMA)?;
    crate::accounts::migrate(conn)?;
    crate::cameras::migrate(conn)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '2')",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_writer_creates_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026-11-23.db");
        let plain = crate::at_rest::Cipher::plain();
        assert!(open_connection(&path, Role::Reader, &plain).is_err());
        assert!(!path.exists(), "a reader brought a purged day back");
        open_connection(&path, Role::Writer, &plain).unwrap();
        assert!(path.exists());
        open_connection(&path, Role::Reader, &plain).expect("then it may read it");
    }
}
