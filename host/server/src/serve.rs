//! Running the server: plugins decide, the backend opens, the listeners bind,
//! background tasks start, and SIGTERM (or Ctrl-C) drains requests in flight
//! and makes the backend durable (the memory backend's final snapshot)
//! before the process exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use orbit_storage::Storage;

use crate::bootstrap::{self, Plugins};
use crate::gate::WriteGate;
use crate::health::HealthService;
use crate::http::{self, AppState, Limits};
use crate::instrumented::InstrumentedStorage;
use crate::metrics::Metrics;
use crate::policy::PolicyPlugins;
use crate::settings::{ConfigSource, ServerSettings};
use crate::{context, reload};
use orbit_plugin_runtime::Role;

/// Everything the server runs, short of its listeners and background
/// tasks: the plugins have decided, the backend is open, and the routers
/// can be built. [`run`] serves it; tests serve it from their own process.
pub struct App {
    /// What every handler shares.
    pub state: AppState,
    pub metrics: Arc<Metrics>,
    /// The backend, behind the write gate and the metrics.
    pub storage: Arc<InstrumentedStorage>,
    /// The selector and translator in service, watched for the next start.
    pub policy: Arc<PolicyPlugins>,
    pub runtime: Arc<orbit_plugin_runtime::PluginRuntime>,
    /// What the plugins decided: the backend and its configuration.
    pub resolved: bootstrap::Resolved,
    gate: Arc<WriteGate>,
}

impl App {
    /// Loads the plugins, resolves the backend configuration through them
    /// and opens the backend, as the server does at start-up.
    pub async fn build(src: &ConfigSource, settings: &ServerSettings) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let plugins = bootstrap::load_plugins(settings, Some(metrics.clone()))?;
        let ctx = context::build(src, &settings.data_dir);
        let resolved = bootstrap::resolve(
            &plugins.selector,
            &plugins.translator,
            &ctx,
            &crate::secrets::bindings(src),
        )
        .await?;
        // Selection and translation happen once; only the health plugin stays.
        for info in [
            plugins.selector.info(),
            plugins.translator.info(),
            plugins.health.info(),
        ] {
            metrics.plugin_loaded(info);
            metrics.plugin_in_service(info);
        }
        let Plugins {
            health,
            runtime,
            selector,
            translator,
        } = plugins;
        let policy = Arc::new(PolicyPlugins::new(
            selector,
            translator,
            &resolved,
            src.clone(),
            settings.data_dir.clone(),
        ));
        for w in &resolved.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(reason = %resolved.reason, "Starting Orbit-RS server with persistence backend: {}", resolved.backend);

