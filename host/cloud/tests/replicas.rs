//! Many replicas on one bucket: 8 worker processes
//! (`orbit-cloud-cas-worker`) do compare-and-set increments on the same
//! counters under one prefix; the final counts must equal the number of
//! acknowledged increments, on S3 (SeaweedFS) and Azure (Azurite).
//! `ORBIT_CLOUD_LONG=1` runs 5x more increments.

mod support;

use std::process::Command;

use orbit_storage::Storage;

const WORKERS: usize = 8;
const KEYS: usize = 2;

fn ops_per_worker() -> usize {
    if std::env::var_os("ORBIT_CLOUD_LONG").is_some() {
        100
    } else {
        20
    }
}

struct Run {
    acked: Vec<u64>,
    unknown: u64,
}

fn run_workers(
    provider: &str,
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    key_file: &str,
    secret_file: &str,
) -> Run {
    let children: Vec<_> = (0..WORKERS)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_orbit-cloud-cas-worker"))
                .args([
                    "--provider",
                    provider,
                    "--endpoint",
                    endpoint,
                    "--bucket",
                    bucket,
                    "--prefix",
                    prefix,
                    "--key-file",
                    key_file,
                    "--secret-file",
                    secret_file,
                    "--keys",
                    &KEYS.to_string(),
                    "--ops",
                    &ops_per_worker().to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let mut acked = vec![0u64; KEYS];
    let mut unknown = 0;
    for child in children {
        let output = child.wait_with_output().expect("wait for a worker");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "worker failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line: serde_json::Value =
            serde_json::from_str(stdout.trim()).expect("worker JSON line");
        for (slot, n) in line["acked"].as_array().unwrap().iter().enumerate() {
            acked[slot] += n.as_u64().unwrap();
        }
        unknown += line["unknown"].as_u64().unwrap();
        assert_eq!(
            line["errors"].as_u64(),
            Some(0),
            "no errors without faults: {stdout}"
        );
    }
    Run { acked, unknown }
}

async fn counts(store: &dyn Storage) -> Vec<u64> {
    let mut out = Vec::new();
    for slot in 0..KEYS {
        let entry = store
            .get(format!("counter-{slot}").as_bytes())
            .await
            .expect("get counter");
        out.push(entry.map_or(0, |e| {
            std::str::from_utf8(&e.value).unwrap().parse().unwrap()
        }));
    }
    out
}

fn secret_path(name: &str, value: &str) -> String {
    match support::secret_env(name, value) {
        orbit_storage::SecretRef::File(path) => path,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_replicas_count_exactly_on_s3() {
    let weed = support::weed();
    let prefix = support::fresh_prefix("replicas-s3");
    let store = support::ready(orbit_cloud::open_s3(&weed.config(&prefix)).unwrap()).await;
    let endpoint = format!("http://127.0.0.1:{}", weed.s3_port);
    let key = secret_path("worker-s3-key", support::S3_ACCESS_KEY);
    let secret = secret_path("worker-s3-secret", support::S3_SECRET_KEY);
    let started = std::time::Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        run_workers("s3", &endpoint, support::S3_BUCKET, &prefix, &key, &secret)
    })
    .await
    .unwrap();
    let total: u64 = run.acked.iter().sum();
    eprintln!(
        "s3: {WORKERS} workers, {total} acknowledged increments in {:?}",
        started.elapsed()
    );
    assert_eq!(
        total as usize,
        WORKERS * ops_per_worker(),
        "every increment acknowledged"
    );
    assert_eq!(run.unknown, 0);
    assert_eq!(
        counts(&*store).await,
        run.acked,
        "final counts = acknowledged increments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_replicas_count_exactly_on_azure() {
    let azurite = support::azurite();
    let prefix = support::fresh_prefix("replicas-az");
    let store = support::ready(orbit_cloud::open_azure(&azurite.config(&prefix)).unwrap()).await;
    let endpoint = azurite.endpoint();
    let key = secret_path("worker-az-unused", "unused-but-required");
    let secret = secret_path("worker-az-key", support::AZURE_KEY);
    let started = std::time::Instant::now();
    let run = tokio::task::spawn_blocking(move || {
        run_workers(
            "azure",
            &endpoint,
            support::AZURE_CONTAINER,
            &prefix,
            &key,
            &secret,
        )
    })
    .await
    .unwrap();
    let total: u64 = run.acked.iter().sum();
    eprintln!(
        "azure: {WORKERS} workers, {total} acknowledged increments in {:?}",
        started.elapsed()
    );
    assert_eq!(
        total as usize,
        WORKERS * ops_per_worker(),
        "every increment acknowledged"
    );
    assert_eq!(run.unknown, 0);
    assert_eq!(
        counts(&*store).await,
        run.acked,
        "final counts = acknowledged increments"
    );
}

/// SIGKILL a process in the middle of its atomic batches, three times:
/// no batch is ever half applied (readers see `a + b` unchanged), every
/// acknowledged batch is applied, and a later writer gets through (after
/// aborting a batch left pending, once it times out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_survive_sigkill_of_the_writer() {
    use std::io::BufRead;
    let weed = support::weed();
    let prefix = support::fresh_prefix("crash-s3");
    let store = support::ready(orbit_cloud::open_s3(&weed.config(&prefix)).unwrap()).await;
    let put = |key: &'static [u8], value: i64| orbit_storage::BatchOp::Put {
        key: bytes::Bytes::from_static(key),
        value: bytes::Bytes::from(value.to_string()),
        options: orbit_storage::PutOptions::default(),
    };
    store
        .batch(vec![put(b"a", 100), put(b"b", 100)])
        .await
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", weed.s3_port);
    let key = secret_path("crash-s3-key", support::S3_ACCESS_KEY);
    let secret = secret_path("crash-s3-secret", support::S3_SECRET_KEY);
    let mut acked = 0u64;
    const KILLS: u64 = 3;
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orbit-cloud-cas-worker"))
            .args([
                "--mode",
                "transfer",
                "--provider",
                "s3",
                "--endpoint",
                &endpoint,
                "--bucket",
                support::S3_BUCKET,
                "--prefix",
                &prefix,
                "--key-file",
                &key,
                "--secret-file",
                &secret,
                "--keys",
                "1",
                "--ops",
                "1",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let counter = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l == "ack")
                .count() as u64
        });
        // A varying moment, after some batches went through.
        let pause = 700 + 450 * round + (std::process::id() as u64 % 300);
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked += counter.join().unwrap();
    }
    let value = |e: Option<orbit_storage::Entry>| -> i64 {
        std::str::from_utf8(&e.unwrap().value)
            .unwrap()
            .parse()
            .unwrap()
    };
    let a = value(store.get(b"a").await.unwrap());
    let b = value(store.get(b"b").await.unwrap());
    eprintln!("after {KILLS} SIGKILLs: a={a} b={b}, acknowledged transfers {acked}");
    assert!(acked > 0, "the worker made progress");
    assert_eq!(a + b, 200, "a batch was half applied");
    let applied = (100 - a) as u64;
    assert!(
        applied >= acked,
        "an acknowledged batch was lost ({applied} < {acked})"
    );
    assert!(
        applied <= acked + KILLS,
        "more batches applied than acknowledged + in flight"
    );
    // A writer gets through, aborting any batch left pending.
    let started = std::time::Instant::now();
    let a_now = store.get(b"a").await.unwrap().unwrap();
    let b_now = store.get(b"b").await.unwrap().unwrap();
    let cas = |key: &'static [u8], value: i64, version| orbit_storage::BatchOp::Put {
        key: bytes::Bytes::from_static(key),
        value: bytes::Bytes::from(value.to_string()),
        options: orbit_storage::PutOptions {
            precondition: orbit_storage::Precondition::Version(version),
            expires_at: None,
        },
    };
    store
        .batch(vec![
            cas(b"a", a - 1, a_now.version),
            cas(b"b", b + 1, b_now.version),
        ])
        .await
        .expect("a transfer after the crashes");
    eprintln!("next transfer went through after {:?}", started.elapsed());
    // Purge settles leftovers of crashed batches without touching data.
    assert_eq!(
        store.purge_expired().await.unwrap(),
        0,
        "nothing had expired"
    );
    assert_eq!(store.stats().await.unwrap().keys, 2);
    assert_eq!(
        value(store.get(b"a").await.unwrap()) + value(store.get(b"b").await.unwrap()),
        200
    );
}
