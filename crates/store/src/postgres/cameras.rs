//! Cameras in PostgreSQL: the same rules and log entries as the embedded
//! store (`crate::cameras`), each change committed with its log entry in
//! one transaction. A camera's key is looked up in the database on each
//! request rather than in a node's memory, so a revocation made on one
//! node stops the camera on every node at once.

use platekeeper_core::GeoPoint;
use postgres::error::SqlState;
use postgres::GenericClient;

use crate::cameras::{self, entries, Camera, CameraKind, NewCamera};
use crate::{Actor, StoreError};

fn db(e: postgres::Error) -> StoreError {
    StoreError::Postgres(super::connect::statement_error(e))
}

const COLUMNS: &str = "num, id, name, kind, lat, lon, revoked_at, old_key_until";

fn row_camera(r: &postgres::Row) -> Result<Camera, StoreError> {
    let kind: String = r.get(3);
    let lat: Option<i32> = r.get(4);
    let lon: Option<i32> = r.get(5);
    Ok(Camera {
        num: r.get::<_, i32>(0) as u32,
        id: r.get(1),
        name: r.get(2),
        kind: CameraKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("camera kind {kind:?}")))?,
        position: lat.zip(lon).map(|(a, b)| GeoPoint::from_micro(a, b)),
        revoked_at_ms: r.get(6),
        old_key_until_ms: r.get(7),
    })
}

/// Registers a camera; returns it with its API key, which is not stored
/// and cannot be shown again.
pub fn create(
    client: &mut postgres::Client,
    new: NewCamera,
    actor: &Actor,
    now_ms: i64,
) -> Result<(Camera, String), StoreError> {
    let name = cameras::check_new(&new)?;
    let (key, hash) = cameras::new_key()?;
    let micro = new.position.map(GeoPoint::to_micro);
    let mut tx = client.transaction().map_err(db)?;
    let inserted = tx.query_one(
        &format!(
            "INSERT INTO cameras(id, name, kind, lat, lon, key_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ),
        &[
            &new.id,
            &name,
            &new.kind.as_str(),
            &micro.map(|m| m.0),
            &micro.map(|m| m.1),
            &&hash[..],
            &now_ms,
        ],
    );
    let row = match inserted {
        Ok(r) => r,
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::CameraExists(new.id))
        }
        Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
            return Err(StoreError::InvalidCamera(format!(
                "this store holds at most {} cameras",
                crate::partition::MAX_CAMERA_NUM
            )))
        }
        Err(e) => return Err(db(e)),
    };
    super::log::append(
        &mut tx,
        entries::registered(actor, now_ms, &new.id, &name, new.kind.as_str()),
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok((row_camera(&row)?, key))
}

/// The camera holding this API key at `now_ms`: its current key, or the
/// key its last rotation replaced while the grace period lasts; a
/// revoked camera's keys match nothing.
pub fn authenticate(
    client: &mut impl GenericClient,
    key: &str,
    now_ms: i64,
) -> Result<Option<Camera>, StoreError> {
    let hash = cameras::key_hash(key.trim());
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM cameras WHERE revoked_at IS NULL
                 AND (key_hash = $1 OR (old_key_hash = $1 AND old_key_until > $2))"
            ),
            &[&&hash[..], &now_ms],
        )
        .map_err(db)?;
    row.as_ref().map(row_camera).transpose()
}

/// Every camera, by number.
pub fn all(client: &mut impl GenericClient) -> Result<Vec<Camera>, StoreError> {
    client
        .query(&format!("SELECT {COLUMNS} FROM cameras ORDER BY num"), &[])
        .map_err(db)?
        .iter()
        .map(row_camera)
        .collect()
}

/// The camera `id`, locked for a change in `tx`.
fn locked(tx: &mut postgres::Transaction<'_>, id: &str) -> Result<(Camera, Vec<u8>), StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS}, key_hash FROM cameras WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .map_err(db)?
        .ok_or_else(|| StoreError::UnknownCamera(id.to_string()))?;
    Ok((row_camera(&row)?, row.get(8)))
}

/// Gives camera `id` a new key (shown once); the old one keeps working
/// for `grace_ms` unless the camera was revoked (rules as
/// `Store::rotate_camera_key`).
pub fn rotate_key(
    client: &mut postgres::Client,
    id: &str,
    grace_ms: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<(Camera, String), StoreError> {
    cameras::check_grace(grace_ms)?;
    let (key, hash) = cameras::new_key()?;
    let mut tx = client.transaction().map_err(db)?;
    let (mut cam, current) = locked(&mut tx, id)?;
    let old = Some(current).filter(|_| grace_ms > 0 && cam.revoked_at_ms.is_none());
    let until = old.as_ref().map(|_| now_ms + grace_ms);
    tx.execute(
        "UPDATE cameras SET key_hash = $2, old_key_hash = $3, old_key_until = $4, revoked_at = NULL WHERE id = $1",
        &[&id, &&hash[..], &old, &until],
    )
    .map_err(db)?;
    super::log::append(
        &mut tx,
        entries::key_rotated(actor, now_ms, id, cam.revoked_at_ms.is_some(), until),
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    cam.revoked_at_ms = None;
    cam.old_key_until_ms = until;
    Ok((cam, key))
}

/// Revokes every key of camera `id` at once, on every node.
pub fn revoke(
    client: &mut postgres::Client,
    id: &str,
    reason: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<Camera, StoreError> {
    let reason = cameras::check_revoke_reason(reason)?;
    let mut tx = client.transaction().map_err(db)?;
    let (mut cam, _) = locked(&mut tx, id)?;
    if cam.revoked_at_ms.is_some() {
        return Err(StoreError::InvalidCamera(format!(
            "camera {id:?} is already revoked; rotate its key to bring it back"
        )));
    }
    tx.execute(
        "UPDATE cameras SET revoked_at = $2, old_key_hash = NULL, old_key_until = NULL WHERE id = $1",
        &[&id, &now_ms],
    )
    .map_err(db)?;
    super::log::append(&mut tx, entries::revoked(actor, now_ms, id, reason)).map_err(db)?;
    tx.commit().map_err(db)?;
    cam.revoked_at_ms = Some(now_ms);
    cam.old_key_until_ms = None;
    Ok(cam)
}

/// Gives camera `id` a new name; only the name (see
/// `Store::rename_camera` for why).
pub fn rename(
    client: &mut postgres::Client,
    id: &str,
    name: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<Camera, StoreError> {
    let name = cameras::check_rename(name)?;
    let mut tx = client.transaction().map_err(db)?;
    let (mut cam, _) = locked(&mut tx, id)?;
    if cam.name == name {
        return Ok(cam);
    }
    tx.execute("UPDATE cameras SET name = $2 WHERE id = $1", &[&id, &name])
        .map_err(db)?;
    super::log::append(
        &mut tx,
        entries::renamed(actor, now_ms, id, &cam.name, name),
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    cam.name = name.to_string();
    Ok(cam)
}
