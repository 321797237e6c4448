//! The client's errors: one variant per thing a caller decides differently on.

use std::time::Duration;

/// What went wrong with a request.
///
/// [`Error::Transport`] and [`Error::Timeout`] on a *write* are ambiguous:
/// the server may have applied it. The client retries only writes whose
/// precondition makes a repeat harmless and settles the ambiguity itself
/// (see the crate documentation); for an unconditional write the caller has
/// to read the key back if it needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A precondition (`If-Match`, `If-None-Match: *`, a batch's
    /// `if_version` / `if_absent`) did not hold. `current_version` is the
    /// key's version when the server checked (`None`: it did not exist).
    #[error("precondition failed for key {key:?}: {}", match current_version {
        Some(v) => format!("its current version is {v}"),
        None => "it does not exist".to_string(),
    })]
    PreconditionFailed {
        key: String,
        current_version: Option<u64>,
    },
    /// The key (or route) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server requires a bearer token (`ORBIT_API_TOKEN`) and this one
    /// is missing or wrong.
    #[error("unauthorized: the server wants `Authorization: Bearer <token>` (ORBIT_API_TOKEN)")]
    Unauthorized,
    /// A key or value over the server's limits (`ORBIT_MAX_KEY_BYTES`,
    /// `ORBIT_MAX_VALUE_BYTES`).
    #[error("too large: {0}")]
    TooLarge(String),
    /// Any other error answer of the server (4xx for a bad request, 5xx for
    /// a backend failure), with its JSON error code and message.
    #[error("server answered {status} {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The request did not get an answer: connection refused or reset,
    /// body cut short, and so on.
    #[error("transport error: {0}")]
    Transport(String),
    /// No answer within the client's per-request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A node renewed its membership with a challenge token that is not the
    /// one stored: the record belongs to another incarnation (the node was
    /// declared dead and the name reused), so this node must not go on.
    #[error("node {node} holds another challenge token: this incarnation was replaced")]
    ChallengeMismatch { node: String },
    /// A lease this node held is gone or held by someone else (expired, or
    /// the node was declared dead and its record removed).
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// Something the caller gave cannot be sent (bad base URL, bad key), or
    /// the server's answer could not be understood.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl Error {
    /// Whether the failure may go away by itself (a repeat could succeed):
    /// transport errors, timeouts, 5xx answers and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Timeout(_) => true,
            Error::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The current version carried by a failed precondition.
    pub fn current_version(&self) -> Option<u64> {
        match self {
            Error::PreconditionFailed {
                current_version, ..
            } => *current_version,
            _ => None,
        }
    }

    /// A short label for metrics (`precondition_failed`, `timeout`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Error::PreconditionFailed { .. } => "precondition_failed",
            Error::NotFound(_) => "not_found",
            Error::Unauthorized => "unauthorized",
            Error::TooLarge(_) => "too_large",
            Error::Server { .. } => "server_error",
            Error::Transport(_) => "transport",
            Error::Timeout(_) => "timeout",
            Error::ChallengeMismatch { .. } => "challenge_mismatch",
            Error::LeaseLost(_) => "lost",
            Error::Invalid(_) => "invalid",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
