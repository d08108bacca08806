//! Searching reads: exact plate, wildcard, substring, misread-tolerant,
//! and canvass by area and time (SPEC R2.1–R2.3). Every entry point that
//! returns reads takes an [`Access`] and returns them [`Sealed`]: no
//! logged access, no data.
//!
//! Results come newest first, a page at a time; a [`Cursor`] names the
//! last read returned so the next page starts just before it.

use platekeeper_core::{Area, GeoPoint, Plate, PlatePattern, ReadId, Region};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Row};

use crate::access::{Access, Sealed};
use crate::cameras::CameraMap;
use crate::canvass_index;
use crate::dictionary::PlateSpan;
use crate::images::ImageRef;
use crate::partition::{self, DAY_MS};
use crate::{Store, StoreError};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// A pattern matching more distinct plates than this is refused as too
/// broad: it would be a trawl through the population, not a lead. (A
/// three-character substring such as `*123*` matches about 1 plate in
/// 1,000, so at 35M distinct plates it stays under this bound.)
pub const MAX_PATTERN_CANDIDATES: usize = 100_000;
/// Longest time window for a search that names no plate (a canvass or a
/// camera's reads). Longer is a dragnet and an unbounded scan.
pub const MAX_SCAN_WINDOW_MS: i64 = 7 * DAY_MS;
/// Longest time window for a partial-plate pattern combined with an area
/// or a camera: those filters are applied per read, so without a window
/// the work would grow with every day retained.
pub const MAX_FILTERED_PATTERN_WINDOW_MS: i64 = 31 * DAY_MS;

