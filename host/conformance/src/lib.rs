//! The conformance suite: the storage contract of `orbit-storage` as
//! executable checks, written once and run against every backend.
//!
//! Each case is a `pub async fn(Arc<dyn Storage>)` that receives a fresh,
//! empty store and panics (with a message naming what broke) when the
//! backend departs from the contract in `orbit-storage`'s crate docs.
//! Three ways to run it:
//!
//! - preferred, one named test per case in the backend's test binary:
//!   ```ignore
//!   async fn open() -> Arc<dyn Storage> { /* a fresh, empty store */ }
//!   orbit_conformance::conformance_tests!(open);
//!   ```
//!   The argument is any expression callable as `f()` that returns a future
//!   of `Arc<dyn Storage>` (an `async fn` name or an `|| async { .. }`
//!   closure), evaluated once per case. Invoke the macro inside a `mod` to
//!   run the suite on several configurations in one file. The generated
//!   tests drive their own multi-threaded Tokio runtime, so the test crate
//!   needs no Tokio dependency of its own.
//! - all cases in one test: `orbit_conformance::run_all(open).await`;
//! - one case: `orbit_conformance::large_value(open().await).await`.
//!
//! Cases assume the store starts empty and is used by nobody else (remote
//! backends: give each store its own prefix). TTL cases sleep for a few
//! hundred milliseconds; timing checks are written so a slow machine cannot
//! make them fail spuriously.
//!
//! Backends take this crate as a dev-dependency only (`publish = false`),
//! so the suite is never compiled into a release build of the server. It
//! depends only on `orbit-storage`, Tokio and `bytes`.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use orbit_storage::{
    BatchOp, KeyRange, ListPage, ListQuery, MAX_KEY_LEN, PRIVATE_KEY_PREFIX, Precondition,
    PutOptions, Storage, StorageError, StorageResult, UnixMillis, Version, now_millis,
};

/// Expands to one `#[test]` per conformance case, each opening a fresh store
/// with `$open` (see the [crate docs](crate)). The list of
/// cases lives here only; [`run_all`] expands the same list.
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr $(,)?) => {
        $crate::conformance_tests!(@cases tests [$open]);
    };
    // The single list of cases; `$mode` picks what to expand it into.
    (@cases $mode:ident [$($arg:tt)*]) => {
        $crate::conformance_tests!(@$mode [$($arg)*]
            put_get_overwrite_delete,
            versions_strictly_increase,
            create_if_absent,
            update_if_version,
            delete_if_version,
            preconditions_on_absent_key,
            ttl_hides_expired_entries,
            past_expiry_is_invisible_at_once,
            purge_expired_removes_only_expired,
            list_by_prefix,
            list_by_range,
            list_pagination_returns_everything_once,
            list_skips_expired_and_deleted,
            list_pages_are_bounded_by_bytes,
            list_without_values_reports_sizes,
            empty_prefix_lists_everything,
            batch_is_atomic,
            batch_versions_and_ordering,
            empty_batch_is_a_no_op,
            invalid_input_is_rejected,
            binary_keys_and_values,
            private_keys_are_plain_keys,
            large_value,
            concurrent_compare_and_set,
            stats_counts_keys,
            flush_keeps_data,
        );
    };
    (@tests [$open:expr] $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case($open, $crate::$case);
            }
        )*
    };
    (@run_all [$open:ident] $($case:ident,)*) => {
        $(
            eprintln!("storage conformance: {}", stringify!($case));
            $crate::$case($open().await).await;
        )*
    };
}

/// Runs every case in turn, each on a fresh store from `open`.
pub async fn run_all<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Storage>>,
{
    crate::conformance_tests!(@cases run_all [open]);
}

/// Runs one case on a fresh store inside a new multi-threaded Tokio runtime.
/// This is what [`conformance_tests!`] expands to; it panics if the runtime
/// cannot be built (it is test code).
pub fn run_case<F, Fut, C, CFut>(open: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Arc<dyn Storage>>,
    C: FnOnce(Arc<dyn Storage>) -> CFut,
    CFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("build a Tokio runtime for a conformance case");
    runtime.block_on(async move { case(open().await).await });
}

// ---- helpers ---------------------------------------------------------------

fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

fn opts(precondition: Precondition) -> PutOptions {
    PutOptions {
        precondition,
        expires_at: None,
    }
}

fn expiring(expires_at: UnixMillis) -> PutOptions {
    PutOptions {
        precondition: Precondition::None,
        expires_at: Some(expires_at),
    }
}

fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

