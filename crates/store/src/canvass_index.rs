//! Where a canvass looks (SPEC R2.3): for each place, the moments of a day
//! that hold its reads, so a canvass of one hour near one corner reads the
//! rows of that corner instead of every row of the hour.
//!
//! A "place" (group) is a fixed camera for rows stored at the camera's own
//! position (`pos` NULL), or a 0.01° cell (about 1 km) for rows with their
//! own position. A canvass resolves its area to the fixed cameras inside
//! it plus the cells its bounding box touches; every read in the area is
//! in one of those groups, and the exact area test still runs on each row.
//!
//! Time is cut into slots of `slot_ms`, chosen per day so that a slot
//! holds about [`ROWS_PER_SLOT`] reads of any place: a listed slot costs
//! one short range of rowids to read. In a sealed day each group's slots
//! are one row of the `canvass` table, gaps Rice-coded (about one byte
//! per read: see docs/ARCHITECTURE.md). An open day keeps each group's
//! exact rowids in memory instead ([`crate::open_index`]).
//!
//! Invariant: a group's slots are a superset of the slots holding its
//! reads. Late reads into a sealed day add their slot in the same
//! transaction; rows that go away may leave a slot listed, which costs a
//! useless range read, never a missed read.

use std::collections::HashMap;

use platekeeper_core::Area;
use rusqlite::{params, Connection, OptionalExtension};

use crate::partition::{self, DAY_MS, SEQ_PER_MS};
use crate::StoreError;

/// Microdegrees per side of a cell.
const CELL_MICRO: i32 = 10_000;
/// Set in the group of a cell, clear in the group of a camera.
const CELL_FLAG: i64 = 1 << 40;
/// A canvass touching more groups than this scans its time window.
pub(crate) const MAX_GROUPS: usize = 4_096;
/// Reads of the whole day a slot holds on average: a listed slot costs
/// reading about this many rows, and fewer slots cost fewer bits.
const ROWS_PER_SLOT: i64 = 4;

/// The group of a row.
pub(crate) fn group_of(meta: i64, pos: Option<i64>) -> i64 {
    match pos {
        None => meta & partition::CAM_MASK,
        Some(p) => {
            let (lat, lon) = partition::unpack_pos(p);
            cell_group(lat.div_euclid(CELL_MICRO), lon.div_euclid(CELL_MICRO))
        }
    }
}

fn cell_group(lat_cell: i32, lon_cell: i32) -> i64 {
    // lat_cell is within ±9,000 and lon_cell within ±18,000.
    CELL_FLAG | ((lat_cell as i64 + 9_000) << 16) | (lon_cell as i64 + 18_000)
}

/// The groups that can hold reads inside `area`, or `None` when there
/// are too many to be worth it (a very large polygon).
pub(crate) fn groups_for(area: &Area, fixed_inside: &[u32]) -> Option<Vec<i64>> {
    let b = area.bounding_box();
    let lat = b.min_lat.div_euclid(CELL_MICRO)..=b.max_lat.div_euclid(CELL_MICRO);
    let lon = b.min_lon.div_euclid(CELL_MICRO)..=b.max_lon.div_euclid(CELL_MICRO);
    let cells = (lat.end() - lat.start() + 1) as usize * (lon.end() - lon.start() + 1) as usize;
    if cells + fixed_inside.len() > MAX_GROUPS {
        return None;
    }
    let mut groups: Vec<i64> = fixed_inside.iter().map(|&n| n as i64).collect();
    for a in lat {
        for o in lon.clone() {
            groups.push(cell_group(a, o));
        }
    }
    Some(groups)
}

/// The slot length for a day holding `rows` reads.
pub(crate) fn slot_ms_for(rows: i64) -> i64 {
    (DAY_MS * ROWS_PER_SLOT / rows.max(1)).clamp(1, 3_600_000)
}

/// Builds the day's `canvass` table from its rows (run while sealing).
pub(crate) fn build(conn: &Connection) -> Result<(), StoreError> {
    let rows: i64 = conn.query_row("SELECT count(*) FROM reads", [], |r| r.get(0))?;
    let slot_ms = slot_ms_for(rows);
    let mut groups: HashMap<i64, Vec<u32>> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT rid, meta, pos FROM reads ORDER BY rid")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let slot = slot_of(r.get(0)?, slot_ms);
            let list = groups.entry(group_of(r.get(1)?, r.get(2)?)).or_default();
            // Rows come in rowid order, so each list grows in order.
            if list.last() != Some(&slot) {
                list.push(slot);
            }
        }
    }
    conn.execute("DELETE FROM canvass", [])?;
    let mut insert =
        conn.prepare("INSERT INTO canvass(grp, slot_ms, slots) VALUES (?1, ?2, ?3)")?;
    for (group, slots) in groups {
        insert.execute(params![group, slot_ms, encode(&slots)])?;
    }
    Ok(())
}

