//! The HTTP client of the storage host's `/v1` API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH, IF_NONE_MATCH};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsSnapshot};

/// Everything but `A-Z a-z 0-9 - _ ~` is percent-encoded in a path segment
/// or query value (the server decodes all of it; `.` and `/` are encoded
/// so no proxy normalises `..` or `//` away).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// Retry policy: exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Upper bound of the first backoff; doubles per attempt.
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The pause before attempt `attempt` (1 = the first retry): a uniform
    /// random duration up to `min(max, initial * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=micros))
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URLs (`http://host:port`) of one store: several replicas of one
    /// bucket, for example. Requests go to the first; a transient failure
    /// moves on to the next for the retry.
    pub endpoints: Vec<String>,
    /// Bearer token (`ORBIT_API_TOKEN` of the server).
    pub token: Option<String>,
    /// Time limit of one attempt, the answer's body included.
    pub request_timeout: Duration,
    /// Time limit of a TCP connect.
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Idle connections kept per endpoint.
    pub pool_max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub pool_idle_timeout: Duration,
}

impl ClientConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientConfig {
            endpoints: vec![endpoint.into()],
            token: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            pool_max_idle_per_host: 64,
            pool_idle_timeout: Duration::from_secs(60),
        }
    }

    /// `ORBIT_URL` (comma-separated endpoints, default
    /// `http://127.0.0.1:8080`) and `ORBIT_API_TOKEN`.
    pub fn from_env() -> Self {
        let urls = std::env::var("ORBIT_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
        let mut c = ClientConfig::new("");
        c.endpoints = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        c.token = std::env::var("ORBIT_API_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        c
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn with_endpoints(mut self, endpoints: Vec<String>) -> Self {
        self.endpoints = endpoints;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// A write's precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Unconditional.
    #[default]
    None,
    /// Only if the key does not exist (`If-None-Match: *`, `if_absent`).
    Absent,
    /// Only if the key is at this version (`If-Match`, `if_version`).
    Version(u64),
}

/// Options of a put.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub condition: Condition,
    /// The key disappears this long after the server applies the write.
    pub ttl: Option<Duration>,
}

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Bytes,
    pub version: u64,
    /// Expiry (Unix milliseconds, server clock), if the key has a TTL.
    pub expires_at_ms: Option<u64>,
}

/// What a successful put returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Written {
    pub version: u64,
    pub expires_at_ms: Option<u64>,
}

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListItem {
    pub key: String,
    pub version: u64,
    pub expires_at_ms: Option<u64>,
    pub size: u64,
    /// The value, when listed with [`ListOptions::values`].
    #[serde(default, rename = "value_base64", deserialize_with = "de_base64")]
    pub value: Option<Bytes>,
}

fn de_base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| {
        STANDARD
            .decode(s.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    })
    .transpose()
}

/// Which keys a listing walks.
#[derive(Debug, Clone)]
pub enum KeySelection {
    Prefix(String),
    /// `start` inclusive, `end` exclusive; `None` is open.
    Range {
        start: Option<String>,
        end: Option<String>,
    },
}

/// A listing.
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub selection: KeySelection,
    /// Keys per request (1-1000).
    pub page_size: usize,
    /// Include the values.
    pub values: bool,
}

impl ListOptions {
    pub fn prefix(prefix: impl Into<String>) -> Self {
        ListOptions {
            selection: KeySelection::Prefix(prefix.into()),
            page_size: 500,
            values: false,
        }
    }

    pub fn with_values(mut self) -> Self {
        self.values = true;
        self
    }

    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n;
        self
    }
}

/// One operation of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        key: String,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
        /// `Condition::Absent` is refused for a delete.
        condition: Condition,
    },
}

impl BatchOp {
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        BatchOp::Put {
            key: key.into(),
            value: value.into(),
            condition: Condition::None,
            ttl: None,
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        BatchOp::Delete {
            key: key.into(),
            condition: Condition::None,
        }
    }

    /// The same operation under `condition`.
    pub fn when(mut self, c: Condition) -> Self {
        match &mut self {
            BatchOp::Put { condition, .. } | BatchOp::Delete { condition, .. } => *condition = c,
        }
        self
    }

    /// The same put with a TTL (no effect on a delete).
    pub fn ttl(mut self, d: Duration) -> Self {
        if let BatchOp::Put { ttl, .. } = &mut self {
            *ttl = Some(d);
        }
        self
    }

