//! Object-storage backends of the Orbit storage contract: Amazon S3 (and
//! S3-compatible services), Azure Blob Storage and Google Cloud Storage,
//! through `object_store` 0.14. One engine ([`CloudStorage`], module
//! `store`) serves all three; the provider modules only build clients from
//! the typed configs ([`open_s3`], [`open_azure`], [`open_gcp`], or
//! [`open`] for any cloud [`BackendConfig`]; [`open_checked`] is the
//! server's start-up path). Several `orbit-server` replicas may share one
//! bucket and prefix: the object store's conditional writes are the only
//! coordination, there is no lock service and no shared counter object.
//!
//! # Specification
//! The design (key layout, versions, compare-and-set and the settling of
//! ambiguous writes, listing, atomic batches, the expiry index, purge and
//! its lease, costs, settings, what was tested) is specified in
//! `host/cloud/DESIGN.md`, one section per concern; this overview does not
//! repeat it. The contract's own rules (validation, preconditions, TTL
//! visibility, the batch rule) are `orbit_storage::validate` and
//! `orbit_storage::rules`, shared with every other backend.
//!
//! # Modules
//! | concern | module | `DESIGN.md` section |
//! |---|---|---|
//! | the handle, reading a key, the contract's entry points | `store` | Reading |
//! | single-key writes and their settling, the start-up check | `write` | Conditional writes and their settling |
//! | listing and full scans (`stats`, backfill) | `list` | Listing |
//! | atomic multi-key batches | `batch` | Batches |
//! | one `purge_expired`: lease, index backfill, due work | `maintenance`, `purge`, `expiry`, `lease` | Maintenance |
//! | bucket layout and the key object's format | `layout` | Layout |
//! | versions (a hybrid logical clock) | `clock` | Versions |
//! | timeouts, retries, request counters, secrets | `options`, `remote`, `s3`, `azure`, `gcp` | Settings |
//!
//! Tuning constants: [`store::TOMBSTONE_GRACE_MS`],
//! [`store::TXN_TIMEOUT_MS`], [`store::TXN_RETENTION_MS`],
//! [`DEFAULT_LEASE_PERIOD`], [`OPEN_CHECK_DEADLINE`], [`DIRECT_KEY_LEN`],
//! [`MAX_PREFIX_LEN`]. The tests and how to run them are listed in
//! `host/cloud/README.md`.

mod azure;
mod batch;
mod clock;
mod expiry;
mod gcp;
mod hooks;
mod layout;
mod lease;
mod list;
mod maintenance;
mod options;
mod provider;
mod purge;
mod remote;
mod s3;
pub mod store;
mod write;

use std::sync::Arc;

pub use azure::open_azure;
pub use gcp::open_gcp;
#[doc(hidden)]
pub use hooks::{TestHooks, WrapClient};
pub use layout::{DIRECT_KEY_LEN, MAX_PREFIX_LEN};
pub use lease::DEFAULT_LEASE_PERIOD;
pub use s3::open_s3;
#[doc(hidden)]
pub use s3::{open_s3_with_hooks, open_s3_wrapped};
pub use store::CloudStorage;

use orbit_storage::{BackendConfig, Storage, StorageError};

/// Opens the cloud backend `config` names; `Invalid` for a local backend.
/// Sends no request (see [`open_checked`]).
pub fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(open_concrete(config)?)
}

/// How long [`open_checked`] keeps trying a store that does not answer.
pub const OPEN_CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the cloud backend `config` names and proves that the store
/// honours conditional writes ([`CloudStorage::check_conditional_writes`],
/// five requests): the server's start-up path. Fails at once, naming the
/// provider, the endpoint and what failed, if the store ignores
/// preconditions; a store that cannot be reached (or refuses the
/// credentials) is retried every second for [`OPEN_CHECK_DEADLINE`], then
/// its last error is returned.
pub async fn open_checked(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    let store = open_concrete(config)?;
    let started = std::time::Instant::now();
    loop {
        match store.check_conditional_writes().await {
            Ok(()) => return Ok(store),
            Err(StorageError::Unavailable(reason)) if started.elapsed() < OPEN_CHECK_DEADLINE => {
                tracing::warn!(%reason, "object store not answering at start-up; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_concrete(config: &BackendConfig) -> Result<Arc<CloudStorage>, StorageError> {
    Ok(match config {
        BackendConfig::S3(c) => open_s3(c)?,
        BackendConfig::Azure(c) => open_azure(c)?,
        BackendConfig::Gcp(c) => open_gcp(c)?,
        other => {
            return Err(StorageError::Invalid(format!(
                "orbit-cloud does not serve the {:?} backend",
                other.kind()
            )));
        }
    })
}
