//! Start-up decisions, configuration errors, graceful shutdown and the memory
//! backend's snapshot across restarts and `kill -9`.

use std::time::{Duration, Instant};

use hyper::Method;
use orbit_test_support::http::Resp;
use orbit_test_support::server::{Server, run_to_end};

#[test]
fn unknown_backend_refuses_to_start_listing_accepted_names() {
    let dir = tempfile::tempdir().unwrap();
    let err = Server::try_start(dir.path(), &[("ORBIT_PERSISTENCE_BACKEND", "bogus")])
        .err()
        .expect("must not start");
    assert!(err.contains("ORBIT_PERSISTENCE_BACKEND"), "{err}");
    assert!(err.contains("bogus"), "{err}");
    assert!(
        err.contains("memory, cow_btree, lsm_tree, rocksdb, s3, azure, gcp"),
        "{err}"
    );
}

#[test]
fn config_check_names_the_variable_and_the_accepted_form() {
    let (ok, out, err) = run_to_end(
        &[
            ("ORBIT_PERSISTENCE_BACKEND", "memory"),
            ("ORBIT_MEMORY_MAX_ENTRIES", "lots"),
        ],
        &["config", "check"],
    );
    assert!(!ok, "must exit non-zero; stdout: {out}");
    assert!(
        err.contains("ORBIT_MEMORY_MAX_ENTRIES") && err.contains("lots"),
        "{err}"
    );
    assert!(err.contains("an integer"), "{err}");

    let (ok, _, err) = run_to_end(
        &[("ORBIT_MEMORY_DISK_BACKUP", "flase")],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(
        err.contains("ORBIT_MEMORY_DISK_BACKUP") && err.contains("true or false"),
        "{err}"
    );

    let (ok, _, err) = run_to_end(&[("ORBIT_HTTP_ADDR", "everywhere")], &["config", "check"]);
    assert!(!ok);
    assert!(
        err.contains("ORBIT_HTTP_ADDR") && err.contains("IP:PORT"),
        "{err}"
    );
}

#[test]
fn config_check_prints_the_effective_config_without_secrets() {
    let (ok, out, err) = run_to_end(
        &[
            ("ORBIT_PERSISTENCE_BACKEND", "s3"),
            ("ORBIT_S3_BUCKET", "orbit-state"),
            ("ORBIT_S3_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("ORBIT_S3_SECRET_ACCESS_KEY", "very-secret-value"),
            ("ORBIT_S3_REGOIN", "eu-west-1"),
        ],
        &["config", "check", "--env"],
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("backend: s3"), "{out}");
    assert!(out.contains("orbit-state"), "{out}");
    assert!(
        out.contains("ORBIT_S3_SECRET_ACCESS_KEY"),
        "the secret is named by reference: {out}"
    );
    assert!(
        !out.contains("very-secret-value") && !out.contains("AKIAEXAMPLE"),
        "secret leaked: {out}"
    );
    assert!(!err.contains("very-secret-value"), "secret leaked: {err}");
    // Typos get a warning with the closest known name.
    assert!(
        out.contains("ORBIT_S3_REGOIN") && out.contains("ORBIT_S3_REGION"),
        "{out}"
    );
}

#[test]
fn toml_file_selects_and_configures() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("orbit.toml");
    std::fs::write(
        &toml,
        "[server]\npersistence_backend = \"memory\"\n[persistence.memory]\nmax_entries = 42\ndisk_backup = false\n",
    )
    .unwrap();
    let (ok, out, err) = run_to_end(
        &[],
        &[
            "--config",
            toml.to_str().unwrap(),
            "config",
            "check",
            "--json",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["backend"], "memory");
    assert_eq!(j["config"]["max_entries"], 42);
    assert_eq!(j["config"]["disk_backup"], false);
    // The environment wins over the file.
    let (ok, out, _) = run_to_end(
        &[("ORBIT_MEMORY_MAX_ENTRIES", "7")],
        &[
            "--config",
            toml.to_str().unwrap(),
            "config",
            "check",
            "--json",
        ],
    );
    assert!(ok);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["config"]["max_entries"], 7);
}

#[tokio::test]
async fn sigterm_writes_the_final_snapshot_and_restart_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    for i in 0..100 {
        assert_eq!(
            s.put(&format!("/v1/kv/k{i}"), &format!("v{i}"))
                .await
                .status,
            200
        );
    }
    let etag = s.get("/v1/kv/k7").await.header("etag").unwrap().to_string();
    assert!(s.terminate(), "graceful exit");
    assert!(dir.path().join("orbit_backup.json").exists());

    let s = Server::start(dir.path(), &[]);
    for i in 0..100 {
        assert_eq!(s.get(&format!("/v1/kv/k{i}")).await.text(), format!("v{i}"));
    }
    assert_eq!(
        s.get("/v1/kv/k7").await.header("etag"),
        Some(etag.as_str()),
        "versions survive"
    );
    // New versions continue above the old ones.
    let new: u64 = s.put("/v1/kv/new", "x").await.json()["version"]
        .as_u64()
        .unwrap();
    assert!(new > 100);
}

