//! Every backend setting, declared once. Each line is a catalogue entry
//! (environment name, TOML key `persistence.<table>.<field>`, value kind,
//! default, description) and a field of the backend's typed configuration;
//! see [`crate::declare`] for the syntax and what is generated. To add a
//! setting, add a line here and read the field where the backend opens.

use crate::declare::{backend_settings, field_type, is_required, kind_expr, presence_type};

backend_settings! {
    /// The memory backend: every key in memory, with an optional snapshot on disk.
    Memory(MemoryConfig) in "memory" {
        max_entries: value (Count { min: 1, max: u64::MAX }) = "ORBIT_MEMORY_MAX_ENTRIES", "1000000", "Most live keys; a write beyond it is refused (HTTP 507), never evicted.";
        disk_backup: value Bool = "ORBIT_MEMORY_DISK_BACKUP", "true", "Snapshot to disk every interval and on SIGTERM; restored at start.";
        backup_path: value Path = "ORBIT_MEMORY_BACKUP_PATH", "{data_dir}/orbit_backup.json", "Snapshot file.";
        backup_interval: value DurationSecs = "ORBIT_MEMORY_BACKUP_INTERVAL", "300", "Seconds between snapshots.";
    }

    /// The in-house copy-on-write B+tree (`host/cow-btree`).
    CowBtree(CowBtreeConfig) in "cow_btree" {
        data_dir: value Path = "ORBIT_COW_DATA_DIR", "{data_dir}/cow_btree", "Directory of the copy-on-write B+tree.";
        max_keys_per_node: value (Count { min: 4, max: 65536 }) = "ORBIT_COW_MAX_KEYS_PER_NODE", "256", "Node fan-out.";
        group_commit_size: value ByteSize = "ORBIT_COW_GROUP_COMMIT_SIZE", "1048576", "Most bytes of queued writes one group commit takes (the B+tree has no WAL: a commit writes its pages).",
            toml_aliases ["wal_buffer_size"],
            env_aliases ["ORBIT_COW_WAL_BUFFER_SIZE"];
        enable_compression: value Bool = "ORBIT_COW_ENABLE_COMPRESSION", "true", "Compress values (LZ4) where it saves space.";
        sync_interval: value DurationMs = "ORBIT_COW_SYNC_INTERVAL", "5s", "Time between syncs in periodic durability mode.",
            toml_aliases ["wal_sync_interval"],
            env_aliases ["ORBIT_COW_WAL_SYNC_INTERVAL"];
        durability: value Durability = "ORBIT_COW_DURABILITY", "sync", "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).";
    }

    /// The in-house LSM tree (`host/lsm`).
    LsmTree(LsmTreeConfig) in "lsm_tree" {
        data_dir: value Path = "ORBIT_LSM_DATA_DIR", "{data_dir}/lsm_tree", "Directory of the LSM tree.";
        memtable_size: value ByteSize = "ORBIT_LSM_MEMTABLE_SIZE", "67108864", "Memtable size before it is flushed.",
            toml_aliases ["memtable_size_limit"];
        max_memtables: value (Count { min: 2, max: 1024 }) = "ORBIT_LSM_MAX_MEMTABLES", "10", "Memtables (active + immutable) before writers slow down.";
        bloom_fp_rate: value Fraction = "ORBIT_LSM_BLOOM_FP_RATE", "0.01", "Bloom filter false-positive rate.",
            toml_aliases ["bloom_filter_fp_rate"];
        enable_compaction: value Bool = "ORBIT_LSM_ENABLE_COMPACTION", "true", "Run background compaction.";
        compaction_threshold: value (Count { min: 2, max: 1024 }) = "ORBIT_LSM_COMPACTION_THRESHOLD", "4", "Tables in a level that trigger compaction.";
        durability: value Durability = "ORBIT_LSM_DURABILITY", "sync", "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).";
        sync_interval: value DurationMs = "ORBIT_LSM_SYNC_INTERVAL", "1s", "Time between syncs in periodic durability mode.";
        block_cache_size: value ByteSize = "ORBIT_LSM_BLOCK_CACHE_SIZE", "268435456", "Block cache for data, index and filter blocks.";
        enable_compression: value Bool = "ORBIT_LSM_ENABLE_COMPRESSION", "true", "Compress table blocks with LZ4 when it saves at least an eighth.";
        block_size: value (Count { min: 256, max: 1048576 }) = "ORBIT_LSM_BLOCK_SIZE", "4096", "Uncompressed size of a table data block, in bytes: smaller favours point reads, larger favours scans and compression.";
    }

    /// RocksDB.
    Rocksdb(RocksdbConfig) in "rocksdb" {
        data_dir: value Path = "ORBIT_ROCKSDB_DATA_DIR", "{data_dir}/rocksdb", "RocksDB database directory.";
        enable_wal: value Bool = "ORBIT_ROCKSDB_ENABLE_WAL", "true", "Write-ahead log on or off.";
        max_background_jobs: value (Count { min: 1, max: 256 }) = "ORBIT_ROCKSDB_MAX_BACKGROUND_JOBS", "4", "Flush and compaction threads.";
        write_buffer_size: value ByteSize = "ORBIT_ROCKSDB_WRITE_BUFFER_SIZE", "134217728", "Memtable size.";
        max_write_buffer_number: value (Count { min: 1, max: 64 }) = "ORBIT_ROCKSDB_MAX_WRITE_BUFFER_NUMBER", "3", "Memtables before writes stall.";
        target_file_size_base: value ByteSize = "ORBIT_ROCKSDB_TARGET_FILE_SIZE_BASE", "67108864", "Target SST file size at level 1.";
        enable_statistics: value Bool = "ORBIT_ROCKSDB_ENABLE_STATISTICS", "true", "Collect RocksDB statistics (exported in /metrics).";
        block_cache_size: value ByteSize = "ORBIT_ROCKSDB_BLOCK_CACHE_SIZE", "268435456", "Block cache size.",
            toml_aliases ["cache_size"];
        durability: value Durability = "ORBIT_ROCKSDB_DURABILITY", "sync", "When a write is acknowledged: sync (after fsync; concurrent writers share one fsync), periodic (fsync every sync interval), none (left to the OS).";
        sync_interval: value DurationMs = "ORBIT_ROCKSDB_SYNC_INTERVAL", "1s", "Time between syncs in periodic durability mode.";
    }

    /// Amazon S3 or an S3-compatible store.
    S3(S3Config) in "s3" {
        endpoint: optional Url = "ORBIT_S3_ENDPOINT", "", "S3 endpoint URL (empty: AWS).";
        region: value Text = "ORBIT_S3_REGION", "us-east-1", "Region.";
        bucket: required Text = "ORBIT_S3_BUCKET", "", "Bucket.";
        access_key_id: optional Secret = "ORBIT_S3_ACCESS_KEY_ID", "", "Access key id (Secret key s3-access-key-id).";
        secret_access_key: optional Secret = "ORBIT_S3_SECRET_ACCESS_KEY", "", "Secret access key (Secret key s3-secret-access-key).";
        prefix: value Text = "ORBIT_S3_PREFIX", "orbit", "Key prefix in the bucket.";
        enable_ssl: value Bool = "ORBIT_S3_ENABLE_SSL", "true", "false allows a plain-http endpoint.";
        connection_timeout: value DurationSecs = "ORBIT_S3_CONNECTION_TIMEOUT", "30", "Connect timeout, seconds.";
        read_timeout: optional DurationSecs = "ORBIT_S3_READ_TIMEOUT", "", "Request timeout for reads, seconds (unset: none).";
        write_timeout: optional DurationSecs = "ORBIT_S3_WRITE_TIMEOUT", "", "Request timeout for writes, seconds (unset: none).";
        retry_count: value (Count { min: 0, max: 100 }) = "ORBIT_S3_RETRY_COUNT", "3", "Retries of a failed request.";
    }

    /// Azure Blob Storage.
    Azure(AzureConfig) in "azure" {
        account_name: required Text = "ORBIT_AZURE_ACCOUNT_NAME", "", "Storage account.";
        account_key: optional Secret = "ORBIT_AZURE_ACCOUNT_KEY", "", "Account key (Secret key azure-account-key).";
        container_name: required Text = "ORBIT_AZURE_CONTAINER_NAME", "", "Blob container.";
        endpoint: optional Url = "ORBIT_AZURE_ENDPOINT", "", "Blob endpoint URL (empty: Azure public cloud).";
        prefix: value Text = "ORBIT_AZURE_PREFIX", "orbit", "Blob name prefix.";
        connection_timeout: value DurationSecs = "ORBIT_AZURE_CONNECTION_TIMEOUT", "30", "Connect timeout, seconds.";
        retry_count: value (Count { min: 0, max: 100 }) = "ORBIT_AZURE_RETRY_COUNT", "3", "Retries of a failed request.";
    }

    /// Google Cloud Storage.
    Gcp(GcpConfig) in "gcp" {
        project_id: optional Text = "ORBIT_GCP_PROJECT_ID", "", "Project id.";
        bucket_name: required Text = "ORBIT_GCP_BUCKET_NAME", "", "Bucket.";
        credentials_path: optional SecretFile = "ORBIT_GCP_CREDENTIALS_PATH", "/app/gcp/credentials.json", "Service-account JSON file (Secret key gcp-service-account-key, mounted).";
        service_account_key: optional Secret = "ORBIT_GCP_SERVICE_ACCOUNT_KEY", "", "Service-account JSON given inline; wins over the credentials file.";
        prefix: value Text = "ORBIT_GCP_PREFIX", "orbit", "Object name prefix.";
        connection_timeout: value DurationSecs = "ORBIT_GCP_CONNECTION_TIMEOUT", "30", "Connect timeout, seconds.";
        retry_count: value (Count { min: 0, max: 100 }) = "ORBIT_GCP_RETRY_COUNT", "3", "Retries of a failed request.";
    }
}
