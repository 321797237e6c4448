//! What background work costs, and the start-up check of conditional
//! writes, against the real stand-ins:
//!
//! - a store that ignores preconditions (a wrapper around the real
//!   SeaweedFS client that turns every conditional PUT into a plain one) is
//!   refused; SeaweedFS, Azurite and the GCS test server pass;
//! - expired keys and tombstones are purged through the expiry index, and
//!   the index is empty afterwards;
//! - purge on an idle store makes a constant number of requests, whatever
//!   the number of keys;
//! - two and three handles purging one prefix never hold the purge lease
//!   at once, a handle takes over once the holder stops, and no
//!   acknowledged write is lost while they purge.

mod support;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions as OsPutOptions, PutPayload,
    PutResult,
};
use orbit_cloud::CloudStorage;
use orbit_storage::{Precondition, PutOptions, Storage, StorageError, now_millis};

/// Passes everything to a real store, but drops the precondition of every
/// PUT (what an S3 gateway that ignores If-None-Match / If-Match does).
#[derive(Debug)]
struct IgnoresPreconditions(Arc<dyn ObjectStore>);

impl fmt::Display for IgnoresPreconditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IgnoresPreconditions({})", self.0)
    }
}

#[async_trait]
impl ObjectStore for IgnoresPreconditions {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: OsPutOptions,
    ) -> object_store::Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_ignoring_preconditions_is_refused() {
    let weed = support::weed();
    let prefix = support::fresh_prefix("liar");
    let store = orbit_cloud::open_s3_wrapped(&weed.config(&prefix), |inner| {
        Arc::new(IgnoresPreconditions(inner))
    })
    .unwrap();
    support::ready(store.clone()).await;
    let error = store
        .check_conditional_writes()
        .await
        .expect_err("a store that ignores preconditions must be refused");
    let message = error.to_string();
    assert!(matches!(error, StorageError::Invalid(_)), "{message}");
    for needle in [
        "s3",
        &format!("127.0.0.1:{}", weed.s3_port),
        "conditional create",
        "PutMode::Create",
        "probe-cas",
    ] {
        assert!(message.contains(needle), "{needle:?} missing: {message}");
    }
    assert!(!message.contains(support::S3_SECRET_KEY), "{message}");
    // The same bucket through the honest client passes, and the probe
    // object is gone afterwards.
    let honest = support::ready(orbit_cloud::open_s3(&weed.config(&prefix)).unwrap()).await;
    honest.check_conditional_writes().await.expect("SeaweedFS");
    let (raw, _) = raw_s3(&prefix);
    assert_eq!(count(&raw, &format!("{prefix}/probe-cas")).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_ins_honour_conditional_writes() {
    let s3 = orbit_cloud::open_s3(&support::weed().config(&support::fresh_prefix("cas-s3")));
    let azure =
        orbit_cloud::open_azure(&support::azurite().config(&support::fresh_prefix("cas-az")));
    let gcs = orbit_cloud::open_gcp(&support::gcp_config(
        support::gcs(),
        &support::fresh_prefix("cas-gcs"),
    ));
    for store in [s3, azure, gcs] {
        let store = support::ready(store.unwrap()).await;
        store
            .check_conditional_writes()
            .await
            .unwrap_or_else(|e| panic!("{store:?}: {e}"));
    }
}

/// A SeaweedFS client on `prefix`'s store, for looking at raw objects.
fn raw_s3(prefix: &str) -> (Arc<dyn ObjectStore>, Arc<CloudStorage>) {
    let captured: Arc<Mutex<Option<Arc<dyn ObjectStore>>>> = Arc::default();
    let keep = captured.clone();
    let store = orbit_cloud::open_s3_wrapped(&support::weed().config(prefix), move |inner| {
        *keep.lock().unwrap() = Some(inner.clone());
        inner
    })
    .unwrap();
    let raw = captured.lock().unwrap().clone().unwrap();
    (raw, store)
}

async fn count(raw: &Arc<dyn ObjectStore>, folder: &str) -> usize {
    raw.list(Some(&Path::from(folder)))
        .filter(|m| std::future::ready(m.is_ok()))
        .count()
        .await
}

fn ttl(at: u64) -> PutOptions {
    PutOptions {
        precondition: Precondition::None,
        expires_at: Some(at),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_and_tombstones_are_purged_through_the_index() {
    let prefix = support::fresh_prefix("index");
    let (raw, store) = raw_s3(&prefix);
    let store = support::ready(store).await;
    store.set_tombstone_grace(Duration::from_millis(1_500));
    let soon = now_millis() + 300;
    for i in 0..5 {
        store
            .put(format!("ttl/{i}").as_bytes(), Bytes::from("x"), ttl(soon))
            .await
            .unwrap();
    }
    // Rewritten without TTL: its index entry goes stale.
    store
        .put(b"ttl/rewritten", Bytes::from("x"), ttl(soon))
        .await
        .unwrap();
    store
        .put(b"ttl/rewritten", Bytes::from("y"), PutOptions::default())
        .await
        .unwrap();
    store
        .put(b"later", Bytes::from("x"), ttl(now_millis() + 3_600_000))
        .await
        .unwrap();
    store
        .put(b"deleted", Bytes::from("x"), PutOptions::default())
        .await
        .unwrap();
    assert!(store.delete(b"deleted", Precondition::None).await.unwrap());
    // A long key (its index entry names it in its body).
    let long = vec![b'L'; 300];
    store.put(&long, Bytes::from("x"), ttl(soon)).await.unwrap();
    // 5 + 1 stale + later + tombstone + long.
    assert_eq!(count(&raw, &format!("{prefix}/x")).await, 9);
    tokio::time::sleep(Duration::from_millis(
        soon.saturating_sub(now_millis()) + 100,
    ))
    .await;
    assert_eq!(
        store.purge_expired().await.unwrap(),
        6,
        "5 short keys + long"
    );
    assert_eq!(store.purge_expired().await.unwrap(), 0, "nothing left due");
    // The expired keys are tombstones now, each indexed for deletion.
    assert_eq!(count(&raw, &format!("{prefix}/k")).await, 9);
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert_eq!(
        count(&raw, &format!("{prefix}/k")).await,
        2,
        "only the rewritten and the later key are left"
    );
    assert_eq!(
        count(&raw, &format!("{prefix}/x")).await,
        1,
        "only the later key's entry is left"
    );
    assert!(store.get(b"ttl/rewritten").await.unwrap().is_some());
    assert!(store.get(b"later").await.unwrap().is_some());
    assert_eq!(store.stats().await.unwrap().keys, 2);
}

/// A prefix written before the expiry index existed (simulated by deleting
/// the index and its completion marker): the first purge by the lease
/// holder indexes every record once, then purges through the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_the_index_are_backfilled_once() {
    let prefix = support::fresh_prefix("backfill");
    let (raw, store) = raw_s3(&prefix);
    let store = support::ready(store).await;
    store.set_tombstone_grace(Duration::from_millis(500));
    let soon = now_millis() + 300;
    for i in 0..4 {
        store
            .put(format!("old/{i}").as_bytes(), Bytes::from("x"), ttl(soon))
            .await
            .unwrap();
    }
    store
        .put(b"kept", Bytes::from("x"), PutOptions::default())
        .await
        .unwrap();
    // Forget the index, as a bucket written by an older version has none.
    let index: Vec<Path> = raw
        .list(Some(&Path::from(format!("{prefix}/x"))))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(index.len(), 4);
    for path in index {
        raw.delete(&path).await.unwrap();
    }
    raw.delete(&Path::from(format!("{prefix}/index-complete")))
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(
        soon.saturating_sub(now_millis()) + 100,
    ))
    .await;
    // A new handle (a restarted replica) takes the lease and backfills.
    let fresh = orbit_cloud::open_s3(&support::weed().config(&prefix)).unwrap();
    fresh.set_tombstone_grace(Duration::from_millis(500));
    assert_eq!(
        fresh.purge_expired().await.unwrap(),
        4,
        "the old keys expire"
    );
    assert!(
        raw.head(&Path::from(format!("{prefix}/index-complete")))
            .await
            .is_ok(),
        "the backfill marked the prefix complete"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    fresh.purge_expired().await.unwrap();
    assert_eq!(
        count(&raw, &format!("{prefix}/k")).await,
        1,
        "the tombstones are gone; only the kept key is left"
    );
    // Once complete, an idle purge does not scan again.
    let before = fresh.remote_stats().requests;
    fresh.purge_expired().await.unwrap();
    assert!(
        fresh.remote_stats().requests - before <= 3,
        "an idle purge after the backfill made {} requests",
        fresh.remote_stats().requests - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_purge_makes_a_constant_number_of_requests() {
    let prefix = support::fresh_prefix("idle");
    let weed = support::weed();
    let writer = support::ready(orbit_cloud::open_s3(&weed.config(&prefix)).unwrap()).await;
    let mut per_purge = Vec::new();
    let mut written = 0usize;
    for keys in [20usize, 300] {
        let later = now_millis() + 3_600_000;
        futures::stream::iter(written..keys)
            .map(|i| {
                let writer = writer.clone();
                async move {
                    writer
                        .put(
                            format!("idle/{i:05}").as_bytes(),
                            Bytes::from("v"),
                            ttl(later + i as u64 * 1_000),
                        )
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        written = keys;
        // Two fresh replicas and no lease yet: the first takes it (GET,
        // PUT), the other only ever reads it.
        let (raw, _) = raw_s3(&prefix);
        match raw
            .delete(&Path::from(format!("{prefix}/purge-lease")))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        let holder = orbit_cloud::open_s3(&weed.config(&prefix)).unwrap();
        let other = orbit_cloud::open_s3(&weed.config(&prefix)).unwrap();
        holder.set_purge_lease_period(Duration::from_secs(600));
        other.set_purge_lease_period(Duration::from_secs(600));
        assert_eq!(holder.purge_expired().await.unwrap(), 0);
        for _ in 0..5 {
            let (h0, o0) = (
                holder.remote_stats().requests,
                other.remote_stats().requests,
            );
            assert_eq!(holder.purge_expired().await.unwrap(), 0);
            assert_eq!(other.purge_expired().await.unwrap(), 0);
            per_purge.push((
                keys,
                holder.remote_stats().requests - h0,
                other.remote_stats().requests - o0,
            ));
        }
        assert_eq!(
            holder.purge_passes().len(),
            6,
            "the holder purged every time"
        );
        assert!(other.purge_passes().is_empty(), "the other never did");
    }
    eprintln!("(keys, holder requests, other requests) per purge: {per_purge:?}");
    for (keys, holder, other) in per_purge {
        // Renew the lease, list the index (first page), list P/t/.
        assert!(
            holder <= 3,
            "{keys} keys: the holder's purge made {holder} requests"
        );
        // One GET of the lease.
        assert!(
            other <= 1,
            "{keys} keys: a waiting replica's purge made {other} requests"
        );
    }
}

/// `n` handles purge one prefix every 20 ms while a writer keeps writing
/// keys that expire and keys that do not; the first holder stops purging
/// halfway. No two handles' purge passes overlap, another handle takes
/// over, and every acknowledged write is still there.
async fn lease_run(n: usize, stores: Vec<Arc<CloudStorage>>) {
    assert_eq!(stores.len(), n);
    for store in &stores {
        store.set_purge_lease_period(Duration::from_millis(800));
        // Tombstones outlive the run: deleting one is a HEAD then an
        // unconditional DELETE (object_store 0.14 has no conditional
        // delete), and a write landing on a tombstone older than the grace
        // inside that round trip would be lost. With this writer rewriting
        // 40 keys every 5 ms a short grace hits that known window (see the
        // DESIGN.md, "Deletes"); this test is about the lease and the
        // expiry purges, which are conditional writes.
        store.set_tombstone_grace(Duration::from_secs(60));
    }
    let stop_at = Instant::now() + Duration::from_secs(5);
    let first_holder_stops = Instant::now() + Duration::from_millis(2_000);
    let retired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let purgers: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| {
            let retired = retired.clone();
            tokio::spawn(async move {
                let mut purged = 0;
                while Instant::now() < stop_at {
                    // The first holder stops (as if it died) after 2 s.
                    if Instant::now() > first_holder_stops
                        && !store.purge_passes().is_empty()
                        && retired
                            .compare_exchange(
                                false,
                                true,
                                std::sync::atomic::Ordering::SeqCst,
                                std::sync::atomic::Ordering::SeqCst,
                            )
                            .is_ok()
                    {
                        break;
                    }
                    purged += store.purge_expired().await.expect("purge");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                purged
            })
        })
        .collect();
    let writer = {
        let store = stores[n - 1].clone();
        tokio::spawn(async move {
            let mut last: HashMap<String, (String, Option<u64>)> = HashMap::new();
            let mut i = 0u64;
            while Instant::now() < stop_at {
                let key = format!("k{}", i % 40);
                let value = format!("v{i}");
                let expires = i.is_multiple_of(3).then(|| now_millis() + 150);
                let options = PutOptions {
                    precondition: Precondition::None,
                    expires_at: expires,
                };
                if i.is_multiple_of(7) {
                    store
                        .delete(key.as_bytes(), Precondition::None)
                        .await
                        .unwrap();
                    last.remove(&key);
                } else {
                    store
                        .put(key.as_bytes(), Bytes::from(value.clone()), options)
                        .await
                        .unwrap();
                    last.insert(key, (value, expires));
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            last
        })
    };
    let mut total = 0;
    for purger in purgers {
        total += purger.await.unwrap();
    }
    let last = writer.await.unwrap();
    assert!(total > 0, "something expired and was purged");
    // Every acknowledged write is there, unless it has expired.
    let reader = &stores[n - 1];
    for (key, (value, expires)) in &last {
        let before = now_millis();
        let got = reader.get(key.as_bytes()).await.unwrap();
        match expires {
            Some(at) if *at <= before => assert!(got.is_none(), "{key} expired"),
            Some(at) if *at <= now_millis() => {}
            _ => assert_eq!(
                got.map(|e| e.value),
                Some(Bytes::from(value.clone())),
                "acknowledged write of {key} lost"
            ),
        }
    }
    // Never two holders at once.
    let passes: Vec<(usize, Instant, Instant)> = stores
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.purge_passes().into_iter().map(move |(a, b)| (i, a, b)))
        .collect();
    for (i, a0, a1) in &passes {
        for (j, b0, b1) in &passes {
            if i != j {
                assert!(
                    a1 <= b0 || b1 <= a0,
                    "handles {i} and {j} purged at the same time"
                );
            }
        }
    }
    let purging: std::collections::HashSet<usize> = passes.iter().map(|p| p.0).collect();
    assert!(
        purging.len() >= 2,
        "another handle took over from the first holder: {purging:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_handles_share_the_purge_lease_on_s3() {
    let weed = support::weed();
    let prefix = support::fresh_prefix("lease-s3");
    let stores: Vec<_> = (0..3)
        .map(|_| orbit_cloud::open_s3(&weed.config(&prefix)).unwrap())
        .collect();
    support::ready(stores[0].clone()).await;
    lease_run(3, stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_share_the_purge_lease_on_azure() {
    let azurite = support::azurite();
    let prefix = support::fresh_prefix("lease-az");
    let stores: Vec<_> = (0..2)
        .map(|_| orbit_cloud::open_azure(&azurite.config(&prefix)).unwrap())
        .collect();
    support::ready(stores[0].clone()).await;
    lease_run(2, stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_share_the_purge_lease_on_gcs() {
    let server = support::gcs();
    let prefix = support::fresh_prefix("lease-gcs");
    let stores: Vec<_> = (0..2)
        .map(|_| orbit_cloud::open_gcp(&support::gcp_config(server, &prefix)).unwrap())
        .collect();
    support::ready(stores[0].clone()).await;
    lease_run(2, stores).await;
}
