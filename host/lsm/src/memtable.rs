//! The in-memory write buffer: a lock-free skiplist (crossbeam) of internal keys.
//!
//! Writers insert under the engine's commit lock; readers run concurrently without locks.
//! Every version of a key is kept (keys carry their sequence number), so a reader at
//! snapshot `s` sees exactly the writes with sequence <= `s`. A memtable is tied to the
//! write-ahead log that holds the same writes; once it is flushed to a table that log can go.

use crate::coding::{KIND_PUT, compare_internal, internal_key, split_internal_key};
use crossbeam_skiplist::SkipMap;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AO};

/// An encoded internal key ordered by [`compare_internal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemKey(pub Box<[u8]>);

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&self.0, &other.0)
    }
}
impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Per-entry bookkeeping charged on top of key and value bytes.
const ENTRY_OVERHEAD: usize = 64;

/// One memtable.
pub struct Memtable {
    map: SkipMap<MemKey, Box<[u8]>>,
    size: AtomicUsize,
    max_seq: AtomicU64,
    /// Number of the write-ahead log holding these writes.
    pub wal_number: u64,
}

/// Result of a point lookup in one layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Vec<u8>),
    Deleted,
    Absent,
}

impl Memtable {
    pub fn new(wal_number: u64) -> Memtable {
        Memtable {
            map: SkipMap::new(),
            size: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            wal_number,
        }
    }

    pub fn insert(&self, user_key: &[u8], seq: u64, kind: u8, value: &[u8]) {
        let k = internal_key(user_key, seq, kind);
        self.size
            .fetch_add(k.len() + value.len() + ENTRY_OVERHEAD, AO::Relaxed);
        self.max_seq.fetch_max(seq, AO::Relaxed);
        self.map.insert(MemKey(k.into_boxed_slice()), value.into());
    }

    /// Approximate memory use in bytes.
    pub fn size(&self) -> usize {
        self.size.load(AO::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(AO::Relaxed)
    }

    /// Newest version of `user_key` with sequence <= `seq`.
    pub fn get(&self, user_key: &[u8], seq: u64) -> Lookup {
        let target = MemKey(internal_key(user_key, seq, KIND_PUT).into_boxed_slice());
        match self.map.lower_bound(Bound::Included(&target)) {
            Some(e) => match split_internal_key(&e.key().0) {
                Some((u, _, kind)) if u == user_key => {
                    if kind == KIND_PUT {
                        Lookup::Found(e.value().to_vec())
                    } else {
                        Lookup::Deleted
                    }
                }
                _ => Lookup::Absent,
            },
            None => Lookup::Absent,
        }
    }

    /// Copies up to `limit` entries at or after `from` (an internal key) into `out`.
    pub fn scan(&self, from: Bound<&[u8]>, limit: usize, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let key;
        let bound = match from {
            Bound::Included(k) => {
                key = MemKey(k.into());
                Bound::Included(&key)
            }
            Bound::Excluded(k) => {
                key = MemKey(k.into());
                Bound::Excluded(&key)
            }
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut e = self.map.lower_bound(bound);
        while let Some(entry) = e {
            if out.len() >= limit {
                break;
            }
            out.push((entry.key().0.to_vec(), entry.value().to_vec()));
            e = entry.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::KIND_DELETE;

    #[test]
    fn versions_by_seq() {
        let m = Memtable::new(1);
        m.insert(b"k", 1, KIND_PUT, b"v1");
        m.insert(b"k", 3, KIND_DELETE, b"");
        m.insert(b"k", 5, KIND_PUT, b"v5");
        m.insert(b"j", 9, KIND_PUT, b"j");
        assert_eq!(m.get(b"k", 0), Lookup::Absent);
        assert_eq!(m.get(b"k", 2), Lookup::Found(b"v1".to_vec()));
        assert_eq!(m.get(b"k", 4), Lookup::Deleted);
        assert_eq!(m.get(b"k", 100), Lookup::Found(b"v5".to_vec()));
        assert_eq!(m.get(b"kk", 100), Lookup::Absent);
    }
}
