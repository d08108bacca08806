//! The store's reads on PostgreSQL: what [`crate::Store`] does with its
//! day files on the embedded backend — ingest, the searches' reads, one
//! read by id, corrections' rewrite of a row, retention's removal of
//! days — done on the day-partitioned `reads` table ([`super::reads`]).
//! The searches' planning (checks, the plate dictionary's candidates,
//! access and log) is the embedded store's own; only where the rows come
//! from differs.
//!
//! Order and paging: a day file numbers its rows, so a page ends at a
//! row number. A partition has no such number (a unique index for it
//! would cost about 22 bytes a read), so reads are ordered by (time, id)
//! and a page's cursor carries the id of its last read as the tiebreak
//! ([`crate::search::Cursor::tie`]): two reads of the same millisecond
//! are never skipped or repeated across a page boundary.

use std::sync::atomic::Ordering;

use platekeeper_core::{GeoPoint, Plate, ReadId, Region};
use uuid::Uuid;

use super::connect::{off_runtime, statement_error, PgPool};
use super::reads::{self, PgRead, COLUMNS};
use crate::cameras::CameraMap;
use crate::dictionary::PlateSpan;
use crate::ingest::{camera_of, unplaced, IngestItem, IngestStatus};
use crate::partition::{self, DAY_MS};
use crate::search::{Cursor, ReadQuery, StoredRead};
use crate::{Store, StoreError};

fn db(e: postgres::Error) -> StoreError {
    StoreError::Postgres(statement_error(e))
}

/// Rows fetched at a time when an area may reject some of them.
const AREA_CHUNK: i64 = 2_000;

/// A row as search returns it.
fn stored(r: &PgRead, cameras: &CameraMap) -> Result<StoredRead, StoreError> {
    let (cam, confidence, state, heading) = partition::unpack_meta(r.meta);
    let (camera, home) = cameras
        .get(&cam)
        .cloned()
        .unwrap_or_else(|| (format!("#{cam}"), None));
    let day = partition::day_of(r.ts_ms);
    Ok(StoredRead {
        id: ReadId(r.id),
        plate: Plate::from_code(r.plate)
            .ok_or_else(|| StoreError::Corrupt(format!("plate code {}", r.plate)))?,
        region: state.and_then(Region::from_code),
        ts_ms: r.ts_ms,
        position: r
            .position_micro(home)
            .map(|(a, b)| GeoPoint::from_micro(a, b)),
        camera,
        heading,
        confidence,
        plate_image: r.plate_image,
        vehicle_image: r.vehicle_image,
        locator: Cursor {
            day,
            rowid: partition::rowid_base(r.ts_ms),
            tie: Some(*r.id.as_bytes()),
        },
    })
}

/// SQL conditions for a query's camera and state (integers, written in).
fn filters(q: &ReadQuery, camera_num: Option<u32>) -> String {
    let mut sql = String::new();
    if let Some(n) = camera_num {
        sql.push_str(&format!(" AND (r.meta & {}) = {n}", partition::CAM_MASK));
    }
    if let Some(region) = q.region {
        sql.push_str(&format!(
            " AND ((r.meta >> {}) & 127) = {}",
            partition::STATE_SHIFT,
            region.code()
        ));
    }
    sql
}

/// What one page of a search asks of the days' partitions.
/// Where a store's main tables are, as the health check shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatabaseState {
    /// `embedded` or `postgres`.
    pub backend: &'static str,
    /// Whether this node's database takes writes (false: a standby,
    /// still in recovery).
    pub primary: bool,
    /// The server answering, `ADDRESS:PORT` (PostgreSQL only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The standby searches run on (`--read-database`), if one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_database: Option<ReadDatabaseState>,
}

/// The standby searches run on, as the health check shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReadDatabaseState {
    /// Whether it answered; searches run on the primary while it does not.
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// How many bytes of WAL it had yet to replay at the last check
    /// (absent before the first search asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_lag_bytes: Option<i64>,
    /// Whether searches run there now (false for 30 s after a failure,
    /// and while it is more than 16 MiB of WAL behind).
    pub in_use: bool,
}

