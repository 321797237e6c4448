//! What the backend test binaries share: opening a backend, and a fresh
//! directory per conformance case.

use std::path::PathBuf;
use std::sync::Arc;

use orbit_storage::{BackendConfig, Storage};

/// Opens `config`, panicking with the backend's error.
pub async fn open(config: BackendConfig) -> Arc<dyn Storage> {
    let kind = config.kind();
    orbit_backends::open(&config)
        .await
        .unwrap_or_else(|e| panic!("open {kind}: {e}"))
}

/// A fresh directory in cargo's per-target scratch directory. The
/// conformance suite hands out only the store, so the directory outlives
/// the case instead of being removed under an open engine.
pub fn case_dir() -> PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
        .keep()
}
