//! The key-value API over real HTTP, the server in the test process
//! (memory backend): round trips, compare-and-set, RFC 9110 conditional
//! requests, listing pages bounded by bytes, TTL, atomic batches, malformed
//! requests, the bearer token, health and metrics.

mod in_process;

use hyper::Method;
use in_process::start;

fn memory_only() -> Vec<(&'static str, &'static str)> {
    vec![("ORBIT_MEMORY_DISK_BACKUP", "false")]
}

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;

    let r = s.put("/v1/kv/actors/a%2Fb", "state-1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v1 = r.header("etag").unwrap().to_string();
    assert_eq!(r.json()["key"], "actors/a/b");

    let r = s.get("/v1/kv/actors/a%2Fb").await;
    assert_eq!((r.status, r.text().as_str()), (200, "state-1"));
    assert_eq!(r.header("etag"), Some(v1.as_str()));

    // Binary values survive untouched.
    let bin: Vec<u8> = (0..=255u8).collect();
    let r = s.call(Method::PUT, "/v1/kv/bin", &[], bin.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/v1/kv/bin").await.body.to_vec(), bin);

    for i in 0..25 {
        assert_eq!(s.put(&format!("/v1/kv/list/{i:02}"), "x").await.status, 200);
    }
    // Pagination with a cursor returns every key once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/kv?prefix=list/&limit=10&cursor={c}"),
            None => "/v1/kv?prefix=list/&limit=10".to_string(),
        };
        let page = s.get(&path).await.json();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["key"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("list/{i:02}")).collect();
    assert_eq!(seen, expected);

    // Range listing with values.
    let page = s
        .get("/v1/kv?start=list/05&end=list/07&values=true")
        .await
        .json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["value_base64"], "eA==");

    let r = s.call(Method::DELETE, "/v1/kv/bin", &[], "").await;
    assert_eq!(r.status, 204);
    let r = s.get("/v1/kv/bin").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert_eq!(
        s.call(Method::DELETE, "/v1/kv/bin", &[], "").await.status,
        404
    );
}

#[tokio::test]
async fn compare_and_set_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;

    let create = [("if-none-match", "*")];
    let r = s.call(Method::PUT, "/v1/kv/lease", &create, "node-1").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let etag = r.header("etag").unwrap().to_string();
    let r = s.call(Method::PUT, "/v1/kv/lease", &create, "node-2").await;
    assert_eq!(r.status, 412);
    let body = r.json();
    assert_eq!(body["error"]["code"], "precondition_failed");
    assert_eq!(format!("\"{}\"", body["error"]["current_version"]), etag);

    let r = s
        .call(
            Method::PUT,
            "/v1/kv/lease",
            &[("if-match", &etag)],
            "node-2",
        )
        .await;
    assert_eq!(r.status, 200);
    let newer = r.header("etag").unwrap().to_string();
    // The old version no longer matches: update and delete both refused.
    assert_eq!(
        s.call(
            Method::PUT,
            "/v1/kv/lease",
            &[("if-match", &etag)],
            "node-3"
        )
        .await
        .status,
        412
    );
    assert_eq!(
        s.call(Method::DELETE, "/v1/kv/lease", &[("if-match", &etag)], "")
            .await
            .status,
        412
    );
    assert_eq!(s.get("/v1/kv/lease").await.text(), "node-2");
    assert_eq!(
        s.call(Method::DELETE, "/v1/kv/lease", &[("if-match", &newer)], "")
            .await
            .status,
        204
    );
}

