//! Retention: the purge (SPEC R6.1; policies 000 § 462.12, 001 § 467.5,
//! 003 § 429.9).
//!
//! Each class of data goes when the agency's period for it has passed
//! (`platekeeper_core::retention`). Reads and images go a whole UTC day
//! at a time — a day file and a day folder are deleted, so the writer is
//! held for milliseconds, not for millions of row deletions. Held reads
//! were copied apart when their hold was placed ([`crate::holds`]) and
//! survive; a lifted hold's copies go once their day is past retention.
//! Every run that removes anything appends one `purge` entry to the log
//! naming each class, the count and the cutoff; removing old log entries
//! records the hash the remaining chain starts from, so the log still
//! verifies.
//!
//! Order: the database changes and the log entry commit first, then the
//! files go. A crash between the two leaves files the next run removes
//! (and records again); it never leaves a removal unrecorded.

use std::time::Instant;

use platekeeper_core::read::format_time_ms;
use platekeeper_core::retention::{DataClass, DAY_MS};
use rusqlite::params;
use serde::Serialize;

use crate::accounts::Actor;
use crate::images::ImageRef;
use crate::sql::{Optional as _, Sql};
use crate::{log, partition, Store, StoreError};

/// One class's share of a purge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgedClass {
    pub class: &'static str,
    /// Items removed (or, in a dry run, that would be).
    pub count: u64,
    /// Data from before this time was past retention.
    pub cutoff: String,
    pub retention_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgeReport {
    pub dry_run: bool,
    pub at: String,
    pub classes: Vec<PurgedClass>,
    /// Day files removed (`YYYY-MM-DD`).
    pub days_removed: Vec<String>,
    /// Held read copies kept (open holds, or still within retention).
    pub held_reads_kept: u64,
    /// Distinct plates whose every read was in the removed days: they
    /// leave the in-memory plate dictionary too, so no search matches or
    /// counts them.
    pub plates_forgotten: u64,
    /// Downloads past their destroy-by date with no destruction recorded.
    pub overdue_downloads: u64,
    /// Time the purge held a writer (main database, a day file, the day
    /// map or the plate dictionary), in ms, all told.
    pub writer_ms: f64,
    /// The longest of those holds: the most any search or ingest waited.
    pub writer_longest_ms: f64,
    /// The log entry recording the purge (absent when nothing went).
    pub log_seq: Option<i64>,
}

impl PurgeReport {
    pub fn removed(&self) -> u64 {
        self.classes.iter().map(|c| c.count).sum()
    }
}

const META_PURGED_BEFORE: &str = "purged_before_day";
const META_LOG_ANCHOR: &str = "log_anchor";

/// The first day whose reads may still be written (earlier days were
/// purged and must not be recreated by a late upload).
pub(crate) fn load_purged_before(conn: &dyn Sql) -> Result<i32, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_PURGED_BEFORE],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(i32::MIN))
}

/// The (seq, hash) the log now starts after, if old entries were purged.
pub(crate) fn load_log_anchor(conn: &dyn Sql) -> Result<Option<log::Head>, StoreError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_LOG_ANCHOR],
            |r| r.get(0),
        )
        .optional()?;
    let Some(v) = v else { return Ok(None) };
    let bad = || StoreError::Corrupt(format!("log anchor {v:?}"));
    let (seq, hash) = v.split_once(':').ok_or_else(bad)?;
    let hash: [u8; 32] = hex::decode(hash)
        .ok()
        .and_then(|h| h.try_into().ok())
        .ok_or_else(bad)?;
    Ok(Some(log::Head {
        seq: seq.parse().map_err(|_| bad())?,
        hash,
    }))
}

/// The time a purge held writers: all told, and the longest single hold.
#[derive(Default)]
struct WriterHolds {
    total: std::time::Duration,
    longest: std::time::Duration,
}

impl WriterHolds {
    fn add(&mut self, started: Instant) {
        let held = started.elapsed();
        self.total += held;
        self.longest = self.longest.max(held);
    }
}

