//! Readiness of an object-storage backend follows its store: the server (in
//! the test process) on the `s3` backend against a real SeaweedFS
//! (credentials enforced) is ready; when SeaweedFS is killed,
//! `/health/ready` turns false with the reason and the request counters;
//! when it comes back on the same data, readiness returns by itself and the
//! acknowledged write is still there.
//! SeaweedFS comes from `scripts/install-stand-ins.sh`.

mod in_process;

use std::time::{Duration, Instant};

use in_process::{InProcess, start};
use orbit_test_support::http::Resp;
use orbit_test_support::standins::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, Weed};

/// Polls `/health/ready` until `want(response)` or the deadline.
async fn ready_until(s: &InProcess, secs: u64, what: &str, want: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = s.get("/health/ready").await;
        if want(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s; last answer {}: {}\nserver log:\n{}",
            r.status,
            r.text(),
            orbit_test_support::logs::text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_object_store_down_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Weed::start_in(None, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let endpoint = weed.endpoint();
    let key_file = dir.path().join("s3-key-id");
    let secret_file = dir.path().join("s3-secret");
    std::fs::write(&key_file, S3_ACCESS_KEY).unwrap();
    std::fs::write(&secret_file, S3_SECRET_KEY).unwrap();
    let (key_file, secret_file) = (
        key_file.display().to_string(),
        secret_file.display().to_string(),
    );
    let env = [
        ("ORBIT_PERSISTENCE_BACKEND", "s3"),
        ("ORBIT_S3_ENDPOINT", endpoint.as_str()),
        ("ORBIT_S3_BUCKET", S3_BUCKET),
        ("ORBIT_S3_PREFIX", "health-test"),
        ("ORBIT_S3_ENABLE_SSL", "false"),
        // Secrets as mounted files: the backend resolves an env secret
        // from the process environment, which an in-process server does
        // not take its configuration from.
        ("ORBIT_S3_ACCESS_KEY_ID_FILE", key_file.as_str()),
        ("ORBIT_S3_SECRET_ACCESS_KEY_FILE", secret_file.as_str()),
        ("ORBIT_S3_RETRY_COUNT", "1"),
        ("ORBIT_S3_CONNECTION_TIMEOUT", "2"),
        ("ORBIT_S3_READ_TIMEOUT", "3"),
        ("ORBIT_S3_WRITE_TIMEOUT", "3"),
    ];
    let s = start(dir.path(), &env).await;
    let up = ready_until(&s, 60, "ready with SeaweedFS up", |r| r.status == 200).await;
    // Object storage does not count keys on readiness checks: unknown, not 0.
    let j = up.json();
    assert!(
        j["backend"]["keys"].is_null() && j["backend"]["bytes"].is_null(),
        "keys and bytes are reported as unknown: {j}"
    );
    let put = s.put("/v1/kv/leases/actor-1", "node-a").await;
    assert_eq!(put.status, 200, "{}", put.text());

    weed.process.kill();
    let down = ready_until(&s, 60, "not ready with SeaweedFS down", |r| r.status == 503).await;
    let j = down.json();
    assert_eq!(j["ready"], false);
    assert!(
        !j["reasons"].as_array().unwrap().is_empty(),
        "a reason is given: {j}"
    );
    assert_eq!(j["canary"]["ok"], false, "{j}");
    let remote = &j["backend"]["remote"];
    assert!(
        remote["requests"].as_u64().unwrap() > 0 && remote["failures"].as_u64().unwrap() > 0,
        "request counters in the report: {j}"
    );
    assert!(
        !down.text().contains(S3_SECRET_KEY),
        "no secret in /health/ready"
    );
    // Data requests fail with a clear error, not a hang.
    let failed = s.get("/v1/kv/leases/actor-1").await;
    assert_eq!(failed.status, 503, "{}", failed.text());

    weed.process.restart();
    weed.wait_ready();
    ready_until(&s, 90, "ready again after SeaweedFS restarted", |r| {
        r.status == 200
    })
    .await;
    let got = s.get("/v1/kv/leases/actor-1").await;
    assert_eq!(
        (got.status, got.text()),
        (200, "node-a".to_string()),
        "the acknowledged write survived the outage"
    );
    assert!(
        !orbit_test_support::logs::text().contains(S3_SECRET_KEY),
        "no secret in the server log"
    );
}
