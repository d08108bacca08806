//! Reads in PostgreSQL: one table partitioned by UTC day (declarative
//! range partitioning on the read's time), so retention drops whole
//! partitions and never deletes rows under ingest.
//!
//! A row holds what an embedded day file's row holds, packed the same way
//! (`crate::partition`): time, base-37 plate code, camera / confidence /
//! state / heading in one integer, the UUID, and a position only where it
//! is not the fixed camera's own. Columns are ordered so no alignment
//! padding falls between them. Indexes: a btree on (plate, time) for every
//! search that ends in "the reads of these plates" (exact, and the
//! pattern searches after the plate dictionary has found the plates), and
//! a BRIN on time, a few pages per partition, for time windows and
//! canvasses (reads arrive in time order, which is what BRIN needs).
//!
//! Ingest is idempotent without a unique index (which would cost about 30
//! bytes a read): a re-sent read has the same plate, time and id, so the
//! (plate, time) index finds it. Concurrent batches from the same camera
//! are serialized by an advisory lock on the camera's number, so two
//! copies of one read cannot both pass that check.

use std::collections::BTreeSet;
use std::sync::Mutex;

use platekeeper_core::NewRead;
use postgres::GenericClient;
use uuid::Uuid;

use crate::images::ImageRef;
use crate::ingest::IngestStatus;
use crate::partition::{self, DAY_MS};

/// One read, packed for its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgRead {
    pub ts_ms: i64,
    pub plate: i64,
    pub meta: i64,
    pub id: Uuid,
    pub pos: Option<i64>,
    /// The plate crop and the vehicle picture, stored in `pictures`.
    pub plate_image: Option<ImageRef>,
    pub vehicle_image: Option<ImageRef>,
}

impl PgRead {
    /// Packs a validated read from camera number `camera`, whose fixed
    /// position (if any) is `home`. `None`: the read has no position and
    /// the camera none registered.
    pub fn pack(camera: u32, home: Option<(i32, i32)>, read: &NewRead) -> Option<PgRead> {
        Some(PgRead {
            ts_ms: read.ts_ms,
            plate: read.plate.code(),
            meta: partition::pack_meta(
                camera,
                read.confidence,
                read.region.map(|g| g.code()),
                read.heading,
            ),
            id: read.id.0,
            pos: partition::stored_pos(read, home)?,
            plate_image: None,
            vehicle_image: None,
        })
    }

    /// The camera number packed in the row.
    pub fn camera(&self) -> u32 {
        partition::unpack_meta(self.meta).0
    }
}

/// A read row's columns, in [`row_read`]'s order.
pub(crate) const COLUMNS: &str =
    "ts, plate, meta, id, pos, plate_sha, plate_kind, vehicle_sha, vehicle_kind";

/// The partition of one day: `reads_dYYYYMMDD`.
pub(crate) fn partition_name(day: i32) -> String {
    let file = partition::file_name(day);
    format!("reads_d{}", file.trim_end_matches(".db").replace('-', ""))
}

/// The advisory lock (key pair 1347, 0) under which partitions are made;
/// camera locks use (1347, camera number ≥ 1).
pub(crate) const PARTITION_LOCK: &str = "1347, 0";

/// Days whose partitions are known to exist: a cache, rebuilt from the
/// catalog on demand (another node may have made a day since).
#[derive(Default)]
pub struct Days {
    known: Mutex<BTreeSet<i32>>,
}

impl Days {
    /// Makes the partition of `day` if it is not there yet. Making one
    /// takes a lock on the parent table for a moment, so it is done once
    /// per day (and the server makes tomorrow's ahead of time).
    pub fn ensure(&self, client: &mut postgres::Client, day: i32) -> Result<(), postgres::Error> {
        if self.known.lock().map(|k| k.contains(&day)).unwrap_or(false) {
            return Ok(());
        }
        let (from, to) = (day as i64 * DAY_MS, (day as i64 + 1) * DAY_MS);
        // `IF NOT EXISTS` is not safe against two sessions creating the
        // same table at once (one fails with "already exists"): creating
        // partitions is serialized by an advisory lock.
        let mut tx = client.transaction()?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({PARTITION_LOCK});
             CREATE TABLE IF NOT EXISTS {} PARTITION OF reads FOR VALUES FROM ({from}) TO ({to});
             INSERT INTO read_days(day) VALUES ({day}) ON CONFLICT DO NOTHING;",
            partition_name(day)
        ))?;
        tx.commit()?;
        if let Ok(mut k) = self.known.lock() {
            k.insert(day);
        }
        Ok(())
    }

    /// Forgets what it knew (after a purge dropped days).
    pub fn forget(&self) {
        if let Ok(mut k) = self.known.lock() {
            k.clear();
        }
    }
}

