//! The state or province that issued a plate, stored as a one-byte number.

/// US states, DC and territories, then Canadian provinces and territories,
/// then Mexico as one region. The order is the stored code (1-based) and
/// must never change; append only.
const REGIONS: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP", "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU",
    "ON", "PE", "QC", "SK", "YT", "MX", "GV",
];

/// A plate's issuing state, province or territory ("CA", "NV", "BC", …;
/// "GV" for US government plates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(u8);

impl serde::Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Region {
    /// Accepts "CA", "ca", and OpenALPR's "us-ca" / "ca-bc" forms.
    pub fn parse(raw: &str) -> Option<Region> {
        let s = raw.trim().to_ascii_uppercase();
        let code = match s.split_once('-') {
            Some(("US" | "CA" | "MX", sub)) if sub.len() == 2 => sub.to_string(),
            Some(_) => return None,
            None => s,
        };
        REGIONS
            .iter()
            .position(|r| *r == code)
            .map(|i| Region(i as u8 + 1))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn from_code(code: u8) -> Option<Region> {
        (1..=REGIONS.len() as u8)
            .contains(&code)
            .then_some(Region(code))
    }

    pub fn as_str(self) -> &'static str {
        REGIONS[self.0 as usize - 1]
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms_and_round_trips() {
        let ca = Region::parse("ca").unwrap();
        assert_eq!(ca.as_str(), "CA");
        assert_eq!(Region::parse("us-ca"), Some(ca));
        assert_eq!(Region::parse("ca-bc").unwrap().as_str(), "BC");
        assert_eq!(Region::from_code(ca.code()), Some(ca));
        assert_eq!(Region::parse("XX"), None);
        assert_eq!(Region::parse("eu-de"), None);
        assert_eq!(Region::from_code(0), None);
        assert_eq!(Region::from_code(200), None);
    }
}
