//! The adapter's own logic (versions, compare-and-set, TTL index, batches,
//! counts) checked on the simplest ordered engine there is, a `BTreeMap`
//! behind a lock. The real engines run the same suite in `orbit-backends`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use orbit_storage::kv::{Applied, KvOp, KvStorage, OrderedKv};
use orbit_storage::{Precondition, PutOptions, Storage, StorageResult, now_millis};
use parking_lot::RwLock;

/// An engine whose "disk" outlives the storage that wraps it, so reopening
/// is a new `KvStorage` over the same map.
#[derive(Clone, Default)]
struct MapEngine(Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>);

impl OrderedKv for MapEngine {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.0.read().get(key).cloned())
    }
    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()> {
        let mut map = self.0.write();
        for op in ops {
            match op {
                KvOp::Put { key, value } => {
                    map.insert(key, value);
                }
                KvOp::Delete { key } => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()> {
        let map = self.0.read();
        for (k, v) in map.range::<[u8], _>((lower, upper)) {
            if !visit(k, v) {
                break;
            }
        }
        Ok(())
    }
    fn sync(&self) -> StorageResult<()> {
        Ok(())
    }
    fn disk_bytes(&self) -> Option<u64> {
        None
    }
}

fn open_on(engine: MapEngine) -> Arc<dyn Storage> {
    Arc::new(KvStorage::open(engine, "map").expect("open"))
}

async fn open() -> Arc<dyn Storage> {
    open_on(MapEngine::default())
}

orbit_conformance::conformance_tests!(open);

#[tokio::test]
async fn reopen_keeps_counts_and_never_reuses_a_version() {
    let engine = MapEngine::default();
    let store = open_on(engine.clone());
    let v1 = store
        .put(b"a", Bytes::from_static(b"12345"), PutOptions::default())
        .await
        .unwrap();
    let v2 = store
        .put(b"b", Bytes::from_static(b"x"), PutOptions::default())
        .await
        .unwrap();
    assert!(store.delete(b"b", Precondition::None).await.unwrap());
    drop(store);

    let store = open_on(engine.clone());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.keys, stats.bytes), (1, 6), "counted again at open");
    let v3 = store
        .put(b"b", Bytes::from_static(b"y"), PutOptions::default())
        .await
        .unwrap();
    assert!(v3 > v2 && v2 > v1, "versions after reopen: {v1} {v2} {v3}");
    // The deleted key's old version cannot satisfy a precondition now.
    let stale = store
        .put(
            b"b",
            Bytes::from_static(b"z"),
            PutOptions {
                precondition: Precondition::Version(v2),
                expires_at: None,
            },
        )
        .await;
    assert!(stale.is_err(), "a version from before the restart is stale");
}