pub(crate) struct PageQuery<'a> {
    pub q: &'a ReadQuery,
    pub candidates: Option<&'a [PlateSpan]>,
    pub camera_num: Option<u32>,
    /// The area's SQL prefilter (`crate::search`'s), if any.
    pub area_sql: Option<String>,
    pub cameras: &'a CameraMap,
    pub limit: usize,
}

/// Puts `value` in `lock`, waiting up to 50 ms for other threads' guards
/// (held for microseconds) to go, but never blocking: this thread may
/// hold the lock itself (a change that reads the policy while it holds
/// the cameras), and then the next use reloads instead.
fn replace<T>(lock: &std::sync::RwLock<T>, value: T) -> bool {
    for _ in 0..50 {
        match lock.try_write() {
            Ok(mut held) => {
                *held = value;
                return true;
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                *p.into_inner() = value;
                return true;
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
        }
    }
    false
}

impl Store {
    fn pg(&self) -> Option<(&PgPool, &reads::Days)> {
        match &self.main {
            crate::Main::Postgres { pool, days, .. } => Some((pool, days)),
            crate::Main::Embedded { .. } => None,
        }
    }

    /// Runs `f` on a session for searching reads: on the read database
    /// when one is set (`--read-database`), else, or when it cannot be
    /// reached or its session is lost part way, on the primary (a search
    /// is slower rather than refused). Call off the async threads.
    fn with_search_conn<T>(
        &self,
        mut f: impl FnMut(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let crate::Main::Postgres { pool, replica, .. } = &self.main else {
            return Err(StoreError::Poisoned);
        };
        if let Some(pool) = replica.as_ref().and_then(|r| r.usable(pool)) {
            // Any failure on the standby (lost, unreachable, a statement
            // cancelled by replay) sends this search to the primary and
            // the next ones too, for a while.
            match pool
                .get()
                .map_err(StoreError::from)
                .and_then(|mut c| f(&mut c))
            {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(error = %e, "a search failed on the read database; running it on the primary");
                    if let Some(r) = replica {
                        r.failed();
                    }
                }
            }
        }
        let mut conn = pool.get()?;
        f(&mut conn)
    }

    /// Where the main tables are and whether this node can write there
    /// now: for the health check (issue 26). On PostgreSQL it asks the
    /// server (one round trip on a pooled session).
    pub fn database_state(&self) -> Result<DatabaseState, StoreError> {
        let Some((pool, _)) = self.pg() else {
            return Ok(DatabaseState {
                backend: "embedded",
                primary: true,
                server: None,
                read_database: None,
            });
        };
        const WHERE: &str =
            "coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'local socket')";
        let row = off_runtime(|| {
            pool.get()?
                .query_one(&format!("SELECT pg_is_in_recovery(), {WHERE}"), &[])
                .map_err(db)
        })?;
        let read_database = match &self.main {
            crate::Main::Postgres {
                replica: Some(r), ..
            } => Some(off_runtime(|| {
                let asked = r.pool().ok_or(StoreError::Poisoned).and_then(|pool| {
                    pool.get()?
                        .query_one(&format!("SELECT {WHERE}"), &[])
                        .map_err(db)
                });
                match asked {
                    Ok(row) => ReadDatabaseState {
                        reachable: true,
                        server: Some(row.get(0)),
                        replay_lag_bytes: r.lag_bytes(),
                        in_use: r.in_use(),
                    },
                    Err(_) => ReadDatabaseState {
                        reachable: false,
                        server: None,
                        replay_lag_bytes: r.lag_bytes(),
                        in_use: false,
                    },
                }
            })),
            _ => None,
        };
        Ok(DatabaseState {
            backend: "postgres",
            primary: !row.get::<_, bool>(0),
            server: Some(row.get(1)),
            read_database,
        })
    }

    /// Whether the store is on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.pg().is_some()
    }

    /// Reloads the caches another node's change made stale (cameras and
    /// their keys, the hot-list matcher, the policy), as its notification
    /// said; a reload that fails leaves the cache marked and is tried at
    /// the next use. Nothing to do on the embedded store.
    pub(crate) fn refresh_stale(&self) {
        use crate::cameras::CameraRegistry;
        let stale = &self.stale;
        let failed = |what: &str, e: StoreError| {
            tracing::warn!(error = %e, "{what} changed on another node but could not be reloaded");
            false
        };
        stale.cameras.refresh(
            || match self.reader().and_then(|r| CameraRegistry::load(&*r)) {
                Ok(reg) => replace(&self.cameras, reg),
                Err(e) => failed("cameras", e),
            },
        );
        stale.hotlists.refresh(|| {
            match self
                .reader()
                .and_then(|r| crate::hotlists::load_matcher(&*r))
            {
                Ok(m) => replace(&self.hot, m),
                Err(e) => failed("hot lists", e),
            }
        });
        stale.policy.refresh(
            || match self.reader().and_then(|r| crate::settings::load(&*r)) {
                Ok(p) => replace(&self.policy, p),
                Err(e) => failed("the policy", e),
            },
        );
    }

    /// Whether this node runs the cluster's scheduled work now (purge,
    /// inactivity suspension, hot-list expiry, sealing, checkpoints), so
    /// that it runs once across nodes, not once per node. Embedded: always
    /// (the data folder's lock already makes one process its owner). On
    /// PostgreSQL: the node whose session holds the advisory lock
    /// `(1347, -1)`; a session of its own keeps it for as long as the node
    /// lives, and when the node dies its session ends, the lock is freed,
    /// and the next node to ask takes over.
    pub fn leads_maintenance(&self) -> Result<bool, StoreError> {
        let crate::Main::Postgres { pool, lease, .. } = &self.main else {
            return Ok(true);
        };
        let mut lease = lease.lock().map_err(|_| StoreError::Poisoned)?;
        // The lease is as good as its session: asked, not assumed (an
        // idle session does not notice its server died; after a
        // fail-over the new primary holds no lock, and another node may
        // take the lease there). A node without the lease asks again on
        // the same session, not on a new connection each time.
        if let Some((c, held)) = lease.as_mut() {
            let asked = off_runtime(|| -> Result<bool, StoreError> {
                if *held {
                    c.is_valid(std::time::Duration::from_secs(5)).map_err(db)?;
                    return Ok(true);
                }
                Ok(c.query_one("SELECT pg_try_advisory_lock(1347, -1)", &[])
                    .map_err(db)?
                    .get(0))
            });
            match asked {
                Ok(got) => {
                    *held = got;
                    return Ok(got);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the scheduled-work lease's database session is gone; asking for the lease again"
                ),
            }
        }
        if let Some((dead, _)) = lease.take() {
            off_runtime(move || drop(dead));
        }
        let (got, client) = off_runtime(|| -> Result<_, StoreError> {
            let mut client = super::connect::connect(pool.url())?;
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock(1347, -1)", &[])
                .map_err(db)?
                .get(0);
            Ok((got, client))
        })?;
        *lease = Some((client, got));
        Ok(got)
    }

    /// [`Store::ingest`] on PostgreSQL: one transaction for the batch,
    /// acknowledged once committed; pictures stored before it (a crash
    /// between leaves pictures no read names, removed with their day, as
    /// the embedded store's files are).
    pub(crate) fn pg_ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestStatus>, StoreError> {
        let (pool, days) = self.pg().ok_or(StoreError::Poisoned)?;
        let mut packed = Vec::with_capacity(items.len());
        {
            // The cameras' lock only while the rows are packed: the
            // pictures go to the database after, so a cache reload (another
            // node's camera change) never waits behind uploads.
            let cams = self.cameras.read().map_err(|_| StoreError::Poisoned)?;
            for item in items {
                let cam = camera_of(&cams, item)?;
                let row = PgRead::pack(item.camera, cam.home_micro(), &item.read)
                    .ok_or_else(|| unplaced(item, cam))?;
                packed.push(row);
            }
        }
        for (row, item) in packed.iter_mut().zip(items) {
            let r = &item.read;
            let day = partition::day_of(r.ts_ms);
            row.plate_image = self.put_picture(day, &r.plate_image)?;
            row.vehicle_image = self.put_picture(day, &r.vehicle_image)?;
        }
        let purged_before = self.purged_before.load(Ordering::SeqCst);
        let statuses = off_runtime(|| -> Result<_, StoreError> {
            let mut conn = pool.get()?;
            reads::ingest(&mut conn, days, &packed, purged_before).map_err(db)
        })?;
        let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
        for (item, status) in items.iter().zip(&statuses) {
            if *status == IngestStatus::Accepted {
                dict.observe(&item.read.plate, partition::day_of(item.read.ts_ms));
            }
        }
        Ok(statuses)
    }

    /// The days with reads in `[first, last]`, newest first.
    fn pg_days(conn: &mut postgres::Client, first: i32, last: i32) -> Result<Vec<i32>, StoreError> {
        reads::days_between(conn, first, last).map_err(db)
    }

    /// One page of a planned search's reads (see [`crate::search`]):
    /// day by day from the newest, each day's partition asked for the
    /// candidates' plates read that day (or, without a plate, the window),
    /// after the cursor, newest first.
    pub(crate) fn pg_page(&self, p: &PageQuery<'_>) -> Result<Vec<StoredRead>, StoreError> {
        let q = p.q;
        let from = q.from_ms.unwrap_or(i64::MIN / 4);
        let to = q.to_ms.unwrap_or(i64::MAX / 4);
        let mut sql_filters = filters(q, p.camera_num);
        if let Some(area) = &p.area_sql {
            sql_filters.push_str(" AND ");
            sql_filters.push_str(area);
        }
        let keep = |read: &StoredRead| match (&q.area, read.position) {
            (Some(area), Some(pos)) => area.contains(pos),
            (Some(_), None) => false,
            (None, _) => true,
        };
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cursor = q.cursor.map(|c| {
            (
                partition::rowid_time(c.day, c.rowid),
                c.tie.map(Uuid::from_bytes).unwrap_or(Uuid::nil()),
            )
        });
        off_runtime(|| {
            self.with_search_conn(|conn| {
            // One plate (an exact search) and no area: one statement on
            // the parent table, whose (plate, time) index scans merge
            // across the window's partitions in order — fewer round trips
            // than a statement per day.
            if let (Some([span]), None) = (p.candidates, &q.area) {
                let after_sql = if cursor.is_some() {
                    " AND (r.ts, r.id) < ($4, $5)"
                } else {
                    " AND $4::bigint IS NULL AND $5::uuid IS NULL"
                };
                let rows = conn
                    .query(
                        &format!(
                            "SELECT {columns} FROM reads r WHERE r.plate = $1 AND r.ts BETWEEN $2 AND $3{after_sql}{sql_filters}
                             ORDER BY r.ts DESC, r.id DESC LIMIT $6"
                        ),
                        &[
                            &span.plate.code(),
                            &from,
                            &to,
                            &cursor.map(|c| c.0),
                            &cursor.map(|c| c.1),
                            &(p.limit as i64),
                        ],
                    )
                    .map_err(db)?;
                return rows
                    .iter()
                    .map(|r| stored(&reads::row_read(r), p.cameras))
                    .collect();
            }
            let mut last = partition::day_of(to);
            if let Some(c) = q.cursor {
                last = last.min(c.day);
            }
            let mut out: Vec<StoredRead> = Vec::new();
            for day in Self::pg_days(conn, partition::day_of(from), last)? {
                let codes: Option<Vec<i64>> = p.candidates.map(|c| reads::codes_on(c, day));
                if codes.as_ref().is_some_and(Vec::is_empty) {
                    continue;
                }
                let lo = from.max(day as i64 * DAY_MS);
                let hi = to.min((day as i64 + 1) * DAY_MS - 1);
                // After the cursor: (time, id) below the last read's.
                let mut after: Option<(i64, Uuid)> = q.cursor.filter(|c| c.day == day).map(|c| {
                    let ts = partition::rowid_time(c.day, c.rowid);
                    (ts, c.tie.map(Uuid::from_bytes).unwrap_or(Uuid::nil()))
                });
                loop {
                    let want = (p.limit - out.len()) as i64;
                    let batch = if q.area.is_some() {
                        want.max(AREA_CHUNK)
                    } else {
                        want
                    };
                    let plate_sql = if codes.is_some() {
                        " AND r.plate = ANY($3)"
                    } else {
                        " AND $3::bigint[] IS NULL"
                    };
                    let after_sql = if after.is_some() {
                        " AND (r.ts, r.id) < ($4, $5)"
                    } else {
                        " AND $4::bigint IS NULL AND $5::uuid IS NULL"
                    };
                    let sql = format!(
                        "SELECT {columns} FROM {} r WHERE r.ts BETWEEN $1 AND $2{plate_sql}{after_sql}{sql_filters}
                         ORDER BY r.ts DESC, r.id DESC LIMIT $6",
                        reads::partition_name(day)
                    );
                    let rows = conn
                        .query(
                            &sql,
                            &[
                                &lo,
                                &hi,
                                &codes,
                                &after.map(|a| a.0),
                                &after.map(|a| a.1),
                                &batch,
                            ],
                        )
                        .map_err(db)?;
                    let fetched = rows.len() as i64;
                    for row in &rows {
                        let r = reads::row_read(row);
                        after = Some((r.ts_ms, r.id));
                        let read = stored(&r, p.cameras)?;
                        if keep(&read) {
                            out.push(read);
                            if out.len() >= p.limit {
                                return Ok(out);
                            }
                        }
                    }
                    if fetched < batch {
                        break;
                    }
                }
            }
            Ok(out)
            })
        })
    }

    /// How many reads of the candidates' plates a query without an area
    /// matches, counted in each day's partition; stops past `cap`.
    pub(crate) fn pg_count(
        &self,
        q: &ReadQuery,
        candidates: &[PlateSpan],
        camera_num: Option<u32>,
        cap: usize,
    ) -> Result<usize, StoreError> {
        let from = q.from_ms.unwrap_or(i64::MIN / 4);
        let to = q.to_ms.unwrap_or(i64::MAX / 4);
        let sql_filters = filters(q, camera_num);
        off_runtime(|| {
            self.with_search_conn(|conn| {
                let mut count = 0usize;
                for day in Self::pg_days(conn, partition::day_of(from), partition::day_of(to))? {
                    let codes = reads::codes_on(candidates, day);
                    if codes.is_empty() {
                        continue;
                    }
                    let n: i64 = conn
                        .query_one(
                            &format!(
                                "SELECT count(*) FROM {} r WHERE r.plate = ANY($1)
                             AND r.ts BETWEEN $2 AND $3{sql_filters}",
                                reads::partition_name(day)
                            ),
                            &[&codes, &from, &to],
                        )
                        .map_err(db)?
                        .get(0);
                    count += n as usize;
                    if count > cap {
                        break;
                    }
                }
                Ok(count)
            })
        })
    }

    /// One read by id and time, from its day's partition.
    pub(crate) fn pg_find_read_at(
        &self,
        id: ReadId,
        ts_ms: i64,
    ) -> Result<Option<StoredRead>, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        let day = partition::day_of(ts_ms);
        let cameras = self.camera_map()?;
        let row = off_runtime(|| -> Result<_, StoreError> {
            let mut conn = pool.get()?;
            if !Self::pg_days(&mut conn, day, day)?.contains(&day) {
                return Ok(None);
            }
            Ok(conn
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM {} WHERE ts = $1 AND id = $2",
                        reads::partition_name(day)
                    ),
                    &[&ts_ms, &id.0],
                )
                .map_err(db)?
                .map(|r| reads::row_read(&r)))
        })?;
        row.map(|r| stored(&r, &cameras)).transpose()
    }

    /// Reads stored, all days.
    pub(crate) fn pg_read_count(&self) -> Result<u64, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            let n: i64 = pool
                .get()?
                .query_one("SELECT count(*) FROM reads", &[])
                .map_err(db)?
                .get(0);
            Ok(n as u64)
        })
    }

    /// Bytes the reads and pictures take in the database.
    pub(crate) fn pg_bytes(&self) -> Result<u64, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            let mut conn = pool.get()?;
            let reads = reads::bytes(&mut *conn).map_err(db)?;
            let pictures = reads::partitions_bytes(&mut *conn, "pictures").map_err(db)?;
            Ok((reads + pictures).max(0) as u64)
        })
    }

    /// The days with reads, oldest first, and how many each holds.
    pub(crate) fn pg_day_counts(&self) -> Result<Vec<(i32, u64)>, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            let mut conn = pool.get()?;
            let days: Vec<i32> = conn
                .query("SELECT day FROM read_days ORDER BY day", &[])
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut out = Vec::with_capacity(days.len());
            for day in days {
                let n: i64 = conn
                    .query_one(
                        &format!("SELECT count(*) FROM {}", reads::partition_name(day)),
                        &[],
                    )
                    .map_err(db)?
                    .get(0);
                out.push((day, n as u64));
            }
            Ok(out)
        })
    }

    /// Removes a day past retention: its reads' partition and its
    /// pictures', each dropped whole (a moment's lock, never rows deleted
    /// under ingest).
    pub(crate) fn pg_drop_day(&self, day: i32) -> Result<(), StoreError> {
        let (pool, days) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| -> Result<(), StoreError> {
            let mut conn = pool.get()?;
            let mut tx = conn.transaction().map_err(db)?;
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; DELETE FROM read_days WHERE day = {day};",
                reads::partition_name(day)
            ))
            .map_err(db)?;
            tx.commit().map_err(db)?;
            super::pictures::drop_day(&mut *conn, day)?;
            Ok(())
        })?;
        days.forget();
        Ok(())
    }

    /// Removes a day's pictures past image retention, keeping its reads
    /// (which then name none).
    pub(crate) fn pg_clear_pictures(&self, day: i32) -> Result<u64, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| -> Result<u64, StoreError> {
            let mut conn = pool.get()?;
            let n = super::pictures::count_day(&mut *conn, day)?;
            let mut tx = conn.transaction().map_err(db)?;
            tx.execute(
                &format!(
                    "UPDATE {} SET plate_sha = NULL, plate_kind = NULL, vehicle_sha = NULL, vehicle_kind = NULL
                     WHERE plate_sha IS NOT NULL OR vehicle_sha IS NOT NULL",
                    reads::partition_name(day)
                ),
                &[],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            super::pictures::drop_day(&mut *conn, day)?;
            Ok(n)
        })
    }

    /// The days whose pictures are stored, oldest first.
    pub(crate) fn pg_picture_days(&self) -> Result<Vec<i32>, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            Ok(pool
                .get()?
                .query("SELECT DISTINCT day FROM pictures ORDER BY day", &[])
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    /// Whether any read of `plate` is still stored (one statement: each
    /// day's (plate, time) index is asked once).
    pub(crate) fn pg_has_plate(&self, plate: &Plate) -> Result<bool, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            Ok(pool
                .get()?
                .query_opt(
                    "SELECT 1 FROM reads WHERE plate = $1 LIMIT 1",
                    &[&plate.code()],
                )
                .map_err(db)?
                .is_some())
        })
    }

    /// The oldest read kept.
    pub(crate) fn pg_oldest_read_ms(&self) -> Result<Option<i64>, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            let mut conn = pool.get()?;
            for day in Self::pg_days(&mut conn, i32::MIN, i32::MAX)?
                .into_iter()
                .rev()
            {
                let min: Option<i64> = conn
                    .query_one(
                        &format!("SELECT min(ts) FROM {}", reads::partition_name(day)),
                        &[],
                    )
                    .map_err(db)?
                    .get(0);
                if min.is_some() {
                    return Ok(min);
                }
            }
            Ok(None)
        })
    }

    /// Compacts finished days (see [`Store::seal_finished_days`]).
    pub(crate) fn pg_seal_days(&self, before: i32) -> Result<Vec<i32>, StoreError> {
        let (pool, _) = self.pg().ok_or(StoreError::Poisoned)?;
        off_runtime(|| {
            let mut conn = pool.get()?;
            let days: Vec<i32> = conn
                .query(
                    "SELECT day FROM read_days WHERE day < $1 AND sealed_at IS NULL ORDER BY day",
                    &[&before],
                )
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for &day in &days {
                reads::seal_day(&mut conn, day).map_err(db)?;
                conn.execute(
                    "UPDATE read_days SET sealed_at = now() WHERE day = $1",
                    &[&day],
                )
                .map_err(db)?;
            }
            Ok(days)
        })
    }
}
