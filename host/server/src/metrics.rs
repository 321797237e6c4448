//! Prometheus metrics, in one registry, rendered on the metrics port.
//!
//! Names (all prefixed `orbit_`): HTTP requests and latency by route, method
//! and status; backend operations, errors and latency by backend and
//! operation; plugin calls and latency by role, function and outcome; health
//! readiness; backend size; uptime. The PrometheusRule in `k8s/` uses only
//! these.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use orbit_plugin_runtime::{CallObserver, PluginError, Role};
use orbit_storage::EngineMetric;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
    pub operation: String,
    /// `ok`, or a storage error kind (`conflict`, `io`, `unavailable`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendOpLabels {
    pub backend: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub role: String,
    pub function: String,
    /// `ok`, or a plugin error kind (`trap`, `cpu_deadline`, `memory_limit`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginFnLabels {
    pub role: String,
    pub function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub role: String,
    /// `ok` (health: swapped in), `pending_restart` (selector, translator:
    /// accepted for the next start) or `refused`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLoadLabels {
    pub role: String,
    /// How the code was obtained: `hit`, `miss`, `invalid`, `disabled`.
    pub cache: String,
}

/// The plugin version in service for a role.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginInfoLabels {
    pub role: String,
    /// `embedded:<name>` or the file path.
    pub source: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendKindLabel {
    pub backend: String,
}

fn latency_histogram() -> Histogram {
    // 25 us .. ~13 s
    Histogram::new(exponential_buckets(0.000_025, 2.0, 20))
}

/// One request series: its counter and its latency histogram (both share
/// their storage with the series in the family, so the exposition is the
/// same as recording through the family).
struct Series {
    count: Counter,
    duration: Histogram,
}

