//! Legal holds (SPEC R6.2; policy 001 § 467.5): reads that are, or will
//! become, evidence in a case are exempt from purge.
//!
//! Placing a hold copies each read (as it stands, corrections included)
//! into the main database and links its pictures into `images/held/`, so
//! retention can still delete whole day files and day folders: held data
//! is kept apart, not picked out of a day at purge time. A lifted hold's
//! copies go at the next purge once their day is past retention (and no
//! other open hold names the read).

use std::collections::HashMap;

use platekeeper_core::legal_hold::HoldRelation;
use platekeeper_core::{GeoPoint, Plate, Purpose, ReadId, Region};
use rusqlite::params;
use serde::Serialize;

use crate::access::{Access, Released, Sealed};
use crate::accounts::Actor;
use crate::images::ImageRef;
use crate::log;
use crate::partition;
use crate::search::{Cursor, StoredRead};
use crate::sql::Sql;
use crate::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS holds(
    id INTEGER PRIMARY KEY,
    case_number TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    access_id INTEGER NOT NULL,
    lifted_by TEXT,
    lifted_at INTEGER,
    lift_reason TEXT
);
CREATE TABLE IF NOT EXISTS held_reads(
    hold_id INTEGER NOT NULL REFERENCES holds(id),
    read_id BLOB NOT NULL,
    ts INTEGER NOT NULL,
    plate TEXT NOT NULL,
    state TEXT,
    lat REAL,
    lon REAL,
    camera TEXT NOT NULL,
    heading INTEGER,
    confidence INTEGER,
    plate_sha BLOB,
    plate_kind INTEGER,
    vehicle_sha BLOB,
    vehicle_kind INTEGER,
    PRIMARY KEY (hold_id, read_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS held_reads_read ON held_reads(read_id);
CREATE TABLE IF NOT EXISTS hold_members(
    hold_id INTEGER NOT NULL REFERENCES holds(id),
    username TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (hold_id, username)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hold_members_user ON hold_members(username, hold_id);
";

/// Most people one hold may be shared with.
pub const MAX_HOLD_MEMBERS: usize = 50;

/// Most reads one hold may name (a case's reads, not a dragnet).
pub const MAX_HOLD_READS: usize = 10_000;

/// A page of a hold's reads.
#[derive(Debug, Clone)]
pub struct HeldPage {
    pub reads: Vec<StoredRead>,
    /// Reads the hold keeps.
    pub total: usize,
    /// Distinct plates among them.
    pub plates: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hold {
    pub id: i64,
    pub case_number: String,
    pub purpose: Purpose,
    pub created_by: String,
    pub created_at_ms: i64,
    /// The access the hold was placed under.
    pub access_id: i64,
    pub lifted_by: Option<String>,
    pub lifted_at_ms: Option<i64>,
    pub lift_reason: Option<String>,
    pub reads: i64,
    /// Colleagues on the case the maker shared it with (who may view and
    /// export it; see `platekeeper_core::legal_hold`).
    pub shared_with: Vec<String>,
}

impl Hold {
    /// How `username` stands to this hold.
    pub fn relation(&self, username: &str) -> HoldRelation {
        HoldRelation::of(username, &self.created_by, &self.shared_with)
    }
}

/// A hold's columns, with its members as one line each.
fn hold_columns(dialect: crate::sql::Dialect) -> String {
    let members = match dialect {
        crate::sql::Dialect::Sqlite => {
            "(SELECT group_concat(username, char(10)) FROM \
               (SELECT username FROM hold_members m WHERE m.hold_id = h.id ORDER BY username))"
        }
        crate::sql::Dialect::Postgres => {
            "(SELECT string_agg(username, chr(10) ORDER BY username) FROM hold_members m \
               WHERE m.hold_id = h.id)"
        }
    };
    format!(
        "h.id, h.case_number, h.purpose, h.created_by, h.created_at, h.access_id, \
         h.lifted_by, h.lifted_at, h.lift_reason, \
         (SELECT count(*) FROM held_reads r WHERE r.hold_id = h.id), {members}"
    )
}

fn hold_row(r: &crate::sql::Row) -> Result<Hold, StoreError> {
    let purpose: String = r.get(2)?;
    Ok(Hold {
        id: r.get(0)?,
        case_number: r.get(1)?,
        purpose: serde_json::from_str(&purpose)
            .map_err(|e| StoreError::Corrupt(format!("hold purpose: {e}")))?,
        created_by: r.get(3)?,
        created_at_ms: r.get(4)?,
        access_id: r.get(5)?,
        lifted_by: r.get(6)?,
        lifted_at_ms: r.get(7)?,
        lift_reason: r.get(8)?,
        reads: r.get(9)?,
        shared_with: {
            let members: Option<String> = r.get(10)?;
            members
                .map(|m| m.split('\n').map(str::to_string).collect())
                .unwrap_or_default()
        },
    })
}

const READ_COLUMNS: &str = "read_id, ts, plate, state, lat, lon, camera, heading, confidence, \
     plate_sha, plate_kind, vehicle_sha, vehicle_kind";

pub(crate) fn held_row(r: &crate::sql::Row) -> Result<StoredRead, StoreError> {
    let id: Vec<u8> = r.get(0)?;
    let ts: i64 = r.get(1)?;
    let plate: String = r.get(2)?;
    let state: Option<String> = r.get(3)?;
    let lat: Option<f64> = r.get(4)?;
    let lon: Option<f64> = r.get(5)?;
    let [plate_image, vehicle_image] = ImageRef::pair_in_row(r, 9)?;
    Ok(StoredRead {
        id: ReadId(
            uuid::Uuid::from_slice(&id).map_err(|_| StoreError::Corrupt("held read id".into()))?,
        ),
        plate: Plate::parse(&plate).map_err(|e| StoreError::Corrupt(format!("held plate: {e}")))?,
        region: state.as_deref().and_then(Region::parse),
        ts_ms: ts,
        position: lat.zip(lon).map(|(a, b)| GeoPoint { lat: a, lon: b }),
        camera: r.get(6)?,
        heading: r.get::<_, Option<i64>>(7)?.map(|h| h as u16),
        confidence: r.get::<_, Option<i64>>(8)?.map(|c| c as u8),
        plate_image,
        vehicle_image,
        locator: Cursor {
            day: partition::day_of(ts),
            rowid: partition::rowid_base(ts),
            tie: None,
        },
    })
}

impl Store {
    /// Where the reads `username` was shown are stored: each id's time,
    /// from the record of what the person's accesses returned. A hold or a
    /// correction names reads its author has seen; ids never returned to
    /// them are absent.
    pub fn read_times_seen_by(
        &self,
        username: &str,
        ids: &[ReadId],
    ) -> Result<HashMap<ReadId, i64>, StoreError> {
        Ok(self
            .reads_seen_by(username, ids, None)?
            .into_iter()
            .map(|(id, (_, ts))| (id, ts))
            .collect())
    }

    /// The newest access of `username` that returned `read`, and the
    /// read's time.
    pub fn latest_access_returning(
        &self,
        username: &str,
        read: ReadId,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self.reads_seen_by(username, &[read], None)?.remove(&read))
    }

    /// Places a hold, under `access` (whose purpose names the case), on
    /// the reads named by id and time: finds them, keeps copies of them
    /// and their pictures apart from the day files, and commits the hold
    /// with the access's entry.
    pub fn place_hold(
        &self,
        access: Access,
        ids: &[(ReadId, i64)],
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Released<Hold>, StoreError> {
        if ids.is_empty() || ids.len() > MAX_HOLD_READS {
            return Err(StoreError::invalid(
                "invalid_hold",
                format!(
                    "read_ids names {} reads; a hold takes 1 to {MAX_HOLD_READS}",
                    ids.len()
                ),
            ));
        }
        let mut reads = Vec::with_capacity(ids.len());
        for (id, ts) in ids {
            reads.push(self.find_read_at(*id, *ts)?.ok_or_else(|| {
                StoreError::invalid(
                    "unknown_reads",
                    format!("read {id} is no longer stored (past retention)"),
                )
            })?);
        }
        // Pictures first: a committed hold never names a picture that
        // could be purged with its day.
        for r in &reads {
            for img in [r.plate_image, r.vehicle_image].into_iter().flatten() {
                self.images.hold(r.locator.day, &img)?;
            }
        }
        let purpose = access.purpose().clone();
        let purpose_json = serde_json::to_string(&purpose)
            .map_err(|e| StoreError::Corrupt(format!("purpose: {e}")))?;
        let returned = reads.iter().map(|r| (r.id, r.ts_ms)).collect();
        let found = Sealed::new(&access, reads, returned);
        let (released, id) =
            self.release_with(access, found, now_ms, |tx, head, receipt, reads| {
                tx.execute(
                    "INSERT INTO holds(case_number, purpose, created_by, created_at, access_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        purpose.case_number,
                        purpose_json,
                        actor.username,
                        now_ms,
                        receipt.access_id()
                    ],
                )?;
                let id = tx.last_insert_rowid()?;
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT INTO held_reads(hold_id, {READ_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT DO NOTHING"
                ))?;
                for r in reads {
                    stmt.execute(params![
                        id,
                        &r.id.as_bytes()[..],
                        r.ts_ms,
                        r.plate.to_string(),
                        r.region.map(|g| g.to_string()),
                        r.position.map(|p| p.lat),
                        r.position.map(|p| p.lon),
                        r.camera,
                        r.heading,
                        r.confidence,
                        r.plate_image.map(|i| i.sha256.to_vec()),
                        r.plate_image.map(|i| i.kind_code()),
                        r.vehicle_image.map(|i| i.sha256.to_vec()),
                        r.vehicle_image.map(|i| i.kind_code()),
                    ])?;
                }
                let entry = log::append(
                    tx,
                    head,
                    actor.entry(
                        now_ms,
                        "admin",
                        "hold_placed",
                        serde_json::json!({
                            "hold_id": id, "case_number": purpose.case_number,
                            "access": receipt.access_id(), "reads": reads.len(),
                        }),
                    ),
                )?;
                Ok((id, entry.as_head()))
            })?;
        let hold = self
            .hold(id)?
            .ok_or_else(|| StoreError::not_found("hold", id))?;
        Ok(released.map(|_| hold))
    }

    pub fn hold(&self, id: i64) -> Result<Option<Hold>, StoreError> {
        let conn = self.reader()?;
        let columns = hold_columns(conn.dialect());
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {columns} FROM holds h WHERE h.id = ?1"))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(hold_row).transpose()
    }

    /// Holds, newest first, a page at a time; lifted ones only if asked.
    /// With `party`, only the holds that person placed or was shared.
    pub fn holds(
        &self,
        include_lifted: bool,
        party: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Hold>, StoreError> {
        let conn = self.reader()?;
        let columns = hold_columns(conn.dialect());
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns} FROM holds h WHERE h.id < ?1 AND (?2 OR h.lifted_at IS NULL)
               AND (CAST(?4 AS TEXT) IS NULL OR h.created_by = ?4
                    OR EXISTS (SELECT 1 FROM hold_members m WHERE m.hold_id = h.id AND m.username = ?4))
             ORDER BY h.id DESC LIMIT ?3"
        ))?;
        crate::sql::collect_rows(
            &mut stmt,
            params![
                before.unwrap_or(i64::MAX),
                include_lifted,
                limit as i64,
                party
            ],
            hold_row,
        )
    }

    /// Shares hold `id` with `username` (who may then view and export it),
    /// or takes it back (`share` false). Logged with who did it.
    pub fn share_hold(
        &self,
        id: i64,
        username: &str,
        share: bool,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Hold, StoreError> {
        let hold = self
            .hold(id)?
            .ok_or_else(|| StoreError::not_found("hold", id))?;
        if share {
            if hold.lifted_at_ms.is_some() {
                return Err(StoreError::conflict(
                    "hold_lifted",
                    format!("hold {id} was lifted; a lifted hold is not shared"),
                ));
            }
            if username == hold.created_by || hold.shared_with.iter().any(|m| m == username) {
                return Err(StoreError::conflict(
                    "already_shared",
                    format!("{username} can already see hold {id}"),
                ));
            }
            if hold.shared_with.len() >= MAX_HOLD_MEMBERS {
                return Err(StoreError::invalid(
                    "too_many_members",
                    format!(
                        "hold {id} is shared with {MAX_HOLD_MEMBERS} people, the most it may be"
                    ),
                ));
            }
        } else if !hold.shared_with.iter().any(|m| m == username) {
            return Err(StoreError::not_found("hold member", username));
        }
        self.with_log(|tx, head| {
            if share {
                tx.execute(
                    "INSERT INTO hold_members(hold_id, username, added_by, added_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, username, actor.username, now_ms],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM hold_members WHERE hold_id = ?1 AND username = ?2",
                    params![id, username],
                )?;
            }
            log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "admin",
                    if share { "hold_shared" } else { "hold_unshared" },
                    serde_json::json!({"hold_id": id, "case_number": hold.case_number, "username": username}),
                ),
            )
        })?;
        self.hold(id)?
            .ok_or_else(|| StoreError::not_found("hold", id))
    }

    /// The reads kept under a hold, oldest first.
    pub(crate) fn held_reads_of(&self, hold_id: i64) -> Result<Vec<StoredRead>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {READ_COLUMNS} FROM held_reads WHERE hold_id = ?1 ORDER BY ts, read_id"
        ))?;
        crate::sql::collect_rows(&mut stmt, [hold_id], held_row)
    }

    /// Reads `skip..skip + take` of a hold (in time order), under an
    /// access, with how many the hold keeps and how many distinct plates.
    pub fn held_reads_page(
        &self,
        access: &Access,
        hold_id: i64,
        skip: usize,
        take: usize,
    ) -> Result<Sealed<HeldPage>, StoreError> {
        let all = self.held_reads_of(hold_id)?;
        let total = all.len();
        let plates = all
            .iter()
            .map(|r| r.plate)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let reads: Vec<StoredRead> = all.into_iter().skip(skip).take(take).collect();
        let returned = reads.iter().map(|r| (r.id, r.ts_ms)).collect();
        Ok(Sealed::new(
            access,
            HeldPage {
                reads,
                total,
                plates,
            },
            returned,
        ))
    }

    /// The held copy of one read (from any hold that keeps it), for a
    /// read whose day may already be purged.
    pub(crate) fn held_copy(&self, id: ReadId) -> Result<Option<StoredRead>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {READ_COLUMNS} FROM held_reads WHERE read_id = ?1 LIMIT 1"
        ))?;
        let mut rows = stmt.query([&id.as_bytes()[..]])?;
        rows.next()?.map(held_row).transpose()
    }

    /// Lifts a hold: its reads go at the next purge once past retention.
    pub fn lift_hold(
        &self,
        id: i64,
        reason: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Hold, StoreError> {
        let reason = crate::sharing::reason(reason, "the hold is lifted")?;
        let hold = self
            .hold(id)?
            .ok_or_else(|| StoreError::not_found("hold", id))?;
        if hold.lifted_at_ms.is_some() {
            return Err(StoreError::conflict(
                "hold_lifted",
                format!("hold {id} was already lifted"),
            ));
        }
        self.with_log(|tx, head| {
            tx.execute(
                "UPDATE holds SET lifted_by = ?2, lifted_at = ?3, lift_reason = ?4 WHERE id = ?1",
                params![id, actor.username, now_ms, reason],
            )?;
            log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "admin",
                    "hold_lifted",
                    serde_json::json!({"hold_id": id, "case_number": hold.case_number, "reason": reason}),
                ),
            )
        })?;
        self.hold(id)?
            .ok_or_else(|| StoreError::not_found("hold", id))
    }
}

