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

// ---- faults in the batch protocol (S3 on SeaweedFS, faults injected by
// an ObjectStore wrapper around the real client) ---------------------------

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use orbit_cloud::TestHooks;
use support::fault_store::{Faults, LostResponse};

fn s3_store(
    prefix: &str,
    faults: &Arc<Faults>,
    tweak: impl FnOnce(&mut TestHooks),
) -> Arc<CloudStorage> {
    let mut hooks = faults.hooks();
    tweak(&mut hooks);
    orbit_cloud::open_s3_with_hooks(&support::weed().config(prefix), hooks).unwrap()
}

fn text(entry: &Option<orbit_storage::Entry>) -> String {
    String::from_utf8(entry.as_ref().expect("key present").value.to_vec()).unwrap()
}

/// (a) The commit PUT (or an intent PUT) lands and its response is lost:
/// answered as a 500, or as the 412 that object_store's retry of the
/// landed request gets. The batch is reported applied, exactly once, with
/// the versions it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_commit_and_intent_responses_apply_exactly_once_on_s3() {
    let prefix = support::fresh_prefix("lost-commit");
    let faults = Arc::new(Faults::default());
    let store = support::ready(s3_store(&prefix, &faults, |_| {})).await;
    store
        .batch(vec![put("a", 100, None), put("b", 100, None)])
        .await
        .unwrap();
    let cases = [
        ("commit", LostResponse::ServerError),
        ("commit", LostResponse::RetrySees412),
        ("intent", LostResponse::ServerError),
        ("intent", LostResponse::RetrySees412),
    ];
    for (round, (what, kind)) in cases.into_iter().enumerate() {
        let (a, va) = number(&store.get(b"a").await.unwrap());
        let (b, vb) = number(&store.get(b"b").await.unwrap());
        let queue = if what == "commit" {
            &faults.commit_faults
        } else {
            &faults.intent_faults
        };
        queue.lock().unwrap().push(kind);
        let commits = faults.commit_writes.load(Ordering::Relaxed);
        // A conditional transfer: re-running it after its commit would
        // answer 412 although it was applied.
        let versions = store
            .batch(vec![put("a", a - 1, va), put("b", b + 1, vb)])
            .await
            .unwrap_or_else(|e| panic!("{what} {kind:?}: the applied batch was reported as {e}"));
        assert!(queue.lock().unwrap().is_empty(), "the fault was injected");
        assert_eq!(
            faults.commit_writes.load(Ordering::Relaxed),
            commits + 1,
            "{what} {kind:?}: one commit, no second run of the batch"
        );
        let got_a = store.get(b"a").await.unwrap();
        let got_b = store.get(b"b").await.unwrap();
        assert_eq!(number(&got_a), (a - 1, versions[0]), "{what} {kind:?}");
        assert_eq!(number(&got_b), (b + 1, versions[1]), "{what} {kind:?}");
        // Unconditional puts: a re-run would apply them again, with
        // newer versions than the ones reported.
        queue.lock().unwrap().push(kind);
        let commits = faults.commit_writes.load(Ordering::Relaxed);
        let key_c = format!("c{round}");
        let key_d = format!("d{round}");
        let free = |key: &str, value: i64| BatchOp::Put {
            key: Bytes::from(key.to_string()),
            value: Bytes::from(value.to_string()),
            options: PutOptions::default(),
        };
        let versions = store
            .batch(vec![free(&key_c, 1), free(&key_d, 2)])
            .await
            .unwrap_or_else(|e| panic!("{what} {kind:?}: {e}"));
        assert_eq!(
            faults.commit_writes.load(Ordering::Relaxed),
            commits + 1,
            "{what} {kind:?}: one commit, no second run of the batch"
        );
        assert_eq!(
            store
                .get(key_c.as_bytes())
                .await
                .unwrap()
                .map(|e| e.version),
            versions[0],
            "{what} {kind:?}: applied once, at the reported version"
        );
        assert_eq!(
            store
                .get(key_d.as_bytes())
                .await
                .unwrap()
                .map(|e| e.version),
            versions[1]
        );
    }
    assert_eq!(faults.lost_commits.load(Ordering::Relaxed), 4);
    assert_eq!(faults.lost_intents.load(Ordering::Relaxed), 4);
    let (a, _) = number(&store.get(b"a").await.unwrap());
    let (b, _) = number(&store.get(b"b").await.unwrap());
    assert_eq!((a, b), (96, 104), "four transfers, each applied once");
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert_eq!(
        store.stats().await.unwrap().keys,
        10,
        "no stray intents or keys"
    );
}