/// What to look for. At least a plate, an area or a camera is needed.
#[derive(Debug, Clone, Default)]
pub struct ReadQuery {
    pub plate: Option<PlatePattern>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub area: Option<Area>,
    /// A camera id.
    pub camera: Option<String>,
    pub region: Option<Region>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl ReadQuery {
    /// Checks the query's shape (no store needed), so a caller can refuse
    /// it before opening an access: a refused query is not an access.
    pub fn check(&self) -> Result<(), StoreError> {
        if let (Some(from), Some(to)) = (self.from_ms, self.to_ms) {
            if from > to {
                return Err(StoreError::QueryTooBroad(
                    "from is after to; the time window is empty".into(),
                ));
            }
        }
        let filtered = self.area.is_some() || self.camera.is_some();
        if self.plate.as_ref().is_some_and(|p| !p.is_literal()) && filtered {
            match (self.from_ms, self.to_ms) {
                (Some(from), Some(to)) if to - from <= MAX_FILTERED_PATTERN_WINDOW_MS => {}
                _ => {
                    return Err(StoreError::QueryTooBroad(
                        "a partial plate with an area or camera needs from and to, at most 31 days apart"
                            .into(),
                    ))
                }
            }
        }
        if self.plate.is_none() {
            if !filtered {
                return Err(StoreError::QueryTooBroad(
                    "a search needs a plate, an area (near or polygon) or a camera".into(),
                ));
            }
            match (self.from_ms, self.to_ms) {
                (Some(from), Some(to)) if to - from <= MAX_SCAN_WINDOW_MS => {}
                _ => {
                    return Err(StoreError::QueryTooBroad(
                        "a search without a plate needs from and to, at most 7 days apart".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Where a page ended: the partition day and rowid of its last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub day: i32,
    pub rowid: i64,
    /// On PostgreSQL, whose rows have no number, the id of the last read:
    /// reads are ordered by (time, id) there, and a page goes on after
    /// both (see `crate::postgres::plane`).
    pub tie: Option<[u8; 16]>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        match self.tie {
            None => format!("{}.{}", self.day, self.rowid),
            Some(id) => format!("{}.{}.{}", self.day, self.rowid, hex::encode(id)),
        }
    }

    pub fn decode(s: &str) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadCursor(s.chars().take(64).collect());
        let mut parts = s.splitn(3, '.');
        let day: i32 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let rowid: i64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if !(0..DAY_MS * partition::SEQ_PER_MS).contains(&rowid) {
            return Err(bad());
        }
        let tie = match parts.next() {
            None => None,
            Some(t) => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .ok_or_else(bad)?,
            ),
        };
        Ok(Cursor { day, rowid, tie })
    }
}

/// One read as search returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRead {
    pub id: ReadId,
    pub plate: Plate,
    pub region: Option<Region>,
    pub ts_ms: i64,
    pub position: Option<GeoPoint>,
    pub camera: String,
    pub heading: Option<u16>,
    pub confidence: Option<u8>,
    pub plate_image: Option<ImageRef>,
    pub vehicle_image: Option<ImageRef>,
    /// Where the read is stored; also the cursor after it.
    pub locator: Cursor,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub reads: Vec<StoredRead>,
    /// Set when the page is full: pass it back for the next page.
    pub next: Option<Cursor>,
    /// Distinct plates the plate condition matched (0 without one).
    pub plates_matched: usize,
    /// Every read the query matches, this page and all after it, when
    /// the plan asked for it ([`SearchPlan::count_total`]).
    pub total: Option<Total>,
}

/// How many reads a query matches, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Total {
    pub count: usize,
    /// The count stopped at the cap: there are at least `count`.
    pub at_least: bool,
}

/// Most reads [`SearchPlan::count_total`] counts before it says "at
/// least": counting reads them, and an analyst needs to know "more than
/// ten thousand", not the exact figure.
pub const MAX_TOTAL_COUNT: usize = 10_000;

/// Plates counted by one statement on a sealed day.
const COUNT_CODES_PER_STATEMENT: usize = 500;

const COLUMNS: &str =
    "r.rid, r.plate, r.meta, r.pos, r.id, i.plate_sha, i.plate_kind, i.vehicle_sha, i.vehicle_kind";

/// What the rows of one day need to become [`StoredRead`]s.
struct RowContext<'a> {
    day: i32,
    cameras: &'a CameraMap,
}

impl RowContext<'_> {
    fn read(&self, row: &Row<'_>) -> Result<StoredRead, StoreError> {
        let rowid: i64 = row.get(0)?;
        let code: i64 = row.get(1)?;
        let (cam, confidence, state, heading) = partition::unpack_meta(row.get(2)?);
        let pos: Option<i64> = row.get(3)?;
        let id = row.get_ref(4)?.as_blob()?;
        let (camera, home) = self
            .cameras
            .get(&cam)
            .cloned()
            .unwrap_or_else(|| (format!("#{cam}"), None));
        let position = pos
            .map(partition::unpack_pos)
            .or(home)
            .map(|(a, b)| GeoPoint::from_micro(a, b));
        let [plate_image, vehicle_image] = ImageRef::pair_in_row(row, 5)?;
        Ok(StoredRead {
            id: ReadId(
                uuid::Uuid::from_slice(id)
                    .map_err(|_| StoreError::Corrupt(format!("read id at {}.{rowid}", self.day)))?,
            ),
            plate: Plate::from_code(code)
                .ok_or_else(|| StoreError::Corrupt(format!("plate code {code}")))?,
            region: state.and_then(Region::from_code),
            ts_ms: partition::rowid_time(self.day, rowid),
            position,
            camera,
            heading,
            confidence,
            plate_image,
            vehicle_image,
            locator: Cursor {
                day: self.day,
                rowid,
                tie: None,
            },
        })
    }
}

/// SQL conditions (and their values) for a query's camera and state.
fn row_filters(q: &ReadQuery, camera_num: Option<u32>) -> (String, Vec<Value>) {
    let mut filters = String::new();
    let mut extra: Vec<Value> = Vec::new();
    if let Some(n) = camera_num {
        filters.push_str(&format!(" AND (r.meta & {}) = ?", partition::CAM_MASK));
        extra.push(Value::Integer(n as i64));
    }
    if let Some(region) = q.region {
        filters.push_str(&format!(
            " AND ((r.meta >> {}) & 127) = ?",
            partition::STATE_SHIFT
        ));
        extra.push(Value::Integer(region.code() as i64));
    }
    (filters, extra)
}

