//! RocksDB behind [`Engine`]: LZ4 compression, a 10-bit Bloom filter and an
//! LRU block cache of `cache_bytes`; other options are RocksDB's defaults
//! (64 MiB memtable, leveled compaction), with 2 background jobs.

use std::path::{Path, PathBuf};

use rocksdb::{BlockBasedOptions, Cache, DB, DBCompressionType, Options, WriteBatch, WriteOptions};

use super::{Engine, EngineError, EngineSettings, allocated_bytes, failed};

const NAME: &str = "rocksdb";

pub struct RocksDb {
    db: DB,
    sync_each_commit: bool,
    dir: PathBuf,
}

impl RocksDb {
    pub fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        let cache =
            Cache::new_lru_cache(usize::try_from(settings.cache_bytes).unwrap_or(usize::MAX));
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        opts.set_max_background_jobs(2);
        opts.set_block_based_table_factory(&table);
        let db = DB::open(&opts, dir).map_err(failed(NAME, "open"))?;
        Ok(RocksDb {
            db,
            sync_each_commit: settings.durability.sync_each_commit(),
            dir: dir.to_path_buf(),
        })
    }
}

impl Engine for RocksDb {
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let mut wb = WriteBatch::default();
        for (k, v) in batch {
            wb.put(k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync_each_commit);
        self.db.write_opt(wb, &wo).map_err(failed(NAME, "write"))
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError> {
        match self.db.get_pinned(key).map_err(failed(NAME, "get"))? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        from: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, EngineError> {
        let mut it = self.db.raw_iterator();
        it.seek(from);
        let mut n = 0;
        while n < limit && it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                visit(k, v);
            }
            n += 1;
            it.next();
        }
        it.status().map_err(failed(NAME, "scan"))?;
        Ok(n)
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.db.flush_wal(true).map_err(failed(NAME, "sync"))
    }

    fn disk_bytes(&self) -> Result<u64, EngineError> {
        allocated_bytes(&self.dir)
    }
}