/// Lists the slots of rows just added to a sealed day (a late upload), in
/// the transaction that adds them.
pub(crate) fn add(conn: &Connection, rows: &[(i64, i64)]) -> Result<(), StoreError> {
    let mut by_group: HashMap<i64, Vec<i64>> = HashMap::new();
    for &(group, rowid) in rows {
        by_group.entry(group).or_default().push(rowid);
    }
    for (group, rowids) in by_group {
        let found: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT slot_ms, slots FROM canvass WHERE grp = ?1",
                [group],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (slot_ms, mut slots) = match found {
            Some((ms, bytes)) => (ms, decode(&bytes)?),
            None => {
                let ms: Option<i64> = conn
                    .query_row("SELECT slot_ms FROM canvass LIMIT 1", [], |r| r.get(0))
                    .optional()?;
                (ms.unwrap_or(60_000), Vec::new())
            }
        };
        slots.extend(rowids.iter().map(|&r| slot_of(r, slot_ms)));
        slots.sort_unstable();
        slots.dedup();
        conn.execute(
            "INSERT OR REPLACE INTO canvass(grp, slot_ms, slots) VALUES (?1, ?2, ?3)",
            params![group, slot_ms, encode(&slots)],
        )?;
    }
    Ok(())
}

/// The rowid ranges of a sealed day that can hold the groups' reads
/// within `[lo, hi]`, newest first and not overlapping.
pub(crate) fn ranges(
    conn: &Connection,
    groups: &[i64],
    lo: i64,
    hi: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut stmt = conn.prepare_cached("SELECT slot_ms, slots FROM canvass WHERE grp = ?1")?;
    for &group in groups {
        let mut rows = stmt.query([group])?;
        let Some(row) = rows.next()? else { continue };
        let slot_ms: i64 = row.get(0)?;
        let width = slot_ms * SEQ_PER_MS;
        for slot in decode(row.get_ref(1)?.as_blob()?)? {
            let start = slot as i64 * width;
            let (a, b) = (start.max(lo), (start + width - 1).min(hi));
            if a <= b {
                spans.push((a, b));
            }
        }
    }
    Ok(merge_newest_first(spans))
}

/// Sorts rowid ranges newest first, merging those that touch or overlap.
pub(crate) fn merge_newest_first(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable_by_key(|s| std::cmp::Reverse(s.1));
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if b + 1 >= last.0 => last.0 = last.0.min(a),
            _ => out.push((a, b)),
        }
    }
    out
}

fn slot_of(rowid: i64, slot_ms: i64) -> u32 {
    (rowid / SEQ_PER_MS / slot_ms) as u32
}

/// Rice code of a strictly increasing list: the count (LEB128), the Rice
/// parameter k (one byte), then each gap (the first value counts from 0)
/// as its quotient by 2^k in unary and its k low bits.
pub(crate) fn encode(slots: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = slots.len() as u64;
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    let Some(&last) = slots.last() else {
        return out;
    };
    // For geometric gaps the best k is about log2(mean gap × ln 2).
    let mean = (last as u64 + 1) / slots.len() as u64;
    let k = (mean * 69 / 100).max(1).ilog2().min(31);
    out.push(k as u8);
    let mut bits = BitWriter::new(out);
    let mut prev = 0u32;
    for (i, &s) in slots.iter().enumerate() {
        let gap = if i == 0 { s } else { s - prev - 1 };
        prev = s;
        for _ in 0..(gap >> k) {
            bits.push(1);
        }
        bits.push(0);
        for b in (0..k).rev() {
            bits.push(((gap >> b) & 1) as u8);
        }
    }
    bits.finish()
}

