//! The plugin runtime: one engine, one linker per role, loading, and the call
//! path that applies every limit and turns every failure into a
//! [`PluginError`] for that call.
//!
//! Instance strategy: a fresh `Store` and instance per call, from an
//! `InstancePre`, with slots from the pooling allocator (see `engine`).
//! Nothing leaks between calls and a trapped or half-run instance is simply
//! dropped. Measured with `orbit-server plugin bench plugins/dist/health.wasm`
//! on 2 cores: instantiate + call p50 15 us (pooled slots, see `engine`)
//! against 3.2 us for a call on a reused instance, of which about 1.4 us is
//! the host lowering the context and report (a plugin returning a constant,
//! `tests/fixtures/constant-health`, costs that much). Calls happen once at
//! start-up (selector, translator) and at most once a second for health
//! (readiness is cached), so 15 us buys isolation cheaply; reuse would make
//! one bad call's state (a half-updated global, a leaked allocation) every
//! later call's problem.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orbit_storage::{BackendConfig, SecretBindings, Storage};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::health_world::{self, HealthPolicyKvPre};
use crate::bindings::selector_world::SelectorPre;
use crate::bindings::translator_world::TranslatorPre;
use crate::bindings::types;
use crate::cache::ComponentCache;
use crate::engine::PluginEngine;
use crate::error::PluginError;
use crate::plugin::{Plugin, PluginInfo, PluginSpec, Role, compile, link, root_cause};
use crate::state::{CallState, StoreAccessLimits};

pub type SelectorPlugin = Plugin<SelectorPre<CallState>>;
pub type TranslatorPlugin = Plugin<TranslatorPre<CallState>>;
pub type HealthPlugin = Plugin<HealthPolicyKvPre<CallState>>;

/// Told about every plugin call (the server turns this into metrics).
pub trait CallObserver: Send + Sync {
    fn observe(
        &self,
        role: Role,
        function: &'static str,
        elapsed: Duration,
        outcome: Result<(), &PluginError>,
    );
}

/// The result of [`PluginRuntime::inspect`].
#[derive(Clone, Debug)]
pub struct Inspection {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The role whose interface it exports (at any version).
    pub role: Option<Role>,
}

/// What every loaded plugin shares.
pub(crate) struct Shared {
    pub(crate) store_limits: StoreAccessLimits,
    pub(crate) observer: Option<Arc<dyn CallObserver>>,
}

/// A guest result the host refuses (checked inside the call, so it is
/// classified and counted like any other call failure).
#[derive(Debug)]
struct InvalidOutput(String);

impl std::fmt::Display for InvalidOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidOutput {}

fn invalid(reason: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(InvalidOutput(reason.into()))
}

/// Loads plugins and owns the engine they run on.
pub struct PluginRuntime {
    engine: PluginEngine,
    shared: Arc<Shared>,
    /// Selector and translator components may import `types`, `log` and WASI.
    policy_linker: Linker<CallState>,
    /// Health components may also import `store` and `wasi:keyvalue`.
    health_linker: Linker<CallState>,
    cache: Option<ComponentCache>,
}

