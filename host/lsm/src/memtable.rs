//! The in-memory write buffer: an ordered set of internal keys with their values.
//!
//! A skiplist whose nodes live in an arena owned by the memtable, with the internal key and
//! the value stored inline in the node (the layout of RocksDB's `InlineSkipList`). One writer
//! at a time inserts (the engine's commit lock, and the memtable's own writer mutex which is
//! therefore never contended); readers never lock anything and never write shared memory.
//! An insert is one bump allocation, copying key and value into it, and linking it with one
//! release store per level; a comparison reads only the node's own bytes.
//!
//! History: a `BTreeSet` under a read-write lock made readers wait whenever the writer held
//! the lock (a whole time slice when the writer was preempted inside it); `crossbeam-skiplist`
//! fixed that but halved insert throughput (reference counts, epoch pinning, a separate
//! allocation per entry and twice the pointer chasing per level). Nodes are never removed or
//! moved: the memory is freed when the memtable is dropped, which happens only after the last
//! `Arc` to it (super versions, iterators, the flush) is gone, so no reader can still see it.
//!
//! Every version of a key is kept (keys carry their sequence number), so a reader at snapshot
//! `s` sees exactly the writes with sequence <= `s`. A memtable is tied to the write-ahead log
//! holding the same writes; once it is flushed that log can go.

use crate::coding::{KIND_PUT, compare_internal};
use crate::padded::Padded;
use parking_lot::{Mutex, MutexGuard};
use std::cmp::Ordering;
use std::mem::MaybeUninit;
use std::ops::Bound;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering as AO};

/// Per-entry bookkeeping charged on top of key and value bytes (unchanged from the earlier
/// memtables so that the flush cadence stays the same; an arena node actually costs 8 bytes
/// of header, 8 per level (1.33 on average) and padding to 8).
const ENTRY_OVERHEAD: usize = 48;

/// Tallest tower. With branching 4, 12 levels serve 4^12 = 16M entries without degrading; a
/// 64 MiB memtable of small entries holds well under one million.
const MAX_HEIGHT: usize = 12;

/// Arena blocks start small (tests use 4 KiB memtables, and many memtables may be alive) and
/// double up to this size.
const FIRST_BLOCK: usize = 4 << 10;
const MAX_BLOCK: usize = 1 << 20;

/// Memory the nodes live in: blocks that are only ever appended to and are freed together
/// when the arena is dropped. Only the writer touches this (behind `Memtable::writer`).
struct Arena {
    /// Every block, as returned by `Box::into_raw`; freed in `drop`.
    blocks: Vec<*mut [MaybeUninit<u64>]>,
    /// Next free byte of the current block and the bytes left in it.
    cur: *mut u8,
    left: usize,
    next_block: usize,
}

impl Arena {
    fn new() -> Arena {
        Arena {
            blocks: Vec::new(),
            cur: ptr::null_mut(),
            left: 0,
            next_block: FIRST_BLOCK,
        }
    }

    /// A fresh block of at least `bytes` bytes, 8-aligned.
    fn block(&mut self, bytes: usize) -> *mut u8 {
        let b: Box<[MaybeUninit<u64>]> = Box::new_uninit_slice(bytes.div_ceil(8));
        let raw = Box::into_raw(b);
        self.blocks.push(raw);
        raw as *mut u8
    }

    /// `bytes` (a multiple of 8) of uninitialized, 8-aligned memory that stays valid and in
    /// place until the arena is dropped.
    fn alloc(&mut self, bytes: usize) -> *mut u8 {
        debug_assert!(bytes.is_multiple_of(8));
        if bytes > self.left {
            // A large entry gets a block of its own and leaves the current block in use.
            if bytes > self.next_block / 4 {
                return self.block(bytes);
            }
            let size = self.next_block;
            self.next_block = (size * 2).min(MAX_BLOCK);
            self.cur = self.block(size);
            self.left = size;
        }
        let p = self.cur;
        // SAFETY: `bytes <= left`, so `p + bytes` stays inside (or one past) the current block.
        self.cur = unsafe { p.add(bytes) };
        self.left -= bytes;
        p
    }

    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.blocks.iter().map(|b| b.len() * 8).sum()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for &b in &self.blocks {
            // SAFETY: each pointer came from `Box::into_raw` in `block` and is freed only here,
            // once. The nodes in it hold no owned resources (plain bytes and atomic pointers).
            drop(unsafe { Box::from_raw(b) });
        }
    }
}

