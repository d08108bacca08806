//! Who may do what: the roles of SPEC R5.1 and their rights, in one table
//! an auditor can read.
//!
//! The table is the whole rule. Code asks `role.may(Right::…)`; nothing
//! else grants a right. Roles with any plate-data right also need current
//! training and approval, and two-factor sign-in (SPEC R4.2, R5.2, R5.3);
//! see [`Role::reaches_plate_data`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sworn officer or deputy.
    Officer,
    Dispatcher,
    /// Community service officer.
    Cso,
    Analyst,
    /// The ALPR Administrator (a named Captain or Commander).
    Administrator,
    /// Reads the access log and produces audits; never searches plates.
    Auditor,
    /// Maintenance vendor: camera health only, never plate data.
    Vendor,
}

/// Each thing a person can be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Search reads and canvass areas (plate data).
    SearchReads,
    /// View read images (plate data).
    ViewImages,
    /// Export reads as evidence or files (plate data).
    ExportReads,
    /// Put reads on legal hold for a case, and lift holds (plate data).
    HoldReads,
    /// Correct a misread (plate or state), keeping the original.
    CorrectReads,
    /// Receive and open hot-list alerts (plate data).
    ViewAlerts,
    /// Create and edit hot lists.
    ManageHotLists,
    /// Let a hand-entered hot-list entry last beyond 30 days (up to its
    /// list's retention): the ALPR Administrator's override.
    OverrideEntryExpiry,
    /// Create users, record training and approvals, change roles.
    ManageAccounts,
    /// Register cameras and issue their keys.
    ManageCameras,
    /// Set retention and other agency policy.
    ManagePolicy,
    /// Approve sharing requests with other agencies.
    ManageSharing,
    /// Read and verify the access log.
    ReadAuditLog,
    /// Produce periodic audit reports.
    ProduceAuditReports,
    /// See camera health (no plate data).
    ViewCameraHealth,
}

use Right::*;

/// THE TABLE. One row per role; a right not listed is not held.
pub const RIGHTS: &[(Role, &[Right])] = &[
    (
        Role::Officer,
        &[
            SearchReads,
            ViewImages,
            ExportReads,
            HoldReads,
            ViewAlerts,
            ViewCameraHealth,
        ],
    ),
    (
        Role::Dispatcher,
        &[SearchReads, ViewImages, ViewAlerts, ViewCameraHealth],
    ),
    (
        Role::Cso,
        &[SearchReads, ViewImages, ViewAlerts, ViewCameraHealth],
    ),
    (
        Role::Analyst,
        &[
            SearchReads,
            ViewImages,
            ExportReads,
            HoldReads,
            CorrectReads,
            ViewAlerts,
            ManageHotLists,
            ViewCameraHealth,
        ],
    ),
    (
        Role::Administrator,
        &[
            SearchReads,
            ViewImages,
            ExportReads,
            HoldReads,
            CorrectReads,
            ViewAlerts,
            ManageHotLists,
            OverrideEntryExpiry,
            ManageAccounts,
            ManageCameras,
            ManagePolicy,
            ManageSharing,
            ReadAuditLog,
            ProduceAuditReports,
            ViewCameraHealth,
        ],
    ),
    (Role::Auditor, &[ReadAuditLog, ProduceAuditReports]),
    (Role::Vendor, &[ViewCameraHealth]),
];

/// The rights that reach plate data.
pub const PLATE_DATA_RIGHTS: &[Right] = &[
    SearchReads,
    ViewImages,
    ExportReads,
    HoldReads,
    CorrectReads,
    ViewAlerts,
];

pub const ALL_ROLES: &[Role] = &[
    Role::Officer,
    Role::Dispatcher,
    Role::Cso,
    Role::Analyst,
    Role::Administrator,
    Role::Auditor,
    Role::Vendor,
];

impl Role {
    pub fn rights(self) -> &'static [Right] {
        RIGHTS
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, rights)| *rights)
            .unwrap_or(&[])
    }

    pub fn may(self, right: Right) -> bool {
        self.rights().contains(&right)
    }

    /// Whether this role holds any plate-data right, and so needs two
    /// factors, current training and current approval.
    pub fn reaches_plate_data(self) -> bool {
        self.rights().iter().any(|r| PLATE_DATA_RIGHTS.contains(r))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Dispatcher => "dispatcher",
            Role::Cso => "cso",
            Role::Analyst => "analyst",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
            Role::Vendor => "vendor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        ALL_ROLES.iter().copied().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_one_row() {
        for role in ALL_ROLES {
            assert_eq!(
                RIGHTS.iter().filter(|(r, _)| r == role).count(),
                1,
                "{role:?}"
            );
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
    }

    #[test]
    fn the_policy_lines_hold() {
        // The vendor never reaches plate data (SPEC R5.1).
        assert!(!Role::Vendor.reaches_plate_data());
        // The auditor reads the log and reports but cannot search plates.
        assert!(Role::Auditor.may(ReadAuditLog) && !Role::Auditor.may(SearchReads));
        assert!(!Role::Auditor.reaches_plate_data());
        // Only the administrator manages accounts, policy and sharing.
        for role in ALL_ROLES {
            let admin = *role == Role::Administrator;
            assert_eq!(role.may(ManageAccounts), admin);
            assert_eq!(role.may(ManagePolicy), admin);
            assert_eq!(role.may(ManageSharing), admin);
        }
        assert!(Role::Officer.reaches_plate_data());
    }
}
