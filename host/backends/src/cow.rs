//! The `cow_btree` backend: the in-house copy-on-write B+tree
//! (`orbit-cow-btree`) as an [`OrderedKv`] engine. Every `ORBIT_COW_*`
//! setting maps onto one [`orbit_cow_btree::Options`] field;
//! `host/cow-btree/DESIGN.md` says what each means. Under `Periodic` and
//! `None` a commit is kept in memory until the next sync (the periodic one,
//! [`OrderedKv::sync`], or close), so a crash of the process loses the
//! commits since then (DESIGN.md, "Deferred writes").

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use orbit_cow_btree::{Db, Options, SyncMode, WriteBatch};
use orbit_storage::kv::{KvOp, KvStorage, OrderedKv};
use orbit_storage::{
    BackendKind, CowBtreeConfig, Durability, EngineMetric, Storage, StorageError, StorageResult,
};

#[async_trait::async_trait]
impl crate::Backend for CowBtreeConfig {
    async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        crate::open_blocking(BackendKind::CowBtree, self, open).await
    }
}

/// Opens the tree `config` describes behind the storage contract.
pub(crate) fn open(config: &CowBtreeConfig) -> StorageResult<KvStorage<CowEngine>> {
    let dir = Path::new(&config.data_dir);
    let file = dir.join(orbit_cow_btree::FILE_NAME);
    let options = Options {
        sync: match config.durability {
            Durability::Sync => SyncMode::PerCommit,
            Durability::Periodic => {
                SyncMode::Periodic(config.sync_interval.max(Duration::from_millis(1)))
            }
            Durability::None => SyncMode::None,
        },
        max_keys_per_node: crate::count(config.max_keys_per_node),
        compression: config.enable_compression,
        max_group_commit_bytes: config.group_commit_size,
        ..Options::default()
    };
    let db = Db::open(dir, options).map_err(error)?;
    tracing::info!(file = %file.display(), durability = ?config.durability, "copy-on-write B+tree opened");
    KvStorage::open(CowEngine(db), file.display().to_string())
}

fn error(e: orbit_cow_btree::Error) -> StorageError {
    match e {
        orbit_cow_btree::Error::Corrupt { ref path, .. } => StorageError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        orbit_cow_btree::Error::InvalidArgument(reason) => StorageError::Invalid(reason),
        other => StorageError::Unavailable(other.to_string()),
    }
}

/// An open copy-on-write B+tree.
pub struct CowEngine(Db);

impl OrderedKv for CowEngine {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.0.get(key).map_err(error)
    }

    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                KvOp::Put { key, value } => {
                    batch.put(key, value);
                }
                KvOp::Delete { key } => {
                    batch.delete(key);
                }
            }
        }
        self.0.write(batch).map_err(error)
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()> {
        let mut entries = self.0.range(lower, upper);
        while let Some(item) = entries.next_ref() {
            let (key, value) = item.map_err(error)?;
            if !visit(key, value) {
                break;
            }
        }
        Ok(())
    }

    fn sync(&self) -> StorageResult<()> {
        self.0.sync().map_err(error)
    }

    fn disk_bytes(&self) -> Option<u64> {
        Some(self.0.stats().file_bytes)
    }

    fn metrics(&self) -> Vec<EngineMetric> {
        let s = self.0.stats();
        let gauge =
            |name: &str, help, value| EngineMetric::gauge(format!("cow_{name}"), help, value);
        vec![
            gauge("file_bytes", "Length of the database file.", s.file_bytes),
            gauge("used_bytes", "Bytes of the file in use.", s.used_bytes),
            gauge("free_pages", "Pages free for reuse now.", s.free_pages),
            gauge(
                "reserved_pages",
                "Freed pages still reserved for a reader or an unsynced commit.",
                s.reserved_pages,
            ),
            gauge("commit", "Latest commit number.", s.txn),
        ]
    }
}
