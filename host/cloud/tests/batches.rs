//! Atomic batches under contention: tasks on separate store handles (as
//! separate replicas would) move units between two counters with
//! two-key batches conditional on both versions, while single-key writers
//! touch a third key named in some batches. The total never changes and
//! every acknowledged transfer is reflected exactly.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use orbit_cloud::CloudStorage;
use orbit_storage::{BatchOp, Precondition, PutOptions, Storage, StorageError};

const TASKS: usize = 4;
const TRANSFERS: usize = 5;

fn number(entry: &Option<orbit_storage::Entry>) -> (i64, Option<u64>) {
    match entry {
        None => (0, None),
        Some(e) => (
            std::str::from_utf8(&e.value).unwrap().parse().unwrap(),
            Some(e.version),
        ),
    }
}

fn put(key: &str, value: i64, version: Option<u64>) -> BatchOp {
    BatchOp::Put {
        key: Bytes::from(key.to_string()),
        value: Bytes::from(value.to_string()),
        options: PutOptions {
            precondition: version.map_or(Precondition::Absent, Precondition::Version),
            expires_at: None,
        },
    }
}

async fn transfers(stores: Vec<Arc<CloudStorage>>) {
    let setup = stores[0].clone();
    setup
        .batch(vec![put("a", 100, None), put("b", 100, None)])
        .await
        .expect("initial batch");
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(t, store)| {
            tokio::spawn(async move {
                let mut done = 0;
                while done < TRANSFERS {
                    let (a, va) = number(&store.get(b"a").await.unwrap());
                    let (b, vb) = number(&store.get(b"b").await.unwrap());
                    // Every other task also bumps a third key in the batch,
                    // while the single writer below races on it.
                    let mut ops = vec![put("a", a - 1, va), put("b", b + 1, vb)];
                    if t % 2 == 0 {
                        ops.push(BatchOp::Put {
                            key: Bytes::from_static(b"side"),
                            value: Bytes::from(format!("batch-{t}")),
                            options: PutOptions::default(),
                        });
                    }
                    match store.batch(ops).await {
                        Ok(versions) => {
                            assert_eq!(versions.len(), if t % 2 == 0 { 3 } else { 2 });
                            done += 1;
                        }
                        Err(StorageError::Conflict { .. }) => {}
                        Err(e) => panic!("transfer failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let side_writer = {
        let store = setup.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                store
                    .put(
                        b"side",
                        Bytes::from(format!("single-{i}")),
                        PutOptions::default(),
                    )
                    .await
                    .expect("single put racing batches");
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    side_writer.await.unwrap();
    let (a, _) = number(&setup.get(b"a").await.unwrap());
    let (b, _) = number(&setup.get(b"b").await.unwrap());
    assert_eq!(a + b, 200, "a batch was applied partly");
    assert_eq!(
        a,
        100 - (TASKS * TRANSFERS) as i64,
        "acknowledged transfers = applied transfers"
    );
    assert!(setup.get(b"side").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_are_atomic_on_s3() {
    let weed = support::weed();
    let prefix = support::fresh_prefix("batch-s3");
    let stores = (0..TASKS)
        .map(|_| orbit_cloud::open_s3(&weed.config(&prefix)).unwrap())
        .collect::<Vec<_>>();
    support::ready(stores[0].clone()).await;
    transfers(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_are_atomic_on_azure() {
    let azurite = support::azurite();
    let prefix = support::fresh_prefix("batch-az");
    let stores = (0..TASKS)
        .map(|_| orbit_cloud::open_azure(&azurite.config(&prefix)).unwrap())
        .collect::<Vec<_>>();
    support::ready(stores[0].clone()).await;
    transfers(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_are_atomic_on_gcs() {
    let server = support::gcs();
    let prefix = support::fresh_prefix("batch-gcs");
    let stores = (0..TASKS)
        .map(|_| orbit_cloud::open_gcp(&support::gcp_config(server, &prefix)).unwrap())
        .collect::<Vec<_>>();
    support::ready(stores[0].clone()).await;
    transfers(stores).await;
}
