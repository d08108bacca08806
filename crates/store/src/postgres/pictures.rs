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

/// A picture's reference and the bytes to store: sealed under the data
/// key, or (a store without one, as the embedded store's plain files)
/// as they are.
pub fn seal(
    key: Option<&PictureKey>,
    kind: ImageKind,
    bytes: &[u8],
) -> Result<(ImageRef, Vec<u8>), PgError> {
    let r = ImageRef {
        sha256: Sha256::digest(bytes).into(),
        kind,
    };
    let stored = match key {
        Some(key) => key
            .seal(&r.sha256, bytes)
            .map_err(|e| PgError::Query(format!("sealing a picture: {e}")))?,
        None => bytes.to_vec(),
    };
    Ok((r, stored))
}

/// Stores a picture (as [`seal`] made it) of a read on `day`, once per
/// day however many reads carry it.
pub fn insert(
    client: &mut impl GenericClient,
    day: i32,
    r: &ImageRef,
    stored: &[u8],
) -> Result<(), PgError> {
    let q = |e: postgres::Error| super::connect::statement_error(e);
    let name = table(day);
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .map_err(q)?
        .get(0);
    if !exists {
        // Serialized with the reads' partitions: `IF NOT EXISTS` alone
        // fails when two sessions make the same table at once.
        let mut tx = client.transaction().map_err(q)?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({});
             CREATE TABLE IF NOT EXISTS {name} PARTITION OF pictures FOR VALUES FROM ({day}) TO ({})",
            super::reads::PARTITION_LOCK,
            day + 1
        ))
        .map_err(q)?;
        tx.commit().map_err(q)?;
    }
    client
        .execute(
            "INSERT INTO pictures(day, sha256, kind, sealed) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day, sha256) DO NOTHING",
            &[&day, &&r.sha256[..], &(r.kind_code() as i16), &stored],
        )
        .map_err(q)?;
    Ok(())
}

/// Seals and stores a picture of a read on `day`; returns its reference.
pub fn put(
    client: &mut impl GenericClient,
    key: Option<&PictureKey>,
    day: i32,
    kind: ImageKind,
    bytes: &[u8],
) -> Result<ImageRef, PgError> {
    let (r, stored) = seal(key, kind, bytes)?;
    insert(client, day, &r, &stored)?;
    Ok(r)
}

/// A picture of a read on `day` (or its held copy, once the day is
/// purged), opened: refused if it was altered, moved to another name, or
/// sealed under another key (or sealed at all, for a store without one).
pub fn get(
    client: &mut impl GenericClient,
    key: Option<&PictureKey>,
    day: i32,
    r: &ImageRef,
) -> Result<Option<Vec<u8>>, PgError> {
    let q = |e: postgres::Error| super::connect::statement_error(e);
    let row = client
        .query_opt(
            "SELECT sealed FROM pictures WHERE day = $1 AND sha256 = $2
             UNION ALL SELECT sealed FROM held_pictures WHERE sha256 = $2
             LIMIT 1",
            &[&day, &&r.sha256[..]],
        )
        .map_err(q)?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.get(0);
    let bad = |e: crate::at_rest::PictureError| {
        PgError::Query(format!("picture {}: {e}", hex::encode(r.sha256)))
    };
    match key {
        Some(key) => key.open(&r.sha256, stored).map(Some).map_err(bad),
        None if crate::at_rest::pictures::sealed_under(&stored).is_some() => {
            Err(bad(crate::at_rest::PictureError::Tampered))
        }
        None => Ok(Some(stored)),
    }
}

/// Keeps a copy of a picture of `day` for a legal hold, past the day's
/// purge.
pub fn hold(client: &mut impl GenericClient, day: i32, r: &ImageRef) -> Result<(), PgError> {
    client
        .execute(
            "INSERT INTO held_pictures(sha256, kind, sealed)
             SELECT sha256, kind, sealed FROM pictures WHERE day = $1 AND sha256 = $2
             ON CONFLICT (sha256) DO NOTHING",
            &[&day, &&r.sha256[..]],
        )
        .map_err(super::connect::statement_error)?;
    Ok(())
}

