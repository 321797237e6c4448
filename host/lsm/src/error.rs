//! The engine's single error type.
//!
//! Exists so every failure names what went wrong and where: corruption carries the file and,
//! where known, the byte offset; I/O errors carry the operation and the path. `Fatal` is the
//! sticky state entered after a failed fsync or a failed log write: from then on the engine
//! refuses writes (reads keep working), because the kernel may have dropped the dirty pages
//! and retrying would silently lose acknowledged data.

use std::path::PathBuf;

/// Every error the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Stored bytes failed a checksum or a structural check.
    #[error("corrupt data in {path}{}: {reason}", offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    Corrupt {
        /// The file holding the bad bytes.
        path: PathBuf,
        /// Byte offset of the bad record or block, when known.
        offset: Option<u64>,
        /// What was expected and what was found.
        reason: String,
    },
    /// An operating-system I/O call failed.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        /// The operation (open, write, fsync, rename, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A durability step failed earlier; the engine refuses all further writes.
    #[error("engine stopped accepting writes after an earlier failure: {0}")]
    Fatal(String),
    /// The caller asked for something the engine cannot do (bad option, empty key, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: Option<u64>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
