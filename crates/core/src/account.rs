//! The lifecycle of an authorized user (SPEC R4.1, R4.6, R5.2–R5.4), as
//! pure rules over an account's state and the time.
//!
//! The server evaluates these on every request, not only at sign-in: a
//! session opened before training lapsed, an approval expired or the
//! account was suspended stops working at once.

use serde::{Deserialize, Serialize};

use crate::role::Role;

pub const DAY_MS: i64 = 86_400_000;

/// The agency's account rules (part of its policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountPolicy {
    /// How long a session lasts.
    pub session_hours: u32,
    /// Failed sign-ins in a row that lock the account.
    pub lockout_attempts: u32,
    /// How long a lock lasts for people who are not administrators; `0`:
    /// until the ALPR Administrator unlocks it (SPEC R4.6, the default).
    pub lockout_minutes: u32,
    /// How long an administrator's lock lasts (1 to 1440). An
    /// administrator's lock always lifts on its own: otherwise anyone
    /// could lock out every administrator with a few bad sign-ins, and
    /// nobody would be left to unlock them (issue 22 finding 7).
    pub admin_lockout_minutes: u32,
    /// Unused this long, an account is suspended (policy: 12 months).
    pub inactivity_days: u32,
    /// An approval lapses this long after it was given unless renewed.
    pub approval_days: u32,
    /// Shortest password accepted.
    pub min_password_len: usize,
    /// How long training counts, at most (policy 003 § 429.5: periodic).
    pub training_days: u32,
    /// Roles whose people must sign in with a passkey (WebAuthn) as their
    /// second factor once they have one; a TOTP code is then refused
    /// (issue 24 item 4; CJIS "advanced authentication").
    pub passkey_roles: Vec<Role>,
    /// Everyone signs in with a passkey: TOTP codes are refused for
    /// anyone who has one. A TOTP code still lets a person without any
    /// passkey (new, or whose passkeys the administrator removed) in, to
    /// register one and nothing else.
    pub passkeys_only: bool,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            session_hours: 12,
            lockout_attempts: 5,
            lockout_minutes: 0,
            admin_lockout_minutes: 15,
            inactivity_days: 365,
            approval_days: 365,
            min_password_len: 12,
            training_days: 365,
            passkey_roles: Vec::new(),
            passkeys_only: false,
        }
    }
}

impl AccountPolicy {
    /// Whether people of `role` must use a passkey as their second factor.
    pub fn passkey_required(&self, role: Role) -> bool {
        self.passkeys_only || self.passkey_roles.contains(&role)
    }

    /// How long a new lock of an account with `role` lasts, in ms; `None`:
    /// until an administrator (or `platekeeper admin unlock`) lifts it.
    pub fn lock_duration_ms(&self, role: Role) -> Option<i64> {
        let minutes = if role == Role::Administrator {
            self.admin_lockout_minutes.max(1)
        } else {
            self.lockout_minutes
        };
        (minutes > 0).then_some(minutes as i64 * 60_000)
    }
}

/// A training record: a course completed, valid until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Training {
    pub course: String,
    /// Epoch ms of the day completed (00:00 UTC).
    pub completed_ms: i64,
    /// Epoch ms of the end of the last valid day.
    pub expires_ms: i64,
    /// When the record was made (an instant, not a day): what a
    /// requalification compares against (issue 22 finding 6).
    pub recorded_ms: i64,
}

/// An administrator's approval of an account, valid until it lapses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approved_by: String,
    pub approved_ms: i64,
    pub expires_ms: i64,
}

/// What the rules need to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub role: Role,
    pub deleted: bool,
    pub suspended: bool,
    pub locked: bool,
    /// When a time-limited lock lifts; `None` with `locked`: only an
    /// administrator lifts it.
    pub locked_until_ms: Option<i64>,
    pub created_ms: i64,
    /// Last sign-in or request.
    pub last_active_ms: Option<i64>,
    pub must_change_password: bool,
    pub totp_enrolled: bool,
    pub training: Vec<Training>,
    pub approvals: Vec<Approval>,
    /// Training recorded and approval given before this instant do not
    /// count: set when the role changes or a suspended account is
    /// reactivated. An instant, never a day: training or approval given
    /// earlier on the same day must not survive the change (issue 22
    /// finding 6).
    pub requalify_after_ms: Option<i64>,
    /// Passkeys registered (not removed).
    pub passkeys: u32,
    /// Whether the agency's policy requires this person to sign in with a
    /// passkey ([`AccountPolicy::passkey_required`]).
    pub passkey_required: bool,
}

