//! Conversions between the WIT contract's types and the host's own.
//!
//! The typed configuration a translator returns becomes
//! [`orbit_storage::BackendConfig`], which backends consume; nothing else in
//! the host handles WIT types for configuration.

use std::fmt;

use orbit_storage as st;

use crate::bindings::types as wit;

pub fn backend_kind_to_wit(k: st::BackendKind) -> wit::BackendKind {
    use st::BackendKind as K;
    match k {
        K::Memory => wit::BackendKind::Memory,
        K::CowBtree => wit::BackendKind::CowBtree,
        K::LsmTree => wit::BackendKind::LsmTree,
        K::Rocksdb => wit::BackendKind::Rocksdb,
        K::S3 => wit::BackendKind::S3,
        K::Azure => wit::BackendKind::Azure,
        K::Gcp => wit::BackendKind::Gcp,
    }
}

pub fn backend_kind_from_wit(k: wit::BackendKind) -> st::BackendKind {
    use st::BackendKind as K;
    match k {
        wit::BackendKind::Memory => K::Memory,
        wit::BackendKind::CowBtree => K::CowBtree,
        wit::BackendKind::LsmTree => K::LsmTree,
        wit::BackendKind::Rocksdb => K::Rocksdb,
        wit::BackendKind::S3 => K::S3,
        wit::BackendKind::Azure => K::Azure,
        wit::BackendKind::Gcp => K::Gcp,
    }
}

fn secret_from_wit(s: wit::SecretRef) -> st::SecretRef {
    match s {
        wit::SecretRef::Env(n) => st::SecretRef::Env(n),
        wit::SecretRef::File(p) => st::SecretRef::File(p),
    }
}

fn secret_to_wit(s: &st::SecretRef) -> wit::SecretRef {
    match s {
        st::SecretRef::Env(n) => wit::SecretRef::Env(n.clone()),
        st::SecretRef::File(p) => wit::SecretRef::File(p.clone()),
    }
}

/// The translator's typed configuration, as backends take it.
pub fn config_from_wit(c: wit::BackendConfig) -> st::BackendConfig {
    match c {
        wit::BackendConfig::Memory(m) => st::BackendConfig::Memory(st::MemoryConfig {
            max_entries: m.max_entries,
            disk_backup: m.disk_backup,
            backup_path: m.backup_path,
            backup_interval_secs: m.backup_interval_secs,
        }),
        wit::BackendConfig::CowBtree(c) => st::BackendConfig::CowBtree(st::CowBtreeConfig {
            data_dir: c.data_dir,
            max_keys_per_node: c.max_keys_per_node,
            wal_buffer_size: c.wal_buffer_size,
            enable_compression: c.enable_compression,
            wal_sync_interval_secs: c.wal_sync_interval_secs,
            durability: durability_from_wit(c.durability),
        }),
        wit::BackendConfig::LsmTree(c) => st::BackendConfig::LsmTree(st::LsmTreeConfig {
            data_dir: c.data_dir,
            memtable_size: c.memtable_size,
            max_memtables: c.max_memtables,
            bloom_fp_rate: c.bloom_fp_rate,
            enable_compaction: c.enable_compaction,
            compaction_threshold: c.compaction_threshold,
            durability: durability_from_wit(c.durability),
            sync_interval_ms: c.sync_interval_ms,
            block_cache_size: c.block_cache_size,
            enable_compression: c.enable_compression,
        }),
        wit::BackendConfig::Rocksdb(c) => st::BackendConfig::Rocksdb(st::RocksdbConfig {
            data_dir: c.data_dir,
            enable_wal: c.enable_wal,
            max_background_jobs: c.max_background_jobs,
            write_buffer_size: c.write_buffer_size,
            max_write_buffer_number: c.max_write_buffer_number,
            target_file_size_base: c.target_file_size_base,
            enable_statistics: c.enable_statistics,
            block_cache_size: c.block_cache_size,
            durability: durability_from_wit(c.durability),
            sync_interval_ms: c.sync_interval_ms,
        }),
        wit::BackendConfig::S3(c) => st::BackendConfig::S3(st::S3Config {
            endpoint: c.endpoint,
            region: c.region,
            bucket: c.bucket,
            access_key_id: c.access_key_id.map(secret_from_wit),
            secret_access_key: c.secret_access_key.map(secret_from_wit),
            prefix: c.prefix,
            enable_ssl: c.enable_ssl,
            connection_timeout_secs: c.connection_timeout_secs,
            read_timeout_secs: c.read_timeout_secs,
            write_timeout_secs: c.write_timeout_secs,
            retry_count: c.retry_count,
        }),
        wit::BackendConfig::Azure(c) => st::BackendConfig::Azure(st::AzureConfig {
            account_name: c.account_name,
            account_key: c.account_key.map(secret_from_wit),
            container_name: c.container_name,
            endpoint: c.endpoint,
            prefix: c.prefix,
            connection_timeout_secs: c.connection_timeout_secs,
            retry_count: c.retry_count,
        }),
        wit::BackendConfig::Gcp(c) => st::BackendConfig::Gcp(st::GcpConfig {
            project_id: c.project_id,
            bucket_name: c.bucket_name,
            credentials_path: c.credentials_path.map(secret_from_wit),
            service_account_key: c.service_account_key.map(secret_from_wit),
            prefix: c.prefix,
            connection_timeout_secs: c.connection_timeout_secs,
            retry_count: c.retry_count,
        }),
    }
}

