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

/// Which references each secret field of a backend configuration may hold.
///
/// A configuration comes from the translator plugin, which the host does not
/// trust with secrets: left alone, a translator could point
/// `s3.access_key_id` at `env ORBIT_API_TOKEN` or at any readable file, and
/// the host would send that value to an endpoint the translator chose. So
/// the host binds every secret field to its own setting before anything is
/// resolved: the field of `ORBIT_S3_SECRET_ACCESS_KEY` accepts only
/// `env ORBIT_S3_SECRET_ACCESS_KEY`, or the file that the operator named in
/// `ORBIT_S3_SECRET_ACCESS_KEY_FILE` (or the TOML `..._file` key). The host
/// builds the allowed references from its own configuration sources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretBindings {
    allowed: std::collections::BTreeMap<&'static str, Vec<SecretRef>>,
}

impl SecretBindings {
    /// Allows `reference` in the field of `setting` (an environment name).
    pub fn allow(&mut self, setting: &'static str, reference: SecretRef) {
        let refs = self.allowed.entry(setting).or_default();
        if !refs.contains(&reference) {
            refs.push(reference);
        }
    }

    /// Every file a secret may be read from, with its setting.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.allowed.iter().flat_map(|(setting, refs)| {
            refs.iter().filter_map(move |r| match r {
                SecretRef::File(path) => Some((*setting, path.as_str())),
                SecretRef::Env(_) => None,
            })
        })
    }

    /// The references allowed for `setting`.
    pub fn allowed(&self, setting: &str) -> &[SecretRef] {
        self.allowed.get(setting).map_or(&[], Vec::as_slice)
    }

    /// Checks every secret reference of `config`; the error names the field,
    /// the reference and what the field accepts (references are names and
    /// paths, never values).
    pub fn check(&self, config: &BackendConfig) -> Result<(), String> {
        let mut wrong = Vec::new();
        for (setting, reference) in config.secret_refs() {
            let allowed = self.allowed(setting);
            if allowed.contains(reference) {
                continue;
            }
            let accepted = if allowed.is_empty() {
                "nothing: the operator configured no secret for it".to_string()
            } else {
                allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            wrong.push(format!(
                "the field of {setting} refers to {reference}, which it may not (it accepts {accepted})"
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

impl std::fmt::Display for SecretRef {
    /// `env NAME` or `file PATH`: where the secret is, never what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::File(path) => write!(f, "file {path}"),
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
    /// Every secret reference this configuration holds, with the setting
    /// (its environment name) whose field it fills.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        let fields: Vec<(&'static str, &Option<SecretRef>)> = match self {
            BackendConfig::S3(c) => vec![
                ("ORBIT_S3_ACCESS_KEY_ID", &c.access_key_id),
                ("ORBIT_S3_SECRET_ACCESS_KEY", &c.secret_access_key),
            ],
            BackendConfig::Azure(c) => vec![("ORBIT_AZURE_ACCOUNT_KEY", &c.account_key)],
            BackendConfig::Gcp(c) => vec![
                ("ORBIT_GCP_CREDENTIALS_PATH", &c.credentials_path),
                ("ORBIT_GCP_SERVICE_ACCOUNT_KEY", &c.service_account_key),
            ],
            _ => Vec::new(),
        };
        fields
            .into_iter()
            .filter_map(|(setting, r)| r.as_ref().map(|r| (setting, r)))
            .collect()
    }

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
