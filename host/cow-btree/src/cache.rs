//! In-memory cache of validated nodes, indexed by page number, which also
//! holds the *dirty* nodes of non-durable commits (pinned: never evicted).
//!
//! Sound without invalidation because of copy-on-write: a page number is only
//! rewritten after no reader can reach its old content, and the writer puts
//! the new image in the cache as it writes it (and drops the entries of pages
//! it recycles). Sixteen shards, each a vector indexed by page number (pages
//! are dense), so a hit is one uncontended read lock and one index, and the
//! hot path runs the caller's search under that read lock instead of cloning
//! an `Arc`. When a shard is over budget a clock hand sweeps it, dropping
//! unpinned entries until it is at three quarters of its budget.
//!
//! A pinned entry is a node a commit published without writing it to the
//! file yet (DESIGN.md, "Deferred writes"): readers find it here and nowhere
//! else, so it is never evicted until the writer has written it and unpinned
//! it. Pinned bytes count against the shard's budget (they push clean nodes
//! out), and the writer bounds them with `Options::dirty_limit`.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::page::Page;

const SHARDS: usize = 16;

struct Shard {
    slots: Vec<Option<Arc<Page>>>,
    /// Bit `i` set: slot `i` is pinned (a dirty node, not evictable).
    pinned: Vec<u64>,
    bytes: usize,
    hand: usize,
}

impl Shard {
    fn is_pinned(&self, i: usize) -> bool {
        self.pinned
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }
    fn set_pinned(&mut self, i: usize, on: bool) {
        let w = i / 64;
        if self.pinned.len() <= w {
            if !on {
                return;
            }
            self.pinned.resize(w + 1, 0);
        }
        if on {
            self.pinned[w] |= 1u64 << (i % 64);
        } else {
            self.pinned[w] &= !(1u64 << (i % 64));
        }
    }
    /// Drops unpinned entries (clock order) until under `target` bytes;
    /// their buffers go to `spare`.
    fn evict(&mut self, target: usize, keep: usize, spare: &Spare) {
        let n = self.slots.len();
        let mut steps = 0;
        while self.bytes > target && steps < n {
            let h = self.hand % n;
            self.hand = h + 1;
            steps += 1;
            if h == keep || self.is_pinned(h) {
                continue;
            }
            if let Some(old) = self.slots[h].take() {
                self.bytes -= old.len_bytes();
                spare.recycle(old);
            }
        }
    }
}

/// Page buffers of dropped nodes, reused for the next read or encode (a
/// 4 KiB allocation and free per node is a large share of a write-heavy
/// run's time otherwise).
struct Spare {
    buffers: Mutex<Vec<Vec<u8>>>,
    page_size: usize,
    max: usize,
}

impl Spare {
    fn recycle(&self, node: Arc<Page>) {
        if let Ok(page) = Arc::try_unwrap(node)
            && page.len_bytes() == self.page_size
        {
            let mut b = self.buffers.lock();
            if b.len() < self.max {
                b.push(page.into_buffer());
            }
        }
    }
}

/// Bytes of spare page buffers kept at most.
const SPARE_BYTES: usize = 8 << 20;

/// The cache.
pub(crate) struct PageCache {
    shards: Vec<RwLock<Shard>>,
    shard_cap: usize,
    spare: Spare,
}

fn split(page: u64) -> (usize, usize) {
    (
        (page % SHARDS as u64) as usize,
        (page / SHARDS as u64) as usize,
    )
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize, page_size: usize) -> Self {
        PageCache {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        slots: Vec::new(),
                        pinned: Vec::new(),
                        bytes: 0,
                        hand: 0,
                    })
                })
                .collect(),
            shard_cap: capacity_bytes / SHARDS,
            spare: Spare {
                buffers: Mutex::new(Vec::new()),
                page_size,
                max: SPARE_BYTES / page_size.max(1),
            },
        }
    }

    /// A page-sized buffer of a dropped node (contents undefined), or an
    /// empty vector when there is none.
    pub(crate) fn take_buffer(&self) -> Vec<u8> {
        self.spare.buffers.lock().pop().unwrap_or_default()
    }

    /// Keeps the buffer of a node nobody else holds for reuse.
    pub(crate) fn recycle(&self, node: Arc<Page>) {
        self.spare.recycle(node);
    }

    /// Runs `f` on the cached node, if any, under the shard's read lock.
    pub(crate) fn with<R>(&self, page: u64, f: impl FnOnce(&Page) -> R) -> Option<R> {
        let (s, i) = split(page);
        let shard = self.shards[s].read();
        shard.slots.get(i).and_then(|x| x.as_deref()).map(f)
    }

    pub(crate) fn get(&self, page: u64) -> Option<Arc<Page>> {
        let (s, i) = split(page);
        self.shards[s].read().slots.get(i).and_then(|x| x.clone())
    }

    /// Caches a clean node (one that is on disk). Never replaces a pinned
    /// entry.
    pub(crate) fn insert(&self, page: u64, node: Arc<Page>) {
        self.put(page, node, false);
    }

    /// Caches a dirty node: kept (not evicted) until [`Self::unpin`] or
    /// [`Self::remove`].
    pub(crate) fn insert_pinned(&self, page: u64, node: Arc<Page>) {
        self.put(page, node, true);
    }

    fn put(&self, page: u64, node: Arc<Page>, pin: bool) {
        let (s, i) = split(page);
        let len = node.len_bytes();
        let mut sh = self.shards[s].write();
        if sh.is_pinned(i) && !pin {
            return;
        }
        if len > self.shard_cap && !pin {
            if let Some(old) = sh.slots.get_mut(i).and_then(|x| x.take()) {
                sh.bytes -= old.len_bytes();
            }
            return;
        }
        if sh.slots.len() <= i {
            sh.slots.resize(i + 1, None);
        }
        if let Some(old) = sh.slots[i].replace(node) {
            sh.bytes -= old.len_bytes();
        }
        sh.bytes += len;
        sh.set_pinned(i, pin);
        if sh.bytes > self.shard_cap {
            let target = self.shard_cap - self.shard_cap / 4;
            sh.evict(target, i, &self.spare);
        }
    }

    /// Makes a pinned entry an ordinary (evictable) one: its node is now on
    /// disk.
    pub(crate) fn unpin(&self, page: u64) {
        let (s, i) = split(page);
        self.shards[s].write().set_pinned(i, false);
    }

    /// Unpins `page` if it still holds `node` (it may have been recycled
    /// and hold a newer dirty node meanwhile, which must stay pinned).
    pub(crate) fn unpin_if(&self, page: u64, node: &Arc<Page>) {
        let (s, i) = split(page);
        let mut sh = self.shards[s].write();
        if sh
            .slots
            .get(i)
            .and_then(|x| x.as_ref())
            .is_some_and(|x| Arc::ptr_eq(x, node))
        {
            sh.set_pinned(i, false);
        }
    }

    /// Forgets a page (called when a freed page is recycled); returns the
    /// node it held.
    pub(crate) fn remove(&self, page: u64) -> Option<Arc<Page>> {
        let (s, i) = split(page);
        let mut sh = self.shards[s].write();
        sh.set_pinned(i, false);
        let old = sh.slots.get_mut(i).and_then(|x| x.take());
        if let Some(old) = &old {
            sh.bytes -= old.len_bytes();
        }
        old
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        for s in &self.shards {
            let mut s = s.write();
            s.slots.clear();
            s.pinned.clear();
            s.bytes = 0;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().bytes).sum()
    }
}