async fn put(store: &dyn Storage, key: &[u8], value: &[u8]) -> Version {
    store
        .put(key, b(value), PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {:?}: unexpected error {e}", printable(key)))
}

async fn get_value(store: &dyn Storage, key: &[u8]) -> Option<Bytes> {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {:?}: unexpected error {e}", printable(key)))
        .map(|entry| entry.value)
}

async fn list(
    store: &dyn Storage,
    range: KeyRange,
    limit: usize,
    cursor: Option<Bytes>,
) -> ListPage {
    let query = ListQuery {
        cursor,
        ..ListQuery::new(range, limit)
    };
    store
        .list(&query)
        .await
        .unwrap_or_else(|e| panic!("list {query:?}: unexpected error {e}"))
}

fn prefix(p: &[u8]) -> KeyRange {
    KeyRange::Prefix(b(p))
}

fn range(start: Option<&[u8]>, end: Option<&[u8]>) -> KeyRange {
    KeyRange::Range {
        start: start.map(b),
        end: end.map(b),
    }
}

fn keys_of(page: &ListPage) -> Vec<Bytes> {
    page.entries.iter().map(|entry| entry.key.clone()).collect()
}

fn keys(list: &[&[u8]]) -> Vec<Bytes> {
    list.iter().map(|key| b(key)).collect()
}

/// Every live key under `range`, page by page with `limit`, checking the
/// page invariants on the way.
async fn list_all(store: &dyn Storage, range: KeyRange, limit: usize) -> Vec<Bytes> {
    let mut all: Vec<Bytes> = Vec::new();
    let mut cursor = None;
    for _ in 0..100_000 {
        let page = list(store, range.clone(), limit, cursor.clone()).await;
        assert!(
            page.entries.len() <= limit,
            "a page holds {} entries, more than limit {limit}",
            page.entries.len()
        );
        all.extend(keys_of(&page));
        match page.next_cursor {
            Some(next) => {
                assert!(
                    !page.entries.is_empty(),
                    "an empty page must not carry a next_cursor"
                );
                assert_eq!(
                    Some(&next),
                    page.entries.last().map(|entry| &entry.key),
                    "next_cursor must be the last key of the page"
                );
                cursor = Some(next);
            }
            None => return all,
        }
    }
    panic!("listing {range:?} did not finish after 100000 pages");
}

#[track_caller]
fn assert_conflict<T: Debug>(result: StorageResult<T>, current: Option<Version>, what: &str) {
    match result {
        Err(StorageError::Conflict {
            current: actual, ..
        }) => {
            assert_eq!(
                actual, current,
                "{what}: Conflict must carry the current version"
            );
        }
        other => panic!("{what}: expected Conflict (current {current:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid<T: Debug>(result: StorageResult<T>, what: &str) {
    assert!(
        matches!(result, Err(StorageError::Invalid(_))),
        "{what}: expected Invalid, got {result:?}"
    );
}

/// Sleeps until the wall clock is past `instant` (plus a margin).
async fn sleep_past(instant: UnixMillis) {
    let target = instant + 20;
    loop {
        let now = now_millis();
        if now > target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(target - now + 1)).await;
    }
}

// ---- cases -----------------------------------------------------------------

/// Put, get, overwrite and delete one key; metadata comes back intact.
pub async fn put_get_overwrite_delete(store: Arc<dyn Storage>) {
    let store = &*store;
    assert_eq!(
        store.get(b"alpha").await.expect("get absent"),
        None,
        "a fresh store holds nothing"
    );

    let v1 = put(store, b"alpha", b"one").await;
    let entry = store
        .get(b"alpha")
        .await
        .expect("get")
        .expect("alpha is present after put");
    assert_eq!(entry.key, b(b"alpha"));
    assert_eq!(entry.value, b(b"one"));
    assert_eq!(entry.version, v1, "get returns the version put returned");
    assert_eq!(entry.expires_at, None);

    let v2 = put(store, b"alpha", b"two").await;
    assert!(
        v2 > v1,
        "overwrite must get a higher version ({v2} after {v1})"
    );
    let entry = store
        .get(b"alpha")
        .await
        .expect("get")
        .expect("alpha is present after overwrite");
    assert_eq!(entry.value, b(b"two"));
    assert_eq!(entry.version, v2);

    put(store, b"empty-value", b"").await;
    assert_eq!(
        get_value(store, b"empty-value").await,
        Some(Bytes::new()),
        "an empty value is a value"
    );

    assert!(
        store
            .delete(b"alpha", Precondition::None)
            .await
            .expect("delete"),
        "deleting a live key returns true"
    );
    assert_eq!(
        store.get(b"alpha").await.expect("get"),
        None,
        "deleted key is gone"
    );
    assert!(
        !store
            .delete(b"alpha", Precondition::None)
            .await
            .expect("delete again"),
        "deleting an absent key returns false"
    );
    assert_eq!(
        get_value(store, b"empty-value").await,
        Some(Bytes::new()),
        "other keys are untouched"
    );
}

/// Versions increase across writes, keys and delete+recreate (no ABA).
pub async fn versions_strictly_increase(store: Arc<dyn Storage>) {
    let store = &*store;
    let mut last = 0;
    for round in 0..5 {
        for key in [&b"k1"[..], b"k2", b"k3"] {
            let version = put(store, key, format!("{round}").as_bytes()).await;
            assert!(
                version > last,
                "version {version} is not above the previous write's {last}"
            );
            assert!(version > 0, "versions start at 1");
            last = version;
        }
    }
    let before_delete = store.get(b"k1").await.expect("get").expect("k1").version;
    assert!(
        store
            .delete(b"k1", Precondition::None)
            .await
            .expect("delete")
    );
    let recreated = put(store, b"k1", b"again").await;
    assert!(
        recreated > last,
        "recreated key got version {recreated}, not above {last}"
    );
    assert_ne!(
        recreated, before_delete,
        "delete+recreate must not bring an old version back"
    );
    // A stale version from before the delete must not match the new entry.
    assert_conflict(
        store
            .put(b"k1", b(b"x"), opts(Precondition::Version(before_delete)))
            .await,
        Some(recreated),
        "CAS with a version from before delete+recreate",
    );
}

/// `Precondition::Absent` creates once; the second attempt conflicts.
pub async fn create_if_absent(store: Arc<dyn Storage>) {
    let store = &*store;
    let version = store
        .put(b"lock", b(b"owner-1"), opts(Precondition::Absent))
        .await
        .expect("create-if-absent on a free key");
    assert_conflict(
        store
            .put(b"lock", b(b"owner-2"), opts(Precondition::Absent))
            .await,
        Some(version),
        "second create-if-absent",
    );
    assert_eq!(
        get_value(store, b"lock").await,
        Some(b(b"owner-1")),
        "a failed create writes nothing"
    );
}

/// `Precondition::Version`: stale conflicts with the current version, the
/// right one succeeds.
pub async fn update_if_version(store: Arc<dyn Storage>) {
    let store = &*store;
    let v1 = put(store, b"doc", b"v1").await;
    let v2 = store
        .put(b"doc", b(b"v2"), opts(Precondition::Version(v1)))
        .await
        .expect("CAS with current version");
    assert!(v2 > v1);
    assert_conflict(
        store
            .put(b"doc", b(b"v3"), opts(Precondition::Version(v1)))
            .await,
        Some(v2),
        "CAS with a stale version",
    );
    let entry = store.get(b"doc").await.expect("get").expect("doc");
    assert_eq!(
        (entry.value, entry.version),
        (b(b"v2"), v2),
        "a failed CAS writes nothing"
    );
    let v3 = store
        .put(b"doc", b(b"v3"), opts(Precondition::Version(v2)))
        .await
        .expect("CAS after refresh");
    assert!(v3 > v2);
}

/// Delete with `Precondition::Version` and `Precondition::Absent`.
pub async fn delete_if_version(store: Arc<dyn Storage>) {
    let store = &*store;
    let v1 = put(store, b"item", b"1").await;
    let v2 = put(store, b"item", b"2").await;
    assert_conflict(
        store.delete(b"item", Precondition::Version(v1)).await,
        Some(v2),
        "delete with a stale version",
    );
    assert_conflict(
        store.delete(b"item", Precondition::Absent).await,
        Some(v2),
        "delete-if-absent of a live key",
    );
    assert_eq!(
        get_value(store, b"item").await,
        Some(b(b"2")),
        "a failed delete deletes nothing"
    );
    assert!(
        store
            .delete(b"item", Precondition::Version(v2))
            .await
            .expect("delete with the current version")
    );
    assert_eq!(store.get(b"item").await.expect("get"), None);
}

/// Preconditions on a key that was never written.
pub async fn preconditions_on_absent_key(store: Arc<dyn Storage>) {
    let store = &*store;
    assert_conflict(
        store
            .put(b"ghost", b(b"x"), opts(Precondition::Version(1)))
            .await,
        None,
        "update-if-version of an absent key",
    );
    assert_conflict(
        store.delete(b"ghost", Precondition::Version(1)).await,
        None,
        "delete-if-version of an absent key",
    );
    assert!(
        !store
            .delete(b"ghost", Precondition::Absent)
            .await
            .expect("delete-if-absent of an absent key holds"),
        "nothing was there to delete"
    );
    assert_eq!(
        store.get(b"ghost").await.expect("get"),
        None,
        "failed preconditions write nothing"
    );
}

/// An entry is visible until `expires_at`, then invisible to get, list and
/// preconditions, purged or not.
pub async fn ttl_hides_expired_entries(store: Arc<dyn Storage>) {
    let store = &*store;
    let expires_at = now_millis() + 200;
    let v_short = store
        .put(b"ttl/short", b(b"s"), expiring(expires_at))
        .await
        .expect("put with TTL");
    put(store, b"ttl/forever", b"f").await;
    let long_expiry = now_millis() + 3_600_000;
    store
        .put(b"ttl/long", b(b"l"), expiring(long_expiry))
        .await
        .expect("put with long TTL");

    let entry = store
        .get(b"ttl/short")
        .await
        .expect("get")
        .map(|e| (e.version, e.expires_at));
    if now_millis() + 20 < expires_at {
        assert_eq!(
            entry,
            Some((v_short, Some(expires_at))),
            "entry is visible with its expiry before it expires"
        );
    }
    sleep_past(expires_at).await;

    assert_eq!(
        store.get(b"ttl/short").await.expect("get"),
        None,
        "expired entry is invisible to get"
    );
    assert_eq!(
        list_all(store, prefix(b"ttl/"), 10).await,
        keys(&[b"ttl/forever", b"ttl/long"]),
        "expired entry is invisible to list"
    );
    assert_eq!(
        store
            .get(b"ttl/long")
            .await
            .expect("get")
            .and_then(|e| e.expires_at),
        Some(long_expiry),
        "a future expiry is kept"
    );
    assert_conflict(
        store
            .put(b"ttl/short", b(b"x"), opts(Precondition::Version(v_short)))
            .await,
        None,
        "CAS on an expired entry's version",
    );
    let recreated = store
        .put(b"ttl/short", b(b"new"), opts(Precondition::Absent))
        .await
        .expect("create-if-absent holds for an expired key");
    assert!(recreated > v_short);
    let entry = store
        .get(b"ttl/short")
        .await
        .expect("get")
        .expect("recreated");
    assert_eq!(
        (entry.value, entry.expires_at),
        (b(b"new"), None),
        "recreation replaces value and expiry"
    );
}

/// A put whose expiry is already past is invisible immediately.
pub async fn past_expiry_is_invisible_at_once(store: Arc<dyn Storage>) {
    let store = &*store;
    let past = now_millis().saturating_sub(1_000);
    store
        .put(b"stale", b(b"x"), expiring(past))
        .await
        .expect("put with past expiry");
    assert_eq!(
        store.get(b"stale").await.expect("get"),
        None,
        "an already-expired entry is invisible"
    );
    assert!(
        list(store, prefix(b""), 10, None).await.entries.is_empty(),
        "and not listed"
    );
    store
        .put(b"stale", b(b"y"), opts(Precondition::Absent))
        .await
        .expect("Absent holds for an expired key");
}

/// `purge_expired` removes expired entries (and only those) and counts them.
pub async fn purge_expired_removes_only_expired(store: Arc<dyn Storage>) {
    let store = &*store;
    let expires_at = now_millis() + 100;
    for i in 0..5 {
        store
            .put(
                format!("gone/{i}").as_bytes(),
                b(b"x"),
                expiring(expires_at),
            )
            .await
            .expect("put with TTL");
    }
    put(store, b"kept/plain", b"x").await;
    store
        .put(b"kept/later", b(b"x"), expiring(now_millis() + 3_600_000))
        .await
        .expect("put with long TTL");
    sleep_past(expires_at).await;

    let purged = store.purge_expired().await.expect("purge_expired");
    assert_eq!(
        purged, 5,
        "purge_expired counts the expired entries it removed"
    );
    assert_eq!(
        store.purge_expired().await.expect("purge again"),
        0,
        "nothing left to purge"
    );
    assert_eq!(
        store.stats().await.expect("stats").keys,
        2,
        "only live entries remain after a purge"
    );
    assert_eq!(
        list_all(store, prefix(b""), 10).await,
        keys(&[b"kept/later", b"kept/plain"])
    );
}

/// Prefix listing returns exactly the keys with the prefix, in order.
pub async fn list_by_prefix(store: Arc<dyn Storage>) {
    let store = &*store;
    for key in [
        "user/2", "user/10", "user/1", "users", "use", "user0", "zeta", "a",
    ] {
        put(store, key.as_bytes(), b"v").await;
    }
    let page = list(store, prefix(b"user/"), 100, None).await;
    assert_eq!(
        keys_of(&page),
        keys(&[b"user/1", b"user/10", b"user/2"]),
        "prefix listing, in byte order"
    );
    assert_eq!(
        page.next_cursor, None,
        "a complete listing has no next_cursor"
    );
    assert_eq!(
        page.entries[0].value,
        Some(b(b"v")),
        "listing returns values"
    );
    assert_eq!(page.entries[0].size, 1, "listing reports value sizes");
    assert_eq!(
        keys_of(&list(store, prefix(b"user"), 100, None).await),
        keys(&[b"user/1", b"user/10", b"user/2", b"user0", b"users"])
    );
    assert!(
        list(store, prefix(b"nothing"), 100, None)
            .await
            .entries
            .is_empty()
    );
}

/// Range listing covers `[start, end)`, either side unbounded.
pub async fn list_by_range(store: Arc<dyn Storage>) {
    let store = &*store;
    for key in ["a", "b", "ba", "c", "d"] {
        put(store, key.as_bytes(), b"v").await;
    }
    let check = |start: Option<&'static str>,
                 end: Option<&'static str>,
                 expected: &'static [&'static str]| async move {
        let page = list(
            store,
            range(start.map(str::as_bytes), end.map(str::as_bytes)),
            100,
            None,
        )
        .await;
        let expected: Vec<Bytes> = expected.iter().map(|key| b(key.as_bytes())).collect();
        assert_eq!(keys_of(&page), expected, "range {start:?}..{end:?}");
        assert_eq!(page.next_cursor, None);
    };
    check(Some("b"), Some("d"), &["b", "ba", "c"]).await;
    check(Some("bb"), Some("c"), &[]).await;
    check(None, Some("b"), &["a"]).await;
    check(Some("c"), None, &["c", "d"]).await;
    check(None, None, &["a", "b", "ba", "c", "d"]).await;
    check(Some("b"), Some("b"), &[]).await;
    // A cursor inside the range resumes strictly after it; one before the
    // start is ignored; one at or past the end gives an empty page.
    let page = list(store, range(Some(b"b"), Some(b"d")), 100, Some(b(b"ba"))).await;
    assert_eq!(keys_of(&page), keys(&[b"c"]));
    let page = list(store, range(Some(b"b"), Some(b"d")), 100, Some(b(b"a"))).await;
    assert_eq!(keys_of(&page), keys(&[b"b", b"ba", b"c"]));
    let page = list(store, range(Some(b"b"), Some(b"d")), 100, Some(b(b"d"))).await;
    assert!(page.entries.is_empty() && page.next_cursor.is_none());
}

/// Paging through 250 keys returns each exactly once, in order.
pub async fn list_pagination_returns_everything_once(store: Arc<dyn Storage>) {
    let store = &*store;
    let expected: Vec<Bytes> = (0..250)
        .map(|i| b(format!("page/{i:04}").as_bytes()))
        .collect();
    // Written out of order on purpose.
    for i in (0..250).rev().step_by(2).chain((0..250).step_by(2)) {
        put(
            store,
            format!("page/{i:04}").as_bytes(),
            format!("value {i}").as_bytes(),
        )
        .await;
    }
    put(store, b"other/1", b"x").await;
    for limit in [1, 7, 50, 249, 250, 1000] {
        let all = list_all(store, prefix(b"page/"), limit).await;
        assert_eq!(all.len(), 250, "limit {limit}: every key exactly once");
        assert_eq!(
            all, expected,
            "limit {limit}: keys in order, no duplicates, none missing"
        );
    }
    // Exactly divisible: the last full page already says there is no more.
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = list(store, prefix(b"page/"), 50, cursor).await;
        pages += 1;
        assert_eq!(page.entries.len(), 50, "page {pages} of 5 is full");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(
            pages < 5,
            "250 keys in pages of 50 take 5 pages, next_cursor must be None on the last"
        );
    }
    assert_eq!(pages, 5);
    // The cursor may name a key that no longer exists.
    assert!(
        store
            .delete(b"page/0100", Precondition::None)
            .await
            .expect("delete")
    );
    let page = list(store, prefix(b"page/"), 2, Some(b(b"page/0100"))).await;
    assert_eq!(
        keys_of(&page),
        keys(&[b"page/0101", b"page/0102"]),
        "resume strictly after a deleted cursor"
    );
}

