//! Registered cameras and their API keys (SPEC R1.1, R1.5).
//!
//! A key is shown once, at registration; only its SHA-256 is stored. Keys
//! are 256 random bits, so a fast hash is enough (a slow password hash
//! would cost every ingest request for no gain).

use std::collections::HashMap;
use std::sync::Arc;

use platekeeper_core::GeoPoint;
use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::sql::Sql;
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraKind {
    Fixed,
    Mobile,
}

impl CameraKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraKind::Fixed => "fixed",
            CameraKind::Mobile => "mobile",
        }
    }

    pub fn parse(s: &str) -> Option<CameraKind> {
        match s {
            "fixed" => Some(CameraKind::Fixed),
            "mobile" => Some(CameraKind::Mobile),
            _ => None,
        }
    }
}

/// What an administrator registers.
#[derive(Debug, Clone)]
pub struct NewCamera {
    pub id: String,
    pub name: String,
    pub kind: CameraKind,
    /// A fixed camera's mounting point. Reads from a fixed camera that
    /// carry no position (or exactly this one) are placed here.
    pub position: Option<GeoPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    /// The internal number stored in each read row.
    pub num: u32,
    pub id: String,
    pub name: String,
    pub kind: CameraKind,
    pub position: Option<GeoPoint>,
    /// When its keys were revoked (no key of it is accepted since).
    pub revoked_at_ms: Option<i64>,
    /// Until when the key it had before its last rotation is still
    /// accepted (the grace period the administrator set).
    pub old_key_until_ms: Option<i64>,
}

/// The longest grace period a rotated key may keep working: a week covers
/// a camera in a car that is out of service over a long weekend.
pub const MAX_ROTATION_GRACE_MS: i64 = 7 * 86_400_000;

/// Columns added after the first release (issue 22 finding 8): the key a
/// rotation replaced, until when it still works, and when the camera was
/// revoked.
pub(crate) fn migrate(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    let mut have = Vec::new();
    let mut stmt = conn.prepare("PRAGMA table_info(cameras)")?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        have.push(r.get::<_, String>(1)?);
    }
    for (col, ty) in [
        ("old_key_hash", "BLOB"),
        ("old_key_until", "INTEGER"),
        ("revoked_at", "INTEGER"),
    ] {
        if !have.iter().any(|c| c == col) {
            conn.execute_batch(&format!("ALTER TABLE cameras ADD COLUMN {col} {ty}"))?;
        }
    }
    Ok(())
}

impl Camera {
    /// The position stored rows fall back to (fixed cameras only).
    pub fn home_micro(&self) -> Option<(i32, i32)> {
        home_micro(self.kind, self.position)
    }
}

/// The position a camera's stored reads fall back to, in microdegrees:
/// a fixed camera's own; none for a mobile one.
pub fn home_micro(kind: CameraKind, position: Option<GeoPoint>) -> Option<(i32, i32)> {
    match kind {
        CameraKind::Fixed => position.map(GeoPoint::to_micro),
        CameraKind::Mobile => None,
    }
}

/// Camera number → (id, fixed position in microdegrees): what turning a
/// stored row into a read needs.
pub(crate) type CameraMap = HashMap<u32, (String, Option<(i32, i32)>)>;

#[derive(Default)]
pub(crate) struct CameraRegistry {
    by_num: HashMap<u32, Camera>,
    by_id: HashMap<String, u32>,
    /// Current keys of cameras that are not revoked.
    by_key: HashMap<[u8; 32], u32>,
    /// Keys replaced by a rotation, with the end of their grace period.
    old_keys: HashMap<[u8; 32], (u32, i64)>,
    /// Shared with searches, so a search takes it without copying 500
    /// cameras; a registration copies it only while a search holds it.
    rows: Arc<CameraMap>,
}

pub(crate) fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new camera key (256 random bits) and its hash.
pub(crate) fn new_key() -> Result<(String, [u8; 32]), StoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| StoreError::InvalidCamera(format!("no randomness for a key: {e}")))?;
    let key = format!("pkc_{}", hex::encode(secret));
    let hash = key_hash(&key);
    Ok((key, hash))
}

fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidCamera(format!(
            "camera id {id:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The rules every backend applies to a new camera: its id, and its name
/// (returned trimmed).
pub(crate) fn check_new(new: &NewCamera) -> Result<String, StoreError> {
    check_id(&new.id)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(StoreError::InvalidCamera(
            "camera name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// A camera's new name (trimmed), or why it is refused.
pub(crate) fn check_rename(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidCamera(
            "camera name must be 1 to 200 characters, without control characters".into(),
        ));
    }
    Ok(name)
}

pub(crate) fn check_grace(grace_ms: i64) -> Result<(), StoreError> {
    if !(0..=MAX_ROTATION_GRACE_MS).contains(&grace_ms) {
        return Err(StoreError::InvalidCamera(format!(
            "the grace period must be 0 to {} minutes",
            MAX_ROTATION_GRACE_MS / 60_000
        )));
    }
    Ok(())
}

/// Why a camera's keys are revoked (trimmed), or why that is refused.
pub(crate) fn check_revoke_reason(reason: &str) -> Result<&str, StoreError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(StoreError::InvalidCamera(
            "reason must say why the camera's keys are revoked (1 to 500 characters)".into(),
        ));
    }
    Ok(reason)
}

/// The log entries of camera changes, the same on both backends.
pub(crate) mod entries {
    use crate::log::NewEntry;
    use crate::Actor;

    pub(crate) fn registered(
        actor: &Actor,
        now_ms: i64,
        id: &str,
        name: &str,
        kind: &str,
    ) -> NewEntry {
        actor.entry(
            now_ms,
            "admin",
            "camera_registered",
            serde_json::json!({"camera": id, "name": name, "kind": kind}),
        )
    }

    pub(crate) fn key_rotated(
        actor: &Actor,
        now_ms: i64,
        id: &str,
        was_revoked: bool,
        until: Option<i64>,
    ) -> NewEntry {
        actor.entry(
            now_ms,
            "admin",
            "camera_key_rotated",
            serde_json::json!({
                "camera": id, "was_revoked": was_revoked,
                "old_key_valid_until": until.map(platekeeper_core::read::format_time_ms),
            }),
        )
    }

    pub(crate) fn revoked(actor: &Actor, now_ms: i64, id: &str, reason: &str) -> NewEntry {
        actor.entry(
            now_ms,
            "admin",
            "camera_revoked",
            serde_json::json!({"camera": id, "reason": reason}),
        )
    }

    pub(crate) fn renamed(actor: &Actor, now_ms: i64, id: &str, old: &str, name: &str) -> NewEntry {
        actor.entry(
            now_ms,
            "admin",
            "camera_renamed",
            serde_json::json!({"camera": id, "old_name": old, "name": name}),
        )
    }
}

impl CameraRegistry {
    pub(crate) fn load(conn: &dyn Sql) -> Result<CameraRegistry, StoreError> {
        let mut reg = CameraRegistry::default();
        let mut stmt = conn.prepare(
            "SELECT num, id, name, kind, lat, lon, key_hash, old_key_hash, old_key_until, revoked_at FROM cameras",
        )?;
        let mut rows = stmt.query(())?;
        let hash_of = |v: Vec<u8>| -> Result<[u8; 32], StoreError> {
            v.try_into()
                .map_err(|_| StoreError::Corrupt("camera key hash length".into()))
        };
        while let Some(r) = rows.next()? {
            let kind: String = r.get(3)?;
            let lat: Option<i32> = r.get(4)?;
            let lon: Option<i32> = r.get(5)?;
            let cam = Camera {
                num: r.get(0)?,
                id: r.get(1)?,
                name: r.get(2)?,
                kind: CameraKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("camera kind {kind:?}")))?,
                position: lat.zip(lon).map(|(a, b)| GeoPoint::from_micro(a, b)),
                old_key_until_ms: r.get(8)?,
                revoked_at_ms: r.get(9)?,
            };
            let hash = hash_of(r.get(6)?)?;
            let old = r.get::<_, Option<Vec<u8>>>(7)?.map(hash_of).transpose()?;
            reg.insert(cam, hash, old);
        }
        Ok(reg)
    }

    fn insert(&mut self, cam: Camera, hash: [u8; 32], old: Option<[u8; 32]>) {
        Arc::make_mut(&mut self.rows).insert(cam.num, (cam.id.clone(), cam.home_micro()));
        self.by_id.insert(cam.id.clone(), cam.num);
        self.by_key.retain(|_, n| *n != cam.num);
        self.old_keys.retain(|_, (n, _)| *n != cam.num);
        if cam.revoked_at_ms.is_none() {
            self.by_key.insert(hash, cam.num);
            if let (Some(old), Some(until)) = (old, cam.old_key_until_ms) {
                self.old_keys.insert(old, (cam.num, until));
            }
        }
        self.by_num.insert(cam.num, cam);
    }

    /// The hash of camera `num`'s current key (none while it is revoked).
    fn current_key(&self, num: u32) -> Option<[u8; 32]> {
        self.by_key
            .iter()
            .find(|(_, n)| **n == num)
            .map(|(h, _)| *h)
    }

    pub(crate) fn get(&self, num: u32) -> Option<&Camera> {
        self.by_num.get(&num)
    }

    pub(crate) fn rows(&self) -> Arc<CameraMap> {
        Arc::clone(&self.rows)
    }

    pub(crate) fn num_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }
}

