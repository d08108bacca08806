//! The purpose of an access to plate data (SPEC R4.3, R4.4).
//!
//! Every search, image view and export carries a purpose naming the
//! specific investigation. This module holds the shape and the basic
//! completeness rule; the agency's full purpose policy (generic words,
//! personal data, offense lists) is applied by the accountability layer.

use serde::{Deserialize, Serialize};

/// Longest accepted text in any purpose field: long enough for a real
/// explanation, short enough that the log stays a log.
pub const MAX_FIELD_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    pub case_number: String,
    pub offense: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurposeError {
    #[error("purpose.{0} is missing; every access must name the specific investigation")]
    Missing(&'static str),
    #[error("purpose.{0} is longer than 500 characters")]
    TooLong(&'static str),
}

impl Purpose {
    /// Trims the fields and checks that each is present and bounded.
    pub fn new(case_number: &str, offense: &str, reason: &str) -> Result<Purpose, PurposeError> {
        let field = |name: &'static str, v: &str| -> Result<String, PurposeError> {
            let v = v.trim();
            if v.is_empty() {
                return Err(PurposeError::Missing(name));
            }
            if v.chars().count() > MAX_FIELD_LEN {
                return Err(PurposeError::TooLong(name));
            }
            Ok(v.to_string())
        };
        Ok(Purpose {
            case_number: field("case_number", case_number)?,
            offense: field("offense", offense)?,
            reason: field("reason", reason)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_every_field() {
        assert!(Purpose::new("24-0117", "187 PC", "suspect vehicle seen leaving").is_ok());
        assert_eq!(
            Purpose::new("  ", "187 PC", "x"),
            Err(PurposeError::Missing("case_number"))
        );
        assert_eq!(
            Purpose::new("24-1", "", "x"),
            Err(PurposeError::Missing("offense"))
        );
        let long = "x".repeat(501);
        assert_eq!(
            Purpose::new("24-1", "187", &long),
            Err(PurposeError::TooLong("reason"))
        );
    }
}
