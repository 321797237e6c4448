//! Every setting Orbit reads: its environment variable, its TOML key, its
//! value syntax, its default and what it does. The README's table, the
//! translator's unknown-name warnings and the host's own settings all come
//! from this one list.

use crate::BackendKind;

/// Defaults that live under the data root are written with this placeholder;
/// it stands for `ORBIT_DATA_DIR` (default `/app/data`).
pub const DATA_DIR_PLACEHOLDER: &str = "{data_dir}";

/// Accepted values of the `*_DURABILITY` settings of the local engines.
pub const DURABILITY: &[&str] = &["sync", "periodic", "none"];

/// Who reads a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The host itself (addresses, limits, logging).
    Server,
    /// The host's plugin runtime.
    Plugins,
    /// The health plugin's thresholds.
    Health,
    /// One backend's configuration, read by the translator plugin.
    Backend(BackendKind),
    /// Pod identity, set by Kubernetes (downward API).
    Pod,
}

/// The syntax of a setting's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueKind {
    Bool,
    ByteSize,
    Count {
        min: u64,
        max: u64,
    },
    DurationSecs,
    DurationMs,
    Fraction,
    Text,
    Path,
    Url,
    /// `host:port` to listen on.
    SocketAddr,
    BackendName,
    Choice(&'static [&'static str]),
    /// One of [`DURABILITY`]; typed as [`crate::Durability`].
    Durability,
    /// The value is a secret. In the environment it is the secret itself, or
    /// `<NAME>_FILE` names a file holding it; it is refused in TOML (only
    /// `<key>_file` is accepted there).
    Secret,
    /// A path to a file that holds a secret (e.g. a service-account JSON).
    SecretFile,
}

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub env: &'static str,
    /// Older environment names still read, with a warning naming the new one.
    pub env_aliases: &'static [&'static str],
    /// Dotted TOML path, e.g. `persistence.lsm_tree.memtable_size`.
    pub toml: &'static str,
    /// Other TOML names accepted for compatibility (the seed documents').
    pub toml_aliases: &'static [&'static str],
    pub scope: Scope,
    pub kind: ValueKind,
    /// Default as written in the environment; empty when there is none.
    pub default: &'static str,
    /// The setting must be given (no sensible default exists).
    pub required: bool,
    pub doc: &'static str,
}

impl Setting {
    /// The TOML key within its table (`memtable_size`).
    pub fn toml_key(&self) -> &'static str {
        self.toml.rsplit('.').next().unwrap_or(self.toml)
    }
}

const fn s(
    env: &'static str,
    toml: &'static str,
    scope: Scope,
    kind: ValueKind,
    default: &'static str,
    doc: &'static str,
) -> Setting {
    Setting {
        env,
        env_aliases: &[],
        toml,
        toml_aliases: &[],
        scope,
        kind,
        default,
        required: false,
        doc,
    }
}

use Scope::*;
use ValueKind::*;

