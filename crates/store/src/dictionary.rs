//! The distinct-plate dictionary, kept in memory.
//!
//! Reads are many; distinct plates are far fewer (about a third, with a
//! long tail). Substring, wildcard and misread-tolerant searches scan this
//! dictionary and then fetch reads through each day's plate index. Each
//! entry also keeps the first and last day the plate was seen, so a fetch
//! only touches days that can hold the plate.
//!
//! Layout: column by character position — `cols[p][i]` is character `p`
//! of plate `i` (0 past its end), and `canon` the same for the misread
//! classes. A scan then compares one position of 16 or 32 plates per
//! vector instruction (plain SSE2 suffices), which is what keeps a
//! substring scan of 30M plates within tens of milliseconds on two cores.
//!
//! Memory: 8 + 8 (columns) + 4 (days) + about 6 (hash slots) bytes per
//! distinct plate.

use std::collections::HashMap;

use platekeeper_core::pattern::Prefilter;
use platekeeper_core::plate::MAX_PLATE_LEN;
use platekeeper_core::{Plate, PlatePattern};

/// Days are kept as u16 offsets from 2000-01-01 (day 10957 since 1970),
/// the earliest time a read may carry.
const DAY_ORIGIN: i32 = 10_957;
const EMPTY: u32 = u32::MAX;
/// A slot whose plate was forgotten: probes pass over it (plates placed
/// after it stay reachable), and an insert may take it.
const FORGOTTEN: u32 = u32::MAX - 1;
/// Plates compared per step of a scan.
const CHUNK: usize = 64;

/// One plate's entry as a search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlateSpan {
    pub plate: Plate,
    pub first_day: i32,
    pub last_day: i32,
    /// Bit k: the plate was read on `last_day - k` (k < 32). Days before
    /// that window are not tracked.
    pub recent: u32,
}

/// Days before the last one that [`PlateSpan::recent`] tracks.
const RECENT_DAYS: i32 = 32;

impl PlateSpan {
    /// Whether the plate may have reads on `day`: false only where the
    /// dictionary knows it has none, so a search skips that day's file.
    pub fn maybe_on(&self, day: i32) -> bool {
        if !(self.first_day..=self.last_day).contains(&day) {
            return false;
        }
        let k = self.last_day - day;
        k >= RECENT_DAYS || self.recent & (1 << k) != 0
    }
}

#[derive(Default)]
pub struct PlateDictionary {
    cols: [Vec<u8>; MAX_PLATE_LEN],
    canon: [Vec<u8>; MAX_PLATE_LEN],
    first_day: Vec<u16>,
    last_day: Vec<u16>,
    recent: Vec<u32>,
    /// Open-addressing table of indexes into the columns, keyed by the
    /// packed plate; sized to a power of two, at most 70% full (counting
    /// forgotten slots).
    slots: Vec<u32>,
    forgotten_slots: usize,
    /// Entries whose plate was forgotten (all columns zero, so no scan
    /// matches them), for new plates to reuse.
    free: Vec<u32>,
    /// Plates a correction is looking for reads of, by packed word (see
    /// [`Self::watch`]).
    watched: HashMap<u64, Watch>,
}

#[derive(Default)]
struct Watch {
    watchers: u32,
    observed: bool,
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

/// What a scan compares, per plate, as byte tests on columns.
enum Program {
    /// Every (position, byte) must match.
    All(Vec<(usize, u8)>),
    /// The needle must appear at some position.
    Any(Vec<u8>),
}

impl Program {
    fn of(filter: Prefilter) -> Program {
        match filter {
            Prefilter::Masked { mask, value } => Program::All(
                (0..MAX_PLATE_LEN)
                    .filter(|p| (mask >> (8 * p)) & 0xFF == 0xFF)
                    .map(|p| (p, (value >> (8 * p)) as u8))
                    .collect(),
            ),
            Prefilter::Substring { needle, len } => {
                Program::Any((0..len).map(|j| (needle >> (8 * j)) as u8).collect())
            }
        }
    }

