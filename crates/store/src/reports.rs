//! Audit reports (SPEC R8.1): the store gathers a period's log entries
//! and the users' qualification history, `platekeeper_core::audit_report`
//! judges them, and the result is kept as an audit document (purged with
//! that class) and its generation logged.

use std::collections::HashMap;

use platekeeper_core::audit_report::{self, Entry, Period, Qualification, Report};
use platekeeper_core::read::format_time_ms;
use platekeeper_core::retention::compliance;
use rusqlite::params;
use serde::Serialize;

use crate::accounts::Actor;
use crate::{log, Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_reports(
    id INTEGER PRIMARY KEY,
    period TEXT NOT NULL,
    generated_by TEXT NOT NULL,
    generated_at INTEGER NOT NULL,
    report TEXT NOT NULL
);
";

/// A kept report, without its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReport {
    pub id: i64,
    pub period: String,
    pub generated_by: String,
    pub generated_at: String,
}

/// Kinds whose details the report shows; other entries are counted
/// without parsing their details (what keeps a quarter of a million
/// entries quick).
fn wants_details(category: &str, kind: &str) -> bool {
    category == "refused"
        || kind.starts_with("hotlist_")
        || audit_report::is_share(kind)
        || kind == "purge"
        || kind == "read_corrected"
        || kind == "policy_changed"
        || kind == "account_locked"
        || kind == "account_unlocked"
}

impl Store {
    /// Builds the report for `period`, keeps it and logs its generation.
    pub fn audit_report(
        &self,
        period: Period,
        actor: &Actor,
        now_ms: i64,
    ) -> Result<(i64, Report), StoreError> {
        let policy = self.policy();
        let entries = {
            let conn = self.reader()?;
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ts, category, kind, username, details, client FROM log
                 WHERE ts >= ?1 AND ts < ?2 ORDER BY seq",
            )?;
            let mut rows = stmt.query(params![period.from_ms, period.to_ms])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let category: String = r.get(2)?;
                let kind: String = r.get(3)?;
                // A search's "result" entry follows its access: one access.
                if category == "access" && kind == "result" {
                    continue;
                }
                let details = if wants_details(&category, &kind) {
                    let text: String = r.get(5)?;
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                } else {
                    serde_json::Value::Null
                };
                out.push(Entry {
                    seq: r.get(0)?,
                    ts_ms: r.get(1)?,
                    category,
                    kind,
                    username: r.get(4)?,
                    client: r.get(6)?,
                    details,
                });
            }
            out
        };
        let qualifications = self.qualifications()?;
        let compliance = compliance(policy.retention.reads_days, self.oldest_read_ms()?, now_ms);
        let mut report = audit_report::build(
            period,
            &entries,
            &qualifications,
            &policy.audit,
            compliance,
            now_ms,
        );
        // A checkpoint signed now goes out with the report, so every kept
        // report is a copy of the log's head outside the server (issue 22
        // finding 2). While alarmed none is signed: the newest is shown.
        let alarm = self.log_alarm();
        report.log_checkpoint = if self.checkpoint_key.is_some() && alarm.is_none() {
            Some(self.checkpoint(now_ms)?)
        } else {
            self.latest_checkpoint()?
        };
        report.log_alarm = alarm.map(|a| a.problem);
        report.at_rest = audit_report::AtRest {
            encrypted: self.encryption_key_id().is_some(),
            key_id: self.encryption_key_id().map(|k| k.0.clone()),
        };
        if !report.at_rest.encrypted {
            report.notes.push(
                "The store is not encrypted at rest: a copy of its data folder shows every plate, place and time (SPEC R11.1; `platekeeper keys encrypt`).".into(),
            );
        }
        let body = serde_json::to_string(&report)
            .map_err(|e| StoreError::Corrupt(format!("report: {e}")))?;
        let (id, _) = self.with_log(|tx, head| {
            tx.execute(
                "INSERT INTO audit_reports(period, generated_by, generated_at, report) VALUES (?1, ?2, ?3, ?4)",
                params![report.period.label, actor.username, now_ms, body],
            )?;
            let id = tx.last_insert_rowid()?;
            let e = log::append(tx, head, actor.entry(now_ms, "admin", "audit_report_generated", serde_json::json!({
                "report_id": id, "period": report.period.label, "entries_examined": report.entries_examined,
                "accesses": report.accesses, "compliant": report.purge_compliance.compliant,
            })))?;
            Ok((id, e))
        })?;
        Ok((id, report))
    }

    /// Who was trained and approved when, per user.
    fn qualifications(&self) -> Result<HashMap<String, Qualification>, StoreError> {
        let conn = self.reader()?;
        let mut out: HashMap<String, Qualification> = HashMap::new();
        let mut stmt =
            conn.prepare_cached("SELECT username, completed_at, expires_at FROM training")?;
        let mut rows = stmt.query(())?;
        while let Some(r) = rows.next()? {
            out.entry(r.get(0)?)
                .or_default()
                .trained
                .push((r.get(1)?, r.get(2)?));
        }
        let mut stmt =
            conn.prepare_cached("SELECT username, approved_at, expires_at FROM approvals")?;
        let mut rows = stmt.query(())?;
        while let Some(r) = rows.next()? {
            out.entry(r.get(0)?)
                .or_default()
                .approved
                .push((r.get(1)?, r.get(2)?));
        }
        Ok(out)
    }

    /// Reports kept, newest first.
    pub fn stored_reports(&self) -> Result<Vec<StoredReport>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, period, generated_by, generated_at FROM audit_reports ORDER BY id DESC LIMIT 1000",
        )?;
        crate::sql::collect_rows(&mut stmt, (), |r| {
            Ok(StoredReport {
                id: r.get(0)?,
                period: r.get(1)?,
                generated_by: r.get(2)?,
                generated_at: format_time_ms(r.get(3)?),
            })
        })
    }
}
