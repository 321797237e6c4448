//! The HTTP trust boundary (issue 14): a blank API token is a start-up
//! error (the real binary refuses to start), and, with the server in the
//! test process, the token guards `/v1`, unknown methods cannot grow the
//! metrics, and the host's private keyspace (keys starting with byte 0xFF)
//! is unreachable over HTTP.

mod in_process;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::Method;
use in_process::start;
use orbit_test_support::http::{Resp, raw_request};
use orbit_test_support::server::Server;

/// Runs the server with `env` and expects it to exit before it listens;
/// returns its stderr.
fn start_failure(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut all = vec![("ORBIT_MEMORY_DISK_BACKUP", "false")];
    all.extend_from_slice(env);
    match Server::try_start(dir, &all) {
        Ok(_) => panic!("the server started with {env:?}; expected a start-up error"),
        Err(stderr) => stderr,
    }
}

#[test]
fn blank_token_file_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in [("empty", ""), ("blank", "  \n")] {
        let path = dir.path().join(format!("{name}-token"));
        std::fs::write(&path, contents).unwrap();
        let path = path.display().to_string();
        let err = start_failure(dir.path(), &[("ORBIT_API_TOKEN_FILE", &path)]);
        assert!(
            err.contains(&format!("ORBIT_API_TOKEN_FILE={path:?}"))
                && err.contains("empty or only whitespace")
                && err.contains("expected a non-empty token"),
            "{name}: {err}"
        );
    }
}

#[test]
fn blank_token_variable_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["", "   "] {
        let err = start_failure(dir.path(), &[("ORBIT_API_TOKEN", value)]);
        assert!(
            err.contains("ORBIT_API_TOKEN: the secret is empty or only whitespace")
                && err.contains("expected a non-empty token"),
            "{value:?}: {err}"
        );
    }
}

#[test]
fn token_with_surrounding_spaces_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_failure(dir.path(), &[("ORBIT_API_TOKEN", " s3cret-token ")]);
    assert!(err.contains("ORBIT_API_TOKEN: "), "{err}");
    assert!(!err.contains("s3cret-token"), "the token leaked: {err}");
}