/// SQL for the area prefilter: rows with their own position inside the
/// box, or rows placed at a fixed camera whose position is in the area.
fn area_condition(area: &Area, fixed_inside: &[u32]) -> String {
    let b = area.bounding_box();
    let (lat_lo, lat_hi) = (b.min_lat as i64 + 90_000_000, b.max_lat as i64 + 90_000_000);
    let (lon_lo, lon_hi) = (
        b.min_lon as i64 + 180_000_000,
        b.max_lon as i64 + 180_000_000,
    );
    let own = format!(
        "(r.pos IS NOT NULL AND (r.pos >> 29) BETWEEN {lat_lo} AND {lat_hi} \
         AND (r.pos & {}) BETWEEN {lon_lo} AND {lon_hi})",
        partition::LON_MASK
    );
    if fixed_inside.is_empty() {
        own
    } else {
        let list: Vec<String> = fixed_inside.iter().map(|n| n.to_string()).collect();
        format!(
            "({own} OR (r.pos IS NULL AND (r.meta & {}) IN ({})))",
            partition::CAM_MASK,
            list.join(",")
        )
    }
}

/// A query that passed every check and whose plate pattern has been
/// resolved to the plates it matches. Planning comes before the access is
/// opened, so a query refused here (say, too broad) is never an access.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    query: ReadQuery,
    candidates: Option<Vec<PlateSpan>>,
    count_total: bool,
}

impl SearchPlan {
    pub fn query(&self) -> &ReadQuery {
        &self.query
    }

    /// Also count every read the query matches (up to
    /// [`MAX_TOTAL_COUNT`]) when the page is full. Only a first page
    /// counts: the next pages' totals follow from it.
    pub fn count_total(mut self) -> SearchPlan {
        self.count_total = self.query.cursor.is_none();
        self
    }

    /// Moves the plan to the page after `cursor` (the candidates stay).
    pub fn set_cursor(&mut self, cursor: Option<Cursor>) {
        self.query.cursor = cursor;
    }
}

impl Store {
    /// Checks a query and resolves its plate pattern (see [`SearchPlan`]).
    pub fn plan(&self, q: ReadQuery) -> Result<SearchPlan, StoreError> {
        self.refresh_stale();
        q.check()?;
        if let Some(id) = &q.camera {
            if self.camera(id).is_none() {
                return Err(StoreError::UnknownCamera(id.clone()));
            }
        }
        let candidates = match &q.plate {
            Some(pattern) => Some(self.candidates(pattern)?),
            None => None,
        };
        Ok(SearchPlan {
            query: q,
            candidates,
            count_total: false,
        })
    }

    /// Plans and runs a query under `access`.
    pub fn search(&self, access: &Access, q: &ReadQuery) -> Result<Sealed<SearchPage>, StoreError> {
        let plan = self.plan(q.clone())?;
        self.run(access, &plan)
    }

    /// Runs a planned query under `access`.
    pub fn run(
        &self,
        access: &Access,
        plan: &SearchPlan,
    ) -> Result<Sealed<SearchPage>, StoreError> {
        let mut page = self.run_plan(plan)?;
        if plan.count_total {
            page.total = Some(self.total_of(plan, &page)?);
        }
        let returned = page.reads.iter().map(|r| (r.id, r.ts_ms)).collect();
        Ok(Sealed::new(access, page, returned))
    }

    /// How many reads `plan` matches in all, given its first `page`: the
    /// page's own when it is the last, else the page plus the pages after
    /// it, read a full page at a time up to [`MAX_TOTAL_COUNT`].
    fn total_of(&self, plan: &SearchPlan, page: &SearchPage) -> Result<Total, StoreError> {
        if page.next.is_none() {
            return Ok(Total {
                count: page.reads.len(),
                at_least: false,
            });
        }
        if let (Some(cands), None) = (&plan.candidates, &plan.query.area) {
            let count = self.count_by_plate(plan, cands, MAX_TOTAL_COUNT)?;
            return Ok(Total {
                count: count.min(MAX_TOTAL_COUNT),
                at_least: count > MAX_TOTAL_COUNT,
            });
        }
        // An area is tested read by read: count the pages after this one.
        let mut count = page.reads.len();
        let mut next = page.next;
        let mut rest = plan.clone();
        rest.count_total = false;
        rest.query.limit = MAX_LIMIT;
        while let Some(cursor) = next {
            if count >= MAX_TOTAL_COUNT {
                return Ok(Total {
                    count: MAX_TOTAL_COUNT,
                    at_least: true,
                });
            }
            rest.set_cursor(Some(cursor));
            let more = self.run_plan(&rest)?;
            count += more.reads.len();
            next = more.next;
        }
        Ok(Total {
            count: count.min(MAX_TOTAL_COUNT),
            at_least: count > MAX_TOTAL_COUNT,
        })
    }

