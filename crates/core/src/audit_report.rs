//! The periodic audit (SPEC R8.1; policies 000 § 462.8, 003 § 429.8): what
//! an ALPR Administrator or a state auditor reads to see whether the
//! system was used as the policy says.
//!
//! [`build`] is a pure function of the log entries of a period, the
//! users' training and approval history, and the retention figures; the
//! store gathers those and keeps the result. Findings:
//! * accesses per user (and refusals, after-hours work, busiest day);
//! * purposes that fell short (refused requests, with the rule that
//!   refused them);
//! * accesses by a user without current training or approval at the time;
//! * accesses outside working hours (agency-local time);
//! * unusual volume: a day with more than `unusual_volume_factor` times
//!   the user's own median daily accesses;
//! * hot-list changes, shares, purges and purge compliance, corrections;
//! * policy changes with old and new values, and account locks.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::read::format_time_ms;
use crate::retention::{Compliance, DAY_MS};

/// How the audit reads times and volumes (part of the agency policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditPolicy {
    /// The agency's offset from UTC in minutes, in standard time (Pacific
    /// standard time: -480).
    pub utc_offset_minutes: i32,
    /// Whether the agency keeps US daylight saving time: one hour ahead
    /// of `utc_offset_minutes` from 02:00 on the second Sunday of March
    /// to 02:00 on the first Sunday of November (15 U.S.C. § 260a).
    /// California does; Arizona and Hawaii do not.
    pub daylight_saving: bool,
    /// Working hours, local: accesses outside `[start, end)` are listed.
    pub workday_start_hour: u8,
    pub workday_end_hour: u8,
    /// A day with more than this many times a user's median daily
    /// accesses is unusual.
    pub unusual_volume_factor: u32,
    /// …and with at least this many accesses (3 × a median of 1 is noise).
    pub unusual_volume_minimum: u32,
    /// What the server does when, at start, the log does not extend its
    /// last signed checkpoint: `refuse` (the default) or `alarm`.
    pub on_tamper: crate::checkpoint::OnTamper,
}

impl Default for AuditPolicy {
    fn default() -> Self {
        AuditPolicy {
            utc_offset_minutes: -480,
            daylight_saving: true,
            workday_start_hour: 6,
            workday_end_hour: 22,
            unusual_volume_factor: 3,
            unusual_volume_minimum: 10,
            on_tamper: crate::checkpoint::OnTamper::Refuse,
        }
    }
}

impl AuditPolicy {
    pub fn check(&self) -> Result<(), String> {
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err("audit.utc_offset_minutes must be -720 to 840".into());
        }
        if self.workday_start_hour >= self.workday_end_hour || self.workday_end_hour > 24 {
            return Err(
                "audit.workday_start_hour must be before audit.workday_end_hour (0 to 24)".into(),
            );
        }
        if !(2..=100).contains(&self.unusual_volume_factor) {
            return Err("audit.unusual_volume_factor must be 2 to 100".into());
        }
        if !(1..=100_000).contains(&self.unusual_volume_minimum) {
            return Err("audit.unusual_volume_minimum must be 1 to 100000".into());
        }
        Ok(())
    }

    /// The agency's offset from UTC at the instant `ts_ms`, in minutes.
    pub fn offset_minutes_at(&self, ts_ms: i64) -> i32 {
        let standard = self.utc_offset_minutes;
        if !self.daylight_saving {
            return standard;
        }
        let Some((starts, ends)) = self.daylight_span(ts_ms) else {
            return standard;
        };
        if (starts..ends).contains(&ts_ms) {
            standard + 60
        } else {
            standard
        }
    }

    /// When daylight saving time starts and ends (UTC milliseconds) in
    /// the local year of `ts_ms`: at 02:00 standard time on the second
    /// Sunday of March, and at 02:00 daylight time (01:00 standard) on the
    /// first Sunday of November.
    fn daylight_span(&self, ts_ms: i64) -> Option<(i64, i64)> {
        let standard_ms = self.utc_offset_minutes as i64 * 60_000;
        // Plain integer calendar arithmetic: this runs once per log entry
        // of a report (a million in a busy quarter).
        let year = year_of_day(ts_ms.checked_add(standard_ms)?.div_euclid(DAY_MS));
        if !(1900..=9999).contains(&year) {
            return None;
        }
        let starts = nth_sunday(year, 3, 2) * DAY_MS + 2 * 3_600_000 - standard_ms;
        let ends = nth_sunday(year, 11, 1) * DAY_MS + 3_600_000 - standard_ms;
        Some((starts, ends))
    }

    fn local_ms(&self, ts_ms: i64) -> i64 {
        ts_ms.saturating_add(self.offset_minutes_at(ts_ms) as i64 * 60_000)
    }

    /// The UTC instant of a local wall-clock time. A month or a day starts
    /// at midnight, never inside a daylight-saving change (02:00), so the
    /// answer is unique for the times this is asked about.
    fn utc_of_local(&self, local_ms: i64) -> i64 {
        let standard = local_ms - self.utc_offset_minutes as i64 * 60_000;
        let daylight = standard - 3_600_000;
        if self.offset_minutes_at(daylight) == self.utc_offset_minutes + 60 {
            daylight
        } else {
            standard
        }
    }

    pub fn is_after_hours(&self, ts_ms: i64) -> bool {
        self.is_after_hours_local(self.local_ms(ts_ms))
    }

    /// [`Self::is_after_hours`] of a time already made local.
    fn is_after_hours_local(&self, local_ms: i64) -> bool {
        let hour = (local_ms.rem_euclid(DAY_MS) / 3_600_000) as u8;
        !(self.workday_start_hour..self.workday_end_hour).contains(&hour)
    }
}