/// What only the writer touches.
struct Writer {
    arena: Arena,
    rng: u64,
}

impl Writer {
    /// 1 + the number of successes of a 1/4 coin, capped at `MAX_HEIGHT`.
    fn random_height(&mut self) -> usize {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // Two bits per level: both zero with probability 1/4.
        let h = 1 + ((r | (1 << 62)).trailing_zeros() as usize / 2);
        h.min(MAX_HEIGHT)
    }
}

/// A node, addressed by the start of its header. Layout (8-aligned):
///
/// ```text
/// next[h-1] .. next[1] next[0] | key_len: u32 | value_len: u32 | internal key | value | pad
///                              ^ node pointer
/// ```
/// The tower of `h` atomic next pointers sits *before* the header, so the key is at a fixed
/// offset whatever the height. Everything but the tower is written before the node is linked
/// (release store) and never changes; readers reach a node only through acquire loads.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Node(*mut u8);

const HEADER: usize = 8;

impl Node {
    fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// # Safety
    /// `self` is a node (or the head) of a live memtable and `level` is below its height.
    unsafe fn next(self, level: usize) -> &'static AtomicPtr<u8> {
        // SAFETY: the tower lies just below the header, 8-aligned, initialized when the node
        // was created; the caller keeps the arena alive for as long as it uses the reference.
        unsafe { &*(self.0 as *const AtomicPtr<u8>).sub(level + 1) }
    }

    /// # Safety
    /// `self` is a fully written node of a live memtable (not the head); the returned slice
    /// must not outlive the memtable.
    unsafe fn key<'a>(self) -> &'a [u8] {
        // SAFETY: the header and key were written before the node was published and are
        // never modified; the caller bounds the lifetime.
        unsafe {
            let klen = (self.0 as *const u32).read() as usize;
            std::slice::from_raw_parts(self.0.add(HEADER), klen)
        }
    }

    /// # Safety
    /// As for [`Node::key`].
    unsafe fn value<'a>(self) -> &'a [u8] {
        // SAFETY: as in `key`; the value follows the key.
        unsafe {
            let klen = (self.0 as *const u32).read() as usize;
            let vlen = (self.0 as *const u32).add(1).read() as usize;
            std::slice::from_raw_parts(self.0.add(HEADER + klen), vlen)
        }
    }
}

/// Order of a node's internal key against the one given as (user key, trailer).
#[inline]
fn cmp_split(node_key: &[u8], user_key: &[u8], trailer: u64) -> Ordering {
    let (u, t) = node_key.split_at(node_key.len() - 8);
    match u.cmp(user_key) {
        Ordering::Equal => {
            let t = u64::from_be_bytes(t.try_into().expect("8-byte trailer"));
            trailer.cmp(&t)
        }
        o => o,
    }
}

/// One memtable.
///
/// Readers touch only `head` and `height`; the writer writes its mutex, the arena's bump
/// pointer, `size` and `max_seq` on every insert. The two groups sit on separate cache lines
/// so that a lookup does not miss on a line the writer has just taken (readwhilewriting).
pub struct Memtable {
    read: Padded<ReadSide>,
    write: Padded<WriteSide>,
    /// Number of the write-ahead log holding these writes.
    pub wal_number: u64,
}

