//! Readiness and liveness: the host measures (canary write+read, backend
//! stats, the recent-operations window, fresh host facts) and the health
//! plugin decides.
//!
//! A failing health plugin never takes data serving down: its failure makes
//! readiness false with the reason, and the error is counted in the plugin
//! metrics. Verdicts are cached for [`MIN_INTERVAL`] so a burst of probes
//! runs one canary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Mutex;
use utoipa::ToSchema;

use orbit_plugin_runtime::{HealthPlugin, PluginInfo, convert, types as wit};
use orbit_storage::{
    PRIVATE_KEY_PREFIX, Precondition, PutOptions, Storage, StorageStats, now_millis,
};

use crate::context;
use crate::instrumented::{InstrumentedStorage, WINDOW};
use crate::metrics::Metrics;
use crate::settings::ConfigSource;

/// Shortest time between two evaluations.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The answer of `/health/ready`, as JSON.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub live: bool,
    pub status: String,
    pub reasons: Vec<String>,
    pub backend: BackendDetail,
    pub canary: CanaryDetail,
    pub plugin: PluginDetail,
    /// The selector and translator in service, and changed files waiting
    /// for the next start (see `policy`).
    pub policy_plugins: Vec<crate::policy::PolicyPluginDetail>,
    pub uptime_secs: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BackendDetail {
    pub kind: &'static str,
    pub open: bool,
    /// `None` (null): the backend does not count keys cheaply (object
    /// storage), not zero.
    pub keys: Option<u64>,
    pub bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub window_operations: u64,
    pub window_errors: u64,
    pub recent_errors: Vec<String>,
    /// Request counters of a remote backend (object storage).
    pub remote: Option<orbit_storage::RemoteStats>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CanaryDetail {
    pub ok: bool,
    pub latency_us: u64,
    pub error: Option<String>,
}

/// The health plugin in use, and what hot reload last did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginDetail {
    pub source: String,
    pub sha256: String,
    /// `hit`, `miss`, `invalid` or `disabled`: how the code was obtained.
    pub cache: &'static str,
    pub loaded_at_unix_ms: u64,
    /// Successful hot reloads since start.
    pub reloads: u64,
    /// Why the last refused replacement was refused (the previous version
    /// kept serving).
    pub last_reload_error: Option<String>,
}

impl PluginDetail {
    fn new(i: &PluginInfo) -> Self {
        PluginDetail {
            source: i.source.clone(),
            sha256: i.sha256.clone(),
            cache: i.cache.label(),
            loaded_at_unix_ms: now_millis(),
            reloads: 0,
            last_reload_error: None,
        }
    }
}

/// Evaluates health on demand (with a short cache).
pub struct HealthService {
    storage: Arc<InstrumentedStorage>,
    /// Swapped atomically by hot reload; a call in flight keeps its `Arc`
    /// and finishes on the version it started with.
    plugin: parking_lot::RwLock<(Arc<HealthPlugin>, PluginDetail)>,
    source: ConfigSource,
    data_dir: std::path::PathBuf,
    metrics: Arc<Metrics>,
    policy: Arc<crate::policy::PolicyPlugins>,
    canary_key: Bytes,
    last: Mutex<Option<(Instant, Readiness)>>,
    /// Liveness of the last verdict, readable without waiting for a check.
    live: std::sync::atomic::AtomicBool,
}

impl HealthService {
    pub fn new(
        storage: Arc<InstrumentedStorage>,
        plugin: HealthPlugin,
        source: ConfigSource,
        data_dir: std::path::PathBuf,
        metrics: Arc<Metrics>,
        policy: Arc<crate::policy::PolicyPlugins>,
    ) -> Self {
        let who = ["POD_NAME", "HOSTNAME"]
            .iter()
            .find_map(|v| source.env.get(*v).filter(|s| !s.is_empty()).cloned())
            .unwrap_or_else(|| std::process::id().to_string());
        let detail = PluginDetail::new(plugin.info());
        let mut key = vec![PRIVATE_KEY_PREFIX];
        key.extend_from_slice(b"orbit/canary/");
        key.extend_from_slice(who.as_bytes());
        HealthService {
            storage,
            plugin: parking_lot::RwLock::new((Arc::new(plugin), detail)),
            source,
            data_dir,
            metrics,
            policy,
            canary_key: Bytes::from(key),
            last: Mutex::new(None),
            live: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Liveness as of the last evaluation (true before the first).
    pub fn live(&self) -> bool {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current verdict, re-evaluated if the cached one is older than
    /// [`MIN_INTERVAL`].
    pub async fn readiness(&self) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, r)) = last.as_ref()
            && at.elapsed() < MIN_INTERVAL
        {
            return r.clone();
        }
        self.evaluate_into(&mut last).await
    }

    /// A verdict evaluated now, whatever the age of the cached one (which
    /// it replaces): what `/health/ready` answers once the cache runs out.
    pub async fn readiness_now(&self) -> Readiness {
        let mut last = self.last.lock().await;
        self.evaluate_into(&mut last).await
    }

