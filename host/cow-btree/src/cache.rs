//! In-memory cache of validated nodes, keyed by page number.
//!
//! Sound without invalidation because of copy-on-write: a page number is only
//! rewritten after no reader can reach its old content, and the writer puts
//! the new image in the cache as it writes it. Sharded so readers on
//! different pages do not contend; eviction drops arbitrary entries of a full
//! shard (hash order), which is cheap and good enough for a B+tree whose hot
//! upper levels are touched on every lookup and re-cached at once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::page::Page;

const SHARDS: usize = 16;

#[derive(Default)]
struct PageHasher(u64);
impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Map = HashMap<u64, Arc<Page>, BuildHasherDefault<PageHasher>>;

struct Shard {
    map: Map,
    bytes: usize,
}

/// The cache.
pub(crate) struct PageCache {
    shards: Vec<RwLock<Shard>>,
    shard_cap: usize,
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        PageCache {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        map: Map::default(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_cap: capacity_bytes / SHARDS,
        }
    }

    fn shard(&self, page: u64) -> &RwLock<Shard> {
        &self.shards[(page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS]
    }

    pub(crate) fn get(&self, page: u64) -> Option<Arc<Page>> {
        self.shard(page).read().map.get(&page).cloned()
    }

    pub(crate) fn insert(&self, page: u64, node: Arc<Page>) {
        let len = node.len_bytes();
        let mut s = self.shard(page).write();
        if len > self.shard_cap {
            if let Some(old) = s.map.remove(&page) {
                s.bytes -= old.len_bytes();
            }
            return;
        }
        if let Some(old) = s.map.insert(page, node) {
            s.bytes -= old.len_bytes();
        }
        s.bytes += len;
        if s.bytes > self.shard_cap {
            let target = self.shard_cap - self.shard_cap / 4;
            let mut victims = Vec::new();
            let mut freed = 0usize;
            for (k, v) in s.map.iter() {
                if s.bytes - freed <= target {
                    break;
                }
                if *k != page {
                    victims.push(*k);
                    freed += v.len_bytes();
                }
            }
            for k in victims {
                if let Some(v) = s.map.remove(&k) {
                    s.bytes -= v.len_bytes();
                }
            }
        }
    }

    /// Forgets a page (freed pages need not linger).
    pub(crate) fn remove(&self, page: u64) {
        let mut s = self.shard(page).write();
        if let Some(v) = s.map.remove(&page) {
            s.bytes -= v.len_bytes();
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        for s in &self.shards {
            let mut s = s.write();
            s.map.clear();
            s.bytes = 0;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().bytes).sum()
    }
}