/// What every lookup reads.
struct ReadSide {
    /// Head node (height `MAX_HEIGHT`, no key), in the arena.
    head: Node,
    /// Levels in use (1..=MAX_HEIGHT); only grows. A reader seeing a stale, smaller value
    /// merely starts lower; a larger one finds the head's new levels (null or linked).
    height: AtomicUsize,
}

/// What every insert writes.
struct WriteSide {
    writer: Mutex<Writer>,
    size: AtomicUsize,
    max_seq: AtomicU64,
}

// SAFETY: the raw pointers point into the arena owned by this memtable. Nodes are immutable
// once published except for their atomic next pointers; the arena is only changed by the
// writer, under `writer`'s mutex; readers follow pointers with acquire loads, which see the
// node bytes written before the release store that published them.
unsafe impl Send for Memtable {}
// SAFETY: as above.
unsafe impl Sync for Memtable {}

/// Result of a point lookup in one layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Vec<u8>),
    Deleted,
    Absent,
    /// A cache-only lookup stopped at a block that is not in the block cache.
    Uncached,
}

/// A batch of inserts. Holds the memtable's writer lock (uncontended: the engine's commit
/// lock already admits one writer at a time).
pub struct Inserter<'a> {
    w: MutexGuard<'a, Writer>,
    mem: &'a Memtable,
    added: usize,
    max_seq: u64,
}

impl Inserter<'_> {
    pub fn insert(&mut self, user_key: &[u8], seq: u64, kind: u8, value: &[u8]) {
        let mem = self.mem;
        let trailer = (seq << 8) | kind as u64;
        let klen = user_key.len() + 8;
        let h = self.w.random_height();
        let bytes = (h * 8 + HEADER + klen + value.len()).next_multiple_of(8);
        let base = self.w.arena.alloc(bytes);
        // SAFETY: `base` is `bytes` bytes of fresh, 8-aligned arena memory nobody else can
        // see yet; the tower, header, key and value written here all lie inside it.
        let node = unsafe {
            let tower = base as *mut AtomicPtr<u8>;
            for i in 0..h {
                tower.add(i).write(AtomicPtr::new(ptr::null_mut()));
            }
            let n = base.add(h * 8);
            (n as *mut u32).write(klen as u32);
            (n as *mut u32).add(1).write(value.len() as u32);
            let k = n.add(HEADER);
            ptr::copy_nonoverlapping(user_key.as_ptr(), k, user_key.len());
            ptr::copy_nonoverlapping(trailer.to_be_bytes().as_ptr(), k.add(user_key.len()), 8);
            ptr::copy_nonoverlapping(value.as_ptr(), k.add(klen), value.len());
            Node(n)
        };

        // Predecessor at every level: the last node before the new key.
        let top = mem.read.height.load(AO::Relaxed);
        let mut prev = [mem.read.head; MAX_HEIGHT];
        let mut x = mem.read.head;
        for level in (0..top).rev() {
            loop {
                // SAFETY: `x` is the head or a linked node, alive with `mem`; level < height
                // of `x` because `x` was reached on this level or above.
                let next = Node(unsafe { x.next(level) }.load(AO::Acquire));
                // SAFETY: a linked node, fully written.
                if !next.is_null() && cmp_split(unsafe { next.key() }, user_key, trailer).is_lt() {
                    x = next;
                } else {
                    break;
                }
            }
            prev[level] = x;
        }
        if h > top {
            mem.read.height.store(h, AO::Relaxed);
        }
        for (level, p) in prev.iter().enumerate().take(h) {
            // SAFETY: `p` has a tower at least `level + 1` high (the head has every level,
            // and `prev[level]` was reached on `level`); `node` has height `h > level`. Only
            // this writer stores next pointers; the release store publishes the node's bytes.
            unsafe {
                let succ = p.next(level).load(AO::Relaxed);
                node.next(level).store(succ, AO::Relaxed);
                p.next(level).store(node.0, AO::Release);
            }
        }
        self.added += klen + value.len() + ENTRY_OVERHEAD;
        self.max_seq = self.max_seq.max(seq);
    }
}