fn many_ops(tag: &str) -> Vec<BatchOp> {
    (0..orbit_storage::MAX_BATCH_OPS)
        .map(|i| BatchOp::Put {
            key: Bytes::from(format!("k{i:04}")),
            value: Bytes::from(format!("{tag}-{i}")),
            options: PutOptions::default(),
        })
        .collect()
}

/// (b) A 1000-operation batch against a store whose writes take 25 ms
/// commits (intents are written concurrently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_op_batch_with_slow_writes_commits_on_s3() {
    let prefix = support::fresh_prefix("slow-batch");
    let faults = Arc::new(Faults::default());
    let store = support::ready(s3_store(&prefix, &faults, |_| {})).await;
    faults.write_delay_ms.store(25, Ordering::Relaxed);
    let started = Instant::now();
    let versions = store
        .batch(many_ops("slow"))
        .await
        .expect("the batch commits");
    eprintln!(
        "1000-op batch with 25 ms writes committed in {:?}",
        started.elapsed()
    );
    assert_eq!(versions.len(), orbit_storage::MAX_BATCH_OPS);
    assert_eq!(faults.intent_writes.load(Ordering::Relaxed), 1000);
    for i in [0usize, 1, 499, 998, 999] {
        let entry = store.get(format!("k{i:04}").as_bytes()).await.unwrap();
        assert_eq!(text(&entry), format!("slow-{i}"));
        assert_eq!(entry.map(|e| e.version), versions[i]);
    }
}

/// (c) While a slow 1000-op batch writes its intents (longer than twice
/// the transaction timeout, shortened to 1.5 s here for both handles), a
/// second handle whose wall clock runs 30 s ahead reads and writes one of
/// its keys. It waits for the batch instead of aborting it: the writer
/// renews its lease, and the abort rule counts only the waiter's own
/// monotonic time with the transaction object unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_replica_does_not_abort_a_live_slow_batch_on_s3() {
    const TIMEOUT: Duration = Duration::from_millis(1500);
    let prefix = support::fresh_prefix("skew");
    let faults = Arc::new(Faults::default());
    let writer = support::ready(s3_store(&prefix, &faults, |h| {
        h.txn_timeout = Some(TIMEOUT)
    }))
    .await;
    let skewed = orbit_cloud::open_s3_with_hooks(
        &support::weed().config(&prefix),
        TestHooks {
            clock_offset_ms: 30_000,
            txn_timeout: Some(TIMEOUT),
            ..TestHooks::default()
        },
    )
    .unwrap();
    writer
        .put(
            b"k0000",
            Bytes::from_static(b"before"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    faults.write_delay_ms.store(100, Ordering::Relaxed);
    let started = Instant::now();
    let batch = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.batch(many_ops("batch")).await })
    };
    // Once 200 intents landed, the first key's intent (started among the
    // first 32) is in place.
    while faults.intent_writes.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!batch.is_finished());
    let seen = skewed.get(b"k0000").await.unwrap();
    assert_eq!(text(&seen), "before", "a pending batch is not visible");
    let version = skewed
        .put(
            b"k0000",
            Bytes::from_static(b"after"),
            PutOptions::default(),
        )
        .await
        .expect("the skewed replica's write goes through after the batch");
    let versions = batch
        .await
        .unwrap()
        .expect("the live batch was not aborted");
    let took = started.elapsed();
    eprintln!("slow batch took {took:?} (timeout {TIMEOUT:?})");
    assert_eq!(
        faults.commit_writes.load(Ordering::Relaxed),
        1,
        "one attempt: the live batch was never aborted"
    );
    assert!(
        took > TIMEOUT * 2,
        "the batch outlived the timeout ({took:?})"
    );
    assert!(
        version > versions[0].unwrap(),
        "the skewed write came after the batch"
    );
    assert_eq!(text(&writer.get(b"k0000").await.unwrap()), "after");
    for i in [1usize, 500, 999] {
        let entry = skewed.get(format!("k{i:04}").as_bytes()).await.unwrap();
        assert_eq!(text(&entry), format!("batch-{i}"));
    }
}

