//! The PostgreSQL backend (issue 25): the store on a database an agency's
//! IT runs, replicates and backs up.
//!
//! What is here so far, and shared with the embedded store:
//! * [`url`]: `--database postgres://…` read and checked (TLS
//!   `verify-full` off loopback; the password never shown);
//! * [`connect`]: connections told apart by what went wrong (unreachable,
//!   wrong password, no such database, not allowed, busy), and a pool;
//! * [`migrate`]: the schema `platekeeper`, versioned and upgraded in
//!   place; another application's database and a newer schema refused;
//! * [`log`]: the audit log, the same hash chain as `crate::log`, its
//!   appends serialized by a row lock on the chain's head;
//! * [`reads`]: reads partitioned by UTC day, idempotent ingest, the
//!   exact search, the distinct plates for the dictionary, retention by
//!   dropping days;
//! * [`pictures`]: sealed with the data key before they leave the node,
//!   partitioned by day;
//! * [`cameras`]: registration, keys (checked in the database, so a
//!   revocation holds on every node), rotation, revocation, renaming,
//!   with the embedded store's rules and log entries;
//! * [`settings`]: the agency's policy, changed by the embedded store's
//!   own decision (weakenings confirmed, logged with old and new values).
//!
//! The rest of the store (accounts, hot lists, holds, …) is not
//! on PostgreSQL yet, so no command offers `--database`: see the README's
//! "PostgreSQL backend" section for where this stands.

pub mod cameras;
pub mod connect;
pub mod log;
pub mod migrate;
pub mod pictures;
pub mod reads;
pub mod settings;
mod tls;
pub mod url;

pub use connect::{PgConn, PgPool};
pub use migrate::{Migrated, SCHEMA_VERSION};
pub use url::{DatabaseUrl, TlsMode, DATABASE_ENV};

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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
