//! Engine options and their defaults.
//!
//! The `ORBIT_LSM_*` deployment variables map one-to-one onto fields here (see DESIGN.md,
//! "Options"). The engine reads no environment itself: the host's translator plugin parses the
//! variables and `orbit-backends` fills these fields.

use crate::fs::{FileSystem, StdFs};
use std::sync::Arc;
use std::time::Duration;

/// When an acknowledged write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `write` returns after the log record is fsynced; concurrent writers share one fsync.
    PerCommit,
    /// Log records are buffered in the process and written and fsynced by a background thread
    /// at this interval (and when 64 KiB accumulate, written to the OS without fsync).
    Periodic(Duration),
    /// Log records are buffered in the process and handed to the OS when 64 KiB accumulate or
    /// within 100 ms; only `Db::sync`, a memtable switch or close makes them reach the OS
    /// sooner. A process crash can lose the last ~100 ms of acknowledged writes, a power loss
    /// everything not yet fsynced. Batches are never torn: recovery yields a prefix of them.
    None,
}

/// Engine configuration.
#[derive(Clone)]
pub struct Options {
    /// Durability of acknowledged writes.
    pub sync: SyncMode,
    /// Bytes a memtable may hold (keys + values + 64 bytes per entry) before it is switched
    /// for a fresh one and flushed. `ORBIT_LSM_MEMTABLE_SIZE`.
    pub memtable_size: u64,
    /// Most memtables (the active one plus those waiting to be flushed) held in memory. Writers
    /// are delayed progressively once half of them are waiting and blocked when all are.
    /// `ORBIT_LSM_MAX_MEMTABLES`.
    pub max_memtables: u32,
    /// Target false-positive rate of each table's bloom filter. `ORBIT_LSM_BLOOM_FP_RATE`.
    pub bloom_fp_rate: f64,
    /// Whether background compaction runs. Without it level 0 grows without bound (reads slow
    /// down; no write stall is applied for level-0 files). `ORBIT_LSM_ENABLE_COMPACTION`.
    pub enable_compaction: bool,
    /// Number of level-0 tables that triggers a level-0 -> level-1 compaction; writers slow
    /// down at 3x and stop at 5x this count. `ORBIT_LSM_COMPACTION_THRESHOLD`.
    pub compaction_threshold: u32,
    /// Memory for table blocks: pinned index and filter blocks plus cached data blocks
    /// (default 256 MiB, the budget the RocksDB backend gets from
    /// `ORBIT_ROCKSDB_BLOCK_CACHE_SIZE`).
    pub block_cache_size: u64,
    /// LZ4-compress data blocks (kept raw when compression saves less than 1/8).
    pub compression: bool,
    /// Uncompressed size of a data block.
    pub block_size: usize,
    /// Size at which compaction starts a new output table.
    pub target_file_size: u64,
    /// Size budget of level 1; each deeper level gets 10x more.
    pub level1_size: u64,
    /// The file system all I/O goes through (tests inject failures here).
    pub fs: Arc<dyn FileSystem>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("sync", &self.sync)
            .field("memtable_size", &self.memtable_size)
            .field("max_memtables", &self.max_memtables)
            .field("bloom_fp_rate", &self.bloom_fp_rate)
            .field("enable_compaction", &self.enable_compaction)
            .field("compaction_threshold", &self.compaction_threshold)
            .field("block_cache_size", &self.block_cache_size)
            .field("compression", &self.compression)
            .field("block_size", &self.block_size)
            .field("target_file_size", &self.target_file_size)
            .field("level1_size", &self.level1_size)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncMode::PerCommit,
            memtable_size: 64 << 20,
            max_memtables: 10,
            bloom_fp_rate: 0.01,
            enable_compaction: true,
            compaction_threshold: 4,
            block_cache_size: 256 << 20,
            compression: true,
            block_size: 4096,
            target_file_size: 64 << 20,
            level1_size: 256 << 20,
            fs: Arc::new(StdFs),
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        let bad = |m: &str| Err(crate::Error::InvalidArgument(m.to_string()));
        if self.memtable_size < 1024 {
            return bad("memtable_size must be at least 1024 bytes");
        }
        if self.max_memtables < 2 {
            return bad("max_memtables must be at least 2 (one active, one flushing)");
        }
        if !(self.bloom_fp_rate > 0.0 && self.bloom_fp_rate < 1.0) {
            return bad("bloom_fp_rate must be in (0, 1)");
        }
        if self.compaction_threshold < 1 {
            return bad("compaction_threshold must be at least 1");
        }
        if self.block_size < 256 {
            return bad("block_size must be at least 256 bytes");
        }
        Ok(())
    }
}
