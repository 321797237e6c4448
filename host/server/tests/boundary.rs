//! The plugin trust boundary at start-up, tried by a hostile translator
//! loaded into the real server binary (issue 14): it cannot make the host
//! resolve a secret that is not its field's own, so the server and
//! `config check` refuse to start and nothing reaches the attacker's
//! endpoint. The runtime's own bounds (a plugin cannot make the host hold
//! more than its memory cap; the store import reaches only granted buckets
//! and never the host's private keyspace) are proven in-process in
//! `host/plugin-runtime/tests/output_bounds.rs` and `sandbox.rs`.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orbit_test_support::server::run_to_end;
use orbit_test_support::wasm::fixture;

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
    let translator = fixture("hostile-translator").display().to_string();
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
