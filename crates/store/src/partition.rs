//! Day partitions: each UTC day's reads live in their own SQLite file,
//! `reads/YYYY-MM-DD.db`.
//!
//! Why one file per day: reads die by age (SPEC R6.1), so retention
//! deletes a file instead of deleting millions of rows while holding the
//! writer; a time window opens only the days it covers; and once a day is
//! over its file is compacted ([`DayFile::seal`]) without touching today's
//! writes, which is what brings a read to under 60 bytes on disk.
//!
//! Within a day, a read's rowid is `millisecond_of_day * 16 + seq`: rows
//! sit in time order even when a camera uploads late, a time window is a
//! rowid range, and the reads of one millisecond (where a re-sent read
//! must be) are a range of at most 16 rows. The largest rowid stays below
//! 2^31, so it takes 4 bytes in the plate index.
//!
//! Row layout (chosen for size; see docs/ARCHITECTURE.md):
//! `plate` the base-37 plate code (6 bytes); `meta` camera number,
//! confidence, state and heading packed in one integer; `pos` NULL where a
//! fixed camera's own position applies, else latitude and longitude in
//! microdegrees packed in one integer; `id` the 16-byte UUID.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use rusqlite::{params, Connection};

use crate::canvass_index;
use crate::dictionary::PlateDictionary;
use crate::open_index::OpenIndex;
use crate::pool::ReaderPool;
use crate::{schema, StoreError};

pub const DAY_MS: i64 = 86_400_000;
/// Reads one day can hold in one millisecond.
pub const SEQ_PER_MS: i64 = 16;
// The open-day index keeps rowids in u32, and the plate index stores them
// in 4 bytes: the largest rowid of a day must stay below 2^31.
const _: () = assert!((DAY_MS - 1) * SEQ_PER_MS + SEQ_PER_MS - 1 < 1 << 31);

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN: i32 = 2_440_588;

/// The UTC day (days since 1970-01-01) of a time in epoch milliseconds.
pub fn day_of(ts_ms: i64) -> i32 {
    ts_ms.div_euclid(DAY_MS) as i32
}

/// The first rowid of a millisecond.
pub fn rowid_base(ts_ms: i64) -> i64 {
    ts_ms.rem_euclid(DAY_MS) * SEQ_PER_MS
}

/// The time (epoch ms) a rowid in day `day` stands for.
pub fn rowid_time(day: i32, rowid: i64) -> i64 {
    day as i64 * DAY_MS + rowid / SEQ_PER_MS
}

/// Rowid bounds (inclusive) of the part of `[from_ms, to_ms]` inside `day`,
/// or `None` when they do not meet.
pub fn rowid_range(day: i32, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
    let start = day as i64 * DAY_MS;
    let end = start + DAY_MS - 1;
    let (lo, hi) = (from_ms.max(start), to_ms.min(end));
    (lo <= hi).then(|| (rowid_base(lo), rowid_base(hi) + SEQ_PER_MS - 1))
}

/// `YYYY-MM-DD.db` for a day.
pub fn file_name(day: i32) -> String {
    match time::Date::from_julian_day(day + UNIX_EPOCH_JULIAN) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}.db",
            d.year(),
            u8::from(d.month()),
            d.day()
        ),
        Err(_) => format!("day{day}.db"),
    }
}

/// The day a file name stands for.
pub fn parse_file_name(name: &str) -> Option<i32> {
    let stem = name.strip_suffix(".db")?;
    let mut parts = stem.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    (file_name(date.to_julian_day() - UNIX_EPOCH_JULIAN) == name)
        .then(|| date.to_julian_day() - UNIX_EPOCH_JULIAN)
}

const CAM_BITS: u32 = 20;
/// Bit mask of the camera number in `meta`.
pub(crate) const CAM_MASK: i64 = (1 << CAM_BITS) - 1;
pub(crate) const STATE_SHIFT: u32 = 27;
const CONF_SHIFT: u32 = 20;
const HEADING_SHIFT: u32 = 34;
/// Largest camera number a row can hold.
pub const MAX_CAMERA_NUM: u32 = CAM_MASK as u32;

/// Packs the small fields of a read: camera (20 bits), confidence + 1
/// (7 bits, 0 = none), state code (7 bits, 0 = none), heading + 1 (9 bits,
/// 0 = none). A fixed camera's read without heading fits in 4 bytes.
pub(crate) fn pack_meta(
    cam: u32,
    conf: Option<u8>,
    state: Option<u8>,
    heading: Option<u16>,
) -> i64 {
    (cam as i64 & CAM_MASK)
        | (conf.map_or(0, |c| c.min(100) as i64 + 1) << CONF_SHIFT)
        | (state.map_or(0, |s| (s & 0x7F) as i64) << STATE_SHIFT)
        | (heading.map_or(0, |h| (h % 360) as i64 + 1) << HEADING_SHIFT)
}