/// Expired and deleted keys never take a slot in a page.
pub async fn list_skips_expired_and_deleted(store: Arc<dyn Storage>) {
    let store = &*store;
    let past = now_millis().saturating_sub(1_000);
    for i in 0..10 {
        let key = format!("mix/{i}");
        if i % 2 == 0 {
            put(store, key.as_bytes(), b"live").await;
        } else {
            store
                .put(key.as_bytes(), b(b"dead"), expiring(past))
                .await
                .expect("put expired");
        }
    }
    put(store, b"mix/x-deleted", b"x").await;
    assert!(
        store
            .delete(b"mix/x-deleted", Precondition::None)
            .await
            .expect("delete")
    );
    let page = list(store, prefix(b"mix/"), 3, None).await;
    assert_eq!(keys_of(&page), keys(&[b"mix/0", b"mix/2", b"mix/4"]));
    assert_eq!(page.next_cursor, Some(b(b"mix/4")));
    let page = list(store, prefix(b"mix/"), 2, page.next_cursor).await;
    assert_eq!(keys_of(&page), keys(&[b"mix/6", b"mix/8"]));
    assert_eq!(
        page.next_cursor, None,
        "only expired or deleted keys remain: the listing is complete"
    );
}

/// The empty prefix (and the unbounded range) list every key.
pub async fn empty_prefix_lists_everything(store: Arc<dyn Storage>) {
    let store = &*store;
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let key = format!("{}/{i}", ["x", "a", "m"][i % 3]);
        put(store, key.as_bytes(), b"v").await;
        expected.insert(b(key.as_bytes()));
    }
    let expected: Vec<Bytes> = expected.into_iter().collect();
    assert_eq!(
        list_all(store, prefix(b""), 4).await,
        expected,
        "empty prefix"
    );
    assert_eq!(
        list_all(store, range(None, None), 4).await,
        expected,
        "unbounded range"
    );
}

