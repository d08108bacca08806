//! Partial-plate patterns: `?` for one unknown character, `*` for any run
//! (SPEC R2.2), optionally tolerant of common misreads.
//!
//! Matching runs over the distinct-plate dictionary, not over reads, so a
//! pattern is compiled into a cheap word-level prefilter (one mask-compare
//! or a short substring test per plate) and a full check for the survivors.

use crate::plate::{misread_class, Plate, MAX_PLATE_LEN};

/// Fewer fixed characters than this would match a large share of all
/// plates: such a search tells an investigator nothing and costs a full
/// dictionary walk, so it is refused.
pub const MIN_FIXED_CHARS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("plate pattern is empty")]
    Empty,
    #[error("plate pattern contains {0:?}; only A-Z, 0-9, ? (one character) and * (any run) are allowed")]
    BadCharacter(char),
    #[error("plate pattern needs at least {MIN_FIXED_CHARS} known characters; {0:?} would match too many plates")]
    TooBroad(String),
    #[error("plate pattern describes more than 8 characters")]
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(u8),
    One,
    Star,
}

/// A parsed pattern such as `7AB?12*` or `*4KX*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatePattern {
    text: String,
    tokens: Vec<Token>,
    fuzzy: bool,
}

/// How the dictionary should pre-select candidate plates for a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefilter {
    /// Keep words where `word & mask == value`.
    Masked { mask: u64, value: u64 },
    /// Keep words containing `needle` (its first `len` bytes) anywhere.
    Substring { needle: u64, len: usize },
}

impl PlatePattern {
    /// Parses a pattern. Spaces and dashes are dropped as in plates; runs
    /// of `*` collapse. With `fuzzy`, each character also matches the
    /// characters it is commonly misread as.
    pub fn parse(raw: &str, fuzzy: bool) -> Result<PlatePattern, PatternError> {
        let mut tokens = Vec::new();
        let mut text = String::new();
        for ch in raw.chars() {
            let up = ch.to_ascii_uppercase();
            let token = match up {
                ' ' | '-' | '.' | '\t' => continue,
                '?' | '_' => Token::One,
                '*' | '%' => Token::Star,
                c if c.is_ascii_uppercase() || c.is_ascii_digit() => {
                    let b = c as u8;
                    Token::Lit(if fuzzy { misread_class(b) } else { b })
                }
                _ => return Err(PatternError::BadCharacter(ch)),
            };
            if token == Token::Star && tokens.last() == Some(&Token::Star) {
                continue;
            }
            tokens.push(token);
            text.push(match token {
                Token::Lit(_) => up,
                Token::One => '?',
                Token::Star => '*',
            });
        }
        if tokens.is_empty() {
            return Err(PatternError::Empty);
        }
        let fixed = tokens.iter().filter(|t| matches!(t, Token::Lit(_))).count();
        let positions = tokens.iter().filter(|t| **t != Token::Star).count();
        if positions > MAX_PLATE_LEN {
            return Err(PatternError::TooLong);
        }
        if fixed < MIN_FIXED_CHARS {
            return Err(PatternError::TooBroad(text));
        }
        Ok(PlatePattern {
            text,
            tokens,
            fuzzy,
        })
    }

    /// A pattern that matches exactly one plate (or its misreads).
    pub fn exact(plate: &Plate, fuzzy: bool) -> PlatePattern {
        let tokens = plate
            .as_str()
            .bytes()
            .map(|b| Token::Lit(if fuzzy { misread_class(b) } else { b }))
            .collect();
        PlatePattern {
            text: plate.as_str().to_string(),
            tokens,
            fuzzy,
        }
    }

