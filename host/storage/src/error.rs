//! Errors of the storage contract.

use crate::Version;

pub type StorageResult<T> = Result<T, StorageError>;

/// Why a storage operation failed. Messages name the key or file involved
/// and never contain a value or a secret.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A precondition did not hold; nothing was written.
    #[error("precondition failed for key {key}: current version is {}", current.map_or("none (absent)".to_string(), |v| v.to_string()))]
    Conflict {
        /// The key, printable (lossy UTF-8).
        key: String,
        current: Option<Version>,
    },
    /// The request is malformed (empty key, key too long, bad range, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A capacity limit is reached (for example `ORBIT_MEMORY_MAX_ENTRIES`).
    #[error("capacity exceeded: {0}")]
    CapacityExceeded(String),
    /// Stored data failed validation (checksum, truncation, format).
    #[error("corrupt data in {path}: {reason}")]
    Corrupt { path: String, reason: String },
    /// An I/O error on a named file or directory.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot serve requests (not open, remote unreachable, ...).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// Short machine-readable name, used as a metrics label and in JSON errors.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Conflict { .. } => "conflict",
            StorageError::Invalid(_) => "invalid",
            StorageError::CapacityExceeded(_) => "capacity",
            StorageError::Corrupt { .. } => "corrupt",
            StorageError::Io { .. } => "io",
            StorageError::Unavailable(_) => "unavailable",
        }
    }

    pub fn io(op: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// The refusal of a key, prefix or range start in the host's private
    /// keyspace (see [`crate::PRIVATE_KEY_PREFIX`]).
    pub fn private_key() -> Self {
        StorageError::Invalid(
            "keys starting with byte 0xFF are reserved for the host's private keyspace; \
             use keys that do not start with 0xFF"
                .into(),
        )
    }

    pub fn conflict(key: &[u8], current: Option<Version>) -> Self {
        StorageError::Conflict {
            key: String::from_utf8_lossy(key).into_owned(),
            current,
        }
    }
}
