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
