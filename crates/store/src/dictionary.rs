//! The distinct-plate dictionary, kept in memory.
//!
//! Reads are many; distinct plates are far fewer (about a third, with a
//! long tail). Substring, wildcard and misread-tolerant searches scan this
//! dictionary — two 8-byte words per plate, compared a word at a time —
//! and then fetch reads through each day's plate index. Each entry also
//! keeps the first and last day the plate was seen, so a fetch only
//! touches days that can hold the plate.
//!
//! Memory: 8 (packed) + 8 (canonical) + 4 (days) + about 6 (hash slots)
//! bytes per distinct plate.

use platekeeper_core::{Plate, PlatePattern};

/// Days are kept as u16 offsets from 2000-01-01 (day 10957 since 1970),
/// the earliest time a read may carry.
const DAY_ORIGIN: i32 = 10_957;
const EMPTY: u32 = u32::MAX;

/// One plate's entry as a search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlateSpan {
    pub plate: Plate,
    pub first_day: i32,
    pub last_day: i32,
}

#[derive(Default)]
pub struct PlateDictionary {
    packed: Vec<u64>,
    canonical: Vec<u64>,
    first_day: Vec<u16>,
    last_day: Vec<u16>,
    /// Open-addressing table of indexes into the vectors, keyed by the
    /// packed word; sized to a power of two, at most 70% full.
    slots: Vec<u32>,
}

fn hash(word: u64) -> u64 {
    // SplitMix64's finaliser: cheap and mixes all bits.
    let mut z = word.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn day_offset(day: i32) -> u16 {
    (day - DAY_ORIGIN).clamp(0, u16::MAX as i32) as u16
}

impl PlateDictionary {
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// Heap bytes held, for metrics.
    pub fn heap_bytes(&self) -> usize {
        self.packed.capacity() * 8
            + self.canonical.capacity() * 8
            + self.first_day.capacity() * 2
            + self.last_day.capacity() * 2
            + self.slots.capacity() * 4
    }

    fn find_slot(&self, word: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash(word) as usize & mask;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                idx if self.packed[idx as usize] == word => return Some(idx as usize),
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let mut slots = vec![EMPTY; size];
        let mask = size - 1;
        for (idx, &word) in self.packed.iter().enumerate() {
            let mut i = hash(word) as usize & mask;
            while slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = idx as u32;
        }
        self.slots = slots;
    }

    /// Records that `plate` was read on `day`.
    pub fn observe(&mut self, plate: &Plate, day: i32) {
        let word = plate.packed();
        let d = day_offset(day);
        if let Some(idx) = self.find_slot(word) {
            self.first_day[idx] = self.first_day[idx].min(d);
            self.last_day[idx] = self.last_day[idx].max(d);
            return;
        }
        if (self.packed.len() + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let idx = self.packed.len() as u32;
        self.packed.push(word);
        self.canonical.push(plate.canonical_packed());
        self.first_day.push(d);
        self.last_day.push(d);
        let mask = self.slots.len() - 1;
        let mut i = hash(word) as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = idx;
    }

    fn span(&self, idx: usize) -> Option<PlateSpan> {
        Some(PlateSpan {
            plate: Plate::from_packed(self.packed[idx])?,
            first_day: self.first_day[idx] as i32 + DAY_ORIGIN,
            last_day: self.last_day[idx] as i32 + DAY_ORIGIN,
        })
    }

    /// The entry of one plate, if it was ever read.
    pub fn get(&self, plate: &Plate) -> Option<PlateSpan> {
        self.find_slot(plate.packed()).and_then(|i| self.span(i))
    }

    /// Every plate matching `pattern`, up to `limit + 1` of them (so the
    /// caller can tell "more than limit"). Large dictionaries are scanned
    /// on all cores.
    pub fn matching(&self, pattern: &PlatePattern, limit: usize) -> Vec<PlateSpan> {
        let words = if pattern.is_fuzzy() {
            &self.canonical
        } else {
            &self.packed
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut hits: Vec<u32> = Vec::new();
        if threads > 1 && words.len() > 1 << 20 {
            let chunk = words.len().div_ceil(threads);
            let parts: Vec<Vec<u32>> = std::thread::scope(|s| {
                let handles: Vec<_> = words
                    .chunks(chunk)
                    .enumerate()
                    .map(|(n, part)| {
                        s.spawn(move || {
                            let mut out = Vec::new();
                            pattern.scan(part, (n * chunk) as u32, limit, &mut out);
                            out
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            hits = parts.concat();
        } else {
            pattern.scan(words, 0, limit, &mut hits);
        }
        hits.into_iter()
            .take(limit.saturating_add(1))
            .filter_map(|i| self.span(i as usize))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(s: &str) -> Plate {
        Plate::parse(s).unwrap()
    }

    #[test]
    fn observe_tracks_spans_and_survives_growth() {
        let mut d = PlateDictionary::default();
        for i in 0..5000 {
            d.observe(&plate(&format!("P{i}")), 20_000 + (i % 7));
        }
        d.observe(&plate("P3"), 19_990);
        d.observe(&plate("P3"), 20_100);
        assert_eq!(d.len(), 5000);
        let s = d.get(&plate("P3")).unwrap();
        assert_eq!((s.first_day, s.last_day), (19_990, 20_100));
        assert!(d.get(&plate("Q1")).is_none());
        assert_eq!(d.get(&plate("P4999")).unwrap().first_day, 20_000 + 4999 % 7);
    }

    #[test]
    fn matching_finds_patterns_and_misreads() {
        let mut d = PlateDictionary::default();
        for p in ["7ABC123", "7ABD129", "8ABC123", "X4KX11", "7A8C123"] {
            d.observe(&plate(p), 20_000);
        }
        let texts = |pat: &str, fuzzy: bool| -> Vec<String> {
            let p = PlatePattern::parse(pat, fuzzy).unwrap();
            let mut v: Vec<String> = d
                .matching(&p, 100)
                .iter()
                .map(|s| s.plate.to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(texts("7AB?12*", false), ["7ABC123", "7ABD129"]);
        assert_eq!(texts("*4KX*", false), ["X4KX11"]);
        assert_eq!(texts("7ABC123", true), ["7A8C123", "7ABC123"]);
        let broad = PlatePattern::parse("*12*", false).unwrap();
        assert_eq!(
            d.matching(&broad, 2).len(),
            3,
            "limit + 1 tells the caller there are more"
        );
    }
}