/// The inverse of [`pack_meta`].
pub(crate) fn unpack_meta(meta: i64) -> (u32, Option<u8>, Option<u8>, Option<u16>) {
    let conf = (meta >> CONF_SHIFT) & 0x7F;
    let state = (meta >> STATE_SHIFT) & 0x7F;
    let heading = (meta >> HEADING_SHIFT) & 0x1FF;
    (
        (meta & CAM_MASK) as u32,
        (conf > 0).then(|| (conf - 1) as u8),
        (state > 0).then_some(state as u8),
        (heading > 0).then(|| (heading - 1) as u16),
    )
}

const LON_BITS: u32 = 29;
/// Bit mask of the longitude in `pos`.
pub(crate) const LON_MASK: i64 = (1 << LON_BITS) - 1;

/// Packs microdegrees: (lat + 90°) in the high bits, (lon + 180°) in the
/// low 29.
pub(crate) fn pack_pos(lat: i32, lon: i32) -> i64 {
    ((lat as i64 + 90_000_000) << LON_BITS) | (lon as i64 + 180_000_000)
}

/// What a read's row holds for its position (both backends): `Some(None)`
/// where it is the fixed camera's own (most reads come from fixed
/// cameras, and this keeps 8 bytes out of each of their rows), `None`
/// where there is no position at all (refused).
pub(crate) fn stored_pos(
    read: &platekeeper_core::NewRead,
    home: Option<(i32, i32)>,
) -> Option<Option<i64>> {
    match (read.position.map(|p| p.to_micro()), home) {
        (Some(m), Some(home)) if m == home => Some(None),
        (Some((lat, lon)), _) => Some(Some(pack_pos(lat, lon))),
        (None, Some(_)) => Some(None),
        (None, None) => None,
    }
}

pub(crate) fn unpack_pos(pos: i64) -> (i32, i32) {
    (
        ((pos >> LON_BITS) - 90_000_000) as i32,
        ((pos & LON_MASK) - 180_000_000) as i32,
    )
}

