//! The plate index of a day that is still being written, kept in memory.
//!
//! Why not SQLite's index: reads arrive in time order but plates in random
//! order, so every batch would dirty hundreds of index pages scattered over
//! the day's B-tree, and each commit would write them all to the log — at
//! 100M reads that write amplification caps ingest far below 100K reads/s.
//! Instead the day's table is append-only while it is open, this index
//! answers plate lookups, and the SQLite index is built in one sorted pass
//! when the day is sealed. After a restart it is rebuilt by one scan of
//! the day's table.
//!
//! Layout: per plate, a chain of entries newest first (`heads` gives the
//! first, `next` the rest): 8 bytes per read plus about 18 per plate.
//! Canvasses use the rowids of each place ([`crate::canvass_index`]
//! groups): 4 more bytes per read.

use std::collections::HashMap;

const END: u32 = u32::MAX;

#[derive(Default)]
pub(crate) struct OpenIndex {
    heads: HashMap<i64, u32>,
    rowids: Vec<u32>,
    next: Vec<u32>,
    groups: HashMap<i64, Vec<u32>>,
}

impl OpenIndex {
    pub(crate) fn add(&mut self, code: i64, rowid: i64, group: i64) {
        self.groups.entry(group).or_default().push(rowid as u32);
        let entry = self.rowids.len() as u32;
        let prev = self.heads.insert(code, entry).unwrap_or(END);
        // Rowids of a day stay below 2^31 (see `partition`).
        self.rowids.push(rowid as u32);
        self.next.push(prev);
    }

    /// The plate's rowids within `[lo, hi]`, highest (newest) first.
    pub(crate) fn rowids(&self, code: i64, lo: i64, hi: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut at = self.heads.get(&code).copied().unwrap_or(END);
        while at != END {
            let r = self.rowids[at as usize] as i64;
            if (lo..=hi).contains(&r) {
                out.push(r);
            }
            at = self.next[at as usize];
        }
        out.sort_unstable_by_key(|r| std::cmp::Reverse(*r));
        out
    }

    /// The rowids of the groups' reads within `[lo, hi]`, in no order.
    pub(crate) fn group_rowids(&self, groups: &[i64], lo: i64, hi: i64) -> Vec<i64> {
        groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten()
            .map(|&r| r as i64)
            .filter(|r| (lo..=hi).contains(r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_return_in_range_newest_first() {
        let mut ix = OpenIndex::default();
        for (code, rowid) in [(7, 100), (8, 150), (7, 300), (7, 200), (9, 1)] {
            ix.add(code, rowid, code % 2);
        }
        assert_eq!(ix.rowids(7, 0, 1000), [300, 200, 100]);
        assert_eq!(ix.rowids(7, 150, 250), [200]);
        assert!(ix.rowids(42, 0, 1000).is_empty());
        let mut odd = ix.group_rowids(&[1], 0, 250);
        odd.sort_unstable();
        assert_eq!(odd, [1, 100, 200]);
        assert_eq!(ix.group_rowids(&[0, 5], 0, 1000), [150]);
    }
}