/// Stores a batch in one transaction, committed (and, with
/// `synchronous_commit` on, durable) before this returns; one status per
/// read, in order. `purged_before`: days before it are past retention.
pub fn ingest(
    client: &mut postgres::Client,
    days: &Days,
    reads: &[PgRead],
    purged_before: i32,
) -> Result<Vec<IngestStatus>, postgres::Error> {
    let mut statuses = vec![IngestStatus::Accepted; reads.len()];
    let mut todo: Vec<usize> = Vec::with_capacity(reads.len());
    let mut in_batch = std::collections::HashSet::with_capacity(reads.len());
    for (i, r) in reads.iter().enumerate() {
        if partition::day_of(r.ts_ms) < purged_before {
            statuses[i] = IngestStatus::PastRetention;
        } else if !in_batch.insert((r.id, r.ts_ms)) {
            // The same read twice in one batch: stored once.
            statuses[i] = IngestStatus::Duplicate;
        } else {
            todo.push(i);
        }
    }
    if todo.is_empty() {
        return Ok(statuses);
    }
    let day_set: BTreeSet<i32> = todo
        .iter()
        .map(|&i| partition::day_of(reads[i].ts_ms))
        .collect();
    for day in day_set {
        days.ensure(client, day)?;
    }
    let mut cameras: Vec<i64> = todo.iter().map(|&i| reads[i].camera() as i64).collect();
    cameras.sort_unstable();
    cameras.dedup();

    let mut tx = client.transaction()?;
    // In camera order, so two batches never wait on each other in a cycle.
    tx.execute(
        "SELECT pg_advisory_xact_lock(1347, c::int) FROM unnest($1::bigint[]) AS c ORDER BY c",
        &[&cameras],
    )?;
    // Each day's reads go straight into its partition, and the duplicate
    // check looks only there: a statement on the parent table would plan
    // and open every day's partition (30 and more), which measured as the
    // largest cost of ingest (docs/BENCHMARKS.md).
    let mut by_day: std::collections::BTreeMap<i32, Vec<usize>> = Default::default();
    for &i in &todo {
        by_day
            .entry(partition::day_of(reads[i].ts_ms))
            .or_default()
            .push(i);
    }
    let mut stored = Vec::with_capacity(todo.len());
    for (day, items) in by_day {
        let ts: Vec<i64> = items.iter().map(|&i| reads[i].ts_ms).collect();
        let plate: Vec<i64> = items.iter().map(|&i| reads[i].plate).collect();
        let meta: Vec<i64> = items.iter().map(|&i| reads[i].meta).collect();
        let id: Vec<Uuid> = items.iter().map(|&i| reads[i].id).collect();
        let pos: Vec<Option<i64>> = items.iter().map(|&i| reads[i].pos).collect();
        let sha = |f: fn(&PgRead) -> &Option<ImageRef>| -> Vec<Option<Vec<u8>>> {
            items
                .iter()
                .map(|&i| f(&reads[i]).as_ref().map(|r| r.sha256.to_vec()))
                .collect()
        };
        let kind = |f: fn(&PgRead) -> &Option<ImageRef>| -> Vec<Option<i16>> {
            items
                .iter()
                .map(|&i| f(&reads[i]).as_ref().map(|r| r.kind_code() as i16))
                .collect()
        };
        let (plate_sha, plate_kind) = (sha(|r| &r.plate_image), kind(|r| &r.plate_image));
        let (vehicle_sha, vehicle_kind) = (sha(|r| &r.vehicle_image), kind(|r| &r.vehicle_image));
        let table = partition_name(day);
        stored.extend(tx.query(
            &format!(
                "INSERT INTO {table}({COLUMNS})
                 SELECT n.ts, n.plate, n.meta, n.id, n.pos, n.ps, n.pk, n.vs, n.vk
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::uuid[], $5::bigint[],
                             $6::bytea[], $7::smallint[], $8::bytea[], $9::smallint[])
                      AS n(ts, plate, meta, id, pos, ps, pk, vs, vk)
                 WHERE NOT EXISTS (
                     SELECT 1 FROM {table} r WHERE r.plate = n.plate AND r.ts = n.ts AND r.id = n.id)
                 RETURNING id, ts, plate"
            ),
            &[
                &ts,
                &plate,
                &meta,
                &id,
                &pos,
                &plate_sha,
                &plate_kind,
                &vehicle_sha,
                &vehicle_kind,
            ],
        )?);
    }
    // Every node's plate dictionary learns the plates stored (delivered
    // with the commit).
    let new_plates: Vec<(i64, i32)> = stored
        .iter()
        .map(|r| (r.get::<_, i64>(2), partition::day_of(r.get::<_, i64>(1))))
        .collect();
    super::listener::notify(&mut tx, &new_plates)?;
    tx.commit()?;
    let accepted: std::collections::HashSet<(Uuid, i64)> =
        stored.iter().map(|r| (r.get(0), r.get(1))).collect();
    for &i in &todo {
        if !accepted.contains(&(reads[i].id, reads[i].ts_ms)) {
            statuses[i] = IngestStatus::Duplicate;
        }
    }
    Ok(statuses)
}

