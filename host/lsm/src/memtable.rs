//! The in-memory write buffer: an ordered set of internal keys with their values.
//!
//! A lock-free skiplist (`crossbeam-skiplist`): writers insert while holding the engine's
//! commit lock (so there is one writer at a time), readers never lock anything. (A `BTreeSet`
//! under a read-write lock was used before: writers are serialized anyway, but every reader
//! wrote the lock word, and a reader waited whenever the writer held the lock, for a whole
//! scheduler time slice when the writer was preempted inside it; profiled with a writer
//! running, readers spent their waits in `lock_shared_slow` and the writer in
//! `wait_for_readers`.) Each entry holds the internal key and the value in one allocation.
//! Every version of a key is kept (keys carry their sequence number),
//! so a reader at snapshot `s` sees exactly the writes with sequence <= `s`. A memtable is tied
//! to the write-ahead log holding the same writes; once it is flushed that log can go.

use crate::coding::{KIND_PUT, compare_internal, put_internal_key, split_internal_key};
use crossbeam_epoch::Guard;
use crossbeam_skiplist::base::SkipList;
use std::borrow::Borrow;
use std::cmp::Ordering;
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
    set: SkipList<Entry, ()>,
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

/// A batch of inserts (the caller guarantees one inserter at a time: the commit lock).
pub struct Inserter<'a> {
    guard: Guard,
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
        let entry = Entry {
            data: data.into_boxed_slice(),
            key_len: (user_key.len() + 8) as u32,
        };
        self.mem
            .set
            .insert(entry, (), &self.guard)
            .release(&self.guard);
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
            set: SkipList::new(crossbeam_epoch::default_collector().clone()),
            size: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            wal_number,
        }
    }

    /// Starts a group of inserts; their bytes are counted in `size` when it is dropped.
    pub fn inserter(&self) -> Inserter<'_> {
        Inserter {
            guard: crossbeam_epoch::pin(),
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
        self.set.is_empty()
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
        let guard = crossbeam_epoch::pin();
        match self
            .set
            .lower_bound::<IKey>(Bound::Included(IKey::new(&probe)), &guard)
        {
            Some(e) => match split_internal_key(&e.key().key().0) {
                Some((u, _, kind)) if u == user_key => {
                    if kind == KIND_PUT {
                        Lookup::Found(e.key().value().to_vec())
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
    pub fn scan(&self, from: Bound<&[u8]>, limit: usize, out: &mut Copied) {
        let guard = crossbeam_epoch::pin();
        let from = from.map(IKey::new);
        for e in self
            .set
            .range::<IKey, _>((from, Bound::Unbounded), &guard)
            .take(limit)
        {
            out.push(&e.key().key().0, e.key().value());
        }
    }
}

/// Entries copied out of a memtable, keys and values back to back in one buffer (no
/// allocation per entry).
#[derive(Default)]
pub struct Copied {
    bytes: Vec<u8>,
    /// Per entry: end of its key, end of its value (its key starts where the previous value
    /// ends).
    ends: Vec<(usize, usize)>,
}

impl Copied {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let k = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((k, self.bytes.len()));
    }
    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1].1 }
    }
    pub fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.start(i)..self.ends[i].0]
    }
    pub fn value(&self, i: usize) -> &[u8] {
        &self.bytes[self.ends[i].0..self.ends[i].1]
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
