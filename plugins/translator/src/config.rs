//! The WIT `backend-config` records, to and from [`Values`]. This is the only
//! place that knows which catalogue variable fills which record field.

use orbit_config_syntax::BackendKind;

use crate::orbit::storage::types as wit;
use crate::values::{SecretRef, Value, Values};

/// The typed configuration of `kind` from resolved values.
pub fn to_wit(kind: BackendKind, v: &Values) -> wit::BackendConfig {
    use wit::BackendConfig as C;
    match kind {
        BackendKind::Memory => C::Memory(wit::MemoryConfig {
            max_entries: v.u64("ORBIT_MEMORY_MAX_ENTRIES"),
            disk_backup: v.bool("ORBIT_MEMORY_DISK_BACKUP"),
            backup_path: v.text("ORBIT_MEMORY_BACKUP_PATH"),
            backup_interval_secs: v.u64("ORBIT_MEMORY_BACKUP_INTERVAL"),
        }),
        BackendKind::CowBtree => C::CowBtree(wit::CowBtreeConfig {
            data_dir: v.text("ORBIT_COW_DATA_DIR"),
            max_keys_per_node: v.u32("ORBIT_COW_MAX_KEYS_PER_NODE"),
            wal_buffer_size: v.u64("ORBIT_COW_WAL_BUFFER_SIZE"),
            enable_compression: v.bool("ORBIT_COW_ENABLE_COMPRESSION"),
            wal_sync_interval_secs: v.u64("ORBIT_COW_WAL_SYNC_INTERVAL"),
            durability: durability(v, "ORBIT_COW_DURABILITY"),
        }),
        BackendKind::LsmTree => C::LsmTree(wit::LsmTreeConfig {
            data_dir: v.text("ORBIT_LSM_DATA_DIR"),
            memtable_size: v.u64("ORBIT_LSM_MEMTABLE_SIZE"),
            max_memtables: v.u32("ORBIT_LSM_MAX_MEMTABLES"),
            bloom_fp_rate: v.f64("ORBIT_LSM_BLOOM_FP_RATE"),
            enable_compaction: v.bool("ORBIT_LSM_ENABLE_COMPACTION"),
            compaction_threshold: v.u32("ORBIT_LSM_COMPACTION_THRESHOLD"),
            durability: durability(v, "ORBIT_LSM_DURABILITY"),
            sync_interval_ms: v.u64("ORBIT_LSM_SYNC_INTERVAL"),
            block_cache_size: v.u64("ORBIT_LSM_BLOCK_CACHE_SIZE"),
            enable_compression: v.bool("ORBIT_LSM_ENABLE_COMPRESSION"),
        }),
        BackendKind::Rocksdb => C::Rocksdb(wit::RocksdbConfig {
            data_dir: v.text("ORBIT_ROCKSDB_DATA_DIR"),
            enable_wal: v.bool("ORBIT_ROCKSDB_ENABLE_WAL"),
            max_background_jobs: v.u32("ORBIT_ROCKSDB_MAX_BACKGROUND_JOBS"),
            write_buffer_size: v.u64("ORBIT_ROCKSDB_WRITE_BUFFER_SIZE"),
            max_write_buffer_number: v.u32("ORBIT_ROCKSDB_MAX_WRITE_BUFFER_NUMBER"),
            target_file_size_base: v.u64("ORBIT_ROCKSDB_TARGET_FILE_SIZE_BASE"),
            enable_statistics: v.bool("ORBIT_ROCKSDB_ENABLE_STATISTICS"),
            block_cache_size: v.u64("ORBIT_ROCKSDB_BLOCK_CACHE_SIZE"),
            durability: durability(v, "ORBIT_ROCKSDB_DURABILITY"),
            sync_interval_ms: v.u64("ORBIT_ROCKSDB_SYNC_INTERVAL"),
        }),
        BackendKind::S3 => C::S3(wit::S3Config {
            endpoint: v.opt_text("ORBIT_S3_ENDPOINT"),
            region: v.text("ORBIT_S3_REGION"),
            bucket: v.text("ORBIT_S3_BUCKET"),
            access_key_id: secret_to_wit(v.secret("ORBIT_S3_ACCESS_KEY_ID")),
            secret_access_key: secret_to_wit(v.secret("ORBIT_S3_SECRET_ACCESS_KEY")),
            prefix: v.text("ORBIT_S3_PREFIX"),
            enable_ssl: v.bool("ORBIT_S3_ENABLE_SSL"),
            connection_timeout_secs: v.u64("ORBIT_S3_CONNECTION_TIMEOUT"),
            read_timeout_secs: v.opt_u64("ORBIT_S3_READ_TIMEOUT"),
            write_timeout_secs: v.opt_u64("ORBIT_S3_WRITE_TIMEOUT"),
            retry_count: v.u32("ORBIT_S3_RETRY_COUNT"),
        }),
        BackendKind::Azure => C::Azure(wit::AzureConfig {
            account_name: v.text("ORBIT_AZURE_ACCOUNT_NAME"),
            account_key: secret_to_wit(v.secret("ORBIT_AZURE_ACCOUNT_KEY")),
            container_name: v.text("ORBIT_AZURE_CONTAINER_NAME"),
            endpoint: v.opt_text("ORBIT_AZURE_ENDPOINT"),
            prefix: v.text("ORBIT_AZURE_PREFIX"),
            connection_timeout_secs: v.u64("ORBIT_AZURE_CONNECTION_TIMEOUT"),
            retry_count: v.u32("ORBIT_AZURE_RETRY_COUNT"),
        }),
        BackendKind::Gcp => C::Gcp(wit::GcpConfig {
            project_id: v.opt_text("ORBIT_GCP_PROJECT_ID"),
            bucket_name: v.text("ORBIT_GCP_BUCKET_NAME"),
            credentials_path: secret_to_wit(v.secret("ORBIT_GCP_CREDENTIALS_PATH")),
            service_account_key: secret_to_wit(v.secret("ORBIT_GCP_SERVICE_ACCOUNT_KEY")),
            prefix: v.text("ORBIT_GCP_PREFIX"),
            connection_timeout_secs: v.u64("ORBIT_GCP_CONNECTION_TIMEOUT"),
            retry_count: v.u32("ORBIT_GCP_RETRY_COUNT"),
        }),
    }
}

