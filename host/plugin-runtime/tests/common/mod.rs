//! What the runtime's tests share: a runtime, a plugin spec for a component
//! file, the context and report the server would pass, a memory backend,
//! and an observer that counts call outcomes.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use orbit_memory::MemoryStorage;
use orbit_plugin_runtime::{
    CallObserver, Grants, HealthPlugin, PluginError, PluginLimits, PluginRuntime, PluginSource,
    PluginSpec, Role, StoreAccessLimits, convert, types as wit,
};
use orbit_storage::{MemoryConfig, PutOptions, Storage};

/// A runtime as the server makes one: default store-access limits, no
/// precompiled cache, room for plugins of up to 64 MiB.
pub fn runtime(observer: Option<Arc<dyn CallObserver>>) -> PluginRuntime {
    PluginRuntime::new(StoreAccessLimits::default(), observer, None, 64 << 20)
        .expect("the plugin runtime")
}

/// Loads the health component `file` with `limits` and `grants`.
pub fn health(
    rt: &PluginRuntime,
    file: &Path,
    limits: PluginLimits,
    grants: Grants,
) -> HealthPlugin {
    let spec = PluginSpec {
        source: PluginSource::File(file.to_path_buf()),
        limits,
        pinned_sha256: None,
        grants,
        public_key: None,
    };
    rt.load_health(&spec)
        .unwrap_or_else(|e| panic!("load {}: {e}", file.display()))
}

/// Limits with a CPU deadline of `timeout` and a memory cap of `memory`.
pub fn limits(timeout: Duration, memory: usize) -> PluginLimits {
    PluginLimits {
        timeout,
        memory_bytes: memory,
    }
}

/// Grants of the `wasi:keyvalue` / store buckets `names` only.
pub fn buckets(names: &[&str]) -> Grants {
    Grants {
        keyvalue_buckets: names.iter().map(|n| n.to_string()).collect(),
        ..Grants::default()
    }
}

/// A context with no environment and no TOML.
pub fn context() -> wit::DeploymentContext {
    wit::DeploymentContext {
        env: Vec::new(),
        toml: None,
        facts: wit::HostFacts {
            dirs: Vec::new(),
            memory_limit_bytes: None,
            cpu_count: 2,
            pod: wit::PodIdentity {
                pod_name: None,
                pod_namespace: None,
                pod_ip: None,
                node_name: None,
                hostname: None,
            },
        },
    }
}

/// An empty memory backend, kept in memory only.
pub fn memory() -> Arc<MemoryStorage> {
    Arc::new(
        MemoryStorage::open(&MemoryConfig {
            disk_backup: false,
            ..MemoryConfig::defaults("/nonexistent").expect("the memory defaults")
        })
        .expect("the memory backend"),
    )
}

pub async fn put(store: &dyn Storage, key: &[u8], value: &[u8]) {
    store
        .put(key, Bytes::copy_from_slice(value), PutOptions::default())
        .await
        .expect("put");
}

/// Evaluates `plugin` on the sample context and report, against `store`.
pub async fn evaluate(
    plugin: &HealthPlugin,
    store: &Arc<MemoryStorage>,
) -> Result<wit::HealthVerdict, PluginError> {
    let storage: Arc<dyn Storage> = store.clone();
    plugin
        .evaluate(&context(), &convert::sample_health_report(), Some(storage))
        .await
}

/// Counts every call's outcome: `ok` or the error's metrics label.
#[derive(Default)]
pub struct Outcomes(Mutex<Vec<(Role, &'static str, &'static str)>>);

impl CallObserver for Outcomes {
    fn observe(
        &self,
        role: Role,
        function: &'static str,
        _elapsed: Duration,
        outcome: Result<(), &PluginError>,
    ) {
        let label = outcome.map_or_else(PluginError::kind, |()| "ok");
        self.0.lock().unwrap().push((role, function, label));
    }
}

impl Outcomes {
    /// Calls of the health plugin's `evaluate` that ended with `label`.
    pub fn count(&self, label: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(role, function, l)| {
                *role == Role::Health && *function == "evaluate" && *l == label
            })
            .count()
    }
}
