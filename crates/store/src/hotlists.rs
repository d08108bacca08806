//! Hot lists and their entries (SPEC R3.1, R3.2, R3.5): stored in the main
//! database, mirrored in the in-memory [`Matcher`] every read is checked
//! against. Every change is in the audit trail, in the same transaction.

use std::collections::{HashMap, HashSet};

use platekeeper_core::hotlist::import::{Format, LineProblem, Parsed};
use platekeeper_core::hotlist::matcher::{is_loose, MatchEntry, Matcher};
use platekeeper_core::hotlist::{self, EntryDraft, ListKind};
use platekeeper_core::{PlatePattern, Region};
use rusqlite::params;
use serde::Serialize;
use serde_json::json;

use crate::accounts::Actor;
use crate::sql::{Optional as _, Sql};
use crate::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hotlists(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    fuzzy INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hotlist_entries(
    id INTEGER PRIMARY KEY,
    list_id INTEGER NOT NULL REFERENCES hotlists(id),
    source TEXT NOT NULL,
    plate TEXT NOT NULL,
    state INTEGER,
    reason TEXT NOT NULL,
    case_number TEXT,
    details TEXT,
    entered_by TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hotlist_entries_source ON hotlist_entries(list_id, source);
";

/// The source of hand-entered entries; imports name their own.
pub const MANUAL_SOURCE: &str = "manual";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotList {
    pub id: i64,
    pub name: String,
    pub kind: ListKind,
    pub retention_days: i64,
    /// Entries also match the plates they are commonly misread as.
    pub fuzzy: bool,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub entries: i64,
}

#[derive(Debug, Clone)]
pub struct NewHotList {
    pub name: String,
    pub kind: ListKind,
    pub retention_days: i64,
    pub fuzzy: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotEntry {
    pub id: i64,
    pub list_id: i64,
    pub source: String,
    pub plate: String,
    pub state: Option<Region>,
    pub reason: String,
    pub case_number: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub entered_by: String,
    pub entered_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What an import did (SPEC R3.1; issue 4: added, removed, invalid lines).
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub list_id: i64,
    pub source: String,
    pub format: Format,
    /// True when the source's entries were replaced.
    pub applied: bool,
    /// Why nothing was changed, when `applied` is false.
    pub refused: Option<String>,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub invalid: usize,
    pub duplicates: usize,
    pub problems: Vec<LineProblem>,
}

/// Which file an import is: its source name (a later import of the same
/// source replaces this one's entries), format and SHA-256 (logged).
#[derive(Debug, Clone, Copy)]
pub struct ImportFile<'a> {
    pub source: &'a str,
    pub format: Format,
    pub sha256: &'a str,
    /// Accept a file that removes most of the source (see
    /// [`Store::import_hotlist`]).
    pub replace_all: bool,
}

/// What the daily job removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HotListPurge {
    pub entries_removed: usize,
    pub lists_removed: Vec<String>,
}

/// A source name: what a daily file is called (`svs`, `ncic-daily`).
fn check_source(source: &str) -> Result<(), StoreError> {
    let ok = (1..=40).contains(&source.len())
        && source
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidHotList(format!(
            "source {source:?} must be 1 to 40 letters, digits, '-', '_' or '.'"
        )))
    }
}

const LIST_COLUMNS: &str = "l.id, l.name, l.kind, l.retention_days, l.fuzzy, l.created_by, \
     l.created_at, l.updated_at, (SELECT count(*) FROM hotlist_entries e WHERE e.list_id = l.id)";

fn list_row(r: &crate::sql::Row) -> Result<HotList, StoreError> {
    let kind: String = r.get(2)?;
    Ok(HotList {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: ListKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("hot list kind {kind:?}")))?,
        retention_days: r.get(3)?,
        fuzzy: r.get(4)?,
        created_by: r.get(5)?,
        created_at_ms: r.get(6)?,
        updated_at_ms: r.get(7)?,
        entries: r.get(8)?,
    })
}

const ENTRY_COLUMNS: &str = "id, list_id, source, plate, state, reason, case_number, details, \
     entered_by, entered_at, expires_at";

