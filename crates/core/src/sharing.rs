//! Who ALPR data may be shared with (SPEC R7.1; Civil Code § 1798.90.55(b);
//! policy 003 § 429.7): California public agencies only. The rule is
//! here, as one function, so the system refuses — not a person's memory.

use serde::{Deserialize, Serialize};

/// The statute every refusal cites.
pub const STATUTE: &str = "Civil Code § 1798.90.55(b)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    /// A California state, city or county agency (law enforcement
    /// included).
    CaPublic,
    Federal,
    OutOfState,
    Private,
}

impl AgencyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgencyKind::CaPublic => "ca_public",
            AgencyKind::Federal => "federal",
            AgencyKind::OutOfState => "out_of_state",
            AgencyKind::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<AgencyKind> {
        [
            AgencyKind::CaPublic,
            AgencyKind::Federal,
            AgencyKind::OutOfState,
            AgencyKind::Private,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Why data may not go to an agency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingRefusal {
    #[error("{agency} is a federal agency; {STATUTE} permits sharing ALPR information only with California public agencies")]
    Federal { agency: String },
    #[error("{agency} is an agency of another state ({state}); {STATUTE} permits sharing ALPR information only with California public agencies")]
    OutOfState { agency: String, state: String },
    #[error("{agency} is a private entity; {STATUTE} permits sharing ALPR information only with public agencies (and forbids selling it)")]
    Private { agency: String },
}

impl SharingRefusal {
    pub fn code(&self) -> &'static str {
        "sharing_refused"
    }
}

/// Whether ALPR data may be shared with an agency of `kind` in `state`
/// (a two-letter code). A "California public agency" recorded with
/// another state is treated as out of state: the register must not be
/// the loophole.
pub fn may_share(agency: &str, kind: AgencyKind, state: &str) -> Result<(), SharingRefusal> {
    let agency = agency.to_string();
    match kind {
        AgencyKind::Federal => Err(SharingRefusal::Federal { agency }),
        AgencyKind::Private => Err(SharingRefusal::Private { agency }),
        AgencyKind::OutOfState => Err(SharingRefusal::OutOfState {
            agency,
            state: state.to_string(),
        }),
        AgencyKind::CaPublic if !state.eq_ignore_ascii_case("CA") => {
            Err(SharingRefusal::OutOfState {
                agency,
                state: state.to_string(),
            })
        }
        AgencyKind::CaPublic => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_california_public_agencies_pass() {
        assert!(may_share("Oakland PD", AgencyKind::CaPublic, "CA").is_ok());
        for (kind, state) in [
            (AgencyKind::Federal, "CA"),
            (AgencyKind::OutOfState, "NV"),
            (AgencyKind::Private, "CA"),
            (AgencyKind::CaPublic, "NV"),
        ] {
            let e = may_share("X", kind, state).unwrap_err();
            assert!(e.to_string().contains("1798.90.55(b)"), "{e}");
            assert_eq!(e.code(), "sharing_refused");
        }
        assert_eq!(AgencyKind::parse("federal"), Some(AgencyKind::Federal));
        assert_eq!(AgencyKind::parse("FBI"), None);
    }
}
