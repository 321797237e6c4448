//! What a plugin can reach, as the server configures it: `wasi:keyvalue`
//! buckets and WASI capabilities open only when granted
//! (`ORBIT_PLUGIN_<ROLE>_GRANTS`), secrets never. The runtime's own checks
//! are proven in `host/plugin-runtime/tests/sandbox.rs`; here the server
//! runs in the test process with the components built from source (the
//! `kv-canary` example, a health policy whose canary runs through
//! `wasi:keyvalue`, and a fixture that reports its WASI sandbox), and the
//! real binary only where it must refuse to start.

mod in_process;

use in_process::start;
use orbit_test_support::server::run_to_end;
use orbit_test_support::wasm::{built, fixture};

fn kv_canary() -> String {
    built("examples/kv-canary").display().to_string()
}

fn sandbox_probe() -> String {
    fixture("sandbox-probe").display().to_string()
}

fn reasons(j: &serde_json::Value) -> String {
    j["reasons"].to_string()
}

fn probe_number(j: &serde_json::Value) -> i64 {
    let r = reasons(j);
    let at = r.find("probe ").unwrap_or_else(|| panic!("{j}")) + 6;
    r[at..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{j}"))
}

/// The example's canary runs store, atomics and batch operations through
/// `wasi:keyvalue` against a real LSM tree on disk; its counter is visible
/// over HTTP under the bucket's prefix, as 8 little-endian bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_canary_runs_through_wasi_keyvalue_on_a_real_engine() {
    let plugin = kv_canary();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ORBIT_PERSISTENCE_BACKEND", "lsm_tree"),
        ("ORBIT_PLUGIN_HEALTH", plugin.as_str()),
        ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:canary"),
    ];
    let s = start(dir.path(), &env).await;
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert!(reasons(&j).contains("through wasi:keyvalue ok"), "{j}");
    let first = probe_number(&j);
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    let second = probe_number(&j);
    assert!(second > first, "the counter moves: {first} then {second}");

    let counter = s.get("/v1/kv/canary/probes").await;
    assert_eq!(counter.status, 200);
    let n = i64::from_le_bytes(counter.body[..].try_into().expect("8 bytes"));
    assert!(n >= second, "counter {n} after probe {second}");
    let beat = s.get("/v1/kv/canary/beat").await;
    assert!(beat.text().starts_with("probe "), "{}", beat.text());
    assert_eq!(
        s.get("/v1/kv/canary/batch-a").await.status,
        404,
        "delete-many removed it"
    );

    // A counter key holding something else is an error, never reset.
    assert_eq!(s.put("/v1/kv/canary/probes", "abc").await.status, 200);
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 503, "{j}");
    assert!(
        reasons(&j).contains("not a counter (an 8-byte little-endian integer)"),
        "{j}"
    );
    assert_eq!(s.get("/v1/kv/canary/probes").await.text(), "abc");
    s.shut_down().await;

    // The data survived a restart of the engine: the counter continues.
    let s = start(dir.path(), &env).await;
    assert_eq!(
        s.call(hyper::Method::DELETE, "/v1/kv/canary/probes", &[], "")
            .await
            .status,
        204
    );
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(probe_number(&j), 1, "a deleted counter starts again at 1");
}

/// With no grants a plugin sees no environment and no directory, even with
/// secrets and pod variables in the server's environment; each grant opens
/// exactly what it names, its value read from the server's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_grants_open_exactly_what_they_name() {
    let plugin = sandbox_probe();
    let dir = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let shared_path = shared.path().display().to_string();
    let base = [
        ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ("ORBIT_PLUGIN_HEALTH", plugin.as_str()),
        ("ORBIT_API_TOKEN", "t0k3n-value"),
        ("POD_NAME", "orbit-7"),
    ];
    let s = start(dir.path(), &base).await;
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["reasons"], serde_json::json!(["env: none", "dirs: none"]));
    s.shut_down().await;

    let grants = format!("env:POD_NAME,dir:{shared_path}");
    let mut env = base.to_vec();
    env.push(("ORBIT_PLUGIN_HEALTH_GRANTS", &grants));
    let s = start(dir.path(), &env).await;
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        j["reasons"],
        serde_json::json!(["env: POD_NAME=orbit-7", format!("dirs: {shared_path}")])
    );
    assert!(!orbit_test_support::logs::text().contains("t0k3n-value"));
}

/// Bad grant lists stop start-up with a message naming the setting, the item
/// and what is accepted; a secret is never granted and never printed.
#[test]
fn bad_grants_are_refused_at_start_up() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("s3-secret").display().to_string();
    std::fs::write(&secret_file, "s3-secret-value").unwrap();
    let secret_dir_grant = format!("dir:{}", secrets.path().display());
    for (var, value, says) in [
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "env:ORBIT_API_TOKEN",
            "names a secret; plugins never see secrets",
        ),
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "filesystem",
            "expected keyvalue:BUCKET, env:NAME, dir:/absolute/path",
        ),
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "dir:/no/such/dir",
            "is not a directory",
        ),
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "env:ORBIT_NOT_SET_ANYWHERE",
            "is not set",
        ),
        (
            "ORBIT_PLUGIN_SELECTOR_GRANTS",
            "keyvalue:canary",
            "apply to the health plugin only",
        ),
        // A plugin granted /proc could read /proc/self/environ, every secret.
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "dir:/proc",
            "dir:/proc is refused: it would let the plugin read /proc",
        ),
        (
            "ORBIT_PLUGIN_TRANSLATOR_GRANTS",
            "dir:/",
            "would let the plugin read /proc",
        ),
        // A link into /proc (/dev/fd -> /proc/self/fd) is judged where it leads.
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "dir:/dev/fd",
            "would let the plugin read /proc",
        ),
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            "dir:/sys/kernel",
            "would let the plugin read /sys",
        ),
        (
            "ORBIT_PLUGIN_HEALTH_GRANTS",
            &secret_dir_grant,
            "holds the secret file",
        ),
    ] {
        let (ok, out, err) = run_to_end(
            &[
                (var, value),
                ("ORBIT_API_TOKEN", "t0k3n-value"),
                ("ORBIT_S3_SECRET_ACCESS_KEY_FILE", &secret_file),
            ],
            &["config", "check"],
        );
        assert!(!ok, "{var}={value} accepted: {out}");
        assert!(
            err.contains(var) && err.contains(says),
            "{var}={value}: {err}"
        );
        assert!(!err.contains("t0k3n-value"), "{err}");
        assert!(!err.contains("s3-secret-value"), "{err}");
    }
}