impl PluginRuntime {
    /// `max_memory_bytes`: the largest memory cap of any plugin it will load.
    pub fn new(
        store_limits: StoreAccessLimits,
        observer: Option<Arc<dyn CallObserver>>,
        cache: Option<ComponentCache>,
        max_memory_bytes: usize,
    ) -> anyhow::Result<Self> {
        let engine = PluginEngine::new(max_memory_bytes)?;
        let mut policy_linker = Linker::new(engine.engine());
        types::add_to_linker::<CallState, HasSelf<CallState>>(&mut policy_linker, |s| s)?;
        crate::bindings::log::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut policy_linker,
            |s| s,
        )?;
        // WASI for componentize-py / componentize-js output, deny by default
        // (see `state::wasi_context`).
        wasmtime_wasi::p2::add_to_linker_async(&mut policy_linker)?;
        let mut health_linker = Linker::new(engine.engine());
        health_world::HealthPolicyKv::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut health_linker,
            |s| s,
        )?;
        wasmtime_wasi::p2::add_to_linker_async(&mut health_linker)?;
        Ok(PluginRuntime {
            engine,
            cache,
            shared: Arc::new(Shared {
                store_limits,
                observer,
            }),
            policy_linker,
            health_linker,
        })
    }

    fn plugin<P>(&self, info: PluginInfo, spec: &PluginSpec, pre: P) -> Plugin<P> {
        Plugin {
            label: format!("{} {}", info.role, info.source).into(),
            info,
            limits: spec.limits,
            pre,
            shared: self.shared.clone(),
            grants: Arc::new(spec.grants.clone()),
        }
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        self.engine.engine()
    }

    /// Which instance allocator the engine uses.
    pub fn allocator(&self) -> &str {
        self.engine.allocator()
    }

    /// What a component file declares: its exports and imports, and the role
    /// it fits, if any.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, String> {
        let component = wasmtime::component::Component::new(self.engine.engine(), bytes)
            .map_err(|e| format!("not a valid WebAssembly component: {}", root_cause(&e)))?;
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(self.engine.engine())
            .map(|(n, _)| n.to_string())
            .collect();
        let imports: Vec<String> = ty
            .imports(self.engine.engine())
            .map(|(n, _)| n.to_string())
            .collect();
        let role = Role::ALL
            .into_iter()
            .find(|r| exports.iter().any(|e| crate::plugin::exports_role(e, *r)));
        Ok(Inspection {
            exports,
            imports,
            role,
        })
    }

    pub fn cache(&self) -> Option<&ComponentCache> {
        self.cache.as_ref()
    }

    pub fn load_selector(&self, spec: &PluginSpec) -> Result<SelectorPlugin, PluginError> {
        let (component, info) = compile(
            self.engine.engine(),
            Role::Selector,
            spec,
            self.cache.as_ref(),
        )?;
        let pre = link(&self.policy_linker, &component, &info)?;
        let pre = SelectorPre::new(pre).map_err(|e| wrong_world(&info, &e))?;
        Ok(self.plugin(info, spec, pre))
    }

    pub fn load_translator(&self, spec: &PluginSpec) -> Result<TranslatorPlugin, PluginError> {
        let (component, info) = compile(
            self.engine.engine(),
            Role::Translator,
            spec,
            self.cache.as_ref(),
        )?;
        let pre = link(&self.policy_linker, &component, &info)?;
        let pre = TranslatorPre::new(pre).map_err(|e| wrong_world(&info, &e))?;
        Ok(self.plugin(info, spec, pre))
    }

    pub fn load_health(&self, spec: &PluginSpec) -> Result<HealthPlugin, PluginError> {
        let (component, info) = compile(
            self.engine.engine(),
            Role::Health,
            spec,
            self.cache.as_ref(),
        )?;
        let pre = link(&self.health_linker, &component, &info)?;
        let pre = HealthPolicyKvPre::new(pre).map_err(|e| wrong_world(&info, &e))?;
        Ok(self.plugin(info, spec, pre))
    }
}

fn wrong_world(info: &crate::plugin::PluginInfo, e: &wasmtime::Error) -> PluginError {
    PluginError::WrongWorld {
        plugin: info.role.name().to_string(),
        source_name: info.source.clone(),
        role: info.role.name(),
        reason: root_cause(e),
    }
}

impl<P> Plugin<P> {
    /// A fresh store for one call, with the memory limiter and a CPU deadline
    /// enforced by epoch interruption. Until the deadline the call yields to
    /// the async runtime at every epoch tick, so a spinning plugin does not
    /// starve the server's other tasks.
    fn new_store(
        &self,
        engine: &wasmtime::Engine,
        storage: Option<Arc<dyn Storage>>,
    ) -> wasmtime::Result<Store<CallState>> {
        let limits = self.limits;
        let mut store = Store::new(
            engine,
            CallState::new(
                &limits,
                storage,
                self.shared.store_limits,
                self.label.clone(),
                self.grants.clone(),
            )?,
        );
        store.limiter(|s| &mut s.limiter);
        // One transfer from the guest (a result, an import's arguments) may
        // make the host copy at most the plugin's own memory cap.
        store.set_hostcall_fuel(limits.memory_bytes);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Runs `call` against a fresh store under every limit.
    async fn run<R>(
        &self,
        engine: &wasmtime::Engine,
        function: &'static str,
        storage: Option<Arc<dyn Storage>>,
        call: impl AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let started = Instant::now();
        let limits = self.limits;
        let span = tracing::debug_span!("plugin_call", role = %self.info.role, function, plugin = %self.info.source);
        let result = match self.new_store(engine, storage) {
            Ok(mut store) => {
                // Wall clock: twice the CPU budget, for time spent in host imports.
                let outcome = tracing::Instrument::instrument(
                    tokio::time::timeout(limits.timeout * 2, call(&mut store)),
                    span,
                )
                .await;
                self.settle(function, &store, outcome)
            }
            Err(e) => Err(PluginError::Trap {
                plugin: self.info.role.name().to_string(),
                function,
                message: format!("cannot set up the call: {}", root_cause(&e)),
            }),
        };
        if let Some(obs) = &self.shared.observer {
            obs.observe(
                self.info.role,
                function,
                started.elapsed(),
                result.as_ref().map(|_| ()),
            );
        }
        if let Err(e) = &result {
            tracing::warn!(plugin = %self.info.source, error = %e, "plugin call failed");
        }
        result
    }

    /// Turns a call's outcome (or its timeout) into the call's result.
    fn settle<R>(
        &self,
        function: &'static str,
        store: &Store<CallState>,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, PluginError> {
        let limits = self.limits;
        match outcome {
            // The host refused to keep more for the plugin (see
            // `CallLimiter::charge_host`): the call fails even if the guest
            // carried on after the refusal.
            Ok(Ok(_)) if store.data().limiter.memory_cap_hit => Err(PluginError::MemoryLimit {
                plugin: self.info.role.name().to_string(),
                function,
                limit_bytes: limits.memory_bytes,
            }),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.classify(function, store, e)),
            Err(_) => Err(PluginError::Timeout {
                plugin: self.info.role.name().to_string(),
                function,
                limit: limits.timeout * 2,
            }),
        }
    }

    fn classify(
        &self,
        function: &'static str,
        store: &Store<CallState>,
        e: wasmtime::Error,
    ) -> PluginError {
        let plugin = self.info.role.name().to_string();
        if store.data().limiter.memory_cap_hit || is_transfer_limit(&e) {
            return PluginError::MemoryLimit {
                plugin,
                function,
                limit_bytes: self.limits.memory_bytes,
            };
        }
        if let Some(InvalidOutput(reason)) = e.downcast_ref::<InvalidOutput>() {
            return PluginError::InvalidOutput {
                plugin,
                function,
                reason: reason.clone(),
            };
        }
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::CpuDeadline {
                plugin,
                function,
                limit: self.limits.timeout,
            };
        }
        let message = match e.downcast_ref::<Trap>() {
            Some(trap) => format!("{trap} ({})", root_cause(&e)),
            None => root_cause(&e),
        };
        PluginError::Trap {
            plugin,
            function,
            message,
        }
    }
}