/// (d) The transaction object is deleted between a writer's read of the
/// key (which still holds the committed batch's intent) and its read of
/// the transaction (the batch rolled forward and cleaned up in between):
/// no spurious 412, no delete answered "not found" while the key stays,
/// for single writes and for a batch's reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_deleted_between_two_reads_is_reread_on_s3() {
    let prefix = support::fresh_prefix("txn-gone");
    let batch_faults = Arc::new(Faults::default());
    let writer_faults = Arc::new(Faults::default());
    let batcher = support::ready(s3_store(&prefix, &batch_faults, |_| {})).await;
    let writer = s3_store(&prefix, &writer_faults, |_| {});
    let reader = orbit_cloud::open_s3(&support::weed().config(&prefix)).unwrap();
    let free = |key: &str, value: &str| BatchOp::Put {
        key: Bytes::from(key.to_string()),
        value: Bytes::from(value.to_string()),
        options: PutOptions::default(),
    };
    batcher
        .batch(vec![free("x", "0"), free("y", "0")])
        .await
        .unwrap();

    // Starts a batch whose roll-forward is held, and makes the writer's
    // next read of a transaction object wait until the batch finished
    // and deleted its transaction object.
    let start = |ops: Vec<BatchOp>| {
        batch_faults.arm_hold();
        let batcher = batcher.clone();
        let task = tokio::spawn(async move { batcher.batch(ops).await });
        let faults = batch_faults.clone();
        writer_faults.before_next_txn_get(Box::pin(async move {
            faults.release();
            faults.wait_txn_deleted().await;
        }));
        task
    };

    // A put conditional on the batch's version.
    let task = start(vec![free("x", "1"), free("z", "1")]);
    batch_faults.wait_holding().await;
    let committed = reader.get(b"x").await.unwrap().unwrap();
    assert_eq!(committed.value, Bytes::from_static(b"1"));
    writer
        .put(
            b"x",
            Bytes::from_static(b"2"),
            PutOptions {
                precondition: Precondition::Version(committed.version),
                expires_at: None,
            },
        )
        .await
        .expect("no spurious 412");
    task.await.unwrap().unwrap();
    assert_eq!(text(&reader.get(b"x").await.unwrap()), "2");

    // A delete of a key the batch created.
    let task = start(vec![free("w", "1"), free("y", "1")]);
    batch_faults.wait_holding().await;
    assert!(
        writer.delete(b"w", Precondition::None).await.unwrap(),
        "the delete found the key the batch created"
    );
    task.await.unwrap().unwrap();
    assert!(reader.get(b"w").await.unwrap().is_none(), "the key is gone");

    // A batch's reads.
    let task = start(vec![free("x", "3"), free("y", "3")]);
    batch_faults.wait_holding().await;
    let vx = reader.get(b"x").await.unwrap().unwrap().version;
    let vy = reader.get(b"y").await.unwrap().unwrap().version;
    writer
        .batch(vec![put("x", 4, Some(vx)), put("y", 4, Some(vy))])
        .await
        .expect("no spurious 412 in a batch");
    task.await.unwrap().unwrap();
    assert_eq!(text(&reader.get(b"x").await.unwrap()), "4");
    assert_eq!(text(&reader.get(b"y").await.unwrap()), "4");
}

