//! Retention: how long each class of data is kept, and when it must go
//! (SPEC R6.1, R6.3; policies 000 § 462.12, 001 § 467.5, 003 § 429.9).
//!
//! The agency sets every period ([`RetentionPolicy`], part of the agency
//! policy); nothing here is a fixed number of days except the bounds a
//! setting must stay within, which stop a typo from destroying a year of
//! evidence or from keeping data forever.

use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;

/// The data classes with their own retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Plate reads (and the alerts they raised, which copy them).
    Reads,
    /// The pictures of reads.
    Images,
    /// Hot-list entries and lists (the longest any list may keep them).
    HotLists,
    /// The hash-chained access and audit log.
    AccessLog,
    /// Audit reports, sharing requests on file, records of downloads.
    AuditDocuments,
    /// Downloaded or exported data held outside the system: the deadline
    /// by which each copy must be destroyed.
    Downloads,
}

impl DataClass {
    pub const ALL: [DataClass; 6] = [
        DataClass::Reads,
        DataClass::Images,
        DataClass::HotLists,
        DataClass::AccessLog,
        DataClass::AuditDocuments,
        DataClass::Downloads,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Reads => "reads",
            DataClass::Images => "images",
            DataClass::HotLists => "hotlists",
            DataClass::AccessLog => "access_log",
            DataClass::AuditDocuments => "audit_documents",
            DataClass::Downloads => "downloads",
        }
    }
}

/// Days each class is kept (for downloads: days until a copy must be
/// destroyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionPolicy {
    pub reads_days: i64,
    pub images_days: i64,
    pub hotlists_days: i64,
    pub access_log_days: i64,
    pub audit_documents_days: i64,
    pub downloads_days: i64,
}

impl Default for RetentionPolicy {
    /// One year for reads and images (the most common figure in the
    /// policies, Gov. Code § 34090.6), two years of access log, three of
    /// audit documents, and 30 days to destroy a download.
    fn default() -> Self {
        RetentionPolicy {
            reads_days: 365,
            images_days: 365,
            hotlists_days: 365,
            access_log_days: 730,
            audit_documents_days: 1095,
            downloads_days: 30,
        }
    }
}

/// The bounds of each setting, as (class, lowest, highest, why).
pub const BOUNDS: &[(DataClass, i64, i64, &str)] = &[
    (
        DataClass::Reads,
        30,
        3653,
        "policies keep reads 60 days to 2 years",
    ),
    (
        DataClass::Images,
        1,
        3653,
        "images may go sooner than reads, never later",
    ),
    (
        DataClass::HotLists,
        1,
        730,
        "hot lists are refreshed, not archived",
    ),
    (
        DataClass::AccessLog,
        365,
        3653,
        "audits cover at least a year of accesses",
    ),
    (
        DataClass::AuditDocuments,
        365,
        3653,
        "audit documents outlive the period they cover",
    ),
    (
        DataClass::Downloads,
        1,
        365,
        "downloaded copies are destroyed by a deadline",
    ),
];

impl RetentionPolicy {
    pub fn days(&self, class: DataClass) -> i64 {
        match class {
            DataClass::Reads => self.reads_days,
            DataClass::Images => self.images_days,
            DataClass::HotLists => self.hotlists_days,
            DataClass::AccessLog => self.access_log_days,
            DataClass::AuditDocuments => self.audit_documents_days,
            DataClass::Downloads => self.downloads_days,
        }
    }

    /// Refuses a period outside its bounds, and images kept longer than
    /// the reads they belong to.
    pub fn check(&self) -> Result<(), String> {
        for &(class, lo, hi, why) in BOUNDS {
            let d = self.days(class);
            if !(lo..=hi).contains(&d) {
                return Err(format!(
                    "retention.{}_days is {d}; it must be {lo} to {hi} ({why})",
                    class.as_str()
                ));
            }
        }
        if self.images_days > self.reads_days {
            return Err(format!(
                "retention.images_days ({}) is longer than retention.reads_days ({}); an image is kept no longer than its read",
                self.images_days, self.reads_days
            ));
        }
        Ok(())
    }

    /// Data of `class` from before this time is past retention.
    pub fn cutoff_ms(&self, class: DataClass, now_ms: i64) -> i64 {
        now_ms - self.days(class) * DAY_MS
    }

    /// The first UTC day (days since 1970) of reads or images that is
    /// still kept: a day goes once all of it is past retention, so a read
    /// lives at most one day beyond its period.
    pub fn first_kept_day(&self, class: DataClass, now_ms: i64) -> i32 {
        self.cutoff_ms(class, now_ms).div_euclid(DAY_MS) as i32
    }

    /// The deadline by which a copy downloaded at `at_ms` is destroyed.
    pub fn destroy_by_ms(&self, at_ms: i64) -> i64 {
        at_ms + self.downloads_days * DAY_MS
    }
}

/// Whether the oldest data kept respects the period: what an auditor
/// checks (SPEC R8.1, purge compliance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compliance {
    pub retention_days: i64,
    /// Age of the oldest non-held read, in days; `None` when none is kept.
    pub oldest_age_days: Option<f64>,
    /// Reads are purged a whole UTC day at a time by a daily job, so
    /// the oldest may be up to two days past the period.
    pub allowed_days: i64,
    pub compliant: bool,
}

pub fn compliance(retention_days: i64, oldest_ms: Option<i64>, now_ms: i64) -> Compliance {
    let allowed_days = retention_days + 2;
    let oldest_age_days = oldest_ms.map(|t| (now_ms - t) as f64 / DAY_MS as f64);
    Compliance {
        retention_days,
        oldest_age_days,
        allowed_days,
        compliant: oldest_age_days.is_none_or(|a| a <= allowed_days as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_periods_are_refused_by_name() {
        assert!(RetentionPolicy::default().check().is_ok());
        let p = RetentionPolicy {
            reads_days: 3,
            ..Default::default()
        };
        assert!(p.check().unwrap_err().contains("retention.reads_days is 3"));
        let p = RetentionPolicy {
            images_days: 400,
            ..Default::default()
        };
        assert!(p.check().unwrap_err().contains("images_days (400)"));
        let p = RetentionPolicy {
            access_log_days: 30,
            ..Default::default()
        };
        assert!(p.check().unwrap_err().contains("access_log_days"));
    }

    #[test]
    fn a_day_goes_only_once_all_of_it_is_past_retention() {
        let p = RetentionPolicy {
            reads_days: 60,
            ..Default::default()
        };
        let now = 20_400 * DAY_MS + 5 * 3_600_000;
        // Cutoff = day 20340 at 05:00: day 20339 is wholly past, 20340 not.
        assert_eq!(p.first_kept_day(DataClass::Reads, now), 20_340);
        assert_eq!(p.destroy_by_ms(now), now + 30 * DAY_MS);
    }

    #[test]
    fn compliance_allows_the_day_boundary_only() {
        let now = 1_000 * DAY_MS;
        assert!(compliance(60, Some(now - 61 * DAY_MS), now).compliant);
        assert!(!compliance(60, Some(now - 63 * DAY_MS), now).compliant);
        assert!(compliance(60, None, now).compliant);
    }
}
