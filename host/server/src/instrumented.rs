//! A [`Storage`] wrapper that measures every backend operation: Prometheus
//! counters and histograms, plus a short window of recent latencies and
//! errors that the health report is built from.
//!
//! Outcomes that are the caller's doing (a failed precondition, an invalid
//! request, a full store) are counted by kind but are not backend errors for
//! health purposes; I/O, corruption and unavailability are.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use orbit_plugin_runtime::types as wit;
use orbit_storage::{
    BackendKind, BatchOp, Entry, ListPage, ListQuery, Precondition, PutOptions, Storage,
    StorageError, StorageResult, StorageStats, Version,
};

use crate::metrics::Metrics;

/// How far back the health report looks.
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_SAMPLES_PER_OP: usize = 4096;
const MAX_RECENT_ERRORS: usize = 16;

#[derive(Default)]
struct Window {
    /// Per operation: (when, latency in microseconds, failed).
    samples: HashMap<&'static str, VecDeque<(Instant, u64, bool)>>,
    errors: VecDeque<(Instant, wit::RecentError)>,
}

impl Window {
    fn record(
        &mut self,
        op: &'static str,
        now: Instant,
        latency: Duration,
        error: Option<&StorageError>,
    ) {
        let q = self.samples.entry(op).or_default();
        if q.len() == MAX_SAMPLES_PER_OP {
            q.pop_front();
        }
        let failed = error.is_some();
        q.push_back((now, latency.as_micros() as u64, failed));
        if let Some(e) = error {
            if self.errors.len() == MAX_RECENT_ERRORS {
                self.errors.pop_front();
            }
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            self.errors.push_back((
                now,
                wit::RecentError {
                    unix_ms,
                    operation: op.into(),
                    message: e.to_string(),
                },
            ));
        }
    }
}

/// Recent-window figures for the health report.
pub struct WindowSummary {
    pub operations: u64,
    pub errors: u64,
    pub recent_errors: Vec<wit::RecentError>,
    pub latencies: Vec<wit::LatencySummary>,
}

/// The backend as the rest of the server uses it.
pub struct InstrumentedStorage {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    backend: BackendKind,
    window: Mutex<Window>,
}

impl InstrumentedStorage {
    /// `inner`, a store of the `backend` backend.
    pub fn new(inner: Arc<dyn Storage>, backend: BackendKind, metrics: Arc<Metrics>) -> Self {
        InstrumentedStorage {
            inner,
            metrics,
            backend,
            window: Mutex::new(Window::default()),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// Sets the size gauges from a stats answer.
    fn record_sizes(&self, r: &StorageResult<StorageStats>) {
        // Unknown sizes (object storage) leave the gauges unset rather
        // than reporting zero.
        if let Ok(s) = r
            && s.sizes_known
        {
            let label = crate::metrics::BackendKindLabel {
                backend: self.backend.name().to_string(),
            };
            self.metrics
                .backend_keys
                .get_or_create(&label)
                .set(s.keys as i64);
            self.metrics
                .backend_bytes
                .get_or_create(&label)
                .set(s.bytes as i64);
        }
    }

    fn observe<T>(&self, op: &'static str, started: Instant, result: &StorageResult<T>) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started);
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics
            .record_backend(self.backend.name(), op, outcome, elapsed);
        let backend_error = result.as_ref().err().filter(|e| is_backend_failure(e));
        self.window.lock().record(op, now, elapsed, backend_error);
    }

    /// Operations, errors and latency percentiles over the last [`WINDOW`].
    pub fn summary(&self) -> WindowSummary {
        let cutoff = Instant::now().checked_sub(WINDOW);
        let fresh = |t: &Instant| cutoff.is_none_or(|c| *t >= c);
        let w = self.window.lock();
        let mut operations = 0;
        let mut errors = 0;
        let mut latencies = Vec::new();
        let mut ops: Vec<_> = w.samples.iter().collect();
        ops.sort_by_key(|(op, _)| *op);
        for (op, samples) in ops {
            let mut lat: Vec<u64> = samples
                .iter()
                .filter(|s| fresh(&s.0))
                .map(|s| s.1)
                .collect();
            if lat.is_empty() {
                continue;
            }
            operations += lat.len() as u64;
            errors += samples.iter().filter(|s| fresh(&s.0) && s.2).count() as u64;
            lat.sort_unstable();
            let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
            latencies.push(wit::LatencySummary {
                operation: op.to_string(),
                count: lat.len() as u64,
                p50_us: pct(0.50),
                p99_us: pct(0.99),
                max_us: *lat.last().unwrap_or(&0),
            });
        }
        let recent_errors = w
            .errors
            .iter()
            .filter(|(t, _)| fresh(t))
            .map(|(_, e)| e.clone())
            .collect();
        WindowSummary {
            operations,
            errors,
            recent_errors,
            latencies,
        }
    }
}

/// Failures of the backend itself, as opposed to refusals of a request.
fn is_backend_failure(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::Io { .. } | StorageError::Corrupt { .. } | StorageError::Unavailable(_)
    )
}

#[async_trait]
impl Storage for InstrumentedStorage {
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        let t = Instant::now();
        let r = self.inner.get(key).await;
        self.observe("get", t, &r);
        r
    }

    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version> {
        let t = Instant::now();
        let r = self.inner.put(key, value, options).await;
        self.observe("put", t, &r);
        r
    }

    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        let t = Instant::now();
        let r = self.inner.delete(key, precondition).await;
        self.observe("delete", t, &r);
        r
    }

    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        let t = Instant::now();
        let r = self.inner.list(query).await;
        self.observe("list", t, &r);
        r
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        let t = Instant::now();
        let r = self.inner.batch(ops).await;
        self.observe("batch", t, &r);
        r
    }

    async fn purge_expired(&self) -> StorageResult<u64> {
        let t = Instant::now();
        let r = self.inner.purge_expired().await;
        self.observe("purge_expired", t, &r);
        r
    }

    async fn stats(&self) -> StorageResult<StorageStats> {
        let r = self.inner.stats().await;
        self.record_sizes(&r);
        r
    }

    async fn health_stats(&self) -> StorageResult<StorageStats> {
        let r = self.inner.health_stats().await;
        self.record_sizes(&r);
        r
    }

    async fn flush(&self) -> StorageResult<()> {
        let t = Instant::now();
        let r = self.inner.flush().await;
        self.observe("flush", t, &r);
        r
    }

    fn engine_metrics(&self) -> Vec<orbit_storage::EngineMetric> {
        self.inner.engine_metrics()
    }
}