/// A quarter or a year, in agency-local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    pub label: String,
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
}

impl Period {
    /// `2026Q3` (a quarter) or `2026` (a year).
    pub fn parse(s: &str, policy: &AuditPolicy) -> Result<Period, String> {
        let bad = || format!("period {s:?} is not a quarter like 2026Q3 or a year like 2026");
        let s = s.trim();
        let (year, months) = match s.split_once(['Q', 'q']) {
            Some((y, q)) => {
                let q: u8 = q.parse().map_err(|_| bad())?;
                if !(1..=4).contains(&q) {
                    return Err(bad());
                }
                (y, (q * 3 - 2, 3u8))
            }
            None => (s, (1, 12)),
        };
        if year.len() != 4 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        if !(2000..=2200).contains(&year) {
            return Err(bad());
        }
        let start = month_start_ms(year, months.0).ok_or_else(bad)?;
        let end_month = months.0 + months.1;
        let end = if end_month > 12 {
            month_start_ms(year + 1, end_month - 12)
        } else {
            month_start_ms(year, end_month)
        }
        .ok_or_else(bad)?;
        Ok(Period {
            label: if months.1 == 12 {
                format!("{year}")
            } else {
                format!("{year}Q{}", months.0.div_ceil(3))
            },
            from_ms: policy.utc_of_local(start),
            to_ms: policy.utc_of_local(end),
        })
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar
/// (H. Hinnant's `days_from_civil`).
fn day_of(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day counted from 1970-01-01 (`civil_from_days`).
fn year_of_day(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// The day (from 1970-01-01) of the `n`th Sunday of `month`.
fn nth_sunday(year: i64, month: i64, n: i64) -> i64 {
    let first = day_of(year, month, 1);
    // 1970-01-01 was a Thursday: day 0 is weekday 4, counting Sunday as 0.
    let weekday = (first + 4).rem_euclid(7);
    first + (7 - weekday) % 7 + 7 * (n - 1)
}

fn month_start_ms(year: i32, month: u8) -> Option<i64> {
    (1..=12)
        .contains(&month)
        .then(|| day_of(year.into(), month.into(), 1) * DAY_MS)
}

/// One log entry, as the audit needs it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    pub ts_ms: i64,
    pub category: String,
    pub kind: String,
    pub username: String,
    /// Where it came from: the address, and the agency device if one
    /// (`… · device 7 (Unit 12 MDT)`).
    pub client: Option<String>,
    /// The entry's details (JSON).
    pub details: serde_json::Value,
}

/// The device an entry's client names, if one.
fn device_of(client: Option<&str>) -> Option<&str> {
    let c = client?;
    let at = c.find("device ")?;
    Some(&c[at..])
}

/// Whether the store was encrypted at rest when the report was made
/// (issue 24 item 1, SPEC R11.1).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AtRest {
    pub encrypted: bool,
    /// The public id of the data key (never the key).
    pub key_id: Option<String>,
}

/// Accesses made from one agency device in the period (issue 24 item 3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSummary {
    /// `device 7 (Unit 12 MDT)`, or `no device` for accesses made before
    /// devices were required or from outside (refused ones are a section).
    pub device: String,
    pub accesses: usize,
}

/// When a user was trained and approved: `[from, to)` spans.
#[derive(Debug, Clone, Default)]
pub struct Qualification {
    pub trained: Vec<(i64, i64)>,
    pub approved: Vec<(i64, i64)>,
}

fn covered(spans: &[(i64, i64)], t: i64) -> bool {
    spans.iter().any(|&(a, b)| a <= t && t < b)
}

/// Longest list of individual findings per section; counts stay exact.
pub const MAX_LISTED: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub seq: i64,
    pub ts: String,
    pub username: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Findings in the period (all of them, also those not listed).
    pub count: usize,
    /// The first [`MAX_LISTED`] findings, oldest first.
    pub items: Vec<Finding>,
}

impl Section {
    fn new() -> Section {
        Section {
            count: 0,
            items: Vec::new(),
        }
    }

