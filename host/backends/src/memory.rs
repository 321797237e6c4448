//! The `memory` backend: every key in memory, snapshotted to disk every
//! backup interval when `disk_backup` is on (the server flushes it on that
//! schedule and on SIGTERM).

use std::sync::Arc;
use std::time::Duration;

use orbit_memory::MemoryStorage;
use orbit_storage::{BackendKind, MemoryConfig, Storage, StorageError};

#[async_trait::async_trait]
impl crate::Backend for MemoryConfig {
    async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        crate::open_blocking(BackendKind::Memory, self, MemoryStorage::open).await
    }

    fn flush_interval(&self) -> Option<Duration> {
        self.disk_backup
            .then(|| self.backup_interval.max(Duration::from_secs(1)))
    }
}
