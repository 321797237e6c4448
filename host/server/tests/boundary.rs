//! The plugin trust boundary, tried by hostile components loaded into the
//! real server binary (issue 14):
//! - a translator cannot make the host resolve a secret that is not its
//!   field's own, so nothing reaches the attacker's endpoint;
//! - a plugin cannot make the host hold more than its own memory cap, by
//!   aliasing one buffer many times in a result or an import's arguments, or
//!   by hoarding `wasi:keyvalue` handles; the call fails as `memory_limit`,
//!   the server's peak RSS stays bounded and `/v1` keeps answering;
//! - the store import reaches only the granted buckets, and never the host's
//!   private keyspace.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Server, built, run_to_end};

/// A loopback listener standing in for the attacker's endpoint: counts every
/// byte anyone sends it.
struct Attacker {
    endpoint: String,
    received: Arc<AtomicUsize>,
}

impl Attacker {
    fn listen() -> Attacker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        count.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        Attacker { endpoint, received }
    }
}

#[test]
fn a_translator_cannot_name_another_settings_secret() {
    let translator = built("host/server/tests/fixtures/hostile-translator")
        .display()
        .to_string();
    let attacker = Attacker::listen();
    let dir = tempfile::tempdir().unwrap();
    let stolen = dir.path().join("serviceaccount-token");
    std::fs::write(&stolen, "sa-token-VALUE-4242").unwrap();
    let data = dir.path().display().to_string();
    let base = [
        ("ORBIT_DATA_DIR", data.as_str()),
        ("ORBIT_PERSISTENCE_BACKEND", "s3"),
        ("ORBIT_PLUGIN_TRANSLATOR", translator.as_str()),
        ("ORBIT_TEST_ATTACKER_ENDPOINT", attacker.endpoint.as_str()),
        ("ORBIT_TEST_STOLEN_FILE", stolen.to_str().unwrap()),
        ("ORBIT_API_TOKEN", "api-token-VALUE-1717"),
        ("ORBIT_S3_ACCESS_KEY_ID", "s3-id-VALUE-2323"),
        ("ORBIT_S3_SECRET_ACCESS_KEY", "s3-secret-VALUE-9191"),
        ("ORBIT_HTTP_ADDR", "127.0.0.1:0"),
        ("ORBIT_METRICS_ADDR", "127.0.0.1:0"),
    ];
    for (mode, names) in [
        ("env-token", "refers to env ORBIT_API_TOKEN"),
        ("env-home", "refers to env HOME"),
        ("file", "refers to file"),
        (
            "swap",
            "field of ORBIT_S3_ACCESS_KEY_ID refers to env ORBIT_S3_SECRET_ACCESS_KEY",
        ),
        // The configuration is checked against the catalogue as a whole.
        (
            "unknown-setting",
            "ORBIT_API_TOKEN: not a setting of the s3 backend",
        ),
        (
            "out-of-bounds",
            "ORBIT_S3_RETRY_COUNT: expected an integer from 0 to 100",
        ),
        ("wrong-form", "ORBIT_S3_BUCKET: expected a non-empty text"),
        ("flood", "100009 settings; the limit is"),
    ] {
        let mut env = base.to_vec();
        env.push(("ORBIT_TEST_HOSTILE_MODE", mode));
        // Both the server and `config check` refuse, naming the plugin and
        // the field, before anything is resolved or any connection is made.
        for args in [&[][..], &["config", "check"][..]] {
            let (ok, out, err) = run_to_end(&env, args);
            assert!(!ok, "{mode} {args:?} accepted: {out}");
            assert!(
                err.contains("plugin translator") && err.contains("invalid output"),
                "{mode} {args:?}: {err}"
            );
            assert!(err.contains(names), "{mode} {args:?}: {err}");
            for secret in ["VALUE-1717", "VALUE-2323", "VALUE-9191", "VALUE-4242"] {
                assert!(
                    !err.contains(secret) && !out.contains(secret),
                    "{mode}: {err}"
                );
            }
        }
    }
    // The same plugin naming the S3 settings' own variables is accepted.
    let mut env = base.to_vec();
    env.push(("ORBIT_TEST_HOSTILE_MODE", "honest"));
    let (ok, out, err) = run_to_end(&env, &["config", "check"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("ORBIT_S3_ACCESS_KEY_ID"), "{out}");

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        attacker.received.load(Ordering::SeqCst),
        0,
        "the attacker's endpoint received bytes"
    );
}

/// Resident and peak resident set size of a process, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn fresh_readiness(s: &Server) -> (u16, serde_json::Value) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s.get("/health/ready").await;
    (r.status, r.json())
}

