//! The client against the real `orbit-server` (memory backend, bearer
//! token on): versions and preconditions, TTL, limits, listing as a stream,
//! atomic batches, health, and the retry rules (through a proxy that loses
//! the server's answer, and one that never answers).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use orbit_client::{
    BatchOp, Client, ClientConfig, Condition, Error, HealthStatus, ListOptions, RetryPolicy,
};
use support::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "client-test-token-1234";

fn server(dir: &std::path::Path) -> Server {
    Server::start(
        dir,
        &[
            ("ORBIT_PERSISTENCE_BACKEND", "memory"),
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_API_TOKEN", TOKEN),
            ("ORBIT_MAX_VALUE_BYTES", "1KiB"),
        ],
    )
}

fn client(url: &str) -> Client {
    Client::new(ClientConfig::new(url).with_token(TOKEN)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_preconditions_ttl_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let c = client(&s.http);

    let w1 = c.set("a/b c/é", "one").await.unwrap();
    let e = c.get("a/b c/é").await.unwrap().unwrap();
    assert_eq!((e.value.as_ref(), e.version), (&b"one"[..], w1.version));
    assert_eq!(e.expires_at_ms, None);

    // If-absent on an existing key: 412 with the current version.
    let err = c.create("a/b c/é", "two", None).await.unwrap_err();
    assert_eq!(
        err,
        Error::PreconditionFailed {
            key: "a/b c/é".into(),
            current_version: Some(w1.version)
        }
    );
    // Compare-and-set: the right version wins once, then is stale.
    let w2 = c
        .compare_and_set("a/b c/é", w1.version, "two", None)
        .await
        .unwrap();
    assert!(w2.version > w1.version);
    let stale = c
        .compare_and_set("a/b c/é", w1.version, "three", None)
        .await
        .unwrap_err();
    assert_eq!(stale.current_version(), Some(w2.version));
    // Delete-if-version: stale refused, current accepted, then absent.
    assert!(matches!(
        c.delete_if_version("a/b c/é", w1.version).await,
        Err(Error::PreconditionFailed { .. })
    ));
    assert!(c.delete_if_version("a/b c/é", w2.version).await.unwrap());
    assert_eq!(c.get("a/b c/é").await.unwrap(), None);
    assert!(!c.delete("a/b c/é", Condition::None).await.unwrap());
    // CAS on an absent key names it as absent.
    let absent = c.compare_and_set("nope", 1, "x", None).await.unwrap_err();
    assert_eq!(
        absent,
        Error::PreconditionFailed {
            key: "nope".into(),
            current_version: None
        }
    );

    // TTL: visible, then gone without anyone deleting it.
    let w = c
        .create("ttl", "x", Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(w.expires_at_ms.is_some());
    assert!(c.get("ttl").await.unwrap().unwrap().expires_at_ms.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.get("ttl").await.unwrap(), None);
    c.create("ttl", "again", None).await.unwrap();

    // Limits and the token.
    assert!(matches!(
        c.set("big", vec![b'x'; 4096]).await,
        Err(Error::TooLarge(_))
    ));
    let anonymous = Client::connect(&s.http).unwrap();
    assert_eq!(anonymous.get("ttl").await.unwrap_err(), Error::Unauthorized);
    let wrong = Client::new(ClientConfig::new(&s.http).with_token("wrong")).unwrap();
    assert_eq!(wrong.set("k", "v").await.unwrap_err(), Error::Unauthorized);
    assert!(matches!(c.get("").await, Err(Error::Invalid(_))));

    assert_eq!(c.health().await, HealthStatus::Healthy);
    let m = c.metrics();
    assert!(m.count("put", "precondition_failed") >= 3, "{m:?}");
    assert_eq!(m.count("put", "too_large"), 1);
    assert_eq!(m.retries, 0, "nothing was retried: {m:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_streams_every_page_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let c = client(&s.http);
    let ops: Vec<BatchOp> = (0..250)
        .map(|i| BatchOp::put(format!("list/{i:04}"), format!("v{i}")))
        .collect();
    c.batch(&ops).await.unwrap();
    c.set("lisu", "outside the prefix").await.unwrap();
    c.set("list+/x", "a plus sign").await.unwrap();

    let items: Vec<_> = c
        .list(ListOptions::prefix("list/").page_size(7).with_values())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 250);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.key, format!("list/{i:04}"));
        assert_eq!(item.value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
    let plus: Vec<_> = c
        .list(ListOptions::prefix("list+"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(plus.len(), 1, "{plus:?}");
    assert_eq!(plus[0].value, None, "no values unless asked");
    // A bad page size is refused before any request.
    let bad: Result<Vec<_>, _> = c
        .list(ListOptions::prefix("list/").page_size(0))
        .try_collect()
        .await;
    assert!(matches!(bad, Err(Error::Invalid(_))));
    assert!(c.metrics().total("list") >= 36);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let c = client(&s.http);
    let v = c.set("b/held", "x").await.unwrap().version;
    let failing = [
        BatchOp::put("b/new", "n").when(Condition::Absent),
        BatchOp::put("b/held", "y").when(Condition::Absent),
    ];
    let err = c.batch(&failing).await.unwrap_err();
    assert_eq!(
        err,
        Error::PreconditionFailed {
            key: "b/held".into(),
            current_version: Some(v)
        }
    );
    assert_eq!(c.get("b/new").await.unwrap(), None, "nothing applied");
    let ok = [
        BatchOp::put("b/new", vec![0u8, 0xFF])
            .when(Condition::Absent)
            .ttl(Duration::from_secs(60)),
        BatchOp::delete("b/held").when(Condition::Version(v)),
    ];
    let versions = c.batch(&ok).await.unwrap();
    assert!(versions[0].is_some() && versions[1].is_none());
    let e = c.get("b/new").await.unwrap().unwrap();
    assert_eq!(e.value.as_ref(), &[0u8, 0xFF]);
    assert!(e.expires_at_ms.is_some());
    assert_eq!(c.get("b/held").await.unwrap(), None);
    assert!(matches!(c.batch(&[]).await, Err(Error::Invalid(_))));
}

/// A TCP proxy to `upstream`. For the first `lose` connections it forwards
/// the request but drops the connection as soon as the server answers, so
/// the request was applied and the client never hears of it.
async fn lossy_proxy(upstream: String, lose: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                if n < lose {
                    let mut buf = vec![0u8; 64 * 1024];
                    let Ok(k) = inbound.read(&mut buf).await else {
                        return;
                    };
                    let _ = out.write_all(&buf[..k]).await;
                    let _ = out.read(&mut buf).await; // the answer arrives...
                    drop(inbound); // ...and is lost
                } else {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn through(url: &str) -> Client {
    Client::new(
        ClientConfig::new(url)
            .with_token(TOKEN)
            .with_retry(RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
            }),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_writes_survive_a_lost_answer_and_unconditional_ones_are_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let direct = client(&s.http);
    let upstream = s.http.trim_start_matches("http://").to_string();

    // If-absent create whose answer is lost: the repeat gets 412, the read
    // back shows our bytes, so it is reported as done.
    let (url, _) = lossy_proxy(upstream.clone(), 1).await;
    let c = through(&url);
    let w = c.create("r/create", "mine-1", None).await.unwrap();
    assert_eq!(
        direct.get("r/create").await.unwrap().unwrap().version,
        w.version
    );
    assert_eq!(c.metrics().resolved_by_readback, 1);

    // Compare-and-set whose answer is lost: the same.
    let (url, _) = lossy_proxy(upstream.clone(), 1).await;
    let c = through(&url);
    let w2 = c
        .compare_and_set("r/create", w.version, "mine-2", None)
        .await
        .unwrap();
    assert!(w2.version > w.version);
    assert_eq!(
        direct.get("r/create").await.unwrap().unwrap().version,
        w2.version
    );

    // A conditional batch whose answer is lost.
    let (url, _) = lossy_proxy(upstream.clone(), 1).await;
    let c = through(&url);
    let ops = [
        BatchOp::put("r/b1", "x").when(Condition::Absent),
        BatchOp::put("r/b2", "y"),
    ];
    let versions = c.batch(&ops).await.unwrap();
    assert_eq!(
        direct.get("r/b1").await.unwrap().unwrap().version,
        versions[0].unwrap()
    );

    // If someone else's value is there, a lost answer is not taken for a win.
    direct.set("r/theirs", "theirs").await.unwrap();
    let (url, _) = lossy_proxy(upstream.clone(), 1).await;
    let c = through(&url);
    assert!(matches!(
        c.create("r/theirs", "mine", None).await,
        Err(Error::PreconditionFailed { .. })
    ));

    // An unconditional put is not repeated: the caller hears the loss.
    let (url, seen) = lossy_proxy(upstream.clone(), 1).await;
    let c = through(&url);
    assert!(matches!(
        c.set("r/blind", "v").await,
        Err(Error::Transport(_))
    ));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "one attempt only");
    assert_eq!(c.metrics().retries, 0);

    // Reads are repeated, and fail over to the next endpoint.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let c = Client::new(
        ClientConfig::new(&dead)
            .with_endpoints(vec![dead.clone(), s.http.clone()])
            .with_token(TOKEN),
    )
    .unwrap();
    assert!(c.get("r/create").await.unwrap().is_some());
    assert_eq!(c.metrics().retries, 1);
    // A connection that was never made is safe to repeat, even unconditional.
    c.set("r/after-failover", "v").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_is_a_timeout_and_an_absent_one_is_unhealthy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s); // accept, never answer
        }
    });
    let c = Client::new(
        ClientConfig::new(&url)
            .with_timeout(Duration::from_millis(200))
            .with_retry(RetryPolicy::none()),
    )
    .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        c.get("k").await.unwrap_err(),
        Error::Timeout(Duration::from_millis(200))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let gone = Client::connect(&format!("http://127.0.0.1:{}", support::free_port())).unwrap();
    assert!(matches!(
        gone.health().await,
        HealthStatus::Unhealthy { reason } if reason.contains("unreachable")
    ));
}