/// One failing precondition: nothing of the batch is applied, the error is
/// Conflict.
pub async fn batch_is_atomic(store: Arc<dyn Storage>) {
    let store = &*store;
    let v_a = put(store, b"a", b"old-a").await;
    put(store, b"b", b"old-b").await;
    let ops = vec![
        BatchOp::Put {
            key: b(b"a"),
            value: b(b"new-a"),
            options: opts(Precondition::Version(v_a)),
        },
        BatchOp::Delete {
            key: b(b"b"),
            precondition: Precondition::None,
        },
        BatchOp::Put {
            key: b(b"c"),
            value: b(b"new-c"),
            options: PutOptions::default(),
        },
        BatchOp::Put {
            key: b(b"a"),
            value: b(b"again"),
            options: opts(Precondition::Absent),
        },
    ];
    let result = store.batch(ops).await;
    assert!(
        matches!(result, Err(StorageError::Conflict { .. })),
        "a batch with a failing precondition fails with Conflict, got {result:?}"
    );
    assert_eq!(
        get_value(store, b"a").await,
        Some(b(b"old-a")),
        "failed batch: first put not applied"
    );
    assert_eq!(
        get_value(store, b"b").await,
        Some(b(b"old-b")),
        "failed batch: delete not applied"
    );
    assert_eq!(
        get_value(store, b"c").await,
        None,
        "failed batch: later put not applied"
    );

    // The failing operation is last: everything before it is rolled back,
    // and the Conflict carries the version committed in the store.
    let v_b = store.get(b"b").await.expect("get").expect("b").version;
    let ops = vec![
        BatchOp::Put {
            key: b(b"c"),
            value: b(b"new-c"),
            options: PutOptions::default(),
        },
        BatchOp::Delete {
            key: b(b"a"),
            precondition: Precondition::Version(v_a),
        },
        BatchOp::Put {
            key: b(b"b"),
            value: b(b"new-b"),
            options: opts(Precondition::Version(v_b + 1_000)),
        },
    ];
    assert_conflict(
        store.batch(ops).await,
        Some(v_b),
        "batch with a stale version on its last operation",
    );
    assert_eq!(
        get_value(store, b"a").await,
        Some(b(b"old-a")),
        "failed batch: delete not applied"
    );
    assert_eq!(
        get_value(store, b"c").await,
        None,
        "failed batch: put not applied"
    );

    let next = put(store, b"d", b"d").await;
    assert!(next > v_b, "versions keep increasing after a failed batch");
}