#[tokio::test]
async fn token_from_a_file_guards_v1() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("api-token");
    // A mounted Secret often ends with a newline; it is not part of the token.
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let token_file = token_file.display().to_string();
    let s = start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_API_TOKEN_FILE", &token_file),
        ],
    )
    .await;
    let refused: [&[(&str, &str)]; 5] = [
        &[],
        &[("authorization", "Bearer ")],
        &[("authorization", "Bearer")],
        &[("authorization", "Bearer s3cret-tokem")],
        &[("authorization", "Basic czNjcmV0LXRva2Vu")],
    ];
    for headers in refused {
        for (method, path) in [(Method::PUT, "/v1/kv/x"), (Method::GET, "/v1/kv")] {
            let r = s.call(method.clone(), path, headers, "v").await;
            assert_eq!(r.status, 401, "{method} {path} {headers:?}: {}", r.text());
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert!(!r.text().contains("s3cret"), "{}", r.text());
        }
    }
    let ok = [("authorization", "Bearer s3cret-token")];
    let r = s.call(Method::PUT, "/v1/kv/x", &ok, "v").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.call(Method::GET, "/v1/kv/x", &ok, "").await;
    assert_eq!((r.status, r.text().as_str()), (200, "v"));
    assert!(
        !orbit_test_support::logs::text().contains("s3cret-token"),
        "the token leaked to the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_share_one_metrics_label() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("ORBIT_MEMORY_DISK_BACKUP", "false")]).await;
    let addr = s.addr().to_string();
    // Raw requests (a client library may refuse made-up methods), sent from
    // a blocking thread while the server runs on this runtime.
    tokio::task::spawn_blocking(move || {
        let tokens: Vec<String> = (0..50).map(|i| format!("ZQMETHOD{i}X")).collect();
        for token in &tokens {
            for path in ["/v1/kv/x", "/nope"] {
                let status = raw_request(&addr, token, path);
                assert!((400..500).contains(&status), "{token} {path}: {status}");
            }
        }
    })
    .await
    .unwrap();
    // A standard method keeps its name.
    assert_eq!(s.put("/v1/kv/x", "v").await.status, 200);

    let m = s.get("/metrics").await.text();
    assert!(
        !m.contains("ZQMETHOD"),
        "a made-up method became a label:\n{m}"
    );
    for family in [
        "orbit_http_requests_total{",
        "orbit_http_request_duration_seconds_count{",
    ] {
        let other: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with(family) && l.contains(r#"method="other""#))
            .collect();
        assert_eq!(other.len(), 2, "one series per route and status:\n{m}");
        for route in [r#"route="/v1/kv/{*key}""#, r#"route="unmatched""#] {
            let line = other
                .iter()
                .find(|l| l.contains(route))
                .unwrap_or_else(|| panic!("no {route} among {other:#?}"));
            assert!(line.ends_with(" 50"), "{line}");
        }
    }
    assert!(
        m.contains(
            r#"orbit_http_requests_total{route="/v1/kv/{*key}",method="PUT",status="200"} 1"#
        ),
        "{m}"
    );
}

const SECRET_VALUE: &[u8] = b"host-private-value";

/// A listing that answered 200 and shows no private key or value; returns
/// its keys.
fn user_keys_only(what: &str, r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    let text = r.text();
    assert!(
        !text.contains(&STANDARD.encode(SECRET_VALUE)) && !text.contains("host-private"),
        "{what} shows a private entry: {text}"
    );
    let j = r.json();
    let items = j["items"].as_array().unwrap();
    for item in items {
        let key = item["key"].as_str().unwrap();
        let bytes = match item["key_base64"].as_str() {
            Some(b) => STANDARD.decode(b).unwrap(),
            None => key.as_bytes().to_vec(),
        };
        assert!(
            bytes.first() != Some(&0xFF) && !key.starts_with('\u{FFFD}'),
            "{what} lists a private key: {item}"
        );
    }
    items
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

/// A request refused with 400 and a JSON error saying 0xFF is reserved.
fn refused_as_reserved(what: &str, r: &Resp) {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("0xFF") && message.contains("reserved"),
        "{what}: {message}"
    );
}

#[tokio::test]
async fn private_keyspace_is_unreachable_over_http() {
    let dir = tempfile::tempdir().unwrap();
    // Private entries as a backend may hold them (a canary left by a crash,
    // host state), restored from a snapshot next to a user key.
    let snapshot = dir.path().join("orbit_backup.json");
    let private_a: &[u8] = b"\xFForbit/canary/crashed-pod";
    let private_b: &[u8] = &[0xFF, 0xFF];
    orbit_test_support::server::plant_memory_snapshot(
        &snapshot,
        &[
            (b"user/a", b"1"),
            (private_a, SECRET_VALUE),
            (private_b, SECRET_VALUE),
        ],
    )
    .await;
    let s = start(dir.path(), &[]).await;
    // Let the health canary write (and delete) its own private key, twice.
    let r = s.get("/health/ready").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["canary"]["ok"], true, "{}", r.text());
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["canary"]["ok"], true, "{j}");
    assert_eq!(s.put("/v1/kv/user/b", "2").await.status, 200);

    let all_user = |keys: Vec<String>| assert_eq!(keys, ["user/a", "user/b"]);
    all_user(user_keys_only("prefix=", &s.get("/v1/kv?prefix=").await));
    all_user(user_keys_only(
        "prefix= with values",
        &s.get("/v1/kv?prefix=&values=true").await,
    ));
    all_user(user_keys_only("no range", &s.get("/v1/kv").await));
    all_user(user_keys_only(
        "start=&end=%FF%FF",
        &s.get("/v1/kv?start=&end=%FF%FF").await,
    ));
    all_user(user_keys_only(
        "end=%FF%00",
        &s.get("/v1/kv?end=%FF%00").await,
    ));
    all_user(user_keys_only(
        "end=%ff%ff%ff&values=true",
        &s.get("/v1/kv?end=%ff%ff%ff&values=true").await,
    ));
    // Page by page, across where the private keyspace begins.
    let mut path = "/v1/kv?prefix=&limit=1".to_string();
    let mut paged = Vec::new();
    loop {
        let r = s.get(&path).await;
        paged.extend(user_keys_only(&path, &r));
        match r.json()["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/kv?prefix=&limit=1&cursor={c}"),
            None => break,
        }
    }
    all_user(paged);
    let cursor = URL_SAFE_NO_PAD.encode([0xFEu8]);
    assert!(
        user_keys_only(
            "cursor past the user keys",
            &s.get(&format!("/v1/kv?end=%FF%FF&cursor={cursor}")).await
        )
        .is_empty()
    );

    for path in [
        "/v1/kv?prefix=%FF",
        "/v1/kv?prefix=%ff%ff",
        "/v1/kv?prefix=%FForbit",
        "/v1/kv?start=%FF",
        "/v1/kv?start=%FF&end=%FF%FF",
        "/v1/kv/%FFanything",
        "/v1/kv/%FForbit%2Fcanary%2Fcrashed-pod",
        "/v1/kv/%ff%ff",
    ] {
        refused_as_reserved(path, &s.get(path).await);
    }
    refused_as_reserved(
        "PUT /v1/kv/%FFx",
        &s.call(Method::PUT, "/v1/kv/%FFx", &[], "v").await,
    );
    refused_as_reserved(
        "DELETE /v1/kv/%FF%FF",
        &s.call(Method::DELETE, "/v1/kv/%FF%FF", &[], "").await,
    );

    // The private entries were there all along: the final snapshot still
    // holds them.
    s.shut_down().await;
    let file = std::fs::read(&snapshot).unwrap();
    let body = &file[file.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let j: serde_json::Value = serde_json::from_slice(body).unwrap();
    let keys: Vec<Vec<u8>> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| STANDARD.decode(e["k"].as_str().unwrap()).unwrap())
        .collect();
    for private in [private_a, private_b] {
        assert!(keys.iter().any(|k| k == private), "{keys:?}");
    }
}
