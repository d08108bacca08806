//! Who may do what with a legal hold (SPEC R6.2, R4.8; issue 22 finding 1).
//!
//! A hold keeps a case's evidence past retention. It belongs to the person
//! who placed it; they may share it with colleagues on the same case. The
//! ALPR Administrator oversees every hold. Nobody else may see, export or
//! lift it: holds have sequential ids, so "knowing the id" proves nothing.
//!
//! This table is the whole rule, read together with the role table
//! (`crate::role`): a person needs both the relation below and the role's
//! right ([`HoldAction::right`]) — a dispatcher a hold is (somehow) shared
//! with still may not open it, and an administrator still needs current
//! training and approval to see its plate data.

use crate::role::{Right, Role};

/// What a person asks to do with a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    /// See that the hold exists: its case, maker and counts (no plate data).
    See,
    /// Open its reads and pictures (plate data).
    View,
    /// Export its evidence package (plate data).
    Export,
    /// Lift it, so its reads age out at the next purge.
    Lift,
    /// Share it with, or take it back from, a colleague on the case.
    Share,
}

/// How a person stands to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldRelation {
    /// Placed it.
    Maker,
    /// The maker (or the administrator) shared it with them.
    Member,
    /// Neither.
    Stranger,
}

impl HoldRelation {
    /// `username`'s relation to a hold placed by `maker` and shared with
    /// `members`.
    pub fn of(username: &str, maker: &str, members: &[String]) -> HoldRelation {
        if username == maker {
            HoldRelation::Maker
        } else if members.iter().any(|m| m == username) {
            HoldRelation::Member
        } else {
            HoldRelation::Stranger
        }
    }
}

impl HoldAction {
    /// The role right the action also needs.
    pub fn right(self) -> Right {
        match self {
            HoldAction::See | HoldAction::View | HoldAction::Lift | HoldAction::Share => {
                Right::HoldReads
            }
            HoldAction::Export => Right::ExportReads,
        }
    }
}

/// THE RULE: which relations allow which actions (before the role's right).
/// Members work the case (view, export) but do not end the hold or widen
/// who sees it; that stays with its maker and the administrator.
pub const HOLD_RULES: &[(HoldRelation, &[HoldAction])] = &[
    (
        HoldRelation::Maker,
        &[
            HoldAction::See,
            HoldAction::View,
            HoldAction::Export,
            HoldAction::Lift,
            HoldAction::Share,
        ],
    ),
    (
        HoldRelation::Member,
        &[HoldAction::See, HoldAction::View, HoldAction::Export],
    ),
    (HoldRelation::Stranger, &[]),
];

/// Whether a person of `role`, standing in `relation` to a hold, may do
/// `action` (training and approval are checked separately, as for all
/// plate data). The administrator may do everything to every hold; an
/// auditor may see every hold (never its reads), to audit them.
pub fn may(role: Role, relation: HoldRelation, action: HoldAction) -> bool {
    if role == Role::Auditor {
        return action == HoldAction::See;
    }
    if !role.may(action.right()) {
        return false;
    }
    if role == Role::Administrator {
        return true;
    }
    HOLD_RULES
        .iter()
        .find(|(r, _)| *r == relation)
        .is_some_and(|(_, actions)| actions.contains(&action))
}

/// Whether a hold may be shared with a person of `role`: only with roles
/// that may hold reads themselves (a hold is case work, not a feed).
pub fn may_receive(role: Role) -> bool {
    role.may(Right::HoldReads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use HoldAction::*;
    use HoldRelation::*;

    const ALL: [HoldAction; 5] = [See, View, Export, Lift, Share];

    #[test]
    fn a_stranger_officer_may_do_nothing_with_a_hold() {
        for a in ALL {
            assert!(!may(Role::Officer, Stranger, a), "{a:?}");
            assert!(!may(Role::Analyst, Stranger, a), "{a:?}");
        }
    }

    #[test]
    fn the_maker_may_do_everything_and_a_member_may_view_and_export() {
        for a in ALL {
            assert!(may(Role::Officer, Maker, a), "{a:?}");
        }
        assert!(may(Role::Analyst, Member, View));
        assert!(may(Role::Analyst, Member, Export));
        assert!(!may(Role::Analyst, Member, Lift));
        assert!(!may(Role::Analyst, Member, Share));
    }

    #[test]
    fn the_administrator_may_do_everything_to_any_hold() {
        for a in ALL {
            assert!(may(Role::Administrator, Stranger, a), "{a:?}");
        }
    }

    #[test]
    fn roles_without_the_right_are_refused_whatever_their_relation() {
        // Dispatchers and CSOs could read any hold by id before (issue 22).
        for role in [Role::Dispatcher, Role::Cso, Role::Vendor] {
            for rel in [Maker, Member, Stranger] {
                for a in ALL {
                    assert!(!may(role, rel, a), "{role:?} {rel:?} {a:?}");
                }
            }
        }
        assert!(may(Role::Auditor, Stranger, See));
        for a in [View, Export, Lift, Share] {
            assert!(!may(Role::Auditor, Maker, a), "{a:?}");
        }
    }

    #[test]
    fn relation_is_by_exact_username() {
        let members = vec!["bob".to_string()];
        assert_eq!(HoldRelation::of("amy", "amy", &members), Maker);
        assert_eq!(HoldRelation::of("bob", "amy", &members), Member);
        assert_eq!(HoldRelation::of("Bob", "amy", &members), Stranger);
        assert_eq!(HoldRelation::of("", "amy", &members), Stranger);
        assert!(may_receive(Role::Officer) && !may_receive(Role::Dispatcher));
    }
}
