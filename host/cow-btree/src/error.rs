//! Errors of the engine.
//!
//! Every error names the file it concerns; corruption names the page and what
//! was expected, so an operator can tell a torn disk from a bug. A failed
//! `fsync` leaves the engine in a fatal state (see [`Error::Fatal`]): the
//! kernel may have dropped the dirty pages, so retrying could acknowledge data
//! that is not on disk.

use std::io;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file holds bytes that do not decode: a checksum mismatch, a bad
    /// magic number, an impossible length.
    #[error("corrupt database file {path}{}: {reason}", page_suffix(*.page))]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The page number, when the damage is in a page.
        page: Option<u64>,
        /// What was expected and what was found.
        reason: String,
    },
    /// An operating-system call failed.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        /// The operation (`read page 12`, `fsync`, ...).
        op: String,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An earlier `fsync` failed; the engine refuses further writes until it is
    /// reopened (which recovers the last durable commit).
    #[error("database {path} refuses writes after a failed fsync: {reason}")]
    Fatal {
        /// The database file.
        path: PathBuf,
        /// The original failure.
        reason: String,
    },
    /// The caller passed something the engine cannot store.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn page_suffix(page: Option<u64>) -> String {
    match page {
        Some(p) => format!(" (page {p})"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(op: impl Into<String>, path: &std::path::Path, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: &std::path::Path,
        page: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            page,
            reason: reason.into(),
        }
    }

    /// A copy of this error for every waiter of a group commit (io::Error is
    /// not `Clone`, so the source is re-created from its kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Corrupt { path, page, reason } => Error::Corrupt {
                path: path.clone(),
                page: *page,
                reason: reason.clone(),
            },
            Error::Io { op, path, source } => Error::Io {
                op: op.clone(),
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Fatal { path, reason } => Error::Fatal {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
        }
    }
}
