//! In-memory cache of validated nodes, indexed by page number.
//!
//! Sound without invalidation because of copy-on-write: a page number is only
//! rewritten after no reader can reach its old content, and the writer puts
//! the new image in the cache as it writes it (and drops the entries of pages
//! it recycles). Sixteen shards, each a vector indexed by page number (pages
//! are dense), so a hit is one uncontended read lock and one index, and the
//! hot path runs the caller's search under that read lock instead of cloning
//! an `Arc`. When a shard is over budget a clock hand sweeps it, dropping
//! entries until it is at three quarters of its budget.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::page::Page;

const SHARDS: usize = 16;

struct Shard {
    slots: Vec<Option<Arc<Page>>>,
    bytes: usize,
    hand: usize,
}

/// The cache.
pub(crate) struct PageCache {
    shards: Vec<RwLock<Shard>>,
    shard_cap: usize,
}

fn split(page: u64) -> (usize, usize) {
    (
        (page % SHARDS as u64) as usize,
        (page / SHARDS as u64) as usize,
    )
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        PageCache {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        slots: Vec::new(),
                        bytes: 0,
                        hand: 0,
                    })
                })
                .collect(),
            shard_cap: capacity_bytes / SHARDS,
        }
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

    pub(crate) fn insert(&self, page: u64, node: Arc<Page>) {
        let (s, i) = split(page);
        let len = node.len_bytes();
        let mut sh = self.shards[s].write();
        if len > self.shard_cap {
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
        if sh.bytes > self.shard_cap {
            let target = self.shard_cap - self.shard_cap / 4;
            let n = sh.slots.len();
            let mut steps = 0;
            while sh.bytes > target && steps < n {
                let h = sh.hand % n;
                sh.hand = h + 1;
                steps += 1;
                if h == i {
                    continue;
                }
                if let Some(old) = sh.slots[h].take() {
                    sh.bytes -= old.len_bytes();
                }
            }
        }
    }

    /// Forgets a page (called when a freed page is recycled).
    pub(crate) fn remove(&self, page: u64) {
        let (s, i) = split(page);
        let mut sh = self.shards[s].write();
        if let Some(old) = sh.slots.get_mut(i).and_then(|x| x.take()) {
            sh.bytes -= old.len_bytes();
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        for s in &self.shards {
            let mut s = s.write();
            s.slots.clear();
            s.bytes = 0;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().bytes).sum()
    }
}