impl Store {
    /// The evidence package of a hold (SPEC R6.2), exported under
    /// `access`: the access's entry (every read in the package), the
    /// export's record and its tracked download commit together before
    /// the package is handed out.
    pub fn export_evidence(
        &self,
        access: Access,
        hold: &Hold,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Released<(crate::evidence::Package, crate::sharing::Download)>, StoreError> {
        let reads = self.held_reads_of(hold.id)?;
        let destroy_by = self.policy().retention.destroy_by_ms(now_ms);
        let t = platekeeper_core::read::format_time_ms;
        let mut events = vec![serde_json::json!({
            "at": t(hold.created_at_ms), "who": hold.created_by,
            "what": format!("placed legal hold {} for case {} on {} reads (access {})", hold.id, hold.case_number, hold.reads, hold.access_id),
        })];
        if let (Some(at), Some(by)) = (hold.lifted_at_ms, &hold.lifted_by) {
            events.push(serde_json::json!({"at": t(at), "who": by, "what": format!("lifted the hold: {}", hold.lift_reason.clone().unwrap_or_default())}));
        }
        events.push(serde_json::json!({
            "at": t(now_ms), "who": actor.username,
            "what": "exported this package (the access-log entry of the export names its SHA-256)",
        }));
        let custody = serde_json::json!({
            "package": "evidence",
            "agency": self.policy().agency_name,
            "case_number": hold.case_number,
            "purpose": hold.purpose,
            "exported_for": access.purpose(),
            "hold": {"id": hold.id, "placed_by": hold.created_by, "placed_at": t(hold.created_at_ms),
                     "lifted_at": hold.lifted_at_ms.map(t), "reads": hold.reads},
            "exported_by": {"username": actor.username, "affiliation": actor.affiliation, "role": actor.role},
            "exported_at": t(now_ms),
            "destroy_by": t(destroy_by),
            "events": events,
            "produced_by": format!("Platekeeper {}", env!("CARGO_PKG_VERSION")),
        });
        let date = t(now_ms).chars().take(10).collect::<String>();
        let package = crate::evidence::build(
            &self.images,
            &self.spool_dir(),
            &reads,
            custody,
            &format!("evidence-hold-{}-{date}", hold.id),
            now_ms,
        )?;
        let returned = reads.iter().map(|r| (r.id, r.ts_ms)).collect();
        let found = Sealed::new(&access, package, returned);
        let (released, download) =
            self.release_with(access, found, now_ms, |tx, head, receipt, package| {
                let (download, e) = crate::sharing::record_export(
                    tx,
                    head,
                    crate::sharing::Exported::Evidence { hold_id: hold.id },
                    receipt.access_id(),
                    package,
                    destroy_by,
                    actor,
                    now_ms,
                )?;
                Ok((download, e.as_head()))
            })?;
        self.with_download(released, download, now_ms)
    }

    /// The reads an approved sharing request's query finds (at most
    /// `max`), under the export's access.
    pub fn sharing_reads(
        &self,
        access: &Access,
        plan: crate::search::SearchPlan,
        max: usize,
    ) -> Result<Sealed<Vec<StoredRead>>, StoreError> {
        let mut plan = plan;
        let mut reads = Vec::new();
        loop {
            let page = self.run_plan(&plan)?;
            reads.extend(page.reads);
            match page.next {
                Some(c) if reads.len() < max => plan.set_cursor(Some(c)),
                _ => break,
            }
        }
        reads.truncate(max);
        let returned = reads.iter().map(|r| (r.id, r.ts_ms)).collect();
        Ok(Sealed::new(access, reads, returned))
    }

    /// The package of an approved sharing request's reads (found under
    /// `access` by [`Store::sharing_reads`]), committed with the access's
    /// entry as a download, a transfer and the request's fulfilment.
    pub fn export_sharing(
        &self,
        access: Access,
        found: Sealed<Vec<StoredRead>>,
        req: &crate::sharing::SharingRequest,
        agency: &crate::sharing::Agency,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Released<(crate::evidence::Package, crate::sharing::Download)>, StoreError> {
        let t = platekeeper_core::read::format_time_ms;
        let custody = serde_json::json!({
            "package": "sharing_export",
            "agency": self.policy().agency_name,
            "recipient": {"agency": agency.name, "kind": agency.kind, "state": agency.state,
                          "requester_name": req.requester_name},
            "request": {"id": req.id, "received_on": req.received_on, "purpose": req.purpose,
                        "case_number": req.case_number, "query": req.query,
                        "approved_by": req.decided_by, "approved_at": req.decided_at,
                        "document_sha256": req.document_sha256},
            "exported_by": {"username": actor.username, "affiliation": actor.affiliation, "role": actor.role},
            "exported_at": t(now_ms),
            "logged": "the access-log entry of this export names every read and this package's SHA-256",
            "produced_by": format!("Platekeeper {}", env!("CARGO_PKG_VERSION")),
        });
        let date = t(now_ms).chars().take(10).collect::<String>();
        let package = crate::evidence::build(
            &self.images,
            &self.spool_dir(),
            found.peek(),
            custody,
            &format!("sharing-request-{}-{date}", req.id),
            now_ms,
        )?;
        self.release_as_download(
            access,
            found,
            package,
            now_ms,
            |tx, head, access_id, package, destroy_by| {
                crate::sharing::record_sharing_export(
                    tx, head, req, access_id, package, destroy_by, actor, now_ms,
                )
            },
        )
    }

    /// Search results as a CSV file (found under `access` by
    /// [`Store::sharing_reads`]), committed with the access's entry as a
    /// download with a destroy-by date, like every copy that leaves
    /// (SPEC R6.3).
    pub fn export_search(
        &self,
        access: Access,
        found: Sealed<Vec<StoredRead>>,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<Released<(crate::evidence::Package, crate::sharing::Download)>, StoreError> {
        let stamp: String = platekeeper_core::read::format_time_ms(now_ms)
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect();
        let package = crate::evidence::csv_file(
            &self.spool_dir(),
            found.peek(),
            &format!("search-{}-{stamp}", actor.username),
        )?;
        self.release_as_download(
            access,
            found,
            package,
            now_ms,
            |tx, head, access_id, package, destroy_by| {
                crate::sharing::record_export(
                    tx,
                    head,
                    crate::sharing::Exported::Search,
                    access_id,
                    package,
                    destroy_by,
                    actor,
                    now_ms,
                )
            },
        )
    }

    /// Releases `found` with `package` made of it: the access's entry and
    /// the download `record` writes (given the access's id and the
    /// destroy-by date) in one commit.
    fn release_as_download<T>(
        &self,
        access: Access,
        found: Sealed<T>,
        package: crate::evidence::Package,
        now_ms: i64,
        record: impl FnOnce(
            &dyn Sql,
            crate::log::Head,
            i64,
            &crate::evidence::Package,
            i64,
        ) -> Result<(i64, crate::log::LogEntry), StoreError>,
    ) -> Result<Released<(crate::evidence::Package, crate::sharing::Download)>, StoreError> {
        let destroy_by = self.policy().retention.destroy_by_ms(now_ms);
        let (released, download) =
            self.release_with(access, found, now_ms, |tx, head, receipt, _| {
                let (download, e) = record(tx, head, receipt.access_id(), &package, destroy_by)?;
                Ok((download, e.as_head()))
            })?;
        self.with_download(released.map(|_| package), download, now_ms)
    }

    /// A released package with the download it was recorded as.
    fn with_download(
        &self,
        released: Released<crate::evidence::Package>,
        download: i64,
        now_ms: i64,
    ) -> Result<Released<(crate::evidence::Package, crate::sharing::Download)>, StoreError> {
        let download = self
            .download(download, now_ms)?
            .ok_or_else(|| StoreError::not_found("download", download))?;
        Ok(released.map(|package| (package, download)))
    }
}