/// SQL for a day file. `user_version` is [`SEALED`] once the day is
/// sealed; the plate index and the canvass table are filled from then on
/// (see [`crate::open_index`] for before). Version 1 marks a day sealed by
/// an older release, without the canvass table: it is sealed again.
/// `rid` is declared so VACUUM keeps it: it encodes the read's time.
const SEALED: i64 = 2;
const DAY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reads(
    rid INTEGER PRIMARY KEY,
    plate INTEGER NOT NULL,
    meta INTEGER NOT NULL,
    pos INTEGER,
    id BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS canvass(
    grp INTEGER PRIMARY KEY,
    slot_ms INTEGER NOT NULL,
    slots BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS images(
    rid INTEGER PRIMARY KEY,
    plate_sha BLOB,
    plate_kind INTEGER,
    vehicle_sha BLOB,
    vehicle_kind INTEGER
);
";

/// One day's database file.
pub(crate) struct DayFile {
    pub(crate) day: i32,
    path: PathBuf,
    /// Opened on first write; a day that is only read never opens one.
    writer: Mutex<Option<Connection>>,
    readers: ReaderPool,
    cipher: crate::at_rest::Cipher,
    /// The plate index while the day is open; `None` once sealed.
    open_index: RwLock<Option<OpenIndex>>,
    /// Sealed by this release: the canvass table is complete.
    canvass_ready: AtomicBool,
}

impl DayFile {
    /// Opens a day's file, creating it (and its tables) if needed.
    pub(crate) fn open(
        dir: &Path,
        day: i32,
        cipher: &crate::at_rest::Cipher,
    ) -> Result<DayFile, StoreError> {
        let path = dir.join(file_name(day));
        let conn = schema::open_connection(&path, schema::Role::Writer, cipher)?;
        conn.execute_batch(DAY_SCHEMA)?;
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
        let sealed = version >= 1;
        let open_index = if sealed {
            None
        } else {
            let mut ix = OpenIndex::default();
            let mut stmt = conn.prepare("SELECT rid, plate, meta, pos FROM reads")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                ix.add(
                    r.get(1)?,
                    r.get(0)?,
                    canvass_index::group_of(r.get(2)?, r.get(3)?),
                );
            }
            Some(ix)
        };
        // A sealed day is rarely written: keep no connection open for it
        // (a store may hold hundreds of days, each costing descriptors).
        let writer = if sealed { None } else { Some(conn) };
        let file = DayFile {
            day,
            readers: ReaderPool::new(path.clone(), cipher.clone()),
            cipher: cipher.clone(),
            path,
            writer: Mutex::new(writer),
            open_index: RwLock::new(open_index),
            canvass_ready: AtomicBool::new(version >= SEALED),
        };
        // One reader ready in the pool (within the global cap), so the
        // first search touching this day does not pay for opening it.
        drop(file.reader()?);
        Ok(file)
    }

    /// Closes the writing connection (and frees its page cache); the next
    /// write opens it again.
    pub(crate) fn release_writer(&self) {
        if let Ok(mut w) = self.writer.lock() {
            *w = None;
        }
    }

    /// Records rows just committed to an open day: (plate code, rowid,
    /// canvass group). Call while holding the writer, so a concurrent
    /// seal sees either none or all of them.
    pub(crate) fn index_rows(&self, rows: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let mut ix = self.open_index.write().map_err(|_| StoreError::Poisoned)?;
        if let Some(ix) = ix.as_mut() {
            for &(code, rowid, group) in rows {
                ix.add(code, rowid, group);
            }
        }
        Ok(())
    }

    /// Adds rows about to be committed to a sealed day to its canvass
    /// table, in the same transaction (an open day indexes them in memory
    /// after the commit instead). Call while holding the writer.
    pub(crate) fn index_late_rows(
        &self,
        tx: &Connection,
        rows: &[(i64, i64, i64)],
    ) -> Result<(), StoreError> {
        if !self.is_sealed() {
            return Ok(());
        }
        let groups: Vec<(i64, i64)> = rows.iter().map(|&(_, rowid, g)| (g, rowid)).collect();
        canvass_index::add(tx, &groups)
    }

    /// The rowid ranges within `[lo, hi]` that can hold reads of the
    /// canvass groups, newest first; `None` when the day must be scanned.
    pub(crate) fn canvass_ranges(
        &self,
        conn: &Connection,
        groups: &[i64],
        lo: i64,
        hi: i64,
    ) -> Result<Option<Vec<(i64, i64)>>, StoreError> {
        if let Some(ix) = self
            .open_index
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .as_ref()
        {
            let spans = ix.group_rowids(groups, lo, hi).into_iter().map(|r| (r, r));
            return Ok(Some(canvass_index::merge_newest_first(spans.collect())));
        }
        if self.canvass_ready.load(Ordering::Acquire) {
            return canvass_index::ranges(conn, groups, lo, hi).map(Some);
        }
        Ok(None)
    }

    /// For an open day, the plate's rowids in `[lo, hi]`, newest first;
    /// `None` when the day is sealed and SQLite's index is to be used.
    pub(crate) fn open_rowids(&self, code: i64, lo: i64, hi: i64) -> Option<Vec<i64>> {
        self.open_index
            .read()
            .ok()
            .and_then(|ix| ix.as_ref().map(|ix| ix.rowids(code, lo, hi)))
    }

    /// The writing connection, opened if it was closed.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Option<Connection>>, StoreError> {
        let mut guard = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        if guard.is_none() {
            *guard = Some(schema::open_connection(
                &self.path,
                schema::Role::Writer,
                &self.cipher,
            )?);
        }
        Ok(guard)
    }

    pub(crate) fn reader(&self) -> Result<crate::pool::PooledConnection<'_>, StoreError> {
        self.readers.get()
    }

    /// Bytes on disk (database and write-ahead log).
    pub(crate) fn bytes(&self) -> u64 {
        let wal = self.path.with_extension("db-wal");
        [&self.path, &wal]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.open_index
            .read()
            .map(|ix| ix.is_none())
            .unwrap_or(false)
    }

    /// Whether [`DayFile::seal`] has work to do: the day is open, or was
    /// sealed by a release without the canvass table.
    pub(crate) fn needs_sealing(&self) -> bool {
        !self.is_sealed() || !self.canvass_ready.load(Ordering::Acquire)
    }

    /// Seals a finished day: builds the plate index in one sorted pass and
    /// the canvass table in one scan ([`canvass_index::build`]), then VACUUM rewrites the file so every page is full (reads arrive
    /// slightly out of order, which leaves pages about 85% full). Only
    /// writes to this day wait meanwhile; searches keep using the
    /// in-memory index until the sealed file is ready, and today's ingest
    /// goes on in its own file.
    pub(crate) fn seal(&self) -> Result<(), StoreError> {
        let mut guard = self.writer()?;
        let conn = guard.as_ref().ok_or(StoreError::Poisoned)?;
        conn.execute_batch("CREATE INDEX IF NOT EXISTS reads_plate ON reads(plate)")?;
        canvass_index::build(conn)?;
        conn.execute_batch(&format!("VACUUM; PRAGMA user_version = {SEALED};"))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        *self.open_index.write().map_err(|_| StoreError::Poisoned)? = None;
        self.canvass_ready.store(true, Ordering::Release);
        // A finished day is rarely written again: free the writer's cache.
        *guard = None;
        Ok(())
    }

    /// Deletes the day's files (after the day left the store's map).
    /// Connections still open keep reading the unlinked file until they
    /// close.
    pub(crate) fn delete_files(&self) -> Result<(), StoreError> {
        if let Ok(mut w) = self.writer.lock() {
            *w = None;
        }
        for path in [
            self.path.clone(),
            self.path.with_extension("db-wal"),
            self.path.with_extension("db-shm"),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Forgets the day's pictures (their retention ended before the
    /// reads'); the folder is removed by the caller.
    pub(crate) fn clear_images(&self) -> Result<(), StoreError> {
        let mut guard = self.writer()?;
        let conn = guard.as_mut().ok_or(StoreError::Poisoned)?;
        conn.execute("DELETE FROM images", [])?;
        if self.is_sealed() {
            *guard = None;
        }
        Ok(())
    }

    /// Every picture the day's reads name.
    pub(crate) fn image_refs(&self) -> Result<Vec<crate::images::ImageRef>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare("SELECT plate_sha, plate_kind, vehicle_sha, vehicle_kind FROM images")?;
        let pairs = crate::collect_rows(&mut stmt, [], |r| {
            Ok(crate::images::ImageRef::pair_in_row(r, 0)?)
        })?;
        Ok(pairs.into_iter().flatten().flatten().collect())
    }

    /// Whether any of the day's reads carries plate `code`. An open day's
    /// in-memory index keeps a corrected read under its old plate, so
    /// each row it names is checked.
    pub(crate) fn has_plate(&self, code: i64) -> Result<bool, StoreError> {
        let conn = self.reader()?;
        match self.open_rowids(code, i64::MIN, i64::MAX) {
            Some(rowids) => {
                let mut stmt =
                    conn.prepare_cached("SELECT 1 FROM reads WHERE rid = ?1 AND plate = ?2")?;
                for rowid in rowids {
                    if stmt.exists(params![rowid, code])? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            None => Ok(conn
                .prepare_cached("SELECT 1 FROM reads WHERE plate = ?1")?
                .exists([code])?),
        }
    }

    /// Adds the day's distinct plates to the dictionary (an index-only
    /// scan once sealed).
    pub(crate) fn load_dictionary(&self, dict: &mut PlateDictionary) -> Result<(), StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare("SELECT DISTINCT plate FROM reads")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let code: i64 = row.get(0)?;
            let plate = platekeeper_core::Plate::from_code(code).ok_or_else(|| {
                StoreError::Corrupt(format!("plate code {code} in {}", self.path.display()))
            })?;
            dict.observe(&plate, self.day);
        }
        Ok(())
    }
}