    /// Marks (non-zero) the plates of `cols[..][start..start + CHUNK]`
    /// that pass. Written as plain loops over fixed-size arrays so the
    /// compiler turns each into vector compares.
    fn run(&self, cols: &[Vec<u8>; MAX_PLATE_LEN], start: usize, hit: &mut [u8; CHUNK]) {
        let col = |p: usize| -> &[u8; CHUNK] {
            cols[p][start..start + CHUNK]
                .try_into()
                .expect("chunk in range")
        };
        match self {
            Program::All(tests) => {
                *hit = [1; CHUNK];
                for &(p, b) in tests {
                    let c = col(p);
                    for i in 0..CHUNK {
                        hit[i] &= (c[i] == b) as u8;
                    }
                }
            }
            Program::Any(needle) => {
                *hit = [0; CHUNK];
                for p in 0..=(MAX_PLATE_LEN - needle.len()) {
                    let mut m = [1u8; CHUNK];
                    for (j, &b) in needle.iter().enumerate() {
                        let c = col(p + j);
                        for i in 0..CHUNK {
                            m[i] &= (c[i] == b) as u8;
                        }
                    }
                    for i in 0..CHUNK {
                        hit[i] |= m[i];
                    }
                }
            }
        }
    }
}

impl PlateDictionary {
    /// Plates known (forgotten ones not counted).
    pub fn len(&self) -> usize {
        self.entries() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries in the columns, forgotten ones included (where
    /// [`Self::forget_range`] is done).
    pub(crate) fn entries(&self) -> usize {
        self.first_day.len()
    }

    /// The packed word (see [`Plate::packed`]) of entry `idx`.
    fn word(cols: &[Vec<u8>; MAX_PLATE_LEN], idx: usize) -> u64 {
        let mut bytes = [0u8; MAX_PLATE_LEN];
        for (p, b) in bytes.iter_mut().enumerate() {
            *b = cols[p][idx];
        }
        u64::from_le_bytes(bytes)
    }

    /// The entry of `word`, if it is known.
    fn find_slot(&self, word: u64) -> Option<usize> {
        self.slot_of(word).map(|pos| self.slots[pos] as usize)
    }

    /// Where in the table `word`'s entry is named.
    fn slot_of(&self, word: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash(word) as usize & mask;
        let first = word as u8;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                FORGOTTEN => i = (i + 1) & mask,
                // The first character rejects almost every other plate
                // with one load; only then assemble the whole word.
                idx if self.cols[0][idx as usize] == first
                    && Self::word(&self.cols, idx as usize) == word =>
                {
                    return Some(i)
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Makes room for one more plate: builds the table again with the
    /// plates known filling at most 35% of it, so it doubles as plates
    /// are added and stays or shrinks where forgotten slots filled it.
    fn grow(&mut self) {
        let mut size = 1024;
        while self.len() * 20 > size * 7 {
            size *= 2;
        }
        self.rehash(size);
    }

    /// Builds the slot table anew with `size` (a power of two) slots,
    /// dropping forgotten ones.
    fn rehash(&mut self, size: usize) {
        let mut slots = vec![EMPTY; size];
        let mask = size - 1;
        for idx in (0..self.entries()).filter(|&i| self.holds_plate(i)) {
            let mut i = hash(Self::word(&self.cols, idx)) as usize & mask;
            while slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = idx as u32;
        }
        self.slots = slots;
        self.forgotten_slots = 0;
    }

    /// Records that `plate` was read on `day`.
    pub fn observe(&mut self, plate: &Plate, day: i32) {
        let word = plate.packed();
        if !self.watched.is_empty() {
            if let Some(w) = self.watched.get_mut(&word) {
                w.observed = true;
            }
        }
        let d = day_offset(day);
        if let Some(idx) = self.find_slot(word) {
            self.first_day[idx] = self.first_day[idx].min(d);
            let last = self.last_day[idx];
            if d > last {
                let shift = (d - last) as u32;
                self.recent[idx] = self.recent[idx].checked_shl(shift).unwrap_or(0) | 1;
                self.last_day[idx] = d;
            } else if ((last - d) as i32) < RECENT_DAYS {
                self.recent[idx] |= 1 << (last - d);
            }
            return;
        }
        if (self.len() + self.forgotten_slots + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let (bytes, canon) = (word.to_le_bytes(), plate.canonical_packed().to_le_bytes());
        // A forgotten entry is reused; otherwise every column grows by one.
        let i = match self.free.pop() {
            Some(idx) => idx as usize,
            None => {
                self.cols.iter_mut().for_each(|c| c.push(0));
                self.canon.iter_mut().for_each(|c| c.push(0));
                self.first_day.push(0);
                self.last_day.push(0);
                self.recent.push(0);
                self.entries() - 1
            }
        };
        for p in 0..MAX_PLATE_LEN {
            self.cols[p][i] = bytes[p];
            self.canon[p][i] = canon[p];
        }
        (self.first_day[i], self.last_day[i], self.recent[i]) = (d, d, 1);
        let idx = i as u32;
        let mask = self.slots.len() - 1;
        let mut i = hash(word) as usize & mask;
        loop {
            match self.slots[i] {
                EMPTY => break,
                FORGOTTEN => {
                    self.forgotten_slots -= 1;
                    break;
                }
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = idx;
    }

    /// Whether entry `idx` holds a plate (a forgotten one is all zero,
    /// and every plate has a first character).
    fn holds_plate(&self, idx: usize) -> bool {
        self.cols[0][idx] != 0
    }

    /// Plates seen only before `first_kept_day`.
    pub fn count_before(&self, first_kept_day: i32) -> usize {
        let cut = day_offset(first_kept_day);
        (0..self.entries())
            .filter(|&i| self.last_day[i] < cut && self.holds_plate(i))
            .count()
    }

    /// Forgets what the days before `first_kept_day` taught it, once their
    /// files are purged: a plate seen only then leaves the dictionary (so
    /// no search matches or counts it; its entry is zeroed and reused by
    /// the next new plate), and a plate seen since starts on
    /// `first_kept_day`. Returns how many plates it forgot.
    pub fn forget_before(&mut self, first_kept_day: i32) -> usize {
        self.forget_range(first_kept_day, 0, usize::MAX).0
    }

    /// [`Self::forget_before`] from entry `from` on, for at most `count`
    /// entries or `count / 32` plates forgotten, whichever comes first, so
    /// a caller can release its lock between parts of about equal work (a
    /// plate forgotten costs a table probe, some 30 times a plate looked
    /// at, and the plates a purge forgets, the oldest, sit together at
    /// the start). Returns the plates forgotten and where the next part
    /// starts (at or past the end when done).
    pub fn forget_range(
        &mut self,
        first_kept_day: i32,
        from: usize,
        count: usize,
    ) -> (usize, usize) {
        let cut = day_offset(first_kept_day);
        let to = from.saturating_add(count).min(self.entries());
        let most = (count / 32).max(1);
        let mut gone = 0;
        for idx in from..to {
            if gone == most {
                return (gone, idx);
            }
            if !self.holds_plate(idx) {
                continue;
            }
            if self.last_day[idx] >= cut {
                self.first_day[idx] = self.first_day[idx].max(cut);
                continue;
            }
            self.clear_entry(idx);
            gone += 1;
        }
        (gone, to.max(from))
    }

    /// Starts noting whether `plate` is observed, so a caller can look
    /// for its reads without holding the lock: ingest commits a read
    /// before it observes the plate, so a read the look missed is one
    /// observed since (or one observed after the caller lets go).
    pub fn watch(&mut self, plate: &Plate) {
        self.watched.entry(plate.packed()).or_default().watchers += 1;
    }

    /// Stops one [`Self::watch`] of `plate`; returns whether the plate was
    /// observed while it was watched (by this watcher or another).
    pub fn unwatch(&mut self, plate: &Plate) -> bool {
        let word = plate.packed();
        let Some(w) = self.watched.get_mut(&word) else {
            return false;
        };
        let observed = w.observed;
        w.watchers = w.watchers.saturating_sub(1);
        if w.watchers == 0 {
            self.watched.remove(&word);
        }
        observed
    }

    /// Forgets one plate, whatever days it was seen on: a correction
    /// moved its last read to another plate. Returns whether it was known.
    pub fn forget(&mut self, plate: &Plate) -> bool {
        match self.find_slot(plate.packed()) {
            Some(idx) => {
                self.clear_entry(idx);
                true
            }
            None => false,
        }
    }

    /// Zeroes entry `idx` (so no scan matches it), marks its slot
    /// forgotten and offers the entry to the next new plate.
    fn clear_entry(&mut self, idx: usize) {
        if let Some(pos) = self.slot_of(Self::word(&self.cols, idx)) {
            self.slots[pos] = FORGOTTEN;
            self.forgotten_slots += 1;
        }
        for p in 0..MAX_PLATE_LEN {
            self.cols[p][idx] = 0;
            self.canon[p][idx] = 0;
        }
        (self.first_day[idx], self.last_day[idx], self.recent[idx]) = (0, 0, 0);
        self.free.push(idx as u32);
    }

    fn span(&self, idx: usize) -> Option<PlateSpan> {
        Some(PlateSpan {
            plate: Plate::from_packed(Self::word(&self.cols, idx))?,
            first_day: self.first_day[idx] as i32 + DAY_ORIGIN,
            last_day: self.last_day[idx] as i32 + DAY_ORIGIN,
            recent: self.recent[idx],
        })
    }

    /// The entry of one plate, if it was ever read.
    pub fn get(&self, plate: &Plate) -> Option<PlateSpan> {
        self.find_slot(plate.packed()).and_then(|i| self.span(i))
    }

    /// Scans entries `[from, to)`, appending matches to `out` and stopping
    /// once it holds more than `max`.
    fn scan_range(
        &self,
        pattern: &PlatePattern,
        from: usize,
        to: usize,
        max: usize,
        out: &mut Vec<u32>,
    ) {
        let cols = if pattern.is_fuzzy() {
            &self.canon
        } else {
            &self.cols
        };
        let program = Program::of(pattern.prefilter());
        let exact = pattern.prefilter_is_exact();
        let check = |idx: usize| pattern.matches_word(Self::word(cols, idx));
        let verify = |idx: usize| if exact { true } else { check(idx) };
        // The ragged end has no prefilter run, so it is always checked.
        let mut hit = [0u8; CHUNK];
        let mut start = from;
        while start < to {
            if start + CHUNK <= to && start + CHUNK <= self.entries() {
                program.run(cols, start, &mut hit);
                for (i, h) in hit.iter().enumerate() {
                    if *h != 0 && verify(start + i) {
                        out.push((start + i) as u32);
                    }
                }
                start += CHUNK;
            } else {
                // The ragged end: one plate at a time.
                if check(start) {
                    out.push(start as u32);
                }
                start += 1;
            }
            if out.len() > max {
                return;
            }
        }
    }

    /// Every plate matching `pattern`, up to `limit + 1` of them (so the
    /// caller can tell "more than limit"). Large dictionaries are scanned
    /// on all cores.
    pub fn matching(&self, pattern: &PlatePattern, limit: usize) -> Vec<PlateSpan> {
        let n = self.entries();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut hits: Vec<u32> = Vec::new();
        if threads > 1 && n > 1 << 20 {
            // Chunk-aligned shares, one per core.
            let share = n.div_ceil(threads).div_ceil(CHUNK) * CHUNK;
            let parts: Vec<Vec<u32>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (from, to) = ((t * share).min(n), ((t + 1) * share).min(n));
                        s.spawn(move || {
                            let mut out = Vec::new();
                            self.scan_range(pattern, from, to, limit, &mut out);
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
            self.scan_range(pattern, 0, n, limit, &mut hits);
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
    fn days_without_reads_are_skipped() {
        let mut d = PlateDictionary::default();
        let p = plate("7ABC123");
        // Seen out of order, as late uploads arrive.
        for day in [20_010, 20_003, 20_020, 19_950, 20_019] {
            d.observe(&p, day);
        }
        let s = d.get(&p).unwrap();
        for day in [20_020, 20_019, 20_010, 20_003, 19_950] {
            assert!(s.maybe_on(day), "{day}");
        }
        for day in [20_021, 20_018, 20_011, 20_004, 19_949] {
            assert!(!s.maybe_on(day), "{day}");
        }
        // Older than the 32 days tracked: not known, so probed.
        assert!(s.maybe_on(19_960));
        // A jump of more than 32 days forgets the window.
        d.observe(&p, 20_100);
        let s = d.get(&p).unwrap();
        assert!(s.maybe_on(20_100) && !s.maybe_on(20_099) && !s.maybe_on(20_080));
        assert!(s.maybe_on(20_020), "beyond the window: probed");
    }

    /// R6.1: plates seen only on purged days leave; the rest are still
    /// found by exact lookup and by scans, and new plates still go in.
    #[test]
    fn forgetting_purged_days_drops_their_plates_and_keeps_the_rest() {
        let mut d = PlateDictionary::default();
        for i in 0..6000 {
            // Plate Pi seen on day 20_000 + i % 10.
            d.observe(&plate(&format!("P{i}")), 20_000 + i % 10);
        }
        d.observe(&plate("P0"), 20_009);
        assert_eq!(d.slots.len(), 16_384, "doubled from 1024 as plates came");
        assert_eq!(d.count_before(20_005), 3000 - 1);
        assert_eq!(d.forget_before(20_005), 2999);
        assert_eq!(d.len(), 3001);
        for i in 0..6000 {
            let got = d.get(&plate(&format!("P{i}")));
            assert_eq!(got.is_some(), i == 0 || i % 10 >= 5, "P{i}");
        }
        // P0 was seen before and after: it now starts on the first kept day.
        let s = d.get(&plate("P0")).unwrap();
        assert_eq!((s.first_day, s.last_day), (20_005, 20_009));
        assert!(!s.maybe_on(20_000));
        let scanned = d.matching(&PlatePattern::parse("P1*", false).unwrap(), 10_000);
        let expected = (0..6000)
            .filter(|i| i % 10 >= 5 && i.to_string().starts_with('1'))
            .count();
        assert_eq!(scanned.len(), expected);
        assert!(scanned.iter().all(|s| s.first_day >= 20_005));
        // Forgetting again finds nothing more; new plates go in and grow it.
        assert_eq!(d.forget_before(20_005), 0);
        for i in 0..5000 {
            d.observe(&plate(&format!("Q{i}")), 20_010);
        }
        assert_eq!(d.len(), 8001);
        assert_eq!(d.entries(), 8001, "new plates took the forgotten entries");
        assert!(d.get(&plate("Q4999")).is_some() && d.get(&plate("P9")).is_some());
        let q = d.matching(&PlatePattern::parse("Q49*", false).unwrap(), 10_000);
        assert_eq!(q.len(), 111, "Q49, Q490..Q499, Q4900..Q4999");
        // Forgetting everything leaves an empty, usable dictionary.
        assert_eq!(d.forget_before(20_011), 8001);
        assert!(d.is_empty() && d.get(&plate("P9")).is_none());
        assert!(d
            .matching(&PlatePattern::parse("*Q4*", false).unwrap(), 10_000)
            .is_empty());
        // The table is rebuilt at the size the plates need once it fills
        // with forgotten slots.
        for i in 0..9000 {
            d.observe(&plate(&format!("R{i}")), 20_012);
        }
        assert_eq!(d.len(), 9000);
        assert!(d.slots.len() <= 16_384, "{}", d.slots.len());
        assert!((0..9000).all(|i| d.get(&plate(&format!("R{i}"))).is_some()));
        assert_eq!(d.get(&plate("R1")).unwrap().first_day, 20_012);
    }

    #[test]
    fn a_watched_plate_tells_whether_it_was_observed() {
        let mut d = PlateDictionary::default();
        let (a, b) = (plate("WATCH1"), plate("OTHER2"));
        d.observe(&a, 20_000);
        d.watch(&a);
        d.observe(&b, 20_001);
        assert!(!d.unwatch(&a), "another plate does not count");
        d.watch(&a);
        d.watch(&a);
        d.observe(&a, 20_000);
        assert!(d.unwatch(&a), "observed, even on a day it had");
        assert!(d.unwatch(&a), "the second watcher is told too");
        assert!(d.watched.is_empty(), "nothing left once all let go");
        assert!(!d.unwatch(&a), "an unwatched plate");
        d.watch(&b);
        assert!(!d.unwatch(&b));
    }

    /// Forgetting and reusing entries, many rounds, against a plain map.
    #[test]
    fn forgetting_and_reuse_agree_with_a_map() {
        use std::collections::BTreeMap;
        let mut d = PlateDictionary::default();
        let mut model: BTreeMap<String, (i32, i32)> = BTreeMap::new();
        let mut x = 99u64;
        let mut cut = 20_000;
        let mut serial = 0;
        for round in 0..40 {
            for _ in 0..500 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let text = format!("K{}", (x >> 33) % 3000);
                let day = cut + ((x >> 20) % 20) as i32;
                d.observe(&plate(&text), day);
                let e = model.entry(text).or_insert((day, day));
                *e = (e.0.min(day), e.1.max(day));
            }
            cut += 3;
            let before = model.len();
            model.retain(|_, e| e.1 >= cut);
            for e in model.values_mut() {
                e.0 = e.0.max(cut);
            }
            // Forgotten a part at a time, with new plates (as ingest
            // adds them between the purge's holds of the lock) taking
            // freed entries and growing the table meanwhile.
            let (mut gone, mut from, mut fresh) = (0, 0, 0);
            while from < d.entries() {
                let (g, next) = d.forget_range(cut, from, 700);
                gone += g;
                from = next;
                for _ in 0..5 {
                    let text = format!("N{serial}");
                    serial += 1;
                    fresh += 1;
                    d.observe(&plate(&text), cut);
                    model.insert(text, (cut, cut));
                }
            }
            assert_eq!(gone, before - (model.len() - fresh), "round {round}");
            // A few plates leave one at a time, as after a correction;
            // some were already gone or never seen.
            for _ in 0..20 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let text = format!("K{}", (x >> 33) % 3000);
                assert_eq!(
                    d.forget(&plate(&text)),
                    model.remove(&text).is_some(),
                    "{text}, round {round}"
                );
            }
            assert_eq!(d.len(), model.len());
            for text in model.keys().chain(
                (0..3000)
                    .map(|i| format!("K{i}"))
                    .collect::<Vec<_>>()
                    .iter(),
            ) {
                let got = d.get(&plate(text)).map(|s| (s.first_day, s.last_day));
                assert_eq!(got, model.get(text).copied(), "{text}, round {round}");
            }
            let mut scanned: Vec<String> = d
                .matching(&PlatePattern::parse("K1*", false).unwrap(), 10_000)
                .iter()
                .map(|s| s.plate.to_string())
                .collect();
            scanned.sort();
            let expected: Vec<&String> = model.keys().filter(|k| k.starts_with("K1")).collect();
            assert_eq!(
                scanned.iter().collect::<Vec<_>>(),
                expected,
                "round {round}"
            );
        }
        assert!(
            d.entries() <= model.len() + 3000,
            "entries are reused: {} for {} plates",
            d.entries(),
            model.len()
        );
    }

    #[test]
    fn column_scan_agrees_with_the_pattern_on_many_plates() {
        let mut d = PlateDictionary::default();
        let mut all = Vec::new();
        let mut x = 12345u64;
        for i in 0..5_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 5 + (x >> 60) as usize % 4;
            let text: String = (0..len)
                .map(|k| b"0O8B5S1IAB7KX24"[((x >> (k * 5)) % 15) as usize] as char)
                .collect();
            let p = plate(&text);
            d.observe(&p, 20_000 + i % 3);
            all.push(p);
        }
        all.sort();
        all.dedup();
        for pat in [
            "7K*", "*KX*", "*0B*", "?O8*", "B?5*", "*S1", "O8B5S", "*AB?2*", "*B*5*",
        ] {
            for fuzzy in [false, true] {
                let p = PlatePattern::parse(pat, fuzzy).unwrap();
                let mut got: Vec<Plate> = d
                    .matching(&p, usize::MAX - 1)
                    .iter()
                    .map(|s| s.plate)
                    .collect();
                got.sort();
                let want: Vec<Plate> = all.iter().copied().filter(|q| p.matches(q)).collect();
                assert_eq!(got, want, "{pat} fuzzy={fuzzy}");
            }
        }
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
