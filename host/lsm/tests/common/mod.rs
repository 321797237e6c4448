//! Helpers shared by the integration tests: a seeded PRNG and small-engine options.
#![allow(dead_code)]

use orbit_lsm::{Options, SyncMode};

/// xorshift64*: deterministic per seed, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Options that make flushes and compactions happen after a few kilobytes.
pub fn tiny(sync: SyncMode) -> Options {
    Options {
        sync,
        memtable_size: 4096,
        max_memtables: 3,
        compaction_threshold: 2,
        block_size: 256,
        target_file_size: 8 << 10,
        level1_size: 32 << 10,
        block_cache_size: 64 << 10,
        ..Options::default()
    }
}
