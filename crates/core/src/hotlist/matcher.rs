//! The index every read is checked against as it arrives (SPEC R3.3).
//!
//! A read must be compared with every active entry — a million exact
//! plates and thousands of partial ones — in about a microsecond. So:
//! * literal entries sit in a hash map by packed plate (misread-tolerant
//!   ones by canonical word), one probe per read each;
//! * partial entries are filed under one pair of adjacent fixed
//!   characters they contain (any plate they match contains that pair);
//!   a read probes the map with each of its own ≤ 7 pairs and checks the
//!   few entries found;
//! * partial entries without two adjacent fixed characters (`7?B?1?3`)
//!   are checked one by one: they are rare, since entries need three fixed
//!   characters.
//!
//! Expiry is checked at match time, so an entry past its `expires_at`
//! never alerts even before the daily job deletes it.

use std::collections::HashMap;

use crate::pattern::PlatePattern;
use crate::plate::{Plate, MAX_PLATE_LEN};
use crate::region::Region;

/// What the index needs of an entry.
#[derive(Debug, Clone)]
pub struct MatchEntry {
    /// The stored entry's id.
    pub id: i64,
    pub list: i64,
    pub pattern: PlatePattern,
    pub state: Option<Region>,
    pub expires_at_ms: i64,
}

/// A multiply-shift hash for the index's integer keys: several times
/// faster than SipHash, which matters at a million entries. The keys come
/// from hot lists the agency loads, not from outsiders, and a plate read
/// only looks keys up, so collision flooding is not a concern here.
#[derive(Default, Clone, Copy)]
pub struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

type Fast<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<WordHasher>>;

/// The entries filed under one key: almost always one, so no allocation.
enum Slots {
    One(u32),
    Many(Vec<u32>),
}

impl Slots {
    fn push(&mut self, slot: u32) {
        match self {
            Slots::One(first) => *self = Slots::Many(vec![*first, slot]),
            Slots::Many(v) => v.push(slot),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Slots::One(s) => std::slice::from_ref(s),
            Slots::Many(v) => v,
        }
    }
}

/// Where entries are filed: plain characters or misread classes.
#[derive(Default)]
struct Side {
    literal: Fast<u64, Slots>,
    pairs: Fast<u16, Vec<u32>>,
    loose: Vec<u32>,
}

/// The hot-list index. Entries are added and removed one by one (hand
/// entries) or the whole index rebuilt (imports replace thousands).
#[derive(Default)]
pub struct Matcher {
    entries: Vec<Option<MatchEntry>>,
    slot_of: Fast<i64, u32>,
    plain: Side,
    fuzzy: Side,
    live: usize,
}