        let inner = orbit_backends::open(&resolved.config)
            .await
            .with_context(|| format!("cannot open the {} backend", resolved.backend))?;
        let gate = Arc::new(WriteGate::new(inner));
        let storage = Arc::new(InstrumentedStorage::new(
            gate.clone(),
            resolved.config.kind(),
            metrics.clone(),
        ));
        let health = Arc::new(HealthService::new(
            storage.clone(),
            health,
            src.clone(),
            settings.data_dir.clone(),
            metrics.clone(),
            policy.clone(),
        ));
        let state = AppState {
            storage: storage.clone(),
            health,
            metrics: metrics.clone(),
            limits: Limits {
                max_key_bytes: settings.max_key_bytes,
                max_value_bytes: settings.max_value_bytes,
            },
            token: settings.api_token.clone().map(Arc::new),
        };
        Ok(App {
            state,
            metrics,
            storage,
            policy,
            runtime,
            resolved,
            gate,
        })
    }

    /// The API router (see [`http::router`]).
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// The metrics router (see [`http::metrics_router`]).
    pub fn metrics_router(&self) -> axum::Router {
        http::metrics_router(self.metrics.clone(), self.storage.clone())
    }

    /// The health service behind `/health/ready`.
    pub fn health(&self) -> &Arc<HealthService> {
        &self.state.health
    }

    /// What shutdown does once requests have drained: waits for the writes
    /// in the backend, refuses every later one, then flushes (the memory
    /// backend's final snapshot). No write is acknowledged after it.
    pub async fn close(&self) -> anyhow::Result<()> {
        self.gate.close().await;
        self.storage
            .flush()
            .await
            .context("final flush at shutdown failed")
    }
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(src: ConfigSource, settings: ServerSettings) -> anyhow::Result<()> {
    let app = App::build(&src, &settings).await?;
    let http_listener = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (ORBIT_HTTP_ADDR)", settings.http_addr))?;
    let metrics_listener = TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (ORBIT_METRICS_ADDR)",
                settings.metrics_addr
            )
        })?;
    tracing::info!(
        http = %http_listener.local_addr()?,
        metrics = %metrics_listener.local_addr()?,
        "listening"
    );
    let App {
        state,
        metrics,
        storage,
        policy,
        runtime,
        resolved,
        gate,
    } = app;

    let (stop_tx, stop_rx) = watch::channel(false);
    let background = spawn_background(
        storage.clone(),
        &resolved.config,
        settings.ttl_purge_interval,
        stop_rx.clone(),
    );
    let mut background = background;
    if let Some(every) = settings.plugin_reload_interval {
        for role in Role::ALL {
            let Some(path) = settings.plugin_path(role) else {
                continue;
            };
            let target = match role {
                Role::Health => reload::Target::Health(state.health.clone()),
                _ => reload::Target::Policy(policy.clone()),
            };
            background.push(tokio::spawn(reload::watch_plugin_file(
                role,
                runtime.clone(),
                settings.plugin_spec(role),
                path.to_path_buf(),
                target,
                metrics.clone(),
                every,
                stop_rx.clone(),
            )));
        }
    }
    let mut http = tokio::spawn(
        axum::serve(http_listener, http::router(state))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let mut metrics_server = tokio::spawn(
        axum::serve(
            metrics_listener,
            http::metrics_router(metrics.clone(), storage.clone()),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future(),
    );

    let signal = shutdown_signal().await;
    tracing::info!(signal, "shutting down: draining requests in flight");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(settings.shutdown_timeout, async {
        let _ = (&mut http).await;
        let _ = (&mut metrics_server).await;
    })
    .await
    .is_err()
    {
        tracing::warn!(timeout = ?settings.shutdown_timeout, "requests still in flight after ORBIT_SHUTDOWN_TIMEOUT; closing anyway (their writes are refused)");
        http.abort();
        metrics_server.abort();
    }
    for task in background {
        let _ = task.await;
    }
    // No write may be acknowledged after the final flush: wait for the
    // writes in the backend, refuse every later one, then flush.
    gate.close().await;
    storage
        .flush()
        .await
        .context("final flush at shutdown failed")?;
    tracing::info!("backend flushed; bye");
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGTERM handler; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// Periodic flush (for backends that need it) and TTL purge.
fn spawn_background(
    storage: Arc<InstrumentedStorage>,
    config: &orbit_storage::BackendConfig,
    purge_every: Duration,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(every) = orbit_backends::flush_interval(config) {
        let storage = storage.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(every_until_stopped(every, stop, move || {
            let storage = storage.clone();
            async move {
                // A failed flush leaves the previous snapshot intact; the next
                // tick writes a complete new file (it never re-fsyncs the one
                // that failed).
                if let Err(e) = storage.flush().await {
                    tracing::error!(error = %e, "periodic flush failed");
                }
            }
        })));
    }
    tasks.push(tokio::spawn(every_until_stopped(
        purge_every,
        stop,
        move || {
            let storage = storage.clone();
            async move {
                match storage.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired keys purged"),
                    Err(e) => tracing::warn!(error = %e, "purging expired keys failed"),
                }
            }
        },
    )));
    tasks
}

async fn every_until_stopped<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => tick().await,
            _ = stop.changed() => break,
        }
    }
}
