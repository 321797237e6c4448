//! The `lsm_tree` backend: the shared conformance suite on the in-house LSM
//! tree in a real directory (small memtables, so flushes and compactions
//! happen during the suite), reopen, and settings refused by the engine.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use orbit_storage::{BackendConfig, Durability, LsmTreeConfig, PutOptions, Storage};

fn config(dir: &std::path::Path) -> LsmTreeConfig {
    LsmTreeConfig {
        data_dir: dir.join("lsm_tree").display().to_string(),
        memtable_size: 64 << 10,
        max_memtables: 4,
        bloom_fp_rate: 0.01,
        enable_compaction: true,
        compaction_threshold: 2,
        durability: Durability::Sync,
        sync_interval: std::time::Duration::from_millis(1000),
        block_cache_size: 4 << 20,
        ..LsmTreeConfig::defaults("/unused").unwrap()
    }
}

async fn open_config(c: LsmTreeConfig) -> Arc<dyn Storage> {
    support::open(BackendConfig::LsmTree(c)).await
}

async fn open() -> Arc<dyn Storage> {
    open_config(config(&support::case_dir())).await
}

orbit_conformance::conformance_tests!(open);

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_reopen_through_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_config(config(dir.path())).await;
    let value = Bytes::from(vec![b'v'; 100]);
    let mut last = 0;
    // ~240 KiB of records: several 64 KiB memtables flushed and compacted.
    for i in 0..2000u32 {
        last = store
            .put(
                format!("key/{i:05}").as_bytes(),
                value.clone(),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let metrics = store.engine_metrics();
    assert!(
        metrics
            .iter()
            .any(|m| m.name == "lsm_table_bytes" && m.value > 0),
        "tables were written: {metrics:?}"
    );
    drop(store);

    let store = open_config(config(dir.path())).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.keys, 2000);
    for i in (0..2000u32).step_by(97) {
        let entry = store
            .get(format!("key/{i:05}").as_bytes())
            .await
            .unwrap()
            .expect("kept");
        assert_eq!(entry.value, value);
    }
    let next = store
        .put(b"key/new", Bytes::from_static(b"x"), PutOptions::default())
        .await
        .unwrap();
    assert!(next > last, "versions continue above the old ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open_config(config(dir.path())).await;
    let err = orbit_backends::open(&BackendConfig::LsmTree(config(dir.path())))
        .await
        .err()
        .expect("refused while the first is open");
    assert!(err.to_string().contains("lsm_tree"), "{err}");
}