fn entry_row(r: &crate::sql::Row) -> Result<HotEntry, StoreError> {
    let state: Option<u8> = r.get(4)?;
    let details: Option<String> = r.get(7)?;
    Ok(HotEntry {
        id: r.get(0)?,
        list_id: r.get(1)?,
        source: r.get(2)?,
        plate: r.get(3)?,
        state: state.and_then(Region::from_code),
        reason: r.get(5)?,
        case_number: r.get(6)?,
        details: match details {
            Some(d) => serde_json::from_str(&d)
                .map_err(|e| StoreError::Corrupt(format!("hot-list entry details: {e}")))?,
            None => serde_json::Map::new(),
        },
        entered_by: r.get(8)?,
        entered_at_ms: r.get(9)?,
        expires_at_ms: r.get(10)?,
    })
}

fn details_json(d: &[(&'static str, String)]) -> Option<String> {
    (!d.is_empty()).then(|| {
        // Written directly: a map per entry is measurable on a 1M import.
        let field = |k: &str, v: &str| {
            let text = |t: &str| serde_json::to_string(t).unwrap_or_default();
            format!("{}:{}", text(k), text(v))
        };
        let fields: Vec<String> = d.iter().map(|(k, v)| field(k, v)).collect();
        format!("{{{}}}", fields.join(","))
    })
}

fn insert_entry(
    tx: &dyn Sql,
    list_id: i64,
    source: &str,
    d: &EntryDraft,
    by: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO hotlist_entries(list_id, source, plate, state, reason, case_number, details, entered_by, entered_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        list_id,
        source,
        d.pattern.as_str(),
        d.state.map(|s| s.code()),
        d.reason,
        d.case_number,
        details_json(&d.details),
        by,
        now_ms,
        d.expires_at_ms
    ])?;
    tx.last_insert_rowid()
}

fn match_entry(id: i64, list: i64, d: EntryDraft) -> MatchEntry {
    MatchEntry {
        id,
        list,
        pattern: d.pattern,
        state: d.state,
        expires_at_ms: d.expires_at_ms,
    }
}

/// Builds the index from every stored entry.
pub(crate) fn load_matcher(conn: &dyn Sql) -> Result<Matcher, StoreError> {
    let mut m = Matcher::new();
    let mut stmt = conn.prepare(
        "SELECT e.id, e.list_id, e.plate, e.state, e.expires_at, l.fuzzy
         FROM hotlist_entries e JOIN hotlists l ON l.id = e.list_id",
    )?;
    let mut rows = stmt.query(())?;
    while let Some(r) = rows.next()? {
        let plate: String = r.get(2)?;
        let state: Option<u8> = r.get(3)?;
        let pattern = PlatePattern::parse(&plate, r.get(5)?)
            .map_err(|e| StoreError::Corrupt(format!("hot-list entry {plate:?}: {e}")))?;
        m.insert(MatchEntry {
            id: r.get(0)?,
            list: r.get(1)?,
            pattern,
            state: state.and_then(Region::from_code),
            expires_at_ms: r.get(4)?,
        });
    }
    Ok(m)
}

impl Store {
    pub fn create_hotlist(
        &self,
        new: NewHotList,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<HotList, StoreError> {
        let name = hotlist::clean_text(&new.name, "name")
            .map_err(|e| StoreError::InvalidHotList(e.to_string()))?;
        if name.is_empty() || name.chars().count() > hotlist::MAX_NAME_CHARS {
            return Err(StoreError::InvalidHotList(format!(
                "name: 1 to {} characters",
                hotlist::MAX_NAME_CHARS
            )));
        }
        if !hotlist::check_retention(new.retention_days) {
            return Err(StoreError::InvalidHotList(format!(
                "retention_days: {} is outside {}..={}",
                new.retention_days,
                hotlist::MIN_RETENTION_DAYS,
                hotlist::MAX_RETENTION_DAYS
            )));
        }
        let (id, _) = self.with_log(|tx, head| {
            let exists: Option<i64> = tx
                .query_row("SELECT id FROM hotlists WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::HotListExists(name.clone()));
            }
            tx.execute(
                "INSERT INTO hotlists(name, kind, retention_days, fuzzy, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![name, new.kind.as_str(), new.retention_days, new.fuzzy, actor.username, now_ms],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "hotlist",
                    "hotlist_created",
                    json!({"list": id, "name": name, "kind": new.kind.as_str(),
                           "retention_days": new.retention_days, "fuzzy": new.fuzzy}),
                ),
            )?;
            Ok((id, e))
        })?;
        self.hotlist(id)?
            .ok_or_else(|| StoreError::Corrupt("hot list vanished".into()))
    }

    pub fn hotlists(&self) -> Result<Vec<HotList>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {LIST_COLUMNS} FROM hotlists l ORDER BY l.name"
        ))?;
        let mut rows = stmt.query(())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(list_row(r)?);
        }
        Ok(out)
    }

    pub fn hotlist(&self, id: i64) -> Result<Option<HotList>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {LIST_COLUMNS} FROM hotlists l WHERE l.id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(list_row).transpose()
    }

    fn require_hotlist(&self, id: i64) -> Result<HotList, StoreError> {
        self.hotlist(id)?.ok_or(StoreError::UnknownHotList(id))
    }

    /// Adds a hand-entered entry (already checked: see
    /// `platekeeper_core::hotlist::check_entry`).
    pub fn add_hot_entry(
        &self,
        list_id: i64,
        draft: EntryDraft,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<HotEntry, StoreError> {
        let list = self.require_hotlist(list_id)?;
        // The list's misread tolerance decides how the entry matches.
        let draft = EntryDraft {
            pattern: PlatePattern::parse(draft.pattern.as_str(), list.fuzzy)
                .map_err(|e| StoreError::InvalidHotList(format!("plate: {e}")))?,
            ..draft
        };
        let _changing = self.hot_changes.lock().map_err(|_| StoreError::Poisoned)?;
        self.check_loose(usize::from(is_loose(&draft.pattern)))?;
        let (id, _) = self.with_log(|tx, head| {
            let id = insert_entry(tx, list_id, MANUAL_SOURCE, &draft, &actor.username, now_ms)?;
            touch_list(tx, list_id, now_ms)?;
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "hotlist",
                    "hotlist_entry_added",
                    json!({"list": list_id, "entry": id, "plate": draft.pattern.as_str(),
                           "state": draft.state.map(|s| s.as_str()), "reason": draft.reason,
                           "case_number": draft.case_number,
                           "expires_at": platekeeper_core::read::format_time_ms(draft.expires_at_ms)}),
                ),
            )?;
            Ok((id, e))
        })?;
        self.apply_hot_changes(Vec::new(), vec![match_entry(id, list_id, draft)])?;
        self.hot_entry(id)?
            .ok_or_else(|| StoreError::Corrupt("entry vanished".into()))
    }

    pub fn hot_entry(&self, id: i64) -> Result<Option<HotEntry>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM hotlist_entries WHERE id = ?1"
        ))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(entry_row).transpose()
    }

    /// A page of a list's entries by id, after `after` (0 to start).
    /// `containing`: only entries whose plate (or pattern) holds these
    /// letters and digits, in this order (a search box on a list of
    /// 100,000 entries).
    pub fn hot_entries(
        &self,
        list_id: i64,
        containing: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<HotEntry>, StoreError> {
        self.require_hotlist(list_id)?;
        let containing = containing
            .map(|c| {
                let c = c.trim().to_ascii_uppercase();
                if c.is_empty() || c.len() > 10 || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Err(StoreError::invalid(
                        "invalid_plate",
                        format!("plate filter {c:?} must be 1 to 10 letters and digits"),
                    ))
                } else {
                    Ok(c)
                }
            })
            .transpose()?;
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM hotlist_entries WHERE list_id = ?1 AND id > ?2
             AND (CAST(?4 AS TEXT) IS NULL OR {}) ORDER BY id LIMIT ?3",
            crate::sql::contains(conn.dialect(), "plate", "?4")
        ))?;
        let mut rows = stmt.query(params![
            list_id,
            after,
            limit.clamp(1, 1_000) as i64,
            containing
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(entry_row(r)?);
        }
        Ok(out)
    }

    /// Removes an entry (why is logged).
    pub fn remove_hot_entry(
        &self,
        entry_id: i64,
        why: &str,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let entry = self
            .hot_entry(entry_id)?
            .ok_or(StoreError::UnknownHotEntry(entry_id))?;
        let _changing = self.hot_changes.lock().map_err(|_| StoreError::Poisoned)?;
        self.with_log(|tx, head| {
            if tx.execute("DELETE FROM hotlist_entries WHERE id = ?1", [entry_id])? == 0 {
                return Err(StoreError::UnknownHotEntry(entry_id));
            }
            crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "hotlist",
                    "hotlist_entry_removed",
                    json!({"list": entry.list_id, "entry": entry_id, "plate": entry.plate,
                           "source": entry.source, "why": why}),
                ),
            )
        })?;
        self.apply_hot_changes(vec![entry_id], Vec::new())
    }

    /// Deletes a list and all its entries.
    pub fn delete_hotlist(
        &self,
        list_id: i64,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let list = self.require_hotlist(list_id)?;
        let _changing = self.hot_changes.lock().map_err(|_| StoreError::Poisoned)?;
        let ids = self.with_log(|tx, head| {
            let ids = entry_ids(tx, list_id)?;
            tx.execute("DELETE FROM hotlist_entries WHERE list_id = ?1", [list_id])?;
            tx.execute("DELETE FROM hotlists WHERE id = ?1", [list_id])?;
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "hotlist",
                    "hotlist_deleted",
                    json!({"list": list_id, "name": list.name, "entries": ids.len()}),
                ),
            )?;
            Ok((ids, e))
        })?;
        self.apply_hot_changes(ids.0, Vec::new())
    }

    /// Replaces the entries of `source` in the list with the parsed file,
    /// in one transaction (SPEC R3.1: the state's daily file). Entries
    /// present before and after keep their id (their fields and entry
    /// time are refreshed), so matching and alerts carry on through the
    /// reload; only removed plates go and only new ones are added. A file
    /// the parser refused, one that yields no usable entry where there
    /// were some (or only bad lines), and one that would remove more than
    /// half of a source of 100 or more entries (unless `replace_all`)
    /// change nothing: those are the signs of a cut or wrong file.
    /// `sha256` goes to the log, so an auditor can tie the change to the
    /// file.
    pub fn import_hotlist(
        &self,
        list_id: i64,
        file: ImportFile<'_>,
        parsed: Parsed,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<ImportReport, StoreError> {
        let ImportFile {
            source,
            format,
            sha256,
            replace_all,
        } = file;
        check_source(source)?;
        if source == MANUAL_SOURCE {
            return Err(StoreError::InvalidHotList(
                "source \"manual\" is for hand-entered entries; name the file's source".into(),
            ));
        }
        let list = self.require_hotlist(list_id)?;
        let entries: Vec<EntryDraft> = parsed
            .entries
            .into_iter()
            .map(|(_, d)| {
                // Parsed for this list already, unless the caller used
                // another misread setting.
                if d.pattern.is_fuzzy() == list.fuzzy {
                    return Ok(d);
                }
                Ok(EntryDraft {
                    pattern: PlatePattern::parse(d.pattern.as_str(), list.fuzzy)
                        .map_err(|e| StoreError::InvalidHotList(format!("plate: {e}")))?,
                    ..d
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let _changing = self.hot_changes.lock().map_err(|_| StoreError::Poisoned)?;
        self.check_loose(entries.iter().filter(|d| is_loose(&d.pattern)).count())?;
        // All hot-list writes hold `hot_changes`: the source cannot change
        // between this read and the transaction below.
        let old = {
            let conn = self.reader()?;
            source_keys(&conn, list_id, source)?
        };
        let existing: Vec<Option<i64>> = entries
            .iter()
            .map(|d| old.get(d.pattern.as_str(), d.state.map(|s| s.code())))
            .collect();
        let unchanged = existing.iter().flatten().count();
        let kept: HashSet<i64> = existing.iter().flatten().copied().collect();
        let removed_ids: Vec<i64> = old
            .ids()
            .into_iter()
            .filter(|id| !kept.contains(id))
            .collect();
        let mut report = ImportReport {
            list_id,
            source: source.to_string(),
            format,
            applied: false,
            refused: parsed.refused.clone(),
            added: entries.len() - unchanged,
            removed: removed_ids.len(),
            unchanged,
            invalid: parsed.invalid,
            duplicates: parsed.duplicates,
            problems: parsed.problems.clone(),
        };
        if report.refused.is_none() && entries.is_empty() && (parsed.invalid > 0 || old.len > 0) {
            report.refused = Some(format!(
                "the file yields no usable entry ({} unusable lines); it would empty source {source:?}, so nothing was replaced",
                parsed.invalid
            ));
        }
        if report.refused.is_none()
            && !replace_all
            && old.len >= 100
            && report.removed * 2 > old.len
        {
            report.refused = Some(format!(
                "the file would remove {} of the {} entries of source {source:?}; if that is right, import it again with replace_all",
                report.removed, old.len
            ));
        }
        if report.refused.is_some() {
            // Refused files are logged too: a failed daily load matters.
            self.log_event(actor.entry(
                now_ms,
                "hotlist",
                "hotlist_import_refused",
                json!({"list": list_id, "source": source, "format": format,
                       "sha256": sha256, "why": report.refused}),
            ))?;
            return Ok(report);
        }
        let (ids, _) = self.with_log(|tx, head| {
            let mut ids = Vec::with_capacity(entries.len());
            {
                let mut update = tx.prepare_cached(
                    "UPDATE hotlist_entries SET reason = ?2, case_number = ?3, details = ?4,
                        entered_by = ?5, entered_at = ?6, expires_at = ?7 WHERE id = ?1",
                )?;
                for (d, id) in entries.iter().zip(&existing) {
                    match id {
                        Some(id) => {
                            update.execute(params![
                                id,
                                d.reason,
                                d.case_number,
                                details_json(&d.details),
                                actor.username,
                                now_ms,
                                d.expires_at_ms
                            ])?;
                            ids.push(*id);
                        }
                        None => ids.push(insert_entry(
                            tx,
                            list_id,
                            source,
                            d,
                            &actor.username,
                            now_ms,
                        )?),
                    }
                }
                let mut delete = tx.prepare_cached("DELETE FROM hotlist_entries WHERE id = ?1")?;
                for id in &removed_ids {
                    delete.execute([id])?;
                }
            }
            touch_list(tx, list_id, now_ms)?;
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "hotlist",
                    "hotlist_imported",
                    json!({"list": list_id, "source": source, "format": format,
                           "sha256": sha256, "added": report.added, "removed": report.removed,
                           "unchanged": report.unchanged, "invalid": report.invalid,
                           "duplicates": report.duplicates}),
                ),
            )?;
            Ok((ids, e))
        })?;
        // Kept entries are re-filed with their new expiry.
        let mut gone = removed_ids;
        gone.extend(kept.iter().copied());
        let add = ids
            .into_iter()
            .zip(entries)
            .map(|(id, d)| match_entry(id, list_id, d))
            .collect();
        self.apply_hot_changes(gone, add)?;
        report.applied = true;
        Ok(report)
    }

    /// The daily job (R3.5): deletes entries past their expiry or their
    /// list's retention, and lists left empty past their retention.
    /// A list keeps entries for its own retention, but never longer than
    /// the agency's hot-list retention (`retention.hotlists_days`).
    pub fn purge_hotlists(&self, now_ms: i64) -> Result<HotListPurge, StoreError> {
        let cap = self.policy().retention.hotlists_days;
        self.purge_hotlists_within(now_ms, cap)
    }

    /// Entries and lists that [`Store::purge_hotlists_within`] would remove.
    pub(crate) fn hotlist_purge_due(&self, now_ms: i64, cap_days: i64) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let due: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM hotlist_entries e JOIN hotlists l ON l.id = e.list_id
                     WHERE e.expires_at <= ?1 OR e.entered_at + (CASE WHEN l.retention_days < ?2 THEN l.retention_days ELSE ?2 END) * 86400000 <= ?1)
                  + (SELECT count(*) FROM hotlists l
                     WHERE updated_at + (CASE WHEN retention_days < ?2 THEN retention_days ELSE ?2 END) * 86400000 <= ?1
                       AND NOT EXISTS (SELECT 1 FROM hotlist_entries e WHERE e.list_id = l.id))",
            params![now_ms, cap_days],
            |r| r.get(0),
        )?;
        Ok(due as u64)
    }

    pub(crate) fn purge_hotlists_within(
        &self,
        now_ms: i64,
        cap_days: i64,
    ) -> Result<HotListPurge, StoreError> {
        let actor = Actor::system("retention");
        let _changing = self.hot_changes.lock().map_err(|_| StoreError::Poisoned)?;
        // Nothing due: nothing to write (the log records removals).
        if self.hotlist_purge_due(now_ms, cap_days)? == 0 {
            return Ok(HotListPurge::default());
        }
        let (purge, _) = self.with_log(|tx, head| {
            let mut ids = Vec::new();
            // What went, for the auditor: id, list, plate and why (the
            // first 10,000; beyond that, counts per list).
            let mut listed = Vec::new();
            let mut per_list: HashMap<i64, usize> = HashMap::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT e.id, e.list_id, e.plate, e.source, e.expires_at <= ?1
                     FROM hotlist_entries e JOIN hotlists l ON l.id = e.list_id
                     WHERE e.expires_at <= ?1 OR e.entered_at + (CASE WHEN l.retention_days < ?2 THEN l.retention_days ELSE ?2 END) * 86400000 <= ?1",
                )?;
                let mut rows = stmt.query(params![now_ms, cap_days])?;
                while let Some(r) = rows.next()? {
                    let (id, list): (i64, i64) = (r.get(0)?, r.get(1)?);
                    ids.push(id);
                    *per_list.entry(list).or_default() += 1;
                    if listed.len() < 10_000 {
                        let expired: bool = r.get(4)?;
                        listed.push(json!({"entry": id, "list": list, "plate": r.get::<_, String>(2)?,
                            "source": r.get::<_, String>(3)?,
                            "why": if expired { "expired" } else { "retention" }}));
                    }
                }
            }
            {
                let mut del = tx.prepare("DELETE FROM hotlist_entries WHERE id = ?1")?;
                for id in &ids {
                    del.execute([id])?;
                }
            }
            let mut lists = Vec::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT id, name FROM hotlists l
                     WHERE updated_at + (CASE WHEN retention_days < ?2 THEN retention_days ELSE ?2 END) * 86400000 <= ?1
                       AND NOT EXISTS (SELECT 1 FROM hotlist_entries e WHERE e.list_id = l.id)",
                )?;
                let mut rows = stmt.query(params![now_ms, cap_days])?;
                while let Some(r) = rows.next()? {
                    lists.push((r.get::<_, i64>(0)?, r.get::<_, String>(1)?));
                }
            }
            for (id, _) in &lists {
                tx.execute("DELETE FROM hotlists WHERE id = ?1", [id])?;
            }
            let purge = (
                ids,
                HotListPurge {
                    entries_removed: 0,
                    lists_removed: lists.into_iter().map(|(_, n)| n).collect(),
                },
            );
            let e = crate::log::append(
                tx,
                head,
                actor.entry(
                    now_ms,
                    "system",
                    "hotlist_purged",
                    json!({"entries_removed": purge.0.len(), "lists_removed": purge.1.lists_removed,
                           "per_list": per_list.iter().map(|(l, n)| json!({"list": l, "entries": n})).collect::<Vec<_>>(),
                           "entries": listed}),
                ),
            )?;
            Ok((purge, e))
        })?;
        let (ids, mut report) = purge;
        report.entries_removed = ids.len();
        self.apply_hot_changes(ids, Vec::new())?;
        Ok(report)
    }

    /// Brings the index in line with a committed change. Call holding
    /// `hot_changes`, so changes apply in commit order. Small changes edit
    /// the index in place; large ones (an import) build a new index while
    /// ingest keeps matching against the old, then swap it in, so reads
    /// never wait for a million-entry rebuild.
    fn apply_hot_changes(&self, remove: Vec<i64>, add: Vec<MatchEntry>) -> Result<(), StoreError> {
        if remove.len() + add.len() <= 1_000 {
            let mut m = self.hot.write().map_err(|_| StoreError::Poisoned)?;
            for id in remove {
                m.remove(id);
            }
            for e in add {
                m.insert(e);
            }
            if m.wants_rebuild() {
                let fresh = rebuilt(m.entries(), &HashSet::new(), m.len());
                *m = fresh;
            }
            return Ok(());
        }
        let gone: HashSet<i64> = remove.into_iter().collect();
        let mut fresh = {
            let m = self.hot.read().map_err(|_| StoreError::Poisoned)?;
            rebuilt(m.entries(), &gone, m.len() + add.len())
        };
        for e in add {
            fresh.insert(e);
        }
        *self.hot.write().map_err(|_| StoreError::Poisoned)? = fresh;
        Ok(())
    }

    /// Refuses `more` loose entries beyond [`hotlist::MAX_LOOSE_ENTRIES`].
    fn check_loose(&self, more: usize) -> Result<(), StoreError> {
        if more == 0 {
            return Ok(());
        }
        let now = self
            .hot
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .loose_len();
        if now + more > hotlist::MAX_LOOSE_ENTRIES {
            return Err(StoreError::InvalidHotList(format!(
                "plate: {more} partial plates without two adjacent known characters (like 7?B?1?3) would exceed the {} such entries allowed; give two adjacent characters",
                hotlist::MAX_LOOSE_ENTRIES
            )));
        }
        Ok(())
    }

    /// Live entries in the matcher (for `/metrics` and tests).
    pub fn hot_entry_count(&self) -> usize {
        self.hot.read().map(|m| m.len()).unwrap_or(0)
    }
}