/// `/v1` answers while (and after) a plugin misbehaves.
async fn data_flows(s: &Server, round: usize) {
    for i in 0..20 {
        let key = format!("/v1/kv/traffic/{round}/{i}");
        assert_eq!(s.put(&key, "x").await.status, 200);
        assert_eq!(s.get(&key).await.status, 200);
    }
}

fn counted(metrics: &str, outcome: &str) -> u64 {
    let series = format!(
        r#"orbit_plugin_calls_total{{role="health",function="evaluate",outcome="{outcome}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn misbehaving_health() -> String {
    built("host/server/tests/fixtures/misbehaving-health")
        .display()
        .to_string()
}

/// Puts the fixture in `mode` (after the readiness cache of the last
/// verdict ran out) and returns the next fresh readiness answer.
async fn in_mode(s: &Server, mode: &str) -> (u16, serde_json::Value) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.put("/v1/kv/misbehave", mode).await.status, 200);
    fresh_readiness(s).await
}

/// The bound this test holds the server to: its peak RSS stays within this
/// many bytes above its RSS when idle (four times the plugin memory cap of
/// 16 MiB: its linear memory, one transfer, and room for the allocator).
const PEAK_ABOVE_IDLE: u64 = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_make_the_host_hold_more_than_its_memory_cap() {
    let plugin = misbehaving_health();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_PLUGIN_HEALTH", &plugin),
            ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:default"),
            ("ORBIT_PLUGIN_MEMORY_LIMIT", "16MiB"),
        ],
    );
    let pid = s.child.id();
    let (status, j) = fresh_readiness(&s).await;
    assert_eq!(status, 200, "{j}");
    let big = "b".repeat(1 << 20);
    assert_eq!(s.put("/v1/kv/big", &big).await.status, 200);
    data_flows(&s, 0).await;
    let (idle, _) = rss(pid);

    // Each attack fails its call as over the memory limit.
    for (round, mode) in ["alias-reasons", "alias-batch", "cas-hoard"]
        .iter()
        .enumerate()
    {
        let (status, j) = in_mode(&s, mode).await;
        assert_eq!(status, 503, "{mode}: {j}");
        assert!(
            j["reasons"]
                .to_string()
                .contains("exceeded its memory limit of 16777216 bytes"),
            "{mode}: {j}"
        );
        data_flows(&s, round + 1).await;
    }
    // A batch over the operation limit is refused to the plugin.
    let (_, j) = in_mode(&s, "big-batch").await;
    assert!(
        j["reasons"].to_string().contains("at most 1000 operations"),
        "{j}"
    );
    assert_eq!(s.get("/v1/kv/big-batch/0").await.status, 404);
    // A listing page brings back at most the cap; the cursor says there is more.
    for i in 0..24 {
        assert_eq!(s.put(&format!("/v1/kv/big/{i:02}"), &big).await.status, 200);
    }
    let (_, j) = in_mode(&s, "list-big").await;
    let reason = j["reasons"][0].as_str().unwrap_or_default().to_string();
    let n: usize = reason
        .strip_prefix("list-big page of ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{j}"));
    assert!(
        (1..16).contains(&n) && reason.ends_with("more: true"),
        "{j}"
    );

    let (now, peak) = rss(pid);
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
    let m = s.get("/metrics").await.text();
    assert!(counted(&m, "memory_limit") >= 3, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_import_reaches_only_granted_buckets_and_never_private_keys() {
    let plugin = misbehaving_health();
    let dir = tempfile::tempdir().unwrap();
    // Granted the bucket `canary` only: the fixture's read of the key
    // `misbehave` is refused, and its verdict echoes the refusal.
    let s = Server::start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_PLUGIN_HEALTH", &plugin),
            ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:canary"),
        ],
    );
    assert_eq!(s.put("/v1/kv/misbehave", "none").await.status, 200);
    let (_, j) = fresh_readiness(&s).await;
    assert!(
        j["reasons"]
            .to_string()
            .contains("outside the buckets granted to this plugin (granted: canary)"),
        "{j}"
    );
    drop(s);

    // With the whole user keyspace granted, the host's own keys (under 0xFF,
    // planted in the snapshot next to a user key) stay out of reach however
    // the listing is asked.
    let snapshot = dir.path().join("orbit_backup.json");
    support::plant_memory_snapshot(
        &snapshot,
        &[
            (b"user/a", b"1"),
            (b"\xFForbit/host-state", b"private"),
            (&[0xFF, 0xFF], b"private"),
        ],
    )
    .await;
    let s = Server::start(
        dir.path(),
        &[
            ("ORBIT_PLUGIN_HEALTH", &plugin),
            ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:default"),
        ],
    );
    let (status, _) = fresh_readiness(&s).await;
    assert_eq!(status, 200);
    let (_, j) = in_mode(&s, "list-private").await;
    assert!(
        j["reasons"]
            .to_string()
            .contains("list-private saw 0 private keys"),
        "{j}"
    );
}
