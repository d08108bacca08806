//! Hot lists: the rules for lists, entries and alerts (SPEC R3), as data
//! and pure functions.
//!
//! * [`matcher`] — the index every read is checked against at ingest.
//! * [`import`] — the file formats lists are loaded from (CSV, California
//!   DOJ and NCIC fixed-width extracts).

pub mod import;
pub mod matcher;

use serde::{Deserialize, Serialize};

use crate::pattern::{PatternError, PlatePattern};
use crate::region::Region;

/// Fewer fixed characters than this would make an entry match a large
/// share of all traffic (`*`, `??*`, `7*`): every read would alert, and
/// an officer would learn nothing. Such entries are refused.
pub const MIN_ENTRY_FIXED_CHARS: usize = 3;

/// Longest life of a hand-entered entry unless the ALPR Administrator
/// overrides it. The California State Auditor (2019-118) recommended that
/// agencies keep hot-list entries 30 days or less.
pub const MAX_MANUAL_ENTRY_DAYS: i64 = 30;

/// Bounds on a list's retention (days). The policies range from 60 days
/// to 2 years for reads; lists are refreshed daily and kept far shorter,
/// but an agency list of long-term interest may need a year or two.
pub const MIN_RETENTION_DAYS: i64 = 1;
pub const MAX_RETENTION_DAYS: i64 = 730;

/// Entries without two adjacent known characters are checked against
/// every read (about 30 ns each): this many at most, so matching stays
/// within its per-read budget.
pub const MAX_LOOSE_ENTRIES: usize = 2_000;

/// Limits on free-text fields, so a list cannot be used to store files.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_CASE_CHARS: usize = 64;
pub const MAX_NOTE_CHARS: usize = 1_000;

const DAY_MS: i64 = 86_400_000;

/// What every alert carries (SPEC R3.4; policy 001 §467.4 f).
pub const VERIFY_NOTICE: &str =
    "Verify this hit through CLETS before taking any enforcement action. \
An ALPR alert alone is not sufficient grounds for a stop, search or arrest: confirm that the plate \
was read correctly, that the state matches and that the record is still active.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    StolenVehicle,
    StolenPlate,
    Wanted,
    MissingPerson,
    Amber,
    Warrant,
    Agency,
}

pub const ALL_KINDS: &[ListKind] = &[
    ListKind::StolenVehicle,
    ListKind::StolenPlate,
    ListKind::Wanted,
    ListKind::MissingPerson,
    ListKind::Amber,
    ListKind::Warrant,
    ListKind::Agency,
];

impl ListKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::StolenVehicle => "stolen_vehicle",
            ListKind::StolenPlate => "stolen_plate",
            ListKind::Wanted => "wanted",
            ListKind::MissingPerson => "missing_person",
            ListKind::Amber => "amber",
            ListKind::Warrant => "warrant",
            ListKind::Agency => "agency",
        }
    }

    pub fn parse(s: &str) -> Option<ListKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == s)
    }

    /// The reason given to imported entries that name none.
    pub fn default_reason(self) -> &'static str {
        match self {
            ListKind::StolenVehicle => "stolen vehicle",
            ListKind::StolenPlate => "stolen plate",
            ListKind::Wanted => "wanted person",
            ListKind::MissingPerson => "missing person",
            ListKind::Amber => "AMBER alert",
            ListKind::Warrant => "warrant",
            ListKind::Agency => "agency list",
        }
    }
}

/// What the officer found when verifying a hit (SPEC R3.4), in the field
/// choices officers use (issue 23 item 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// The read was right and CLETS confirmed the entry.
    Confirmed,
    /// The plate was right but the state was not.
    WrongState,
    /// The camera misread the plate.
    Misread,
    /// CLETS shows the entry no longer wanted.
    NotWanted,
    /// Not acted on (for example, unable to locate the vehicle).
    Dismissed,
    Other,
}