/// The reads of one plate in `[from_ms, to_ms]`, newest first, at most
/// `limit`.
pub fn exact(
    client: &mut impl GenericClient,
    plate: i64,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> Result<Vec<PgRead>, postgres::Error> {
    let rows = client.query(
        &format!(
            "SELECT {COLUMNS} FROM reads
             WHERE plate = $1 AND ts BETWEEN $2 AND $3 ORDER BY ts DESC, id DESC LIMIT $4"
        ),
        &[&plate, &from_ms, &to_ms, &limit],
    )?;
    Ok(rows.iter().map(row_read).collect())
}

/// Every distinct plate read, for the in-memory plate dictionary the
/// pattern searches run over (a cache each node rebuilds at start).
pub fn distinct_plates(client: &mut impl GenericClient) -> Result<Vec<i64>, postgres::Error> {
    Ok(client
        .query("SELECT DISTINCT plate FROM reads", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Drops the partitions of days before `day` (retention): whole tables,
/// each gone in a moment, never rows deleted under ingest. Returns the
/// days dropped.
pub fn drop_days_before(
    client: &mut postgres::Client,
    days: &Days,
    day: i32,
) -> Result<Vec<i32>, postgres::Error> {
    let old: Vec<i32> = client
        .query(
            "SELECT day FROM read_days WHERE day < $1 ORDER BY day",
            &[&day],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for d in &old {
        let mut tx = client.transaction()?;
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {}; DELETE FROM read_days WHERE day = {d};",
            partition_name(*d)
        ))?;
        tx.commit()?;
    }
    days.forget();
    Ok(old)
}

/// Bytes the reads take on disk: every partition's table, indexes and
/// TOAST (`pg_total_relation_size`).
pub fn bytes(client: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    partitions_bytes(client, "reads")
}

/// Bytes the partitions of the table `parent` take on disk.
pub(crate) fn partitions_bytes(
    client: &mut impl GenericClient,
    parent: &str,
) -> Result<i64, postgres::Error> {
    let row = client.query_one(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::text::regclass",
        &[&parent],
    )?;
    Ok(row.get(0))
}

/// Compacts a finished day: rebuilds its indexes, whose pages random
/// inserts left part empty (the embedded store's sealing does the same
/// for a day file). Concurrent, so searches and late reads go on.
pub fn seal_day(client: &mut postgres::Client, day: i32) -> Result<(), postgres::Error> {
    client.batch_execute(&format!(
        "REINDEX TABLE CONCURRENTLY {}",
        partition_name(day)
    ))
}

pub(crate) fn row_read(r: &postgres::Row) -> PgRead {
    let image = |sha: usize, kind: usize| {
        let sha: Option<Vec<u8>> = r.get(sha);
        let kind: Option<i16> = r.get(kind);
        sha.zip(kind)
            .and_then(|(s, k)| ImageRef::from_parts(&s, k.into()))
    };
    PgRead {
        ts_ms: r.get(0),
        plate: r.get(1),
        meta: r.get(2),
        id: r.get(3),
        pos: r.get(4),
        plate_image: image(5, 6),
        vehicle_image: image(7, 8),
    }
}

/// The codes of the plates among `spans` the dictionary says were read on
/// `day`: what a day's partition is asked for.
pub(crate) fn codes_on(spans: &[crate::dictionary::PlateSpan], day: i32) -> Vec<i64> {
    spans
        .iter()
        .filter(|s| s.maybe_on(day))
        .map(|s| s.plate.code())
        .collect()
}

/// The reads of the plates the dictionary found (`spans`) in
/// `[from_ms, to_ms]`, newest first, at most `limit`: day by day from the
/// newest, each day's partition asked only for the plates the dictionary
/// says were read that day, stopping once `limit` are found. A substring
/// pattern can match thousands of plates; asking every partition for all
/// of them in one statement took 660 ms at p99 on 10M reads, against this.
pub fn of_spans(
    client: &mut impl GenericClient,
    spans: &[crate::dictionary::PlateSpan],
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<PgRead>, postgres::Error> {
    let (first, last) = (partition::day_of(from_ms), partition::day_of(to_ms));
    let days = days_between(client, first, last)?;
    let mut out = Vec::new();
    for day in days {
        let codes = codes_on(spans, day);
        if codes.is_empty() {
            continue;
        }
        let rows = client.query(
            &format!(
                "SELECT {COLUMNS} FROM {}
                 WHERE plate = ANY($1) AND ts BETWEEN $2 AND $3 ORDER BY ts DESC, id DESC LIMIT $4",
                partition_name(day)
            ),
            &[&codes, &from_ms, &to_ms, &((limit - out.len()) as i64)],
        )?;
        out.extend(rows.iter().map(row_read));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The days with reads in `[first, last]`, newest first.
pub fn days_between(
    client: &mut impl GenericClient,
    first: i32,
    last: i32,
) -> Result<Vec<i32>, postgres::Error> {
    Ok(client
        .query(
            "SELECT day FROM read_days WHERE day BETWEEN $1 AND $2 ORDER BY day DESC",
            &[&first, &last],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The most candidates one canvass fetches: a window wider than this
/// holds is refused with "narrow the query" rather than read whole.
pub const MAX_CANVASS_CANDIDATES: i64 = 200_000;

/// The reads in `[from_ms, to_ms]` taken by one of `cameras` at its own
/// place, or carrying a position of their own: a canvass's candidates,
/// which the caller keeps if they lie in its area (the BRIN on time finds
/// the window's pages). At most `max` (newest first); `true` with them
/// when there were more, so the caller can refuse rather than answer
/// from part of the window.
pub fn in_window(
    client: &mut impl GenericClient,
    from_ms: i64,
    to_ms: i64,
    cameras: &[i64],
    max: i64,
) -> Result<(Vec<PgRead>, bool), postgres::Error> {
    let max = max.clamp(1, MAX_CANVASS_CANDIDATES);
    let rows = client.query(
        &format!(
            "SELECT {COLUMNS} FROM reads
             WHERE ts BETWEEN $1 AND $2 AND (pos IS NOT NULL OR (meta & {}) = ANY($3))
             ORDER BY ts DESC, id DESC LIMIT $4",
            partition::CAM_MASK
        ),
        &[&from_ms, &to_ms, &cameras, &(max + 1)],
    )?;
    let more = rows.len() as i64 > max;
    Ok((rows.iter().take(max as usize).map(row_read).collect(), more))
}

/// Fills `dictionary` with every plate read, day by day: the in-memory
/// cache the pattern searches run over, which a node rebuilds at start.
/// Returns the distinct plates.
pub fn load_dictionary(
    client: &mut impl GenericClient,
    dictionary: &mut crate::dictionary::PlateDictionary,
) -> Result<usize, postgres::Error> {
    let days: Vec<i32> = client
        .query("SELECT day FROM read_days ORDER BY day", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for day in days {
        for r in client.query(
            &format!("SELECT DISTINCT plate FROM {}", partition_name(day)),
            &[],
        )? {
            // A code that is no plate is damage: it can match nothing.
            if let Some(p) = platekeeper_core::Plate::from_code(r.get(0)) {
                dictionary.observe(&p, day);
            }
        }
    }
    Ok(dictionary.len())
}

impl PgRead {
    /// Where the read was taken, in microdegrees: its own position, or
    /// its fixed camera's (`home`).
    pub fn position_micro(&self, home: Option<(i32, i32)>) -> Option<(i32, i32)> {
        match self.pos {
            Some(p) => Some(partition::unpack_pos(p)),
            None => home,
        }
    }
}
