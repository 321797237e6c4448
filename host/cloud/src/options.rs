//! Timeouts and retries shared by the three providers.
//!
//! Exists so that `ORBIT_*_CONNECTION_TIMEOUT`, `ORBIT_S3_READ_TIMEOUT`,
//! `ORBIT_S3_WRITE_TIMEOUT` and `ORBIT_*_RETRY_COUNT` mean the same thing
//! everywhere. Mapping onto object_store:
//! - connection timeout -> `ClientOptions::with_connect_timeout` (TCP + TLS
//!   set-up of one attempt);
//! - read timeout -> `ClientOptions::with_timeout` (whole attempt, until the
//!   response body is read) of the client used for GET, HEAD and LIST;
//! - write timeout -> `ClientOptions::with_timeout` of a second client used
//!   for PUT and DELETE (object_store has one timeout per client, so the
//!   store keeps two clients);
//! - unset read / write timeouts keep object_store's default (30 s);
//! - retry count -> `RetryConfig::max_retries` (0 disables retries), with
//!   object_store's exponential backoff (100 ms doubling, at most 15 s) and
//!   a total retry budget of `(retries + 1) * (connect + request timeout)`.
//!   object_store retries connection failures, 5xx, 429 and 408 on every
//!   request and timeouts only on idempotent ones; our writes are
//!   conditional PUTs, which it treats as not idempotent, so a timed-out
//!   write is settled by the store itself: it re-reads the object and, if
//!   the write is not there, tries again (3 attempts in all; see `DESIGN.md`,
//!   "Ambiguous writes"). `tests/settings.rs` measures both.

use std::time::Duration;

use object_store::{ClientOptions, RetryConfig};

/// object_store's default request timeout, used when none is configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const MIN_TIMEOUT: Duration = Duration::from_secs(1);

pub fn client_options(
    connect: Duration,
    request: Option<Duration>,
    allow_http: bool,
) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(connect.max(MIN_TIMEOUT))
        .with_timeout(request.map_or(DEFAULT_REQUEST_TIMEOUT, |t| t.max(MIN_TIMEOUT)))
        .with_allow_http(allow_http)
}

pub fn retry_config(retries: u64, connect: Duration, request: Option<Duration>) -> RetryConfig {
    let per_attempt =
        connect.max(MIN_TIMEOUT) + request.map_or(DEFAULT_REQUEST_TIMEOUT, |t| t.max(MIN_TIMEOUT));
    // The catalogue bounds retries at 100.
    let retries = u32::try_from(retries).unwrap_or(u32::MAX);
    RetryConfig {
        max_retries: retries as usize,
        retry_timeout: per_attempt * retries.saturating_add(1),
        ..RetryConfig::default()
    }
}
