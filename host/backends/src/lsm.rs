//! The `lsm_tree` backend: the in-house LSM tree (`orbit-lsm`) as an
//! [`OrderedKv`] engine. Every `ORBIT_LSM_*` setting maps onto one
//! [`orbit_lsm::Options`] field; `host/lsm/DESIGN.md` says what each means.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use orbit_lsm::{Db, Options, SyncMode, TryWrite, WriteBatch};
use orbit_storage::kv::{Applied, KvOp, KvStorage, OrderedKv};
use orbit_storage::{
    BackendKind, Durability, EngineMetric, LsmTreeConfig, Storage, StorageError, StorageResult,
};

#[async_trait::async_trait]
impl crate::Backend for LsmTreeConfig {
    async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        crate::open_blocking(BackendKind::LsmTree, self, open).await
    }
}

/// Opens the tree `config` describes behind the storage contract.
pub(crate) fn open(config: &LsmTreeConfig) -> StorageResult<KvStorage<LsmEngine>> {
    let options = Options {
        sync: match config.durability {
            Durability::Sync => SyncMode::PerCommit,
            Durability::Periodic => {
                SyncMode::Periodic(config.sync_interval.max(Duration::from_millis(1)))
            }
            Durability::None => SyncMode::None,
        },
        memtable_size: config.memtable_size,
        max_memtables: crate::count(config.max_memtables),
        bloom_fp_rate: config.bloom_fp_rate,
        enable_compaction: config.enable_compaction,
        compaction_threshold: crate::count(config.compaction_threshold),
        block_cache_size: config.block_cache_size,
        compression: config.enable_compression,
        block_size: usize::try_from(config.block_size).unwrap_or(usize::MAX),
        ..Options::default()
    };
    let db = Db::open(&config.data_dir, options).map_err(error)?;
    tracing::info!(dir = %config.data_dir, durability = ?config.durability, "lsm tree opened");
    KvStorage::open(LsmEngine(db), config.data_dir.clone())
}

fn error(e: orbit_lsm::Error) -> StorageError {
    match e {
        orbit_lsm::Error::Corrupt { ref path, .. } => StorageError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        orbit_lsm::Error::InvalidArgument(reason) => StorageError::Invalid(reason),
        other => StorageError::Unavailable(other.to_string()),
    }
}

fn batch(ops: &[KvOp]) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for op in ops {
        match op {
            KvOp::Put { key, value } => batch.put(key, value),
            KvOp::Delete { key } => batch.delete(key),
        }
    }
    batch
}

/// An open LSM tree.
pub struct LsmEngine(Db);

impl OrderedKv for LsmEngine {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.0.get(key).map_err(error)
    }

    fn try_get(&self, key: &[u8]) -> StorageResult<Option<Option<Vec<u8>>>> {
        self.0.get_cached(key).map_err(error)
    }

    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()> {
        self.0.write(batch(&ops)).map_err(error)
    }

    fn try_write(&self, ops: &[KvOp]) -> StorageResult<Applied> {
        Ok(match self.0.try_write(&batch(ops)).map_err(error)? {
            TryWrite::Applied => Applied::Durable,
            TryWrite::Pending(position) => Applied::Pending(position),
            TryWrite::WouldBlock => Applied::WouldBlock,
        })
    }

    fn tries_writes(&self) -> bool {
        true
    }

    fn wait_durable(&self, position: u64) -> StorageResult<()> {
        self.0.wait_durable(position).map_err(error)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()> {
        crate::visit_each(self.0.range(lower, upper), error, visit)
    }

    fn sync(&self) -> StorageResult<()> {
        self.0.sync().map_err(error)
    }

    fn disk_bytes(&self) -> Option<u64> {
        Some(self.0.stats().disk_bytes)
    }

    fn metrics(&self) -> Vec<EngineMetric> {
        let s = self.0.stats();
        let gauge =
            |name: &str, help, value| EngineMetric::gauge(format!("lsm_{name}"), help, value);
        let counter = |name: &str, help, value| {
            EngineMetric::counter(format!("lsm_{name}_total"), help, value)
        };
        vec![
            gauge("table_bytes", "Bytes of live tables.", s.table_bytes),
            gauge("memtable_bytes", "Bytes in memtables.", s.memtable_bytes),
            gauge(
                "immutable_memtables",
                "Immutable memtables waiting to be flushed.",
                s.immutable_memtables,
            ),
            gauge(
                "block_cache_bytes",
                "Bytes in the block cache.",
                s.block_cache_bytes,
            ),
            counter("block_cache_hits", "Block cache hits.", s.block_cache_hits),
            counter(
                "block_cache_misses",
                "Block cache misses.",
                s.block_cache_misses,
            ),
            counter("writes", "Batches written.", s.writes),
            counter(
                "wal_syncs",
                "WAL fsyncs (fewer than writes under group commit).",
                s.wal_syncs,
            ),
        ]
    }
}