/// Dictionary entries the purge goes through per hold of its write lock
/// (about 12 ms of work at 100M reads; see docs/BENCHMARKS.md).
const FORGET_PART: usize = 1 << 20;

fn day_label(day: i32) -> String {
    partition::file_name(day)
        .trim_end_matches(".db")
        .to_string()
}

impl Store {
    /// Applies retention now. A dry run counts what would go and changes
    /// nothing. Returns what was removed, per class.
    pub fn purge(
        &self,
        now_ms: i64,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<PurgeReport, StoreError> {
        let policy = self.policy().retention;
        let mut writer = WriterHolds::default();
        let class = |c: DataClass, count: u64| PurgedClass {
            class: c.as_str(),
            count,
            cutoff: format_time_ms(policy.cutoff_ms(c, now_ms)),
            retention_days: policy.days(c),
        };

        // Reads: whole day files past retention.
        let first_read_day = policy.first_kept_day(DataClass::Reads, now_ms);
        let first_image_day = policy.first_kept_day(DataClass::Images, now_ms);
        let reads_cut = first_read_day as i64 * DAY_MS;
        let mut read_days = Vec::new();
        let mut image_days = Vec::new();
        let mut reads_count = 0u64;
        let mut images_count = 0u64;
        // On PostgreSQL: the days whose partitions go, and those whose
        // pictures go.
        let mut pg_read_days: Vec<i32> = Vec::new();
        let mut pg_picture_days: Vec<i32> = Vec::new();
        if self.on_postgres() {
            for (day, n) in self.pg_day_counts()? {
                if day < first_read_day {
                    reads_count += n;
                    pg_read_days.push(day);
                }
            }
            for day in self.pg_picture_days()? {
                if day < first_image_day {
                    images_count += self.images.count_day(day)?;
                    pg_picture_days.push(day);
                }
            }
        }
        for f in self.day_files() {
            if f.day < first_read_day {
                let n: i64 = f
                    .reader()?
                    .query_row("SELECT count(*) FROM reads", [], |r| r.get(0))?;
                reads_count += n as u64;
                read_days.push(f);
            } else if f.day < first_image_day {
                let n: i64 = f
                    .reader()?
                    .query_row("SELECT count(*) FROM images", [], |r| r.get(0))?;
                if n > 0 {
                    image_days.push(f);
                }
            }
        }
        // Picture folders of days past image retention (including those
        // whose day file is gone).
        let mut folder_days: Vec<i32> = Vec::new();
        let images_root = self.dir.join("images");
        let folders = if self.on_postgres() {
            Err(std::io::Error::other("pictures are in the database"))
        } else {
            std::fs::read_dir(&images_root)
        };
        if let Ok(entries) = folders {
            for e in entries.flatten() {
                if let Some(day) = e
                    .file_name()
                    .to_str()
                    .and_then(|n| partition::parse_file_name(&format!("{n}.db")))
                {
                    if day < first_image_day {
                        images_count += self.images.count_day(day)?;
                        folder_days.push(day);
                    }
                }
            }
        }

        let conn = self.reader()?;
        // Held copies of lifted holds, past retention, named by no open hold.
        const RELEASABLE: &str = "FROM held_reads r JOIN holds h ON h.id = r.hold_id
             WHERE h.lifted_at IS NOT NULL AND r.ts < ?1
               AND NOT EXISTS (SELECT 1 FROM held_reads o JOIN holds oh ON oh.id = o.hold_id
                               WHERE o.read_id = r.read_id AND oh.lifted_at IS NULL)";
        let held_release: i64 =
            conn.query_row(&format!("SELECT count(*) {RELEASABLE}"), [reads_cut], |r| {
                r.get(0)
            })?;
        let held_total: i64 =
            conn.query_row("SELECT count(*) FROM held_reads", (), |r| r.get(0))?;
        let alerts_cut = policy.cutoff_ms(DataClass::Reads, now_ms);
        let alerts: i64 = conn.query_row(
            "SELECT count(*) FROM alerts WHERE read_ts < ?1",
            [alerts_cut],
            |r| r.get(0),
        )?;
        let log_cut = policy.cutoff_ms(DataClass::AccessLog, now_ms);
        let log_through: Option<i64> =
            conn.query_row("SELECT max(seq) FROM log WHERE ts < ?1", [log_cut], |r| {
                r.get(0)
            })?;
        let anchor = load_log_anchor(&conn)?;
        let log_count = match (log_through, anchor) {
            (Some(n), Some(a)) => (n - a.seq).max(0),
            (Some(n), None) => n,
            _ => 0,
        } as u64;
        let docs_cut = policy.cutoff_ms(DataClass::AuditDocuments, now_ms);
        let docs = crate::sharing::count_documents_before(&conn, docs_cut)?;
        let overdue = crate::sharing::count_overdue_downloads(&conn, now_ms)?;
        let hot_due = self.hotlist_purge_due(now_ms, policy.hotlists_days)?;
        drop(conn);

        let mut report = PurgeReport {
            dry_run,
            at: format_time_ms(now_ms),
            classes: vec![
                class(
                    DataClass::Reads,
                    reads_count + held_release as u64 + alerts as u64,
                ),
                class(DataClass::Images, images_count),
                class(DataClass::HotLists, hot_due),
                class(DataClass::AccessLog, log_count),
                class(DataClass::AuditDocuments, docs),
            ],
            days_removed: read_days
                .iter()
                .map(|f| f.day)
                .chain(pg_read_days.iter().copied())
                .map(day_label)
                .collect(),
            held_reads_kept: (held_total - held_release) as u64,
            // A dry run counts them; a real one as it forgets them.
            plates_forgotten: if dry_run {
                self.dictionary
                    .read()
                    .map_err(|_| StoreError::Poisoned)?
                    .count_before(first_read_day) as u64
            } else {
                0
            },
            overdue_downloads: overdue,
            writer_ms: 0.0,
            writer_longest_ms: 0.0,
            log_seq: None,
        };
        if dry_run
            || (report.removed() == 0
                && read_days.is_empty()
                && folder_days.is_empty()
                && pg_read_days.is_empty()
                && pg_picture_days.is_empty())
        {
            return Ok(report);
        }

        // Hot lists have their own logged purge (per entry, with reasons).
        let started = Instant::now();
        let hot = self.purge_hotlists_within(now_ms, policy.hotlists_days)?;
        writer.add(started);
        report.classes[2].count = hot.entries_removed as u64 + hot.lists_removed.len() as u64;

        // The database: held copies, alerts, old log entries, documents,
        // and the record of it all, in one transaction.
        let started = Instant::now();
        let mut released_images: Vec<ImageRef> = Vec::new();
        let details = serde_json::json!({
            "classes": report.classes,
            "days_removed": report.days_removed,
            "held_reads_kept": report.held_reads_kept,
            "overdue_downloads": overdue,
            "log_through": log_through.filter(|_| log_count > 0),
        });
        let entry = self.with_log(|tx, head| {
            {
                let mut stmt = tx.prepare(&format!(
                    "SELECT r.plate_sha, r.plate_kind, r.vehicle_sha, r.vehicle_kind {RELEASABLE}"
                ))?;
                let pairs = crate::sql::collect_rows(&mut stmt, [reads_cut], |r| {
                    Ok(ImageRef::pair_in_row(r, 0)?)
                })?;
                released_images.extend(pairs.into_iter().flatten().flatten());
            }
            tx.execute(
                &format!(
                    "DELETE FROM held_reads WHERE (hold_id, read_id) IN (SELECT r.hold_id, r.read_id {RELEASABLE})"
                ),
                [reads_cut],
            )?;
            // Pictures still named by a kept copy stay.
            released_images.retain(|i| {
                tx.query_row(
                    "SELECT 1 FROM held_reads WHERE plate_sha = ?1 OR vehicle_sha = ?1 LIMIT 1",
                    [&i.sha256[..]],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_none())
                .unwrap_or(false)
            });
            tx.execute("DELETE FROM alerts WHERE read_ts < ?1", [alerts_cut])?;
            if let (Some(through), true) = (log_through, log_count > 0) {
                let hash: Vec<u8> =
                    tx.query_row("SELECT hash FROM log WHERE seq = ?1", [through], |r| r.get(0))?;
                tx.execute("DELETE FROM log WHERE seq <= ?1", [through])?;
                tx.execute("DELETE FROM access_reads WHERE access_id <= ?1", [through])?;
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![META_LOG_ANCHOR, format!("{through}:{}", hex::encode(hash))],
                )?;
            }
            crate::sharing::purge_documents_before(tx, docs_cut)?;
            let last_removed = read_days
                .iter()
                .map(|f| f.day)
                .chain(pg_read_days.iter().copied())
                .max();
            if let Some(last) = last_removed {
                let before = last + 1;
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = CASE
                         WHEN CAST(meta.value AS BIGINT) >= CAST(excluded.value AS BIGINT)
                         THEN meta.value ELSE excluded.value END",
                    params![META_PURGED_BEFORE, before.to_string()],
                )?;
                self.purged_before
                    .fetch_max(before, std::sync::atomic::Ordering::SeqCst);
            }
            log::append(tx, head, actor.entry(now_ms, "system", "purge", details))
        })?;
        writer.add(started);
        report.log_seq = Some(entry.seq);

