//! The database's tables (other than the day partitions, see
//! [`crate::partition`]) and connection settings.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Opens a connection with the settings every connection needs.
///
/// `synchronous = FULL` in WAL mode makes each commit wait for the log to
/// reach the disk, which is what "acknowledged only once durable" (SPEC
/// R1.3) means; batching keeps the cost to one sync per batch.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache per connection (negative = KiB).
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(256);
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

CREATE TABLE IF NOT EXISTS access_log(
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    username TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    kind TEXT NOT NULL,
    query TEXT NOT NULL,
    purpose TEXT NOT NULL,
    client TEXT,
    development INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS access_results(
    access_id INTEGER PRIMARY KEY REFERENCES access_log(id),
    result_count INTEGER NOT NULL
);
";

/// Creates the tables that are not partitions; safe to run on every start.
pub(crate) fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')",
        [],
    )?;
    Ok(())
}