/// Records that a list changed now (its retention counts from here).
fn touch_list(tx: &dyn Sql, list_id: i64, now_ms: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE hotlists SET updated_at = ?2 WHERE id = ?1",
        params![list_id, now_ms],
    )?;
    Ok(())
}

/// (plate, state code) → entry id, for one source of a list.
fn source_keys(conn: &dyn Sql, list_id: i64, source: &str) -> Result<SourceKeys, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, plate, state FROM hotlist_entries WHERE list_id = ?1 AND source = ?2",
    )?;
    let mut rows = stmt.query(params![list_id, source])?;
    let mut out = SourceKeys::default();
    while let Some(r) = rows.next()? {
        let plate: String = r.get(1)?;
        out.by_plate
            .entry(plate)
            .or_default()
            .push((r.get(2)?, r.get(0)?));
        out.len += 1;
    }
    Ok(out)
}

/// A source's stored entries by plate, then state.
#[derive(Default)]
struct SourceKeys {
    by_plate: HashMap<String, Vec<(Option<u8>, i64)>>,
    len: usize,
}

impl SourceKeys {
    fn get(&self, plate: &str, state: Option<u8>) -> Option<i64> {
        self.by_plate
            .get(plate)
            .and_then(|v| v.iter().find(|(s, _)| *s == state))
            .map(|(_, id)| *id)
    }

    fn ids(&self) -> Vec<i64> {
        self.by_plate
            .values()
            .flatten()
            .map(|(_, id)| *id)
            .collect()
    }
}

fn entry_ids(tx: &dyn Sql, list_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = tx.prepare("SELECT id FROM hotlist_entries WHERE list_id = ?1")?;
    let mut rows = stmt.query([list_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(r.get(0)?);
    }
    Ok(out)
}

/// A fresh index of `entries` less `gone` (removals leave dead slots).
fn rebuilt<'a>(
    entries: impl Iterator<Item = &'a MatchEntry>,
    gone: &HashSet<i64>,
    capacity: usize,
) -> Matcher {
    let mut fresh = Matcher::with_capacity(capacity);
    for e in entries.filter(|e| !gone.contains(&e.id)) {
        fresh.insert(e.clone());
    }
    fresh
}