/// Each put of a batch gets its own increasing version, in order; later
/// operations see earlier ones.
pub async fn batch_versions_and_ordering(store: Arc<dyn Storage>) {
    let store = &*store;
    let v_old = put(store, b"existing", b"x").await;
    let ops = vec![
        BatchOp::Put {
            key: b(b"one"),
            value: b(b"1"),
            options: opts(Precondition::Absent),
        },
        BatchOp::Delete {
            key: b(b"existing"),
            precondition: Precondition::Version(v_old),
        },
        BatchOp::Put {
            key: b(b"two"),
            value: b(b"2"),
            options: PutOptions::default(),
        },
        BatchOp::Put {
            key: b(b"existing"),
            value: b(b"re"),
            options: opts(Precondition::Absent),
        },
        BatchOp::Put {
            key: b(b"one"),
            value: b(b"1b"),
            options: PutOptions::default(),
        },
    ];
    let versions = store.batch(ops).await.expect("batch");
    assert_eq!(versions.len(), 5, "one result per operation");
    assert_eq!(versions[1], None, "a delete has no version");
    let puts: Vec<Version> = [0, 2, 3, 4]
        .iter()
        .map(|&i| versions[i].unwrap_or_else(|| panic!("put {i} of the batch has no version")))
        .collect();
    assert!(
        puts.windows(2).all(|w| w[0] < w[1]),
        "batch put versions increase in order: {puts:?}"
    );
    assert!(puts[0] > v_old, "batch versions are above earlier writes");

    let one = store.get(b"one").await.expect("get").expect("one");
    assert_eq!(
        (one.value, one.version),
        (b(b"1b"), puts[3]),
        "the last write of a key in a batch wins"
    );
    let existing = store
        .get(b"existing")
        .await
        .expect("get")
        .expect("existing");
    assert_eq!((existing.value, existing.version), (b(b"re"), puts[2]));
    assert_eq!(get_value(store, b"two").await, Some(b(b"2")));

    // A precondition sees the state left by earlier operations in the batch;
    // the Conflict carries the version committed in the store (absent here),
    // never the one the batch planned, which was never written.
    let ops = vec![
        BatchOp::Put {
            key: b(b"three"),
            value: b(b"3"),
            options: PutOptions::default(),
        },
        BatchOp::Delete {
            key: b(b"three"),
            precondition: Precondition::Absent,
        },
    ];
    assert_conflict(
        store.batch(ops).await,
        None,
        "delete-if-absent after a put in the same batch",
    );
    assert_eq!(get_value(store, b"three").await, None);
    // A put earlier in the batch gives its key a real version: no
    // placeholder (such as 0) matches it.
    for guess in [0, 1, u64::MAX] {
        let ops = vec![
            BatchOp::Put {
                key: b(b"four"),
                value: b(b"4"),
                options: PutOptions::default(),
            },
            BatchOp::Put {
                key: b(b"four"),
                value: b(b"4b"),
                options: opts(Precondition::Version(guess)),
            },
        ];
        assert_conflict(
            store.batch(ops).await,
            None,
            &format!("if_version {guess} on a key put earlier in the batch"),
        );
        assert_eq!(get_value(store, b"four").await, None);
    }
    let ops = vec![
        BatchOp::Delete {
            key: b(b"two"),
            precondition: Precondition::None,
        },
        BatchOp::Put {
            key: b(b"two"),
            value: b(b"2b"),
            options: opts(Precondition::Absent),
        },
    ];
    let versions = store
        .batch(ops)
        .await
        .expect("create-if-absent after a delete in the same batch");
    assert_eq!(get_value(store, b"two").await, Some(b(b"2b")));
    assert!(versions[1].is_some_and(|v| v > puts[3]));
}