impl Disposition {
    /// Every disposition, in the order the menu offers them.
    pub const ALL: [Disposition; 6] = [
        Disposition::Confirmed,
        Disposition::WrongState,
        Disposition::Misread,
        Disposition::NotWanted,
        Disposition::Dismissed,
        Disposition::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Confirmed => "confirmed",
            Disposition::WrongState => "wrong_state",
            Disposition::Misread => "misread",
            Disposition::NotWanted => "not_wanted",
            Disposition::Dismissed => "dismissed",
            Disposition::Other => "other",
        }
    }

    /// How the menu names it.
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Confirmed => "Correct read, confirmed through CLETS",
            Disposition::WrongState => "Wrong state",
            Disposition::Misread => "Misread",
            Disposition::NotWanted => "No longer wanted",
            Disposition::Dismissed => "Dismissed (not acted on)",
            Disposition::Other => "Other",
        }
    }

    /// Whether a note must say why: a dismissal's reason, and whatever
    /// "other" was. (The form also asks a confirmed hit's action taken;
    /// the API keeps accepting a confirmed hit without one, as before.)
    pub fn needs_note(self) -> bool {
        matches!(self, Disposition::Dismissed | Disposition::Other)
    }

    pub fn parse(s: &str) -> Option<Disposition> {
        Disposition::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("plate: {0}")]
    Plate(#[from] PatternError),
    #[error("plate: {0:?} fixes fewer than {MIN_ENTRY_FIXED_CHARS} characters and would match too much traffic")]
    TooBroad(String),
    #[error("state: {0:?} is not a US state, territory or Canadian province code")]
    State(String),
    #[error("reason: required, at most {MAX_REASON_CHARS} characters")]
    Reason,
    #[error("case_number: at most {MAX_CASE_CHARS} characters")]
    CaseNumber,
    #[error("expires_at: already past")]
    AlreadyExpired,
    #[error("expires_at: a hand-entered entry may last at most {MAX_MANUAL_ENTRY_DAYS} days; only the ALPR Administrator may set a later expiry")]
    ExpiryTooFar,
    #[error("{field}: contains control characters")]
    Control { field: &'static str },
}

impl EntryError {
    pub fn code(&self) -> &'static str {
        match self {
            EntryError::Plate(_) => "invalid_plate",
            EntryError::TooBroad(_) => "entry_too_broad",
            EntryError::State(_) => "invalid_state",
            EntryError::Reason => "invalid_reason",
            EntryError::CaseNumber => "invalid_case_number",
            EntryError::AlreadyExpired => "entry_expired",
            EntryError::ExpiryTooFar => "expiry_too_far",
            EntryError::Control { .. } => "invalid_text",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            EntryError::Plate(_) | EntryError::TooBroad(_) => "plate",
            EntryError::State(_) => "state",
            EntryError::Reason => "reason",
            EntryError::CaseNumber => "case_number",
            EntryError::AlreadyExpired | EntryError::ExpiryTooFar => "expires_at",
            EntryError::Control { field } => field,
        }
    }
}

/// A checked entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub pattern: PlatePattern,
    pub state: Option<Region>,
    pub reason: String,
    pub case_number: Option<String>,
    pub expires_at_ms: i64,
    /// Vehicle description and source fields from an import (year, make,
    /// model, color, county, date of loss), as shown in the alert.
    pub details: Vec<(&'static str, String)>,
}

/// An entry as submitted, before checking.
#[derive(Debug, Clone, Default)]
pub struct RawEntry<'a> {
    pub plate: &'a str,
    pub state: Option<&'a str>,
    pub reason: &'a str,
    pub case_number: Option<&'a str>,
    pub expires_at_ms: i64,
}

/// Checks an entry. `max_expiry_ms` is the latest expiry allowed (see
/// [`manual_expiry_limit`]); `fuzzy` is the list's misread tolerance.
pub fn check_entry(
    raw: &RawEntry<'_>,
    fuzzy: bool,
    now_ms: i64,
    max_expiry_ms: i64,
) -> Result<EntryDraft, EntryError> {
    let pattern = check_pattern(raw.plate, fuzzy)?;
    let state = match raw.state.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Region::parse(s).ok_or_else(|| EntryError::State(s.to_string()))?),
    };
    let reason = clean_text(raw.reason, "reason")?;
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(EntryError::Reason);
    }
    let case_number = match raw.case_number {
        None => None,
        Some(c) => {
            let c = clean_text(c, "case_number")?;
            if c.chars().count() > MAX_CASE_CHARS {
                return Err(EntryError::CaseNumber);
            }
            (!c.is_empty()).then_some(c)
        }
    };
    if raw.expires_at_ms <= now_ms {
        return Err(EntryError::AlreadyExpired);
    }
    if raw.expires_at_ms > max_expiry_ms {
        return Err(EntryError::ExpiryTooFar);
    }
    Ok(EntryDraft {
        pattern,
        state,
        reason,
        case_number,
        expires_at_ms: raw.expires_at_ms,
        details: Vec::new(),
    })
}

/// Parses an entry's plate: wildcards allowed, but at least
/// [`MIN_ENTRY_FIXED_CHARS`] fixed characters.
pub fn check_pattern(raw: &str, fuzzy: bool) -> Result<PlatePattern, EntryError> {
    let pattern = match PlatePattern::parse(raw, fuzzy) {
        Err(PatternError::TooBroad(text)) => return Err(EntryError::TooBroad(text)),
        other => other?,
    };
    if pattern.fixed_chars() < MIN_ENTRY_FIXED_CHARS {
        return Err(EntryError::TooBroad(pattern.as_str().to_string()));
    }
    Ok(pattern)
}

/// The latest expiry a hand-entered (or imported) entry may have: 30 days
/// and within the list's retention; up to the whole retention with the
/// ALPR Administrator's override (`Right::OverrideEntryExpiry`).
pub fn manual_expiry_limit(now_ms: i64, retention_days: i64, override_allowed: bool) -> i64 {
    let days = if override_allowed {
        retention_days
    } else {
        MAX_MANUAL_ENTRY_DAYS.min(retention_days)
    };
    now_ms + days * DAY_MS
}

