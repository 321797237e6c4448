//! The `rocksdb` backend: RocksDB (through the `rocksdb` crate) as an
//! [`OrderedKv`] engine.
//!
//! Every `ORBIT_ROCKSDB_*` setting is applied here:
//!
//! | setting | applied as |
//! |---|---|
//! | `DATA_DIR` | the database directory (created if missing) |
//! | `ENABLE_WAL` | `WriteOptions::disable_wal(!enable_wal)` on every write |
//! | `MAX_BACKGROUND_JOBS` | `Options::set_max_background_jobs` |
//! | `WRITE_BUFFER_SIZE` | `Options::set_write_buffer_size` |
//! | `MAX_WRITE_BUFFER_NUMBER` | `Options::set_max_write_buffer_number` |
//! | `TARGET_FILE_SIZE_BASE` | `Options::set_target_file_size_base` |
//! | `ENABLE_STATISTICS` | `Options::enable_statistics`; tickers exported in `/metrics` |
//! | `BLOCK_CACHE_SIZE` | an LRU block cache (with a 10-bit bloom filter per table) |
//! | `DURABILITY` | `sync`: `WriteOptions::set_sync(true)` (RocksDB merges concurrent synced writers into one WAL fsync); `periodic`: unsynced writes, the server calls [`OrderedKv::sync`] (`flush_wal(true)`) every `SYNC_INTERVAL`; `none`: unsynced writes |
//!
//! `durability = sync` with the WAL off is refused at open: there would be
//! nothing to fsync. With the WAL off, [`OrderedKv::sync`] flushes the
//! memtables to table files instead.
//!
//! Compare-and-set needs no RocksDB transactions: the adapter serialises
//! writers per key, and RocksDB applies each write batch atomically.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use orbit_storage::kv::{KvOp, KvStorage, OrderedKv};
use orbit_storage::{
    BackendKind, Durability, EngineMetric, RocksdbConfig, Storage, StorageError, StorageResult,
};
use rocksdb::statistics::Ticker;
use rocksdb::{BlockBasedOptions, Cache, DB, Direction, IteratorMode, Options, ReadOptions};

/// An open RocksDB database.
pub struct RocksEngine {
    db: DB,
    options: Options,
    dir: PathBuf,
    sync_writes: bool,
    wal: bool,
    statistics: bool,
}

#[async_trait::async_trait]
impl crate::Backend for RocksdbConfig {
    async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        crate::open_blocking(BackendKind::Rocksdb, self, open).await
    }

    /// Under `periodic` durability RocksDB needs the server's periodic flush.
    fn flush_interval(&self) -> Option<std::time::Duration> {
        (self.durability == Durability::Periodic)
            .then(|| self.sync_interval.max(std::time::Duration::from_millis(1)))
    }
}

/// Opens the database `config` describes behind the storage contract.
pub(crate) fn open(config: &RocksdbConfig) -> StorageResult<KvStorage<RocksEngine>> {
    let engine = RocksEngine::open(config)?;
    let location = engine.dir.display().to_string();
    KvStorage::open(engine, location)
}

impl RocksEngine {
    pub fn open(config: &RocksdbConfig) -> StorageResult<Self> {
        if config.durability == Durability::Sync && !config.enable_wal {
            return Err(StorageError::Invalid(
                "ORBIT_ROCKSDB_DURABILITY=sync needs the write-ahead log, but ORBIT_ROCKSDB_ENABLE_WAL=false; \
                 enable the WAL or choose durability periodic or none"
                    .into(),
            ));
        }
        let dir = PathBuf::from(&config.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io("create directory", &dir, e))?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_max_background_jobs(config.max_background_jobs as i32);
        options.set_write_buffer_size(config.write_buffer_size as usize);
        options.set_max_write_buffer_number(config.max_write_buffer_number as i32);
        options.set_target_file_size_base(config.target_file_size_base);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(config.block_cache_size as usize));
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        options.set_block_based_table_factory(&table);
        if config.enable_statistics {
            options.enable_statistics();
        }
        let db = DB::open(&options, &dir).map_err(|e| rocks_error("open", &dir, e))?;
        tracing::info!(
            dir = %dir.display(),
            durability = ?config.durability,
            wal = config.enable_wal,
            "rocksdb opened"
        );
        Ok(RocksEngine {
            db,
            options,
            dir,
            sync_writes: config.durability == Durability::Sync,
            wal: config.enable_wal,
            statistics: config.enable_statistics,
        })
    }

    fn write_options(&self) -> rocksdb::WriteOptions {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(self.sync_writes);
        w.disable_wal(!self.wal);
        w
    }
}

/// RocksDB errors name the directory; corruption keeps its own kind so the
/// server reports it as such.
fn rocks_error(op: &'static str, dir: &Path, e: rocksdb::Error) -> StorageError {
    use rocksdb::ErrorKind;
    match e.kind() {
        ErrorKind::Corruption => StorageError::Corrupt {
            path: dir.display().to_string(),
            reason: e.into_string(),
        },
        ErrorKind::IOError => StorageError::io(op, dir, std::io::Error::other(e.into_string())),
        _ => StorageError::Unavailable(format!("rocksdb {op} in {}: {}", dir.display(), e)),
    }
}