impl Matcher {
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// Entries checked against every read (see [`is_loose`]), dead ones
    /// included until a rebuild.
    pub fn loose_len(&self) -> usize {
        self.plain.loose.len() + self.fuzzy.loose.len()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// An index sized for `n` entries.
    pub fn with_capacity(n: usize) -> Matcher {
        let mut m = Matcher::default();
        m.entries.reserve(n);
        m.slot_of.reserve(n);
        m.plain.literal.reserve(n);
        m
    }

    /// Adds an entry (replacing one with the same id).
    pub fn insert(&mut self, entry: MatchEntry) {
        self.remove(entry.id);
        let slot = self.entries.len() as u32;
        let side = if entry.pattern.is_fuzzy() {
            &mut self.fuzzy
        } else {
            &mut self.plain
        };
        if let Some(word) = entry.pattern.literal_word() {
            match side.literal.get_mut(&word) {
                Some(slots) => slots.push(slot),
                None => {
                    side.literal.insert(word, Slots::One(slot));
                }
            }
        } else {
            let pairs = entry.pattern.adjacent_pairs();
            // File under the rarest-looking pair: letters pair with fewer
            // plates than digits do on most state formats.
            match pairs.iter().max_by_key(|&&p| letter_weight(p)) {
                Some(&p) => side.pairs.entry(p).or_default().push(slot),
                None => side.loose.push(slot),
            }
        }
        self.slot_of.insert(entry.id, slot);
        self.entries.push(Some(entry));
        self.live += 1;
    }

    /// Removes an entry by id; returns whether it was there. Its slot
    /// stays filed (and is skipped) until the index is rebuilt.
    pub fn remove(&mut self, id: i64) -> bool {
        match self.slot_of.remove(&id) {
            Some(slot) => {
                self.entries[slot as usize] = None;
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    /// Whether removals have left enough dead slots to rebuild.
    pub fn wants_rebuild(&self) -> bool {
        self.entries.len() > 1_024 && self.entries.len() > 2 * self.live
    }

    /// Every live entry, for rebuilding.
    pub fn entries(&self) -> impl Iterator<Item = &MatchEntry> {
        self.entries.iter().flatten()
    }

    /// Appends to `out` the entries a read matches, each once: not
    /// expired at `now_ms`, and of the read's state when the entry names
    /// one (a read whose state was not read matches any state: the
    /// officer verifies).
    pub fn matches<'a>(
        &'a self,
        plate: &Plate,
        region: Option<Region>,
        now_ms: i64,
        out: &mut Vec<&'a MatchEntry>,
    ) {
        let start = out.len();
        let word = plate.packed();
        let canon = plate.canonical_packed();
        // Each entry is filed once, on one side: no slot is found twice.
        let mut found: Vec<u32> = Vec::new();
        for (side, w) in [(&self.plain, word), (&self.fuzzy, canon)] {
            if let Some(slots) = side.literal.get(&w) {
                found.extend_from_slice(slots.as_slice());
            }
            if !side.pairs.is_empty() {
                let bytes = w.to_le_bytes();
                let len = plate.len().min(MAX_PLATE_LEN);
                for i in 1..len {
                    let key = (bytes[i - 1] as u16) << 8 | bytes[i] as u16;
                    // A plate repeating a pair must not check twice.
                    if bytes[..i]
                        .windows(2)
                        .any(|p| (p[0] as u16) << 8 | p[1] as u16 == key)
                    {
                        continue;
                    }
                    if let Some(slots) = side.pairs.get(&key) {
                        found.extend(slots.iter().filter(|&&s| self.pattern_matches(s, w)));
                    }
                }
            }
            found.extend(side.loose.iter().filter(|&&s| self.pattern_matches(s, w)));
        }
        for slot in &found {
            let Some(e) = &self.entries[*slot as usize] else {
                continue;
            };
            let state_ok = match (e.state, region) {
                (Some(want), Some(got)) => want == got,
                _ => true,
            };
            if e.expires_at_ms > now_ms && state_ok {
                out.push(e);
            }
        }
        debug_assert!({
            let mut ids: Vec<i64> = out[start..].iter().map(|e| e.id).collect();
            ids.sort_unstable();
            ids.windows(2).all(|w| w[0] != w[1])
        });
    }

    fn pattern_matches(&self, slot: u32, word: u64) -> bool {
        self.entries[slot as usize]
            .as_ref()
            .is_some_and(|e| e.pattern.matches_word(word))
    }
}

/// Whether an entry has neither a whole plate nor two adjacent known
/// characters (`7?B?1?3`, `A*B*C`): the index cannot file it under a key,
/// so every read checks it. Their number is capped (see
/// [`super::MAX_LOOSE_ENTRIES`]).
pub fn is_loose(pattern: &PlatePattern) -> bool {
    pattern.literal_word().is_none() && pattern.adjacent_pairs().is_empty()
}

/// Letters are rarer than digits in plates: prefer pairs with more.
fn letter_weight(pair: u16) -> u8 {
    let a = (pair >> 8) as u8;
    let b = pair as u8;
    a.is_ascii_uppercase() as u8 + b.is_ascii_uppercase() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn entry(id: i64, pattern: &str, fuzzy: bool) -> MatchEntry {
        MatchEntry {
            id,
            list: 1,
            pattern: PlatePattern::parse(pattern, fuzzy).unwrap(),
            state: None,
            expires_at_ms: NOW + 1,
        }
    }

    fn hits(m: &Matcher, plate: &str) -> Vec<i64> {
        let mut out = Vec::new();
        m.matches(&Plate::parse(plate).unwrap(), None, NOW, &mut out);
        let mut ids: Vec<i64> = out.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn exact_partial_and_misread_entries_match() {
        let mut m = Matcher::new();
        m.insert(entry(1, "7ABC123", false));
        m.insert(entry(2, "7AB*", false));
        m.insert(entry(3, "*C12?", false));
        m.insert(entry(4, "7?B?1?3", false));
        m.insert(entry(5, "8OB1234", true));
        m.insert(entry(6, "*0B12*", true));
        m.insert(entry(7, "ABABAB", false));
        assert_eq!(hits(&m, "7ABC123"), [1, 2, 3, 4]);
        assert_eq!(hits(&m, "7ABX999"), [2]);
        assert_eq!(hits(&m, "7XBY1Z3"), [4]);
        assert_eq!(hits(&m, "B08I234"), [5, 6]);
        assert_eq!(hits(&m, "9OB12"), [6]);
        assert_eq!(hits(&m, "ABABAB"), [7]);
        assert!(hits(&m, "1XYZ999").is_empty());
        assert!(m.remove(2));
        assert!(!m.remove(2));
        assert_eq!(hits(&m, "7ABC123"), [1, 3, 4]);
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn state_and_expiry_narrow_the_hits() {
        let mut m = Matcher::new();
        let mut e = entry(1, "7ABC123", false);
        e.state = Region::parse("CA");
        m.insert(e);
        let mut gone = entry(2, "7ABC12*", false);
        gone.expires_at_ms = NOW;
        m.insert(gone);
        let plate = Plate::parse("7ABC123").unwrap();
        let mut out = Vec::new();
        m.matches(&plate, Region::parse("NV"), NOW, &mut out);
        assert!(out.is_empty(), "other state, expired entry");
        m.matches(&plate, Region::parse("CA"), NOW, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        m.matches(&plate, None, NOW, &mut out);
        assert_eq!(out.len(), 1, "unread state matches");
    }

    #[test]
    fn agrees_with_checking_every_entry() {
        // Deterministic pseudo-random entries and plates.
        let mut x = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let rand_plate = |next: &mut dyn FnMut() -> u64| -> String {
            let len = 5 + (next() % 4) as usize;
            (0..len)
                .map(|_| alphabet[(next() % 12) as usize] as char)
                .collect()
        };
        let mut m = Matcher::new();
        let mut all = Vec::new();
        for id in 0..3_000 {
            let base = rand_plate(&mut next);
            let mut p: Vec<char> = base.chars().collect();
            match next() % 4 {
                0 => {}
                1 => p[1] = '?',
                2 => {
                    p.truncate(3);
                    p.push('*');
                }
                _ => {
                    p[0] = '*';
                    p.truncate(4);
                }
            }
            let text: String = p.into_iter().collect();
            let fuzzy = next() % 3 == 0;
            let Ok(pattern) = crate::hotlist::check_pattern(&text, fuzzy) else {
                continue;
            };
            let e = MatchEntry {
                id,
                list: 1,
                pattern,
                state: None,
                expires_at_ms: NOW + 1,
            };
            all.push(e.clone());
            m.insert(e);
        }
        for _ in 0..3_000 {
            let plate = Plate::parse(&rand_plate(&mut next)).unwrap();
            let mut want: Vec<i64> = all
                .iter()
                .filter(|e| e.pattern.matches(&plate))
                .map(|e| e.id)
                .collect();
            want.sort_unstable();
            assert_eq!(hits(&m, plate.as_str()), want, "{plate}");
        }
    }
}