    /// Runs a planned query (for the store's own callers, which seal what
    /// they return).
    pub(crate) fn run_plan(&self, plan: &SearchPlan) -> Result<SearchPage, StoreError> {
        let q = &plan.query;
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let from = q.from_ms.unwrap_or(i64::MIN / 4);
        let to = q.to_ms.unwrap_or(i64::MAX / 4);
        let cameras = self.camera_map()?;
        let camera_num = self.camera_num(q)?;
        let fixed_inside: Vec<u32> = match &q.area {
            Some(area) => cameras
                .iter()
                .filter(|(_, (_, home))| {
                    home.is_some_and(|(a, b)| area.contains(GeoPoint::from_micro(a, b)))
                })
                .map(|(n, _)| *n)
                .collect(),
            None => Vec::new(),
        };
        let candidates = &plan.candidates;
        let plates_matched = candidates.as_ref().map_or(0, Vec::len);
        if self.on_postgres() {
            let reads = self.pg_page(&crate::postgres::plane::PageQuery {
                q,
                candidates: candidates.as_deref(),
                camera_num,
                area_sql: q
                    .area
                    .as_ref()
                    .map(|area| area_condition(area, &fixed_inside)),
                cameras: &cameras,
                limit,
            })?;
            let next = (reads.len() >= limit)
                .then(|| reads.last().map(|r| r.locator))
                .flatten();
            // A plate this node had not seen (read through another
            // node): learnt from what came back, and not counted as
            // matched when nothing did.
            let mut plates_matched = plates_matched;
            if let Some([span]) = candidates.as_deref() {
                if span.first_day == i32::MIN {
                    let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
                    for r in &reads {
                        dict.observe(&r.plate, r.locator.day);
                    }
                    if reads.is_empty() && q.cursor.is_none() {
                        plates_matched = 0;
                    }
                }
            }
            return Ok(SearchPage {
                reads,
                next,
                plates_matched,
                total: None,
            });
        }
        let canvass_groups = q
            .area
            .as_ref()
            .and_then(|area| canvass_index::groups_for(area, &fixed_inside));
        let mut days: Vec<_> = self
            .day_files()
            .into_iter()
            .filter(|f| (partition::day_of(from)..=partition::day_of(to)).contains(&f.day))
            .filter(|f| q.cursor.is_none_or(|c| f.day <= c.day))
            .collect();
        days.reverse();

        let (mut filters, extra) = row_filters(q, camera_num);
        if let Some(area) = &q.area {
            filters.push_str(" AND ");
            filters.push_str(&area_condition(area, &fixed_inside));
        }

        // The same statements serve every day (each day's connection
        // caches its own prepared copy).
        let limit_sql = if q.area.is_some() { "" } else { " LIMIT ?" };
        let by_index = format!(
            "SELECT {COLUMNS} FROM reads r INDEXED BY reads_plate LEFT JOIN images i ON i.rid = r.rid \
             WHERE r.plate = ? AND r.rid BETWEEN ? AND ?{filters} ORDER BY r.rid DESC{limit_sql}"
        );
        // The plate is checked again: a corrected read stays under its old
        // plate in the in-memory index.
        let by_rowid = format!(
            "SELECT {COLUMNS} FROM reads r LEFT JOIN images i ON i.rid = r.rid WHERE r.rid = ? AND r.plate = ?{filters}"
        );
        let mut reads: Vec<StoredRead> = Vec::new();
        for file in days {
            let day = file.day;
            // A day none of the plates was read on is not opened.
            if candidates
                .as_ref()
                .is_some_and(|c| !c.iter().any(|s| s.maybe_on(day)))
            {
                continue;
            }
            let conn = file.reader()?;
            let Some((lo, mut hi)) = partition::rowid_range(day, from, to) else {
                continue;
            };
            if let Some(c) = q.cursor.filter(|c| c.day == day) {
                hi = hi.min(c.rowid - 1);
            }
            if lo > hi {
                continue;
            }
            let ctx = RowContext {
                day,
                cameras: &cameras,
            };
            let remaining = limit - reads.len();
            let keep = |read: &StoredRead| match (&q.area, read.position) {
                (Some(area), Some(p)) => area.contains(p),
                (Some(_), None) => false,
                (None, _) => true,
            };
            match candidates {
                Some(cands) => {
                    let mut found: Vec<StoredRead> = Vec::new();
                    for span in cands.iter().filter(|s| s.maybe_on(day)) {
                        let code = span.plate.code();
                        if let Some(rowids) = file.open_rowids(code, lo, hi) {
                            // An open day: the in-memory index gives the rows.
                            let mut stmt = conn.prepare_cached(&by_rowid)?;
                            let mut kept = 0;
                            for rowid in rowids {
                                if q.area.is_none() && kept >= remaining {
                                    break;
                                }
                                let mut args = vec![Value::Integer(rowid), Value::Integer(code)];
                                args.extend(extra.iter().cloned());
                                let mut rows = stmt.query(params_from_iter(args))?;
                                if let Some(row) = rows.next()? {
                                    let read = ctx.read(row)?;
                                    if keep(&read) {
                                        found.push(read);
                                        kept += 1;
                                    }
                                }
                            }
                            continue;
                        }
                        let mut stmt = conn.prepare_cached(&by_index)?;
                        let mut args =
                            vec![Value::Integer(code), Value::Integer(lo), Value::Integer(hi)];
                        args.extend(extra.iter().cloned());
                        if q.area.is_none() {
                            args.push(Value::Integer(remaining as i64));
                        }
                        let mut rows = stmt.query(params_from_iter(args))?;
                        while let Some(row) = rows.next()? {
                            let read = ctx.read(row)?;
                            if keep(&read) {
                                found.push(read);
                            }
                        }
                        // Keep memory bounded by the page, not the matches.
                        if found.len() > 4 * remaining + 64 {
                            found.sort_unstable_by_key(|r| std::cmp::Reverse(r.locator.rowid));
                            found.truncate(remaining);
                        }
                    }
                    found.sort_unstable_by_key(|r| std::cmp::Reverse(r.locator.rowid));
                    found.truncate(remaining);
                    reads.extend(found);
                }
                None => {
                    // A canvass reads only the moments its places have
                    // reads in; anything else scans the window.
                    let ranges = match &canvass_groups {
                        Some(groups) => file.canvass_ranges(&conn, groups, lo, hi)?,
                        None => None,
                    };
                    let sql = format!(
                        "SELECT {COLUMNS} FROM reads r LEFT JOIN images i ON i.rid = r.rid \
                         WHERE r.rid BETWEEN ? AND ?{filters} ORDER BY r.rid DESC"
                    );
                    let mut stmt = conn.prepare_cached(&sql)?;
                    for (a, b) in ranges.unwrap_or_else(|| vec![(lo, hi)]) {
                        if reads.len() >= limit {
                            break;
                        }
                        let mut args = vec![Value::Integer(a), Value::Integer(b)];
                        args.extend(extra.iter().cloned());
                        let mut rows = stmt.query(params_from_iter(args))?;
                        while reads.len() < limit {
                            let Some(row) = rows.next()? else { break };
                            let read = ctx.read(row)?;
                            if keep(&read) {
                                reads.push(read);
                            }
                        }
                    }
                }
            }
            if reads.len() >= limit {
                break;
            }
        }
        let next = (reads.len() >= limit)
            .then(|| reads.last().map(|r| r.locator))
            .flatten();
        Ok(SearchPage {
            reads,
            next,
            plates_matched,
            total: None,
        })
    }

