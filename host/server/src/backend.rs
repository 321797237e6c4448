//! Opening the configured backend.
//!
//! Every backend arrives as a typed [`BackendConfig`] from the translator and
//! leaves as an `Arc<dyn Storage>`; nothing past this point knows which one
//! it is.

use std::sync::Arc;
use std::time::Duration;

use orbit_storage::{BackendConfig, MemoryStorage, Storage, StorageError};

/// Backends this build can open.
pub const AVAILABLE: &[&str] = &["memory"];

/// Opens the backend `config` describes.
pub async fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    match config {
        BackendConfig::Memory(c) => {
            let c = c.clone();
            let storage = tokio::task::spawn_blocking(move || MemoryStorage::open(&c))
                .await
                .map_err(|e| {
                    StorageError::Unavailable(format!("opening the memory backend failed: {e}"))
                })??;
            Ok(Arc::new(storage))
        }
        other => Err(StorageError::Unavailable(format!(
            "backend {} is not available in this build of orbit-server yet; available: {}",
            other.kind(),
            AVAILABLE.join(", ")
        ))),
    }
}

/// How often the server must call `flush` for the backend to honour its
/// configuration (`None`: the backend is durable by itself).
pub fn flush_interval(config: &BackendConfig) -> Option<Duration> {
    match config {
        BackendConfig::Memory(c) if c.disk_backup => {
            Some(Duration::from_secs(c.backup_interval_secs.max(1)))
        }
        _ => None,
    }
}
