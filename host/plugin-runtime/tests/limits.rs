//! The limits every plugin call runs under, proven in-process against the
//! runtime's API with a health plugin that misbehaves on demand
//! (`host/server/tests/fixtures/misbehaving-health`, built from source): a
//! spinning call is stopped at its CPU deadline without starving the async
//! runtime it shares, unbounded allocation stops at the memory cap, a panic
//! is a trap and unusable output is refused; each is an error for that call
//! only, counted by outcome, and the next call is served normally.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Outcomes, buckets, evaluate, health, limits, memory, put, runtime};
use orbit_plugin_runtime::PluginError;
use orbit_test_support::wasm::fixture;

/// One thread: a plugin that did not yield at its epoch ticks would stall
/// every other task for the whole deadline.
#[tokio::test(flavor = "current_thread")]
async fn a_runaway_health_plugin_is_stopped_at_each_limit_and_the_next_call_is_served() {
    let outcomes = Arc::new(Outcomes::default());
    let rt = runtime(Some(outcomes.clone()));
    let plugin = health(
        &rt,
        fixture("misbehaving-health"),
        limits(Duration::from_millis(500), 16 << 20),
        // It reads its mode from the key `misbehave`.
        buckets(&["default"]),
    );
    let store = memory();

    let v = evaluate(&plugin, &store).await.expect("a normal call");
    assert!(v.ready, "{v:?}");
    assert_eq!(
        v.reasons,
        ["fixture read misbehave=none"],
        "the plugin read the store"
    );

    // Spin: stopped at the CPU deadline; meanwhile another task on the same
    // thread keeps being scheduled and keeps reaching the store.
    put(&*store, b"misbehave", b"spin").await;
    let started = Instant::now();
    let call = async {
        let r = evaluate(&plugin, &store).await;
        (r, started.elapsed())
    };
    let other_work = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut worst = Duration::ZERO;
        for i in 0..20 {
            let t = Instant::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
            put(&*store, format!("during/{i}").as_bytes(), b"x").await;
            worst = worst.max(t.elapsed());
        }
        worst
    };
    let ((result, took), worst) = tokio::join!(call, other_work);
    match &result {
        Err(PluginError::CpuDeadline { limit, .. }) => {
            assert_eq!(*limit, Duration::from_millis(500))
        }
        other => panic!("expected the CPU deadline, got {other:?}"),
    }
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("exceeded its CPU deadline"),
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "stopped after {took:?}"
    );
    assert!(
        worst < Duration::from_millis(400),
        "other tasks stalled {worst:?} while the plugin spun"
    );

    // Unbounded allocation: stopped at the memory cap.
    put(&*store, b"misbehave", b"hog").await;
    let e = evaluate(&plugin, &store).await.unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::MemoryLimit {
                limit_bytes: 16_777_216,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("memory limit of 16777216 bytes"),
        "{e}"
    );

    // A panic is a trap for that call.
    put(&*store, b"misbehave", b"trap").await;
    let e = evaluate(&plugin, &store).await.unwrap_err();
    assert!(matches!(e, PluginError::Trap { .. }), "{e:?}");
    assert!(e.to_string().contains("trapped"), "{e}");

    // Output the host cannot use is refused like a trap.
    put(&*store, b"misbehave", b"invalid").await;
    let e = evaluate(&plugin, &store).await.unwrap_err();
    assert!(matches!(e, PluginError::InvalidOutput { .. }), "{e:?}");
    assert!(e.to_string().contains("returned invalid output"), "{e}");

    // Back to normal, same loaded plugin.
    put(&*store, b"misbehave", b"none").await;
    let v = evaluate(&plugin, &store).await.expect("served again");
    assert!(v.ready, "{v:?}");

    for outcome in ["cpu_deadline", "memory_limit", "trap", "invalid_output"] {
        assert_eq!(outcomes.count(outcome), 1, "{outcome}");
    }
    assert_eq!(outcomes.count("ok"), 2);
}
