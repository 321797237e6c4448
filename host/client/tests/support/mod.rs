//! The client's process tests on `orbit-test-support`: the real
//! `orbit-server` binary, SeaweedFS, and the environments of the backends
//! these tests use.
#![allow(dead_code)]

#[allow(unused_imports)]
pub use orbit_test_support::server::{Server, free_port};
use orbit_test_support::standins::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, Weed};

/// The environment of a local backend: `memory` (no snapshot), `lsm_tree`,
/// `cow_btree`, `rocksdb` (under the data dir).
pub fn local_env(backend: &str) -> Vec<(&'static str, &'static str)> {
    match backend {
        "memory" => vec![
            ("ORBIT_PERSISTENCE_BACKEND", "memory"),
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ],
        "lsm_tree" => vec![("ORBIT_PERSISTENCE_BACKEND", "lsm_tree")],
        "cow_btree" => vec![("ORBIT_PERSISTENCE_BACKEND", "cow_btree")],
        "rocksdb" => vec![("ORBIT_PERSISTENCE_BACKEND", "rocksdb")],
        other => panic!("not a local backend: {other}"),
    }
}

/// SeaweedFS for the `s3` backend, keeping its data in `dir`.
pub fn weed(dir: &std::path::Path) -> Weed {
    Weed::start_in(None, dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The server environment of the `s3` backend on `weed`, under `prefix`.
pub fn s3_env(weed: &Weed, prefix: &str) -> Vec<(String, String)> {
    [
        ("ORBIT_PERSISTENCE_BACKEND", "s3".to_string()),
        ("ORBIT_S3_ENDPOINT", weed.endpoint()),
        ("ORBIT_S3_BUCKET", S3_BUCKET.to_string()),
        ("ORBIT_S3_PREFIX", prefix.to_string()),
        ("ORBIT_S3_ENABLE_SSL", "false".to_string()),
        ("ORBIT_S3_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
        ("ORBIT_S3_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
