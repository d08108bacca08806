//! The PostgreSQL schema, owned by Platekeeper: made on first start,
//! versioned, upgraded in place; a database of another application, or
//! one a newer Platekeeper has upgraded, is refused before anything is
//! written.
//!
//! Everything lives in the schema `platekeeper` of the database the URL
//! names, so the role needs only to own that database (or hold CREATE on
//! it): no superuser, no extension that needs one.

use postgres::Client;

use super::url::DatabaseUrl;
use super::{connect::classify, PgError};

/// The newest schema this program knows.
pub const SCHEMA_VERSION: i32 = 5;

/// Each version's statements, applied in order inside one transaction
/// with the version's row, so a version is there whole or not at all.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5)];

/// Version 1: the audit log, one hash chain whose head row serializes
/// appends (see `super::log`).
const V1: &str = "
CREATE TABLE log(
    seq BIGINT PRIMARY KEY,
    ts BIGINT NOT NULL,
    category TEXT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    role TEXT,
    client TEXT,
    details TEXT NOT NULL,
    purpose TEXT,
    prev BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX log_user ON log(username, seq);
CREATE INDEX log_ts ON log(ts);
CREATE TABLE log_head(
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO log_head(seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
";

/// Version 2: reads, partitioned by UTC day (see `super::reads`). The
/// partitions themselves are made as days arrive.
const V2: &str = "
CREATE TABLE reads(
    ts BIGINT NOT NULL,
    plate BIGINT NOT NULL,
    meta BIGINT NOT NULL,
    id UUID NOT NULL,
    pos BIGINT
) PARTITION BY RANGE (ts);
CREATE INDEX reads_plate ON reads(plate, ts);
CREATE INDEX reads_time ON reads USING brin(ts) WITH (pages_per_range = 32);
CREATE TABLE read_days(
    day INTEGER PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

/// Version 3: the store's id (written with the log's genesis entry) and
/// the signed checkpoints of the log's head (see `super::log`).
const V3: &str = "
CREATE TABLE meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE checkpoints(
    entries BIGINT NOT NULL,
    head TEXT NOT NULL,
    time TEXT NOT NULL,
    store_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX checkpoints_entries ON checkpoints(entries);
";

/// Version 4: pictures, sealed before they leave the node, partitioned
/// by day (see `super::pictures`).
const V4: &str = "
CREATE TABLE pictures(
    day INTEGER NOT NULL,
    sha256 BYTEA NOT NULL,
    kind SMALLINT NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (day, sha256)
) PARTITION BY RANGE (day);
";

/// Version 5: cameras (see `super::cameras`); a camera's number is what
/// each read row packs in 20 bits.
const V5: &str = "
CREATE TABLE cameras(
    num SERIAL PRIMARY KEY CHECK (num <= 1048575),
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    lat INTEGER,
    lon INTEGER,
    key_hash BYTEA NOT NULL,
    old_key_hash BYTEA,
    old_key_until BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX cameras_key ON cameras(key_hash);
CREATE INDEX cameras_old_key ON cameras(old_key_hash) WHERE old_key_hash IS NOT NULL;
";

/// The advisory lock two nodes starting at once take, so one migrates
/// and the other finds it done.
const MIGRATION_LOCK: i64 = 0x706c_6174_656b_6565; // "platekee"

/// What [`migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version the database had (0: new).
    pub from: i32,
    pub to: i32,
}

/// Brings the database's schema to [`SCHEMA_VERSION`].
pub fn migrate(client: &mut Client, url: &DatabaseUrl) -> Result<Migrated, PgError> {
    let err = |e| classify(url, e);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    let ours: bool = tx
        .query_one(
            "SELECT to_regclass('platekeeper.schema_version') IS NOT NULL",
            &[],
        )
        .map_err(err)?
        .get(0);
    let from: i32 = if ours {
        let row = tx
            .query_one(
                "SELECT coalesce(max(version), 0), bool_and(application = 'platekeeper') FROM platekeeper.schema_version",
                &[],
            )
            .map_err(err)?;
        if row.get::<_, Option<bool>>(1) == Some(false) {
            return Err(PgError::ForeignDatabase {
                url: url.to_string(),
                holds: "a platekeeper.schema_version table written by another program".into(),
            });
        }
        row.get(0)
    } else {
        let others: Vec<String> = tx
            .query(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                 ORDER BY 1 LIMIT 4",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !others.is_empty() {
            return Err(PgError::ForeignDatabase {
                url: url.to_string(),
                holds: others.join(", "),
            });
        }
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS platekeeper;
             CREATE TABLE platekeeper.schema_version(
                 version INTEGER PRIMARY KEY,
                 application TEXT NOT NULL,
                 program TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );",
        )
        .map_err(err)?;
        0
    };
    if from > SCHEMA_VERSION {
        return Err(PgError::NewerSchema {
            url: url.to_string(),
            found: from,
            known: SCHEMA_VERSION,
        });
    }
    tx.batch_execute("SET LOCAL search_path = platekeeper")
        .map_err(err)?;
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        tx.batch_execute(statements).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_version(version, application, program) VALUES ($1, 'platekeeper', $2)",
            &[version, &concat!("platekeeper ", env!("CARGO_PKG_VERSION"))],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}