/// Why an account may not proceed. Each has its API code and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("this account no longer exists")]
    Deleted,
    #[error("this account is suspended; the ALPR Administrator can reactivate it (new training is then required)")]
    Suspended,
    #[error("this account has not been used for 12 months and is now suspended")]
    Inactive,
    #[error("this account is locked after repeated failed sign-ins; the ALPR Administrator can unlock it (or `platekeeper admin unlock` on the server)")]
    Locked,
    #[error(
        "finish enrolment first: change the one-time password and enrol two-factor authentication"
    )]
    EnrolmentIncomplete,
    #[error("no current ALPR training is recorded for this account")]
    TrainingRequired,
    #[error("this account's approval by the ALPR Administrator has lapsed or was never given")]
    ApprovalLapsed,
    #[error("this account's role does not allow this")]
    RoleForbidden,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Denial::Deleted => "invalid_session",
            Denial::Suspended | Denial::Inactive => "account_suspended",
            Denial::Locked => "account_locked",
            Denial::EnrolmentIncomplete => "enrolment_required",
            Denial::TrainingRequired => "training_required",
            Denial::ApprovalLapsed => "approval_lapsed",
            Denial::RoleForbidden => "role_forbidden",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Denial::Deleted => 401,
            Denial::Locked => 423,
            _ => 403,
        }
    }
}

impl AccountState {
    /// Whether the account has gone unused past the policy's limit.
    pub fn is_inactive(&self, policy: &AccountPolicy, now_ms: i64) -> bool {
        let last = self.last_active_ms.unwrap_or(self.created_ms);
        now_ms - last > policy.inactivity_days as i64 * DAY_MS
    }

    /// Rules for any use of the account (sign-in, any request).
    pub fn check_usable(&self, policy: &AccountPolicy, now_ms: i64) -> Result<(), Denial> {
        if self.deleted {
            return Err(Denial::Deleted);
        }
        if self.suspended {
            return Err(Denial::Suspended);
        }
        if self.is_inactive(policy, now_ms) {
            return Err(Denial::Inactive);
        }
        if self.is_locked(now_ms) {
            return Err(Denial::Locked);
        }
        Ok(())
    }

    /// Whether a lock holds at `now_ms`: a time-limited lock stops at its
    /// end even before the store records it lifted.
    pub fn is_locked(&self, now_ms: i64) -> bool {
        self.locked && self.locked_until_ms.is_none_or(|until| now_ms < until)
    }

    /// What the person still has to do before using the system.
    pub fn next_steps(&self) -> Vec<&'static str> {
        let mut next = Vec::new();
        if self.must_change_password {
            next.push("change_password");
        }
        if !self.totp_enrolled {
            next.push("enroll_totp");
        }
        if self.passkey_required && self.passkeys == 0 {
            next.push("enroll_passkey");
        }
        next
    }

    /// Whether training counts after a requalification: recorded at or
    /// after its instant, for a course completed no earlier than its day
    /// (the completion is a date; the record is the instant that tells
    /// whether it came after the change).
    fn training_counts(&self, t: &Training) -> bool {
        self.requalify_after_ms.is_none_or(|after| {
            t.recorded_ms >= after && t.completed_ms >= after - after.rem_euclid(DAY_MS)
        })
    }

    /// Whether an approval counts after a requalification: given at or
    /// after its instant.
    fn approval_counts(&self, a: &Approval) -> bool {
        self.requalify_after_ms
            .is_none_or(|after| a.approved_ms >= after)
    }

    pub fn training_current(&self, now_ms: i64) -> bool {
        self.training
            .iter()
            .any(|t| self.training_counts(t) && t.completed_ms <= now_ms && now_ms <= t.expires_ms)
    }

    pub fn approval_current(&self, now_ms: i64) -> bool {
        self.approvals
            .iter()
            .any(|a| self.approval_counts(a) && a.approved_ms <= now_ms && now_ms < a.expires_ms)
    }

    /// Rules for reaching plate data: usable, enrolled, a role that may,
    /// current training and current approval (SPEC R4.2, R5.2, R5.3).
    pub fn check_plate_data(&self, policy: &AccountPolicy, now_ms: i64) -> Result<(), Denial> {
        self.check_usable(policy, now_ms)?;
        if !self.next_steps().is_empty() {
            return Err(Denial::EnrolmentIncomplete);
        }
        if !self.role.reaches_plate_data() {
            return Err(Denial::RoleForbidden);
        }
        if !self.training_current(now_ms) {
            return Err(Denial::TrainingRequired);
        }
        if !self.approval_current(now_ms) {
            return Err(Denial::ApprovalLapsed);
        }
        Ok(())
    }
}

