//! What a plugin can reach, proven in-process against the runtime: a
//! `wasi:keyvalue` bucket opens only when granted, the `store` import
//! reaches only the granted buckets and never the host's private keys (which
//! start with byte 0xFF), and WASI shows a plugin exactly the environment
//! variables and directories granted to it, nothing by default. The
//! components are built from source: the `kv-canary` example and the
//! fixtures `misbehaving-health` and `sandbox-probe`.

mod common;

use common::{buckets, evaluate, health, memory, put, runtime};
use orbit_plugin_runtime::{Grants, PluginLimits};
use orbit_storage::Storage;
use orbit_test_support::wasm::{built, fixture};

/// Without the grant the bucket does not open: the policy reports it (not
/// ready) and the refusal is logged.
#[tokio::test]
async fn a_bucket_that_is_not_granted_is_access_denied() {
    orbit_test_support::logs::capture();
    let rt = runtime(None);
    let plugin = health(
        &rt,
        built("examples/kv-canary"),
        PluginLimits::default(),
        buckets(&["other"]),
    );
    let store = memory();
    let v = evaluate(&plugin, &store).await.expect("the call succeeds");
    assert!(!v.ready, "{v:?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.contains("bucket `canary` not granted")),
        "{v:?}"
    );
    let log = orbit_test_support::logs::text();
    assert!(
        log.contains("wasi:keyvalue bucket refused: not granted"),
        "{log}"
    );
    assert!(
        store.get(b"canary/probes").await.unwrap().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn the_store_import_reaches_only_granted_buckets_and_never_private_keys() {
    let rt = runtime(None);
    let fixture = fixture("misbehaving-health");
    let store = memory();
    put(&*store, b"misbehave", b"none").await;

    // Granted the bucket `canary` only: the fixture's read of the key
    // `misbehave` is refused, and its verdict echoes the refusal.
    let plugin = health(&rt, fixture, PluginLimits::default(), buckets(&["canary"]));
    let v = evaluate(&plugin, &store).await.expect("the call succeeds");
    assert!(
        format!("{:?}", v.reasons)
            .contains("outside the buckets granted to this plugin (granted: canary)"),
        "{v:?}"
    );

    // With the whole user keyspace granted, the host's own keys (under 0xFF,
    // next to a user key) stay out of reach however the listing is asked.
    put(&*store, b"user/a", b"1").await;
    put(&*store, b"\xFForbit/host-state", b"private").await;
    put(&*store, &[0xFF, 0xFF], b"private").await;
    put(&*store, b"misbehave", b"list-private").await;
    let plugin = health(&rt, fixture, PluginLimits::default(), buckets(&["default"]));
    let v = evaluate(&plugin, &store).await.expect("the call succeeds");
    assert!(
        format!("{:?}", v.reasons).contains("list-private saw 0 private keys"),
        "{v:?}"
    );
}

/// With no grants a plugin sees no environment and no directory, whatever
/// the host process's environment holds; each grant opens exactly what it
/// names.
#[tokio::test]
async fn wasi_grants_open_exactly_what_they_name() {
    let rt = runtime(None);
    let probe = fixture("sandbox-probe");
    let store = memory();
    let plugin = health(&rt, probe, PluginLimits::default(), Grants::default());
    let v = evaluate(&plugin, &store).await.expect("the call succeeds");
    assert!(v.ready, "{v:?}");
    assert_eq!(v.reasons, ["env: none", "dirs: none"]);

    let shared = tempfile::tempdir().unwrap();
    let grants = Grants {
        env: vec![("POD_NAME".into(), "orbit-7".into())],
        dirs: vec![shared.path().to_path_buf()],
        ..Grants::default()
    };
    let plugin = health(&rt, probe, PluginLimits::default(), grants);
    let v = evaluate(&plugin, &store).await.expect("the call succeeds");
    assert_eq!(
        v.reasons,
        [
            "env: POD_NAME=orbit-7".to_string(),
            format!("dirs: {}", shared.path().display())
        ]
    );
}
