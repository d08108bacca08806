//! A licence plate's text, normalised, and the compact encodings the store
//! and the plate dictionary use.
//!
//! US plates hold at most 8 characters (A–Z, 0–9). Cameras and people write
//! them with spaces and dashes ("7ABC 123", "7-ABC-123"); those are dropped,
//! letters are upper-cased, and anything else is refused rather than guessed.

use std::fmt;

/// The longest plate accepted. US and Canadian plates stop at 8 characters;
/// the compact encodings below depend on this bound.
pub const MAX_PLATE_LEN: usize = 8;

/// Why a plate's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    #[error("plate is empty")]
    Empty,
    #[error("plate has {0} characters after dropping spaces and dashes; at most 8 are allowed")]
    TooLong(usize),
    #[error("plate contains {0:?}; only letters A-Z and digits 0-9 are allowed")]
    BadCharacter(char),
}

/// A normalised plate: 1 to 8 characters from A–Z and 0–9.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plate {
    len: u8,
    bytes: [u8; MAX_PLATE_LEN],
}

impl Plate {
    /// Normalises `raw`: drops spaces, dashes and dots, upper-cases letters,
    /// and refuses any other character.
    pub fn parse(raw: &str) -> Result<Plate, PlateError> {
        let mut bytes = [0u8; MAX_PLATE_LEN];
        let mut len = 0usize;
        for ch in raw.chars() {
            if matches!(ch, ' ' | '-' | '.' | '\t') {
                continue;
            }
            let up = ch.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit()) {
                return Err(PlateError::BadCharacter(ch));
            }
            if len == MAX_PLATE_LEN {
                // Count the rest so the message tells the real length.
                let total = raw
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.' | '\t'))
                    .count();
                return Err(PlateError::TooLong(total));
            }
            bytes[len] = up as u8;
            len += 1;
        }
        if len == 0 {
            return Err(PlateError::Empty);
        }
        Ok(Plate {
            len: len as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The plate as a base-37 number (0 pads, 1–10 digits, 11–36 letters),
    /// left-aligned on 8 places so numeric order is text order. It stays
    /// below 37^8 < 2^42, which SQLite stores in 6 bytes.
    pub fn code(&self) -> i64 {
        self.bytes
            .iter()
            .fold(0i64, |acc, &b| acc * 37 + symbol_value(b) as i64)
    }

    /// The inverse of [`Plate::code`]; `None` for numbers no plate encodes.
    pub fn from_code(code: i64) -> Option<Plate> {
        if !(0..37i64.pow(8)).contains(&code) {
            return None;
        }
        let mut bytes = [0u8; MAX_PLATE_LEN];
        let mut rest = code;
        for slot in bytes.iter_mut().rev() {
            *slot = value_symbol((rest % 37) as u8);
            rest /= 37;
        }
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_PLATE_LEN);
        // A pad in the middle ("A\0B") is not a plate.
        if len == 0 || bytes[len..].iter().any(|&b| b != 0) {
            return None;
        }
        Some(Plate {
            len: len as u8,
            bytes,
        })
    }

    /// The 8 ASCII bytes (zero-padded) in one little-endian word: byte `i`
    /// is character `i`. The dictionary scans these words.
    pub fn packed(&self) -> u64 {
        u64::from_le_bytes(self.bytes)
    }

    /// The inverse of [`Plate::packed`].
    pub fn from_packed(word: u64) -> Option<Plate> {
        let bytes = word.to_le_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_PLATE_LEN);
        if len == 0
            || bytes[len..].iter().any(|&b| b != 0)
            || !bytes[..len]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return None;
        }
        Some(Plate {
            len: len as u8,
            bytes,
        })
    }

    /// The plate with every character replaced by its misread class
    /// (see [`misread_class`]), packed like [`Plate::packed`]. Two plates a
    /// camera could confuse have the same canonical word.
    pub fn canonical_packed(&self) -> u64 {
        let mut out = self.bytes;
        for b in out.iter_mut().take(self.len as usize) {
            *b = misread_class(*b);
        }
        u64::from_le_bytes(out)
    }
}

impl fmt::Debug for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plate({})", self.as_str())
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn symbol_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0' + 1,
        b'A'..=b'Z' => b - b'A' + 11,
        _ => 0,
    }
}

fn value_symbol(v: u8) -> u8 {
    match v {
        1..=10 => b'0' + v - 1,
        11..=36 => b'A' + v - 11,
        _ => 0,
    }
}

/// Characters that plate readers (and witnesses) confuse, by class. Each
/// class is named by its first member; [`misread_class`] maps a character
/// to that name. Policy source: SPEC R2.2 (O/0/D/Q, I/1/L/T, B/8, S/5, Z/2,
/// G/6).
pub const MISREAD_CLASSES: &[&str] = &["0ODQ", "1ILT", "8B", "5S", "2Z", "6G"];

/// The class representative of an ASCII plate character (itself if it is in
/// no class).
pub fn misread_class(b: u8) -> u8 {
    for class in MISREAD_CLASSES {
        if class.as_bytes().contains(&b) {
            return class.as_bytes()[0];
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_spaces_dashes_and_case() {
        assert_eq!(Plate::parse(" 7abc-123 ").unwrap().as_str(), "7ABC123");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(Plate::parse(""), Err(PlateError::Empty));
        assert_eq!(Plate::parse(" - "), Err(PlateError::Empty));
        assert_eq!(Plate::parse("7AB*12"), Err(PlateError::BadCharacter('*')));
        assert_eq!(Plate::parse("ÄBC123"), Err(PlateError::BadCharacter('Ä')));
        assert_eq!(Plate::parse("ABCDEFGHIJ"), Err(PlateError::TooLong(10)));
        assert!(Plate::parse("ABCDEFGH").is_ok());
    }

    #[test]
    fn code_round_trips_and_keeps_text_order() {
        let plates = ["0", "1", "7ABC123", "ZZZZZZZZ", "A", "AB", "B"];
        let mut by_code: Vec<Plate> = plates.iter().map(|p| Plate::parse(p).unwrap()).collect();
        for p in &by_code {
            assert_eq!(Plate::from_code(p.code()), Some(*p));
            assert_eq!(Plate::from_packed(p.packed()), Some(*p));
            assert!(p.code() < 1 << 47);
        }
        by_code.sort_by_key(|p| p.code());
        let texts: Vec<&str> = by_code.iter().map(|p| p.as_str()).collect();
        let mut sorted = plates.to_vec();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn from_code_refuses_non_plates() {
        assert_eq!(Plate::from_code(-1), None);
        assert_eq!(Plate::from_code(0), None);
        assert_eq!(Plate::from_code(37i64.pow(8)), None);
        // "A" then a pad then "B": not a plate.
        let gap = 11 * 37i64.pow(7) + 12 * 37i64.pow(5);
        assert_eq!(Plate::from_code(gap), None);
    }

    #[test]
    fn misreads_share_a_canonical_form() {
        let a = Plate::parse("8OB5I2G").unwrap();
        let b = Plate::parse("B0856Z6").unwrap();
        assert_ne!(
            a.canonical_packed(),
            b.canonical_packed(),
            "I and 6 are different classes"
        );
        let c = Plate::parse("BD8S1Z6").unwrap();
        assert_eq!(a.canonical_packed(), c.canonical_packed());
    }
}
