//! Runs the storage conformance suite on the memory backend, without and
//! with disk backup, so both configurations honour the whole contract.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use orbit_conformance as conformance;
use orbit_memory::MemoryStorage;
use orbit_storage::{
    BatchOp, Entry, ListPage, ListQuery, MemoryConfig, Precondition, PutOptions, Storage,
    StorageResult, StorageStats, Version,
};

fn config(disk_backup: bool, backup_path: String) -> MemoryConfig {
    MemoryConfig {
        max_entries: 1_000_000,
        disk_backup,
        backup_path,
        ..MemoryConfig::defaults("/unused").expect("the memory defaults")
    }
}

async fn open_plain() -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::open(&config(false, String::new())).expect("open the memory backend"))
}

/// A fresh store whose snapshot lives in its own, not yet existing,
/// directory under Cargo's per-target temporary directory (kept after the
/// test, so a failed case can be inspected).
async fn open_with_backup() -> Arc<dyn Storage> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("memory_conformance")
        .join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("clean {}: {e}", dir.display()),
    }
    let path = dir.join("nested").join("orbit_backup.json");
    Arc::new(
        MemoryStorage::open(&config(true, path.display().to_string()))
            .expect("open with disk backup"),
    )
}

mod plain {
    orbit_conformance::conformance_tests!(super::open_plain);
}

mod disk_backup {
    orbit_conformance::conformance_tests!(super::open_with_backup);
}

/// `run_all` runs the same cases in one test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_plain_memory() {
    conformance::run_all(open_plain).await;
}

// ---- the suite can fail ------------------------------------------------------

/// A memory store with one deliberate contract violation.
struct Broken {
    inner: MemoryStorage,
    bug: Bug,
}

#[derive(Clone, Copy, Debug)]
enum Bug {
    IgnoresPreconditions,
    ListIgnoresLimit,
    ForgetsExpiry,
    AcceptsEmptyKeys,
}

#[async_trait::async_trait]
impl Storage for Broken {
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        if matches!(self.bug, Bug::AcceptsEmptyKeys) && key.is_empty() {
            return Ok(None);
        }
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &[u8],
        value: Bytes,
        mut options: PutOptions,
    ) -> StorageResult<Version> {
        match self.bug {
            Bug::IgnoresPreconditions => options.precondition = Precondition::None,
            Bug::ForgetsExpiry => options.expires_at = None,
            _ => {}
        }
        self.inner.put(key, value, options).await
    }
    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        self.inner.delete(key, precondition).await
    }
    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        let mut query = query.clone();
        if matches!(self.bug, Bug::ListIgnoresLimit) {
            query.limit = usize::MAX;
        }
        self.inner.list(&query).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        self.inner.batch(ops).await
    }
    async fn purge_expired(&self) -> StorageResult<u64> {
        self.inner.purge_expired().await
    }
    async fn stats(&self) -> StorageResult<StorageStats> {
        self.inner.stats().await
    }
    async fn flush(&self) -> StorageResult<()> {
        self.inner.flush().await
    }
}

fn broken(bug: Bug) -> Arc<dyn Storage> {
    let inner = MemoryStorage::open(&config(false, String::new())).expect("open");
    Arc::new(Broken { inner, bug })
}

/// Each bug is caught by the case written for it (a case signals failure by
/// panicking, which surfaces here as a panicked task).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_broken_backends() {
    let caught = |result: Result<(), tokio::task::JoinError>| result.is_err_and(|e| e.is_panic());
    let store = || broken(Bug::IgnoresPreconditions);
    assert!(caught(
        tokio::spawn(conformance::create_if_absent(store())).await
    ));
    assert!(caught(
        tokio::spawn(conformance::update_if_version(store())).await
    ));
    // Not asserted for `concurrent_compare_and_set`: whether ignored
    // preconditions lose an update there depends on the scheduler, so it
    // would make this test flaky; the two cases above catch the bug always.
    let store = broken(Bug::ListIgnoresLimit);
    assert!(caught(
        tokio::spawn(conformance::list_pagination_returns_everything_once(store)).await
    ));
    let store = broken(Bug::ForgetsExpiry);
    assert!(caught(
        tokio::spawn(conformance::ttl_hides_expired_entries(store)).await
    ));
    let store = broken(Bug::AcceptsEmptyKeys);
    assert!(caught(
        tokio::spawn(conformance::invalid_input_is_rejected(store)).await
    ));
    // And the same cases pass on the real thing.
    conformance::create_if_absent(open_plain().await).await;
    conformance::list_pagination_returns_everything_once(open_plain().await).await;
}