/// Issue 15, hole 7: If-Match and If-None-Match as RFC 9110 defines them.
#[tokio::test]
async fn conditional_requests_follow_rfc_9110() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;
    let put = |headers: &'static [(&'static str, &'static str)]| {
        let s = &s;
        async move { s.call(Method::PUT, "/v1/kv/c", headers, "x").await }
    };
    // Absent key: If-Match never holds, * included.
    assert_eq!(put(&[("if-match", "*")]).await.status, 412);
    assert_eq!(put(&[("if-match", "\"nope\"")]).await.status, 412);
    let v = s.put("/v1/kv/c", "one").await.json()["version"]
        .as_u64()
        .unwrap();
    let tag = format!("\"{v}\"");
    let weak = format!("W/{tag}");
    let call = |method: Method, headers: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            s.call(method, "/v1/kv/c", &headers, "x").await
        }
    };
    // A well-formed tag that names no version is 412, not 400.
    let r = call(Method::PUT, vec![("if-match", "\"nope\"".into())]).await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["error"]["current_version"], v);
    // Strong comparison: a weak tag never matches If-Match.
    assert_eq!(
        call(Method::PUT, vec![("if-match", weak.clone())])
            .await
            .status,
        412
    );
    // If-Match: * holds for an existing key.
    let r = call(Method::PUT, vec![("if-match", "*".into())]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json()["version"].as_u64().unwrap();
    let tag = format!("\"{v}\"");
    // A list matches if any member does, over several header lines too.
    let r = call(
        Method::PUT,
        vec![
            ("if-match", "\"1\", W/\"2\"".into()),
            ("if-match", tag.clone()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json()["version"].as_u64().unwrap();
    let tag = format!("\"{v}\"");
    let weak = format!("W/{tag}");
    // If-None-Match uses the weak comparison: GET answers 304 with the ETag,
    // a write answers 412; a tag that does not match lets the request through.
    let r = call(Method::GET, vec![("if-none-match", weak.clone())]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    assert_eq!(
        call(Method::PUT, vec![("if-none-match", weak)])
            .await
            .status,
        412
    );
    assert_eq!(
        call(Method::GET, vec![("if-none-match", "\"0\"".into())])
            .await
            .status,
        200
    );
    // GET with a failing If-Match is 412.
    assert_eq!(
        call(Method::GET, vec![("if-match", "\"0\"".into())])
            .await
            .status,
        412
    );
    // If-Match evaluated before If-None-Match (RFC 9110 §13.2.2).
    let r = call(
        Method::PUT,
        vec![("if-match", tag.clone()), ("if-none-match", "\"0\"".into())],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json()["version"].as_u64().unwrap();
    // DELETE with a list.
    let r = call(
        Method::DELETE,
        vec![("if-match", format!("\"0\", \"{v}\""))],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Malformed fields are 400 and say what is accepted.
    for bad in ["17", "W/17", "\"a", "*, \"1\""] {
        let r = call(Method::PUT, vec![("if-match", bad.into())]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().contains("entity-tags"), "{}", r.text());
    }
}

/// Issue 15, hole 8: a listing page is bounded by bytes as well as entries.
#[tokio::test]
async fn listing_pages_stop_at_their_byte_bound() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;
    let big = vec![b'v'; 1 << 20];
    for i in 0..10 {
        let r = s
            .call(Method::PUT, &format!("/v1/kv/big/{i}"), &[], big.clone())
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/kv?prefix=big/&limit=1000&values=true&cursor={c}"),
            None => "/v1/kv?prefix=big/&limit=1000&values=true".to_string(),
        };
        let r = s.get(&path).await;
        assert_eq!(r.status, 200);
        assert!(r.body.len() < 7 << 20, "a page of {} bytes", r.body.len());
        let j = r.json();
        let items = j["items"].as_array().unwrap();
        assert!(
            !items.is_empty() && items.len() <= 4,
            "{} items",
            items.len()
        );
        seen += items.len();
        pages += 1;
        match j["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!((seen, pages >= 3), (10, true), "{pages} pages");
    // Without values, one page holds every key with its size.
    let j = s.get("/v1/kv?prefix=big/&limit=1000").await.json();
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(
        items
            .iter()
            .all(|i| i["size"] == 1 << 20 && i.get("value_base64").is_none())
    );
}

#[tokio::test]
async fn ttl_expires_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;
    assert_eq!(s.put("/v1/kv/short?ttl=300ms", "x").await.status, 200);
    assert_eq!(s.put("/v1/kv/long?ttl=1h", "y").await.status, 200);
    assert_eq!(s.get("/v1/kv/short").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(s.get("/v1/kv/short").await.status, 404);
    let page = s.get("/v1/kv").await.json();
    let keys: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(keys, vec![serde_json::json!("long")]);
    // An expired key counts as absent for create-if-absent.
    let r = s
        .call(
            Method::PUT,
            "/v1/kv/short",
            &[("if-none-match", "*")],
            "again",
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn batch_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &memory_only()).await;
    let r = s
        .call(
            Method::POST,
            "/v1/batch",
            &[("content-type", "application/json")],
            r#"{"ops":[{"op":"put","key":"a","value":"1","if_absent":true},
                       {"op":"put","key":"b","value_base64":"AAE=","ttl":"1h"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let va = r.json()["results"][0]["version"].as_u64().unwrap();

    // One failing precondition: nothing of the batch is applied.
    let r = s
        .call(
            Method::POST,
            "/v1/batch",
            &[("content-type", "application/json")],
            r#"{"ops":[{"op":"put","key":"c","value":"3"},
                       {"op":"delete","key":"a","if_version":999999}]}"#,
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["error"]["key"], "a");
    assert_eq!(s.get("/v1/kv/c").await.status, 404);

    let body = format!(
        r#"{{"ops":[{{"op":"delete","key":"a","if_version":{va}}},{{"op":"put","key":"c","value":"3"}}]}}"#
    );
    let r = s
        .call(
            Method::POST,
            "/v1/batch",
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/v1/kv/a").await.status, 404);
    assert_eq!(s.get("/v1/kv/c").await.text(), "3");
    assert_eq!(s.get("/v1/kv/b").await.body.to_vec(), vec![0u8, 1]);
}

#[tokio::test]
async fn malformed_requests_get_json_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_MAX_VALUE_BYTES", "1KiB"),
        ],
    )
    .await;
    let json_ct = [("content-type", "application/json")];
    let long_key = format!("/v1/kv/{}", "k".repeat(2000));
    type Case<'a> = (Method, String, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            Method::PUT,
            "/v1/kv/x?ttl=forever".into(),
            vec![],
            b"v".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/v1/kv/x?ttl=0".into(),
            vec![],
            b"v".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/v1/kv/x?colour=red".into(),
            vec![],
            b"v".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/v1/kv/x".into(),
            vec![("if-match", "yesterday")],
            b"v".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/v1/kv/x".into(),
            vec![("if-match", "\"1\", *")],
            b"v".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/v1/kv/x".into(),
            vec![],
            vec![b'v'; 2048],
            413,
        ),
        (Method::PUT, long_key.clone(), vec![], b"v".to_vec(), 413),
        (Method::GET, "/v1/kv/%FF%FE".into(), vec![], vec![], 400),
        (Method::GET, "/v1/kv?limit=0".into(), vec![], vec![], 400),
        (Method::GET, "/v1/kv?limit=abc".into(), vec![], vec![], 400),
        (
            Method::GET,
            "/v1/kv?prefix=a&start=b".into(),
            vec![],
            vec![],
            400,
        ),
        (
            Method::GET,
            "/v1/kv?start=z&end=a".into(),
            vec![],
            vec![],
            400,
        ),
        (Method::GET, "/v1/kv?cursor=!!!".into(), vec![], vec![], 400),
        (
            Method::POST,
            "/v1/batch".into(),
            json_ct.to_vec(),
            b"{not json".to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v1/batch".into(),
            json_ct.to_vec(),
            br#"{"ops":[]}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v1/batch".into(),
            json_ct.to_vec(),
            br#"{"ops":[{"op":"upsert","key":"a"}]}"#.to_vec(),
            422,
        ),
        (
            Method::POST,
            "/v1/batch".into(),
            json_ct.to_vec(),
            br#"{"ops":[{"op":"put","key":"a"}]}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v1/batch".into(),
            json_ct.to_vec(),
            br#"{"ops":[{"op":"put","key":"","value":"v"}]}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/v1/batch".into(),
            vec![],
            br#"{"ops":[]}"#.to_vec(),
            415,
        ),
        (Method::GET, "/v2/nothing".into(), vec![], vec![], 404),
        (Method::PATCH, "/v1/kv/x".into(), vec![], vec![], 405),
    ];
    for (method, path, headers, body, want) in cases {
        let r = s.call(method.clone(), &path, &headers, body).await;
        let shown = if path.len() > 60 { &path[..60] } else { &path };
        assert_eq!(r.status, want, "{method} {shown}: {}", r.text());
        let j = r.json();
        assert!(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {shown}: {j}"
        );
    }
    // The server is still fine.
    assert_eq!(s.put("/v1/kv/x", "v").await.status, 200);
}

#[tokio::test]
async fn bearer_token_guards_the_api_but_not_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_API_TOKEN", "s3cret-token"),
        ],
    )
    .await;
    let r = s.put("/v1/kv/x", "v").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(!r.text().contains("s3cret-token"));
    let wrong = [("authorization", "Bearer nope")];
    assert_eq!(s.call(Method::GET, "/v1/kv", &wrong, "").await.status, 401);
    let ok = [("authorization", "Bearer s3cret-token")];
    assert_eq!(s.call(Method::PUT, "/v1/kv/x", &ok, "v").await.status, 200);
    assert_eq!(s.get("/health").await.status, 200);
    assert_eq!(s.get("/health/ready").await.status, 200);
    assert_eq!(s.get("/openapi.json").await.status, 200);
}

