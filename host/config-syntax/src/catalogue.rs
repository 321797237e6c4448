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
        toml,
        toml_aliases: &[],
        scope,
        kind,
        default,
        required: false,
        doc,
    }
}

const fn required(mut setting: Setting) -> Setting {
    setting.required = true;
    setting
}

const fn aliases(mut setting: Setting, names: &'static [&'static str]) -> Setting {
    setting.toml_aliases = names;
    setting
}

use BackendKind as B;
use Scope::*;
use ValueKind::*;

static SETTINGS: &[Setting] = &[
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
    // ---- memory -----------------------------------------------------------
    s(
        "ORBIT_MEMORY_MAX_ENTRIES",
        "persistence.memory.max_entries",
        Backend(B::Memory),
        Count {
            min: 1,
            max: u64::MAX,
        },
        "1000000",
        "Most live keys; a write beyond it is refused (HTTP 507), never evicted.",
    ),
    s(
        "ORBIT_MEMORY_DISK_BACKUP",
        "persistence.memory.disk_backup",
        Backend(B::Memory),
        Bool,
        "true",
        "Snapshot to disk every interval and on SIGTERM; restored at start.",
    ),
    s(
        "ORBIT_MEMORY_BACKUP_PATH",
        "persistence.memory.backup_path",
        Backend(B::Memory),
        Path,
        "{data_dir}/orbit_backup.json",
        "Snapshot file.",
    ),
    s(
        "ORBIT_MEMORY_BACKUP_INTERVAL",
        "persistence.memory.backup_interval",
        Backend(B::Memory),
        DurationSecs,
        "300",
        "Seconds between snapshots.",
    ),
    // ---- cow_btree --------------------------------------------------------
    s(
        "ORBIT_COW_DATA_DIR",
        "persistence.cow_btree.data_dir",
        Backend(B::CowBtree),
        Path,
        "{data_dir}/cow_btree",
        "Directory of the copy-on-write B+tree.",
    ),
    s(
        "ORBIT_COW_MAX_KEYS_PER_NODE",
        "persistence.cow_btree.max_keys_per_node",
        Backend(B::CowBtree),
        Count { min: 4, max: 65536 },
        "256",
        "Node fan-out.",
    ),
    s(
        "ORBIT_COW_WAL_BUFFER_SIZE",
        "persistence.cow_btree.wal_buffer_size",
        Backend(B::CowBtree),
        ByteSize,
        "1048576",
        "Commit buffer size for group commit.",
    ),
    s(
        "ORBIT_COW_ENABLE_COMPRESSION",
        "persistence.cow_btree.enable_compression",
        Backend(B::CowBtree),
        Bool,
        "true",
        "Compress pages.",
    ),
    s(
        "ORBIT_COW_WAL_SYNC_INTERVAL",
        "persistence.cow_btree.wal_sync_interval",
        Backend(B::CowBtree),
        DurationSecs,
        "5",
        "Seconds between syncs in periodic durability mode.",
    ),
    s(
        "ORBIT_COW_DURABILITY",
        "persistence.cow_btree.durability",
        Backend(B::CowBtree),
        Choice(DURABILITY),
        "sync",
        "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).",
    ),
    // ---- lsm_tree ---------------------------------------------------------
    s(
        "ORBIT_LSM_DATA_DIR",
        "persistence.lsm_tree.data_dir",
        Backend(B::LsmTree),
        Path,
        "{data_dir}/lsm_tree",
        "Directory of the LSM tree.",
    ),
    aliases(
        s(
            "ORBIT_LSM_MEMTABLE_SIZE",
            "persistence.lsm_tree.memtable_size",
            Backend(B::LsmTree),
            ByteSize,
            "67108864",
            "Memtable size before it is flushed.",
        ),
        &["memtable_size_limit"],
    ),
    s(
        "ORBIT_LSM_MAX_MEMTABLES",
        "persistence.lsm_tree.max_memtables",
        Backend(B::LsmTree),
        Count { min: 2, max: 1024 },
        "10",
        "Memtables (active + immutable) before writers slow down.",
    ),
    aliases(
        s(
            "ORBIT_LSM_BLOOM_FP_RATE",
            "persistence.lsm_tree.bloom_fp_rate",
            Backend(B::LsmTree),
            Fraction,
            "0.01",
            "Bloom filter false-positive rate.",
        ),
        &["bloom_filter_fp_rate"],
    ),
    s(
        "ORBIT_LSM_ENABLE_COMPACTION",
        "persistence.lsm_tree.enable_compaction",
        Backend(B::LsmTree),
        Bool,
        "true",
        "Run background compaction.",
    ),
    s(
        "ORBIT_LSM_COMPACTION_THRESHOLD",
        "persistence.lsm_tree.compaction_threshold",
        Backend(B::LsmTree),
        Count { min: 2, max: 1024 },
        "4",
        "Tables in a level that trigger compaction.",
    ),
    s(
        "ORBIT_LSM_DURABILITY",
        "persistence.lsm_tree.durability",
        Backend(B::LsmTree),
        Choice(DURABILITY),
        "sync",
        "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).",
    ),
    s(
        "ORBIT_LSM_SYNC_INTERVAL",
        "persistence.lsm_tree.sync_interval",
        Backend(B::LsmTree),
        DurationMs,
        "1s",
        "Time between syncs in periodic durability mode.",
    ),
    s(
        "ORBIT_LSM_BLOCK_CACHE_SIZE",
        "persistence.lsm_tree.block_cache_size",
        Backend(B::LsmTree),
        ByteSize,
        "268435456",
        "Block cache for data, index and filter blocks.",
    ),
    s(
        "ORBIT_LSM_ENABLE_COMPRESSION",
        "persistence.lsm_tree.enable_compression",
        Backend(B::LsmTree),
        Bool,
        "true",
        "Compress table blocks with LZ4 when it saves at least an eighth.",
    ),
    // ---- rocksdb ----------------------------------------------------------
    s(
        "ORBIT_ROCKSDB_DATA_DIR",
        "persistence.rocksdb.data_dir",
        Backend(B::Rocksdb),
        Path,
        "{data_dir}/rocksdb",
        "RocksDB database directory.",
    ),
    s(
        "ORBIT_ROCKSDB_ENABLE_WAL",
        "persistence.rocksdb.enable_wal",
        Backend(B::Rocksdb),
        Bool,
        "true",
        "Write-ahead log on or off.",
    ),
    s(
        "ORBIT_ROCKSDB_MAX_BACKGROUND_JOBS",
        "persistence.rocksdb.max_background_jobs",
        Backend(B::Rocksdb),
        Count { min: 1, max: 256 },
        "4",
        "Flush and compaction threads.",
    ),
    s(
        "ORBIT_ROCKSDB_WRITE_BUFFER_SIZE",
        "persistence.rocksdb.write_buffer_size",
        Backend(B::Rocksdb),
        ByteSize,
        "134217728",
        "Memtable size.",
    ),
    s(
        "ORBIT_ROCKSDB_MAX_WRITE_BUFFER_NUMBER",
        "persistence.rocksdb.max_write_buffer_number",
        Backend(B::Rocksdb),
        Count { min: 1, max: 64 },
        "3",
        "Memtables before writes stall.",
    ),
    s(
        "ORBIT_ROCKSDB_TARGET_FILE_SIZE_BASE",
        "persistence.rocksdb.target_file_size_base",
        Backend(B::Rocksdb),
        ByteSize,
        "67108864",
        "Target SST file size at level 1.",
    ),
    s(
        "ORBIT_ROCKSDB_ENABLE_STATISTICS",
        "persistence.rocksdb.enable_statistics",
        Backend(B::Rocksdb),
        Bool,
        "true",
        "Collect RocksDB statistics (exported in /metrics).",
    ),
    aliases(
        s(
            "ORBIT_ROCKSDB_BLOCK_CACHE_SIZE",
            "persistence.rocksdb.block_cache_size",
            Backend(B::Rocksdb),
            ByteSize,
            "268435456",
            "Block cache size.",
        ),
        &["cache_size"],
    ),
    s(
        "ORBIT_ROCKSDB_DURABILITY",
        "persistence.rocksdb.durability",
        Backend(B::Rocksdb),
        Choice(DURABILITY),
        "sync",
        "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).",
    ),
    s(
        "ORBIT_ROCKSDB_SYNC_INTERVAL",
        "persistence.rocksdb.sync_interval",
        Backend(B::Rocksdb),
        DurationMs,
        "1s",
        "Time between syncs in periodic durability mode.",
    ),
    // ---- s3 ---------------------------------------------------------------
    s(
        "ORBIT_S3_ENDPOINT",
        "persistence.s3.endpoint",
        Backend(B::S3),
        Url,
        "",
        "S3 endpoint URL (empty: AWS).",
    ),
    s(
        "ORBIT_S3_REGION",
        "persistence.s3.region",
        Backend(B::S3),
        Text,
        "us-east-1",
        "Region.",
    ),
    required(s(
        "ORBIT_S3_BUCKET",
        "persistence.s3.bucket",
        Backend(B::S3),
        Text,
        "",
        "Bucket.",
    )),
    s(
        "ORBIT_S3_ACCESS_KEY_ID",
        "persistence.s3.access_key_id",
        Backend(B::S3),
        Secret,
        "",
        "Access key id (Secret key s3-access-key-id).",
    ),
    s(
        "ORBIT_S3_SECRET_ACCESS_KEY",
        "persistence.s3.secret_access_key",
        Backend(B::S3),
        Secret,
        "",
        "Secret access key (Secret key s3-secret-access-key).",
    ),
    s(
        "ORBIT_S3_PREFIX",
        "persistence.s3.prefix",
        Backend(B::S3),
        Text,
        "orbit",
        "Key prefix in the bucket.",
    ),
    s(
        "ORBIT_S3_ENABLE_SSL",
        "persistence.s3.enable_ssl",
        Backend(B::S3),
        Bool,
        "true",
        "false allows a plain-http endpoint.",
    ),
    s(
        "ORBIT_S3_CONNECTION_TIMEOUT",
        "persistence.s3.connection_timeout",
        Backend(B::S3),
        DurationSecs,
        "30",
        "Connect timeout, seconds.",
    ),
    s(
        "ORBIT_S3_READ_TIMEOUT",
        "persistence.s3.read_timeout",
        Backend(B::S3),
        DurationSecs,
        "",
        "Request timeout for reads, seconds (unset: none).",
    ),
    s(
        "ORBIT_S3_WRITE_TIMEOUT",
        "persistence.s3.write_timeout",
        Backend(B::S3),
        DurationSecs,
        "",
        "Request timeout for writes, seconds (unset: none).",
    ),
    s(
        "ORBIT_S3_RETRY_COUNT",
        "persistence.s3.retry_count",
        Backend(B::S3),
        Count { min: 0, max: 100 },
        "3",
        "Retries of a failed request.",
    ),
    // ---- azure ------------------------------------------------------------
    required(s(
        "ORBIT_AZURE_ACCOUNT_NAME",
        "persistence.azure.account_name",
        Backend(B::Azure),
        Text,
        "",
        "Storage account.",
    )),
    s(
        "ORBIT_AZURE_ACCOUNT_KEY",
        "persistence.azure.account_key",
        Backend(B::Azure),
        Secret,
        "",
        "Account key (Secret key azure-account-key).",
    ),
    required(s(
        "ORBIT_AZURE_CONTAINER_NAME",
        "persistence.azure.container_name",
        Backend(B::Azure),
        Text,
        "",
        "Blob container.",
    )),
    s(
        "ORBIT_AZURE_ENDPOINT",
        "persistence.azure.endpoint",
        Backend(B::Azure),
        Url,
        "",
        "Blob endpoint URL (empty: Azure public cloud).",
    ),
    s(
        "ORBIT_AZURE_PREFIX",
        "persistence.azure.prefix",
        Backend(B::Azure),
        Text,
        "orbit",
        "Blob name prefix.",
    ),
    s(
        "ORBIT_AZURE_CONNECTION_TIMEOUT",
        "persistence.azure.connection_timeout",
        Backend(B::Azure),
        DurationSecs,
        "30",
        "Connect timeout, seconds.",
    ),
    s(
        "ORBIT_AZURE_RETRY_COUNT",
        "persistence.azure.retry_count",
        Backend(B::Azure),
        Count { min: 0, max: 100 },
        "3",
        "Retries of a failed request.",
    ),
    // ---- gcp --------------------------------------------------------------
    s(
        "ORBIT_GCP_PROJECT_ID",
        "persistence.gcp.project_id",
        Backend(B::Gcp),
        Text,
        "",
        "Project id.",
    ),
    required(s(
        "ORBIT_GCP_BUCKET_NAME",
        "persistence.gcp.bucket_name",
        Backend(B::Gcp),
        Text,
        "",
        "Bucket.",
    )),
    s(
        "ORBIT_GCP_CREDENTIALS_PATH",
        "persistence.gcp.credentials_path",
        Backend(B::Gcp),
        SecretFile,
        "/app/gcp/credentials.json",
        "Service-account JSON file (Secret key gcp-service-account-key, mounted).",
    ),
    s(
        "ORBIT_GCP_SERVICE_ACCOUNT_KEY",
        "persistence.gcp.service_account_key",
        Backend(B::Gcp),
        Secret,
        "",
        "Service-account JSON given inline; wins over the credentials file.",
    ),
    s(
        "ORBIT_GCP_PREFIX",
        "persistence.gcp.prefix",
        Backend(B::Gcp),
        Text,
        "orbit",
        "Object name prefix.",
    ),
    s(
        "ORBIT_GCP_CONNECTION_TIMEOUT",
        "persistence.gcp.connection_timeout",
        Backend(B::Gcp),
        DurationSecs,
        "30",
        "Connect timeout, seconds.",
    ),
    s(
        "ORBIT_GCP_RETRY_COUNT",
        "persistence.gcp.retry_count",
        Backend(B::Gcp),
        Count { min: 0, max: 100 },
        "3",
        "Retries of a failed request.",
    ),
    // ---- pod identity -----------------------------------------------------
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

/// All settings, in documentation order.
pub fn settings() -> &'static [Setting] {
    SETTINGS
}

/// The setting read from environment variable `env`.
pub fn lookup(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == env)
}

/// The setting at dotted TOML path `path` (aliases included).
pub fn lookup_toml(path: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| {
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
        let mut envs: Vec<_> = SETTINGS.iter().map(|s| s.env).collect();
        envs.sort();
        envs.dedup();
        assert_eq!(envs.len(), SETTINGS.len(), "duplicate env name");
        for s in SETTINGS {
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
                _ => true,
            };
            assert!(ok, "default of {} does not parse", s.env);
        }
    }

    #[test]
    fn every_backend_has_settings() {
        for k in BackendKind::ALL {
            assert!(SETTINGS.iter().any(|s| s.scope == Scope::Backend(k)), "{k}");
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