/// Concurrent two-key transfers (`if_version` on both accounts) from four
/// store handles over eight accounts, while every handle loses the
/// response of every third commit write (as a 500 or as a retry's 412).
/// Each account's value carries the ids of the transfers applied to it, so
/// the end state shows every acknowledged transfer applied exactly once,
/// none half applied, and the sum unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_transfer_exactly_once_despite_lost_commit_responses_on_s3() {
    const HANDLES: usize = 4;
    const PER_HANDLE: usize = 8;
    const ACCOUNTS: usize = 8;
    let prefix = support::fresh_prefix("ledger");
    let all_faults: Vec<Arc<Faults>> = (0..HANDLES).map(|_| Arc::new(Faults::default())).collect();
    let stores: Vec<_> = all_faults
        .iter()
        .map(|f| {
            f.lose_commit_every.store(3, Ordering::Relaxed);
            s3_store(&prefix, f, |_| {})
        })
        .collect();
    support::ready(stores[0].clone()).await;
    let account = |i: usize| format!("acct{i}");
    // value: "balance;id,id,..." (the transfers applied to the account)
    let encode = |balance: i64, ids: &[String]| format!("{balance};{}", ids.join(","));
    let decode = |entry: &orbit_storage::Entry| -> (i64, Vec<String>) {
        let text = std::str::from_utf8(&entry.value).unwrap();
        let (balance, ids) = text.split_once(';').unwrap();
        let ids = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (balance.parse().unwrap(), ids)
    };
    stores[0]
        .batch(
            (0..ACCOUNTS)
                .map(|i| BatchOp::Put {
                    key: Bytes::from(account(i)),
                    value: Bytes::from(encode(1000, &[])),
                    options: PutOptions {
                        precondition: Precondition::Absent,
                        expires_at: None,
                    },
                })
                .collect(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = stores
        .iter()
        .cloned()
        .enumerate()
        .map(|(h, store)| {
            tokio::spawn(async move {
                // (id, from, to, amount) of acknowledged transfers
                let mut log = Vec::new();
                let mut seed = h as u64 * 7919 + 17;
                for n in 0..PER_HANDLE {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let from = (seed >> 33) as usize % ACCOUNTS;
                    let to = (from + 1 + (seed >> 40) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                    let amount = 1 + (seed >> 50) as i64 % 5;
                    let id = format!("h{h}n{n}");
                    loop {
                        let a = store.get(account(from).as_bytes()).await.unwrap().unwrap();
                        let b = store.get(account(to).as_bytes()).await.unwrap().unwrap();
                        let (balance_a, mut ids_a) = decode(&a);
                        let (balance_b, mut ids_b) = decode(&b);
                        ids_a.push(id.clone());
                        ids_b.push(id.clone());
                        let op = |key: String, value: String, version| BatchOp::Put {
                            key: Bytes::from(key),
                            value: Bytes::from(value),
                            options: PutOptions {
                                precondition: Precondition::Version(version),
                                expires_at: None,
                            },
                        };
                        match store
                            .batch(vec![
                                op(account(from), encode(balance_a - amount, &ids_a), a.version),
                                op(account(to), encode(balance_b + amount, &ids_b), b.version),
                            ])
                            .await
                        {
                            Ok(_) => {
                                log.push((id, from, to, amount));
                                break;
                            }
                            Err(StorageError::Conflict { .. }) => continue,
                            Err(e) => panic!("transfer {id} failed: {e}"),
                        }
                    }
                }
                log
            })
        })
        .collect();
    let mut acked: HashMap<String, (usize, usize, i64)> = HashMap::new();
    for task in tasks {
        for (id, from, to, amount) in task.await.unwrap() {
            acked.insert(id, (from, to, amount));
        }
    }
    let lost: u64 = all_faults
        .iter()
        .map(|f| f.lost_commits.load(Ordering::Relaxed))
        .sum();
    eprintln!(
        "{} transfers from {HANDLES} handles in {:?}; {lost} commit responses lost",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(acked.len(), HANDLES * PER_HANDLE);
    assert!(lost >= 4, "faults were injected ({lost})");
    let mut total = 0;
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..ACCOUNTS {
        let entry = stores[0].get(account(i).as_bytes()).await.unwrap().unwrap();
        let (balance, ids) = decode(&entry);
        total += balance;
        let mut expected = 1000;
        for id in ids {
            let (from, to, amount) = *acked
                .get(&id)
                .unwrap_or_else(|| panic!("transfer {id} applied but not acknowledged"));
            if from == i {
                expected -= amount;
            } else {
                assert_eq!(to, i, "{id} applied to an account it does not name");
                expected += amount;
            }
            seen.entry(id).or_default().push(i);
        }
        assert_eq!(balance, expected, "account {i}'s balance matches its log");
    }
    assert_eq!(total, 1000 * ACCOUNTS as i64, "the sum is unchanged");
    for (id, (from, to, _)) in &acked {
        let mut accounts = seen.get(id).cloned().unwrap_or_default();
        accounts.sort();
        let mut want = vec![*from, *to];
        want.sort();
        assert_eq!(
            accounts, want,
            "transfer {id} applied exactly once to both accounts"
        );
    }
}

/// A batch writer stuck between its intents and its commit (it stops
/// renewing its lease) is aborted by a writer that saw its transaction
/// object unchanged for the timeout (1.5 s here); when the stuck writer
/// wakes up its commit fails, it rolls back and runs the batch again, so
/// the batch is applied once, after the other write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_batch_is_aborted_after_the_timeout_and_retried_on_s3() {
    const TIMEOUT: Duration = Duration::from_millis(1500);
    let prefix = support::fresh_prefix("stuck");
    let faults = Arc::new(Faults::default());
    let stuck = support::ready(s3_store(&prefix, &faults, |h| {
        h.txn_timeout = Some(TIMEOUT)
    }))
    .await;
    let other = orbit_cloud::open_s3_with_hooks(
        &support::weed().config(&prefix),
        TestHooks {
            txn_timeout: Some(TIMEOUT),
            ..TestHooks::default()
        },
    )
    .unwrap();
    let free = |key: &str, value: &str| BatchOp::Put {
        key: Bytes::from(key.to_string()),
        value: Bytes::from(value.to_string()),
        options: PutOptions::default(),
    };
    stuck
        .batch(vec![free("x", "0"), free("y", "0")])
        .await
        .unwrap();
    faults.arm_hold_commit();
    let batch = {
        let stuck = stuck.clone();
        tokio::spawn(async move { stuck.batch(vec![free("x", "1"), free("y", "1")]).await })
    };
    faults.wait_holding().await;
    assert_eq!(text(&other.get(b"x").await.unwrap()), "0");
    let started = Instant::now();
    let version = other
        .put(b"x", Bytes::from_static(b"other"), PutOptions::default())
        .await
        .expect("the other writer gets through");
    let waited = started.elapsed();
    eprintln!("the other writer aborted the stuck batch after {waited:?}");
    assert!(
        waited >= TIMEOUT,
        "aborted only after the timeout ({waited:?})"
    );
    assert!(waited < TIMEOUT * 6, "and not much later ({waited:?})");
    assert!(!batch.is_finished());
    faults.release();
    let versions = batch
        .await
        .unwrap()
        .expect("the batch ran again and committed");
    assert!(
        versions[0].unwrap() > version,
        "the batch was applied after the other write"
    );
    let x = other.get(b"x").await.unwrap();
    assert_eq!(
        (text(&x), x.map(|e| e.version)),
        ("1".to_string(), versions[0])
    );
    let y = other.get(b"y").await.unwrap();
    assert_eq!(
        (text(&y), y.map(|e| e.version)),
        ("1".to_string(), versions[1])
    );
}
