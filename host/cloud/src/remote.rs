//! Talking to the object store: request counting and error translation.
//!
//! Exists so that readiness can see what the remote service is doing
//! ([`RemoteStats`]: every HTTP attempt is counted where it is sent, in a
//! wrapper around object_store's HTTP client, so object_store's own
//! retries are visible) and so that every remote failure reaches callers as
//! a clear [`StorageError`] that names the provider, the operation and the
//! object, and never a credential: messages are scrubbed of every resolved
//! secret before they leave this module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use orbit_storage::{RemoteStats, StorageError};
use parking_lot::Mutex;

/// Shared request counters of one store.
#[derive(Default)]
pub struct Counters {
    inner: Mutex<CountersInner>,
}

#[derive(Default)]
struct CountersInner {
    stats: RemoteStats,
    /// Method and URL of attempts that failed recently: the next attempt
    /// at the same target within [`RETRY_WINDOW`] is counted as a retry.
    failed: HashMap<String, Instant>,
}

const RETRY_WINDOW: Duration = Duration::from_secs(300);

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    pub fn snapshot(&self) -> RemoteStats {
        self.inner.lock().stats.clone()
    }

    fn attempt(&self, target: &str) {
        let mut inner = self.inner.lock();
        inner.stats.requests += 1;
        if let Some(at) = inner.failed.remove(target)
            && at.elapsed() < RETRY_WINDOW
        {
            inner.stats.retries += 1;
        }
    }

    fn attempt_failed(&self, target: String) {
        let mut inner = self.inner.lock();
        if inner.failed.len() > 10_000 {
            inner.failed.retain(|_, at| at.elapsed() < RETRY_WINDOW);
        }
        inner.failed.insert(target, Instant::now());
    }

    /// An operation failed after its last retry.
    pub fn failure(&self, message: &str) {
        let mut inner = self.inner.lock();
        inner.stats.failures += 1;
        inner.stats.last_error = Some(message.to_string());
    }
}

/// Wraps object_store's reqwest client to count attempts.
#[derive(Debug)]
pub struct CountingConnector {
    pub counters: Arc<Counters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            counters: self.counters.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        // Path only: query strings can carry signatures.
        let target = format!("{} {}", req.method(), req.uri().path());
        self.counters.attempt(&target);
        let result = self.inner.execute(req).await;
        let retryable = match &result {
            Ok(response) => {
                let status = response.status();
                status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408
            }
            Err(_) => true,
        };
        if retryable {
            self.counters.attempt_failed(target);
        }
        result
    }
}

/// Removes resolved secrets from messages.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    pub fn add(&mut self, secret: &str) {
        // Also every line of multi-line secrets (a service-account JSON's
        // private key lines) longer than a few characters.
        for part in std::iter::once(secret).chain(secret.lines()) {
            let part = part.trim();
            if part.len() >= 8 {
                self.secrets.push(part.to_string());
            }
        }
    }

    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// Translates an object_store error of `op` on `path`.
pub fn translate(
    provider: &str,
    op: &str,
    path: &str,
    error: &object_store::Error,
    scrubber: &Scrubber,
) -> StorageError {
    use object_store::Error as E;
    let detail = scrubber.scrub(&error.to_string());
    let message = match error {
        E::Unauthenticated { .. } => format!(
            "{provider} {op} {path}: authentication failed (check the access key / account key / credentials): {detail}"
        ),
        E::PermissionDenied { .. } => format!(
            "{provider} {op} {path}: access denied (wrong credentials, or the credentials are not allowed this operation): {detail}"
        ),
        _ => format!("{provider} {op} {path}: {detail}"),
    };
    StorageError::Unavailable(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubber_hides_secrets() {
        let mut s = Scrubber::default();
        s.add("supersecretvalue");
        assert_eq!(
            s.scrub("bad key supersecretvalue here"),
            "bad key <redacted> here"
        );
    }

    #[test]
    fn retries_are_counted_after_failures() {
        let c = Counters::default();
        c.attempt("GET /a");
        c.attempt_failed("GET /a".into());
        c.attempt("GET /a");
        c.attempt("GET /a");
        let s = c.snapshot();
        assert_eq!((s.requests, s.retries), (3, 1));
    }
}