/// `/openapi.json` is the committed description (docs/openapi.json, which
/// tests/docs.rs keeps equal to what the code generates), OpenAPI 3.1, with
/// every route of the API.
#[tokio::test]
async fn the_openapi_description_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("ORBIT_MEMORY_DISK_BACKUP", "false")]).await;
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(r.text(), committed);
    let j = r.json();
    assert_eq!(j["openapi"], "3.1.0");
    let paths: Vec<&str> = j["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/health",
            "/health/live",
            "/health/ready",
            "/health/startup",
            "/openapi.json",
            "/v1/batch",
            "/v1/kv",
            "/v1/kv/{key}"
        ]
    );
    assert_eq!(
        j["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    for path in ["/health", "/health/live", "/health/startup"] {
        assert_eq!(s.get(path).await.status, 200, "{path}");
    }
    let r = s.get("/health/ready").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["ready"], true);
    assert_eq!(j["status"], "ok");
    assert_eq!(j["backend"]["kind"], "memory");
    assert_eq!(j["canary"]["ok"], true);
    assert_eq!(j["plugin"]["source"], "embedded:health");
    let reasons = j["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("canary")),
        "{j}"
    );

    s.put("/v1/kv/m", "1").await;
    let m = s.get("/metrics").await.text();
    for needle in [
        r#"orbit_http_requests_total{route="/v1/kv/{*key}",method="PUT",status="200"} 1"#,
        "orbit_http_request_duration_seconds_bucket",
        r#"orbit_plugin_calls_total{role="selector",function="select",outcome="ok"} 1"#,
        r#"orbit_plugin_calls_total{role="translator",function="translate",outcome="ok"} 1"#,
        r#"orbit_plugin_calls_total{role="health",function="evaluate",outcome="ok"}"#,
        "orbit_plugin_call_duration_seconds_bucket",
        r#"orbit_backend_operations_total{backend="memory",operation="put",outcome="ok"}"#,
        "orbit_ready 1",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
}

/// The engine's own statistics are in `/metrics` (RocksDB tickers as
/// OpenMetrics counters).
#[tokio::test]
async fn rocksdb_statistics_are_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("ORBIT_PERSISTENCE_BACKEND", "rocksdb")]).await;
    assert_eq!(s.put("/v1/kv/k", "v").await.status, 200);
    let metrics = s.get("/metrics").await.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("orbit_engine_rocksdb_keys_written_total "))
        .unwrap_or_else(|| panic!("no RocksDB ticker in /metrics:\n{metrics}"));
    let written: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(written >= 1, "{line}");
    assert!(
        metrics.contains("# TYPE orbit_engine_rocksdb_keys_written counter"),
        "tickers are OpenMetrics counters"
    );
    assert!(
        metrics.trim_end().ends_with("# EOF"),
        "one # EOF, at the end"
    );
}
