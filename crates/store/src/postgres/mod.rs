//! The PostgreSQL backend (issue 25): the store on a database an agency's
//! IT runs, replicates and backs up.
//!
//! `Store::open_with(dir, OpenOptions { database: Some(url), .. })`
//! (`--database` on the command line) puts the whole store here. What is
//! PostgreSQL's own:
//! * [`url`]: `--database postgres://…` read and checked (TLS
//!   `verify-full` off loopback; the password never shown);
//! * [`connect`]: connections told apart by what went wrong (unreachable,
//!   wrong password, no such database, not allowed, busy), and a pool;
//! * [`migrate`]: the schema `platekeeper`, versioned and upgraded in
//!   place; another application's database and a newer schema refused;
//! * [`log`]: the audit log's transactions: appends serialized by a row
//!   lock on the chain's head, the walk in one snapshot, checkpoints;
//! * [`reads`]: reads partitioned by UTC day, idempotent batch ingest,
//!   the searches' fetches, retention by dropping days;
//! * [`pictures`]: sealed with the data key before they leave the node,
//!   partitioned by day;
//! * `plane`: the store's read operations on the above.
//!
//! Everything else — accounts, sessions, passkeys, devices, cameras, hot
//! lists, alerts, holds, sharing, corrections, reports, the policy, the
//! log's entries — is the embedded store's own code, run on a PostgreSQL
//! transaction through `crate::sql`.

pub mod alert_bus;
pub mod connect;
pub mod listener;
pub mod log;
pub mod migrate;
pub mod pictures;
pub(crate) mod plane;
pub mod reads;
pub(crate) mod replica;
mod tls;
pub mod transfer;
pub mod url;

/// The client crate, for the types the store keeps (a lease's session).
pub(crate) use ::postgres as postgres_client;
pub use connect::{PgConn, PgPool};
pub use migrate::{Migrated, SCHEMA_VERSION};
pub use plane::{DatabaseState, ReadDatabaseState};
pub use url::{DatabaseUrl, TlsMode, DATABASE_ENV, READ_DATABASE_ENV};

/// What can go wrong with the PostgreSQL backend, each naming the
/// database by its URL without the password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("{0}")]
    BadUrl(String),
    #[error("the PostgreSQL server at {url} cannot be reached: {why}")]
    Unreachable { url: String, why: String },
    #[error("PostgreSQL at {url} refused the password of user {user:?}")]
    WrongPassword { url: String, user: String },
    #[error("PostgreSQL at {url} does not let user {user:?} connect: {why}")]
    NotAllowed {
        url: String,
        user: String,
        why: String,
    },
    #[error("the database named in {url} does not exist: create it (CREATE DATABASE … OWNER …) or name another")]
    NoDatabase { url: String },
    #[error("TLS to the PostgreSQL server at {url} failed: {why}")]
    Tls { url: String, why: String },
    #[error("the database {url} belongs to another application (it holds {holds}): give Platekeeper a database of its own")]
    ForeignDatabase { url: String, holds: String },
    #[error("the database {url} has Platekeeper's schema version {found}, newer than this program's {known}: run the newer Platekeeper, or restore a backup made for this one")]
    NewerSchema { url: String, found: i32, known: i32 },
    #[error("the connection to PostgreSQL at {url} was lost: {why}")]
    Lost { url: String, why: String },
    #[error("PostgreSQL at {url} cannot take the request now: {why}")]
    Unavailable { url: String, why: String },
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("a connection pool lock was poisoned by a panic in another thread")]
    Poisoned,
    /// The audit log is gone from a store that had one: not opened.
    #[error("the audit log is missing: {0}")]
    LogMissing(String),
}

impl PgError {
    /// Whether trying again later may succeed (the server is away, busy
    /// or starting): a camera is told 503 with `Retry-After`, not an
    /// error in what it sent.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PgError::Unreachable { .. } | PgError::Lost { .. } | PgError::Unavailable { .. }
        )
    }
}

/// Connects to the database `url` names and brings its schema up to date:
/// what `serve --database` will do at start. Every refusal is reported
/// before anything is written.
pub fn open(url: &DatabaseUrl) -> Result<(PgPool, Migrated), PgError> {
    let pool = PgPool::open(url)?;
    let migrated = {
        let mut conn = pool.get()?;
        let m = migrate::migrate(&mut conn, url)?;
        log::open_log(&mut conn, now_ms())?;
        m
    };
    Ok((pool, migrated))
}

/// Connects, brings the schema up to date and opens the log (writing
/// its genesis entry once): what a store on PostgreSQL does first.
pub(crate) fn open_main(url: &DatabaseUrl, now_ms: i64) -> Result<PgPool, PgError> {
    let pool = PgPool::open(url)?;
    {
        let mut conn = pool.get()?;
        migrate::migrate(&mut conn, url)?;
        log::open_log(&mut conn, now_ms)?;
    }
    Ok(pool)
}

/// The wall clock, in ms since 1970.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