    /// The pattern as written, normalised (upper case, no separators).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_fuzzy(&self) -> bool {
        self.fuzzy
    }

    /// True when the pattern has no `?` or `*`: it names one plate (and,
    /// if fuzzy, its misreads).
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Lit(_)))
    }

    /// Whether `plate` matches. Fuzzy patterns compare misread classes.
    pub fn matches(&self, plate: &Plate) -> bool {
        let text: Vec<u8> = if self.fuzzy {
            plate.as_str().bytes().map(misread_class).collect()
        } else {
            plate.as_str().bytes().collect()
        };
        glob(&self.tokens, &text)
    }

    /// The prefilter for dictionary words: canonical words (see
    /// [`Plate::canonical_packed`]) when fuzzy, plain packed words otherwise.
    pub fn prefilter(&self) -> Prefilter {
        let head_len = self
            .tokens
            .iter()
            .position(|t| *t == Token::Star)
            .unwrap_or(self.tokens.len());
        if head_len > 0 {
            let mut mask = 0u64;
            let mut value = 0u64;
            for (i, t) in self.tokens[..head_len].iter().enumerate() {
                if let Token::Lit(b) = t {
                    mask |= 0xFF << (8 * i);
                    value |= (*b as u64) << (8 * i);
                }
            }
            // Without any star the length is fixed: the byte after the
            // last position must be the zero pad.
            if head_len == self.tokens.len() && head_len < MAX_PLATE_LEN {
                mask |= 0xFF << (8 * head_len);
            }
            return Prefilter::Masked { mask, value };
        }
        // Leading star: use the longest run of known characters.
        let mut best: &[Token] = &[];
        for run in self
            .tokens
            .split(|t| !matches!(t, Token::Lit(_)))
            .filter(|r| !r.is_empty())
        {
            if run.len() > best.len() {
                best = run;
            }
        }
        let mut needle = 0u64;
        for (i, t) in best.iter().enumerate() {
            if let Token::Lit(b) = t {
                needle |= (*b as u64) << (8 * i);
            }
        }
        Prefilter::Substring {
            needle,
            len: best.len(),
        }
    }

    /// Appends to `out` the index of every word in `words` that matches,
    /// stopping once `out` holds more than `max`. `words` are packed
    /// plates, or canonical ones for a fuzzy pattern.
    pub fn scan(&self, words: &[u64], base: u32, max: usize, out: &mut Vec<u32>) {
        let filter = self.prefilter();
        let full_check = !self.prefilter_is_exact();
        for (i, &w) in words.iter().enumerate() {
            if filter.keeps(w) && (!full_check || self.matches_word(w)) {
                out.push(base + i as u32);
                if out.len() > max {
                    return;
                }
            }
        }
    }

    /// True when the prefilter alone decides (no `*` and no `?`, or only
    /// a tail `*`). Then the per-word check is skipped.
    pub fn prefilter_is_exact(&self) -> bool {
        let star = self.tokens.iter().position(|t| *t == Token::Star);
        let no_one = !self.tokens.contains(&Token::One);
        match star {
            None => no_one,
            Some(i) => no_one && i == self.tokens.len() - 1 && i > 0,
        }
    }

    /// How many characters the pattern fixes (neither `?` nor `*`).
    pub fn fixed_chars(&self) -> usize {
        self.tokens
            .iter()
            .filter(|t| matches!(t, Token::Lit(_)))
            .count()
    }

    /// Each pair of adjacent fixed characters (misread classes when
    /// fuzzy) as `first << 8 | second`: keys under which a hot-list index
    /// files the pattern. Any plate it matches contains one of them.
    pub fn adjacent_pairs(&self) -> Vec<u16> {
        self.tokens
            .windows(2)
            .filter_map(|w| match (w[0], w[1]) {
                (Token::Lit(a), Token::Lit(b)) => Some((a as u16) << 8 | b as u16),
                _ => None,
            })
            .collect()
    }

    /// The one word a literal pattern matches, packed like
    /// [`Plate::packed`] (canonical when fuzzy); `None` with wildcards.
    pub fn literal_word(&self) -> Option<u64> {
        let mut bytes = [0u8; MAX_PLATE_LEN];
        for (i, t) in self.tokens.iter().enumerate() {
            match t {
                Token::Lit(b) => *bytes.get_mut(i)? = *b,
                _ => return None,
            }
        }
        Some(u64::from_le_bytes(bytes))
    }

    /// Whether a packed word (canonical for a fuzzy pattern) matches.
    pub fn matches_word(&self, word: u64) -> bool {
        let bytes = word.to_le_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_PLATE_LEN);
        glob(&self.tokens, &bytes[..len])
    }
}

impl Prefilter {
    #[inline]
    pub fn keeps(&self, word: u64) -> bool {
        match *self {
            Prefilter::Masked { mask, value } => word & mask == value,
            Prefilter::Substring { needle, len } => {
                if len == 0 {
                    return true;
                }
                let m = if len >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * len)) - 1
                };
                let mut hit = false;
                for k in 0..=(MAX_PLATE_LEN - len) {
                    hit |= (word >> (8 * k)) & m == needle;
                }
                hit
            }
        }
    }
}