/// The host-wide settings (backend settings are declared in
/// [`crate::backends`]); `settings()` lists them in documentation order.
static HOST_SETTINGS: &[Setting] = &[
    // ---- server -----------------------------------------------------------
    s(
        "ORBIT_PERSISTENCE_BACKEND",
        "server.persistence_backend",
        Server,
        BackendName,
        "memory",
        "Backend to use: memory, cow_btree, lsm_tree, rocksdb, s3, azure or gcp (read by the selector plugin).",
    ),
    s(
        "ORBIT_DATA_DIR",
        "server.data_dir",
        Server,
        Path,
        "/app/data",
        "Data root; the local backends' default directories live under it.",
    ),
    s(
        "ORBIT_HTTP_ADDR",
        "server.http_addr",
        Server,
        SocketAddr,
        "0.0.0.0:8080",
        "Address of the key-value API and the health endpoints.",
    ),
    s(
        "ORBIT_METRICS_ADDR",
        "server.metrics_addr",
        Server,
        SocketAddr,
        "0.0.0.0:9090",
        "Address of the Prometheus `/metrics` endpoint.",
    ),
    s(
        "ORBIT_API_TOKEN",
        "server.api_token",
        Server,
        Secret,
        "",
        "If set, `/v1/*` requires `Authorization: Bearer <token>`.",
    ),
    s(
        "ORBIT_LOG_FORMAT",
        "server.log_format",
        Server,
        Choice(&["text", "json"]),
        "text",
        "Log line format: text or json (filter with RUST_LOG).",
    ),
    s(
        "ORBIT_MAX_KEY_BYTES",
        "server.max_key_bytes",
        Server,
        ByteSize,
        "1024",
        "Largest accepted key, in bytes.",
    ),
    s(
        "ORBIT_MAX_VALUE_BYTES",
        "server.max_value_bytes",
        Server,
        ByteSize,
        "4MiB",
        "Largest accepted value, in bytes.",
    ),
    s(
        "ORBIT_SHUTDOWN_TIMEOUT",
        "server.shutdown_timeout",
        Server,
        DurationSecs,
        "30",
        "How long SIGTERM waits for requests in flight before the final flush.",
    ),
    s(
        "ORBIT_TTL_PURGE_INTERVAL",
        "server.ttl_purge_interval",
        Server,
        DurationSecs,
        "10",
        "How often expired keys are purged (they are never returned, purged or not).",
    ),
    s(
        "ORBIT_CONFIG_FILE",
        "",
        Server,
        Path,
        "",
        "TOML configuration file (same as --config).",
    ),
    // ---- plugins ----------------------------------------------------------
    s(
        "ORBIT_PLUGIN_SELECTOR",
        "plugins.selector",
        Plugins,
        Path,
        "",
        "Component replacing the embedded backend selector.",
    ),
    s(
        "ORBIT_PLUGIN_TRANSLATOR",
        "plugins.translator",
        Plugins,
        Path,
        "",
        "Component replacing the embedded config translator.",
    ),
    s(
        "ORBIT_PLUGIN_HEALTH",
        "plugins.health",
        Plugins,
        Path,
        "",
        "Component replacing the embedded health policy.",
    ),
    s(
        "ORBIT_PLUGIN_TIMEOUT",
        "plugins.timeout",
        Plugins,
        DurationMs,
        "2s",
        "Time limit of one plugin call (CPU, by epoch interruption, and wall clock).",
    ),
    s(
        "ORBIT_PLUGIN_MEMORY_LIMIT",
        "plugins.memory_limit",
        Plugins,
        ByteSize,
        "64MiB",
        "Linear-memory limit of one plugin instance.",
    ),
    s(
        "ORBIT_PLUGIN_SELECTOR_TIMEOUT",
        "plugins.selector_timeout",
        Plugins,
        DurationMs,
        "",
        "Call time limit of the selector (default: ORBIT_PLUGIN_TIMEOUT).",
    ),
    s(
        "ORBIT_PLUGIN_TRANSLATOR_TIMEOUT",
        "plugins.translator_timeout",
        Plugins,
        DurationMs,
        "",
        "Call time limit of the translator (default: ORBIT_PLUGIN_TIMEOUT).",
    ),
    s(
        "ORBIT_PLUGIN_HEALTH_TIMEOUT",
        "plugins.health_timeout",
        Plugins,
        DurationMs,
        "",
        "Call time limit of the health plugin (default: ORBIT_PLUGIN_TIMEOUT).",
    ),
    s(
        "ORBIT_PLUGIN_SELECTOR_MEMORY_LIMIT",
        "plugins.selector_memory_limit",
        Plugins,
        ByteSize,
        "",
        "Memory limit of the selector (default: ORBIT_PLUGIN_MEMORY_LIMIT).",
    ),
    s(
        "ORBIT_PLUGIN_TRANSLATOR_MEMORY_LIMIT",
        "plugins.translator_memory_limit",
        Plugins,
        ByteSize,
        "",
        "Memory limit of the translator (default: ORBIT_PLUGIN_MEMORY_LIMIT).",
    ),
    s(
        "ORBIT_PLUGIN_HEALTH_MEMORY_LIMIT",
        "plugins.health_memory_limit",
        Plugins,
        ByteSize,
        "",
        "Memory limit of the health plugin (default: ORBIT_PLUGIN_MEMORY_LIMIT).",
    ),
    s(
        "ORBIT_PLUGIN_SELECTOR_SHA256",
        "plugins.selector_sha256",
        Plugins,
        Text,
        "",
        "Pin: refuse a selector component with another sha256.",
    ),
    s(
        "ORBIT_PLUGIN_TRANSLATOR_SHA256",
        "plugins.translator_sha256",
        Plugins,
        Text,
        "",
        "Pin: refuse a translator component with another sha256.",
    ),
    s(
        "ORBIT_PLUGIN_HEALTH_SHA256",
        "plugins.health_sha256",
        Plugins,
        Text,
        "",
        "Pin: refuse a health component with another sha256 (also on reload).",
    ),
    s(
        "ORBIT_PLUGIN_SELECTOR_GRANTS",
        "plugins.selector_grants",
        Plugins,
        Text,
        "",
        "What the selector may reach beyond its empty sandbox, comma-separated: `env:NAME` (not secrets), `dir:/PATH` (read-only), `network`. `keyvalue:BUCKET` (wasi:keyvalue buckets) applies to the health plugin only.",
    ),
    s(
        "ORBIT_PLUGIN_TRANSLATOR_GRANTS",
        "plugins.translator_grants",
        Plugins,
        Text,
        "",
        "What the translator may reach beyond its empty sandbox, comma-separated: `env:NAME` (not secrets), `dir:/PATH` (read-only), `network`. `keyvalue:BUCKET` (wasi:keyvalue buckets) applies to the health plugin only.",
    ),
    s(
        "ORBIT_PLUGIN_HEALTH_GRANTS",
        "plugins.health_grants",
        Plugins,
        Text,
        "",
        "What the health plugin may reach beyond its empty sandbox, comma-separated: `env:NAME` (not secrets), `dir:/PATH` (read-only), `network`. `keyvalue:BUCKET` lets it reach the keys BUCKET/... through wasi:keyvalue and the store import (`default` is the whole user keyspace; without it the store import reaches nothing).",
    ),
    s(
        "ORBIT_PLUGIN_PUBLIC_KEY",
        "plugins.public_key",
        Plugins,
        Text,
        "",
        "Ed25519 public key (64 hex digits): every plugin file must then have a detached signature <file>.sig by it (`orbit-server plugin sign`).",
    ),
    s(
        "ORBIT_PLUGIN_CACHE_DIR",
        "plugins.cache_dir",
        Plugins,
        Path,
        "",
        "Precompiled-plugin cache, a directory only the host may write (default: <data dir>/.plugin-cache if the data dir is writable, else none; `off` disables).",
    ),
    s(
        "ORBIT_PLUGIN_RELOAD_INTERVAL",
        "plugins.reload_interval",
        Plugins,
        DurationMs,
        "1s",
        "How often the health plugin's file is checked for a new version (0 disables hot reload).",
    ),
    // ---- health -----------------------------------------------------------
    s(
        "ORBIT_HEALTH_MIN_FREE_BYTES",
        "health.min_free_bytes",
        Health,
        ByteSize,
        "100MiB",
        "Not ready when the data directory has less free space than this (local backends).",
    ),
    s(
        "ORBIT_HEALTH_MAX_ERROR_RATE",
        "health.max_error_rate",
        Health,
        Fraction,
        "0.05",
        "Not ready when more than this fraction of recent backend operations failed.",
    ),
];

