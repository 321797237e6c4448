//! The operator's own endpoints: `/healthz` (the process serves),
//! `/readyz` (the OrbitCluster cache has synced, so reconciles see the
//! cluster's state) and `/metrics` (Prometheus text: reconciles by result,
//! their duration, refusals by reason).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Counters of the reconcile loop, and the readiness flag.
pub struct Telemetry {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    duration: Histogram,
    ready: AtomicBool,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("orbit_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of OrbitCluster resources, by result (ok, error)",
            reconciles.clone(),
        );
        // 1 ms .. ~16 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, API requests included",
            duration.clone(),
        );
        Telemetry {
            registry,
            reconciles,
            duration,
            ready: AtomicBool::new(false),
        }
    }

    /// Records one reconcile.
    pub fn observe(&self, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// The cache has synced: `/readyz` answers 200 from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self)
    }
}

async fn readyz(State(t): State<Arc<Telemetry>>) -> (StatusCode, &'static str) {
    if t.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the OrbitCluster cache has not synced yet",
        )
    }
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        t.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn probes_and_metrics() {
        let t = Arc::new(Telemetry::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = t.clone().router();
        tokio::spawn(async move { axum::serve(listener, router).await });

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let r = get(addr, "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        t.set_ready();
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));

        t.observe(true, Duration::from_millis(3));
        t.observe(false, Duration::from_millis(40));
        t.observe(true, Duration::from_millis(5));
        let m = get(addr, "/metrics").await;
        assert!(
            m.contains("orbit_operator_reconciles_total{result=\"ok\"} 2"),
            "{m}"
        );
        assert!(
            m.contains("orbit_operator_reconciles_total{result=\"error\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("orbit_operator_reconcile_duration_seconds_count 3"),
            "{m}"
        );
    }
}