/// The inverse of [`encode`]; a damaged list is an error, never a panic
/// or an endless loop.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<u32>, StoreError> {
    let corrupt = || StoreError::Corrupt("a canvass slot list is damaged".into());
    let mut n = 0u64;
    let mut at = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at).ok_or_else(corrupt)?;
        at += 1;
        n |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let k = *bytes.get(at).ok_or_else(corrupt)? as u32;
    at += 1;
    // Every value takes at least one bit.
    if k > 31 || n > (bytes.len() - at) as u64 * 8 {
        return Err(corrupt());
    }
    let mut bits = BitReader {
        bytes: &bytes[at..],
        at: 0,
    };
    let mut out = Vec::with_capacity(n as usize);
    let mut prev: Option<u32> = None;
    for _ in 0..n {
        let mut q = 0u64;
        while bits.next().ok_or_else(corrupt)? == 1 {
            q += 1;
            if q > u32::MAX as u64 {
                return Err(corrupt());
            }
        }
        let mut low = 0u64;
        for _ in 0..k {
            low = (low << 1) | bits.next().ok_or_else(corrupt)? as u64;
        }
        let gap = (q << k) | low;
        let value = match prev {
            None => gap,
            Some(p) => p as u64 + 1 + gap,
        };
        let value = u32::try_from(value).map_err(|_| corrupt())?;
        out.push(value);
        prev = Some(value);
    }
    Ok(out)
}

struct BitWriter {
    out: Vec<u8>,
    filled: u32,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> BitWriter {
        BitWriter { out, filled: 8 }
    }

    fn push(&mut self, bit: u8) {
        if self.filled == 8 {
            self.out.push(0);
            self.filled = 0;
        }
        if bit == 1 {
            if let Some(last) = self.out.last_mut() {
                *last |= 0x80 >> self.filled;
            }
        }
        self.filled += 1;
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl BitReader<'_> {
    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platekeeper_core::GeoPoint;

    #[test]
    fn slot_lists_round_trip() {
        let cases: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![5],
            vec![0, 1, 2, 3],
            vec![7, 100, 101, 5_000, 86_399_999],
            (0..10_000).map(|i| i * 37 + (i % 5)).collect(),
            vec![u32::MAX - 1, u32::MAX],
        ];
        for slots in cases {
            assert_eq!(decode(&encode(&slots)).unwrap(), slots, "{slots:?}");
        }
    }

    #[test]
    fn dense_lists_cost_about_a_byte_per_slot() {
        // A camera's day at 100M reads: about 6,700 slots, mean gap ~150.
        let slots: Vec<u32> = (0..6_700).map(|i| i * 150 + (i * 7919) % 97).collect();
        let bytes = encode(&slots).len();
        assert!(bytes < 6_700 * 5 / 4, "{bytes} bytes");
    }

    #[test]
    fn damaged_lists_are_errors() {
        let good = encode(&[1, 50, 900, 901]);
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]); // no panic
        }
        assert!(decode(&good[..good.len() - 1]).is_err());
        // A count far beyond the bits present.
        assert!(decode(&[0xFF, 0xFF, 0x03, 2, 0]).is_err());
        // All ones: an endless quotient.
        assert!(decode(&[1, 0, 0xFF, 0xFF]).is_err());
        assert!(decode(&[1, 40, 0]).is_err());
    }

    #[test]
    fn ranges_merge_newest_first() {
        let merged = merge_newest_first(vec![(10, 19), (40, 49), (20, 29), (0, 5), (45, 60)]);
        assert_eq!(merged, [(40, 60), (10, 29), (0, 5)]);
    }

    #[test]
    fn groups_cover_the_area() {
        let center = GeoPoint::new(37.7749, -122.4194).unwrap();
        let area = Area::circle(center, 500.0).unwrap();
        let groups = groups_for(&area, &[3, 9]).unwrap();
        assert!(groups.contains(&3) && groups.contains(&9));
        let (lat, lon) = center.to_micro();
        let own = group_of(0, Some(partition::pack_pos(lat, lon)));
        assert!(groups.contains(&own));
        // A kilometre-wide circle touches at most 3 × 3 cells.
        assert!(groups.len() <= 2 + 9, "{}", groups.len());
        // Fixed-position rows group by camera number.
        assert_eq!(
            group_of(partition::pack_meta(17, Some(90), None, None), None),
            17
        );
        // The largest circle allowed (100 km across) is too many cells:
        // such a canvass scans its window instead.
        let big = Area::circle(center, 50_000.0).unwrap();
        assert!(groups_for(&big, &[]).is_none());
    }
}
