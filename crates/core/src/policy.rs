//! The agency's policy settings, as one value the administrator edits
//! (`GET|PUT /api/v1/policy`) and every rule reads.

use serde::{Deserialize, Serialize};

use crate::account::AccountPolicy;
use crate::audit_report::AuditPolicy;
use crate::purpose::PurposePolicy;
use crate::retention::RetentionPolicy;

/// Longest public policy text (SPEC R8.3), in bytes.
pub const MAX_PUBLIC_POLICY_BYTES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgencyPolicy {
    /// The agency's name, recorded as the affiliation of its users.
    pub agency_name: String,
    /// The ALPR Administrator's name and title (SPEC R5.5).
    pub administrator_name: String,
    pub administrator_title: String,
    pub accounts: AccountPolicy,
    pub purpose: PurposePolicy,
    pub alerts: AlertPolicy,
    /// How long each class of data is kept (SPEC R6.1).
    pub retention: RetentionPolicy,
    /// How the periodic audit reads times and volumes (SPEC R8.1).
    pub audit: AuditPolicy,
    /// The usage and privacy policy posted at `/transparency`, in
    /// Markdown (SPEC R8.3).
    pub public_policy_markdown: String,
}

/// How alerts are pushed (SPEC R3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertPolicy {
    /// An alert nobody has acknowledged is sent again after this many
    /// seconds.
    pub resend_after_s: i64,
    /// Sends of one alert at most (the first included).
    pub max_sends: i64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            resend_after_s: 60,
            max_sends: 10,
        }
    }
}

impl Default for AgencyPolicy {
    fn default() -> Self {
        AgencyPolicy {
            agency_name: "Agency".into(),
            administrator_name: String::new(),
            administrator_title: String::new(),
            accounts: AccountPolicy::default(),
            purpose: PurposePolicy::default(),
            alerts: AlertPolicy::default(),
            retention: RetentionPolicy::default(),
            audit: AuditPolicy::default(),
            public_policy_markdown: String::new(),
        }
    }
}

impl AgencyPolicy {
    /// Refuses settings that would switch a rule off.
    pub fn check(&self) -> Result<(), String> {
        let a = &self.accounts;
        if !(1..=24).contains(&a.session_hours) {
            return Err("accounts.session_hours must be 1 to 24".into());
        }
        if !(3..=10).contains(&a.lockout_attempts) {
            return Err("accounts.lockout_attempts must be 3 to 10".into());
        }
        if !(30..=365).contains(&a.inactivity_days) {
            return Err("accounts.inactivity_days must be 30 to 365 (policy: suspend after 12 months unused)".into());
        }
        if !(30..=365).contains(&a.approval_days) {
            return Err("accounts.approval_days must be 30 to 365 (policy: approvals are reviewed annually)".into());
        }
        if !(30..=1096).contains(&a.training_days) {
            return Err(
                "accounts.training_days must be 30 to 1096 (training is repeated periodically)"
                    .into(),
            );
        }
        if !(12..=128).contains(&a.min_password_len) {
            return Err("accounts.min_password_len must be 12 to 128".into());
        }
        if !(10..=3_600).contains(&self.alerts.resend_after_s) {
            return Err("alerts.resend_after_s must be 10 to 3600".into());
        }
        if !(1..=100).contains(&self.alerts.max_sends) {
            return Err("alerts.max_sends must be 1 to 100".into());
        }
        self.retention.check()?;
        self.audit.check()?;
        if self.public_policy_markdown.len() > MAX_PUBLIC_POLICY_BYTES {
            return Err(format!(
                "public_policy_markdown is {} bytes; at most {MAX_PUBLIC_POLICY_BYTES}",
                self.public_policy_markdown.len()
            ));
        }
        if self.agency_name.trim().is_empty() || self.agency_name.chars().count() > 200 {
            return Err("agency_name must be 1 to 200 characters".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_weakening_is_refused() {
        assert!(AgencyPolicy::default().check().is_ok());
        let mut p = AgencyPolicy::default();
        p.accounts.inactivity_days = 1000;
        assert!(p.check().is_err());
        let mut p = AgencyPolicy::default();
        p.accounts.lockout_attempts = 100;
        assert!(p.check().is_err());
    }
}