/// Drops a held copy no hold needs any more; whether there was one.
pub fn release_held(client: &mut impl GenericClient, r: &ImageRef) -> Result<bool, PgError> {
    Ok(client
        .execute(
            "DELETE FROM held_pictures WHERE sha256 = $1",
            &[&&r.sha256[..]],
        )
        .map_err(super::connect::statement_error)?
        > 0)
}

/// Pictures stored for `day`.
pub fn count_day(client: &mut impl GenericClient, day: i32) -> Result<u64, PgError> {
    let n: i64 = client
        .query_one("SELECT count(*) FROM pictures WHERE day = $1", &[&day])
        .map_err(super::connect::statement_error)?
        .get(0);
    Ok(n as u64)
}

/// Drops the pictures of `day` (retention), its whole partition.
pub fn drop_day(client: &mut impl GenericClient, day: i32) -> Result<(), PgError> {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", table(day)))
        .map_err(super::connect::statement_error)
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

/// Seals every picture (and every held copy) again under `to`, taking
/// each from `from` (`None`: a store without a data key, whose pictures
/// are as given): `keys encrypt` and `keys rotate` on a store in
/// PostgreSQL. A picture already under `to` is left, so an interrupted
/// run is finished by running it again. `progress` is told (done,
/// total). Returns the pictures sealed anew.
pub fn reseal(
    client: &mut postgres::Client,
    from: Option<&PictureKey>,
    to: &PictureKey,
    to_id: &crate::at_rest::KeyId,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, PgError> {
    const BATCH: i64 = 500;
    let q = super::connect::statement_error;
    let total: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM pictures) + (SELECT count(*) FROM held_pictures)",
            &[],
        )
        .map_err(q)?
        .get(0);
    let (mut done, mut changed) = (0u64, 0u64);
    let open = |sha: &[u8; 32], stored: Vec<u8>| -> Result<Vec<u8>, PgError> {
        let bad = |e: crate::at_rest::PictureError| {
            PgError::Query(format!("picture {}: {e}", hex::encode(sha)))
        };
        match from {
            Some(key) => key.open(sha, stored).map_err(bad),
            None if crate::at_rest::pictures::sealed_under(&stored).is_some() => {
                Err(bad(crate::at_rest::PictureError::Tampered))
            }
            None => Ok(stored),
        }
    };
    // (table, key columns' condition after the last row, its order)
    for held in [false, true] {
        let mut after: (i32, Vec<u8>) = (i32::MIN, Vec::new());
        loop {
            let rows = if held {
                client.query(
                    "SELECT 0, sha256, sealed FROM held_pictures WHERE sha256 > $1
                     ORDER BY sha256 LIMIT $2",
                    &[&after.1, &BATCH],
                )
            } else {
                client.query(
                    "SELECT day, sha256, sealed FROM pictures WHERE (day, sha256) > ($1, $2)
                     ORDER BY day, sha256 LIMIT $3",
                    &[&after.0, &after.1, &BATCH],
                )
            }
            .map_err(q)?;
            let mut tx = client.transaction().map_err(q)?;
            for r in &rows {
                let (day, sha_v, stored): (i32, Vec<u8>, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
                done += 1;
                after = (day, sha_v.clone());
                if crate::at_rest::pictures::sealed_under(&stored).as_ref() == Some(to_id) {
                    continue;
                }
                let sha: [u8; 32] = sha_v
                    .as_slice()
                    .try_into()
                    .map_err(|_| PgError::Query("a picture's name is not a SHA-256".into()))?;
                let sealed = to
                    .seal(&sha, &open(&sha, stored)?)
                    .map_err(|e| PgError::Query(format!("sealing a picture: {e}")))?;
                if held {
                    tx.execute(
                        "UPDATE held_pictures SET sealed = $2 WHERE sha256 = $1",
                        &[&sha_v, &sealed],
                    )
                } else {
                    tx.execute(
                        "UPDATE pictures SET sealed = $3 WHERE day = $1 AND sha256 = $2",
                        &[&day, &sha_v, &sealed],
                    )
                }
                .map_err(q)?;
                changed += 1;
            }
            tx.commit().map_err(q)?;
            progress(done, total.max(0) as u64);
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
    }
    Ok(changed)
}
