//! Versions and the manifest: which table files make up the database, at which level.
//!
//! A [`Version`] is an immutable list of tables per level; every flush or compaction produces
//! a new one by applying a [`VersionEdit`]. Edits are appended to the manifest (a checksummed
//! record log, see `framing`) and fsynced *before* the new version is installed, so the files
//! a version names are always durable first and a crash leaves either the old or the new set.
//!
//! Edit payload: a sequence of tagged fields (tags are varints):
//! `1 log_number` · `2 next_file` · `3 last_seq` ·
//! `4 add: level, id, size, entries, smallest (len-prefixed), largest (len-prefixed)` ·
//! `5 delete: level, id`.

use crate::coding::{Reader, compare_internal, put_len_prefixed, put_varint, user_key};
use crate::error::Result;
use crate::iter::InternalIter;
use crate::memtable::Lookup;
use crate::table::{Table, TableIter};
use std::sync::Arc;

pub const NUM_LEVELS: usize = 7;

/// What the manifest records about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub level: u32,
    pub id: u64,
    pub size: u64,
    pub entries: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
}

/// One atomic change to the set of tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    pub log_number: Option<u64>,
    pub next_file: Option<u64>,
    pub last_seq: Option<u64>,
    pub added: Vec<FileMeta>,
    pub deleted: Vec<(u32, u64)>,
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, v) in [
            (1, self.log_number),
            (2, self.next_file),
            (3, self.last_seq),
        ] {
            if let Some(v) = v {
                put_varint(&mut out, tag);
                put_varint(&mut out, v);
            }
        }
        for f in &self.added {
            put_varint(&mut out, 4);
            put_varint(&mut out, f.level as u64);
            put_varint(&mut out, f.id);
            put_varint(&mut out, f.size);
            put_varint(&mut out, f.entries);
            put_len_prefixed(&mut out, &f.smallest);
            put_len_prefixed(&mut out, &f.largest);
        }
        for (level, id) in &self.deleted {
            put_varint(&mut out, 5);
            put_varint(&mut out, *level as u64);
            put_varint(&mut out, *id);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<VersionEdit, String> {
        let mut r = Reader::new(b);
        let mut e = VersionEdit::default();
        let short = || "truncated field".to_string();
        while !r.is_empty() {
            let tag = r.varint().ok_or_else(short)?;
            match tag {
                1 => e.log_number = Some(r.varint().ok_or_else(short)?),
                2 => e.next_file = Some(r.varint().ok_or_else(short)?),
                3 => e.last_seq = Some(r.varint().ok_or_else(short)?),
                4 => {
                    let level = r.varint().ok_or_else(short)?;
                    if level as usize >= NUM_LEVELS {
                        return Err(format!("level {level} out of range"));
                    }
                    let id = r.varint().ok_or_else(short)?;
                    let size = r.varint().ok_or_else(short)?;
                    let entries = r.varint().ok_or_else(short)?;
                    let smallest = r.len_prefixed().ok_or_else(short)?.to_vec();
                    let largest = r.len_prefixed().ok_or_else(short)?.to_vec();
                    if smallest.len() < 8 || largest.len() < 8 {
                        return Err(format!("table {id}: key range keys lack trailers"));
                    }
                    e.added.push(FileMeta {
                        level: level as u32,
                        id,
                        size,
                        entries,
                        smallest,
                        largest,
                    });
                }
                5 => {
                    let level = r.varint().ok_or_else(short)?;
                    if level as usize >= NUM_LEVELS {
                        return Err(format!("level {level} out of range"));
                    }
                    let id = r.varint().ok_or_else(short)?;
                    e.deleted.push((level as u32, id));
                }
                t => return Err(format!("unknown tag {t}")),
            }
        }
        Ok(e)
    }
}

/// A table in a version: its manifest record and its open reader.
#[derive(Debug)]
pub struct TableFile {
    pub meta: FileMeta,
    pub table: Arc<Table>,
}

impl TableFile {
    pub fn user_smallest(&self) -> &[u8] {
        user_key(&self.meta.smallest)
    }
    pub fn user_largest(&self) -> &[u8] {
        user_key(&self.meta.largest)
    }
    pub fn contains(&self, k: &[u8]) -> bool {
        self.user_smallest() <= k && k <= self.user_largest()
    }
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        !(self.user_largest() < lo || self.user_smallest() > hi)
    }
}

/// An immutable set of tables. Level 0 is ordered newest first and may overlap; deeper levels
/// are sorted by key and do not overlap.
#[derive(Debug, Default, Clone)]
pub struct Version {
    pub levels: Vec<Vec<Arc<TableFile>>>,
}

impl Version {
    pub fn empty() -> Version {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
        }
    }

    /// Applies an edit (added tables come with their readers).
    pub fn apply(&self, deleted: &[(u32, u64)], added: Vec<Arc<TableFile>>) -> Version {
        let mut v = self.clone();
        for (level, id) in deleted {
            v.levels[*level as usize].retain(|t| t.meta.id != *id);
        }
        for t in added {
            v.levels[t.meta.level as usize].push(t);
        }
        v.levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta.id));
        for l in v.levels.iter_mut().skip(1) {
            l.sort_by(|a, b| compare_internal(&a.meta.smallest, &b.meta.smallest));
        }
        v
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta.size).sum()
    }

    pub fn all_tables(&self) -> impl Iterator<Item = &Arc<TableFile>> {
        self.levels.iter().flatten()
    }

    /// Point lookup through the levels, newest data first. With `cache_only`, stops with
    /// [`Lookup::Uncached`] where a block would have to be read from its file.
    pub fn get(&self, key: &[u8], seq: u64, cache_only: bool) -> Result<Lookup> {
        let hash = crate::bloom::key_hash(key);
        let target = crate::coding::internal_key(key, seq, crate::coding::KIND_PUT);
        let mut scratch = Vec::new();
        for t in &self.levels[0] {
            if t.contains(key) {
                match t.table.get(key, hash, &target, &mut scratch, cache_only)? {
                    Lookup::Absent => {}
                    found => return Ok(found),
                }
            }
        }
        for level in &self.levels[1..] {
            let i = level.partition_point(|t| t.user_largest() < key);
            if let Some(t) = level.get(i)
                && t.user_smallest() <= key
            {
                match t.table.get(key, hash, &target, &mut scratch, cache_only)? {
                    Lookup::Absent => {}
                    found => return Ok(found),
                }
            }
        }
        Ok(Lookup::Absent)
    }

    /// Cursors over every table that may hold keys in `[lo, hi]` (None = unbounded).
    pub fn iters(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Vec<Box<dyn InternalIter>> {
        let mut out: Vec<Box<dyn InternalIter>> = Vec::new();
        for t in self.all_tables() {
            let below = hi.is_some_and(|h| t.user_smallest() > h);
            let above = lo.is_some_and(|l| t.user_largest() < l);
            if !below && !above {
                out.push(Box::new(TableIter::new(t.table.clone(), true)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_round_trip() {
        let e = VersionEdit {
            log_number: Some(4),
            next_file: Some(9),
            last_seq: Some(1234),
            added: vec![FileMeta {
                level: 1,
                id: 7,
                size: 100,
                entries: 3,
                smallest: vec![b'a'; 9],
                largest: vec![b'z'; 9],
            }],
            deleted: vec![(0, 5)],
        };
        assert_eq!(VersionEdit::decode(&e.encode()).unwrap(), e);
    }
}