/// wasmtime's hostcall fuel ran out: the guest tried to hand the host more
/// bytes in one transfer than `set_hostcall_fuel` allows. wasmtime keeps the
/// error type private, so it is recognised by its message (a test in
/// `tests/output_bounds.rs` fails if a wasmtime upgrade changes it).
fn is_transfer_limit(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| {
        c.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

type Selection = crate::bindings::selector_world::exports::orbit::storage::selection::Selection;
type Translation =
    crate::bindings::translator_world::exports::orbit::storage::translation::Translation;
type RenderedVar =
    crate::bindings::translator_world::exports::orbit::storage::translation::RenderedVar;

impl SelectorPlugin {
    /// Asks the selector which backend to use.
    pub async fn select(
        &self,
        context: &types::DeploymentContext,
    ) -> Result<Result<Selection, Vec<types::Diagnostic>>, PluginError> {
        let pre = self.pre.clone();
        self.run(pre.engine(), "select", None, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let s = instance
                .orbit_storage_selection()
                .call_select(&mut *store, context)
                .await?;
            if let Err(d) = &s {
                check_count("diagnostics", d.len()).map_err(invalid)?;
            }
            Ok(s)
        })
        .await
    }
}

impl TranslatorPlugin {
    /// Asks the translator for the typed configuration of `backend`. Every
    /// secret reference in it must be one `secrets` allows for its field;
    /// anything else is invalid output (the host never resolves it).
    pub async fn translate(
        &self,
        backend: types::BackendKind,
        context: &types::DeploymentContext,
        secrets: &SecretBindings,
    ) -> Result<Translated, PluginError> {
        let pre = self.pre.clone();
        let data_dir = context
            .facts
            .dirs
            .first()
            .map_or(DEFAULT_DATA_DIR, |d| d.path.as_str());
        self.run(pre.engine(), "translate", None, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let t = instance
                .orbit_storage_translation()
                .call_translate(&mut *store, backend, context)
                .await?;
            check_translation(backend, t, secrets, data_dir).map_err(invalid)
        })
        .await
    }

    /// Asks the translator for the environment that reproduces `config`.
    pub async fn render_env(
        &self,
        config: &BackendConfig,
    ) -> Result<Vec<RenderedVar>, PluginError> {
        let config = &crate::convert::config_to_wit(config);
        let pre = self.pre.clone();
        self.run(pre.engine(), "render-env", None, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let vars = instance
                .orbit_storage_translation()
                .call_render_env(&mut *store, config)
                .await?;
            check_count("variables", vars.len()).map_err(invalid)?;
            Ok(vars)
        })
        .await
    }
}