    /// Every read a plate query without an area matches in its window,
    /// counted without reading a row: per plate and day, the day's plate
    /// index (or, on the open day, the rows its in-memory index names,
    /// checked one by one, since a corrected read stays under its old
    /// plate there). Stops past `cap`.
    fn count_by_plate(
        &self,
        plan: &SearchPlan,
        cands: &[PlateSpan],
        cap: usize,
    ) -> Result<usize, StoreError> {
        let q = &plan.query;
        let from = q.from_ms.unwrap_or(i64::MIN / 4);
        let to = q.to_ms.unwrap_or(i64::MAX / 4);
        let camera_num = self.camera_num(q)?;
        if self.on_postgres() {
            return self.pg_count(q, cands, camera_num, cap);
        }
        let (filters, extra) = row_filters(q, camera_num);
        let by_index = format!(
            "SELECT count(*) FROM reads r INDEXED BY reads_plate WHERE r.plate = ? AND r.rid BETWEEN ? AND ?{filters}"
        );
        let by_rowid =
            format!("SELECT count(*) FROM reads r WHERE r.rid = ? AND r.plate = ?{filters}");
        let mut count = 0usize;
        let days = self
            .day_files()
            .into_iter()
            .filter(|f| (partition::day_of(from)..=partition::day_of(to)).contains(&f.day));
        for file in days {
            let Some((lo, hi)) = partition::rowid_range(file.day, from, to) else {
                continue;
            };
            let codes: Vec<i64> = cands
                .iter()
                .filter(|s| s.maybe_on(file.day))
                .map(|s| s.plate.code())
                .collect();
            if codes.is_empty() {
                continue;
            }
            let conn = file.reader()?;
            let args = |first: Vec<Value>| {
                let mut a = first;
                a.extend(extra.iter().cloned());
                a
            };
            let mut sealed = Vec::new();
            for &code in &codes {
                match file.open_rowids(code, lo, hi) {
                    Some(rowids) => {
                        let mut stmt = conn.prepare_cached(&by_rowid)?;
                        for rowid in rowids {
                            let n: i64 = stmt.query_row(
                                params_from_iter(args(vec![
                                    Value::Integer(rowid),
                                    Value::Integer(code),
                                ])),
                                |r| r.get(0),
                            )?;
                            count += n as usize;
                        }
                    }
                    None => sealed.push(code),
                }
            }
            // A sealed day's plates in a few statements: one index seek
            // per plate, without a statement per plate (a substring
            // pattern names hundreds). The codes are integers, written
            // into the SQL as such.
            for chunk in sealed.chunks(COUNT_CODES_PER_STATEMENT) {
                let n: i64 = if let [code] = chunk {
                    conn.prepare_cached(&by_index)?.query_row(
                        params_from_iter(args(vec![
                            Value::Integer(*code),
                            Value::Integer(lo),
                            Value::Integer(hi),
                        ])),
                        |r| r.get(0),
                    )?
                } else {
                    let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                    conn.prepare(&format!(
                        "SELECT count(*) FROM reads r INDEXED BY reads_plate WHERE r.plate IN ({}) \
                         AND r.rid BETWEEN ? AND ?{filters}",
                        list.join(",")
                    ))?
                    .query_row(
                        params_from_iter(args(vec![Value::Integer(lo), Value::Integer(hi)])),
                        |r| r.get(0),
                    )?
                };
                count += n as usize;
                if count > cap {
                    return Ok(count);
                }
            }
            if count > cap {
                return Ok(count);
            }
        }
        Ok(count)
    }