        // Then the files. The day leaves the map first (a brief write
        // lock), so no new search opens it; searches already running keep
        // their open handle until they finish.
        let started = Instant::now();
        {
            let mut days = self.days.write().map_err(|_| StoreError::Poisoned)?;
            for f in &read_days {
                days.remove(&f.day);
            }
        }
        writer.add(started);
        for &day in &pg_read_days {
            let started = Instant::now();
            self.pg_drop_day(day)?;
            writer.add(started);
        }
        for &day in &pg_picture_days {
            if !pg_read_days.contains(&day) {
                let started = Instant::now();
                self.pg_clear_pictures(day)?;
                writer.add(started);
            }
        }
        // The dictionary forgets the removed days' plates a part at a
        // time, so searches and ingest wait for one part, not for all.
        if !read_days.is_empty() || !pg_read_days.is_empty() {
            let mut from = 0;
            loop {
                let started = Instant::now();
                let mut dict = self.dictionary.write().map_err(|_| StoreError::Poisoned)?;
                let (gone, next) = dict.forget_range(first_read_day, from, FORGET_PART);
                let done = next >= dict.entries();
                drop(dict);
                writer.add(started);
                report.plates_forgotten += gone as u64;
                if done {
                    break;
                }
                from = next;
            }
        }
        for f in &read_days {
            f.delete_files()?;
        }
        for f in &image_days {
            let started = Instant::now();
            f.clear_images()?;
            writer.add(started);
        }
        for day in folder_days {
            self.images.remove_day(day)?;
        }
        for i in released_images {
            self.images.release_held(&i)?;
        }
        report.writer_ms = writer.total.as_secs_f64() * 1000.0;
        report.writer_longest_ms = writer.longest.as_secs_f64() * 1000.0;
        Ok(report)
    }

    /// The oldest read kept in a day file (held copies aside): what purge
    /// compliance is judged on.
    pub fn oldest_read_ms(&self) -> Result<Option<i64>, StoreError> {
        if self.on_postgres() {
            return self.pg_oldest_read_ms();
        }
        for f in self.day_files() {
            let conn = f.reader()?;
            let min: Option<i64> =
                conn.query_row("SELECT min(rid) FROM reads", [], |r| r.get(0))?;
            if let Some(rid) = min {
                return Ok(Some(partition::rowid_time(f.day, rid)));
            }
        }
        Ok(None)
    }
}
