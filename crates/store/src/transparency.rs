//! The public figures (SPEC R8.3; policy 001 § 467.3.1 g): aggregates
//! only — never a plate, a place or a person's search.

use platekeeper_core::read::format_time_ms;
use platekeeper_core::retention::DAY_MS;
use serde::Serialize;

use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgencyShares {
    pub agency: String,
    pub transfers: i64,
    pub reads: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicFigures {
    pub as_of: String,
    pub reads_kept: u64,
    pub oldest_read_age_days: Option<f64>,
    pub reads_retention_days: i64,
    pub images_retention_days: i64,
    pub hotlist_hits_this_month: i64,
    pub hotlist_hits_kept: i64,
    pub searches_this_month: i64,
    pub legal_holds_open: i64,
    pub shares_by_agency: Vec<AgencyShares>,
    /// Public-records requests received this year.
    pub records_requests_this_year: i64,
}

/// First millisecond of the UTC month (and year) holding `now_ms`.
fn month_and_year_start(now_ms: i64) -> (i64, i64) {
    let date = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    let start = |m: time::Month| {
        time::Date::from_calendar_date(date.year(), m, 1)
            .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
            .unwrap_or(0)
    };
    (start(date.month()), start(time::Month::January))
}

impl Store {
    /// The figures `/transparency` shows. Counting the reads of every day
    /// takes a while on a large store: callers cache the result.
    pub fn public_figures(&self, now_ms: i64) -> Result<PublicFigures, StoreError> {
        let policy = self.policy().retention;
        let (month, year) = month_and_year_start(now_ms);
        let reads_kept = self.read_count()?;
        let oldest = self.oldest_read_ms()?;
        let conn = self.reader()?;
        let count = |sql: &str, arg: i64| -> Result<i64, StoreError> {
            conn.query_row(sql, [arg], |r| r.get(0))
        };
        let hits_month = count("SELECT count(*) FROM alerts WHERE created_at >= ?1", month)?;
        let hits_kept = count("SELECT count(*) FROM alerts WHERE ?1 = ?1", 0)?;
        let searches = count(
            "SELECT count(*) FROM log WHERE ts >= ?1 AND category = 'access' AND kind = 'search'",
            month,
        )?;
        let holds = count(
            "SELECT count(*) FROM holds WHERE lifted_at IS NULL AND ?1 = ?1",
            0,
        )?;
        let records = count(
            "SELECT count(*) FROM records_requests WHERE recorded_at >= ?1",
            year,
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.name, count(t.id), CAST(coalesce(sum(t.reads), 0) AS BIGINT) FROM transfers t
             JOIN agencies a ON a.id = t.agency_id GROUP BY a.id ORDER BY a.name",
        )?;
        let mut rows = stmt.query(())?;
        let mut shares = Vec::new();
        while let Some(r) = rows.next()? {
            shares.push(AgencyShares {
                agency: r.get(0)?,
                transfers: r.get(1)?,
                reads: r.get(2)?,
            });
        }
        Ok(PublicFigures {
            as_of: format_time_ms(now_ms),
            reads_kept,
            oldest_read_age_days: oldest
                .map(|t| ((now_ms - t) as f64 / DAY_MS as f64 * 10.0).round() / 10.0),
            reads_retention_days: policy.reads_days,
            images_retention_days: policy.images_days,
            hotlist_hits_this_month: hits_month,
            hotlist_hits_kept: hits_kept,
            searches_this_month: searches,
            legal_holds_open: holds,
            shares_by_agency: shares,
            records_requests_this_year: records,
        })
    }
}