/// An empty batch succeeds and changes nothing.
pub async fn empty_batch_is_a_no_op(store: Arc<dyn Storage>) {
    let store = &*store;
    assert_eq!(
        store.batch(Vec::new()).await.expect("empty batch"),
        Vec::<Option<Version>>::new()
    );
    assert_eq!(store.stats().await.expect("stats").keys, 0);
}

/// Empty or over-long keys, inverted ranges and a zero limit are Invalid,
/// and change nothing.
pub async fn invalid_input_is_rejected(store: Arc<dyn Storage>) {
    let store = &*store;
    assert_invalid(store.get(b"").await, "get with an empty key");
    assert_invalid(
        store.put(b"", b(b"x"), PutOptions::default()).await,
        "put with an empty key",
    );
    assert_invalid(
        store.delete(b"", Precondition::None).await,
        "delete with an empty key",
    );
    let too_long = vec![b'k'; MAX_KEY_LEN + 1];
    assert_invalid(
        store.put(&too_long, b(b"x"), PutOptions::default()).await,
        "put with a key over MAX_KEY_LEN",
    );
    assert_invalid(
        store.get(&too_long).await,
        "get with a key over MAX_KEY_LEN",
    );
    let longest = vec![b'k'; MAX_KEY_LEN];
    store
        .put(&longest, b(b"x"), PutOptions::default())
        .await
        .expect("a key of exactly MAX_KEY_LEN is accepted");
    assert!(
        store
            .delete(&longest, Precondition::None)
            .await
            .expect("delete the longest key")
    );

    assert_invalid(
        store
            .list(&ListQuery::new(range(Some(b"b"), Some(b"a")), 10))
            .await,
        "range with start > end",
    );
    assert_invalid(store.list(&ListQuery::new(prefix(b""), 0)).await, "limit 0");

    let ops = vec![
        BatchOp::Put {
            key: b(b"fine"),
            value: b(b"x"),
            options: PutOptions::default(),
        },
        BatchOp::Put {
            key: Bytes::new(),
            value: b(b"x"),
            options: PutOptions::default(),
        },
    ];
    assert_invalid(store.batch(ops).await, "batch with an empty key");
    assert_eq!(
        store.get(b"fine").await.expect("get"),
        None,
        "an invalid batch applies nothing"
    );
}