/// When an imported entry with no expiry of its own expires: at the end of
/// its list's retention (a daily re-import replaces it long before).
pub fn import_expiry(now_ms: i64, retention_days: i64) -> i64 {
    now_ms + retention_days * DAY_MS
}

/// Whether a list's retention (days) is allowed.
pub fn check_retention(days: i64) -> bool {
    (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days)
}

/// When the daily job deletes an entry: at its expiry, or when it has
/// been kept for its list's whole retention, whichever is first (R3.5).
pub fn entry_purge_at(entered_at_ms: i64, expires_at_ms: i64, retention_days: i64) -> i64 {
    expires_at_ms.min(entered_at_ms + retention_days * DAY_MS)
}

/// Trims a free-text field and refuses control characters (they would
/// corrupt CSV exports and terminal output of the audit trail).
pub fn clean_text(raw: &str, field: &'static str) -> Result<String, EntryError> {
    let t = raw.trim();
    if t.chars().any(|c| c.is_control()) {
        return Err(EntryError::Control { field });
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn raw(plate: &str) -> RawEntry<'_> {
        RawEntry {
            plate,
            state: Some("CA"),
            reason: "stolen 10851 VC",
            case_number: Some("24-1234"),
            expires_at_ms: NOW + 5 * DAY_MS,
        }
    }

    #[test]
    fn entries_need_three_fixed_characters() {
        let max = manual_expiry_limit(NOW, 60, false);
        for broad in ["*", "??*", "7*", "7?B", "*AB*", "A?B?*"] {
            let e = check_entry(&raw(broad), false, NOW, max).unwrap_err();
            assert_eq!(e.code(), "entry_too_broad", "{broad}");
            assert_eq!(e.field(), "plate");
        }
        for ok in ["7ABC123", "7AB*", "*123", "7?B?1?3", "abc"] {
            assert!(check_entry(&raw(ok), false, NOW, max).is_ok(), "{ok}");
        }
        assert_eq!(
            check_entry(&raw("7AB;DROP"), false, NOW, max)
                .unwrap_err()
                .code(),
            "invalid_plate"
        );
    }

    #[test]
    fn manual_entries_last_at_most_thirty_days_unless_the_administrator_says_so() {
        let officer = manual_expiry_limit(NOW, 365, false);
        assert_eq!(officer, NOW + 30 * DAY_MS);
        let mut r = raw("7ABC123");
        r.expires_at_ms = NOW + 31 * DAY_MS;
        assert_eq!(
            check_entry(&r, false, NOW, officer).unwrap_err(),
            EntryError::ExpiryTooFar
        );
        let admin = manual_expiry_limit(NOW, 365, true);
        assert!(check_entry(&r, false, NOW, admin).is_ok());
        // A list kept 7 days cannot hold a 30-day entry.
        assert_eq!(manual_expiry_limit(NOW, 7, false), NOW + 7 * DAY_MS);
        r.expires_at_ms = NOW;
        assert_eq!(
            check_entry(&r, false, NOW, admin).unwrap_err().code(),
            "entry_expired"
        );
    }

    #[test]
    fn text_fields_are_bounded_and_clean() {
        let max = manual_expiry_limit(NOW, 60, false);
        let mut r = raw("7ABC123");
        r.reason = "  ";
        assert_eq!(
            check_entry(&r, false, NOW, max).unwrap_err().field(),
            "reason"
        );
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        r.reason = &long;
        assert_eq!(
            check_entry(&r, false, NOW, max).unwrap_err().field(),
            "reason"
        );
        r.reason = "stolen\u{1b}[2J";
        assert_eq!(
            check_entry(&r, false, NOW, max).unwrap_err().code(),
            "invalid_text"
        );
        let mut r = raw("7ABC123");
        r.state = Some("XX");
        assert_eq!(
            check_entry(&r, false, NOW, max).unwrap_err().field(),
            "state"
        );
        r.state = Some("");
        assert_eq!(check_entry(&r, false, NOW, max).unwrap().state, None);
    }

    #[test]
    fn retention_and_purge_dates() {
        assert!(check_retention(30) && check_retention(730));
        assert!(!check_retention(0) && !check_retention(731));
        assert_eq!(
            entry_purge_at(NOW, NOW + 90 * DAY_MS, 60),
            NOW + 60 * DAY_MS
        );
        assert_eq!(entry_purge_at(NOW, NOW + DAY_MS, 60), NOW + DAY_MS);
        for k in ALL_KINDS {
            assert_eq!(ListKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(
            Disposition::parse("not_wanted"),
            Some(Disposition::NotWanted)
        );
        assert_eq!(Disposition::parse("maybe"), None);
    }
}
