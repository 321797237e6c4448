//! The write gate: at shutdown, once requests have drained (or
//! `ORBIT_SHUTDOWN_TIMEOUT` has passed), the server closes the backend to
//! writes before its final flush. Closing waits for the writes already in
//! the backend, and every later write is refused with `503`, so no write
//! can be acknowledged after the final snapshot. Reads go on until exit.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{RwLock, RwLockReadGuard};

use orbit_storage::{
    BatchOp, EngineMetric, Entry, ListPage, ListQuery, Precondition, PutOptions, Storage,
    StorageError, StorageResult, StorageStats, Version,
};

pub struct WriteGate {
    inner: Arc<dyn Storage>,
    /// `true` once closed. Writes hold a read guard while in the backend;
    /// closing takes the write guard (tokio's lock is fair: writes arriving
    /// while it waits queue behind it).
    closed: RwLock<bool>,
}

impl WriteGate {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        WriteGate {
            inner,
            closed: RwLock::new(false),
        }
    }

    /// Waits for the writes in progress, then refuses every later one.
    pub async fn close(&self) {
        *self.closed.write().await = true;
    }

    async fn enter(&self) -> StorageResult<RwLockReadGuard<'_, bool>> {
        let guard = self.closed.read().await;
        if *guard {
            return Err(StorageError::Unavailable(
                "the server is shutting down; the write was not applied".into(),
            ));
        }
        Ok(guard)
    }
}

#[async_trait]
impl Storage for WriteGate {
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version> {
        let _open = self.enter().await?;
        self.inner.put(key, value, options).await
    }

    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        let _open = self.enter().await?;
        self.inner.delete(key, precondition).await
    }

    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        self.inner.list(query).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        let _open = self.enter().await?;
        self.inner.batch(ops).await
    }

    async fn purge_expired(&self) -> StorageResult<u64> {
        let _open = self.enter().await?;
        self.inner.purge_expired().await
    }

    async fn stats(&self) -> StorageResult<StorageStats> {
        self.inner.stats().await
    }

    async fn health_stats(&self) -> StorageResult<StorageStats> {
        self.inner.health_stats().await
    }

    async fn flush(&self) -> StorageResult<()> {
        self.inner.flush().await
    }

    fn engine_metrics(&self) -> Vec<EngineMetric> {
        self.inner.engine_metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_memory::MemoryStorage;
    use orbit_storage::MemoryConfig;

    #[tokio::test]
    async fn closing_waits_for_writes_in_flight_and_refuses_later_ones() {
        let config = MemoryConfig {
            max_entries: 100,
            disk_backup: false,
            ..MemoryConfig::defaults("/unused").expect("the memory defaults")
        };
        let gate = Arc::new(WriteGate::new(Arc::new(
            MemoryStorage::open(&config).unwrap(),
        )));
        gate.put(b"k", Bytes::from_static(b"v"), PutOptions::default())
            .await
            .unwrap();
        // A write holding the gate delays closing until it is done.
        let held = gate.enter().await.unwrap();
        let closing = tokio::spawn({
            let gate = gate.clone();
            async move { gate.close().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !closing.is_finished(),
            "close waits for the write in flight"
        );
        drop(held);
        closing.await.unwrap();
        let refused = gate
            .put(b"k", Bytes::from_static(b"late"), PutOptions::default())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("shutting down"), "{refused}");
        assert!(gate.delete(b"k", Precondition::None).await.is_err());
        assert!(gate.batch(vec![]).await.is_err());
        assert_eq!(
            gate.get(b"k").await.unwrap().unwrap().value,
            "v",
            "reads go on"
        );
    }
}