impl OrderedKv for RocksEngine {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.db
            .get(key)
            .map_err(|e| rocks_error("read", &self.dir, e))
    }

    /// Memtables and the block cache only (RocksDB's `kBlockCacheTier`):
    /// anything that needs I/O answers `Incomplete`.
    fn try_get(&self, key: &[u8]) -> StorageResult<Option<Option<Vec<u8>>>> {
        let mut read = ReadOptions::default();
        read.set_read_tier(rocksdb::ReadTier::BlockCache);
        match self.db.get_opt(key, &read) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Err(e) => Err(rocks_error("read", &self.dir, e)),
        }
    }

    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()> {
        let mut batch = rocksdb::WriteBatch::default();
        for op in ops {
            match op {
                KvOp::Put { key, value } => batch.put(key, value),
                KvOp::Delete { key } => batch.delete(key),
            }
        }
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(|e| rocks_error("write", &self.dir, e))
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()> {
        let mut read = ReadOptions::default();
        match upper {
            Bound::Excluded(end) => read.set_iterate_upper_bound(end.to_vec()),
            Bound::Included(end) => {
                let mut end = end.to_vec();
                end.push(0);
                read.set_iterate_upper_bound(end);
            }
            Bound::Unbounded => {}
        }
        let start: &[u8] = match lower {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => &[],
        };
        // The iterator pins an implicit snapshot: one consistent view.
        for item in self
            .db
            .iterator_opt(IteratorMode::From(start, Direction::Forward), read)
        {
            let (key, value) = item.map_err(|e| rocks_error("scan", &self.dir, e))?;
            if matches!(lower, Bound::Excluded(k) if *key == *k) {
                continue;
            }
            if !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    fn sync(&self) -> StorageResult<()> {
        if self.wal {
            self.db
                .flush_wal(true)
                .map_err(|e| rocks_error("sync the WAL", &self.dir, e))
        } else {
            self.db
                .flush()
                .map_err(|e| rocks_error("flush memtables", &self.dir, e))
        }
    }

    fn disk_bytes(&self) -> Option<u64> {
        crate::disk::dir_size(&self.dir)
    }

    fn metrics(&self) -> Vec<EngineMetric> {
        let mut out = Vec::new();
        if self.statistics {
            for (ticker, name, help) in TICKERS {
                out.push(EngineMetric::counter(
                    format!("rocksdb_{name}_total"),
                    help,
                    self.options.get_ticker_count(*ticker),
                ));
            }
        }
        for (property, name, help) in PROPERTIES {
            if let Ok(Some(value)) = self.db.property_int_value(*property) {
                out.push(EngineMetric::gauge(format!("rocksdb_{name}"), help, value));
            }
        }
        out
    }
}

const TICKERS: &[(Ticker, &str, &str)] = &[
    (
        Ticker::BytesWritten,
        "bytes_written",
        "Bytes written by RocksDB writes.",
    ),
    (
        Ticker::BytesRead,
        "bytes_read",
        "Bytes read by RocksDB point lookups.",
    ),
    (
        Ticker::NumberKeysWritten,
        "keys_written",
        "Keys written to RocksDB.",
    ),
    (
        Ticker::BlockCacheHit,
        "block_cache_hit",
        "RocksDB block cache hits.",
    ),
    (
        Ticker::BlockCacheMiss,
        "block_cache_miss",
        "RocksDB block cache misses.",
    ),
    (
        Ticker::BloomFilterUseful,
        "bloom_filter_useful",
        "Reads a bloom filter avoided.",
    ),
    (
        Ticker::MemtableHit,
        "memtable_hit",
        "Reads answered by a memtable.",
    ),
    (Ticker::WalFileSynced, "wal_synced", "WAL fsyncs."),
    (
        Ticker::FlushWriteBytes,
        "flush_write_bytes",
        "Bytes written by memtable flushes.",
    ),
    (
        Ticker::CompactReadBytes,
        "compact_read_bytes",
        "Bytes read by compaction.",
    ),
    (
        Ticker::CompactWriteBytes,
        "compact_write_bytes",
        "Bytes written by compaction.",
    ),
    (
        Ticker::StallMicros,
        "stall_micros",
        "Microseconds writers were stalled.",
    ),
];

const PROPERTIES: &[(&rocksdb::properties::PropName, &str, &str)] = &[
    (
        rocksdb::properties::ESTIMATE_NUM_KEYS,
        "estimate_num_keys",
        "RocksDB's estimate of its keys (adapter records included).",
    ),
    (
        rocksdb::properties::LIVE_SST_FILES_SIZE,
        "live_sst_files_bytes",
        "Bytes of live table files.",
    ),
    (
        rocksdb::properties::CUR_SIZE_ALL_MEM_TABLES,
        "memtable_bytes",
        "Bytes in memtables.",
    ),
    (
        rocksdb::properties::NUM_RUNNING_COMPACTIONS,
        "running_compactions",
        "Compactions running now.",
    ),
];