    pub fn key(&self) -> &str {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } => key,
        }
    }

    fn condition(&self) -> Condition {
        match self {
            BatchOp::Put { condition, .. } | BatchOp::Delete { condition, .. } => *condition,
        }
    }

    fn to_json(&self) -> Result<serde_json::Value> {
        let mut o = serde_json::Map::new();
        match self {
            BatchOp::Put {
                key,
                value,
                condition,
                ttl,
            } => {
                o.insert("op".into(), "put".into());
                o.insert("key".into(), key.as_str().into());
                match std::str::from_utf8(value) {
                    Ok(text) => o.insert("value".into(), text.into()),
                    Err(_) => o.insert("value_base64".into(), STANDARD.encode(value).into()),
                };
                match condition {
                    Condition::None => {}
                    Condition::Absent => {
                        o.insert("if_absent".into(), true.into());
                    }
                    Condition::Version(v) => {
                        o.insert("if_version".into(), (*v).into());
                    }
                }
                if let Some(ttl) = ttl {
                    o.insert("ttl".into(), ttl_text(*ttl)?.into());
                }
            }
            BatchOp::Delete { key, condition } => {
                o.insert("op".into(), "delete".into());
                o.insert("key".into(), key.as_str().into());
                match condition {
                    Condition::None => {}
                    Condition::Absent => {
                        return Err(Error::Invalid(format!(
                            "delete of {key:?} under `absent`: a delete needs a version or nothing"
                        )));
                    }
                    Condition::Version(v) => {
                        o.insert("if_version".into(), (*v).into());
                    }
                }
            }
        }
        Ok(o.into())
    }
}

fn ttl_text(ttl: Duration) -> Result<String> {
    let ms = ttl.as_millis();
    if ms == 0 {
        return Err(Error::Invalid(
            "a TTL must be at least one millisecond".into(),
        ));
    }
    Ok(format!("{ms}ms"))
}

/// Health of the server, from `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    /// Serving, with a reason to look (the health plugin said `degraded`).
    Degraded {
        reason: String,
    },
    /// Not ready, or not reachable.
    Unhealthy {
        reason: String,
    },
}

impl HealthStatus {
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }
}

/// An answer.
#[derive(Debug)]
struct Response {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// How safely a request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads: repeat on any transient failure.
    Read,
    /// Writes whose precondition fails on a repeat once the first attempt
    /// applied: repeat on any transient failure; a `412` after a repeat is
    /// settled by reading back.
    Conditional,
    /// Unconditional writes: repeat only when the connection was never
    /// made (nothing was sent).
    Unsafe,
}

struct AttemptError {
    error: Error,
    /// The request certainly never reached the server.
    not_sent: bool,
}

struct Inner {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    config: ClientConfig,
    auth: Option<HeaderValue>,
    current: AtomicUsize,
    metrics: Metrics,
}