/// How far ahead the administrator's review list looks (SPEC R5.3, R5.4).
pub const REVIEW_NOTICE_DAYS: i64 = 30;

/// Something about an account the ALPR Administrator should act on soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// First sign-in not finished (password change, two-factor).
    EnrolmentPending,
    /// Approval ends within the notice period.
    ApprovalLapsing,
    /// No current approval: plate data is closed to the person.
    ApprovalLapsed,
    /// Training ends within the notice period.
    TrainingExpiring,
    /// No current training: plate data is closed to the person.
    TrainingExpired,
    /// Unused: suspended at `due_ms` (or already past it).
    Inactive,
}

impl ReviewKind {
    /// What the administrator reads in the review list.
    pub fn describe(self) -> &'static str {
        match self {
            ReviewKind::EnrolmentPending => {
                "has not finished first sign-in (password change, two-factor)"
            }
            ReviewKind::ApprovalLapsing => {
                "approval lapses soon; renew it if the person still needs access"
            }
            ReviewKind::ApprovalLapsed => {
                "approval has lapsed or was never given; plate data is closed"
            }
            ReviewKind::TrainingExpiring => {
                "training expires soon; record the refresher when it is done"
            }
            ReviewKind::TrainingExpired => "no current training is recorded; plate data is closed",
            ReviewKind::Inactive => "unused; the account is suspended for inactivity on this date",
        }
    }
}

/// One item of the review list, due at `due_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Review {
    pub kind: ReviewKind,
    pub due_ms: i64,
}

impl AccountState {
    /// When the latest approval that counts ends.
    pub fn approval_end(&self) -> Option<i64> {
        self.approvals
            .iter()
            .filter(|a| self.approval_counts(a))
            .map(|a| a.expires_ms)
            .max()
    }

    /// When the latest training that counts ends.
    pub fn training_end(&self) -> Option<i64> {
        self.training
            .iter()
            .filter(|t| self.training_counts(t))
            .map(|t| t.expires_ms)
            .max()
    }

    /// An approval or training: current but ending within the notice
    /// period, or not current at all (due since it ended, or since the
    /// account was made if it never existed).
    fn lapse_review(
        &self,
        current: bool,
        end: Option<i64>,
        soon: i64,
        (lapsing, lapsed): (ReviewKind, ReviewKind),
    ) -> Option<Review> {
        match end {
            Some(end) if current => (end <= soon).then_some(Review {
                kind: lapsing,
                due_ms: end,
            }),
            end => Some(Review {
                kind: lapsed,
                due_ms: end.unwrap_or(self.created_ms),
            }),
        }
    }

    /// What needs the administrator's attention within
    /// [`REVIEW_NOTICE_DAYS`]. Deleted and suspended accounts have
    /// nothing due: they reach nothing until reactivated.
    pub fn reviews(&self, policy: &AccountPolicy, now_ms: i64) -> Vec<Review> {
        let mut due = Vec::new();
        if self.deleted || self.suspended {
            return due;
        }
        let soon = now_ms + REVIEW_NOTICE_DAYS * DAY_MS;
        if !self.next_steps().is_empty() {
            due.push(Review {
                kind: ReviewKind::EnrolmentPending,
                due_ms: self.created_ms,
            });
        }
        if self.role.reaches_plate_data() {
            due.extend(self.lapse_review(
                self.approval_current(now_ms),
                self.approval_end(),
                soon,
                (ReviewKind::ApprovalLapsing, ReviewKind::ApprovalLapsed),
            ));
            due.extend(self.lapse_review(
                self.training_current(now_ms),
                self.training_end(),
                soon,
                (ReviewKind::TrainingExpiring, ReviewKind::TrainingExpired),
            ));
        }
        let last = self.last_active_ms.unwrap_or(self.created_ms);
        let suspend_at = last + policy.inactivity_days as i64 * DAY_MS;
        if suspend_at <= soon {
            due.push(Review {
                kind: ReviewKind::Inactive,
                due_ms: suspend_at,
            });
        }
        due
    }
}

