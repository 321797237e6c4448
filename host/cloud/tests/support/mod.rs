//! Test support: the stand-ins (SeaweedFS for S3, Azurite for Azure, the
//! GCS XML-API test server) come from `orbit-test-support`, one launcher
//! each, shared with the server's tests and the benchmarks; each is started
//! once per test binary. Here: the fault-injecting `ObjectStore` wrapper,
//! fresh prefixes, and waiting for a store to answer.

#![allow(dead_code)]

pub mod fault_store;

pub use orbit_test_support::standins::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use orbit_cloud::CloudStorage;

// ---- stores ----------------------------------------------------------------

/// A prefix no other test (or earlier run) used.
pub fn fresh_prefix(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test/{tag}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn ready(store: Arc<CloudStorage>) -> Arc<CloudStorage> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.probe().await {
            Ok(()) => return store,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("stand-in not ready: {e}"),
        }
    }
}
