//! The block cache: decoded data blocks shared between readers, keyed by (table, offset).
//!
//! Sharded to keep lock hold times short on concurrent reads; each shard evicts with the
//! CLOCK (second-chance) policy, which approximates LRU without moving entries on every hit.
//! Capacity is charged in block bytes. Index and filter blocks are pinned by each open table
//! instead of competing for slots here, but their bytes are charged against the same capacity
//! (`pin`/`unpin`), so the configured size bounds index + filter + data memory; see DESIGN.md.
//!
//! A hit writes nothing shared by all readers: the hit and miss counts live in each shard,
//! under its lock (one global atomic counter, bumped on every lookup, was a cache line that
//! every reading core kept stealing from the others), and every shard sits on cache lines of
//! its own, so two readers in different shards never touch the same line.

use crate::block::Block;
use crate::padded::Padded;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const SHARDS: usize = 16;

/// Keys are (table number, block offset), already well distributed; SipHash would cost more
/// than the rest of a cache hit.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

type KeyMap<V> = HashMap<(u64, u64), V, std::hash::BuildHasherDefault<KeyHasher>>;

struct Entry {
    block: Arc<Block>,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Shard {
    map: KeyMap<Entry>,
    clock: VecDeque<(u64, u64)>,
    used: usize,
    hits: u64,
    misses: u64,
}

/// A sharded CLOCK cache of blocks.
pub struct BlockCache {
    shards: Vec<Padded<Mutex<Shard>>>,
    shard_capacity: usize,
    /// Index and filter bytes pinned by open tables; they count against the capacity, so
    /// `block_cache_size` bounds index + filter + cached data together. Written only when a
    /// table opens or closes.
    pinned: AtomicU64,
}

impl BlockCache {
    pub fn new(capacity: u64) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
            shard_capacity: (capacity as usize) / SHARDS,
            pinned: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: (u64, u64)) -> &Mutex<Shard> {
        // Fibonacci hashing of (table, offset); the top bits pick the shard.
        let h = (key.0 ^ key.1.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> 60) as usize % SHARDS].0
    }

    pub fn get(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        let mut s = self.shard((table, offset)).lock();
        let found = s.map.get(&(table, offset)).map(|e| {
            e.referenced.store(true, Ordering::Relaxed);
            e.block.clone()
        });
        match found {
            Some(_) => s.hits += 1,
            None => s.misses += 1,
        }
        found
    }

    /// Charges (or with a negative amount releases) bytes pinned outside the cache.
    pub fn pin(&self, bytes: u64) {
        self.pinned.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn unpin(&self, bytes: u64) {
        self.pinned.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        let charge = block.charge();
        let pinned_share = (self.pinned.load(Ordering::Relaxed) as usize) / SHARDS;
        let capacity = self.shard_capacity.saturating_sub(pinned_share);
        if capacity == 0 || charge > capacity {
            return;
        }
        let mut s = self.shard((table, offset)).lock();
        let old = s.map.insert(
            (table, offset),
            Entry {
                block,
                referenced: AtomicBool::new(false),
            },
        );
        match old {
            Some(o) => s.used -= o.block.charge(),
            None => s.clock.push_back((table, offset)),
        }
        s.used += charge;
        let mut spins = 0;
        while s.used > capacity && spins < 4 * s.clock.len() + 4 {
            spins += 1;
            let Some(k) = s.clock.pop_front() else { break };
            let second_chance = match s.map.get(&k) {
                Some(e) => e.referenced.swap(false, Ordering::Relaxed),
                None => continue,
            };
            if second_chance {
                s.clock.push_back(k);
            } else if let Some(e) = s.map.remove(&k) {
                s.used -= e.block.charge();
            }
        }
    }

    /// Which shard holds a key (tests).
    #[cfg(test)]
    fn shard_index(&self, table: u64, offset: u64) -> usize {
        let s = self.shard((table, offset)) as *const _;
        self.shards
            .iter()
            .position(|x| std::ptr::eq(&x.0, s))
            .unwrap_or(0)
    }

    /// Bytes currently cached.
    pub fn used(&self) -> u64 {
        self.shards.iter().map(|s| s.0.lock().used as u64).sum()
    }

    /// Lookups that found their block, since open.
    pub fn hits(&self) -> u64 {
        self.shards.iter().map(|s| s.0.lock().hits).sum()
    }

    /// Lookups that did not, since open.
    pub fn misses(&self) -> u64 {
        self.shards.iter().map(|s| s.0.lock().misses).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_one_table_spread_over_shards() {
        let c = BlockCache::new(16 << 20);
        let mut used = std::collections::HashSet::new();
        for i in 0..1000u64 {
            used.insert(c.shard_index(7, i * 4133));
        }
        assert_eq!(used.len(), SHARDS);
    }

    #[test]
    fn capacity_is_respected() {
        let c = BlockCache::new(1 << 20);
        let mut b = crate::block::BlockBuilder::default();
        b.add(&crate::coding::internal_key(b"k", 1, 1), &[0u8; 4000]);
        let block = Arc::new(crate::block::Block::new(b.finish()).unwrap());
        for i in 0..10_000u64 {
            c.insert(1, i * 4096, block.clone());
        }
        assert!(c.used() <= 1 << 20, "{}", c.used());
        assert!(c.used() > 1 << 19, "{}", c.used());
        // Pinned index/filter bytes take their share of the budget.
        c.pin(768 << 10);
        for i in 10_000..20_000u64 {
            c.insert(1, i * 4096, block.clone());
        }
        assert!(c.used() <= (1 << 20) - (700 << 10), "{}", c.used());
        c.unpin(768 << 10);
    }
}