    /// The number of the camera a query names, if it names one.
    fn camera_num(&self, q: &ReadQuery) -> Result<Option<u32>, StoreError> {
        q.camera
            .as_ref()
            .map(|id| {
                self.cameras
                    .read()
                    .map_err(|_| StoreError::Poisoned)?
                    .num_of(id)
                    .ok_or_else(|| StoreError::UnknownCamera(id.clone()))
            })
            .transpose()
    }

    /// Every camera's id and fixed position, by number, for turning rows
    /// into [`StoredRead`]s.
    pub(crate) fn camera_map(&self) -> Result<std::sync::Arc<CameraMap>, StoreError> {
        Ok(self
            .cameras
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .rows())
    }

    /// The plates a pattern stands for, with the days each was seen.
    fn candidates(&self, pattern: &PlatePattern) -> Result<Vec<PlateSpan>, StoreError> {
        let dict = self.dictionary.read().map_err(|_| StoreError::Poisoned)?;
        if pattern.is_literal() && !pattern.is_fuzzy() {
            let plate = Plate::parse(pattern.as_str())
                .map_err(|e| StoreError::QueryTooBroad(format!("plate: {e}")))?;
            return Ok(match dict.get(&plate) {
                Some(span) => vec![span],
                // On PostgreSQL another node may have stored this plate's
                // first reads: the database is asked, on every day.
                None if self.on_postgres() => vec![PlateSpan {
                    plate,
                    first_day: i32::MIN,
                    last_day: i32::MAX,
                    recent: u32::MAX,
                }],
                None => Vec::new(),
            });
        }
        let found = dict.matching(pattern, MAX_PATTERN_CANDIDATES);
        if found.len() > MAX_PATTERN_CANDIDATES {
            return Err(StoreError::PatternTooBroad {
                matched: found.len(),
                limit: MAX_PATTERN_CANDIDATES,
            });
        }
        Ok(found)
    }