/// (method, status) -> route -> series.
type HttpSeries = HashMap<(&'static str, u16), HashMap<Box<str>, Series>>;

/// The series requests and backend operations have used, resolved once: a
/// request then neither allocates its label strings nor looks its labels up
/// twice (counter and histogram) in the families. Keyed by the same label
/// values as the families, so it is bounded as they are.
#[derive(Default)]
struct SeriesCache {
    http: RwLock<HttpSeries>,
    /// (backend, operation, outcome) -> series.
    backend: RwLock<HashMap<(&'static str, &'static str, &'static str), Series>>,
}

/// Every metric the server exports.
pub struct Metrics {
    cache: SeriesCache,
    registry: Registry,
    started: Instant,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pub backend_operations: Family<BackendLabels, Counter>,
    pub backend_duration: Family<BackendOpLabels, Histogram, fn() -> Histogram>,
    pub plugin_calls: Family<PluginLabels, Counter>,
    pub plugin_duration: Family<PluginFnLabels, Histogram, fn() -> Histogram>,
    pub plugin_reloads: Family<ReloadLabels, Counter>,
    pub plugin_loads: Family<PluginLoadLabels, Counter>,
    /// 1 for the version each role runs (one series per role).
    pub plugin_info: Family<PluginInfoLabels, Gauge>,
    plugin_in_service: std::sync::Mutex<std::collections::HashMap<String, PluginInfoLabels>>,
    pub ready: Gauge,
    pub backend_keys: Family<BackendKindLabel, Gauge>,
    pub backend_bytes: Family<BackendKindLabel, Gauge>,
    uptime: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orbit");
        let m = Metrics {
            registry: Registry::default(),
            cache: SeriesCache::default(),
            started: Instant::now(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            backend_operations: Family::default(),
            backend_duration: Family::new_with_constructor(latency_histogram),
            plugin_calls: Family::default(),
            plugin_duration: Family::new_with_constructor(latency_histogram),
            plugin_reloads: Family::default(),
            plugin_loads: Family::default(),
            plugin_info: Family::default(),
            plugin_in_service: Default::default(),
            ready: Gauge::default(),
            backend_keys: Family::default(),
            backend_bytes: Family::default(),
            uptime: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            m.http_duration.clone(),
        );
        registry.register(
            "backend_operations",
            "Backend operations by backend, operation and outcome",
            m.backend_operations.clone(),
        );
        registry.register(
            "backend_operation_duration_seconds",
            "Backend operation latency",
            m.backend_duration.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls by role, function and outcome",
            m.plugin_calls.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call latency",
            m.plugin_duration.clone(),
        );
        registry.register(
            "plugin_reloads",
            "Changed plugin files by role and outcome (health: ok, refused; selector and translator: pending_restart, refused)",
            m.plugin_reloads.clone(),
        );
        // Every series starts at 0, so the first refusal is an increase that
        // alerts (`OrbitPluginReplacementRefused`) can see.
        for role in orbit_plugin_runtime::Role::ALL {
            let changed = match role {
                orbit_plugin_runtime::Role::Health => "ok",
                _ => "pending_restart",
            };
            for outcome in [changed, "refused"] {
                let _zero = m.plugin_reloads.get_or_create(&ReloadLabels {
                    role: role.name().into(),
                    outcome: outcome.into(),
                });
            }
        }
        registry.register(
            "plugin_loads",
            "Plugin loads by role and precompiled-cache result (hit, miss, invalid, disabled)",
            m.plugin_loads.clone(),
        );
        registry.register(
            "plugin_info",
            "The plugin version in service for each role: source and sha256 (value 1)",
            m.plugin_info.clone(),
        );
        registry.register(
            "ready",
            "1 when the health plugin's last verdict was ready",
            m.ready.clone(),
        );
        registry.register(
            "backend_keys",
            "Keys held by the backend (not exported for object storage, which does not count keys cheaply)",
            m.backend_keys.clone(),
        );
        registry.register(
            "backend_bytes",
            "Bytes of keys and values held by the backend (not exported for object storage)",
            m.backend_bytes.clone(),
        );
        registry.register(
            "uptime_seconds",
            "Seconds since the server started",
            m.uptime.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text exposition of every metric, with the backend's
    /// engine-specific ones (`orbit_engine_*`) read at this scrape.
    pub fn render(&self, engine: &[EngineMetric]) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        let engine = render_engine(engine);
        match out.rfind("# EOF") {
            Some(at) => out.insert_str(at, &engine),
            None => out.push_str(&engine),
        }
        out
    }

    /// Counts one plugin load by how its code was obtained.
    pub fn plugin_loaded(&self, info: &orbit_plugin_runtime::PluginInfo) {
        self.plugin_loads
            .get_or_create(&PluginLoadLabels {
                role: info.role.name().into(),
                cache: info.cache.label().into(),
            })
            .inc();
    }

    /// Marks `info` as the version in service for its role (a hot reload
    /// replaces the previous series).
    pub fn plugin_in_service(&self, info: &orbit_plugin_runtime::PluginInfo) {
        let labels = PluginInfoLabels {
            role: info.role.name().into(),
            source: info.source.clone(),
            sha256: info.sha256.clone(),
        };
        let mut current = self
            .plugin_in_service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = current.insert(labels.role.clone(), labels.clone()) {
            self.plugin_info.remove(&old);
        }
        self.plugin_info.get_or_create(&labels).set(1);
    }

    /// Counts one HTTP request and records its latency, by route template,
    /// method label and status (`orbit_http_requests`,
    /// `orbit_http_request_duration_seconds`).
    pub fn record_http(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(s) = self
            .cache
            .http
            .read()
            .get(&(method, status))
            .and_then(|routes| routes.get(route))
        {
            s.count.inc();
            s.duration.observe(secs);
            return;
        }
        let labels = HttpLabels {
            route: route.to_string(),
            method: method.to_string(),
            status: status.to_string(),
        };
        let s = Series {
            count: self.http_requests.get_or_create_owned(&labels),
            duration: self.http_duration.get_or_create_owned(&labels),
        };
        s.count.inc();
        s.duration.observe(secs);
        self.cache
            .http
            .write()
            .entry((method, status))
            .or_default()
            .entry(route.into())
            .or_insert(s);
    }

    /// Counts one backend operation by outcome and records its latency
    /// (`orbit_backend_operations`, `orbit_backend_operation_duration_seconds`).
    pub fn record_backend(
        &self,
        backend: &'static str,
        operation: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let secs = elapsed.as_secs_f64();
        let key = (backend, operation, outcome);
        if let Some(s) = self.cache.backend.read().get(&key) {
            s.count.inc();
            s.duration.observe(secs);
            return;
        }
        let s = Series {
            count: self.backend_operations.get_or_create_owned(&BackendLabels {
                backend: backend.into(),
                operation: operation.into(),
                outcome: outcome.into(),
            }),
            duration: self.backend_duration.get_or_create_owned(&BackendOpLabels {
                backend: backend.into(),
                operation: operation.into(),
            }),
        };
        s.count.inc();
        s.duration.observe(secs);
        self.cache.backend.write().entry(key).or_insert(s);
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

impl CallObserver for Metrics {
    fn observe(
        &self,
        role: Role,
        function: &'static str,
        elapsed: Duration,
        outcome: Result<(), &PluginError>,
    ) {
        let outcome = match outcome {
            Ok(()) => "ok",
            Err(e) => e.kind(),
        };
        self.plugin_calls
            .get_or_create(&PluginLabels {
                role: role.name().into(),
                function: function.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.plugin_duration
            .get_or_create(&PluginFnLabels {
                role: role.name().into(),
                function: function.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Engine metrics in OpenMetrics text: a counter family is named without
/// `_total`, its sample with it.
fn render_engine(metrics: &[EngineMetric]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for m in metrics {
        let sample = format!("orbit_engine_{}", m.name);
        let (family, kind) = match sample.strip_suffix("_total") {
            Some(family) if m.counter => (family.to_string(), "counter"),
            _ => (sample.clone(), "gauge"),
        };
        let _ = writeln!(out, "# HELP {family} {}", m.help);
        let _ = writeln!(out, "# TYPE {family} {kind}");
        let _ = writeln!(out, "{sample} {}", m.value);
    }
    out
}
