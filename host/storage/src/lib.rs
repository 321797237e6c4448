//! The storage contract of the Orbit host.
//!
//! Every backend (memory in `orbit-memory`, the in-house engines and
//! RocksDB in `orbit-backends`, object storage in `orbit-cloud`) implements
//! the one async [`Storage`] trait; the HTTP API, the WIT `store` interface
//! and the health canary all talk to backends only through it. The
//! conformance suite (`orbit-conformance`, a dev-dependency of every
//! backend) checks that a backend honours the contract below.
//! The rules below are written once, in [`rules`] (preconditions, TTL
//! visibility, batches) and [`validate`] (input), and every backend applies
//! those; [`kv`] is the whole contract on top of any ordered key-value
//! engine.
//!
//! # Contract
//! - Keys are non-empty byte strings of at most [`MAX_KEY_LEN`] bytes. Keys
//!   starting with byte `0xFF` are the host's private keyspace (health
//!   canary); they can never be valid UTF-8, so HTTP clients cannot reach them.
//! - Every successful write gets a *version* from one counter per store that
//!   only increases (also across restarts), so a version names one write:
//!   delete-then-recreate never brings an old version back (no ABA).
//! - Compare-and-set: a write may carry a [`Precondition`]; if it does not
//!   hold, nothing is written and [`StorageError::Conflict`] carries the
//!   current version.
//! - TTL: a key written with `expires_at` is invisible from that instant on
//!   (to get, list and preconditions alike), purged or not.
//! - Batches are all-or-nothing, preconditions included.
//! - Listing is in key order, by prefix or by `[start, end)`, with a limit
//!   and a cursor (the last key of the previous page).

mod config;
mod error;
pub mod rules;
mod types;
pub mod validate;

pub mod kv;

pub use config::*;
pub use error::{StorageError, StorageResult};
pub use orbit_config_syntax::BackendKind;
pub use types::*;

use async_trait::async_trait;
use bytes::Bytes;

/// Longest key any backend must accept; the server may be configured lower.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// First byte of the host's private keys.
pub const PRIVATE_KEY_PREFIX: u8 = 0xFF;

/// Most operations in one batch, for every caller (HTTP, plugins).
pub const MAX_BATCH_OPS: usize = 1000;

/// One key-value store. All methods are safe to call concurrently.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The live entry at `key`, if any.
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>>;

    /// Writes `value` at `key` if `precondition` holds; returns the new version.
    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version>;

    /// Deletes `key` if `precondition` holds; returns whether a live entry was
    /// deleted. Deleting an absent key with [`Precondition::None`] is `Ok(false)`.
    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool>;

    /// One page of live entries in key order.
    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage>;

    /// Applies all operations or none; returns, per operation, the new
    /// version of a put (`None` for a delete).
    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>>;

    /// Removes expired entries; returns how many were removed.
    async fn purge_expired(&self) -> StorageResult<u64>;

    /// Sizes and counts, exact.
    async fn stats(&self) -> StorageResult<StorageStats>;

    /// Sizes and counts for the health report and metrics, read on every
    /// readiness check, so cheap. Backends whose exact count is expensive
    /// (object storage reads every object) return their last count here.
    async fn health_stats(&self) -> StorageResult<StorageStats> {
        self.stats().await
    }

    /// Makes everything acknowledged so far durable (memory: writes a
    /// snapshot). Called periodically by some backends and at shutdown.
    async fn flush(&self) -> StorageResult<()>;

    /// Engine-specific counters and gauges for `/metrics` (for example
    /// RocksDB's statistics). Cheap: called on every scrape.
    fn engine_metrics(&self) -> Vec<EngineMetric> {
        Vec::new()
    }
}