impl Drop for Inserter<'_> {
    fn drop(&mut self) {
        self.mem.write.size.fetch_add(self.added, AO::Relaxed);
        self.mem.write.max_seq.fetch_max(self.max_seq, AO::Relaxed);
    }
}

impl Memtable {
    pub fn new(wal_number: u64) -> Memtable {
        let mut arena = Arena::new();
        let base = arena.alloc(MAX_HEIGHT * 8 + HEADER);
        // SAFETY: fresh arena memory of exactly this size: a full tower and an empty header.
        let head = unsafe {
            let tower = base as *mut AtomicPtr<u8>;
            for i in 0..MAX_HEIGHT {
                tower.add(i).write(AtomicPtr::new(ptr::null_mut()));
            }
            let n = base.add(MAX_HEIGHT * 8);
            (n as *mut u64).write(0);
            Node(n)
        };
        Memtable {
            read: Padded(ReadSide {
                head,
                height: AtomicUsize::new(1),
            }),
            write: Padded(WriteSide {
                writer: Mutex::new(Writer {
                    arena,
                    rng: (0x9e37_79b9_7f4a_7c15 ^ wal_number.wrapping_mul(0xff51_afd7_ed55_8ccd))
                        | 1,
                }),
                size: AtomicUsize::new(0),
                max_seq: AtomicU64::new(0),
            }),
            wal_number,
        }
    }

    /// Starts a group of inserts; their bytes are counted in `size` when it is dropped.
    pub fn inserter(&self) -> Inserter<'_> {
        Inserter {
            w: self.write.writer.lock(),
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
        self.write.size.load(AO::Relaxed)
    }

    /// Bytes of arena blocks allocated (takes the writer lock; for tests and diagnostics).
    #[cfg(test)]
    fn arena_bytes(&self) -> usize {
        self.write.writer.lock().arena.allocated()
    }

    pub fn is_empty(&self) -> bool {
        // SAFETY: the head has every level.
        unsafe { self.read.head.next(0) }
            .load(AO::Acquire)
            .is_null()
    }

    pub fn max_seq(&self) -> u64 {
        self.write.max_seq.load(AO::Relaxed)
    }

    /// The first node for which `before(node key)` is false (`before` must be true for a
    /// prefix of the list), or null.
    fn seek(&self, before: impl Fn(&[u8]) -> bool) -> Node {
        let mut x = self.read.head;
        let mut level = self.read.height.load(AO::Relaxed) - 1;
        // The node that stopped the search on the level above: no need to compare it again.
        let mut stop = Node(ptr::null_mut());
        loop {
            // SAFETY: `x` is the head or a node reached on this level or above, so its tower
            // reaches `level`; the acquire load pairs with the writer's release store.
            let next = Node(unsafe { x.next(level) }.load(AO::Acquire));
            // SAFETY: a published node of this memtable, alive while `self` is borrowed.
            if !next.is_null() && next != stop && before(unsafe { next.key() }) {
                x = next;
            } else {
                if level == 0 {
                    return next;
                }
                stop = next;
                level -= 1;
            }
        }
    }

    /// Newest version of `user_key` with sequence <= `seq`.
    pub fn get(&self, user_key: &[u8], seq: u64) -> Lookup {
        // An empty memtable (the active one on a read-mostly store) is skipped without
        // walking it, and without reading `size`, which the writer changes on every batch. A
        // write this reader's sequence number covers was linked before that number was
        // published.
        if self.is_empty() {
            return Lookup::Absent;
        }
        let trailer = (seq << 8) | KIND_PUT as u64;
        let n = self.seek(|k| cmp_split(k, user_key, trailer).is_lt());
        if n.is_null() {
            return Lookup::Absent;
        }
        // SAFETY: a published node; the slices are copied before `self`'s borrow ends.
        let (k, v) = unsafe { (n.key(), n.value()) };
        let (u, t) = k.split_at(k.len() - 8);
        if u != user_key {
            return Lookup::Absent;
        }
        if t[7] == KIND_PUT {
            Lookup::Found(v.to_vec())
        } else {
            Lookup::Deleted
        }
    }