/// Keys and values are arbitrary bytes, 0x00 included; order is bytewise.
pub async fn binary_keys_and_values(store: Arc<dyn Storage>) {
    let store = &*store;
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let value: Vec<u8> = every_byte
        .iter()
        .rev()
        .chain(&every_byte)
        .copied()
        .collect();
    let mut written: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x00, 0x01],
        vec![0x01],
        vec![0x7f],
        vec![0x80],
        vec![0xc3, 0x28], // invalid UTF-8
        vec![0xfe, 0xff],
        every_byte.clone(),
        vec![b'a', 0x00, b'b'],
        vec![b'a'],
    ];
    for key in &written {
        put(store, key, &value).await;
    }
    for key in &written {
        assert_eq!(
            get_value(store, key).await,
            Some(b(&value)),
            "binary key {key:?} round-trips its value"
        );
    }
    written.sort();
    let listed = list_all(store, prefix(b""), 3).await;
    let expected: Vec<Bytes> = written.iter().map(|key| b(key)).collect();
    assert_eq!(listed, expected, "binary keys list in bytewise order");
    assert_eq!(
        keys_of(&list(store, prefix(&[0x00]), 100, None).await),
        keys(&[&[0x00], &[0x00, 0x00], &[0x00, 0x01], &every_byte]),
        "a 0x00 prefix"
    );
    assert_eq!(
        keys_of(&list(store, prefix(b"a\x00"), 100, None).await),
        keys(&[b"a\x00b"])
    );
}

/// Keys starting with 0xFF are ordinary keys to a backend.
pub async fn private_keys_are_plain_keys(store: Arc<dyn Storage>) {
    let store = &*store;
    let private = [PRIVATE_KEY_PREFIX, b'h', b'e', b'a', b'l', b't', b'h'];
    let v1 = store
        .put(&private, b(b"canary"), opts(Precondition::Absent))
        .await
        .expect("put a private key");
    store
        .put(&private, b(b"canary 2"), opts(Precondition::Version(v1)))
        .await
        .expect("CAS a private key");
    put(store, &[PRIVATE_KEY_PREFIX], b"bare").await;
    put(store, &[PRIVATE_KEY_PREFIX, PRIVATE_KEY_PREFIX], b"double").await;
    put(store, b"public", b"p").await;
    assert_eq!(get_value(store, &private).await, Some(b(b"canary 2")));
    assert_eq!(
        keys_of(&list(store, prefix(&[PRIVATE_KEY_PREFIX]), 10, None).await),
        keys(&[
            &[PRIVATE_KEY_PREFIX],
            &private,
            &[PRIVATE_KEY_PREFIX, PRIVATE_KEY_PREFIX]
        ])
    );
    assert_eq!(
        list_all(store, prefix(b""), 10).await.last(),
        Some(&b(&[PRIVATE_KEY_PREFIX, PRIVATE_KEY_PREFIX])),
        "private keys sort after every public key"
    );
    assert!(
        store
            .delete(&private, Precondition::None)
            .await
            .expect("delete a private key")
    );
}

/// A 1 MiB value round-trips through put, get and list.
pub async fn large_value(store: Arc<dyn Storage>) {
    let store = &*store;
    let value: Bytes = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(31) % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let version = store
        .put(b"big", value.clone(), PutOptions::default())
        .await
        .expect("put 1 MiB");
    let entry = store.get(b"big").await.expect("get").expect("big");
    assert_eq!(entry.version, version);
    assert!(entry.value == value, "1 MiB value comes back byte for byte");
    let page = list(store, prefix(b"big"), 1, None).await;
    assert!(
        page.entries.len() == 1 && page.entries[0].value.as_ref() == Some(&value),
        "list returns the 1 MiB value intact"
    );
}

