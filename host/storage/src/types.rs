//! Values that cross the storage contract.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Version of one write; see the crate docs.
pub type Version = u64;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// The current time in Unix milliseconds.
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stored value with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Bytes,
    pub value: Bytes,
    pub version: Version,
    pub expires_at: Option<UnixMillis>,
}

/// Condition a write must meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// The key must be absent (or expired).
    Absent,
    /// The key must hold exactly this version.
    Version(Version),
}

/// Options of a put.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub precondition: Precondition,
    /// Absolute expiry; `None` keeps the entry until it is overwritten or deleted.
    pub expires_at: Option<UnixMillis>,
}

/// One operation of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        key: Bytes,
        value: Bytes,
        options: PutOptions,
    },
    Delete {
        key: Bytes,
        precondition: Precondition,
    },
}

impl BatchOp {
    pub fn key(&self) -> &Bytes {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } => key,
        }
    }
}

/// Which keys a listing covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Keys starting with this prefix (empty: every key).
    Prefix(Bytes),
    /// `start <= key < end`; `None` is unbounded on that side.
    Range {
        start: Option<Bytes>,
        end: Option<Bytes>,
    },
}

/// A listing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub range: KeyRange,
    /// Most entries in the page (at least 1).
    pub limit: usize,
    /// Resume strictly after this key.
    pub cursor: Option<Bytes>,
}

/// A page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// The key to pass as the next query's cursor; `None` when the listing is
    /// complete.
    pub next_cursor: Option<Bytes>,
}

/// Sizes and counts of a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    /// Entries not yet purged (expired ones may be included until purged).
    pub keys: u64,
    /// Bytes of keys and values of those entries.
    pub bytes: u64,
    /// Bytes on disk, for backends with a disk footprint.
    pub disk_bytes: Option<u64>,
    /// Request counters of a backend that talks to a remote service.
    pub remote: Option<RemoteStats>,
}

/// Counters of a remote backend (object storage) since it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemoteStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// Operations that failed after their last retry.
    pub failures: u64,
    /// The last failure's message (never a secret), if any.
    pub last_error: Option<String>,
}

/// One engine-specific metric, exported as `orbit_engine_<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineMetric {
    /// Snake-case name, e.g. `rocksdb_block_cache_hit_total`.
    pub name: String,
    pub help: &'static str,
    pub value: u64,
    /// A monotonic counter (otherwise a gauge).
    pub counter: bool,
}

impl EngineMetric {
    /// A gauge: a value that goes up and down.
    pub fn gauge(name: impl Into<String>, help: &'static str, value: u64) -> Self {
        EngineMetric {
            name: name.into(),
            help,
            value,
            counter: false,
        }
    }

    /// A monotonic counter; `name` ends in `_total`.
    pub fn counter(name: impl Into<String>, help: &'static str, value: u64) -> Self {
        EngineMetric {
            name: name.into(),
            help,
            value,
            counter: true,
        }
    }
}
