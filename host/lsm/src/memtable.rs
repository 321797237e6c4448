//! The in-memory write buffer: an ordered set of internal keys with their values.
//!
//! Writers insert while holding the engine's commit lock (so there is one writer at a time)
//! and take this memtable's write lock once per batch; readers take the read lock for a single
//! lookup or a chunk of a scan. Each entry is one allocation holding the internal key and the
//! value, and lookups borrow the probe key instead of allocating one. (Writers are serialized
//! by the commit lock anyway, so a lock-free skiplist buys little; the first version used
//! crossbeam-skiplist.) Every version of a key is kept (keys carry their sequence number),
//! so a reader at snapshot `s` sees exactly the writes with sequence <= `s`. A memtable is tied
//! to the write-ahead log holding the same writes; once it is flushed that log can go.

use crate::coding::{KIND_PUT, compare_internal, put_internal_key, split_internal_key};
use parking_lot::RwLock;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AO};

/// An encoded internal key, ordered by [`compare_internal`].
#[derive(Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct IKey([u8]);

impl IKey {
    pub fn new(b: &[u8]) -> &IKey {
        // SAFETY: `IKey` is `repr(transparent)` over `[u8]`.
        unsafe { &*(b as *const [u8] as *const IKey) }
    }
}

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&self.0, &other.0)
    }
}
impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One entry: `internal key || value` in a single allocation.
#[derive(Debug)]
struct Entry {
    data: Box<[u8]>,
    key_len: u32,
}

impl Entry {
    fn key(&self) -> &IKey {
        IKey::new(&self.data[..self.key_len as usize])
    }
    fn value(&self) -> &[u8] {
        &self.data[self.key_len as usize..]
    }
}

impl Borrow<IKey> for Entry {
    fn borrow(&self) -> &IKey {
        self.key()
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Per-entry bookkeeping charged on top of key and value bytes.
const ENTRY_OVERHEAD: usize = 48;

/// One memtable.
pub struct Memtable {
    set: RwLock<BTreeSet<Entry>>,
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

/// A batch of inserts applied under one lock acquisition.
pub struct Inserter<'a> {
    set: parking_lot::RwLockWriteGuard<'a, BTreeSet<Entry>>,
    mem: &'a Memtable,
    added: usize,
    max_seq: u64,
}

impl Inserter<'_> {
    pub fn insert(&mut self, user_key: &[u8], seq: u64, kind: u8, value: &[u8]) {
        let mut data = Vec::with_capacity(user_key.len() + 8 + value.len());
        put_internal_key(&mut data, user_key, seq, kind);
        data.extend_from_slice(value);
        self.added += data.len() + ENTRY_OVERHEAD;
        self.max_seq = self.max_seq.max(seq);
        self.set.insert(Entry {
            data: data.into_boxed_slice(),
            key_len: (user_key.len() + 8) as u32,
        });
    }
}

impl Drop for Inserter<'_> {
    fn drop(&mut self) {
        self.mem.size.fetch_add(self.added, AO::Relaxed);
        self.mem.max_seq.fetch_max(self.max_seq, AO::Relaxed);
    }
}

impl Memtable {
    pub fn new(wal_number: u64) -> Memtable {
        Memtable {
            set: RwLock::new(BTreeSet::new()),
            size: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            wal_number,
        }
    }

    /// Starts a group of inserts (holds the write lock until dropped).
    pub fn inserter(&self) -> Inserter<'_> {
        Inserter {
            set: self.set.write(),
            mem: self,
            added: 0,
            max_seq: 0,
        }
    }

    #[cfg(test)]
    pub fn insert(&self, user_key: &[u8], seq: u64, kind: u8, value: &[u8]) {
        self.inserter().insert(user_key, seq, kind, value);
    }

    /// Approximate memory use in bytes.
    pub fn size(&self) -> usize {
        self.size.load(AO::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.set.read().is_empty()
    }

    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(AO::Relaxed)
    }

    /// Newest version of `user_key` with sequence <= `seq`.
    pub fn get(&self, user_key: &[u8], seq: u64) -> Lookup {
        // An empty memtable (the active one on a read-mostly store) is skipped without taking
        // its lock, whose word every reader would otherwise write. A write this reader's
        // sequence number covers was counted in `size` before that number was published.
        if self.size() == 0 {
            return Lookup::Absent;
        }
        let mut probe = Vec::with_capacity(user_key.len() + 8);
        put_internal_key(&mut probe, user_key, seq, KIND_PUT);
        let set = self.set.read();
        let mut r = set.range::<IKey, _>((Bound::Included(IKey::new(&probe)), Bound::Unbounded));
        match r.next() {
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
        let set = self.set.read();
        let from = from.map(IKey::new);
        for e in set.range::<IKey, _>((from, Bound::Unbounded)).take(limit) {
            out.push((e.key().0.to_vec(), e.value().to_vec()));
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
