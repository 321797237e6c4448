//! `orbit-client`: a Rust client of the Orbit storage host's HTTP API, and
//! Orbit-RS's actor directory and cluster membership on top of it.
//!
//! ```no_run
//! # async fn demo() -> orbit_client::Result<()> {
//! use orbit_client::{Client, ClientConfig, AddressableDirectory, DirectoryConfig};
//! use orbit_client::types::{AddressableReference, Key, NodeId};
//!
//! let client = Client::new(ClientConfig::from_env())?; // ORBIT_URL, ORBIT_API_TOKEN
//! let dir = AddressableDirectory::new(client, DirectoryConfig::default());
//! let actor = AddressableReference::new("Counter", Key::Int32Key { key: 5 });
//! let me = NodeId::new("node-a", "default");
//! if let orbit_client::Acquire::Acquired(held) = dir.acquire(&actor, &me).await? {
//!     let held = dir.renew(&held).await?;   // compare-and-set on held.version
//!     dir.release(&held).await?;            // delete-if-version
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: get / put / compare-and-set / delete / list (a
//!   [`futures::Stream`] over cursors) / atomic batch, TTLs, the bearer
//!   token, one pooled connection set, a per-request timeout, and retries
//!   with exponential backoff and jitter **only where a repeat is
//!   harmless**: reads, and writes with a precondition (a repeat of an
//!   applied conditional write fails its precondition; the `412` is then
//!   settled by reading the key back). Unconditional writes are repeated
//!   only when the connection was never made.
//! - [`AddressableDirectory`] and [`ClusterMembership`]: Orbit-RS's
//!   operations and JSON types ([`types`]), with leases that are correct
//!   under contention; see `DESIGN.md`.
//!
//! It knows nothing of the backend behind the server: every backend keeps
//! the same contract (versions, preconditions, TTL, atomic batches).

pub mod client;
pub mod directory;
pub mod error;
pub mod membership;
pub mod metrics;
pub mod monotonic;
pub mod types;

pub use client::{
    BatchOp, Client, ClientConfig, Condition, Entry, HealthStatus, KeySelection, ListItem,
    ListOptions, PutOptions, RetryPolicy, Written,
};
pub use directory::{
    Acquire, AddressableDirectory, CleanupReport, DirectoryConfig, HeldLease, StoredLease,
};
pub use error::{Error, Result};
pub use membership::{ClusterMembership, HeldNode, MembershipConfig, NodeCleanupReport};
pub use metrics::{MetricsSnapshot, OpStats};