#[tokio::test]
async fn purge_reads_only_the_expiry_index_and_skips_rewritten_keys() {
    let engine = MapEngine::default();
    let store = open_on(engine.clone());
    let past = now_millis() - 1;
    let ttl = |at| PutOptions {
        precondition: Precondition::None,
        expires_at: Some(at),
    };
    store
        .put(b"gone", Bytes::from_static(b"1"), ttl(past))
        .await
        .unwrap();
    store
        .put(b"kept", Bytes::from_static(b"1"), ttl(past))
        .await
        .unwrap();
    // Rewritten without expiry: its old index entry must not delete it.
    store
        .put(b"kept", Bytes::from_static(b"2"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.get(b"kept").await.unwrap().unwrap().value, &b"2"[..]);
    let leftovers = engine.0.read().keys().filter(|k| k[0] == 0x02).count();
    assert_eq!(
        leftovers, 0,
        "no index entry survives a purge or an overwrite"
    );
    assert_eq!(store.stats().await.unwrap().keys, 1);
}

/// An engine that takes writes from async tasks and makes them durable
/// later, as the LSM tree does under `durability = sync`: `try_write` logs
/// the operations where no reader sees them, `wait_durable` applies the log
/// up to a position (the "fsync"). Every third `try_write` refuses
/// (`WouldBlock`), so the blocking fallback runs between deferred writes.
#[derive(Clone, Default)]
struct DeferredEngine {
    map: MapEngine,
    log: Arc<parking_lot::Mutex<DeferredLog>>,
}

#[derive(Default)]
struct DeferredLog {
    /// Logged, not yet durable, in log order.
    pending: Vec<(u64, Vec<KvOp>)>,
    next: u64,
    tries: u64,
    syncs: u64,
}

impl DeferredEngine {
    /// Applies the log up to `position` (everything when `u64::MAX`).
    fn make_durable(&self, position: u64) {
        let mut log = self.log.lock();
        let split = log.pending.partition_point(|(at, _)| *at <= position);
        let due: Vec<_> = log.pending.drain(..split).collect();
        if !due.is_empty() {
            log.syncs += 1;
        }
        for (_, ops) in due {
            self.map.write(ops).unwrap();
        }
    }
}

impl OrderedKv for DeferredEngine {
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.map.get(key)
    }
    fn try_get(&self, key: &[u8]) -> StorageResult<Option<Option<Vec<u8>>>> {
        self.map.get(key).map(Some)
    }
    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()> {
        // In log order: after everything logged before it.
        self.make_durable(u64::MAX);
        self.map.write(ops)
    }
    fn try_write(&self, ops: &[KvOp]) -> StorageResult<Applied> {
        let mut log = self.log.lock();
        log.tries += 1;
        if log.tries.is_multiple_of(3) {
            return Ok(Applied::WouldBlock);
        }
        log.next += 1;
        let at = log.next;
        log.pending.push((at, ops.to_vec()));
        Ok(Applied::Pending(at))
    }
    fn tries_writes(&self) -> bool {
        true
    }
    fn wait_durable(&self, position: u64) -> StorageResult<()> {
        self.make_durable(position);
        Ok(())
    }
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()> {
        self.map.scan(lower, upper, visit)
    }
    fn sync(&self) -> StorageResult<()> {
        self.make_durable(u64::MAX);
        Ok(())
    }
    fn disk_bytes(&self) -> Option<u64> {
        None
    }
}

mod deferred {
    use super::*;

    async fn open() -> Arc<dyn Storage> {
        Arc::new(KvStorage::open(DeferredEngine::default(), "deferred").expect("open"))
    }

    orbit_conformance::conformance_tests!(open);

    /// An acknowledged deferred write is durable and visible; a write that
    /// follows it on the same key reads it (compare-and-set on its version).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_means_durable_and_chained_writes_see_it() {
        let engine = DeferredEngine::default();
        let store = Arc::new(KvStorage::open(engine.clone(), "deferred").expect("open"));
        let mut version = store
            .put(b"k", Bytes::from_static(b"0"), PutOptions::default())
            .await
            .unwrap();
        for i in 1..50u32 {
            assert!(
                engine.log.lock().pending.is_empty(),
                "an acknowledged write left nothing pending"
            );
            version = store
                .put(
                    b"k",
                    Bytes::from(i.to_string()),
                    PutOptions {
                        precondition: Precondition::Version(version),
                        expires_at: None,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("write {i} on its predecessor's version: {e}"));
        }
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, &b"49"[..]);
        // Concurrent writers to many keys share "fsyncs".
        let writers: Vec<_> = (0..64u32)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..20u32 {
                        store
                            .put(
                                format!("w{w}/{i}").as_bytes(),
                                Bytes::from_static(b"v"),
                                PutOptions::default(),
                            )
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        {
            let log = engine.log.lock();
            assert!(log.pending.is_empty());
            let deferred = log.tries - log.tries / 3;
            assert!(
                log.syncs < deferred,
                "{} syncs for {deferred} deferred writes",
                log.syncs
            );
        }
        assert_eq!(store.stats().await.unwrap().keys, 1 + 64 * 20);
    }
}