impl HealthPlugin {
    /// Latencies of `n` calls on one reused instance (no instantiation), for
    /// `orbit-server plugin bench`; the server itself uses a fresh instance
    /// per call.
    pub async fn bench_reused(
        &self,
        context: &types::DeploymentContext,
        report: &types::HealthReport,
        n: usize,
    ) -> Result<Vec<Duration>, PluginError> {
        let pre = self.pre.clone();
        self.run(pre.engine(), "evaluate", None, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                instance
                    .orbit_storage_health()
                    .call_evaluate(&mut *store, context, report)
                    .await?;
                times.push(t.elapsed());
            }
            Ok(times)
        })
        .await
    }

    /// Asks the health policy for a verdict; the plugin may read the store.
    pub async fn evaluate(
        &self,
        context: &types::DeploymentContext,
        report: &types::HealthReport,
        storage: Option<Arc<dyn Storage>>,
    ) -> Result<types::HealthVerdict, PluginError> {
        let pre = self.pre.clone();
        self.run(pre.engine(), "evaluate", storage, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let v = instance
                .orbit_storage_health()
                .call_evaluate(&mut *store, context, report)
                .await?;
            check_verdict(&v).map_err(invalid)?;
            Ok(v)
        })
        .await
    }
}

/// What a translator answered, checked: the configuration is present
/// exactly when no diagnostic is an error.
#[derive(Debug)]
pub struct Translated {
    /// Checked against the settings catalogue (names, forms, bounds; the
    /// defaults of settings the translator left out filled in) and against
    /// the secret bindings.
    pub config: Option<BackendConfig>,
    pub diagnostics: Vec<types::Diagnostic>,
}

/// Where `{data_dir}` points when the context names no data root.
const DEFAULT_DATA_DIR: &str = "/app/data";

/// A translation must carry a configuration exactly when it has no error,
/// the configuration must be for the backend asked about, hold only the
/// catalogue's settings with valid values, and refer only to the secrets
/// the operator configured for each field.
fn check_translation(
    backend: types::BackendKind,
    t: Translation,
    secrets: &SecretBindings,
    data_dir: &str,
) -> Result<Translated, String> {
    check_count("diagnostics", t.diagnostics.len())?;
    let errors = t.diagnostics.iter().filter(|d| d.is_error()).count();
    let config = match t.config {
        None if errors == 0 => {
            return Err("neither a configuration nor an error diagnostic".into());
        }
        Some(_) if errors > 0 => {
            return Err(format!(
                "a configuration together with {errors} error diagnostic(s)"
            ));
        }
        Some(c) => {
            check_count("settings", c.settings.len())?;
            let want = crate::convert::backend_kind_from_wit(backend);
            let got = crate::convert::backend_kind_from_wit(c.backend);
            if got != want {
                return Err(format!(
                    "asked for backend {want}, returned a configuration for {got}"
                ));
            }
            let config = crate::convert::config_from_wit(c, data_dir)?;
            secrets.check(&config)?;
            Some(config)
        }
        None => None,
    };
    Ok(Translated {
        config,
        diagnostics: t.diagnostics,
    })
}

/// Most reasons a verdict may give; each is at most [`MAX_REASON_BYTES`].
/// The verdict is kept and served on every `/health/ready`, so its size is
/// bounded here, not only by the transfer limit.
pub const MAX_REASONS: usize = 64;
pub const MAX_REASON_BYTES: usize = 4096;
/// Most diagnostics in a selection or translation, and variables in a
/// rendered environment.
pub const MAX_DIAGNOSTICS: usize = 1000;

fn check_count(what: &str, n: usize) -> Result<(), String> {
    if n > MAX_DIAGNOSTICS {
        Err(format!("{n} {what}; the limit is {MAX_DIAGNOSTICS}"))
    } else {
        Ok(())
    }
}

/// A verdict needs at least one reason, a status that agrees with its live
/// and ready flags, and cannot be ready while not live; its size is
/// bounded.
fn check_verdict(v: &types::HealthVerdict) -> Result<(), String> {
    let status_fits = match v.status {
        types::HealthStatus::Ok => v.live && v.ready,
        types::HealthStatus::Degraded => v.live && !v.ready,
        types::HealthStatus::Unavailable => !v.live,
    };
    if !status_fits {
        return Err(format!(
            "the verdict's status {:?} contradicts live={} ready={}",
            v.status, v.live, v.ready
        ));
    }
    if v.reasons.is_empty() {
        return Err("the verdict gives no reason".into());
    }
    if v.reasons.len() > MAX_REASONS {
        return Err(format!(
            "the verdict gives {} reasons; the limit is {MAX_REASONS}",
            v.reasons.len()
        ));
    }
    if let Some(r) = v.reasons.iter().find(|r| r.len() > MAX_REASON_BYTES) {
        return Err(format!(
            "a reason is {} bytes; the limit is {MAX_REASON_BYTES}",
            r.len()
        ));
    }
    if v.ready && !v.live {
        return Err("the verdict is ready but not live".into());
    }
    Ok(())
}