    async fn evaluate_into(&self, last: &mut Option<(Instant, Readiness)>) -> Readiness {
        let r = self.evaluate().await;
        self.live
            .store(r.live, std::sync::atomic::Ordering::Relaxed);
        self.metrics.ready.set(i64::from(r.ready));
        *last = Some((Instant::now(), r.clone()));
        r
    }

    /// The sha256 of the plugin in use.
    pub fn plugin_sha256(&self) -> String {
        self.plugin.read().1.sha256.clone()
    }

    /// A trial call of `candidate` on the current report; `Err` if it fails.
    pub async fn trial(&self, candidate: &HealthPlugin) -> Result<(), String> {
        let (report, _) = self.report(&self.canary().await).await;
        let ctx = context::build(&self.source, &self.data_dir);
        let storage: Arc<dyn Storage> = self.storage.clone();
        candidate
            .evaluate(&ctx, &report, Some(storage))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Puts `plugin` in service; the next readiness check uses it.
    pub async fn swap(&self, plugin: HealthPlugin) {
        let mut detail = PluginDetail::new(plugin.info());
        {
            let mut current = self.plugin.write();
            detail.reloads = current.1.reloads + 1;
            *current = (Arc::new(plugin), detail);
        }
        *self.last.lock().await = None;
    }

    /// Records why a replacement was refused (the current plugin stays).
    pub fn refused(&self, reason: String) {
        self.plugin.write().1.last_reload_error = Some(reason);
    }

    /// Write a private key, read it back, compare, delete.
    async fn canary(&self) -> wit::CanaryResult {
        let started = Instant::now();
        let nonce = Bytes::from(format!("canary-{}", now_millis()));
        let options = PutOptions {
            precondition: Precondition::None,
            expires_at: Some(now_millis() + 60_000),
        };
        let outcome: Result<(), String> = async {
            self.storage
                .put(&self.canary_key, nonce.clone(), options)
                .await
                .map_err(|e| format!("write: {e}"))?;
            let read = self
                .storage
                .get(&self.canary_key)
                .await
                .map_err(|e| format!("read: {e}"))?;
            match read {
                Some(e) if e.value == nonce => {}
                Some(_) => return Err("read back a different value than written".into()),
                None => return Err("read back nothing after a successful write".into()),
            }
            self.storage
                .delete(&self.canary_key, Precondition::None)
                .await
                .map_err(|e| format!("delete: {e}"))?;
            Ok(())
        }
        .await;
        wit::CanaryResult {
            ok: outcome.is_ok(),
            latency_us: started.elapsed().as_micros() as u64,
            error: outcome.err(),
        }
    }

    /// The report the health plugin judges, and the stats behind it.
    async fn report(&self, canary: &wit::CanaryResult) -> (wit::HealthReport, StorageStats) {
        let (open, stats) = match self.storage.health_stats().await {
            Ok(s) => (true, s),
            Err(_) => (false, StorageStats::default()),
        };
        let window = self.storage.summary();
        let report = wit::HealthReport {
            backend: convert::backend_kind_to_wit(self.storage.backend()),
            backend_open: open,
            stats: wit::BackendStats {
                live_keys: stats.keys,
                live_bytes: stats.bytes,
                disk_bytes: stats.disk_bytes,
                remote: stats.remote.clone().map(|r| wit::RemoteStats {
                    requests: r.requests,
                    retries: r.retries,
                    failures: r.failures,
                    last_error: r.last_error,
                }),
            },
            canary: canary.clone(),
            window_secs: WINDOW.as_secs(),
            operations: window.operations,
            errors: window.errors,
            recent_errors: window.recent_errors,
            latencies: window.latencies,
            uptime_secs: self.metrics.uptime().as_secs(),
        };
        (report, stats)
    }

    async fn evaluate(&self) -> Readiness {
        let canary = self.canary().await;
        let (report, stats) = self.report(&canary).await;
        let ctx = context::build(&self.source, &self.data_dir);
        let storage: Arc<dyn Storage> = self.storage.clone();
        let plugin = self.plugin.read().0.clone();
        let (live, ready, status, reasons) =
            match plugin.evaluate(&ctx, &report, Some(storage)).await {
                Ok(v) => (v.live, v.ready, v.status.name().to_string(), v.reasons),
                Err(e) => (
                    true,
                    false,
                    "degraded".to_string(),
                    vec![format!("health plugin failed: {e}")],
                ),
            };
        let open = report.backend_open;
        Readiness {
            ready,
            live,
            status,
            reasons,
            backend: BackendDetail {
                kind: self.storage.backend().name(),
                open,
                keys: stats.sizes_known.then_some(stats.keys),
                bytes: stats.sizes_known.then_some(stats.bytes),
                disk_bytes: stats.disk_bytes,
                window_operations: report.operations,
                window_errors: report.errors,
                recent_errors: report
                    .recent_errors
                    .iter()
                    .map(|e| format!("{}: {}", e.operation, e.message))
                    .collect(),
                remote: stats.remote,
            },
            canary: CanaryDetail {
                ok: canary.ok,
                latency_us: canary.latency_us,
                error: canary.error,
            },
            plugin: self.plugin.read().1.clone(),
            policy_plugins: self.policy.details(),
            uptime_secs: report.uptime_secs,
        }
    }
}
