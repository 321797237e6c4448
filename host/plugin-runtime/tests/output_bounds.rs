//! A plugin cannot make the host hold more than its own memory cap (issue
//! 14), proven in-process against the runtime with a hostile health plugin
//! (`host/server/tests/fixtures/misbehaving-health`): aliasing one buffer
//! many times in a result or in an import's arguments, or hoarding
//! `wasi:keyvalue` handles, fails the call as `memory_limit`; a batch over
//! the operation limit and a listing page are bounded too. The process's
//! peak RSS stays bounded and the next call is served. One test in this
//! binary, so the process's RSS is this test's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Outcomes, buckets, evaluate, health, limits, memory, put, runtime};
use orbit_plugin_runtime::PluginError;
use orbit_storage::Storage;
use orbit_test_support::wasm::fixture;

/// Resident and peak resident set size of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The bound this test holds the host to: its peak RSS stays within this
/// many bytes above its RSS when idle (four times the plugin memory cap of
/// 16 MiB: its linear memory, one transfer, and room for the allocator;
/// the 24 MiB of values the listing reads are part of it, as they were in
/// the server's memory backend).
const PEAK_ABOVE_IDLE: u64 = 64 << 20;

fn reason(v: &orbit_plugin_runtime::types::HealthVerdict) -> &str {
    v.reasons.first().map_or("", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_make_the_host_hold_more_than_its_memory_cap() {
    let outcomes = Arc::new(Outcomes::default());
    let rt = runtime(Some(outcomes.clone()));
    let plugin = health(
        &rt,
        fixture("misbehaving-health"),
        limits(Duration::from_secs(2), 16 << 20),
        buckets(&["default"]),
    );
    let store = memory();
    let big = vec![b'b'; 1 << 20];
    put(&*store, b"big", &big).await;
    let v = evaluate(&plugin, &store).await.expect("a normal call");
    assert!(v.ready, "{v:?}");
    let (idle, _) = rss();

    // Each attack fails its call as over the memory limit; the next call is
    // served.
    for mode in ["alias-reasons", "alias-batch", "cas-hoard"] {
        put(&*store, b"misbehave", mode.as_bytes()).await;
        let e = evaluate(&plugin, &store).await.unwrap_err();
        assert!(
            matches!(
                e,
                PluginError::MemoryLimit {
                    limit_bytes: 16_777_216,
                    ..
                }
            ),
            "{mode}: {e:?}"
        );
        assert!(
            e.to_string()
                .contains("exceeded its memory limit of 16777216 bytes"),
            "{mode}: {e}"
        );
        put(&*store, b"misbehave", b"none").await;
        let v = evaluate(&plugin, &store)
            .await
            .expect("served after the attack");
        assert_eq!(reason(&v), "fixture read misbehave=none", "{mode}");
    }
    assert!(
        store.get(b"bomb").await.unwrap().is_none(),
        "nothing of the aliased batch was written"
    );

    // A batch over the operation limit is refused to the plugin.
    put(&*store, b"misbehave", b"big-batch").await;
    let v = evaluate(&plugin, &store)
        .await
        .expect("the call itself succeeds");
    assert!(reason(&v).contains("at most 1000 operations"), "{v:?}");
    assert!(store.get(b"big-batch/0").await.unwrap().is_none());

    // A listing page brings back at most the cap; the cursor says there is more.
    for i in 0..24 {
        put(&*store, format!("big/{i:02}").as_bytes(), &big).await;
    }
    put(&*store, b"misbehave", b"list-big").await;
    let v = evaluate(&plugin, &store).await.expect("a listing");
    let n: usize = reason(&v)
        .strip_prefix("list-big page of ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{v:?}"));
    assert!(
        (1..16).contains(&n) && reason(&v).ends_with("more: true"),
        "{v:?}"
    );

    let (now, peak) = rss();
    eprintln!(
        "RSS idle {} MiB, now {} MiB, peak {} MiB",
        idle >> 20,
        now >> 20,
        peak >> 20
    );
    assert!(
        peak <= idle + PEAK_ABOVE_IDLE,
        "peak RSS {} MiB with idle {} MiB",
        peak >> 20,
        idle >> 20
    );
    assert_eq!(outcomes.count("memory_limit"), 3);
}
