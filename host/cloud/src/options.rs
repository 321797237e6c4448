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

pub fn client_options(connect_secs: u64, request: Option<u64>, allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(connect_secs.max(1)))
        .with_timeout(request.map_or(DEFAULT_REQUEST_TIMEOUT, |s| Duration::from_secs(s.max(1))))
        .with_allow_http(allow_http)
}

pub fn retry_config(retries: u32, connect_secs: u64, request: Option<u64>) -> RetryConfig {
    let per_attempt = Duration::from_secs(connect_secs.max(1))
        + request.map_or(DEFAULT_REQUEST_TIMEOUT, |s| Duration::from_secs(s.max(1)));
    RetryConfig {
        max_retries: retries as usize,
        retry_timeout: per_attempt * (retries + 1),
        ..RetryConfig::default()
    }
}