/// The backend and the values of a typed configuration.
pub fn from_wit(config: &wit::BackendConfig) -> (BackendKind, Values) {
    use Value::{Bool, Float, Int, Text};
    use wit::BackendConfig as C;
    let int = |n: u32| Int(u64::from(n));
    match config {
        C::Memory(c) => (
            BackendKind::Memory,
            Values::default()
                .with("ORBIT_MEMORY_MAX_ENTRIES", Int(c.max_entries))
                .with("ORBIT_MEMORY_DISK_BACKUP", Bool(c.disk_backup))
                .with("ORBIT_MEMORY_BACKUP_PATH", Text(c.backup_path.clone()))
                .with("ORBIT_MEMORY_BACKUP_INTERVAL", Int(c.backup_interval_secs)),
        ),
        C::CowBtree(c) => (
            BackendKind::CowBtree,
            Values::default()
                .with("ORBIT_COW_DATA_DIR", Text(c.data_dir.clone()))
                .with("ORBIT_COW_MAX_KEYS_PER_NODE", int(c.max_keys_per_node))
                .with("ORBIT_COW_WAL_BUFFER_SIZE", Int(c.wal_buffer_size))
                .with("ORBIT_COW_ENABLE_COMPRESSION", Bool(c.enable_compression))
                .with("ORBIT_COW_WAL_SYNC_INTERVAL", Int(c.wal_sync_interval_secs))
                .with("ORBIT_COW_DURABILITY", durability_text(c.durability)),
        ),
        C::LsmTree(c) => (
            BackendKind::LsmTree,
            Values::default()
                .with("ORBIT_LSM_DATA_DIR", Text(c.data_dir.clone()))
                .with("ORBIT_LSM_MEMTABLE_SIZE", Int(c.memtable_size))
                .with("ORBIT_LSM_MAX_MEMTABLES", int(c.max_memtables))
                .with("ORBIT_LSM_BLOOM_FP_RATE", Float(c.bloom_fp_rate))
                .with("ORBIT_LSM_ENABLE_COMPACTION", Bool(c.enable_compaction))
                .with(
                    "ORBIT_LSM_COMPACTION_THRESHOLD",
                    int(c.compaction_threshold),
                )
                .with("ORBIT_LSM_DURABILITY", durability_text(c.durability))
                .with(
                    "ORBIT_LSM_SYNC_INTERVAL",
                    Text(format!("{}ms", c.sync_interval_ms)),
                )
                .with("ORBIT_LSM_BLOCK_CACHE_SIZE", Int(c.block_cache_size))
                .with("ORBIT_LSM_ENABLE_COMPRESSION", Bool(c.enable_compression)),
        ),
        C::Rocksdb(c) => (
            BackendKind::Rocksdb,
            Values::default()
                .with("ORBIT_ROCKSDB_DATA_DIR", Text(c.data_dir.clone()))
                .with("ORBIT_ROCKSDB_ENABLE_WAL", Bool(c.enable_wal))
                .with(
                    "ORBIT_ROCKSDB_MAX_BACKGROUND_JOBS",
                    int(c.max_background_jobs),
                )
                .with("ORBIT_ROCKSDB_WRITE_BUFFER_SIZE", Int(c.write_buffer_size))
                .with(
                    "ORBIT_ROCKSDB_MAX_WRITE_BUFFER_NUMBER",
                    int(c.max_write_buffer_number),
                )
                .with(
                    "ORBIT_ROCKSDB_TARGET_FILE_SIZE_BASE",
                    Int(c.target_file_size_base),
                )
                .with("ORBIT_ROCKSDB_ENABLE_STATISTICS", Bool(c.enable_statistics))
                .with("ORBIT_ROCKSDB_BLOCK_CACHE_SIZE", Int(c.block_cache_size))
                .with("ORBIT_ROCKSDB_DURABILITY", durability_text(c.durability))
                .with(
                    "ORBIT_ROCKSDB_SYNC_INTERVAL",
                    Text(format!("{}ms", c.sync_interval_ms)),
                ),
        ),
        C::S3(c) => (
            BackendKind::S3,
            Values::default()
                .with("ORBIT_S3_ENDPOINT", opt_text(&c.endpoint))
                .with("ORBIT_S3_REGION", Text(c.region.clone()))
                .with("ORBIT_S3_BUCKET", Text(c.bucket.clone()))
                .with("ORBIT_S3_ACCESS_KEY_ID", secret_from_wit(&c.access_key_id))
                .with(
                    "ORBIT_S3_SECRET_ACCESS_KEY",
                    secret_from_wit(&c.secret_access_key),
                )
                .with("ORBIT_S3_PREFIX", Text(c.prefix.clone()))
                .with("ORBIT_S3_ENABLE_SSL", Bool(c.enable_ssl))
                .with(
                    "ORBIT_S3_CONNECTION_TIMEOUT",
                    Int(c.connection_timeout_secs),
                )
                .with("ORBIT_S3_READ_TIMEOUT", opt_int(c.read_timeout_secs))
                .with("ORBIT_S3_WRITE_TIMEOUT", opt_int(c.write_timeout_secs))
                .with("ORBIT_S3_RETRY_COUNT", int(c.retry_count)),
        ),
        C::Azure(c) => (
            BackendKind::Azure,
            Values::default()
                .with("ORBIT_AZURE_ACCOUNT_NAME", Text(c.account_name.clone()))
                .with("ORBIT_AZURE_ACCOUNT_KEY", secret_from_wit(&c.account_key))
                .with("ORBIT_AZURE_CONTAINER_NAME", Text(c.container_name.clone()))
                .with("ORBIT_AZURE_ENDPOINT", opt_text(&c.endpoint))
                .with("ORBIT_AZURE_PREFIX", Text(c.prefix.clone()))
                .with(
                    "ORBIT_AZURE_CONNECTION_TIMEOUT",
                    Int(c.connection_timeout_secs),
                )
                .with("ORBIT_AZURE_RETRY_COUNT", int(c.retry_count)),
        ),
        C::Gcp(c) => (
            BackendKind::Gcp,
            Values::default()
                .with("ORBIT_GCP_PROJECT_ID", opt_text(&c.project_id))
                .with("ORBIT_GCP_BUCKET_NAME", Text(c.bucket_name.clone()))
                .with(
                    "ORBIT_GCP_CREDENTIALS_PATH",
                    secret_from_wit(&c.credentials_path),
                )
                .with(
                    "ORBIT_GCP_SERVICE_ACCOUNT_KEY",
                    secret_from_wit(&c.service_account_key),
                )
                .with("ORBIT_GCP_PREFIX", Text(c.prefix.clone()))
                .with(
                    "ORBIT_GCP_CONNECTION_TIMEOUT",
                    Int(c.connection_timeout_secs),
                )
                .with("ORBIT_GCP_RETRY_COUNT", int(c.retry_count)),
        ),
    }
}

