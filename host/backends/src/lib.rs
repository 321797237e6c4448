//! Opening the configured backend.
//!
//! Every backend arrives as a typed [`BackendConfig`] from the translator
//! plugin and leaves as an `Arc<dyn Storage>`; nothing past [`open`] knows
//! which one it is. Each backend's module implements [`Backend`] for its own
//! configuration type: its opening and its flush schedule live with it. The local engines (RocksDB, and the in-house LSM tree and
//! copy-on-write B+tree) only implement [`orbit_storage::kv::OrderedKv`]; the
//! storage contract on top of them is written once, in `orbit_storage::kv`.
//!
//! Object storage (S3, Azure Blob, GCS) lives in `orbit-cloud`.
//!
//! This crate exists so the contract crate stays free of C++ and cloud SDKs:
//! engine authors and the conformance suite depend on `orbit-storage` alone.

mod cloud;
mod cow;
mod disk;
mod lsm;
mod memory;
mod rocks;

use std::sync::Arc;
use std::time::Duration;

use orbit_storage::{BackendConfig, BackendKind, Storage, StorageError};

pub use cow::CowEngine;
pub use lsm::LsmEngine;
pub use rocks::RocksEngine;

/// What each backend's configuration knows about its backend: how to open
/// it and how often the server must flush it. Each backend implements it
/// for its own configuration type, in its own module.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Opens the backend. Local engines recover on a blocking thread; object
    /// storage is opened on the caller's task and proves at once that the
    /// store honours conditional writes (`orbit_cloud::open_checked`).
    async fn open(&self) -> Result<Arc<dyn Storage>, StorageError>;

    /// How often the server must call `flush` for the backend to honour its
    /// configuration (`None`: the backend is durable by itself).
    fn flush_interval(&self) -> Option<Duration> {
        None
    }
}

/// The [`Backend`] behind a configuration: the one place that lists them.
pub fn backend(config: &BackendConfig) -> &dyn Backend {
    match config {
        BackendConfig::Memory(c) => c,
        BackendConfig::CowBtree(c) => c,
        BackendConfig::LsmTree(c) => c,
        BackendConfig::Rocksdb(c) => c,
        BackendConfig::S3(c) => c,
        BackendConfig::Azure(c) => c,
        BackendConfig::Gcp(c) => c,
    }
}

/// Opens the backend `config` describes.
pub async fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    backend(config).open().await
}

/// How often the server must call `flush` for `config`'s backend.
pub fn flush_interval(config: &BackendConfig) -> Option<Duration> {
    backend(config).flush_interval()
}

/// Runs a local engine's opening of `config` (recovery, counting keys) on a
/// blocking thread.
async fn open_blocking<C: Clone + Send + 'static, S: Storage + 'static>(
    kind: BackendKind,
    config: &C,
    open: fn(&C) -> Result<S, StorageError>,
) -> Result<Arc<dyn Storage>, StorageError> {
    let config = config.clone();
    let storage = tokio::task::spawn_blocking(move || open(&config))
        .await
        .map_err(|e| {
            StorageError::Unavailable(format!("opening the {kind} backend failed: {e}"))
        })??;
    Ok(Arc::new(storage))
}

/// A count the catalogue bounds well below `u32::MAX`, as the engines take
/// it (saturating, should a bound ever be raised past it).
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