/// A page stops before the entry that would take it past `max_bytes` (keys
/// plus values) and returns a cursor; every entry still comes back exactly
/// once, and an entry larger than the budget alone is a page of its own.
pub async fn list_pages_are_bounded_by_bytes(store: Arc<dyn Storage>) {
    let store = store.as_ref();
    for i in 0..10u8 {
        put(store, &[b'p', b'/', b'0' + i], &[i; 100]).await;
    }
    put(store, b"p/big", &[7u8; 1000]).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let query = ListQuery {
            cursor: cursor.take(),
            max_bytes: 350,
            ..ListQuery::new(prefix(b"p/"), 100)
        };
        let page = store.list(&query).await.expect("list");
        pages += 1;
        let bytes: usize = page
            .entries
            .iter()
            .map(|e| e.key.len() + e.value.as_ref().map_or(0, Bytes::len))
            .sum();
        assert!(
            bytes <= 350 || page.entries.len() == 1,
            "page {pages} holds {bytes} bytes in {} entries",
            page.entries.len()
        );
        for e in &page.entries {
            assert_eq!(e.value.as_ref().map(Bytes::len), Some(e.size as usize));
        }
        seen.extend(keys_of(&page));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    let mut expected: Vec<Bytes> = (0..10u8).map(|i| b(&[b'p', b'/', b'0' + i])).collect();
    expected.push(b(b"p/big"));
    assert_eq!(seen, expected, "every entry exactly once, in order");
    assert!(
        pages >= 4,
        "3 entries of 103 bytes fit in 350; got {pages} pages"
    );
}

/// Without values a listing carries sizes, and the byte budget counts keys
/// only.
pub async fn list_without_values_reports_sizes(store: Arc<dyn Storage>) {
    let store = store.as_ref();
    put(store, b"s/a", &[1u8; 300]).await;
    put(store, b"s/b", b"").await;
    let page = store
        .list(&ListQuery {
            values: false,
            max_bytes: 10,
            ..ListQuery::new(prefix(b"s/"), 10)
        })
        .await
        .expect("list");
    let got: Vec<(Bytes, u64, Option<Bytes>)> = page
        .entries
        .into_iter()
        .map(|e| (e.key, e.size, e.value))
        .collect();
    assert_eq!(
        got,
        vec![(b(b"s/a"), 300, None), (b(b"s/b"), 0, None)],
        "keys and sizes, no values; two 3-byte keys fit in 10 bytes"
    );
    assert_eq!(page.next_cursor, None);
}

/// 16 tasks increment one counter with compare-and-set and retries; no
/// update is lost.
pub async fn concurrent_compare_and_set(store: Arc<dyn Storage>) {
    const TASKS: u64 = 16;
    const INCREMENTS: u64 = 25;
    store
        .put(b"counter", b(b"0"), opts(Precondition::Absent))
        .await
        .expect("create counter");

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let (mut successes, mut conflicts) = (0u64, 0u64);
            while successes < INCREMENTS {
                let entry = store
                    .get(b"counter")
                    .await
                    .expect("get counter")
                    .expect("counter exists");
                let count: u64 = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .unwrap_or_else(|| panic!("task {task}: counter holds a non-number"));
                let next = Bytes::from((count + 1).to_string());
                match store
                    .put(b"counter", next, opts(Precondition::Version(entry.version)))
                    .await
                {
                    Ok(version) => {
                        assert!(version > entry.version, "a CAS write gets a higher version");
                        successes += 1;
                    }
                    Err(StorageError::Conflict { .. }) => {
                        conflicts += 1;
                        assert!(conflicts < 1_000_000, "task {task}: CAS never succeeds");
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("task {task}: unexpected error {e}"),
                }
            }
            successes
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a CAS task panicked");
    }
    assert_eq!(total, TASKS * INCREMENTS);
    let value = get_value(&*store, b"counter").await.expect("counter");
    assert_eq!(
        value,
        b(total.to_string().as_bytes()),
        "final count equals the number of successful CAS writes"
    );
}

/// `stats` counts keys and their bytes.
pub async fn stats_counts_keys(store: Arc<dyn Storage>) {
    let store = &*store;
    let empty = store.stats().await.expect("stats");
    assert_eq!((empty.keys, empty.bytes), (0, 0), "a fresh store is empty");
    put(store, b"s1", b"12345").await;
    put(store, b"s2", b"").await;
    put(store, b"s3", b"xyz").await;
    put(store, b"s3", b"xy").await;
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.keys, 3, "three keys");
    assert!(
        stats.bytes >= 6 + 5 + 2,
        "bytes ({}) covers keys and values",
        stats.bytes
    );
    assert!(
        store
            .delete(b"s1", Precondition::None)
            .await
            .expect("delete")
    );
    assert_eq!(
        store.stats().await.expect("stats").keys,
        2,
        "deletes are counted"
    );
}

/// `flush` succeeds, and the store keeps working and holds the same data.
pub async fn flush_keeps_data(store: Arc<dyn Storage>) {
    let store = &*store;
    store.flush().await.expect("flush of an empty store");
    let v = put(store, b"durable", b"yes").await;
    store.flush().await.expect("flush after a write");
    store.flush().await.expect("flush with nothing new");
    let entry = store.get(b"durable").await.expect("get").expect("durable");
    assert_eq!((entry.value, entry.version), (b(b"yes"), v));
    let v2 = put(store, b"durable", b"still").await;
    assert!(v2 > v, "versions keep increasing after a flush");
}
