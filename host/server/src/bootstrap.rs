//! From configuration to a typed backend configuration, through the plugins:
//! load the three plugins (the operator's or the embedded defaults), ask the
//! selector for a backend, ask the translator for its configuration.

use std::path::Path;
use std::sync::Arc;

use orbit_plugin_runtime::cache::CacheError;
use orbit_plugin_runtime::{
    CallObserver, ComponentCache, HealthPlugin, PluginError, PluginRuntime, Role, SelectorPlugin,
    TranslatorPlugin, convert, types as wit,
};
use orbit_storage::{BackendConfig, BackendKind, SecretBindings};

use crate::settings::{PluginCacheDir, ServerSettings};

/// The three loaded policy plugins.
pub struct Plugins {
    pub runtime: Arc<PluginRuntime>,
    pub selector: SelectorPlugin,
    pub translator: TranslatorPlugin,
    pub health: HealthPlugin,
}

/// Why start-up cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("backend selection failed:\n{}", lines(.0))]
    Selection(Vec<wit::Diagnostic>),
    #[error("configuration of backend {backend} is invalid:\n{}", lines(.diagnostics))]
    Translation {
        backend: BackendKind,
        diagnostics: Vec<wit::Diagnostic>,
    },
    #[error("plugin runtime: {0}")]
    Runtime(String),
}

fn lines(d: &[wit::Diagnostic]) -> String {
    d.iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads the configured (or embedded) plugins for every role.
pub fn load_plugins(
    settings: &ServerSettings,
    observer: Option<Arc<dyn CallObserver>>,
) -> Result<Plugins, BootstrapError> {
    let cache = open_cache(&settings.plugin_cache_dir, &settings.data_dir);
    let runtime = PluginRuntime::new(
        settings.store_access_limits(),
        observer,
        cache,
        settings.max_plugin_memory(),
    )
    .map_err(|e| BootstrapError::Runtime(format!("{e:#}")))?;
    tracing::info!(allocator = runtime.allocator(), "plugin engine ready");
    let selector = runtime.load_selector(&settings.plugin_spec(Role::Selector))?;
    let translator = runtime.load_translator(&settings.plugin_spec(Role::Translator))?;
    let health = runtime.load_health(&settings.plugin_spec(Role::Health))?;
    for info in [selector.info(), translator.info(), health.info()] {
        log_loaded(info);
    }
    Ok(Plugins {
        runtime: Arc::new(runtime),
        selector,
        translator,
        health,
    })
}

/// The precompiled-plugin cache, or `None` (every plugin is compiled in
/// memory) with one log line saying why. The default directory,
/// `<data dir>/.plugin-cache`, is created (with the data dir if missing) when
/// possible; if not, there is no cache: never a fallback to a shared
/// directory. A directory the host does not own is refused (see
/// [`orbit_plugin_runtime::cache`]).
fn open_cache(dir: &PluginCacheDir, data_dir: &Path) -> Option<ComponentCache> {
    let (dir, default) = match dir {
        PluginCacheDir::Off => return None,
        PluginCacheDir::Configured(dir) => (dir, false),
        PluginCacheDir::InDataDir(dir) => (dir, true),
    };
    // The default cache lives in the data dir but never creates it: a
    // missing data root is a fact the selector decides from (the backend
    // creates it once chosen), so that start compiles in memory.
    let not_writable = || {
        tracing::warn!(
            dir = %dir.display(),
            "precompiled-plugin cache off: {} is not a writable directory; plugins are compiled in memory at each start",
            data_dir.display()
        );
        None
    };
    if default && !data_dir.is_dir() {
        return not_writable();
    }
    match ComponentCache::new(dir) {
        Ok(cache) => Some(cache),
        Err(CacheError::Create { .. }) if default => not_writable(),
        Err(e) => {
            tracing::warn!(
                dir = %dir.display(),
                "precompiled-plugin cache off: {e}; plugins are compiled in memory at each start"
            );
            None
        }
    }
}

/// One log line per loaded plugin, with where its code came from.
pub fn log_loaded(info: &orbit_plugin_runtime::PluginInfo) {
    tracing::info!(
        role = %info.role,
        source = %info.source,
        sha256 = %info.sha256,
        bytes = info.size_bytes,
        cache = info.cache.label(),
        load_ms = format!("{:.2}", info.load_time.as_secs_f64() * 1000.0),
        timeout_ms = info.limits.timeout.as_millis() as u64,
        memory_limit = info.limits.memory_bytes,
        "plugin loaded"
    );
}

/// The outcome of selection and translation.
#[derive(Debug)]
pub struct Resolved {
    pub backend: BackendKind,
    /// The selector's reason.
    pub reason: String,
    /// Checked against the settings catalogue and the secret bindings.
    pub config: BackendConfig,
    /// Warnings from the translator (errors make [`resolve`] fail).
    pub warnings: Vec<wit::Diagnostic>,
}

/// Runs the selector, then the translator. The translator's secret
/// references must be ones `secrets` allows (see [`crate::secrets`]).
pub async fn resolve(
    selector: &SelectorPlugin,
    translator: &TranslatorPlugin,
    context: &wit::DeploymentContext,
    secrets: &SecretBindings,
) -> Result<Resolved, BootstrapError> {
    let selection = selector
        .select(context)
        .await?
        .map_err(BootstrapError::Selection)?;
    let backend = convert::backend_kind_from_wit(selection.backend);
    let translation = translator
        .translate(selection.backend, context, secrets)
        .await?;
    let (errors, warnings): (Vec<_>, Vec<_>) = translation
        .diagnostics
        .into_iter()
        .partition(|d| d.is_error());
    if !errors.is_empty() {
        return Err(BootstrapError::Translation {
            backend,
            diagnostics: errors,
        });
    }
    // The runtime has checked the configuration: for `backend`, catalogue
    // settings only, valid values, allowed secret references.
    let config = translation
        .config
        .ok_or_else(|| PluginError::InvalidOutput {
            plugin: "translator".into(),
            function: "translate",
            reason: "no configuration and no error diagnostic".into(),
        })?;
    Ok(Resolved {
        backend,
        reason: selection.reason,
        config,
        warnings,
    })
}
