//! The server in the test process: the same start-up path as the binary
//! (plugins decide, the backend opens; `orbit_server::serve::App`), its
//! routers served on loopback ports from the test's own runtime, and the
//! same client as the process tests. No binary, no waiting for it to
//! listen, and readiness can be asked for fresh instead of sleeping past
//! its one-second cache.
//!
//! The configuration comes only from what the test passes, not from this
//! process's environment; a backend secret given as `env NAME` would still
//! be resolved from the process environment, so tests pass secrets as
//! files (`*_FILE`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orbit_server::serve::App;
use orbit_server::settings::{ConfigSource, ServerSettings};
use orbit_test_support::http::{Client, Loopback};

/// A server running in the test process.
pub struct InProcess {
    pub app: App,
    pub data_dir: PathBuf,
    http: Loopback,
}

impl std::ops::Deref for InProcess {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.http
    }
}

/// The configuration the binary would read from `ORBIT_DATA_DIR=data_dir`
/// and `env` (and nothing else of this process's environment). Unless `env`
/// names one, the precompiled-plugin cache is one directory shared by every
/// in-process server (`<target>/tmp/orbit-in-process-plugin-cache`), so the
/// embedded plugins are compiled once, not once per test.
pub fn source(data_dir: &Path, env: &[(&str, &str)]) -> ConfigSource {
    let mut vars = BTreeMap::new();
    vars.insert("ORBIT_DATA_DIR".to_string(), data_dir.display().to_string());
    vars.insert(
        "ORBIT_PLUGIN_CACHE_DIR".to_string(),
        orbit_test_support::target_tmp()
            .join("orbit-in-process-plugin-cache")
            .display()
            .to_string(),
    );
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    ConfigSource::new(vars, None).expect("the configuration source")
}

/// Builds the server as the binary would with `ORBIT_DATA_DIR=data_dir`
/// and `env`.
pub async fn build(data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<App> {
    let src = source(data_dir, env);
    let settings = ServerSettings::from_source(&src)?;
    App::build(&src, &settings).await
}

/// Starts the server in this process and serves it on loopback ports; its
/// log goes to [`orbit_test_support::logs`].
pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> InProcess {
    orbit_test_support::logs::capture();
    let app = build(data_dir, env)
        .await
        .unwrap_or_else(|e| panic!("the server did not start: {e:#}"));
    let http = Loopback::serve(app.router(), app.metrics_router()).await;
    InProcess {
        app,
        data_dir: data_dir.to_path_buf(),
        http,
    }
}

impl InProcess {
    /// What `/health/ready` answers once its cache has run out: the status
    /// and the JSON, evaluated now.
    pub async fn fresh_readiness(&self) -> (u16, serde_json::Value) {
        let r = self.app.health().readiness_now().await;
        let status = if r.ready { 200 } else { 503 };
        (status, serde_json::to_value(&r).unwrap())
    }

    /// Stops serving, then does what the binary does at shutdown once
    /// requests have drained (closes the write gate and flushes: the memory
    /// backend's final snapshot).
    pub async fn shut_down(self) {
        let InProcess { app, http, .. } = self;
        http.stop().await;
        app.close().await.expect("the final flush");
    }
}
