//! Faults against real stand-ins: a wrong secret is a clear authentication
//! error; stopping the stand-in mid-run makes requests fail with clear
//! errors after the configured retries; after a restart the store recovers
//! by itself and no acknowledged write is lost. Secrets never appear in
//! errors or Debug output.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use orbit_cloud::CloudStorage;
use orbit_storage::{Precondition, PutOptions, SecretRef, Storage, StorageError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_s3_secret_is_a_clear_authentication_error() {
    let weed = support::weed();
    let mut config = weed.config(&support::fresh_prefix("badauth"));
    let wrong = "definitely-the-wrong-secret-42";
    config.secret_access_key = Some(support::secret_env("ORBIT_TEST_WRONG", wrong));
    let store = orbit_cloud::open_s3(&config).unwrap();
    // Let SeaweedFS finish starting (a good store answers first).
    support::ready(orbit_cloud::open_s3(&weed.config("probe")).unwrap()).await;
    let error = store
        .put(b"k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .expect_err("a wrong secret must fail");
    let message = error.to_string();
    eprintln!("wrong secret: {message}");
    assert!(
        message.contains("access denied") || message.contains("authentication failed"),
        "{message}"
    );
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains(wrong), "the secret leaked: {message}");
    assert!(store.probe().await.is_err());
    let stats = store.remote_stats();
    assert!(
        stats.failures >= 1 && stats.last_error.is_some(),
        "{stats:?}"
    );
    assert!(!format!("{store:?}").contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_names_the_setting_not_the_value() {
    let weed = support::weed();
    let mut config = weed.config("x");
    config.secret_access_key = Some(SecretRef::Env("ORBIT_TEST_SURELY_UNSET_VAR".into()));
    let error = orbit_cloud::open_s3(&config).expect_err("unset secret");
    let message = error.to_string();
    assert!(message.contains("ORBIT_S3_SECRET_ACCESS_KEY"), "{message}");
    assert!(message.contains("ORBIT_TEST_SURELY_UNSET_VAR"), "{message}");
    // Plain http with enable_ssl on is refused.
    let mut config = weed.config("x");
    config.enable_ssl = true;
    let message = orbit_cloud::open_s3(&config).unwrap_err().to_string();
    assert!(message.contains("ORBIT_S3_ENABLE_SSL"), "{message}");
}

/// Increments counters until `stop`, recording acknowledged increments and
/// ambiguous outcomes; returns (acked per key, unknown, errors seen).
async fn incrementer(
    store: Arc<CloudStorage>,
    keys: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Vec<AtomicU64>>,
    unknown: Arc<AtomicU64>,
    errors: Arc<parking_lot_free::Errors>,
) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let slot = i % keys;
        i += 1;
        let key = format!("c{slot}");
        let current = match store.get(key.as_bytes()).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (count, precondition) = match &current {
            None => (0u64, Precondition::Absent),
            Some(e) => (
                std::str::from_utf8(&e.value).unwrap().parse().unwrap(),
                Precondition::Version(e.version),
            ),
        };
        let options = PutOptions {
            precondition,
            expires_at: None,
        };
        match store
            .put(
                key.as_bytes(),
                Bytes::from((count + 1).to_string()),
                options,
            )
            .await
        {
            Ok(_) => {
                acked[slot].fetch_add(1, Ordering::Relaxed);
            }
            Err(StorageError::Conflict { .. }) => {}
            Err(e) => {
                let message = e.to_string();
                if message.contains("outcome unknown") {
                    unknown.fetch_add(1, Ordering::Relaxed);
                }
                errors.push(message);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

mod parking_lot_free {
    use std::sync::Mutex;
    #[derive(Default)]
    pub struct Errors(Mutex<Vec<(std::time::Instant, String)>>);
    impl Errors {
        pub fn push(&self, message: String) {
            self.0
                .lock()
                .unwrap()
                .push((std::time::Instant::now(), message));
        }
        pub fn all(&self) -> Vec<(std::time::Instant, String)> {
            self.0.lock().unwrap().clone()
        }
    }
}

/// Runs 4 incrementers on 2 keys, stops the stand-in (SeaweedFS: SIGKILL;
/// Azurite: SIGTERM, see `StandIn::stop`), checks the errors,
/// restarts it, checks recovery and that every acknowledged increment is
/// in the final counts.
async fn outage(
    provider: &str,
    open: impl Fn() -> Arc<CloudStorage>,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
) {
    const KEYS: usize = 2;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let unknown = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(parking_lot_free::Errors::default());
    let stores: Vec<_> = (0..4).map(|_| open()).collect();
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            tokio::spawn(incrementer(
                store.clone(),
                KEYS,
                stop.clone(),
                acked.clone(),
                unknown.clone(),
                errors.clone(),
            ))
        })
        .collect();
    let total = || acked.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(60);
    while total() < 10 {
        assert!(
            Instant::now() < deadline,
            "{provider}: no progress before the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed_at = Instant::now();
    kill();
    // Errors must come, and come bounded by the retry budget.
    let deadline = Instant::now() + Duration::from_secs(60);
    while errors.all().iter().all(|(at, _)| *at < killed_at) {
        assert!(
            Instant::now() < deadline,
            "{provider}: no error within 60 s of the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_error = errors
        .all()
        .into_iter()
        .find(|(at, _)| *at >= killed_at)
        .unwrap();
    eprintln!(
        "{provider}: first error {:?} after the kill: {}",
        first_error.0 - killed_at,
        first_error.1
    );
    assert!(
        first_error.1.contains(provider),
        "error names the provider: {}",
        first_error.1
    );
    let during = total();
    tokio::time::sleep(Duration::from_secs(2)).await;
    restart();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(90);
    while total() < during + 10 {
        assert!(
            Instant::now() < deadline,
            "{provider}: no recovery within 90 s of the restart; last errors: {:?}",
            errors.all().iter().rev().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{provider}: recovered {:?} after the restart",
        restarted.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let stats = stores[0].remote_stats();
    eprintln!("{provider}: remote stats of one handle: {stats:?}");
    assert!(
        stats.failures >= 1 && stats.last_error.is_some(),
        "{stats:?}"
    );
    assert!(
        stats.retries >= 1,
        "object_store retried before failing: {stats:?}"
    );
    let store = open();
    let unknown = unknown.load(Ordering::Relaxed);
    for slot in 0..KEYS {
        let count: u64 = store
            .get(format!("c{slot}").as_bytes())
            .await
            .unwrap()
            .map_or(0, |e| {
                std::str::from_utf8(&e.value).unwrap().parse().unwrap()
            });
        let acked = acked[slot].load(Ordering::Relaxed);
        eprintln!(
            "{provider}: key c{slot}: count {count}, acknowledged {acked}, unknown outcomes (all keys) {unknown}"
        );
        assert!(
            count >= acked,
            "{provider}: an acknowledged increment was lost"
        );
        assert!(
            count <= acked + unknown,
            "{provider}: an increment reported failed was applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_outage_fails_clearly_and_recovers() {
    let weed = support::Weed::start("weed-outage");
    let prefix = support::fresh_prefix("outage-s3");
    let config = {
        let mut c = weed.config(&prefix);
        c.connection_timeout = Duration::from_secs(1);
        c.read_timeout = Some(Duration::from_secs(5));
        c.write_timeout = Some(Duration::from_secs(5));
        c.retry_count = 2;
        c
    };
    support::ready(orbit_cloud::open_s3(&config).unwrap()).await;
    outage(
        "s3",
        || orbit_cloud::open_s3(&config).unwrap(),
        || weed.process.kill(),
        || {
            weed.process.restart();
            weed.wait_ready();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_outage_fails_clearly_and_recovers() {
    let azurite = support::Azurite::start("azurite-outage");
    let prefix = support::fresh_prefix("outage-az");
    let config = {
        let mut c = azurite.config(&prefix);
        c.connection_timeout = Duration::from_secs(1);
        c.retry_count = 2;
        c
    };
    support::ready(orbit_cloud::open_azure(&config).unwrap()).await;
    outage(
        "azure",
        || orbit_cloud::open_azure(&config).unwrap(),
        || azurite.process.stop(),
        || {
            azurite.process.restart();
            azurite.wait_ready();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_azure_key_is_a_clear_authentication_error() {
    let azurite = support::azurite();
    let mut config = azurite.config(&support::fresh_prefix("badauth-az"));
    // A well-formed (base64) but wrong key.
    let wrong = support::base64_encode(b"this is not the azurite account key!");
    config.account_key = Some(support::secret_env("ORBIT_TEST_WRONG_AZ", &wrong));
    let store = orbit_cloud::open_azure(&config).unwrap();
    let error = store.probe().await.expect_err("a wrong key must fail");
    let message = error.to_string();
    eprintln!("wrong azure key: {message}");
    assert!(
        message.contains("access denied") || message.contains("authentication failed"),
        "{message}"
    );
    assert!(!message.contains(&wrong), "the key leaked: {message}");
}