pub fn secret_to_wit(s: Option<SecretRef>) -> Option<wit::SecretRef> {
    s.map(|s| match s {
        SecretRef::Env(n) => wit::SecretRef::Env(n),
        SecretRef::File(p) => wit::SecretRef::File(p),
    })
}

fn secret_from_wit(s: &Option<wit::SecretRef>) -> Value {
    match s {
        Some(wit::SecretRef::Env(n)) => Value::Secret(SecretRef::Env(n.clone())),
        Some(wit::SecretRef::File(p)) => Value::Secret(SecretRef::File(p.clone())),
        None => Value::Absent,
    }
}

fn opt_text(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Absent, Value::Text)
}

fn opt_int(n: Option<u64>) -> Value {
    n.map_or(Value::Absent, Value::Int)
}

/// A `*_DURABILITY` value (already checked against the catalogue's choices).
fn durability(v: &Values, name: &str) -> wit::Durability {
    match v.text(name).as_str() {
        "periodic" => wit::Durability::Periodic,
        "none" => wit::Durability::None,
        _ => wit::Durability::Sync,
    }
}

fn durability_text(d: wit::Durability) -> Value {
    Value::Text(
        match d {
            wit::Durability::Sync => "sync",
            wit::Durability::Periodic => "periodic",
            wit::Durability::None => "none",
        }
        .to_string(),
    )
}
