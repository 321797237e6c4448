//! The `rocksdb` backend: the shared conformance suite on a real database
//! in a temporary directory, settings applied, reopen, and refused configs.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use orbit_storage::{BackendConfig, Durability, PutOptions, RocksdbConfig, Storage};

fn config(dir: &std::path::Path) -> RocksdbConfig {
    RocksdbConfig {
        data_dir: dir.join("rocksdb").display().to_string(),
        enable_wal: true,
        max_background_jobs: 2,
        write_buffer_size: 4 << 20,
        max_write_buffer_number: 2,
        target_file_size_base: 8 << 20,
        enable_statistics: true,
        block_cache_size: 8 << 20,
        durability: Durability::Sync,
        sync_interval: std::time::Duration::from_millis(1000),
    }
}

async fn open_config(c: RocksdbConfig) -> Arc<dyn Storage> {
    support::open(BackendConfig::Rocksdb(c)).await
}

async fn open() -> Arc<dyn Storage> {
    open_config(config(&support::case_dir())).await
}

orbit_conformance::conformance_tests!(open);

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_reopen_and_statistics_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_config(config(dir.path())).await;
    let mut last = 0;
    for i in 0..200u32 {
        last = store
            .put(
                format!("key/{i:04}").as_bytes(),
                Bytes::from(vec![b'v'; 100]),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let metrics = store.engine_metrics();
    let written = metrics
        .iter()
        .find(|m| m.name == "rocksdb_keys_written_total")
        .expect("statistics on: keys written exported");
    assert!(written.value >= 200, "{written:?}");
    drop(store);

    let store = open_config(config(dir.path())).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.keys, 200);
    assert!(stats.disk_bytes.unwrap() > 0);
    let entry = store.get(b"key/0199").await.unwrap().expect("kept");
    assert_eq!(entry.version, last);
    let next = store
        .put(b"key/new", Bytes::from_static(b"x"), PutOptions::default())
        .await
        .unwrap();
    assert!(next > last, "versions continue above the old ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_off_exports_no_tickers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_config(RocksdbConfig {
        enable_statistics: false,
        ..config(dir.path())
    })
    .await;
    assert!(
        !store
            .engine_metrics()
            .iter()
            .any(|m| m.name.ends_with("_total")),
        "no tickers without ORBIT_ROCKSDB_ENABLE_STATISTICS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_durability_without_wal_is_refused_with_both_names() {
    let dir = tempfile::tempdir().unwrap();
    let err = orbit_backends::open(&BackendConfig::Rocksdb(RocksdbConfig {
        enable_wal: false,
        ..config(dir.path())
    }))
    .await
    .err()
    .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("ORBIT_ROCKSDB_DURABILITY=sync")
            && message.contains("ORBIT_ROCKSDB_ENABLE_WAL=false"),
        "{message}"
    );
    // Without the WAL, periodic durability works and flush writes tables.
    let store = open_config(RocksdbConfig {
        enable_wal: false,
        durability: Durability::Periodic,
        ..config(dir.path())
    })
    .await;
    store
        .put(b"k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .unwrap();
    store.flush().await.unwrap();
    drop(store);
    let store = open_config(RocksdbConfig {
        enable_wal: false,
        durability: Durability::None,
        ..config(dir.path())
    })
    .await;
    assert!(
        store.get(b"k").await.unwrap().is_some(),
        "flushed table kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unwritable_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = orbit_backends::open(&BackendConfig::Rocksdb(RocksdbConfig {
        data_dir: file.join("db").display().to_string(),
        ..config(dir.path())
    }))
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