    /// One read, found by its id and time (the time says where it is
    /// stored, so no index on ids is needed).
    pub(crate) fn find_read_at(
        &self,
        id: ReadId,
        ts_ms: i64,
    ) -> Result<Option<StoredRead>, StoreError> {
        if self.on_postgres() {
            return self.pg_find_read_at(id, ts_ms);
        }
        let day = partition::day_of(ts_ms);
        let Some(file) = self.day_files().into_iter().find(|f| f.day == day) else {
            return Ok(None);
        };
        let cameras = self.camera_map()?;
        let base = partition::rowid_base(ts_ms);
        let conn = file.reader()?;
        let sql = format!(
            "SELECT {COLUMNS} FROM reads r LEFT JOIN images i ON i.rid = r.rid WHERE r.rid BETWEEN ?1 AND ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([base, base + partition::SEQ_PER_MS - 1])?;
        let ctx = RowContext {
            day,
            cameras: &cameras,
        };
        while let Some(row) = rows.next()? {
            let read = ctx.read(row)?;
            if read.id == id {
                return Ok(Some(read));
            }
        }
        Ok(None)
    }

    /// One of a read's pictures (the plate crop when `plate`, else the
    /// vehicle), under an access: from its day, or from the held copy of
    /// a read whose day is purged but which a legal hold keeps.
    pub fn read_image(
        &self,
        access: &Access,
        id: ReadId,
        ts_ms: i64,
        plate: bool,
    ) -> Result<Sealed<(Vec<u8>, platekeeper_core::ImageKind)>, StoreError> {
        let read = match self.find_read_at(id, ts_ms)? {
            Some(read) => read,
            None => self.held_copy(id)?.ok_or_else(|| StoreError::Gone {
                code: "unknown_read",
                message: format!("read {id} is no longer stored"),
            })?,
        };
        let image = if plate {
            read.plate_image
        } else {
            read.vehicle_image
        }
        .ok_or_else(|| StoreError::Gone {
            code: "no_image",
            message: format!("read {id} has no such image"),
        })?;
        let bytes = self.images.read(read.locator.day, &image)?;
        Ok(Sealed::new(access, (bytes, image.kind), vec![(id, ts_ms)]))
    }

    /// A read still stored in its day file, by id and time; `unknown_read`
    /// if its day was purged or it was never there.
    pub(crate) fn stored_read(&self, id: ReadId, ts_ms: i64) -> Result<StoredRead, StoreError> {
        self.find_read_at(id, ts_ms)?
            .ok_or_else(|| StoreError::Gone {
                code: "unknown_read",
                message: format!("read {id} is no longer stored"),
            })
    }
}