static POD_SETTINGS: &[Setting] = &[
    s("POD_NAME", "", Pod, Text, "", "Pod name (downward API)."),
    s(
        "POD_NAMESPACE",
        "",
        Pod,
        Text,
        "",
        "Pod namespace (downward API).",
    ),
    s("POD_IP", "", Pod, Text, "", "Pod IP (downward API)."),
    s("NODE_NAME", "", Pod, Text, "", "Node name (downward API)."),
    s("HOSTNAME", "", Pod, Text, "", "Host name."),
    s(
        "RUST_LOG",
        "",
        Pod,
        Text,
        "info",
        "Log filter, e.g. info or orbit_server=debug.",
    ),
];

static SETTINGS: std::sync::LazyLock<Vec<Setting>> = std::sync::LazyLock::new(|| {
    let mut all = HOST_SETTINGS.to_vec();
    for backend in crate::backends::BACKEND_SETTINGS {
        all.extend_from_slice(backend);
    }
    all.extend_from_slice(POD_SETTINGS);
    all
});

/// All settings, in documentation order: the host's, each backend's, the
/// pod identity.
pub fn settings() -> &'static [Setting] {
    &SETTINGS
}

/// The setting read from environment variable `env`.
pub fn lookup(env: &str) -> Option<&'static Setting> {
    settings().iter().find(|s| s.env == env)
}

