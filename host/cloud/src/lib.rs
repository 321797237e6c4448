//! Object-storage backends of the Orbit storage contract: Amazon S3 (and
//! S3-compatible services), Azure Blob Storage and Google Cloud Storage,
//! through `object_store` 0.14. One engine ([`CloudStorage`], module
//! `store`) serves all three; the provider modules only build clients from
//! the typed configs ([`open_s3`], [`open_azure`], [`open_gcp`], or
//! [`open`] for any cloud [`BackendConfig`]). Several `orbit-server`
//! replicas may share one bucket and prefix: the object store's conditional
//! writes are the only coordination, there is no lock service and no
//! shared counter object.
//!
//! # Layout
//! Under the configured prefix `P` (at most 128 bytes):
//! - `P/k/<name>`: one object per key. `<name>` is the key in lowercase hex
//!   for keys of up to 111 bytes ([`DIRECT_KEY_LEN`]), so object names
//!   sort exactly like keys and listing is a name-ordered scan with
//!   `list_with_offset`. Keys of 112 bytes up to
//!   [`orbit_storage::MAX_KEY_LEN`] (64 KiB, all accepted) are named
//!   `hex(first 111 bytes)-hex(sha256(key)[..16])`: such keys sharing their
//!   first 111 bytes form a group whose names sort by hash, and the lister
//!   reads a whole group and sorts it by key (correct, but a listing inside
//!   a large group costs one GET per member). A name is one path segment of
//!   at most 255 bytes (SeaweedFS's segment limit); with the prefix it stays
//!   under 1024 bytes (the S3, Azure and GCS limit). Every object holds its full key, value
//!   and metadata: `ORBK`, a format byte, a JSON header (key, version,
//!   live/tombstone, expiry, pending batch intent, the ids of the last 16
//!   operations that wrote it, write time) and the raw value bytes.
//! - `P/t/<txn>`: transaction objects of in-flight multi-key batches.
//! - `P/probe`: never written; [`CloudStorage::probe`] HEADs it.
//!
//! # Compare-and-set
//! Every put and delete reads the key's object, checks the precondition
//! against the live state (expired entries and tombstones count as
//! absent), and writes the new object with `PutMode::Create` (no object
//! yet) or `PutMode::Update` on the ETag read (S3, Azure) or generation
//! (GCS). A lost race re-reads and re-checks, so an unconditional put is
//! also a CAS loop and no acknowledged write is ever overwritten by a
//! writer that did not see it.
//!
//! Ambiguous writes: a write that fails with a timeout or connection error
//! (after object_store's own retries), or whose retry reports
//! "already exists / precondition failed" because the first attempt had
//! landed, is settled by re-reading the object: each operation writes a
//! unique id (`writer id . sequence`) into the object's 16-entry history,
//! and later writers carry that history forward, so finding the id means
//! the write happened (and at which version). Not finding it means it was
//! not applied, the write is retried from a fresh read (twice at most),
//! and otherwise the error is returned. If the re-read also fails the error
//! says the outcome is unknown. Remaining gap, stated honestly: a request
//! that the service processes after the client gave up on it (and after
//! the re-read) can still land; it can only land if nobody wrote the key
//! in between, because it is conditional on the ETag it read.
//!
//! # Versions
//! A hybrid logical clock per store handle: `max(now_ms << 16, last + 1,
//! floor + 1)` where `floor` is the highest version stored in the key's
//! object (tombstones included). So versions strictly increase within a
//! process, strictly increase per key across replicas (every write reads
//! the key first, and tombstones keep the last version for
//! [`store::TOMBSTONE_GRACE_MS`]), and survive restarts. Not guaranteed
//! with many replicas: a single order of versions across *different*
//! keys written by different replicas (their clocks may differ), and no
//! ABA after a tombstone was purged if a replica's clock is behind the
//! deleting replica's by more than the time since the delete.
//!
//! # Deletes
//! A delete writes a tombstone object (conditional like any write), which
//! keeps the version and the op history. [`orbit_storage::Storage::purge_expired`]
//! removes tombstones older than 60 s; object_store has no conditional
//! delete, so purge HEADs the object and deletes it only if the ETag /
//! generation is still the one it read. A write that lands on a tombstone
//! older than 60 s between that HEAD and the DELETE would be lost; the
//! window is one round trip on a key deleted over a minute ago.
//!
//! # TTL
//! `expires_at` is stored in the object; get, list, preconditions and
//! stats' liveness all compare it with the local clock, so an expired
//! entry is never returned. Purge turns expired entries into tombstones
//! with a write conditional on the ETag it read (a concurrent rewrite
//! wins), so several replicas may purge at once; each removal is counted
//! once.
//!
//! # Batches
//! Truly atomic, with a commit record: the batch reads all its keys,
//! applies its operations to a model (preconditions see earlier operations
//! of the batch), creates `P/t/<txn>` as `pending`, then writes each key's
//! object with an *intent* (the planned state next to the committed one),
//! each conditional on the ETag read. The commit point is one conditional
//! update of the transaction object to `committed`; then the intents are
//! rolled forward and the transaction object is deleted. Readers that meet
//! an intent read its transaction object: committed -> the planned state,
//! pending or aborted -> the old state. Writers that meet an intent of a
//! pending batch wait, and after [`store::TXN_TIMEOUT_MS`] abort it with a
//! conditional write to its transaction object, which makes the batch's
//! own commit fail: a batch is never half applied. Single-operation
//! batches are plain writes. Cost: `3 + 2n` requests for `n` keys (plus
//! the reads). Purge cleans up after crashed batches: it writes the settled
//! state of intents whose batch finished (conditional), aborts transactions
//! pending past the timeout, and deletes finished transaction objects that
//! no intent names once they are 10 minutes old
//! ([`store::TXN_RETENTION_MS`]). `tests/replicas.rs` SIGKILLs a batch
//! writer three times and checks that no batch is half applied, no
//! acknowledged batch is lost, and the next writer gets through.
//!
//! # Costs and limits
//! - get: 1 GET (+1 if an intent is pending); put/delete: 1 GET + 1 PUT.
//! - list: LIST pages + 1 GET per returned entry (16 at a time). On Azure
//!   `list_with_offset` filters client-side, so deep cursors re-list.
//! - stats and purge read every object (O(keys) requests): do not use
//!   `stats` for readiness; use [`CloudStorage::probe`] (one HEAD) and the
//!   request counters of [`CloudStorage::remote_stats`].
//!
//! # Settings
//! See `options` for how connection / read / write timeouts and retry
//! counts map onto object_store, and each provider module for its
//! settings. Secrets are resolved once at open through
//! [`orbit_storage::SecretRef::resolve`], never logged, and scrubbed from
//! every error message; `Debug` of a store prints no secret.
//!
//! # What was tested
//! S3 against SeaweedFS 4.48 (`weed mini`, credentials enforced), Azure
//! against Azurite 3.35, GCS against the small XML-API server in
//! `tests/support/gcs.rs`, which honours `x-goog-if-generation-match` the
//! way object_store uses it. GCS was not checked against Google.

mod azure;
mod clock;
mod expiry;
mod gcp;
mod layout;
mod lease;
mod options;
mod provider;
mod remote;
mod s3;
pub mod store;

use std::sync::Arc;

pub use azure::open_azure;
pub use gcp::open_gcp;
pub use layout::{DIRECT_KEY_LEN, MAX_PREFIX_LEN};
pub use lease::DEFAULT_LEASE_PERIOD;
pub use s3::{open_s3, open_s3_wrapped};
pub use store::CloudStorage;

use orbit_storage::{BackendConfig, Storage, StorageError};

/// Opens the cloud backend `config` names; `Invalid` for a local backend.
/// Sends no request (see [`open_checked`]).
pub fn open(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(open_concrete(config)?)
}

/// Opens the cloud backend `config` names and proves that the store
/// honours conditional writes ([`CloudStorage::check_conditional_writes`],
/// five requests): the server's start-up path. Fails, naming the provider,
/// the endpoint and what failed, if the store cannot be reached or ignores
/// preconditions.
pub async fn open_checked(config: &BackendConfig) -> Result<Arc<dyn Storage>, StorageError> {
    let store = open_concrete(config)?;
    store.check_conditional_writes().await?;
    Ok(store)
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