    /// Copies up to `limit` entries at or after `from` (an internal key) into `out`.
    pub fn scan(&self, from: Bound<&[u8]>, limit: usize, out: &mut Copied) {
        let mut n = match from {
            Bound::Unbounded => {
                // SAFETY: the head has every level.
                Node(unsafe { self.read.head.next(0) }.load(AO::Acquire))
            }
            Bound::Included(t) => self.seek(|k| compare_internal(k, t).is_lt()),
            Bound::Excluded(t) => self.seek(|k| compare_internal(k, t).is_le()),
        };
        let mut copied = 0;
        while !n.is_null() && copied < limit {
            // SAFETY: a published node, alive while `self` is borrowed; its level-0 next
            // pointer is read with acquire to reach the following node's bytes.
            unsafe {
                out.push(n.key(), n.value());
                n = Node(n.next(0).load(AO::Acquire));
            }
            copied += 1;
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
    use crate::coding::{KIND_DELETE, internal_key, split_internal_key};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

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
        assert_eq!(m.get(b"a", 100), Lookup::Absent);
        assert_eq!(m.get(b"z", 100), Lookup::Absent);
    }

    fn all(m: &Memtable, from: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut c = Copied::default();
        m.scan(from, usize::MAX, &mut c);
        (0..c.len())
            .map(|i| (c.key(i).to_vec(), c.value(i).to_vec()))
            .collect()
    }

    /// Equal user keys with different sequences, inserted out of order, come out newest
    /// first within a user key; seeks land on the right entry, inclusive and exclusive.
    #[test]
    fn order_and_seek() {
        let m = Memtable::new(7);
        assert!(m.is_empty());
        let mut expect = Vec::new();
        let mut rng = 12345u64;
        let mut seqs: Vec<u64> = (1..=3000).collect();
        // Shuffle the sequence numbers so versions of one key arrive in any order.
        for i in (1..seqs.len()).rev() {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seqs.swap(i, (rng >> 33) as usize % (i + 1));
        }
        for &s in &seqs {
            let user = format!("key{:03}", s % 97).into_bytes();
            let kind = if s % 5 == 0 { KIND_DELETE } else { KIND_PUT };
            let value = if kind == KIND_PUT {
                vec![s as u8; (s % 50) as usize]
            } else {
                Vec::new()
            };
            m.insert(&user, s, kind, &value);
            expect.push((internal_key(&user, s, kind), value));
        }
        assert!(!m.is_empty());
        expect.sort_by(|a, b| compare_internal(&a.0, &b.0));
        assert_eq!(all(&m, Bound::Unbounded), expect);
        for probe in [0, 1, 17, 1500, 2999] {
            let from = &expect[probe].0;
            assert_eq!(all(&m, Bound::Included(from)), expect[probe..]);
            assert_eq!(all(&m, Bound::Excluded(from)), expect[probe + 1..]);
        }
        // A seek between entries: user key present, sequence not (newest at or below it).
        let (u, s, _) = split_internal_key(&expect[40].0).unwrap();
        let target = internal_key(u, s + 1000, KIND_PUT);
        let got = all(&m, Bound::Included(&target));
        let at = expect
            .iter()
            .position(|(k, _)| compare_internal(k, &target).is_ge())
            .unwrap();
        assert_eq!(got, expect[at..]);
        // Limits.
        let mut c = Copied::default();
        m.scan(Bound::Unbounded, 5, &mut c);
        assert_eq!(c.len(), 5);
        // Point reads agree with the sorted list.
        for u in 0..97u64 {
            let user = format!("key{u:03}").into_bytes();
            for snap in [0, 10, 999, 2000, 5000] {
                let newest = expect
                    .iter()
                    .filter_map(|(k, v)| {
                        let (ku, ks, kk) = split_internal_key(k).unwrap();
                        (ku == user && ks <= snap).then_some((ks, kk, v))
                    })
                    .max_by_key(|x| x.0);
                let want = match newest {
                    None => Lookup::Absent,
                    Some((_, KIND_PUT, v)) => Lookup::Found(v.clone()),
                    Some(_) => Lookup::Deleted,
                };
                assert_eq!(m.get(&user, snap), want, "key {u} at {snap}");
            }
        }
    }

    /// Values larger than an arena block get blocks of their own.
    #[test]
    fn large_values() {
        let m = Memtable::new(1);
        let big = vec![7u8; 3 * MAX_BLOCK];
        m.insert(b"b", 1, KIND_PUT, &big);
        m.insert(b"a", 2, KIND_PUT, b"small");
        m.insert(b"c", 3, KIND_PUT, &big[..5000]);
        assert_eq!(m.get(b"b", 9), Lookup::Found(big.clone()));
        assert_eq!(m.get(b"a", 9), Lookup::Found(b"small".to_vec()));
        assert_eq!(m.get(b"c", 9), Lookup::Found(big[..5000].to_vec()));
        assert!(m.arena_bytes() >= 3 * MAX_BLOCK + 5000);
        assert_eq!(all(&m, Bound::Unbounded).len(), 3);
    }

    /// Readers run while one writer inserts: every entry whose sequence was published is
    /// found with its value, scans are sorted and contain every published entry.
    #[test]
    fn concurrent_readers_during_inserts() {
        const N: u64 = 60_000;
        let key = |i: u64| {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
            format!("{h:016x}").into_bytes()
        };
        let m = Arc::new(Memtable::new(3));
        let published = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (m, published, done) = (m.clone(), published.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut rounds = 0u64;
                    let mut x = r as u64 + 1;
                    while !done.load(AO::Acquire) || rounds < 3 {
                        let seen = published.load(AO::Acquire);
                        for _ in 0..200 {
                            if seen == 0 {
                                break;
                            }
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            let i = 1 + (x >> 33) % seen;
                            // Each key is written twice: seq 2i-1 (put) and, for even i, 2i
                            // (overwrite); both are <= 2*seen.
                            let want = if i.is_multiple_of(2) { i * 2 } else { i };
                            assert_eq!(
                                m.get(&key(i), 2 * seen),
                                Lookup::Found(want.to_le_bytes().to_vec())
                            );
                            // At a snapshot before the overwrite, the first version.
                            assert_eq!(
                                m.get(&key(i), 2 * i - 1),
                                Lookup::Found(i.to_le_bytes().to_vec())
                            );
                        }
                        if rounds.is_multiple_of(16) {
                            let mut c = Copied::default();
                            m.scan(Bound::Unbounded, usize::MAX, &mut c);
                            for j in 1..c.len() {
                                assert!(compare_internal(c.key(j - 1), c.key(j)).is_lt());
                            }
                            let visible = (0..c.len())
                                .filter(|&j| split_internal_key(c.key(j)).unwrap().1 <= 2 * seen)
                                .count() as u64;
                            assert!(visible >= seen + seen / 2);
                        }
                        rounds += 1;
                    }
                })
            })
            .collect();
        for i in 1..=N {
            let mut ins = m.inserter();
            ins.insert(&key(i), 2 * i - 1, KIND_PUT, &i.to_le_bytes());
            if i.is_multiple_of(2) {
                ins.insert(&key(i), 2 * i, KIND_PUT, &(i * 2).to_le_bytes());
            }
            drop(ins);
            published.store(i, AO::Release);
        }
        done.store(true, AO::Release);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(all(&m, Bound::Unbounded).len() as u64, N + N / 2);
    }
}