/// The setting at dotted TOML path `path` (aliases included).
pub fn lookup_toml(path: &str) -> Option<&'static Setting> {
    settings().iter().find(|s| {
        !s.toml.is_empty()
            && (s.toml == path
                || s.toml_aliases.iter().any(|a| {
                    path.strip_suffix(a).is_some_and(|table| {
                        table.strip_suffix('.') == s.toml.rsplit_once('.').map(|(t, _)| t)
                    })
                }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::*;

    #[test]
    fn names_are_unique_and_defaults_parse() {
        let mut envs: Vec<_> = settings()
            .iter()
            .flat_map(|s| std::iter::once(s.env).chain(s.env_aliases.iter().copied()))
            .collect();
        let count = envs.len();
        envs.sort();
        envs.dedup();
        assert_eq!(envs.len(), count, "duplicate env name");
        for s in settings() {
            if s.default.is_empty() {
                continue;
            }
            let ok = match s.kind {
                Bool => parse_bool(s.default).is_ok(),
                ByteSize => parse_byte_size(s.default).is_ok(),
                Count { min, max } => parse_count(s.default, min, max).is_ok(),
                DurationSecs => parse_duration_secs(s.default).is_ok(),
                DurationMs => parse_duration_ms(s.default).is_ok(),
                Fraction => parse_fraction(s.default).is_ok(),
                BackendName => s.default.parse::<BackendKind>().is_ok(),
                Choice(c) => c.contains(&s.default),
                Durability => DURABILITY.contains(&s.default),
                _ => true,
            };
            assert!(ok, "default of {} does not parse", s.env);
        }
    }

    #[test]
    fn every_backend_has_settings() {
        for k in BackendKind::ALL {
            assert!(
                settings().iter().any(|s| s.scope == Scope::Backend(k)),
                "{k}"
            );
        }
    }

    #[test]
    fn toml_lookup_with_aliases() {
        assert_eq!(
            lookup_toml("persistence.lsm_tree.memtable_size_limit")
                .unwrap()
                .env,
            "ORBIT_LSM_MEMTABLE_SIZE"
        );
        assert_eq!(
            lookup_toml("persistence.lsm_tree.memtable_size")
                .unwrap()
                .env,
            "ORBIT_LSM_MEMTABLE_SIZE"
        );
        assert!(lookup_toml("persistence.rocksdb.memtable_size_limit").is_none());
        assert_eq!(
            lookup_toml("server.persistence_backend").unwrap().env,
            "ORBIT_PERSISTENCE_BACKEND"
        );
    }
}
