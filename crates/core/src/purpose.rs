//! The purpose of an access to plate data, and the agency's rules for it
//! (SPEC R4.3, R4.4; policy 003 § 429.4; Gov. Code § 7284.6).
//!
//! Every search, image view, export and alert view names the specific
//! investigation it serves. [`PurposePolicy::check`] refuses, each with its
//! own reason: a missing or malformed case number; a reason that is only a
//! generic word ("investigation" alone); personal identifying information,
//! criminal history or CLETS data written into the purpose; an offense
//! outside the agency's list; and immigration enforcement.

use serde::{Deserialize, Serialize};

/// The rule every purpose follows, in the words people are given (policy
/// 003 § Accessing ALPR information): the form's hint, every refusal and
/// the API's messages all say it this way (issue 23 item 11).
pub const PURPOSE_RULE: &str = "Name the specific investigation: a case number, or the suspect's \
last name. Beyond the suspect's last name, leave out personal identifying information, criminal \
history and anything from CLETS.";

/// Longest accepted text in any purpose field: long enough for a real
/// explanation, short enough that the log stays a log.
pub const MAX_FIELD_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    pub case_number: String,
    pub offense: String,
    pub reason: String,
}

/// Why a purpose was refused. [`PurposeError::code`] is the API's error
/// code; [`PurposeError::detail`] the finer reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurposeError {
    #[error("purpose.{0} is missing; every access must name the specific investigation")]
    Missing(&'static str),
    #[error("purpose.{0} is longer than 500 characters")]
    TooLong(&'static str),
    #[error("purpose.case_number {0:?} is not a case number: {1}")]
    CaseNumberFormat(String, String),
    #[error("purpose.reason {0:?} is too general; name the specific investigation: a case number, or the suspect's last name")]
    GenericReason(String),
    #[error("purpose.{field} appears to contain {what}; beyond the suspect's last name, a purpose must not carry personal identifying information, criminal history or anything from CLETS")]
    ContainsPii {
        field: &'static str,
        what: &'static str,
    },
    #[error("purpose.offense {0:?} is not on this agency's list of offenses")]
    OffenseNotListed(String),
    #[error("purpose.{0} describes immigration enforcement, which California law forbids using ALPR data for (Gov. Code § 7284.6)")]
    Immigration(&'static str),
}

impl PurposeError {
    pub fn code(&self) -> &'static str {
        match self {
            PurposeError::Missing(_)
            | PurposeError::TooLong(_)
            | PurposeError::CaseNumberFormat(..)
            | PurposeError::GenericReason(_) => "purpose_insufficient",
            PurposeError::ContainsPii { .. } => "purpose_contains_pii",
            PurposeError::OffenseNotListed(_) => "purpose_offense_not_listed",
            PurposeError::Immigration(_) => "purpose_immigration_enforcement",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self {
            PurposeError::Missing("case_number") => "missing_case_number",
            PurposeError::Missing(_) => "missing_field",
            PurposeError::TooLong(_) => "field_too_long",
            PurposeError::CaseNumberFormat(..) => "case_number_format",
            PurposeError::GenericReason(_) => "generic_reason",
            PurposeError::ContainsPii { .. } => "personal_information",
            PurposeError::OffenseNotListed(_) => "offense_not_listed",
            PurposeError::Immigration(_) => "immigration_enforcement",
        }
    }
}

impl Purpose {
    /// Trims the fields and checks that each is present and bounded. The
    /// agency's rules are applied by [`PurposePolicy::check`].
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

/// Words that on their own say nothing about which investigation.
pub const GENERIC_WORDS: &[&str] = &[
    "investigation",
    "investigations",
    "investigative",
    "investigate",
    "inv",
    "invest",
    "test",
    "testing",
    "general",
    "n/a",
    "na",
    "none",
    "law",
    "enforcement",
    "police",
    "work",
    "official",
    "business",
    "lookup",
    "look",
    "up",
    "search",
    "searching",
    "check",
    "checking",
    "query",
    "info",
    "information",
    "case",
    "routine",
    "patrol",
    "followup",
    "follow",
    "research",
    "intel",
    "intelligence",
    "purpose",
    "reason",
    "other",
    "misc",
    "miscellaneous",
    "data",
    "alpr",
    "lpr",
    "plate",
    "vehicle",
    "needed",
    "need",
    "for",
    "a",
    "an",
    "the",
    "of",
    "to",
    "and",
    "on",
    "in",
    "re",
    "per",
    "ongoing",
    "open",
    "active",
    "criminal",
    "crime",
    "xx",
    "xxx",
    "tbd",
    "asdf",
    "investigating",
    "purposes",
    "reasons",
    "checks",
    "searches",
    "queries",
    "lookups",
    "related",
    "matter",
    "matters",
    "use",
    "duty",
    "duties",
];

/// Words that mark immigration enforcement as the purpose.
const IMMIGRATION_WORDS: &[&str] = &[
    "immigration",
    "deportation",
    "deport",
    "undocumented",
    "ice detainer",
    "illegal alien",
    "illegal immigrant",
    "visa overstay",
    "removal proceedings",
    "border patrol",
    "8 usc",
    "8 u s c",
    "title 8",
];

/// Words that mark personal identifying information, criminal history or
/// CLETS data.
const PII_WORDS: &[(&str, &str)] = &[
    ("dob", "a date of birth"),
    ("d o b", "a date of birth"),
    ("date of birth", "a date of birth"),
    ("birthdate", "a date of birth"),
    ("ssn", "a social security number"),
    ("social security", "a social security number"),
    ("driver license", "a driver licence number"),
    ("driver's license", "a driver licence number"),
    ("drivers license", "a driver licence number"),
    ("cdl#", "a driver licence number"),
    ("dl#", "a driver licence number"),
    ("cii", "a CII number"),
    ("rap sheet", "criminal history"),
    ("criminal history", "criminal history"),
    ("prior arrests", "criminal history"),
    ("clets", "CLETS data"),
    ("fbi#", "an FBI number"),
];

/// The offenses accepted when an agency has not set its own list:
/// categories, and Penal / Vehicle / Health and Safety / Welfare and
/// Institutions Code sections (`211 PC`, `10851 VC`, …).
pub const DEFAULT_OFFENSES: &[&str] = &[
    "homicide",
    "murder",
    "attempted murder",
    "manslaughter",
    "robbery",
    "carjacking",
    "burglary",
    "auto theft",
    "vehicle theft",
    "stolen vehicle",
    "stolen plate",
    "theft",
    "grand theft",
    "kidnapping",
    "abduction",
    "missing person",
    "amber alert",
    "silver alert",
    "assault",
    "aggravated assault",
    "shooting",
    "sexual assault",
    "rape",
    "human trafficking",
    "hit and run",
    "arson",
    "fraud",
    "identity theft",
    "narcotics",
    "drug trafficking",
    "warrant",
    "felony warrant",
    "gang",
    "terrorism",
    "child abduction",
    "domestic violence",
    "stalking",
    "vandalism",
    "extortion",
    "weapons",
    "firearms",
    "elder abuse",
    "child abuse",
    "dui",
    "evading",
    "threats",
];

/// Code suffixes accepted after a section number in an offense.
const CODE_SUFFIXES: &[&str] = &[
    "pc", "vc", "hs", "h&s", "wi", "w&i", "wic", "usc", "bp", "gc",
];

/// An agency's purpose rules (part of its policy, set by the
/// administrator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposePolicy {
    /// A case-number template: `#` a digit, `@` a letter, `?` a letter or
    /// digit, anything else itself (e.g. `##-######`). `None`: at least 4
    /// characters including a digit.
    pub case_number_format: Option<String>,
    /// Offenses accepted (case-insensitive). Empty: [`DEFAULT_OFFENSES`]
    /// and code sections.
    pub offenses: Vec<String>,
}

fn normalise(s: &str) -> String {
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '/' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `text` contains `needle` as whole words.
fn has_phrase(text: &str, needle: &str) -> bool {
    let t = format!(
        " {} ",
        text.replace(|c: char| !(c.is_alphanumeric() || "'#&/".contains(c)), " ")
    );
    let t = format!(" {} ", t.split_whitespace().collect::<Vec<_>>().join(" "));
    t.contains(&format!(" {needle} "))
}

fn matches_template(template: &str, value: &str) -> bool {
    let (t, v): (Vec<char>, Vec<char>) = (template.chars().collect(), value.chars().collect());
    t.len() == v.len()
        && t.iter().zip(&v).all(|(t, v)| match t {
            '#' => v.is_ascii_digit(),
            '@' => v.is_ascii_alphabetic(),
            '?' => v.is_ascii_alphanumeric(),
            other => other.eq_ignore_ascii_case(v),
        })
}

/// Runs of characters of one shape, for the number patterns below.
fn tokens(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '/' || c == '.'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// A social security number: `123-45-6789` (or with spaces; bare nine
/// digits too where `bare_digits`).
fn looks_like_ssn(s: &str, bare_digits: bool) -> bool {
    let digits_only = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    for t in tokens(s) {
        let parts: Vec<&str> = t.split('-').collect();
        if parts.len() == 3
            && parts.iter().map(|p| p.len()).eq([3, 2, 4])
            && parts.iter().all(|p| digits_only(p))
        {
            return true;
        }
        if bare_digits && t.len() == 9 && digits_only(t) {
            return true;
        }
    }
    // "123 45 6789"
    let w: Vec<&str> = s.split_whitespace().collect();
    w.windows(3)
        .any(|x| x.iter().map(|p| p.len()).eq([3, 2, 4]) && x.iter().all(|p| digits_only(p)))
}

/// A date with a year of 2010 or earlier (m/d/y, m-d-y or y-m-d): reads
/// start in 2000, so such a date in a purpose is almost always a birth
/// date.
fn looks_like_birth_date(s: &str) -> bool {
    for t in tokens(s) {
        let parts: Vec<&str> = t.split(['/', '-', '.']).collect();
        if parts.len() != 3
            || !parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            continue;
        }
        let n: Vec<u32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        if n.len() != 3 {
            continue;
        }
        let (year, month, day) = if parts[0].len() == 4 {
            (n[0], n[1], n[2])
        } else {
            // Two-digit years pivot at 30: "10/14/25" is 2025 (an incident),
            // "04/12/88" is 1988.
            let y = match (parts[2].len(), n[2]) {
                (2, yy) if yy <= 30 => 2000 + yy,
                (2, yy) => 1900 + yy,
                _ => n[2],
            };
            (y, n[0], n[1])
        };
        if (1900..=2010).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day) {
            return true;
        }
    }
    false
}

/// A California driver licence (one letter, seven digits) or a CII number
/// (one letter, eight digits).
fn looks_like_licence_or_cii(s: &str) -> Option<&'static str> {
    for t in tokens(s) {
        let b = t.as_bytes();
        if b.len() >= 8 && b[0].is_ascii_alphabetic() && b[1..].iter().all(u8::is_ascii_digit) {
            match b.len() {
                8 => return Some("a driver licence number"),
                9 => return Some("a CII number"),
                _ => {}
            }
        }
    }
    None
}

impl PurposePolicy {
    /// Applies every rule; the first that fails is returned.
    pub fn check(&self, p: &Purpose) -> Result<(), PurposeError> {
        let p = Purpose::new(&p.case_number, &p.offense, &p.reason)?;
        self.check_case_number(&p.case_number)?;
        // Personal data and immigration first: they are refused whatever
        // else the purpose says.
        for (field, text) in [
            ("case_number", &p.case_number),
            ("offense", &p.offense),
            ("reason", &p.reason),
        ] {
            let lower = normalise(text);
            if let Some(word) = IMMIGRATION_WORDS.iter().find(|w| has_phrase(&lower, w)) {
                let _ = word;
                return Err(PurposeError::Immigration(field));
            }
            if let Some((_, what)) = PII_WORDS.iter().find(|(w, _)| has_phrase(&lower, w)) {
                return Err(PurposeError::ContainsPii { field, what });
            }
            // A case number is made of digits: only dashed SSNs count there.
            if looks_like_ssn(text, field != "case_number") {
                return Err(PurposeError::ContainsPii {
                    field,
                    what: "a social security number",
                });
            }
            if looks_like_birth_date(text) {
                return Err(PurposeError::ContainsPii {
                    field,
                    what: "a date of birth",
                });
            }
            if field != "case_number" {
                if let Some(what) = looks_like_licence_or_cii(text) {
                    return Err(PurposeError::ContainsPii { field, what });
                }
            }
        }
        self.check_offense(&p.offense)?;
        let specific = words(&p.reason)
            .iter()
            .filter(|w| !GENERIC_WORDS.contains(&w.as_str()))
            .count();
        if specific == 0 {
            return Err(PurposeError::GenericReason(p.reason.clone()));
        }
        Ok(())
    }

    pub fn check_case_number(&self, case: &str) -> Result<(), PurposeError> {
        match &self.case_number_format {
            Some(t) if !matches_template(t, case) => Err(PurposeError::CaseNumberFormat(
                case.to_string(),
                format!("this agency's case numbers look like {t} (# a digit, @ a letter)"),
            )),
            Some(_) => Ok(()),
            None if case.chars().count() < 4 || !case.chars().any(|c| c.is_ascii_digit()) => {
                Err(PurposeError::CaseNumberFormat(
                    case.to_string(),
                    "it needs at least 4 characters including a digit".into(),
                ))
            }
            None => Ok(()),
        }
    }

    fn check_offense(&self, offense: &str) -> Result<(), PurposeError> {
        let o = normalise(offense);
        let listed = if self.offenses.is_empty() {
            DEFAULT_OFFENSES.iter().any(|d| has_phrase(&o, d)) || is_code_section(&o)
        } else {
            self.offenses.iter().any(|d| normalise(d) == o)
        };
        if listed {
            Ok(())
        } else {
            Err(PurposeError::OffenseNotListed(offense.to_string()))
        }
    }
}

/// "211 PC", "10851(a) VC", "pc 187", "11350 h&s".
fn is_code_section(o: &str) -> bool {
    let w: Vec<&str> = o.split_whitespace().collect();
    let section = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "().-".contains(c))
    };
    w.windows(2).any(|x| {
        (section(x[0]) && CODE_SUFFIXES.contains(&x[1].trim_matches('.')))
            || (CODE_SUFFIXES.contains(&x[0].trim_matches('.')) && section(x[1]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(case: &str, offense: &str, reason: &str) -> Result<(), (&'static str, &'static str)> {
        let p = Purpose {
            case_number: case.into(),
            offense: offense.into(),
            reason: reason.into(),
        };
        PurposePolicy::default()
            .check(&p)
            .map_err(|e| (e.code(), e.detail()))
    }

    /// Issue 23 item 11: the refusal of a generic reason and of personal
    /// information say the same rule as the form: a case number or the
    /// suspect's last name, and nothing personal beyond that name. A
    /// suspect's last name alone is a specific purpose.
    #[test]
    fn refusals_say_the_one_rule() {
        let generic = PurposeError::GenericReason("investigation".into()).to_string();
        let pii = PurposeError::ContainsPii {
            field: "reason",
            what: "a date of birth",
        }
        .to_string();
        for text in [&generic, &pii, &PURPOSE_RULE.to_string()] {
            assert!(text.contains("the suspect's last name"), "{text}");
        }
        assert!(pii.contains("beyond the suspect's last name"), "{pii}");
        assert!(PURPOSE_RULE.contains("case number"));
        assert_eq!(check("26-004211", "211 PC", "suspect Garcia"), Ok(()));
    }

    #[test]
    fn accepts_specific_purposes() {
        assert_eq!(
            check("26-004211", "burglary", "burglary 10/14/25 at 500 Main St"),
            Ok(())
        );
        assert_eq!(
            check("26-1", "211 PC", "seen near 1/1/99999999999"),
            Ok(()),
            "no panic on huge numbers"
        );
        assert_eq!(check("2005-99999999999-1", "211 PC", "suspect Lee"), Ok(()));
        assert_eq!(
            check(
                "26-004211",
                "211 PC",
                "vehicle seen leaving the bank robbery on Broadway"
            ),
            Ok(())
        );
        assert_eq!(
            check("HM2026-0117", "homicide", "suspect Garcia's car"),
            Ok(())
        );
        assert_eq!(
            check(
                "2026-00012345",
                "10851(a) VC",
                "stolen from Lake Merritt lot 2026-11-02"
            ),
            Ok(())
        );
        assert_eq!(
            check("A1234567", "robbery", "suspect vehicle, case in report"),
            Ok(())
        );
    }

    #[test]
    fn refuses_missing_or_malformed_case_numbers() {
        assert_eq!(
            check("", "211 PC", "x y"),
            Err(("purpose_insufficient", "missing_case_number"))
        );
        assert_eq!(
            check("abc", "211 PC", "suspect Lee"),
            Err(("purpose_insufficient", "case_number_format"))
        );
        assert_eq!(
            check("none", "211 PC", "suspect Lee"),
            Err(("purpose_insufficient", "case_number_format"))
        );
        let strict = PurposePolicy {
            case_number_format: Some("##-######".into()),
            offenses: vec![],
        };
        let p = |c: &str| Purpose {
            case_number: c.into(),
            offense: "211 PC".into(),
            reason: "suspect Lee".into(),
        };
        assert!(strict.check(&p("26-004211")).is_ok());
        assert_eq!(
            strict.check(&p("2026-4211")).unwrap_err().detail(),
            "case_number_format"
        );
    }

    #[test]
    fn refuses_generic_reasons() {
        for reason in [
            "Investigating",
            "law enforcement purposes",
            "investigative purposes",
            "investigation",
            "Investigation.",
            "inv",
            "test",
            "general",
            "n/a",
            "law enforcement",
            "LAW ENFORCEMENT PURPOSE",
            "criminal investigation",
            "ongoing investigation",
            "follow up",
        ] {
            assert_eq!(
                check("26-004211", "211 PC", reason),
                Err(("purpose_insufficient", "generic_reason")),
                "{reason}"
            );
        }
    }

    #[test]
    fn refuses_personal_information() {
        let pii = Err(("purpose_contains_pii", "personal_information"));
        assert_eq!(check("26-1", "211 PC", "suspect DOB 04/12/1988"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect born 1988-04-12"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect ssn 123-45-6789"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect 123456789 vehicle"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect Lee DL B1234567"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect CII A12345678"), pii);
        assert_eq!(check("26-1", "211 PC", "per CLETS return"), pii);
        assert_eq!(check("26-1", "211 PC", "rap sheet shows priors"), pii);
        assert_eq!(check("26-1", "211 PC", "see CLETS."), pii);
        assert_eq!(check("26-1", "211 PC", "suspect D.O.B. unknown"), pii);
        assert_eq!(check("26-1", "211 PC", "suspect DOB."), pii);
        assert_eq!(check("123-45-6789", "211 PC", "suspect Lee"), pii);
    }

    #[test]
    fn refuses_unlisted_offenses_and_immigration() {
        let imm = Err(("purpose_immigration_enforcement", "immigration_enforcement"));
        assert_eq!(check("26-1", "8 USC 1326", "re-entry case Lee"), imm);
        assert_eq!(check("26-1", "211 PC", "assist deportation."), imm);
        assert_eq!(
            check("26-1", "jaywalking", "suspect Lee"),
            Err(("purpose_offense_not_listed", "offense_not_listed"))
        );
        assert_eq!(
            check("26-1", "homicide", "immigration status of the owner"),
            Err(("purpose_immigration_enforcement", "immigration_enforcement"))
        );
        assert_eq!(
            check("26-1", "deportation", "find him"),
            Err(("purpose_immigration_enforcement", "immigration_enforcement"))
        );
        let listed = PurposePolicy {
            case_number_format: None,
            offenses: vec!["Robbery".into()],
        };
        let p = |o: &str| Purpose {
            case_number: "26-1".into(),
            offense: o.into(),
            reason: "suspect Lee".into(),
        };
        assert!(listed.check(&p("robbery")).is_ok());
        assert!(listed.check(&p("homicide")).is_err());
    }

    #[test]
    fn requires_every_field() {
        assert_eq!(
            Purpose::new("  ", "187 PC", "x"),
            Err(PurposeError::Missing("case_number"))
        );
        assert_eq!(
            Purpose::new("24-1", "", "x"),
            Err(PurposeError::Missing("offense"))
        );
        assert_eq!(
            Purpose::new("24-1", "187", &"x".repeat(501)),
            Err(PurposeError::TooLong("reason"))
        );
    }
}
