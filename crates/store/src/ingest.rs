//! Storing a batch of validated reads (SPEC R1.1, R1.3).
//!
//! One batch is one transaction: it is acknowledged only after the commit
//! has reached the disk, and a crash before that leaves none of it
//! visible. Images are written (and synced) first, so a committed row
//! never names a missing file; a crash in between leaves at most an
//! unreferenced image, which retention sweeps.

use platekeeper_core::NewRead;
use rusqlite::params;

use crate::images::ImageRef;
use crate::partition::{self, SEQ_PER_MS};
use crate::{Store, StoreError};

/// A read and the camera (by number) that sent it.
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub camera: u32,
    pub read: NewRead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestStatus {
    Accepted,
    /// A read with this id (at this time) is already stored.
    Duplicate,
}

struct Prepared<'a> {
    item: &'a IngestItem,
    day: i32,
    base: i64,
    lat: Option<i32>,
    lon: Option<i32>,
    plate_image: Option<ImageRef>,
    vehicle_image: Option<ImageRef>,
}

impl Store {
    /// Stores a batch; returns one status per item, in order. Reads must
    /// already have passed `RawRead::validate`; the camera must exist.
    pub fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestStatus>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = self.prepare_batch(items)?;
        let mut conn = self.writer()?;
        let known = self.partition_days();
        let mut new_days: Vec<i32> = Vec::new();
        let tx = conn.transaction()?;
        let mut statuses = Vec::with_capacity(items.len());
        for p in &prepared {
            if known.binary_search(&p.day).is_err() && !new_days.contains(&p.day) {
                partition::create(&tx, p.day)?;
                new_days.push(p.day);
            }
            let table = partition::table(p.day);
            let id = p.item.read.id.as_bytes();
            // A re-sent read carries the same time, so it can only be
            // among the rows of the same millisecond.
            let mut next = p.base;
            let mut duplicate = false;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT rowid, id FROM {table} WHERE rowid BETWEEN ?1 AND ?2"
                ))?;
                let mut rows = stmt.query(params![p.base, p.base + SEQ_PER_MS - 1])?;
                while let Some(row) = rows.next()? {
                    let rowid: i64 = row.get(0)?;
                    let existing = row.get_ref(1)?.as_blob()?;
                    if existing == id {
                        duplicate = true;
                        break;
                    }
                    next = next.max(rowid + 1);
                }
            }
            if duplicate {
                statuses.push(IngestStatus::Duplicate);
                continue;
            }
            if next >= p.base + SEQ_PER_MS {
                return Err(StoreError::MillisecondFull { day: p.day });
            }
            let r = &p.item.read;
            tx.prepare_cached(&format!(
                "INSERT INTO {table}(rowid, plate, cam, lat, lon, heading, conf, state, id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                next,
                r.plate.code(),
                p.item.camera,
                p.lat,
                p.lon,
                r.heading,
                r.confidence,
                r.region.map(|g| g.code()),
                &id[..]
            ])?;
            if p.plate_image.is_some() || p.vehicle_image.is_some() {
                tx.prepare_cached(&format!(
                    "INSERT INTO {}(rid, plate_sha, plate_kind, vehicle_sha, vehicle_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    partition::image_table(p.day)
                ))?
                .execute(params![
                    next,
                    p.plate_image.map(|i| i.sha256.to_vec()),
                    p.plate_image.map(|i| i.kind_code()),
                    p.vehicle_image.map(|i| i.sha256.to_vec()),
                    p.vehicle_image.map(|i| i.kind_code()),
                ])?;
            }
            statuses.push(IngestStatus::Accepted);
        }
        tx.commit()?;
        // The commit is durable; now make the reads findable.
        if !new_days.is_empty() {
            let mut parts = self.partitions.write().map_err(|_| StoreError::Poisoned)?;
            parts.extend(new_days.iter().copied());
        }
        let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
        for (p, s) in prepared.iter().zip(&statuses) {
            if *s == IngestStatus::Accepted {
                dict.observe(&p.item.read.plate, p.day);
            }
        }
        Ok(statuses)
    }

    /// Works out each row's place and stores the images, outside the
    /// writer lock.
    fn prepare_batch<'a>(&self, items: &'a [IngestItem]) -> Result<Vec<Prepared<'a>>, StoreError> {
        let cams = self.cameras.read().map_err(|_| StoreError::Poisoned)?;
        items
            .iter()
            .map(|item| {
                let cam = cams
                    .get(item.camera)
                    .ok_or_else(|| StoreError::UnknownCamera(item.camera.to_string()))?;
                let r = &item.read;
                // Positions equal to a fixed camera's own are stored as
                // NULL: most reads come from fixed cameras, and this keeps
                // 8 bytes out of each of their rows.
                let micro = r.position.map(|p| p.to_micro());
                let (lat, lon) = match (micro, cam.home_micro()) {
                    (Some(m), Some(home)) if m == home => (None, None),
                    (Some((a, b)), _) => (Some(a), Some(b)),
                    (None, Some(_)) => (None, None),
                    (None, None) => {
                        return Err(StoreError::InvalidCamera(format!(
                            "read {} has no position and camera {} has none registered",
                            r.id, cam.id
                        )))
                    }
                };
                let plate_image = match &r.plate_image {
                    Some((kind, bytes)) => Some(self.images.put(*kind, bytes)?),
                    None => None,
                };
                let vehicle_image = match &r.vehicle_image {
                    Some((kind, bytes)) => Some(self.images.put(*kind, bytes)?),
                    None => None,
                };
                Ok(Prepared {
                    item,
                    day: partition::day_of(r.ts_ms),
                    base: partition::rowid_base(r.ts_ms),
                    lat,
                    lon,
                    plate_image,
                    vehicle_image,
                })
            })
            .collect()
    }
}
