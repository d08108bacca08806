//! Pictures in PostgreSQL, sealed by Platekeeper before they leave the
//! node (issue 24 item 1): AES-256-GCM under a key derived from the data
//! key, the same sealing as the embedded store's picture files
//! (`crate::at_rest::pictures`). The database, its backups and its
//! replicas hold only sealed bytes; a node without the data key can store
//! nothing and read nothing.
//!
//! One table partitioned by the read's UTC day, like the reads, so a
//! retention purge drops a day's pictures with its reads; a picture is
//! named by the SHA-256 of its plain bytes, stored once per day however
//! many reads carry it. Why in the database and not in files beside it:
//! every node must reach every picture, and the database is what the
//! agency already replicates and backs up.

use platekeeper_core::ImageKind;
use postgres::GenericClient;
use sha2::{Digest, Sha256};

use super::PgError;
use crate::at_rest::pictures::PictureKey;
use crate::at_rest::DataKey;
use crate::images::ImageRef;
use crate::partition;

fn table(day: i32) -> String {
    format!(
        "pictures_d{}",
        partition::file_name(day)
            .trim_end_matches(".db")
            .replace('-', "")
    )
}

/// Seals and stores a picture of a read on `day`; returns its reference.
/// The caller commits `tx` with the read that names it, so a committed
/// read never names a missing picture.
pub fn put(
    tx: &mut postgres::Transaction<'_>,
    key: &DataKey,
    day: i32,
    kind: ImageKind,
    bytes: &[u8],
) -> Result<ImageRef, PgError> {
    let q = |e: postgres::Error| PgError::Query(e.to_string());
    let r = ImageRef {
        sha256: Sha256::digest(bytes).into(),
        kind,
    };
    let sealed = PictureKey::new(key)
        .seal(&r.sha256, bytes)
        .map_err(|e| PgError::Query(format!("sealing a picture: {e}")))?;
    let name = table(day);
    let exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .map_err(q)?
        .get(0);
    if !exists {
        // Serialized with the reads' partitions: `IF NOT EXISTS` alone
        // fails when two sessions make the same table at once.
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({});
             CREATE TABLE IF NOT EXISTS {name} PARTITION OF pictures FOR VALUES FROM ({day}) TO ({})",
            super::reads::PARTITION_LOCK,
            day + 1
        ))
        .map_err(q)?;
    }
    tx.execute(
        "INSERT INTO pictures(day, sha256, kind, sealed) VALUES ($1, $2, $3, $4)
         ON CONFLICT (day, sha256) DO NOTHING",
        &[&day, &&r.sha256[..], &(r.kind_code() as i16), &sealed],
    )
    .map_err(q)?;
    Ok(r)
}

/// A picture of a read on `day`, opened: refused if it was altered, moved
/// to another name, or sealed under another key.
pub fn get(
    client: &mut impl GenericClient,
    key: &DataKey,
    day: i32,
    r: &ImageRef,
) -> Result<Option<Vec<u8>>, PgError> {
    let row = client
        .query_opt(
            "SELECT sealed FROM pictures WHERE day = $1 AND sha256 = $2",
            &[&day, &&r.sha256[..]],
        )
        .map_err(|e| PgError::Query(e.to_string()))?;
    let Some(row) = row else { return Ok(None) };
    let sealed: Vec<u8> = row.get(0);
    PictureKey::new(key)
        .open(&r.sha256, sealed)
        .map(Some)
        .map_err(|e| PgError::Query(format!("picture {}: {e}", hex::encode(r.sha256))))
}

/// Drops the pictures of days before `day` (retention), whole partitions.
pub fn drop_days_before(client: &mut postgres::Client, day: i32) -> Result<usize, PgError> {
    let q = |e: postgres::Error| PgError::Query(e.to_string());
    let names: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'pictures'::regclass",
            &[],
        )
        .map_err(q)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let old: Vec<&String> = names.iter().filter(|n| **n < table(day)).collect();
    for n in &old {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {n}"))
            .map_err(q)?;
    }
    Ok(old.len())
}