impl Store {
    /// Registers a camera and returns it with its API key, which is not
    /// stored and cannot be shown again.
    pub fn create_camera(
        &self,
        new: NewCamera,
        actor: &crate::Actor,
        now_ms: i64,
    ) -> Result<(Camera, String), StoreError> {
        let name = check_new(&new)?;
        let name = name.as_str();
        let (key, hash) = new_key()?;
        let micro = new.position.map(GeoPoint::to_micro);
        // Another node's change first (a rotation there must not be
        // undone from this node's older copy).
        self.refresh_stale();
        let mut cams = self.cameras.write().map_err(|_| StoreError::Poisoned)?;
        if cams.by_id.contains_key(&new.id) {
            return Err(StoreError::CameraExists(new.id));
        }
        let (num, _) = self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO cameras(id, name, kind, lat, lon, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    new.id,
                    name,
                    new.kind.as_str(),
                    micro.map(|m| m.0),
                    micro.map(|m| m.1),
                    &hash[..],
                    now_ms
                ],
            )?;
            let num = tx.last_insert_rowid()?;
            let e = crate::log::append(
                tx,
                head,
                entries::registered(actor, now_ms, &new.id, name, new.kind.as_str()),
            )?;
            Ok((num, e))
        })?;
        if num > crate::partition::MAX_CAMERA_NUM as i64 {
            return Err(StoreError::InvalidCamera(format!(
                "this store holds at most {} cameras",
                crate::partition::MAX_CAMERA_NUM
            )));
        }
        let cam = Camera {
            num: num as u32,
            id: new.id,
            name: name.to_string(),
            kind: new.kind,
            // Stored at microdegree precision; keep the same value here so
            // "equal to the camera's position" compares like with like.
            position: micro.map(|(a, b)| GeoPoint::from_micro(a, b)),
            revoked_at_ms: None,
            old_key_until_ms: None,
        };
        cams.insert(cam.clone(), hash, None);
        Ok((cam, key))
    }

    /// The camera holding this API key at `now_ms`, if any: its current
    /// key, or the key its last rotation replaced while the grace period
    /// lasts. A revoked camera's keys match nothing.
    pub fn authenticate_camera(&self, key: &str, now_ms: i64) -> Option<Camera> {
        self.refresh_stale();
        let cams = self.cameras.read().ok()?;
        let hash = key_hash(key.trim());
        let num = match cams.by_key.get(&hash) {
            Some(n) => *n,
            None => match cams.old_keys.get(&hash) {
                Some((n, until)) if now_ms < *until => *n,
                _ => return None,
            },
        };
        cams.by_num.get(&num).cloned()
    }

    /// Gives camera `id` a new key (shown once, as at registration). The
    /// key it had keeps working for `grace_ms` (0: stops at once), so a
    /// camera can be re-keyed without losing reads in between; a key that
    /// an earlier rotation left in its grace period stops now. Rotating a
    /// revoked camera brings it back with the new key only.
    pub fn rotate_camera_key(
        &self,
        id: &str,
        grace_ms: i64,
        actor: &crate::Actor,
        now_ms: i64,
    ) -> Result<(Camera, String), StoreError> {
        check_grace(grace_ms)?;
        let (key, hash) = new_key()?;
        // Another node's change first (a rotation there must not be
        // undone from this node's older copy).
        self.refresh_stale();
        let mut cams = self.cameras.write().map_err(|_| StoreError::Poisoned)?;
        let num = cams
            .num_of(id)
            .ok_or_else(|| StoreError::UnknownCamera(id.to_string()))?;
        let mut cam = cams.by_num[&num].clone();
        let current = cams.current_key(num);
        // A revoked camera's old key is not brought back by a rotation.
        let old = current.filter(|_| grace_ms > 0 && cam.revoked_at_ms.is_none());
        let until = old.map(|_| now_ms + grace_ms);
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE cameras SET key_hash = ?2, old_key_hash = ?3, old_key_until = ?4, revoked_at = NULL WHERE num = ?1",
                params![num, &hash[..], old.as_ref().map(|h| &h[..]), until],
            )?;
            crate::log::append(
                tx,
                head,
                entries::key_rotated(actor, now_ms, id, cam.revoked_at_ms.is_some(), until),
            )
        })?;
        cam.revoked_at_ms = None;
        cam.old_key_until_ms = until;
        cams.insert(cam.clone(), hash, old);
        Ok((cam, key))
    }

    /// Revokes every key of camera `id` at once (a stolen camera, a
    /// leaked key): its requests get 401 from now on. Its reads stay. A
    /// rotation issues it a new key.
    pub fn revoke_camera(
        &self,
        id: &str,
        reason: &str,
        actor: &crate::Actor,
        now_ms: i64,
    ) -> Result<Camera, StoreError> {
        let reason = check_revoke_reason(reason)?;
        // Another node's change first (a rotation there must not be
        // undone from this node's older copy).
        self.refresh_stale();
        let mut cams = self.cameras.write().map_err(|_| StoreError::Poisoned)?;
        let num = cams
            .num_of(id)
            .ok_or_else(|| StoreError::UnknownCamera(id.to_string()))?;
        let mut cam = cams.by_num[&num].clone();
        if cam.revoked_at_ms.is_some() {
            return Err(StoreError::InvalidCamera(format!(
                "camera {id:?} is already revoked; rotate its key to bring it back"
            )));
        }
        let hash = cams
            .current_key(num)
            .ok_or_else(|| StoreError::Corrupt(format!("camera {id:?} has no key")))?;
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE cameras SET revoked_at = ?2, old_key_hash = NULL, old_key_until = NULL WHERE num = ?1",
                params![num, now_ms],
            )?;
            crate::log::append(
                tx,
                head,
                entries::revoked(actor, now_ms, id, reason),
            )
        })?;
        cam.revoked_at_ms = Some(now_ms);
        cam.old_key_until_ms = None;
        cams.insert(cam.clone(), hash, None);
        Ok(cam)
    }

    /// Gives camera `id` a new name (a site renamed, a typo). Only the
    /// name: a fixed camera's reads take their place from its position,
    /// so moving it would move every read it ever made; a camera moved
    /// is registered again under a new id. Logged with both names.
    pub fn rename_camera(
        &self,
        id: &str,
        name: &str,
        actor: &crate::Actor,
        now_ms: i64,
    ) -> Result<Camera, StoreError> {
        let name = check_rename(name)?;
        // Another node's change first (a rotation there must not be
        // undone from this node's older copy).
        self.refresh_stale();
        let mut cams = self.cameras.write().map_err(|_| StoreError::Poisoned)?;
        let num = cams
            .num_of(id)
            .ok_or_else(|| StoreError::UnknownCamera(id.to_string()))?;
        let mut cam = cams.by_num[&num].clone();
        if cam.name == name {
            return Ok(cam);
        }
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE cameras SET name = ?2 WHERE num = ?1",
                params![num, name],
            )?;
            crate::log::append(
                tx,
                head,
                entries::renamed(actor, now_ms, id, &cam.name, name),
            )
        })?;
        cam.name = name.to_string();
        // The keys stay as they are: only the name changed.
        if let Some(c) = cams.by_num.get_mut(&num) {
            c.name = cam.name.clone();
        }
        Ok(cam)
    }

    pub fn camera(&self, id: &str) -> Option<Camera> {
        self.refresh_stale();
        let cams = self.cameras.read().ok()?;
        cams.by_id.get(id).and_then(|n| cams.by_num.get(n)).cloned()
    }

    pub fn cameras(&self) -> Vec<Camera> {
        self.refresh_stale();
        let mut all: Vec<Camera> = self
            .cameras
            .read()
            .map(|c| c.by_num.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|c| c.num);
        all
    }
}