/// Glob matching of `?`/`*` tokens over plate bytes, with the classic
/// single-backtrack algorithm (linear for one star, quadratic at worst on
/// 8 characters).
fn glob(tokens: &[Token], text: &[u8]) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::Lit(b)) if *b == text[s] => {
                t += 1;
                s += 1;
            }
            Some(Token::One) => {
                t += 1;
                s += 1;
            }
            Some(Token::Star) => {
                star = Some((t, s));
                t += 1;
            }
            _ => match star {
                Some((st, ss)) => {
                    t = st + 1;
                    s = ss + 1;
                    star = Some((st, ss + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Plate {
        Plate::parse(s).unwrap()
    }

    fn scan_all(pattern: &PlatePattern, plates: &[&str]) -> Vec<String> {
        let words: Vec<u64> = plates
            .iter()
            .map(|s| {
                if pattern.is_fuzzy() {
                    p(s).canonical_packed()
                } else {
                    p(s).packed()
                }
            })
            .collect();
        let mut out = Vec::new();
        pattern.scan(&words, 0, usize::MAX, &mut out);
        out.iter()
            .map(|&i| plates[i as usize].to_string())
            .collect()
    }

    const PLATES: &[&str] = &[
        "7ABC123", "7ABX12", "7ABX129", "7ABX12Z9", "8ABC123", "14KX221", "4KX", "X4KXQ", "7AB12",
        "B0B5", "8OBS",
    ];

    #[test]
    fn wildcard_one_and_star() {
        let pat = PlatePattern::parse("7AB?12*", false).unwrap();
        assert_eq!(
            scan_all(&pat, PLATES),
            ["7ABC123", "7ABX12", "7ABX129", "7ABX12Z9"]
        );
        let pat = PlatePattern::parse("7ab?12", false).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["7ABX12"]);
    }

    #[test]
    fn substring() {
        let pat = PlatePattern::parse("*4KX*", false).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["14KX221", "4KX", "X4KXQ"]);
        let pat = PlatePattern::parse("*4KX", false).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["4KX"]);
        let pat = PlatePattern::parse("*K?2*", false).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["14KX221"]);
    }

    #[test]
    fn fuzzy_matches_misreads_only() {
        let pat = PlatePattern::parse("8085", true).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["B0B5", "8OBS"]);
        let exact = PlatePattern::exact(&p("7ABC123"), true);
        assert_eq!(scan_all(&exact, PLATES), ["7ABC123"]);
        let pat = PlatePattern::parse("*0B5*", true).unwrap();
        assert_eq!(scan_all(&pat, PLATES), ["B0B5", "8OBS"]);
    }

    #[test]
    fn scan_agrees_with_matches() {
        for pattern in ["7AB?12*", "*4KX*", "*12*", "?ABC*", "7A*3", "*B?5", "B0B5"] {
            for fuzzy in [false, true] {
                let pat = PlatePattern::parse(pattern, fuzzy).unwrap();
                let scanned = scan_all(&pat, PLATES);
                let direct: Vec<String> = PLATES
                    .iter()
                    .filter(|s| pat.matches(&p(s)))
                    .map(|s| s.to_string())
                    .collect();
                assert_eq!(scanned, direct, "{pattern} fuzzy={fuzzy}");
            }
        }
    }

    #[test]
    fn refuses_broad_and_bad_patterns() {
        assert!(matches!(
            PlatePattern::parse("*", false),
            Err(PatternError::TooBroad(_))
        ));
        assert!(matches!(
            PlatePattern::parse("??*", false),
            Err(PatternError::TooBroad(_))
        ));
        assert!(matches!(
            PlatePattern::parse("*A*", false),
            Err(PatternError::TooBroad(_))
        ));
        assert_eq!(PlatePattern::parse("", false), Err(PatternError::Empty));
        assert_eq!(
            PlatePattern::parse("7A#", false),
            Err(PatternError::BadCharacter('#'))
        );
        assert_eq!(
            PlatePattern::parse("123456789", false),
            Err(PatternError::TooLong)
        );
        assert!(PlatePattern::parse("**AB**", false).is_ok());
    }

    #[test]
    fn text_is_normalised() {
        assert_eq!(
            PlatePattern::parse("7ab-?12 **", false).unwrap().as_str(),
            "7AB?12*"
        );
    }
}