/// The days that have a file in `dir`.
pub(crate) fn list(dir: &Path) -> Result<Vec<i32>, StoreError> {
    let mut days = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if let Some(day) = entry.file_name().to_str().and_then(parse_file_name) {
            days.push(day);
        }
    }
    days.sort_unstable();
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rowids_keep_time_order_and_round_trip() {
        let t = 1_795_000_123_456i64;
        let day = day_of(t);
        assert_eq!(rowid_time(day, rowid_base(t)), t);
        assert_eq!(rowid_time(day, rowid_base(t) + SEQ_PER_MS - 1), t);
        assert!(rowid_base(t) < rowid_base(t + 1));
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn ranges_clip_to_the_day() {
        let day = 20_000;
        let start = day as i64 * DAY_MS;
        assert_eq!(
            rowid_range(day, start - 10, start + 5),
            Some((0, 5 * 16 + 15))
        );
        assert_eq!(rowid_range(day, start + DAY_MS, start + DAY_MS + 9), None);
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(0), "1970-01-01.db");
        assert_eq!(file_name(20_414), "2025-11-22.db");
        for day in [0, 10_957, 20_414, 30_000] {
            assert_eq!(parse_file_name(&file_name(day)), Some(day));
        }
        assert_eq!(parse_file_name("2025-13-01.db"), None);
        assert_eq!(parse_file_name("2025-1-01.db"), None);
        assert_eq!(parse_file_name("platekeeper.db"), None);
    }

    #[test]
    fn packing_round_trips() {
        for args in [
            (0u32, None, None, None),
            (500, Some(93u8), Some(5u8), None),
            (MAX_CAMERA_NUM, Some(100), Some(127), Some(359u16)),
            (7, Some(0), None, Some(0)),
        ] {
            let m = pack_meta(args.0, args.1, args.2, args.3);
            assert_eq!(unpack_meta(m), args);
        }
        assert!(
            pack_meta(500, Some(99), Some(5), None) < 1 << 31,
            "fits 4 bytes"
        );
        for (lat, lon) in [
            (0, 0),
            (-90_000_000, -180_000_000),
            (90_000_000, 180_000_000),
            (37_804_400, -122_271_200),
        ] {
            assert_eq!(unpack_pos(pack_pos(lat, lon)), (lat, lon));
        }
    }
}
