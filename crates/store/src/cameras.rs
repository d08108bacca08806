//! Registered cameras and their API keys (SPEC R1.1, R1.5).
//!
//! A key is shown once, at registration; only its SHA-256 is stored. Keys
//! are 256 random bits, so a fast hash is enough (a slow password hash
//! would cost every ingest request for no gain).

use std::collections::HashMap;
use std::sync::Arc;

use platekeeper_core::GeoPoint;
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

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
}

impl Camera {
    /// The position stored rows fall back to (fixed cameras only).
    pub fn home_micro(&self) -> Option<(i32, i32)> {
        match self.kind {
            CameraKind::Fixed => self.position.map(GeoPoint::to_micro),
            CameraKind::Mobile => None,
        }
    }
}

/// Camera number → (id, fixed position in microdegrees): what turning a
/// stored row into a read needs.
pub(crate) type CameraMap = HashMap<u32, (String, Option<(i32, i32)>)>;

#[derive(Default)]
pub(crate) struct CameraRegistry {
    by_num: HashMap<u32, Camera>,
    by_id: HashMap<String, u32>,
    by_key: HashMap<[u8; 32], u32>,
    /// Shared with searches, so a search takes it without copying 500
    /// cameras; a registration copies it only while a search holds it.
    rows: Arc<CameraMap>,
}

fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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

impl CameraRegistry {
    pub(crate) fn load(conn: &Connection) -> Result<CameraRegistry, StoreError> {
        let mut reg = CameraRegistry::default();
        let mut stmt =
            conn.prepare("SELECT num, id, name, kind, lat, lon, key_hash FROM cameras")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(3)?;
            let lat: Option<i32> = r.get(4)?;
            let lon: Option<i32> = r.get(5)?;
            let hash: Vec<u8> = r.get(6)?;
            let cam = Camera {
                num: r.get(0)?,
                id: r.get(1)?,
                name: r.get(2)?,
                kind: CameraKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("camera kind {kind:?}")))?,
                position: lat.zip(lon).map(|(a, b)| GeoPoint::from_micro(a, b)),
            };
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("camera key hash length".into()))?;
            reg.insert(cam, hash);
        }
        Ok(reg)
    }

    fn insert(&mut self, cam: Camera, hash: [u8; 32]) {
        Arc::make_mut(&mut self.rows).insert(cam.num, (cam.id.clone(), cam.home_micro()));
        self.by_id.insert(cam.id.clone(), cam.num);
        self.by_key.insert(hash, cam.num);
        self.by_num.insert(cam.num, cam);
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
        check_id(&new.id)?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(StoreError::InvalidCamera(
                "camera name must be 1 to 200 characters".into(),
            ));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| StoreError::InvalidCamera(format!("no randomness for a key: {e}")))?;
        let key = format!("pkc_{}", hex::encode(secret));
        let hash = key_hash(&key);
        let micro = new.position.map(GeoPoint::to_micro);
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
            let num = tx.last_insert_rowid();
            let e = crate::log::append(
                tx,
                head,
                crate::log::NewEntry {
                    ts_ms: now_ms,
                    category: "admin",
                    kind: "camera_registered".into(),
                    username: actor.username.clone(),
                    affiliation: actor.affiliation.clone(),
                    role: actor.role.clone(),
                    client: actor.client.clone(),
                    details: serde_json::json!({"camera": new.id, "name": name, "kind": new.kind.as_str()}),
                    purpose: None,
                },
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
        };
        cams.insert(cam.clone(), hash);
        Ok((cam, key))
    }

    /// The camera holding this API key, if any.
    pub fn authenticate_camera(&self, key: &str) -> Option<Camera> {
        let cams = self.cameras.read().ok()?;
        let num = cams.by_key.get(&key_hash(key.trim()))?;
        cams.by_num.get(num).cloned()
    }

    pub fn camera(&self, id: &str) -> Option<Camera> {
        let cams = self.cameras.read().ok()?;
        cams.by_id.get(id).and_then(|n| cams.by_num.get(n)).cloned()
    }

    pub fn cameras(&self) -> Vec<Camera> {
        let mut all: Vec<Camera> = self
            .cameras
            .read()
            .map(|c| c.by_num.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|c| c.num);
        all
    }
}