/// The inverse of [`config_from_wit`] (for `render-env`).
pub fn config_to_wit(c: &st::BackendConfig) -> wit::BackendConfig {
    match c.clone() {
        st::BackendConfig::Memory(m) => wit::BackendConfig::Memory(wit::MemoryConfig {
            max_entries: m.max_entries,
            disk_backup: m.disk_backup,
            backup_path: m.backup_path,
            backup_interval_secs: m.backup_interval_secs,
        }),
        st::BackendConfig::CowBtree(c) => wit::BackendConfig::CowBtree(wit::CowBtreeConfig {
            data_dir: c.data_dir,
            max_keys_per_node: c.max_keys_per_node,
            wal_buffer_size: c.wal_buffer_size,
            enable_compression: c.enable_compression,
            wal_sync_interval_secs: c.wal_sync_interval_secs,
            durability: durability_to_wit(c.durability),
        }),
        st::BackendConfig::LsmTree(c) => wit::BackendConfig::LsmTree(wit::LsmTreeConfig {
            data_dir: c.data_dir,
            memtable_size: c.memtable_size,
            max_memtables: c.max_memtables,
            bloom_fp_rate: c.bloom_fp_rate,
            enable_compaction: c.enable_compaction,
            compaction_threshold: c.compaction_threshold,
            durability: durability_to_wit(c.durability),
            sync_interval_ms: c.sync_interval_ms,
            block_cache_size: c.block_cache_size,
            enable_compression: c.enable_compression,
        }),
        st::BackendConfig::Rocksdb(c) => wit::BackendConfig::Rocksdb(wit::RocksdbConfig {
            data_dir: c.data_dir,
            enable_wal: c.enable_wal,
            max_background_jobs: c.max_background_jobs,
            write_buffer_size: c.write_buffer_size,
            max_write_buffer_number: c.max_write_buffer_number,
            target_file_size_base: c.target_file_size_base,
            enable_statistics: c.enable_statistics,
            block_cache_size: c.block_cache_size,
            durability: durability_to_wit(c.durability),
            sync_interval_ms: c.sync_interval_ms,
        }),
        st::BackendConfig::S3(c) => wit::BackendConfig::S3(wit::S3Config {
            endpoint: c.endpoint,
            region: c.region,
            bucket: c.bucket,
            access_key_id: c.access_key_id.as_ref().map(secret_to_wit),
            secret_access_key: c.secret_access_key.as_ref().map(secret_to_wit),
            prefix: c.prefix,
            enable_ssl: c.enable_ssl,
            connection_timeout_secs: c.connection_timeout_secs,
            read_timeout_secs: c.read_timeout_secs,
            write_timeout_secs: c.write_timeout_secs,
            retry_count: c.retry_count,
        }),
        st::BackendConfig::Azure(c) => wit::BackendConfig::Azure(wit::AzureConfig {
            account_name: c.account_name,
            account_key: c.account_key.as_ref().map(secret_to_wit),
            container_name: c.container_name,
            endpoint: c.endpoint,
            prefix: c.prefix,
            connection_timeout_secs: c.connection_timeout_secs,
            retry_count: c.retry_count,
        }),
        st::BackendConfig::Gcp(c) => wit::BackendConfig::Gcp(wit::GcpConfig {
            project_id: c.project_id,
            bucket_name: c.bucket_name,
            credentials_path: c.credentials_path.as_ref().map(secret_to_wit),
            service_account_key: c.service_account_key.as_ref().map(secret_to_wit),
            prefix: c.prefix,
            connection_timeout_secs: c.connection_timeout_secs,
            retry_count: c.retry_count,
        }),
    }
}

impl fmt::Display for wit::Diagnostic {
    /// `error: ORBIT_X="value": message (accepted: ...)`; secrets never carry a value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            wit::Severity::Error => "error",
            wit::Severity::Warning => "warning",
        };
        write!(f, "{level}: ")?;
        // Messages usually name the variable themselves; do not say it twice.
        if !self.message.contains(&self.variable) {
            write!(f, "{}", self.variable)?;
            if let Some(v) = &self.value {
                write!(f, "={v:?}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.accepted.is_empty() && !self.message.contains(&self.accepted) {
            write!(f, " (accepted: {})", self.accepted)?;
        }
        Ok(())
    }
}

impl wit::Diagnostic {
    pub fn is_error(&self) -> bool {
        matches!(self.severity, wit::Severity::Error)
    }
}

fn durability_from_wit(d: wit::Durability) -> st::Durability {
    match d {
        wit::Durability::Sync => st::Durability::Sync,
        wit::Durability::Periodic => st::Durability::Periodic,
        wit::Durability::None => st::Durability::None,
    }
}

fn durability_to_wit(d: st::Durability) -> wit::Durability {
    match d {
        st::Durability::Sync => wit::Durability::Sync,
        st::Durability::Periodic => wit::Durability::Periodic,
        st::Durability::None => wit::Durability::None,
    }
}
