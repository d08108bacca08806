//! Day partitions: one table of reads (and one of image references) per
//! UTC day.
//!
//! Why days: reads die by age (SPEC R6.1), so retention drops whole tables
//! instead of deleting millions of rows; and a time window touches only
//! the days it covers.
//!
//! Within a day, a read's rowid is `millisecond_of_day * 256 + seq`: rows
//! sit in time order even when a camera uploads late, a time window is a
//! rowid range, and the reads of one millisecond (where a re-sent read
//! must be) are a range of at most 256 rows.

use rusqlite::Connection;

use crate::dictionary::PlateDictionary;
use crate::StoreError;

pub const DAY_MS: i64 = 86_400_000;
/// Reads one partition can hold in one millisecond.
pub const SEQ_PER_MS: i64 = 256;

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

pub fn table(day: i32) -> String {
    format!("r{day}")
}

pub fn image_table(day: i32) -> String {
    format!("i{day}")
}

/// Creates a day's tables. Columns are chosen for size: the plate as its
/// base-37 code (6 bytes), the camera as its number, positions in
/// microdegrees and NULL where a fixed camera's own position applies.
pub(crate) fn create(conn: &Connection, day: i32) -> Result<(), StoreError> {
    let (r, i) = (table(day), image_table(day));
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {r}(
            plate INTEGER NOT NULL,
            cam INTEGER NOT NULL,
            lat INTEGER,
            lon INTEGER,
            heading INTEGER,
            conf INTEGER,
            state INTEGER,
            id BLOB NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {r}_plate ON {r}(plate);
        CREATE TABLE IF NOT EXISTS {i}(
            rid INTEGER PRIMARY KEY,
            plate_sha BLOB,
            plate_kind INTEGER,
            vehicle_sha BLOB,
            vehicle_kind INTEGER
        );"
    ))?;
    Ok(())
}

/// The days that have a partition, from the schema.
pub(crate) fn list(conn: &Connection) -> Result<Vec<i32>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'r[0-9]*'")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut days = Vec::new();
    for name in names {
        let name = name?;
        if let Ok(day) = name[1..].parse::<i32>() {
            days.push(day);
        }
    }
    days.sort_unstable();
    Ok(days)
}

/// Adds a day's distinct plates to the dictionary (an index-only scan).
pub(crate) fn load_dictionary(
    conn: &Connection,
    day: i32,
    dict: &mut PlateDictionary,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT DISTINCT plate FROM {}", table(day)))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let code: i64 = row.get(0)?;
        let plate = platekeeper_core::Plate::from_code(code)
            .ok_or_else(|| StoreError::Corrupt(format!("plate code {code} in day {day}")))?;
        dict.observe(&plate, day);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rowids_keep_time_order_and_round_trip() {
        let t = 1_795_000_123_456i64;
        let day = day_of(t);
        assert_eq!(rowid_time(day, rowid_base(t)), t);
        assert_eq!(rowid_time(day, rowid_base(t) + 255), t);
        assert!(rowid_base(t) < rowid_base(t + 1));
        // Before 1970 still lands in the right day.
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn ranges_clip_to_the_day() {
        let day = 20_000;
        let start = day as i64 * DAY_MS;
        assert_eq!(rowid_range(day, start - 10, start + 5), Some((0, 5 * 256 + 255)));
        assert_eq!(rowid_range(day, start + DAY_MS, start + DAY_MS + 9), None);
        let (_, hi) = rowid_range(day, 0, i64::MAX / 2).unwrap();
        assert_eq!(hi, (DAY_MS - 1) * 256 + 255);
    }
}
