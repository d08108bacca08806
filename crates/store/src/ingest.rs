//! Storing a batch of validated reads (SPEC R1.1, R1.3).
//!
//! A batch's reads for one day are one transaction in that day's file,
//! acknowledged only after the commit has reached the disk; a crash
//! before that leaves none of them visible. A batch spanning midnight
//! commits day by day: if the process dies between, the camera gets no
//! acknowledgement, re-sends, and the reads already stored come back as
//! duplicates — never twice. Images are written (and synced) first, so a
//! committed row never names a missing file; a crash in between leaves at
//! most an unreferenced image, which retention sweeps.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use platekeeper_core::NewRead;
use rusqlite::params;

use crate::canvass_index;
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
    /// Every slot of its millisecond is taken (16 reads in one
    /// millisecond of one day); nothing was stored, send it again.
    MillisecondFull,
    /// Its day is past retention and was already purged.
    PastRetention,
}

/// A row ready to insert.
struct Row {
    day: i32,
    base: i64,
    meta: i64,
    pos: Option<i64>,
    plate_image: Option<ImageRef>,
    vehicle_image: Option<ImageRef>,
}

impl Store {
    /// Stores a batch; returns one status per item, in order. Reads must
    /// already have passed `RawRead::validate`; the camera must exist.
    pub fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestStatus>, StoreError> {
        self.refresh_stale();
        if self.on_postgres() {
            return self.pg_ingest(items);
        }
        let rows = self.prepare_rows(items)?;
        let mut by_day: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            by_day.entry(row.day).or_default().push(i);
        }
        let mut statuses = vec![IngestStatus::Accepted; items.len()];
        let purged_before = self.purged_before.load(Ordering::SeqCst);
        for (day, indexes) in by_day {
            if day < purged_before {
                for i in indexes {
                    statuses[i] = IngestStatus::PastRetention;
                }
                continue;
            }
            let file = self.day_file(day)?;
            let newest = self.newest_day.fetch_max(day, Ordering::Relaxed).max(day);
            {
                let mut guard = file.writer()?;
                let conn = guard.as_mut().ok_or(StoreError::Poisoned)?;
                let tx = conn.transaction()?;
                let mut added = Vec::with_capacity(indexes.len());
                for &i in &indexes {
                    let (status, rowid) = insert(&tx, &items[i].read, &rows[i])?;
                    statuses[i] = status;
                    if let Some(rowid) = rowid {
                        let group = canvass_index::group_of(rows[i].meta, rows[i].pos);
                        added.push((items[i].read.plate.code(), rowid, group));
                    }
                }
                file.index_late_rows(&tx, &added)?;
                tx.commit()?;
                file.index_rows(&added)?;
            }
            // Late uploads for old days are rare: free their writer's
            // cache instead of holding one per day.
            if day < newest - 1 {
                file.release_writer();
            }
            // The commit is durable; now make the reads findable.
            let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
            for &i in &indexes {
                if statuses[i] == IngestStatus::Accepted {
                    dict.observe(&items[i].read.plate, day);
                }
            }
        }
        Ok(statuses)
    }

    /// Works out each row's place and packed fields, and stores the
    /// images, before any write lock is taken.
    fn prepare_rows(&self, items: &[IngestItem]) -> Result<Vec<Row>, StoreError> {
        let cams = self.cameras.read().map_err(|_| StoreError::Poisoned)?;
        items
            .iter()
            .map(|item| {
                let cam = camera_of(&cams, item)?;
                let r = &item.read;
                let pos = partition::stored_pos(r, cam.home_micro())
                    .ok_or_else(|| unplaced(item, cam))?;
                let day = partition::day_of(r.ts_ms);
                let image = |img: &Option<(platekeeper_core::ImageKind, Vec<u8>)>| {
                    self.put_picture(day, img)
                };
                Ok(Row {
                    day,
                    base: partition::rowid_base(r.ts_ms),
                    meta: partition::pack_meta(
                        item.camera,
                        r.confidence,
                        r.region.map(|g| g.code()),
                        r.heading,
                    ),
                    pos,
                    plate_image: image(&r.plate_image)?,
                    vehicle_image: image(&r.vehicle_image)?,
                })
            })
            .collect()
    }
}

/// The camera a read came from (registered, or the batch is refused).
pub(crate) fn camera_of<'a>(
    cams: &'a crate::cameras::CameraRegistry,
    item: &IngestItem,
) -> Result<&'a crate::Camera, StoreError> {
    cams.get(item.camera)
        .ok_or_else(|| StoreError::UnknownCamera(item.camera.to_string()))
}

/// A read with no position of its own from a camera with none.
pub(crate) fn unplaced(item: &IngestItem, cam: &crate::Camera) -> StoreError {
    StoreError::InvalidCamera(format!(
        "read {} has no position and camera {} has none registered",
        item.read.id, cam.id
    ))
}

impl Store {
    /// Stores one of a read's pictures, if it has it, with the read's day.
    pub(crate) fn put_picture(
        &self,
        day: i32,
        picture: &Option<(platekeeper_core::ImageKind, Vec<u8>)>,
    ) -> Result<Option<crate::images::ImageRef>, StoreError> {
        picture
            .as_ref()
            .map(|(kind, bytes)| self.images.put(day, *kind, bytes))
            .transpose()
    }
}

/// Inserts one read unless it is already there. A re-sent read carries
/// the same time, so it can only be among the rows of its millisecond.
/// Returns the outcome and, when stored, the row's id.
fn insert(
    tx: &rusqlite::Connection,
    read: &NewRead,
    row: &Row,
) -> Result<(IngestStatus, Option<i64>), StoreError> {
    let id = read.id.as_bytes();
    let mut next = row.base;
    {
        let mut stmt =
            tx.prepare_cached("SELECT rid, id FROM reads WHERE rid BETWEEN ?1 AND ?2")?;
        let mut rows = stmt.query(params![row.base, row.base + SEQ_PER_MS - 1])?;
        while let Some(r) = rows.next()? {
            if r.get_ref(1)?.as_blob()? == id {
                return Ok((IngestStatus::Duplicate, None));
            }
            next = next.max(r.get::<_, i64>(0)? + 1);
        }
    }
    if next >= row.base + SEQ_PER_MS {
        return Ok((IngestStatus::MillisecondFull, None));
    }
    tx.prepare_cached("INSERT INTO reads(rid, plate, meta, pos, id) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![next, read.plate.code(), row.meta, row.pos, &id[..]])?;
    if row.plate_image.is_some() || row.vehicle_image.is_some() {
        tx.prepare_cached(
            "INSERT INTO images(rid, plate_sha, plate_kind, vehicle_sha, vehicle_kind)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            next,
            row.plate_image.map(|i| i.sha256.to_vec()),
            row.plate_image.map(|i| i.kind_code()),
            row.vehicle_image.map(|i| i.sha256.to_vec()),
            row.vehicle_image.map(|i| i.kind_code()),
        ])?;
    }
    Ok((IngestStatus::Accepted, Some(next)))
}