/// A client of one store. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.config.endpoints)
            .field("token", &self.inner.auth.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        if config.endpoints.is_empty() {
            return Err(Error::Invalid("no endpoint given".into()));
        }
        let mut config = config;
        for e in &mut config.endpoints {
            let trimmed = e.trim_end_matches('/').to_string();
            let uri: hyper::Uri = trimmed
                .parse()
                .map_err(|err| Error::Invalid(format!("endpoint {trimmed:?}: {err}")))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(Error::Invalid(format!(
                    "endpoint {trimmed:?}: expected http://host:port (TLS is terminated in front of the server)"
                )));
            }
            *e = trimmed;
        }
        let auth = config
            .token
            .as_deref()
            .map(|t| {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| Error::Invalid("the token is not a valid header value".into()))?;
                v.set_sensitive(true);
                Ok::<_, Error>(v)
            })
            .transpose()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                auth,
                current: AtomicUsize::new(0),
                metrics: Metrics::default(),
            }),
        })
    }

    /// A client of `endpoint` with the default settings.
    pub fn connect(endpoint: &str) -> Result<Client> {
        Client::new(ClientConfig::new(endpoint))
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Counters of this client's requests.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// One attempt against the current endpoint.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        headers: &[(hyper::header::HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<Response, AttemptError> {
        let eps = &self.inner.config.endpoints;
        let base = &eps[self.inner.current.load(Ordering::Relaxed) % eps.len()];
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{base}{path}"));
        if let Some(auth) = &self.inner.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| AttemptError {
                error: Error::Invalid(format!("request {path}: {e}")),
                not_sent: true,
            })?;
        let timeout = self.inner.config.request_timeout;
        let exchange = async {
            let res = self
                .inner
                .http
                .request(req)
                .await
                .map_err(|e| AttemptError {
                    not_sent: e.is_connect(),
                    error: Error::Transport(error_chain(&e)),
                })?;
            let (parts, body) = res.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| AttemptError {
                    error: Error::Transport(format!("reading the answer: {e}")),
                    not_sent: false,
                })?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(AttemptError {
                error: Error::Timeout(timeout),
                not_sent: false,
            }),
        }
    }

    /// Sends with retries as `repeat` allows; returns the answer (any
    /// status) and how many attempts it took.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(hyper::header::HeaderName, HeaderValue)],
        body: Bytes,
        repeat: Repeat,
    ) -> Result<(Response, u32)> {
        let policy = &self.inner.config.retry;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&method, path, headers, &body).await;
            let transient = match &outcome {
                Ok(r) => r.status.is_server_error() || r.status == StatusCode::TOO_MANY_REQUESTS,
                Err(e) => e.error.is_transient(),
            };
            let may_repeat = match (&outcome, repeat) {
                (_, Repeat::Read | Repeat::Conditional) => transient,
                (Err(e), Repeat::Unsafe) => e.not_sent,
                (Ok(_), Repeat::Unsafe) => false,
            };
            if !may_repeat || attempt >= policy.max_attempts {
                return match outcome {
                    Ok(r) => Ok((r, attempt)),
                    Err(e) => Err(e.error),
                };
            }
            // Transient: try the next replica, after a jittered pause.
            if self.inner.config.endpoints.len() > 1 {
                self.inner.current.fetch_add(1, Ordering::Relaxed);
            }
            let pause = policy.backoff(attempt);
            tracing::debug!(path, attempt, ?pause, "retrying after a transient failure");
            self.inner.metrics.retried();
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn timed<T>(&self, op: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let r = f.await;
        let outcome = match &r {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        self.inner.metrics.record(op, outcome, started.elapsed());
        r
    }

    /// Reads a key; `None` if it does not exist (or has expired).
    pub async fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.timed("get", self.get_inner(key)).await
    }

    async fn get_inner(&self, key: &str) -> Result<Option<Entry>> {
        let path = kv_path(key)?;
        let (r, _) = self
            .send(Method::GET, &path, &[], Bytes::new(), Repeat::Read)
            .await?;
        match r.status {
            StatusCode::OK => Ok(Some(Entry {
                key: key.to_string(),
                version: etag_version(&r)?,
                expires_at_ms: r
                    .headers
                    .get("x-orbit-expires-at-ms")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
                value: r.body,
            })),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(api_error(&r)),
        }
    }

    /// Writes a key under `options`.
    ///
    /// A conditional put is retried on transient failures; if a repeat
    /// meets `412`, the first attempt may have applied, so the key is read
    /// back: when it holds exactly these bytes (and, for
    /// [`Condition::Version`], a newer version), the write is reported as
    /// done with the version read. Callers for whom identical bytes from
    /// another writer would mean something else put a unique token in the
    /// value (the providers do).
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        options: PutOptions,
    ) -> Result<Written> {
        self.timed("put", self.put_inner(key, value.into(), options))
            .await
    }

    async fn put_inner(&self, key: &str, value: Bytes, options: PutOptions) -> Result<Written> {
        let mut path = kv_path(key)?;
        if let Some(ttl) = options.ttl {
            path.push_str("?ttl=");
            path.push_str(&ttl_text(ttl)?);
        }
        let mut headers = vec![(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )];
        let repeat = match options.condition {
            Condition::None => Repeat::Unsafe,
            Condition::Absent => {
                headers.push((IF_NONE_MATCH, HeaderValue::from_static("*")));
                Repeat::Conditional
            }
            Condition::Version(v) => {
                headers.push((IF_MATCH, etag_value(v)));
                Repeat::Conditional
            }
        };
        let (r, attempts) = self
            .send(Method::PUT, &path, &headers, value.clone(), repeat)
            .await?;
        match r.status {
            StatusCode::OK | StatusCode::CREATED => parse_json::<Written>(&r),
            StatusCode::PRECONDITION_FAILED if attempts > 1 => {
                let failed = api_error(&r);
                match self.get_inner(key).await {
                    Ok(Some(e)) if e.value == value && newer(options.condition, e.version) => {
                        self.inner.metrics.resolved();
                        Ok(Written {
                            version: e.version,
                            expires_at_ms: e.expires_at_ms,
                        })
                    }
                    _ => Err(failed),
                }
            }
            _ => Err(api_error(&r)),
        }
    }

    /// Unconditional put.
    pub async fn set(&self, key: &str, value: impl Into<Bytes>) -> Result<Written> {
        self.put(key, value, PutOptions::default()).await
    }

    /// Creates the key only if it does not exist.
    pub async fn create(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Written> {
        let options = PutOptions {
            condition: Condition::Absent,
            ttl,
        };
        self.put(key, value, options).await
    }

    /// Replaces the key only if it is at `version`.
    pub async fn compare_and_set(
        &self,
        key: &str,
        version: u64,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<Written> {
        let options = PutOptions {
            condition: Condition::Version(version),
            ttl,
        };
        self.put(key, value, options).await
    }

    /// Deletes a key; `false` if it did not exist. With
    /// [`Condition::Version`], a repeat that finds the key gone reports
    /// `true` (that version no longer exists, whoever removed it).
    pub async fn delete(&self, key: &str, condition: Condition) -> Result<bool> {
        self.timed("delete", self.delete_inner(key, condition))
            .await
    }

    async fn delete_inner(&self, key: &str, condition: Condition) -> Result<bool> {
        let path = kv_path(key)?;
        let (headers, repeat) = match condition {
            Condition::None => (vec![], Repeat::Unsafe),
            Condition::Version(v) => (vec![(IF_MATCH, etag_value(v))], Repeat::Conditional),
            Condition::Absent => {
                return Err(Error::Invalid(format!(
                    "delete of {key:?} under `absent`: a delete needs a version or nothing"
                )));
            }
        };
        let (r, attempts) = self
            .send(Method::DELETE, &path, &headers, Bytes::new(), repeat)
            .await?;
        match r.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::PRECONDITION_FAILED => {
                let failed = api_error(&r);
                if attempts > 1 && failed.current_version().is_none() {
                    self.inner.metrics.resolved();
                    return Ok(true);
                }
                Err(failed)
            }
            _ => Err(api_error(&r)),
        }
    }

    /// Deletes the key only if it is at `version`.
    pub async fn delete_if_version(&self, key: &str, version: u64) -> Result<bool> {
        self.delete(key, Condition::Version(version)).await
    }

    /// One page of a listing.
    pub async fn list_page(
        &self,
        options: &ListOptions,
        cursor: Option<&str>,
    ) -> Result<(Vec<ListItem>, Option<String>)> {
        self.timed("list", self.list_page_inner(options, cursor))
            .await
    }

    async fn list_page_inner(
        &self,
        options: &ListOptions,
        cursor: Option<&str>,
    ) -> Result<(Vec<ListItem>, Option<String>)> {
        if options.page_size == 0 || options.page_size > 1000 {
            return Err(Error::Invalid(format!(
                "page size {}: expected 1 to 1000",
                options.page_size
            )));
        }
        let mut q = format!("/v1/kv?limit={}", options.page_size);
        let mut param = |name: &str, v: &str| {
            q.push('&');
            q.push_str(name);
            q.push('=');
            q.push_str(&utf8_percent_encode(v, ENCODE).to_string());
        };
        match &options.selection {
            KeySelection::Prefix(p) => param("prefix", p),
            KeySelection::Range { start, end } => {
                if let Some(s) = start {
                    param("start", s);
                }
                if let Some(e) = end {
                    param("end", e);
                }
            }
        }
        if let Some(c) = cursor {
            param("cursor", c);
        }
        if options.values {
            q.push_str("&values=true");
        }
        #[derive(Deserialize)]
        struct Page {
            items: Vec<ListItem>,
            next_cursor: Option<String>,
        }
        let (r, _) = self
            .send(Method::GET, &q, &[], Bytes::new(), Repeat::Read)
            .await?;
        if r.status != StatusCode::OK {
            return Err(api_error(&r));
        }
        let page: Page = parse_json(&r)?;
        Ok((page.items, page.next_cursor))
    }

    /// Every key of a listing in key order, fetched a page at a time as
    /// the stream is read. A failed page ends the stream with that error.
    pub fn list(
        &self,
        options: ListOptions,
    ) -> impl Stream<Item = Result<ListItem>> + Send + 'static {
        struct State {
            client: Client,
            options: ListOptions,
            cursor: Option<String>,
            buffer: std::vec::IntoIter<ListItem>,
            done: bool,
        }
        let state = State {
            client: self.clone(),
            options,
            cursor: None,
            buffer: Vec::new().into_iter(),
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.buffer.next() {
                    return Some((Ok(item), s));
                }
                if s.done {
                    return None;
                }
                match s.client.list_page(&s.options, s.cursor.as_deref()).await {
                    Ok((items, next)) => {
                        s.done = next.is_none();
                        s.cursor = next;
                        s.buffer = items.into_iter();
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            }
        })
    }

    /// Applies `ops` atomically: all or none. Returns each operation's new
    /// version (`None` for deletes).
    ///
    /// A batch in which some operation is conditional is retried on
    /// transient failures: once the first attempt applied, that
    /// operation's precondition fails on the repeat and nothing is applied
    /// twice. A `412` after a repeat is settled by reading back: every put
    /// holding exactly its bytes and every conditional delete's key gone
    /// means the batch was ours.
    pub async fn batch(&self, ops: &[BatchOp]) -> Result<Vec<Option<u64>>> {
        self.timed("batch", self.batch_inner(ops)).await
    }

    async fn batch_inner(&self, ops: &[BatchOp]) -> Result<Vec<Option<u64>>> {
        if ops.is_empty() || ops.len() > 1000 {
            return Err(Error::Invalid(format!(
                "a batch holds 1 to 1000 operations; this one has {}",
                ops.len()
            )));
        }
        let json: Vec<serde_json::Value> =
            ops.iter().map(BatchOp::to_json).collect::<Result<_>>()?;
        let body = serde_json::to_vec(&serde_json::json!({ "ops": json }))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let repeat = if ops.iter().any(|o| o.condition() != Condition::None) {
            Repeat::Conditional
        } else {
            Repeat::Unsafe
        };
        let headers = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let (r, attempts) = self
            .send(Method::POST, "/v1/batch", &headers, body.into(), repeat)
            .await?;
        #[derive(Deserialize)]
        struct OpResult {
            version: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Answer {
            results: Vec<OpResult>,
        }
        match r.status {
            StatusCode::OK => {
                let a: Answer = parse_json(&r)?;
                Ok(a.results.into_iter().map(|r| r.version).collect())
            }
            StatusCode::PRECONDITION_FAILED if attempts > 1 => {
                let failed = api_error(&r);
                match self.batch_was_applied(ops).await {
                    Some(versions) => {
                        self.inner.metrics.resolved();
                        Ok(versions)
                    }
                    None => Err(failed),
                }
            }
            _ => Err(api_error(&r)),
        }
    }

    /// Whether the store shows `ops` applied (see [`Client::batch`]).
    async fn batch_was_applied(&self, ops: &[BatchOp]) -> Option<Vec<Option<u64>>> {
        let mut versions = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                BatchOp::Put {
                    key,
                    value,
                    condition,
                    ..
                } => match self.get_inner(key).await {
                    Ok(Some(e)) if e.value == value && newer(*condition, e.version) => {
                        versions.push(Some(e.version))
                    }
                    _ => return None,
                },
                BatchOp::Delete { key, condition } => {
                    if *condition != Condition::None
                        && !matches!(self.get_inner(key).await, Ok(None))
                    {
                        return None;
                    }
                    versions.push(None);
                }
            }
        }
        Some(versions)
    }

    /// The server's readiness (`/health/ready`): healthy, degraded with the
    /// health policy's reasons, or unhealthy (not ready, or unreachable).
    pub async fn health(&self) -> HealthStatus {
        let started = Instant::now();
        let status = self.health_inner().await;
        let outcome = match &status {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded { .. } => "degraded",
            HealthStatus::Unhealthy { .. } => "unhealthy",
        };
        self.inner
            .metrics
            .record("health_check", outcome, started.elapsed());
        status
    }

    async fn health_inner(&self) -> HealthStatus {
        #[derive(Deserialize)]
        struct Ready {
            ready: bool,
            #[serde(default)]
            status: String,
            #[serde(default)]
            reasons: Vec<String>,
        }
        let r = match self
            .send(
                Method::GET,
                "/health/ready",
                &[],
                Bytes::new(),
                Repeat::Read,
            )
            .await
        {
            Ok((r, _)) => r,
            Err(e) => {
                return HealthStatus::Unhealthy {
                    reason: format!("unreachable: {e}"),
                };
            }
        };
        let parsed: Option<Ready> = serde_json::from_slice(&r.body).ok();
        let reasons = parsed
            .as_ref()
            .map(|p| p.reasons.join("; "))
            .unwrap_or_default();
        match parsed {
            // The health policy's words: `ok`, `degraded`, `unavailable`.
            Some(p) if p.ready && r.status == StatusCode::OK && p.status != "unavailable" => {
                if matches!(p.status.as_str(), "ok" | "healthy" | "") {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Degraded {
                        reason: if reasons.is_empty() {
                            p.status
                        } else {
                            reasons
                        },
                    }
                }
            }
            Some(_) => HealthStatus::Unhealthy {
                reason: if reasons.is_empty() {
                    format!("not ready ({})", r.status)
                } else {
                    reasons
                },
            },
            None => HealthStatus::Unhealthy {
                reason: format!(
                    "/health/ready answered {} with a body that is not its JSON",
                    r.status
                ),
            },
        }
    }
}