    fn push(&mut self, e: &Entry, detail: serde_json::Value) {
        self.count += 1;
        if self.items.len() < MAX_LISTED {
            self.items.push(Finding {
                seq: e.seq,
                ts: format_time_ms(e.ts_ms),
                username: e.username.clone(),
                kind: e.kind.clone(),
                detail,
            });
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    pub username: String,
    pub accesses: usize,
    pub refused: usize,
    pub after_hours: usize,
    pub unqualified: usize,
    /// Median accesses on the days the user made any.
    pub median_daily: f64,
    pub busiest_day: Option<String>,
    pub busiest_day_accesses: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusualDay {
    pub username: String,
    /// Agency-local date.
    pub day: String,
    pub accesses: usize,
    pub median_daily: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: Period,
    pub from: String,
    pub to: String,
    pub generated_at: String,
    pub entries_examined: usize,
    pub accesses: usize,
    pub users: Vec<UserSummary>,
    pub purposes_short: Section,
    pub unqualified_accesses: Section,
    pub after_hours: Section,
    pub unusual_volume: Vec<UnusualDay>,
    pub hotlist_changes: Section,
    pub shares: Section,
    pub purges: Section,
    pub purge_compliance: Compliance,
    pub corrections: Section,
    /// Changes of the agency's policy, each with its fields' old and new
    /// values and the weakenings among them (issue 22 finding 5).
    pub policy_changes: Section,
    /// Accounts locked by failed sign-ins, and unlocked (by an
    /// administrator, the command line, or a lock's time running out).
    pub lockouts: Section,
    /// Plate data refused to a connection without a registered device.
    pub device_refusals: Section,
    /// Accesses per device.
    pub devices: Vec<DeviceSummary>,
    /// Encryption at rest, as the store stood when the report was made.
    pub at_rest: AtRest,
    pub notes: Vec<String>,
    /// The log's head, signed when the report was made: keeping the
    /// report keeps a copy of it, with which `platekeeper audit verify
    /// --checkpoint` later proves the log was not rewritten up to it.
    pub log_checkpoint: Option<crate::checkpoint::Checkpoint>,
    /// Set when the server started with a log that failed its check
    /// against the last checkpoint and no one has acknowledged it yet.
    pub log_alarm: Option<String>,
}

/// Log kinds that record plate data leaving the agency.
pub fn is_share(kind: &str) -> bool {
    kind.starts_with("sharing_") || kind == "transfer_recorded"
}

/// Builds the report. `entries` are the period's log entries, in order.
pub fn build(
    period: Period,
    entries: &[Entry],
    qualifications: &HashMap<String, Qualification>,
    policy: &AuditPolicy,
    compliance: Compliance,
    now_ms: i64,
) -> Report {
    #[derive(Default)]
    struct Tally {
        accesses: usize,
        refused: usize,
        after_hours: usize,
        unqualified: usize,
        per_day: BTreeMap<i64, usize>,
    }
    let mut users: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut purposes_short = Section::new();
    let mut unqualified = Section::new();
    let mut after_hours = Section::new();
    let mut hotlist_changes = Section::new();
    let mut shares = Section::new();
    let mut purges = Section::new();
    let mut corrections = Section::new();
    let mut policy_changes = Section::new();
    let mut lockouts = Section::new();
    let mut device_refusals = Section::new();
    let mut devices: BTreeMap<String, usize> = BTreeMap::new();
    let mut accesses = 0;
    let none = Qualification::default();
    for e in entries {
        match e.category.as_str() {
            "access" => {
                accesses += 1;
                *devices
                    .entry(
                        device_of(e.client.as_deref())
                            .unwrap_or("no device")
                            .to_string(),
                    )
                    .or_default() += 1;
                let t = users.entry(&e.username).or_default();
                t.accesses += 1;
                // The offset is worked out once per entry, for both uses.
                let local = policy.local_ms(e.ts_ms);
                *t.per_day.entry(local.div_euclid(DAY_MS)).or_default() += 1;
                if policy.is_after_hours_local(local) {
                    t.after_hours += 1;
                    after_hours.push(e, serde_json::Value::Null);
                }
                let q = qualifications.get(&e.username).unwrap_or(&none);
                let mut missing = Vec::new();
                if !covered(&q.trained, e.ts_ms) {
                    missing.push("training");
                }
                if !covered(&q.approved, e.ts_ms) {
                    missing.push("approval");
                }
                if !missing.is_empty() {
                    t.unqualified += 1;
                    unqualified.push(e, serde_json::json!({ "lacking": missing }));
                }
            }
            "refused" if e.kind == "device_not_registered" => {
                users.entry(&e.username).or_default().refused += 1;
                device_refusals.push(e, e.details.clone());
            }
            "refused" => {
                users.entry(&e.username).or_default().refused += 1;
                purposes_short.push(e, e.details.clone());
            }
            _ => {}
        }
        if e.kind.starts_with("hotlist_") {
            hotlist_changes.push(e, e.details.clone());
        } else if is_share(&e.kind) {
            shares.push(e, e.details.clone());
        } else if e.kind == "purge" {
            purges.push(e, e.details.clone());
        } else if e.kind == "read_corrected" {
            corrections.push(e, e.details.clone());
        } else if e.kind == "policy_changed" {
            policy_changes.push(e, policy_change_detail(&e.details));
        } else if e.kind == "account_locked" || e.kind == "account_unlocked" {
            lockouts.push(e, e.details.clone());
        }
    }
    let day_label = |d: i64| {
        time::Date::from_julian_day(d as i32 + 2_440_588)
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    let mut unusual_volume = Vec::new();
    let summaries = users
        .into_iter()
        .map(|(username, t)| {
            let mut counts: Vec<usize> = t.per_day.values().copied().collect();
            counts.sort_unstable();
            let median = match counts.len() {
                0 => 0.0,
                n if n % 2 == 1 => counts[n / 2] as f64,
                n => (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0,
            };
            for (&day, &n) in &t.per_day {
                if n as f64 > median * policy.unusual_volume_factor as f64
                    && n >= policy.unusual_volume_minimum as usize
                {
                    unusual_volume.push(UnusualDay {
                        username: username.to_string(),
                        day: day_label(day),
                        accesses: n,
                        median_daily: median,
                    });
                }
            }
            let busiest = t.per_day.iter().max_by_key(|(d, n)| (**n, -**d));
            UserSummary {
                username: username.to_string(),
                accesses: t.accesses,
                refused: t.refused,
                after_hours: t.after_hours,
                unqualified: t.unqualified,
                median_daily: median,
                busiest_day: busiest.map(|(d, _)| day_label(*d)),
                busiest_day_accesses: busiest.map_or(0, |(_, n)| *n),
            }
        })
        .collect();
    let utc = |minutes: i32| format!("UTC{:+03}:{:02}", minutes / 60, (minutes % 60).abs());
    let mut notes = vec![format!(
        "Times are read at {}; working hours {:02}:00–{:02}:00.",
        if policy.daylight_saving {
            format!(
                "{} ({} under US daylight saving time)",
                utc(policy.utc_offset_minutes),
                utc(policy.utc_offset_minutes + 60)
            )
        } else {
            format!("{} all year", utc(policy.utc_offset_minutes))
        },
        policy.workday_start_hour,
        policy.workday_end_hour
    )];
    if !compliance.compliant {
        notes.push(format!(
            "Purge compliance fails: the oldest read kept that is not on legal hold is {:.1} days old; the policy keeps reads {} days.",
            compliance.oldest_age_days.unwrap_or(0.0),
            compliance.retention_days
        ));
    }
    Report {
        from: format_time_ms(period.from_ms),
        to: format_time_ms(period.to_ms),
        period,
        generated_at: format_time_ms(now_ms),
        entries_examined: entries.len(),
        accesses,
        users: summaries,
        purposes_short,
        unqualified_accesses: unqualified,
        after_hours,
        unusual_volume,
        hotlist_changes,
        shares,
        purges,
        purge_compliance: compliance,
        corrections,
        policy_changes,
        lockouts,
        device_refusals,
        devices: devices
            .into_iter()
            .map(|(device, accesses)| DeviceSummary { device, accesses })
            .collect(),
        at_rest: AtRest::default(),
        notes,
        log_checkpoint: None,
        log_alarm: None,
    }
}

/// A policy change as the report lists it: the changed fields with old
/// and new values, and the weakenings, without the whole policy the log
/// entry also keeps. A long text (the posted policy) is cut short.
fn policy_change_detail(details: &serde_json::Value) -> serde_json::Value {
    fn short(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) if s.chars().count() > 200 => {
                serde_json::Value::String(format!(
                    "{}… ({} characters)",
                    s.chars().take(120).collect::<String>(),
                    s.chars().count()
                ))
            }
            other => other.clone(),
        }
    }
    let list = |key: &str| -> Vec<serde_json::Value> {
        details[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        let mut c = c.clone();
                        for k in ["old", "new"] {
                            if let Some(v) = c.get(k).map(short) {
                                c[k] = v;
                            }
                        }
                        c
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if details.get("changes").is_none() {
        // Logged before changes were itemised: only the whole new policy.
        return serde_json::json!({"note": "logged with the whole new policy only; see the log entry"});
    }
    let mut out = serde_json::json!({
        "changes": list("changes"),
        "weakenings": list("weakenings"),
    });
    if let Some(c) = details.get("weakenings_confirmed") {
        out["weakenings_confirmed"] = c.clone();
    }
    out
}

impl Report {
    fn sections(&self) -> [(&'static str, &'static str, &Section); 10] {
        [
            (
                "purposes_short",
                "Purposes that fell short (refused)",
                &self.purposes_short,
            ),
            (
                "unqualified_access",
                "Accesses without current training or approval",
                &self.unqualified_accesses,
            ),
            (
                "after_hours",
                "Accesses outside working hours",
                &self.after_hours,
            ),
            ("hotlist_change", "Hot-list changes", &self.hotlist_changes),
            ("share", "Shares with other agencies", &self.shares),
            ("purge", "Purges", &self.purges),
            ("correction", "Corrections of misreads", &self.corrections),
            (
                "policy_change",
                "Policy changes (old and new values; weakenings confirmed)",
                &self.policy_changes,
            ),
            ("lockout", "Accounts locked and unlocked", &self.lockouts),
            (
                "device_refusal",
                "Plate data refused: not an agency device",
                &self.device_refusals,
            ),
        ]
    }

    /// One row per finding: `section,seq,ts,username,kind,detail`, after
    /// one row per user and one per unusual day.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("section,seq,ts,username,kind,detail\n");
        let mut row = |cells: [&str; 6]| {
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        };
        for u in &self.users {
            let detail = format!(
                "accesses={} refused={} after_hours={} unqualified={} median_daily={} busiest_day={} ({})",
                u.accesses,
                u.refused,
                u.after_hours,
                u.unqualified,
                u.median_daily,
                u.busiest_day.as_deref().unwrap_or("-"),
                u.busiest_day_accesses
            );
            row(["user", "", "", &u.username, "summary", &detail]);
        }
        for d in &self.unusual_volume {
            let detail = format!("{} accesses; median {}", d.accesses, d.median_daily);
            row(["unusual_volume", "", &d.day, &d.username, "", &detail]);
        }
        for d in &self.devices {
            row([
                "device",
                "",
                "",
                "",
                &d.device,
                &format!("accesses={}", d.accesses),
            ]);
        }
        for (name, _, s) in self.sections() {
            for f in &s.items {
                row([
                    name,
                    &f.seq.to_string(),
                    &f.ts,
                    &f.username,
                    &f.kind,
                    &f.detail.to_string(),
                ]);
            }
        }
        let c = &self.purge_compliance;
        let detail = format!(
            "compliant={} oldest_age_days={} retention_days={}",
            c.compliant,
            c.oldest_age_days.map_or("-".into(), |a| format!("{a:.1}")),
            c.retention_days
        );
        row(["purge_compliance", "", "", "", "", &detail]);
        if let Some(c) = &self.log_checkpoint {
            let detail = format!(
                "entries={} head={} time={} store_id={} public_key={} signature={}",
                c.entries, c.head, c.time, c.store_id, c.public_key, c.signature
            );
            row([
                "log_checkpoint",
                &c.entries.to_string(),
                &c.time,
                "",
                "",
                &detail,
            ]);
        }
        if let Some(a) = &self.log_alarm {
            row(["log_alarm", "", "", "", "", a]);
        }
        out
    }

    /// A readable, self-contained page (no scripts, no outside assets).
    pub fn to_html(&self, agency: &str) -> String {
        let mut h = String::new();
        let title = format!("ALPR audit {} — {}", self.period.label, esc(agency));
        h.push_str(&format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <style>body{{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
             table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}th,td{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
             th{{background:#f1f3f5}}.bad{{color:#a40000;font-weight:600}}.ok{{color:#0a6b2b;font-weight:600}}code{{font-size:90%}}</style></head><body>\
             <h1>{title}</h1><p>Period {} to {} (exclusive). Generated {}. {} log entries examined; {} accesses to plate data.</p>",
            esc(&self.from), esc(&self.to), esc(&self.generated_at), self.entries_examined, self.accesses
        ));
        let c = &self.purge_compliance;
        h.push_str(&format!(
            "<h2>Purge compliance</h2><p class=\"{}\">{}</p>",
            if c.compliant { "ok" } else { "bad" },
            match c.oldest_age_days {
                Some(a) => format!(
                    "Oldest read not on legal hold: {a:.1} days; retention {} days (allowed up to {} with the daily purge): {}.",
                    c.retention_days,
                    c.allowed_days,
                    if c.compliant { "compliant" } else { "NOT compliant" }
                ),
                None => "No reads are kept outside legal holds.".into(),
            }
        ));
        h.push_str("<h2>Accesses by user</h2><table><tr><th>User</th><th>Accesses</th><th>Refused</th><th>After hours</th><th>Without training/approval</th><th>Median per day</th><th>Busiest day</th></tr>");
        for u in &self.users {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{} ({})</td></tr>",
                esc(&u.username), u.accesses, u.refused, u.after_hours,
                if u.unqualified > 0 { " class=\"bad\"" } else { "" }, u.unqualified,
                u.median_daily, esc(u.busiest_day.as_deref().unwrap_or("—")), u.busiest_day_accesses
            ));
        }
        h.push_str("</table><h2>Accesses by device</h2>");
        if self.devices.is_empty() {
            h.push_str("<p>None.</p>");
        } else {
            h.push_str("<table><tr><th>Device</th><th>Accesses</th></tr>");
            for d in &self.devices {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>",
                    esc(&d.device),
                    d.accesses
                ));
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Unusual volume</h2>");
        if self.unusual_volume.is_empty() {
            h.push_str("<p>None.</p>");
        } else {
            h.push_str(
                "<table><tr><th>User</th><th>Day</th><th>Accesses</th><th>User's median</th></tr>",
            );
            for d in &self.unusual_volume {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
                    esc(&d.username),
                    esc(&d.day),
                    d.accesses,
                    d.median_daily
                ));
            }
            h.push_str("</table>");
        }
        for (_, heading, s) in self.sections() {
            h.push_str(&format!("<h2>{heading} ({})</h2>", s.count));
            if s.items.is_empty() {
                h.push_str("<p>None.</p>");
                continue;
            }
            if s.items.len() < s.count {
                h.push_str(&format!(
                    "<p>The first {} are listed; the CSV and JSON carry the same.</p>",
                    s.items.len()
                ));
            }
            h.push_str(
                "<table><tr><th>#</th><th>Time</th><th>User</th><th>Kind</th><th>Detail</th></tr>",
            );
            for f in &s.items {
                let detail = if f.detail.is_null() {
                    String::new()
                } else {
                    f.detail.to_string()
                };
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    f.seq,
                    esc(&f.ts),
                    esc(&f.username),
                    esc(&f.kind),
                    esc(&detail)
                ));
            }
            h.push_str("</table>");
        }
        h.push_str("<h2>Audit log checkpoint</h2>");
        if let Some(a) = &self.log_alarm {
            h.push_str(&format!(
                "<p class=\"bad\">The audit log failed its check at start and the alarm is not yet acknowledged: {}</p>",
                esc(a)
            ));
        }
        match &self.log_checkpoint {
            Some(c) => h.push_str(&format!(
                "<p>The log's head, signed when this report was made. Keep this report: \
                 <code>platekeeper audit verify --checkpoint FILE</code> proves later that the log still \
                 extends it (save the values below as JSON). Compare the public key with the agency's key \
                 kept elsewhere.</p><table><tr><th>Entries</th><td>{}</td></tr><tr><th>Head</th><td><code>{}</code></td></tr>\
                 <tr><th>Time</th><td>{}</td></tr><tr><th>Store</th><td><code>{}</code></td></tr>\
                 <tr><th>Public key</th><td><code>{}</code></td></tr><tr><th>Signature</th><td><code>{}</code></td></tr></table>",
                c.entries,
                esc(&c.head),
                esc(&c.time),
                esc(&c.store_id),
                esc(&c.public_key),
                esc(&c.signature)
            )),
            None => h.push_str("<p>No signed checkpoint was available.</p>"),
        }
        h.push_str("<h2>Notes</h2><ul>");
        for n in &self.notes {
            h.push_str(&format!("<li>{}</li>", esc(n)));
        }
        h.push_str("</ul></body></html>\n");
        h
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A CSV cell, quoted when needed; a leading `=`, `+`, `-` or `@` is
/// prefixed with `'` so a spreadsheet does not run it as a formula.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::compliance;

    const H: i64 = 3_600_000;

    fn entry(seq: i64, ts_ms: i64, category: &str, kind: &str, user: &str) -> Entry {
        Entry {
            seq,
            ts_ms,
            category: category.into(),
            kind: kind.into(),
            username: user.into(),
            client: None,
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn periods_are_quarters_or_years_in_local_time() {
        let utc = AuditPolicy {
            utc_offset_minutes: 0,
            daylight_saving: false,
            ..Default::default()
        };
        let p = Period::parse("2026Q3", &utc).unwrap();
        assert_eq!(format_time_ms(p.from_ms), "2026-07-01T00:00:00Z");
        assert_eq!(format_time_ms(p.to_ms), "2026-10-01T00:00:00Z");
        // Pacific time: October starts in daylight time, January in
        // standard time.
        let pacific = AuditPolicy::default();
        let p = Period::parse("2026Q4", &pacific).unwrap();
        assert_eq!(format_time_ms(p.from_ms), "2026-10-01T07:00:00Z");
        assert_eq!(format_time_ms(p.to_ms), "2027-01-01T08:00:00Z");
        let p = Period::parse("2026Q1", &pacific).unwrap();
        assert_eq!(format_time_ms(p.from_ms), "2026-01-01T08:00:00Z");
        assert_eq!(format_time_ms(p.to_ms), "2026-04-01T07:00:00Z");
        let arizona = AuditPolicy {
            utc_offset_minutes: -420,
            daylight_saving: false,
            ..Default::default()
        };
        let p = Period::parse("2026Q3", &arizona).unwrap();
        assert_eq!(format_time_ms(p.from_ms), "2026-07-01T07:00:00Z");
        let p = Period::parse("2025", &utc).unwrap();
        assert_eq!(p.label, "2025");
        assert_eq!(p.to_ms - p.from_ms, 365 * DAY_MS);
        for bad in ["2026Q5", "26Q1", "Q3", "", "2026Q", "1999", "2026-07"] {
            assert!(Period::parse(bad, &utc).is_err(), "{bad}");
        }
    }

    fn at(s: &str) -> i64 {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn daylight_saving_follows_the_us_rule() {
        let pacific = AuditPolicy::default();
        // 2026: 8 March and 1 November; 2027: 14 March and 7 November.
        for (utc, offset) in [
            ("2026-03-08T09:59:59Z", -480), // 01:59:59 PST
            ("2026-03-08T10:00:00Z", -420), // 03:00 PDT
            ("2026-11-01T08:59:59Z", -420), // 01:59:59 PDT
            ("2026-11-01T09:00:00Z", -480), // 01:00 PST, again
            ("2027-03-14T09:59:59Z", -480),
            ("2027-03-14T10:00:00Z", -420),
            ("2027-11-07T09:00:00Z", -480),
            ("2026-01-15T12:00:00Z", -480),
            ("2026-07-15T12:00:00Z", -420),
        ] {
            assert_eq!(pacific.offset_minutes_at(at(utc)), offset, "{utc}");
        }
        let hawaii = AuditPolicy {
            utc_offset_minutes: -600,
            daylight_saving: false,
            ..Default::default()
        };
        assert_eq!(hawaii.offset_minutes_at(at("2026-07-15T12:00:00Z")), -600);
        // Timestamps far outside the calendar fall back to standard time.
        assert_eq!(pacific.offset_minutes_at(i64::MAX / 2), -480);
        assert_eq!(pacific.offset_minutes_at(i64::MIN / 2), -480);
        assert_eq!(pacific.offset_minutes_at(i64::MAX), -480);
        assert_eq!(pacific.offset_minutes_at(i64::MIN), -480);
        // …and a timestamp at either end of the range does not overflow.
        let _ = (
            pacific.is_after_hours(i64::MIN),
            pacific.is_after_hours(i64::MAX),
        );
    }

    #[test]
    fn calendar_arithmetic_agrees_with_the_time_crate() {
        for year in 1900..2300 {
            for (month, n) in [(3, 2), (11, 1), (1, 1), (2, 4)] {
                let m = time::Month::try_from(month as u8).unwrap();
                let first = time::Date::from_calendar_date(year as i32, m, 1).unwrap();
                let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
                let want = first + time::Duration::days(i64::from(to_sunday) + 7 * (n - 1));
                let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap();
                let days = (want - epoch).whole_days();
                assert_eq!(nth_sunday(year, month, n), days, "{year}-{month} #{n}");
                assert_eq!(year_of_day(days), year);
                assert_eq!(year_of_day(day_of(year, 1, 1) - 1), year - 1);
            }
        }
    }

    #[test]
    fn working_hours_are_read_in_local_time_all_year() {
        // 05:30 local is after hours; 06:30 is not, in winter and summer.
        let pacific = AuditPolicy::default();
        assert!(pacific.is_after_hours(at("2026-01-15T13:30:00Z"))); // 05:30 PST
        assert!(!pacific.is_after_hours(at("2026-01-15T14:30:00Z"))); // 06:30 PST
        assert!(pacific.is_after_hours(at("2026-07-15T12:30:00Z"))); // 05:30 PDT
        assert!(!pacific.is_after_hours(at("2026-07-15T13:30:00Z"))); // 06:30 PDT
        assert!(pacific.is_after_hours(at("2026-07-16T05:30:00Z"))); // 22:30 PDT
        let r = build(
            Period::parse("2026Q3", &pacific).unwrap(),
            &[],
            &HashMap::new(),
            &pacific,
            compliance(60, None, 0),
            0,
        );
        assert!(
            r.notes[0].contains("UTC-08:00 (UTC-07:00 under US daylight saving time)"),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn findings_are_sorted_into_their_sections() {
        let policy = AuditPolicy {
            utc_offset_minutes: 0,
            daylight_saving: false,
            ..Default::default()
        };
        let day = 20_000 * DAY_MS;
        let mut entries = Vec::new();
        let mut seq = 0;
        let mut push = |ts, cat: &str, kind: &str, user: &str| {
            seq += 1;
            entries.push(entry(seq, ts, cat, kind, user));
        };
        // ann: 2 accesses a day for 5 days, then 30 on one day.
        for d in 0..5 {
            push(day + d * DAY_MS + 10 * H, "access", "search", "ann");
            push(day + d * DAY_MS + 11 * H, "access", "search", "ann");
        }
        for i in 0..30 {
            push(day + 6 * DAY_MS + 12 * H + i, "access", "search", "ann");
        }
        push(day + 2 * H, "access", "search", "bob"); // 02:00: after hours
        push(day + 12 * H, "refused", "purpose_insufficient", "bob");
        push(day + 13 * H, "admin", "hotlist_entry_added", "ann");
        push(day + 14 * H, "admin", "sharing_request_approved", "adm");
        push(day + 15 * H, "system", "purge", "system:retention");
        push(day + 16 * H, "admin", "read_corrected", "ann");
        let mut q = HashMap::new();
        q.insert(
            "ann".to_string(),
            Qualification {
                trained: vec![(0, day + 100 * DAY_MS)],
                approved: vec![(0, day + 100 * DAY_MS)],
            },
        );
        // bob was trained but never approved.
        q.insert(
            "bob".to_string(),
            Qualification {
                trained: vec![(0, day + 100 * DAY_MS)],
                approved: vec![],
            },
        );
        let period = Period {
            label: "t".into(),
            from_ms: day,
            to_ms: day + 10 * DAY_MS,
        };
        let r = build(
            period,
            &entries,
            &q,
            &policy,
            compliance(60, None, day),
            day,
        );
        assert_eq!(r.accesses, 41);
        let ann = r.users.iter().find(|u| u.username == "ann").unwrap();
        assert_eq!(
            (ann.accesses, ann.median_daily, ann.busiest_day_accesses),
            (40, 2.0, 30)
        );
        assert_eq!(r.unusual_volume.len(), 1);
        assert_eq!(r.unusual_volume[0].accesses, 30);
        assert_eq!(r.after_hours.count, 1);
        assert_eq!(r.unqualified_accesses.count, 1);
        assert_eq!(r.unqualified_accesses.items[0].username, "bob");
        assert_eq!(r.purposes_short.count, 1);
        assert_eq!(r.hotlist_changes.count, 1);
        assert_eq!(r.shares.count, 1);
        assert_eq!(r.purges.count, 1);
        assert_eq!(r.corrections.count, 1);
        let csv = r.to_csv();
        assert!(csv.starts_with("section,seq,ts,username,kind,detail\n"));
        assert!(csv.contains("unqualified_access,"));
        let html = r.to_html("<Agency>");
        assert!(html.contains("&lt;Agency&gt;") && !html.contains("<Agency>"));
    }

    #[test]
    fn policy_changes_are_listed_with_old_and_new_values() {
        // Issue 22 finding 5: a weakening appears in the audit report.
        let policy = AuditPolicy::default();
        let day = 20_000 * DAY_MS;
        let mut change = entry(1, day + H, "admin", "policy_changed", "capt");
        change.details = serde_json::json!({
            "changes": [
                {"field": "retention.access_log_days", "old": 730, "new": 365},
                {"field": "public_policy_markdown", "old": "", "new": "x".repeat(5000)},
            ],
            "weakenings": [{"field": "retention.access_log_days", "old": 730, "new": 365, "why": "…"}],
            "weakenings_confirmed": "named by the administrator",
            "policy": {"whole": "policy"},
        });
        let mut locked = entry(2, day + 2 * H, "auth", "account_locked", "capt");
        locked.details = serde_json::json!({"locked_until_ms": day + 3 * H});
        let period = Period {
            label: "t".into(),
            from_ms: day,
            to_ms: day + DAY_MS,
        };
        let r = build(
            period,
            &[change, locked],
            &HashMap::new(),
            &policy,
            compliance(60, None, day),
            day,
        );
        assert_eq!(r.policy_changes.count, 1);
        let d = &r.policy_changes.items[0].detail;
        assert_eq!(d["changes"][0]["old"], 730);
        assert_eq!(d["changes"][0]["new"], 365);
        assert_eq!(d["weakenings"][0]["field"], "retention.access_log_days");
        assert!(
            d.get("policy").is_none(),
            "the whole policy stays in the log"
        );
        assert!(d["changes"][1]["new"]
            .as_str()
            .unwrap()
            .ends_with("(5000 characters)"));
        assert_eq!(r.lockouts.count, 1);
        assert!(r.to_csv().contains("policy_change,1,"));
        assert!(r.to_html("PD").contains("Policy changes"));
    }

    #[test]
    fn accesses_are_counted_per_device_and_device_refusals_have_their_section() {
        // Issue 24 item 3: the report shows which device each access came
        // from, and a search from a personal laptop apart from purposes.
        let policy = AuditPolicy::default();
        let day = 20_000 * DAY_MS;
        let from = |seq, device: Option<&str>| {
            let mut e = entry(seq, day + seq * H, "access", "search", "ana");
            e.client = Some(match device {
                Some(d) => format!("10.0.0.5 · {d}"),
                None => "10.0.0.5".into(),
            });
            e
        };
        let mut refused = entry(9, day + 9 * H, "refused", "device_not_registered", "ana");
        refused.details =
            serde_json::json!({"why": "the connection presented no device certificate"});
        let entries = [
            from(1, Some("device 7 (Unit 12 MDT)")),
            from(2, Some("device 7 (Unit 12 MDT)")),
            from(3, Some("device 8 (Desk 4)")),
            from(4, None),
            refused,
        ];
        let period = Period {
            label: "t".into(),
            from_ms: day,
            to_ms: day + DAY_MS,
        };
        let r = build(
            period,
            &entries,
            &HashMap::new(),
            &policy,
            compliance(60, None, day),
            day,
        );
        let counts: Vec<(&str, usize)> = r
            .devices
            .iter()
            .map(|d| (d.device.as_str(), d.accesses))
            .collect();
        assert_eq!(
            counts,
            [
                ("device 7 (Unit 12 MDT)", 2),
                ("device 8 (Desk 4)", 1),
                ("no device", 1)
            ]
        );
        assert_eq!((r.device_refusals.count, r.purposes_short.count), (1, 0));
        assert_eq!(r.users[0].refused, 1);
        assert!(r
            .to_csv()
            .contains("device,,,,device 7 (Unit 12 MDT),accesses=2"));
        let html = r.to_html("PD");
        assert!(html.contains("Accesses by device") && html.contains("not an agency device"));
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-5"), "-5");
    }
}