#[tokio::test]
async fn kill_9_after_a_snapshot_keeps_every_key_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("orbit_backup.json");
    let s = Server::start(dir.path(), &[("ORBIT_MEMORY_BACKUP_INTERVAL", "1")]);
    for i in 0..500 {
        assert_eq!(
            s.put(&format!("/v1/kv/k{i}"), &format!("v{i}"))
                .await
                .status,
            200
        );
    }
    // Wait until a periodic snapshot holding every key has been written.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if text.matches("\"k\":").count() >= 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete snapshot within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.kill9();
    let s = Server::start(dir.path(), &[]);
    for i in 0..500 {
        assert_eq!(
            s.get(&format!("/v1/kv/k{i}")).await.text(),
            format!("v{i}"),
            "k{i}"
        );
    }
}

#[test]
fn truncated_snapshot_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = Server::start(dir.path(), &[]);
    rt.block_on(async {
        for i in 0..50 {
            s.put(&format!("/v1/kv/k{i}"), "value").await;
        }
    });
    assert!(s.terminate());
    let path = dir.path().join("orbit_backup.json");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = Server::try_start(dir.path(), &[])
        .err()
        .expect("must refuse a truncated snapshot");
    assert!(
        err.contains("orbit_backup.json") && err.contains("truncated"),
        "{err}"
    );
    // Nothing was overwritten: the damaged file is still there for an operator.
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len() - 10);
}

/// Issue 15, hole 1: a version names one write forever. A write acknowledged
/// after the last snapshot and lost to `kill -9` must not have its version
/// given to a different write after the restart, or a client holding its
/// ETag could overwrite the new value.
#[tokio::test]
async fn versions_never_repeat_after_kill_9_with_or_without_a_snapshot() {
    let version = |r: Resp| r.json()["version"].as_u64().unwrap();
    for disk_backup in ["true", "false"] {
        let dir = tempfile::tempdir().unwrap();
        // A long interval: only SIGTERM writes a snapshot here.
        let env = [
            ("ORBIT_MEMORY_DISK_BACKUP", disk_backup),
            ("ORBIT_MEMORY_BACKUP_INTERVAL", "3600"),
        ];
        let s = Server::start(dir.path(), &env);
        let v1 = version(s.put("/v1/kv/k", "one").await);
        assert!(s.terminate(), "clean shutdown");
        let s = Server::start(dir.path(), &env);
        let v2 = version(s.put("/v1/kv/k", "two").await);
        assert!(v2 > v1, "disk_backup={disk_backup}: {v2} after {v1}");
        s.kill9(); // the write of v2 is lost with the process
        let s = Server::start(dir.path(), &env);
        let v3 = version(s.put("/v1/kv/k", "three").await);
        assert!(
            v3 > v2,
            "disk_backup={disk_backup}: version {v3} after a crash that lost {v2}"
        );
        // The stale ETag of the lost write matches nothing.
        let stale = s
            .call(
                Method::PUT,
                "/v1/kv/k",
                &[("if-match", &format!("\"{v2}\""))],
                "four",
            )
            .await;
        assert_eq!(stale.status, 412, "disk_backup={disk_backup}");
        assert_eq!(s.get("/v1/kv/k").await.text(), "three");
    }
}

/// Issue 15, hole 9: the health canary's write-and-delete leaves the data
/// unchanged, so an idle store does not rewrite its snapshot every interval.
#[tokio::test]
async fn an_idle_store_is_not_rewritten_by_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("orbit_backup.json");
    let s = Server::start(dir.path(), &[("ORBIT_MEMORY_BACKUP_INTERVAL", "1")]);
    assert_eq!(s.put("/v1/kv/k", "v").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&snapshot)
        .unwrap_or_default()
        .contains("\"aw==\"")
    {
        assert!(Instant::now() < deadline, "no snapshot within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = std::fs::metadata(&snapshot).unwrap().modified().unwrap();
    // Readiness runs the canary (a write and a delete) on every uncached
    // call; ask several times across three snapshot intervals.
    for _ in 0..6 {
        assert_eq!(s.get("/health/ready").await.status, 200);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(
        std::fs::metadata(&snapshot).unwrap().modified().unwrap(),
        written,
        "the snapshot was rewritten although no user data changed"
    );
    // A real change is still captured.
    assert_eq!(s.put("/v1/kv/k2", "v").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&snapshot)
        .unwrap_or_default()
        .contains("\"azI=\"")
    {
        assert!(
            Instant::now() < deadline,
            "the change was not snapshotted within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