/// Whether a read-back version can be the result of a write under
/// `condition` (for `Version(v)`, only a version above `v`).
fn newer(condition: Condition, version: u64) -> bool {
    match condition {
        Condition::Version(v) => version > v,
        _ => true,
    }
}

fn kv_path(key: &str) -> Result<String> {
    if key.is_empty() {
        return Err(Error::Invalid("the key is empty".into()));
    }
    Ok(format!("/v1/kv/{}", utf8_percent_encode(key, ENCODE)))
}

fn etag_value(v: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{v}\"")).expect("digits and quotes")
}

fn etag_version(r: &Response) -> Result<u64> {
    r.headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_matches('"').parse().ok())
        .ok_or_else(|| Error::Invalid("the answer has no ETag version".into()))
}

fn parse_json<T: serde::de::DeserializeOwned>(r: &Response) -> Result<T> {
    serde_json::from_slice(&r.body).map_err(|e| {
        Error::Invalid(format!(
            "unexpected answer ({}): {e}: {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
        ))
    })
}

/// The typed error of a non-success answer.
fn api_error(r: &Response) -> Error {
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        key: Option<String>,
        current_version: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Wrapper {
        error: Body,
    }
    let b = serde_json::from_slice::<Wrapper>(&r.body)
        .map(|w| w.error)
        .unwrap_or_else(|_| Body {
            message: String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned(),
            ..Default::default()
        });
    match r.status {
        StatusCode::PRECONDITION_FAILED => Error::PreconditionFailed {
            key: b.key.unwrap_or_default(),
            current_version: b.current_version,
        },
        StatusCode::NOT_FOUND => Error::NotFound(b.message),
        StatusCode::UNAUTHORIZED => Error::Unauthorized,
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge(b.message),
        s => Error::Server {
            status: s.as_u16(),
            code: b.code,
            message: b.message,
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_so_the_server_decodes_them_back() {
        assert_eq!(kv_path("a/b c").unwrap(), "/v1/kv/a%2Fb%20c");
        assert_eq!(kv_path("../x").unwrap(), "/v1/kv/%2E%2E%2Fx");
        assert_eq!(kv_path("é").unwrap(), "/v1/kv/%C3%A9");
        assert!(kv_path("").is_err());
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            assert!(p.backoff(attempt) <= p.max_backoff);
        }
        assert!(p.backoff(1) <= p.initial_backoff);
    }

    #[test]
    fn batch_ops_serialise_as_the_api_expects() {
        let put = BatchOp::put("k", "v")
            .when(Condition::Absent)
            .ttl(Duration::from_millis(1500));
        assert_eq!(
            put.to_json().unwrap(),
            serde_json::json!({"op":"put","key":"k","value":"v","if_absent":true,"ttl":"1500ms"})
        );
        let bin = BatchOp::put("k", vec![0xFFu8, 0]).when(Condition::Version(7));
        assert_eq!(
            bin.to_json().unwrap(),
            serde_json::json!({"op":"put","key":"k","value_base64":"/wA=","if_version":7})
        );
        assert!(
            BatchOp::delete("k")
                .when(Condition::Absent)
                .to_json()
                .is_err()
        );
        assert!(
            BatchOp::put("k", "v")
                .ttl(Duration::ZERO)
                .to_json()
                .is_err()
        );
    }

    #[test]
    fn endpoints_must_be_plain_http() {
        assert!(Client::connect("https://x:1").is_err());
        assert!(Client::connect("not a url").is_err());
        assert!(Client::new(ClientConfig::new("x").with_endpoints(vec![])).is_err());
    }

    #[tokio::test]
    async fn endpoint_with_a_trailing_slash_is_accepted() {
        let c = Client::connect("http://127.0.0.1:1/").unwrap();
        assert_eq!(c.config().endpoints, vec!["http://127.0.0.1:1".to_string()]);
    }
}