/// The password rules live in [`crate::password`].
pub use crate::password::{check_new_password, PasswordOwner};

/// Usernames: 3–32 of a–z, 0–9, `.`, `_`, `-`, starting with a letter.
pub fn check_username(u: &str) -> Result<(), String> {
    let ok = (3..=32).contains(&u.len())
        && u.starts_with(|c: char| c.is_ascii_lowercase())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "username {u:?} must be 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn officer() -> AccountState {
        AccountState {
            role: Role::Officer,
            deleted: false,
            suspended: false,
            locked: false,
            locked_until_ms: None,
            created_ms: NOW - 100 * DAY_MS,
            last_active_ms: Some(NOW - DAY_MS),
            must_change_password: false,
            totp_enrolled: true,
            training: vec![Training {
                course: "ALPR 101".into(),
                completed_ms: NOW - 30 * DAY_MS,
                expires_ms: NOW + 300 * DAY_MS,
                recorded_ms: NOW - 30 * DAY_MS,
            }],
            approvals: vec![Approval {
                approved_by: "capt".into(),
                approved_ms: NOW - 20 * DAY_MS,
                expires_ms: NOW + 345 * DAY_MS,
            }],
            requalify_after_ms: None,
            passkeys: 0,
            passkey_required: false,
        }
    }

    fn check(s: &AccountState, at: i64) -> Result<(), Denial> {
        s.check_plate_data(&AccountPolicy::default(), at)
    }

    #[test]
    fn a_qualified_officer_may_reach_plate_data() {
        assert_eq!(check(&officer(), NOW), Ok(()));
    }

    #[test]
    fn training_and_approval_expire() {
        assert_eq!(
            check(&officer(), NOW + 301 * DAY_MS),
            Err(Denial::TrainingRequired)
        );
        let mut s = officer();
        s.training[0].expires_ms = NOW + 400 * DAY_MS;
        assert_eq!(check(&s, NOW + 346 * DAY_MS), Err(Denial::ApprovalLapsed));
        s.training.clear();
        assert_eq!(check(&s, NOW), Err(Denial::TrainingRequired));
    }

    #[test]
    fn twelve_months_unused_suspends() {
        let s = officer();
        let year = 365 * DAY_MS;
        assert_eq!(
            s.check_usable(&AccountPolicy::default(), NOW - DAY_MS + year),
            Ok(())
        );
        assert_eq!(
            s.check_usable(&AccountPolicy::default(), NOW + year),
            Err(Denial::Inactive)
        );
    }

    #[test]
    fn requalification_voids_earlier_training_and_approval() {
        let mut s = officer();
        s.requalify_after_ms = Some(NOW - DAY_MS);
        assert_eq!(check(&s, NOW), Err(Denial::TrainingRequired));
        s.training.push(Training {
            course: "ALPR refresher".into(),
            completed_ms: NOW,
            expires_ms: NOW + 365 * DAY_MS,
            recorded_ms: NOW,
        });
        assert_eq!(check(&s, NOW), Err(Denial::ApprovalLapsed));
        s.approvals.push(Approval {
            approved_by: "capt".into(),
            approved_ms: NOW,
            expires_ms: NOW + 365 * DAY_MS,
        });
        assert_eq!(check(&s, NOW), Ok(()));
    }

    #[test]
    fn requalification_compares_instants_not_days() {
        // Issue 22 finding 6: training and approval given earlier on the
        // day of a role change used to survive it.
        let day = NOW - NOW.rem_euclid(DAY_MS);
        let morning = day + 8 * 3_600_000;
        let change = day + 14 * 3_600_000;
        let mut s = officer();
        s.training = vec![Training {
            course: "ALPR 101".into(),
            completed_ms: day,
            expires_ms: day + 365 * DAY_MS,
            recorded_ms: morning,
        }];
        s.approvals = vec![Approval {
            approved_by: "capt".into(),
            approved_ms: morning,
            expires_ms: morning + 365 * DAY_MS,
        }];
        assert_eq!(check(&s, change - 1), Ok(()));
        s.requalify_after_ms = Some(change);
        assert_eq!(check(&s, change + 1), Err(Denial::TrainingRequired));
        // The same course recorded again after the change counts (its
        // completion date is the day of the change)…
        s.training.push(Training {
            recorded_ms: change + 60_000,
            ..s.training[0].clone()
        });
        assert_eq!(check(&s, change + 120_000), Err(Denial::ApprovalLapsed));
        // …but not one completed on an earlier day, whenever recorded.
        let mut stale = s.clone();
        stale.training[1].completed_ms = day - DAY_MS;
        assert_eq!(
            check(&stale, change + 120_000),
            Err(Denial::TrainingRequired)
        );
        s.approvals.push(Approval {
            approved_by: "capt".into(),
            approved_ms: change + 90_000,
            expires_ms: change + 365 * DAY_MS,
        });
        assert_eq!(check(&s, change + 120_000), Ok(()));
    }

    #[test]
    fn a_time_limited_lock_ends_by_itself() {
        let mut s = officer();
        s.locked = true;
        s.locked_until_ms = Some(NOW + 60_000);
        assert_eq!(check(&s, NOW), Err(Denial::Locked));
        assert_eq!(check(&s, NOW + 60_000), Ok(()));
        s.locked_until_ms = None;
        assert_eq!(check(&s, NOW + 10 * DAY_MS), Err(Denial::Locked));
        let p = AccountPolicy::default();
        assert_eq!(p.lock_duration_ms(Role::Officer), None);
        assert_eq!(p.lock_duration_ms(Role::Administrator), Some(15 * 60_000));
    }

    #[test]
    fn state_flags_and_roles() {
        let mut s = officer();
        s.role = Role::Vendor;
        assert_eq!(check(&s, NOW), Err(Denial::RoleForbidden));
        s = officer();
        s.totp_enrolled = false;
        assert_eq!(check(&s, NOW), Err(Denial::EnrolmentIncomplete));
        assert_eq!(s.next_steps(), ["enroll_totp"]);
        s = officer();
        s.locked = true;
        assert_eq!(check(&s, NOW).unwrap_err().status(), 423);
        s = officer();
        s.suspended = true;
        assert_eq!(check(&s, NOW).unwrap_err().code(), "account_suspended");
        s = officer();
        s.deleted = true;
        assert_eq!(check(&s, NOW).unwrap_err().status(), 401);
    }

    #[test]
    fn usernames() {
        assert!(check_username("jdoe").is_ok());
        assert!(check_username("j").is_err());
        assert!(check_username("JDoe").is_err());
        assert!(check_username("1abc").is_err());
        assert!(check_username("a'; drop").is_err());
    }

    #[test]
    fn a_current_account_has_nothing_to_review() {
        // R5.3, R5.4: nothing due for a trained, approved, active officer.
        assert!(officer().reviews(&AccountPolicy::default(), NOW).is_empty());
    }

    #[test]
    fn reviews_name_what_lapses_soon_and_what_has_lapsed() {
        let policy = AccountPolicy::default();
        let mut a = officer();
        a.approvals[0].expires_ms = NOW + 10 * DAY_MS;
        a.training[0].expires_ms = NOW - DAY_MS;
        a.last_active_ms = Some(NOW - 350 * DAY_MS);
        let due = a.reviews(&policy, NOW);
        let kinds: Vec<ReviewKind> = due.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                ReviewKind::ApprovalLapsing,
                ReviewKind::TrainingExpired,
                ReviewKind::Inactive
            ]
        );
        assert_eq!(due[0].due_ms, NOW + 10 * DAY_MS);
        assert_eq!(due[2].due_ms, NOW + 15 * DAY_MS);
        // Outside the notice period: not listed yet.
        a.approvals[0].expires_ms = NOW + 31 * DAY_MS;
        assert!(!a
            .reviews(&policy, NOW)
            .iter()
            .any(|r| r.kind == ReviewKind::ApprovalLapsing));
    }

    #[test]
    fn reviews_ignore_training_given_before_a_role_change_and_skip_suspended_accounts() {
        let policy = AccountPolicy::default();
        let mut a = officer();
        a.requalify_after_ms = Some(NOW - DAY_MS);
        let kinds: Vec<ReviewKind> = a.reviews(&policy, NOW).iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [ReviewKind::ApprovalLapsed, ReviewKind::TrainingExpired]
        );
        a.suspended = true;
        assert!(a.reviews(&policy, NOW).is_empty());
        // An auditor never reaches plate data: no training or approval due.
        let mut auditor = officer();
        auditor.role = Role::Auditor;
        auditor.training.clear();
        auditor.approvals.clear();
        auditor.totp_enrolled = false;
        let kinds: Vec<ReviewKind> = auditor
            .reviews(&policy, NOW)
            .iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(kinds, [ReviewKind::EnrolmentPending]);
    }
}
