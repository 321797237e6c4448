//! From an `OrbitCluster` to the server's configuration, through the
//! translator plugin: the resource becomes the deployment context a pod of
//! it would show the server (its environment with secret values withheld,
//! its orbit.toml, the data volume), the translator (embedded default or the
//! resource's own) checks it and returns the typed configuration, and
//! `render-env` turns that into the pod's variables. The operator knows no
//! setting's name, default or bound: a value the server would refuse is
//! refused here with the translator's own diagnostic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use orbit_config_syntax::{BackendConfig, BackendKind, ValueKind, is_secret_name};
use orbit_plugin_runtime::{
    Grants, PluginLimits, PluginRuntime, PluginSource, PluginSpec, RenderedValue,
    StoreAccessLimits, TranslatorPlugin, convert, types as wit,
};
use orbit_storage::{SecretBindings, SecretRef};
use serde_json::Value as Json;

use crate::crd::{OrbitCluster, OrbitClusterSpec, SecretUse, SettingsTable};
use crate::settings_schema::{self as ss, Table};

/// The data root of the server container (the data volume's mount path).
pub const DATA_DIR: &str = "/app/data";
/// Where the ConfigMap's orbit.toml is mounted.
pub const CONFIG_DIR: &str = "/etc/orbit";
pub const HTTP_PORT: u16 = 8080;
pub const METRICS_PORT: u16 = 9090;
pub const DEFAULT_PLUGIN_MOUNT: &str = "/plugins";

/// Why a resource cannot be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resource itself is wrong (the translator's diagnostics, or a
    /// value the operator cannot place): `InvalidConfiguration`.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The translator could not be loaded or failed (trap, timeout):
    /// `TranslatorFailed`.
    #[error("translator plugin: {0}")]
    Plugin(String),
}

/// How a variable of the server container gets its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvSource {
    Plain(String),
    /// `secretKeyRef` of the cluster's Secret (optional: a missing key
    /// leaves the variable unset, e.g. for ambient cloud credentials).
    SecretKey(String),
}

/// The configuration of one resource, as the translator resolved it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub backend: BackendKind,
    /// The variables `render-env` gave, in its order.
    pub env: Vec<(String, EnvSource)>,
    /// A secret file the backend reads (GCP's service-account JSON): the
    /// Secret key mounted at that path.
    pub secret_file: Option<(String, String)>,
    /// orbit.toml of the ConfigMap (server, plugins, health).
    pub config_toml: String,
    /// The translator's warnings and the operator's own notes.
    pub warnings: Vec<String>,
}

/// The translator's input for a resource.
#[derive(Clone, Debug)]
pub struct Input {
    pub backend: BackendKind,
    pub context: wit::DeploymentContext,
    pub bindings: SecretBindings,
    pub config_toml: String,
    pub warnings: Vec<String>,
}

/// The Secret key of a secret setting: `spec.secrets.keys[NAME]`, else the
/// name without `ORBIT_`, lower case, `-` for `_`.
pub fn secret_key(spec: &OrbitClusterSpec, env: &str) -> String {
    spec.secrets
        .as_ref()
        .and_then(|s| s.keys.as_ref())
        .and_then(|k| k.get(env).cloned())
        .unwrap_or_else(|| {
            env.trim_start_matches("ORBIT_")
                .to_ascii_lowercase()
                .replace('_', "-")
        })
}

/// The backend named by the resource.
pub fn backend(spec: &OrbitClusterSpec) -> Result<BackendKind, ResolveError> {
    spec.persistence.backend.parse().map_err(|_| {
        ResolveError::Invalid(vec![format!(
            "spec.persistence.backend is {:?}: expected one of {}",
            spec.persistence.backend,
            BackendKind::accepted_names()
        )])
    })
}

/// The secret settings of `kind` delivered as a file rather than a variable:
/// (the Secret setting whose key is mounted, the secret-file setting that
/// names the path). GCP's service-account JSON, as the Helm chart does it.
pub fn file_secret(kind: BackendKind) -> Option<(&'static str, &'static str)> {
    let settings = BackendConfig::settings(kind);
    let file = settings.iter().find(|s| s.kind == ValueKind::SecretFile)?;
    let key = settings.iter().find(|s| s.kind == ValueKind::Secret)?;
    Some((key.env, file.env))
}

