//! Opening the configured backend.
//!
//! Every backend arrives as a typed [`BackendConfig`] from the translator
//! plugin and leaves as an `Arc<dyn Storage>`; nothing past [`open`] knows
//! which one it is. The local engines (RocksDB, and the in-house LSM tree and
//! copy-on-write B+tree) only implement [`orbit_storage::kv::OrderedKv`]; the
//! storage contract on top of them is written once, in `orbit_storage::kv`.
//!
//! Object storage (S3, Azure Blob, GCS) lives in `orbit-cloud`.
//!
//! This crate exists so the contract crate stays free of C++ and cloud SDKs:
//! engine authors and the conformance suite depend on `orbit-storage` alone.

mod cow;
mod disk;
mod lsm;
mod rocks;

use std::sync::Arc;
use std::time::Duration;

use orbit_memory::MemoryStorage;
use orbit_storage::{BackendConfig, Durability, Storage, StorageError};

pub use cow::CowEngine;
pub use lsm::LsmEngine;
pub use rocks::RocksEngine;

/// Opens the backend `config` describes, on a blocking thread (engine
/// recovery, counting keys). Object storage is opened on the caller's task
/// and proves at once that the store honours conditional writes
/// (`orbit_cloud::open_checked`, five requests): an unreachable store or one
/// that ignores preconditions fails here, with the provider, the endpoint
/// and what failed.
pub async fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    if matches!(
        config,
        BackendConfig::S3(_) | BackendConfig::Azure(_) | BackendConfig::Gcp(_)
    ) {
        return orbit_cloud::open_checked(config).await;
    }
    let config = config.clone();
    let kind = config.kind();
    tokio::task::spawn_blocking(move || open_blocking(&config))
        .await
        .map_err(|e| StorageError::Unavailable(format!("opening the {kind} backend failed: {e}")))?
}

fn open_blocking(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    match config {
        BackendConfig::Memory(c) => Ok(Arc::new(MemoryStorage::open(c)?)),
        BackendConfig::CowBtree(c) => Ok(Arc::new(cow::open(c)?)),
        BackendConfig::LsmTree(c) => Ok(Arc::new(lsm::open(c)?)),
        BackendConfig::Rocksdb(c) => Ok(Arc::new(rocks::open(c)?)),
        BackendConfig::S3(_) | BackendConfig::Azure(_) | BackendConfig::Gcp(_) => {
            orbit_cloud::open(config)
        }
    }
}

/// How often the server must call `flush` for the backend to honour its
/// configuration (`None`: the backend is durable by itself).
pub fn flush_interval(config: &BackendConfig) -> Option<Duration> {
    match config {
        BackendConfig::Memory(c) if c.disk_backup => {
            Some(Duration::from_secs(c.backup_interval_secs.max(1)))
        }
        // The LSM tree and the B+tree sync periodically by themselves.
        BackendConfig::Rocksdb(c) if c.durability == Durability::Periodic => {
            Some(Duration::from_millis(c.sync_interval_ms.max(1)))
        }
        _ => None,
    }
}

/// Feeds an engine's range iterator to an [`orbit_storage::kv::OrderedKv::scan`]
/// visitor until it asks to stop; the first engine error ends the scan.
fn visit_each<E>(
    items: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), E>>,
    error: fn(E) -> StorageError,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), StorageError> {
    for item in items {
        let (key, value) = item.map_err(error)?;
        if !visit(&key, &value) {
            break;
        }
    }
    Ok(())
}
