//! The `cow_btree` backend: the shared conformance suite on the in-house
//! copy-on-write B+tree in a real file (small nodes, so splits happen during
//! the suite), and reopen.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use orbit_storage::{BackendConfig, CowBtreeConfig, Durability, PutOptions, Storage};

fn config(dir: &std::path::Path) -> CowBtreeConfig {
    CowBtreeConfig {
        data_dir: dir.join("cow_btree").display().to_string(),
        max_keys_per_node: 8,
        group_commit_size: 1 << 20,
        enable_compression: true,
        sync_interval: std::time::Duration::from_secs(5),
        durability: Durability::Sync,
    }
}

async fn open_config(c: CowBtreeConfig) -> Arc<dyn Storage> {
    support::open(BackendConfig::CowBtree(c)).await
}

async fn open() -> Arc<dyn Storage> {
    open_config(config(&support::case_dir())).await
}

orbit_conformance::conformance_tests!(open);

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_config(config(dir.path())).await;
    let value = Bytes::from(vec![b'v'; 100]);
    let mut last = 0;
    for i in 0..1000u32 {
        last = store
            .put(
                format!("key/{i:05}").as_bytes(),
                value.clone(),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    assert!(
        store
            .engine_metrics()
            .iter()
            .any(|m| m.name == "cow_file_bytes" && m.value > 0)
    );
    drop(store);

    let store = open_config(config(dir.path())).await;
    assert_eq!(store.stats().await.unwrap().keys, 1000);
    for i in (0..1000u32).step_by(37) {
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