/// The secret settings of `kind` the pod gets from the Secret as variables.
pub fn env_secrets(kind: BackendKind) -> Vec<&'static str> {
    let file = file_secret(kind).map(|(k, _)| k);
    BackendConfig::settings(kind)
        .iter()
        .filter(|s| s.kind == ValueKind::Secret && Some(s.env) != file)
        .map(|s| s.env)
        .collect()
}

fn toml_value(v: &Json) -> Option<toml::Value> {
    Some(match v {
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Json::String(s) => toml::Value::String(s.clone()),
        _ => return None,
    })
}

/// A settings table's entries under their TOML keys.
fn table_entries(
    table: Table,
    values: Option<&SettingsTable>,
    path: &str,
    out: &mut toml::Table,
    problems: &mut Vec<String>,
) {
    let keys = ss::keys(table);
    for (key, value) in values.into_iter().flatten() {
        let Some((_, setting)) = keys.iter().find(|(k, _)| k == key) else {
            problems.push(format!(
                "{path}.{key} is not a setting there (accepted: {})",
                keys.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        // An alias is written under its own (older) name, so the
        // translator's messages name what the user wrote.
        let toml_key = setting
            .toml_aliases
            .iter()
            .find(|a| ss::camel(a) == *key)
            .copied()
            .unwrap_or(setting.toml_key());
        match toml_value(value) {
            Some(v) => {
                out.insert(toml_key.to_string(), v);
            }
            None if value.is_null() => {}
            None => problems.push(format!(
                "{path}.{key}: expected a string, number or boolean"
            )),
        }
    }
}

/// orbit.toml of the ConfigMap: what the pods read besides their variables.
fn config_toml(spec: &OrbitClusterSpec, problems: &mut Vec<String>) -> String {
    let mut server = toml::Table::new();
    server.insert("data_dir".into(), DATA_DIR.into());
    server.insert("http_addr".into(), format!("0.0.0.0:{HTTP_PORT}").into());
    server.insert(
        "metrics_addr".into(),
        format!("0.0.0.0:{METRICS_PORT}").into(),
    );
    // JSON lines by default, as the Helm chart (log collectors parse them).
    server.insert("log_format".into(), "json".into());
    table_entries(
        ss::SERVER,
        spec.server.as_ref(),
        "spec.server",
        &mut server,
        problems,
    );

    let mut plugins = toml::Table::new();
    if let Some(p) = &spec.plugins {
        let mount = p.mount_path.as_deref().unwrap_or(DEFAULT_PLUGIN_MOUNT);
        for (role, r) in [
            ("selector", &p.selector),
            ("translator", &p.translator),
            ("health", &p.health),
        ] {
            let Some(r) = r else { continue };
            let path = if r.file.starts_with('/') {
                r.file.clone()
            } else {
                format!("{}/{}", mount.trim_end_matches('/'), r.file)
            };
            plugins.insert(role.into(), path.into());
            if let Some(sha) = &r.sha256 {
                plugins.insert(format!("{role}_sha256"), sha.clone().into());
            }
            if let Some(g) = &r.grants {
                plugins.insert(format!("{role}_grants"), g.clone().into());
            }
        }
        if let Some(k) = &p.public_key {
            plugins.insert("public_key".into(), k.clone().into());
        }
        table_entries(
            ss::PLUGINS,
            p.limits.as_ref(),
            "spec.plugins.limits",
            &mut plugins,
            problems,
        );
    }
    let mut health = toml::Table::new();
    table_entries(
        ss::HEALTH,
        spec.health.as_ref(),
        "spec.health",
        &mut health,
        problems,
    );
    let mut doc = toml::Table::new();
    doc.insert("server".into(), server.into());
    if !plugins.is_empty() {
        doc.insert("plugins".into(), plugins.into());
    }
    if !health.is_empty() {
        doc.insert("health".into(), health.into());
    }
    toml::to_string(&doc).unwrap_or_default()
}

/// `[persistence.<backend>]` from the resource: the guides' `local` or
/// `cloud` keys as written, then the catalogue table (which wins).
fn persistence_table(
    spec: &OrbitClusterSpec,
    kind: BackendKind,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> toml::Table {
    let p = &spec.persistence;
    let mut table = toml::Table::new();
    let mut put = |key: &str, v: Option<&Json>, table: &mut toml::Table| {
        if let Some(v) = v {
            match toml_value(v) {
                Some(v) => {
                    table.insert(key.to_string(), v);
                }
                None => problems.push(format!(
                    "spec.persistence: {key} must be a string, number or boolean"
                )),
            }
        }
    };
    let local_given = p.local.is_some();
    let cloud_given = p.cloud.is_some();
    if let Some(l) = &p.local
        && kind.is_local()
    {
        put(
            "data_dir",
            l.data_dir.clone().map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "enable_compression",
            l.enable_compression.map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "write_buffer_size",
            l.write_buffer_size.as_ref(),
            &mut table,
        );
        put("cache_size", l.cache_size.as_ref(), &mut table);
        for (k, v) in l.config.iter().flatten() {
            put(k, Some(v), &mut table);
        }
    }
    if let Some(c) = &p.cloud
        && !kind.is_local()
    {
        put(
            "endpoint",
            c.endpoint.clone().map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "region",
            c.region.clone().map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "bucket",
            c.bucket.clone().map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "prefix",
            c.prefix.clone().map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "connection_timeout",
            c.connection_timeout.as_ref(),
            &mut table,
        );
        put(
            "retry_count",
            c.retry_count.map(Json::from).as_ref(),
            &mut table,
        );
        put(
            "enable_ssl",
            c.enable_ssl.map(Json::from).as_ref(),
            &mut table,
        );
    }
    if (local_given && !kind.is_local()) || (cloud_given && kind.is_local()) {
        warnings.push(format!(
            "spec.persistence.{} is ignored: the {kind} backend is {}",
            if kind.is_local() { "cloud" } else { "local" },
            if kind.is_local() {
                "local"
            } else {
                "a cloud one"
            }
        ));
    }
    let own = match kind {
        BackendKind::Memory => &p.memory,
        BackendKind::CowBtree => &p.cow_btree,
        BackendKind::LsmTree => &p.lsm_tree,
        BackendKind::Rocksdb => &p.rocksdb,
        BackendKind::S3 => &p.s3,
        BackendKind::Azure => &p.azure,
        BackendKind::Gcp => &p.gcp,
    };
    table_entries(
        Table::Backend(kind),
        own.as_ref(),
        &format!("spec.persistence.{}", ss::camel(kind.name())),
        &mut table,
        problems,
    );
    table
}

/// The translator's input for `cluster` (pure: no I/O).
pub fn input(cluster: &OrbitCluster) -> Result<Input, ResolveError> {
    let spec = &cluster.spec;
    let kind = backend(spec)?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let config = config_toml(spec, &mut problems);
    let table = persistence_table(spec, kind, &mut problems, &mut warnings);
    if !problems.is_empty() {
        return Err(ResolveError::Invalid(problems));
    }
    // What the translator reads: the ConfigMap's file plus the backend
    // table (which the pods get as variables instead).
    let mut doc: toml::Table = toml::from_str(&config).unwrap_or_default();
    let mut persistence = toml::Table::new();
    persistence.insert(kind.name().into(), table.into());
    doc.insert("persistence".into(), persistence.into());
    let toml_text = toml::to_string(&doc).unwrap_or_default();

    let mut env = vec![wit::EnvVar {
        name: "ORBIT_PERSISTENCE_BACKEND".into(),
        value: wit::EnvValue::Plain(kind.name().into()),
    }];
    let mut bindings = SecretBindings::default();
    // The Secret's variables the pod gets (none: not referenced).
    let token = (spec.api_token() != SecretUse::None).then_some("ORBIT_API_TOKEN");
    let backend_secrets = if spec.backend_credentials() == SecretUse::None {
        Vec::new()
    } else {
        env_secrets(kind)
    };
    for name in token.into_iter().chain(backend_secrets) {
        env.push(wit::EnvVar {
            name: name.into(),
            value: wit::EnvValue::Withheld,
        });
    }
    for s in orbit_config_syntax::settings() {
        match s.kind {
            ValueKind::Secret => bindings.allow(s.env, SecretRef::Env(s.env.into())),
            ValueKind::SecretFile if !s.default.is_empty() => {
                bindings.allow(s.env, SecretRef::File(s.default.into()))
            }
            _ => {}
        }
    }
    for e in spec.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(_)) => wit::EnvValue::Withheld,
            (_, None) if is_secret_name(&e.name) => wit::EnvValue::Withheld,
            (v, None) => wit::EnvValue::Plain(v.clone().unwrap_or_default()),
        };
        if let Some(s) = orbit_config_syntax::lookup(&e.name) {
            match s.kind {
                ValueKind::SecretFile => {
                    if let wit::EnvValue::Plain(p) = &value {
                        bindings.allow(s.env, SecretRef::File(p.clone()));
                    }
                }
                ValueKind::Secret => {}
                _ => {}
            }
        }
        if let Some(base) = e.name.strip_suffix("_FILE")
            && let Some(s) = orbit_config_syntax::lookup(base)
            && let wit::EnvValue::Plain(p) = &value
        {
            bindings.allow(s.env, SecretRef::File(p.clone()));
        }
        env.retain(|v| v.name != e.name);
        env.push(wit::EnvVar {
            name: e.name.clone(),
            value,
        });
    }
    // A path given for the secret file in the resource's table is allowed too.
    if let Some((_, file_setting)) = file_secret(kind)
        && let Some(s) = orbit_config_syntax::lookup(file_setting)
        && let Ok(doc) = toml_text.parse::<toml::Table>()
        && let Some(p) = doc
            .get("persistence")
            .and_then(|p| p.get(kind.name()))
            .and_then(|t| t.get(s.toml_key()))
            .and_then(toml::Value::as_str)
    {
        bindings.allow(s.env, SecretRef::File(p.into()));
    }

    let data = wit::DirFacts {
        path: DATA_DIR.into(),
        exists: true,
        writable: true,
        free_bytes: None,
        total_bytes: None,
        mount_point: kind.is_local(),
    };
    let context = wit::DeploymentContext {
        env,
        toml: Some(toml_text),
        facts: wit::HostFacts {
            dirs: vec![data],
            memory_limit_bytes: None,
            cpu_count: 1,
            pod: wit::PodIdentity {
                pod_name: None,
                pod_namespace: cluster.metadata.namespace.clone(),
                pod_ip: None,
                node_name: None,
                hostname: None,
            },
        },
    };
    Ok(Input {
        backend: kind,
        context,
        bindings,
        config_toml: config,
        warnings,
    })
}

/// Loads translators and runs them.
pub struct Translators {
    runtime: PluginRuntime,
    default: TranslatorPlugin,
    /// Custom translators by sha256, compiled once.
    custom: std::sync::Mutex<BTreeMap<String, std::sync::Arc<TranslatorPlugin>>>,
    dir: PathBuf,
}

impl Translators {
    /// The plugin engine and the embedded default translator. `dir` holds
    /// the custom translators' files (read from ConfigMaps).
    pub fn new(dir: PathBuf) -> Result<Self, ResolveError> {
        let runtime = PluginRuntime::new(StoreAccessLimits::default(), None, None, 64 << 20)
            .map_err(|e| ResolveError::Plugin(format!("{e:#}")))?;
        let default = runtime
            .load_translator(&spec(
                orbit_plugin_runtime::embedded::default_source(
                    orbit_plugin_runtime::Role::Translator,
                ),
                None,
            ))
            .map_err(|e| ResolveError::Plugin(e.to_string()))?;
        Ok(Translators {
            runtime,
            default,
            custom: Default::default(),
            dir,
        })
    }

    /// The embedded default translator.
    pub fn default_plugin(&self) -> &TranslatorPlugin {
        &self.default
    }

    /// A custom translator from its bytes, checked against `pin`.
    fn custom(
        &self,
        bytes: &[u8],
        pin: Option<&str>,
    ) -> Result<std::sync::Arc<TranslatorPlugin>, ResolveError> {
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        if let Some(p) = self
            .custom
            .lock()
            .map_err(|_| ResolveError::Plugin("translator cache poisoned".into()))?
            .get(&sha)
        {
            if let Some(pin) = pin
                && pin != sha
            {
                return Err(ResolveError::Invalid(vec![format!(
                    "spec.plugins.translator.sha256 is {pin} but the component in the ConfigMap has sha256 {sha}"
                )]));
            }
            return Ok(p.clone());
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| ResolveError::Plugin(format!("{}: {e}", self.dir.display())))?;
        let path = self.dir.join(format!("{sha}.wasm"));
        std::fs::write(&path, bytes)
            .map_err(|e| ResolveError::Plugin(format!("{}: {e}", path.display())))?;
        let plugin = self
            .runtime
            .load_translator(&spec(PluginSource::File(path), pin.map(str::to_string)))
            .map_err(|e| ResolveError::Invalid(vec![format!("spec.plugins.translator: {e}")]))?;
        let plugin = std::sync::Arc::new(plugin);
        if let Ok(mut c) = self.custom.lock() {
            c.insert(sha, plugin.clone());
        }
        Ok(plugin)
    }

    /// Checks `cluster` with its translator (`custom`: the component's bytes
    /// and pin, when the resource names one) and renders its variables.
    pub async fn resolve(
        &self,
        cluster: &OrbitCluster,
        custom: Option<(&[u8], Option<&str>)>,
    ) -> Result<Resolved, ResolveError> {
        let input = input(cluster)?;
        let owned;
        let plugin: &TranslatorPlugin = match custom {
            Some((bytes, pin)) => {
                owned = self.custom(bytes, pin)?;
                &owned
            }
            None => &self.default,
        };
        run(plugin, &cluster.spec, input).await
    }
}

fn spec(source: PluginSource, pin: Option<String>) -> PluginSpec {
    PluginSpec {
        source,
        limits: PluginLimits::default(),
        pinned_sha256: pin,
        grants: Grants::default(),
        public_key: None,
    }
}

/// Runs `translate` then `render-env`.
pub async fn run(
    plugin: &TranslatorPlugin,
    spec: &OrbitClusterSpec,
    input: Input,
) -> Result<Resolved, ResolveError> {
    let translated = plugin
        .translate(
            convert::backend_kind_to_wit(input.backend),
            &input.context,
            &input.bindings,
        )
        .await
        .map_err(|e| match e {
            orbit_plugin_runtime::PluginError::InvalidOutput { .. } => {
                ResolveError::Invalid(vec![e.to_string()])
            }
            e => ResolveError::Plugin(e.to_string()),
        })?;
    let (errors, warnings): (Vec<_>, Vec<_>) =
        translated.diagnostics.iter().partition(|d| d.is_error());
    if !errors.is_empty() {
        return Err(ResolveError::Invalid(
            errors.iter().map(ToString::to_string).collect(),
        ));
    }
    let Some(config) = translated.config else {
        return Err(ResolveError::Plugin(
            "the translator returned no configuration and no error".into(),
        ));
    };
    let vars = plugin
        .render_env(&config)
        .await
        .map_err(|e| ResolveError::Plugin(e.to_string()))?;
    let mut env = Vec::new();
    let mut secret_file = None;
    let file = file_secret(input.backend);
    for v in vars {
        let source = match v.value {
            RenderedValue::Plain(s) => EnvSource::Plain(s),
            RenderedValue::Secret(wit::SecretRef::Env(name)) => {
                EnvSource::SecretKey(secret_key(spec, &name))
            }
            RenderedValue::Secret(wit::SecretRef::File(path)) => EnvSource::Plain(path),
        };
        if let (Some((key_setting, file_setting)), EnvSource::Plain(path)) = (file, &source)
            && v.name == file_setting
            && !path.is_empty()
        {
            secret_file = Some((secret_key(spec, key_setting), path.clone()));
        }
        env.push((v.name, source));
    }
    if secret_file.is_some() && spec.backend_credentials() == SecretUse::None {
        return Err(ResolveError::Invalid(vec![format!(
            "spec.secrets.backendCredentials is none with the {} backend: no key file is mounted, so also set spec.persistence.{}.credentialsPath to \"\" (the server then uses the pod's Workload Identity)",
            input.backend.name(),
            input.backend.name()
        )]));
    }
    let mut all_warnings = input.warnings;
    all_warnings.extend(warnings.iter().map(ToString::to_string));
    Ok(Resolved {
        backend: input.backend,
        env,
        secret_file,
        config_toml: input.config_toml,
        warnings: all_warnings,
    })
}
