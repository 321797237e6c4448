//! The selector and the translator after start-up.
//!
//! They run once: the backend is chosen and configured at start-up, and a
//! file change should not switch the backend under a running server. Their
//! files are still watched (see `reload`). A changed file is loaded and
//! checked as at start-up, then asked what the next start would do with it,
//! together with the newest accepted version of the other role: open the same
//! backend with the same configuration, open another one, or fail. The answer
//! shows in `/health/ready` (`policy_plugins`), in the log, and in
//! `orbit_plugin_reloads_total{outcome="pending_restart"|"refused"}`, so an
//! operator learns that a restart is needed, and whether the pod would come
//! back up, before restarting it.

use std::sync::Arc;

use orbit_plugin_runtime::{
    PluginInfo, PluginRuntime, PluginSpec, Role, SelectorPlugin, TranslatorPlugin,
};
use orbit_storage::{BackendConfig, BackendKind, now_millis};
use serde::Serialize;
use utoipa::ToSchema;

use crate::bootstrap::{self, Resolved};
use crate::metrics::Metrics;
use crate::settings::ConfigSource;

/// One policy plugin as `/health/ready` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PolicyPluginDetail {
    pub role: &'static str,
    pub source: String,
    /// The version in service since start-up.
    pub sha256: String,
    /// A changed file that passed every check; it applies at the next start.
    pub pending: Option<PendingDetail>,
    /// Why the last changed file was refused.
    pub last_reload_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PendingDetail {
    pub sha256: String,
    pub noticed_at_unix_ms: u64,
    /// What the next start would do with it.
    pub next_start: String,
}

/// The newest accepted version of each role (what the next start loads).
struct Newest {
    selector: Arc<SelectorPlugin>,
    translator: Arc<TranslatorPlugin>,
}

/// What start-up resolved, and what watching the files found since.
pub struct PolicyPlugins {
    source: ConfigSource,
    data_dir: std::path::PathBuf,
    running_backend: BackendKind,
    running_config: BackendConfig,
    /// Held across a trial, so two changed files are judged one at a time.
    newest: tokio::sync::Mutex<Newest>,
    details: parking_lot::Mutex<[PolicyPluginDetail; 2]>,
}

fn detail(info: &PluginInfo) -> PolicyPluginDetail {
    PolicyPluginDetail {
        role: info.role.name(),
        source: info.source.clone(),
        sha256: info.sha256.clone(),
        pending: None,
        last_reload_error: None,
    }
}

impl PolicyPlugins {
    pub fn new(
        selector: SelectorPlugin,
        translator: TranslatorPlugin,
        resolved: &Resolved,
        source: ConfigSource,
        data_dir: std::path::PathBuf,
    ) -> Self {
        let details = [detail(selector.info()), detail(translator.info())];
        PolicyPlugins {
            source,
            data_dir,
            running_backend: resolved.backend,
            running_config: resolved.config.clone(),
            newest: tokio::sync::Mutex::new(Newest {
                selector: Arc::new(selector),
                translator: Arc::new(translator),
            }),
            details: parking_lot::Mutex::new(details),
        }
    }

    /// Both roles, selector first.
    pub fn details(&self) -> Vec<PolicyPluginDetail> {
        self.details.lock().to_vec()
    }

    fn slot(role: Role) -> usize {
        match role {
            Role::Selector => 0,
            _ => 1,
        }
    }

    /// Judges a changed file of `role` (selector or translator). `Ok(None)`:
    /// it holds the newest accepted version already. `Ok(Some(next_start))`:
    /// accepted as pending. `Err(reason)`: refused; the newest accepted
    /// version stays what the next start would load, as far as this server
    /// knows.
    pub async fn changed(
        &self,
        role: Role,
        runtime: &Arc<PluginRuntime>,
        spec: &PluginSpec,
        metrics: &Metrics,
    ) -> Result<Option<String>, String> {
        let mut newest = self.newest.lock().await;
        let (rt, sp) = (runtime.clone(), spec.clone());
        let loaded = tokio::task::spawn_blocking(move || match role {
            Role::Selector => rt.load_selector(&sp).map(Loaded::Selector),
            _ => rt.load_translator(&sp).map(Loaded::Translator),
        })
        .await
        .map_err(|e| format!("loading panicked: {e}"))?
        .map_err(|e| e.to_string())?;
        let (info, newest_sha) = match &loaded {
            Loaded::Selector(p) => (p.info().clone(), newest.selector.info().sha256.clone()),
            Loaded::Translator(p) => (p.info().clone(), newest.translator.info().sha256.clone()),
        };
        if info.sha256 == newest_sha {
            return Ok(None);
        }
        metrics.plugin_loaded(&info);
        let ctx = crate::context::build(&self.source, &self.data_dir);
        let secrets = crate::secrets::bindings(&self.source);
        let trial = match &loaded {
            Loaded::Selector(p) => bootstrap::resolve(p, &newest.translator, &ctx, &secrets).await,
            Loaded::Translator(p) => bootstrap::resolve(&newest.selector, p, &ctx, &secrets).await,
        };
        let next_start = match trial {
            Ok(r) => self.compare(&r),
            Err(e) => return Err(format!("the next start would fail: {e}")),
        };
        match loaded {
            Loaded::Selector(p) => newest.selector = Arc::new(p),
            Loaded::Translator(p) => newest.translator = Arc::new(p),
        }
        let mut details = self.details.lock();
        let d = &mut details[Self::slot(role)];
        d.last_reload_error = None;
        // Back to the version in service: nothing is pending any more.
        d.pending = (info.sha256 != d.sha256).then(|| PendingDetail {
            sha256: info.sha256.clone(),
            noticed_at_unix_ms: now_millis(),
            next_start: next_start.clone(),
        });
        Ok(Some(next_start))
    }

    /// Records why a changed file of `role` was refused.
    pub fn refused(&self, role: Role, reason: String) {
        self.details.lock()[Self::slot(role)].last_reload_error = Some(reason);
    }

    /// What the next start would do, against what this one did.
    fn compare(&self, r: &Resolved) -> String {
        let running = self.running_backend;
        if r.backend != running {
            return format!(
                "the next start would open backend {} instead of {running} (selector: {})",
                r.backend, r.reason
            );
        }
        if r.config == self.running_config {
            return format!(
                "the next start would open backend {running} with the same configuration"
            );
        }
        format!(
            "the next start would open backend {running} with a different {}",
            changed_fields(&self.running_config, &r.config)
        )
    }
}

enum Loaded {
    Selector(SelectorPlugin),
    Translator(TranslatorPlugin),
}

/// `data_dir, memtable_size`: the settings that differ, by their TOML key.
fn changed_fields(a: &BackendConfig, b: &BackendConfig) -> String {
    if a.kind() != b.kind() {
        return "configuration".into();
    }
    let settings = BackendConfig::settings(a.kind());
    let (a, b) = (a.values(), b.values());
    let fields: Vec<&str> = settings
        .iter()
        .filter(|s| a.get(s.env) != b.get(s.env))
        .map(|s| s.toml_key())
        .collect();
    match fields.as_slice() {
        [] => "configuration".into(),
        [one] => (*one).to_string(),
        many => format!("configuration: {}", many.join(", ")),
    }
}
