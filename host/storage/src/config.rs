//! Typed backend configuration, as the translator plugin produces it.
//!
//! Backends receive these values already parsed and validated; none of them
//! reads an environment variable or a TOML file itself. Secrets appear only
//! as [`SecretRef`]s until [`SecretRef::resolve`] reads them, and `Debug`
//! prints references, never values.

use serde::Serialize;

/// Where a secret lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (for example a mounted Kubernetes Secret).
    File(String),
}

impl SecretRef {
    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => std::env::var(name)
                .map_err(|_| format!("secret variable {name} is not set or not valid UTF-8")),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read secret file {path}: {e}")),
        }
    }
}

/// When a local engine acknowledges a write (`ORBIT_<ENGINE>_DURABILITY`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// After fsync; concurrent writers share one fsync (group commit).
    #[default]
    Sync,
    /// At once; an fsync runs every sync interval, so a crash loses at most
    /// that interval.
    Periodic,
    /// At once; the operating system writes back when it likes.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryConfig {
    pub max_entries: u64,
    pub disk_backup: bool,
    pub backup_path: String,
    pub backup_interval_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CowBtreeConfig {
    pub data_dir: String,
    pub max_keys_per_node: u32,
    pub wal_buffer_size: u64,
    pub enable_compression: bool,
    pub wal_sync_interval_secs: u64,
    pub durability: Durability,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LsmTreeConfig {
    pub data_dir: String,
    pub memtable_size: u64,
    pub max_memtables: u32,
    pub bloom_fp_rate: f64,
    pub enable_compaction: bool,
    pub compaction_threshold: u32,
    pub durability: Durability,
    pub sync_interval_ms: u64,
    pub block_cache_size: u64,
    pub enable_compression: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RocksdbConfig {
    pub data_dir: String,
    pub enable_wal: bool,
    pub max_background_jobs: u32,
    pub write_buffer_size: u64,
    pub max_write_buffer_number: u32,
    pub target_file_size_base: u64,
    pub enable_statistics: bool,
    pub block_cache_size: u64,
    pub durability: Durability,
    pub sync_interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: Option<SecretRef>,
    pub secret_access_key: Option<SecretRef>,
    pub prefix: String,
    pub enable_ssl: bool,
    pub connection_timeout_secs: u64,
    pub read_timeout_secs: Option<u64>,
    pub write_timeout_secs: Option<u64>,
    pub retry_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AzureConfig {
    pub account_name: String,
    pub account_key: Option<SecretRef>,
    pub container_name: String,
    pub endpoint: Option<String>,
    pub prefix: String,
    pub connection_timeout_secs: u64,
    pub retry_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GcpConfig {
    pub project_id: Option<String>,
    pub bucket_name: String,
    pub credentials_path: Option<SecretRef>,
    pub service_account_key: Option<SecretRef>,
    pub prefix: String,
    pub connection_timeout_secs: u64,
    pub retry_count: u32,
}

/// The configuration of one backend.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum BackendConfig {
    Memory(MemoryConfig),
    CowBtree(CowBtreeConfig),
    LsmTree(LsmTreeConfig),
    Rocksdb(RocksdbConfig),
    S3(S3Config),
    Azure(AzureConfig),
    Gcp(GcpConfig),
}

impl BackendConfig {
    pub fn kind(&self) -> crate::BackendKind {
        use crate::BackendKind as K;
        match self {
            BackendConfig::Memory(_) => K::Memory,
            BackendConfig::CowBtree(_) => K::CowBtree,
            BackendConfig::LsmTree(_) => K::LsmTree,
            BackendConfig::Rocksdb(_) => K::Rocksdb,
            BackendConfig::S3(_) => K::S3,
            BackendConfig::Azure(_) => K::Azure,
            BackendConfig::Gcp(_) => K::Gcp,
        }
    }
}
