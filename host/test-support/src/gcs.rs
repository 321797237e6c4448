//! A small Google Cloud Storage XML-API server for the GCS tests and the
//! manifest-driven deployment test (as the `orbit-gcs-test-server` binary).
//!
//! No GCS stand-in handles object_store's writes (see the toolchain notes),
//! so this serves exactly what object_store 0.14's GCS client sends, with
//! GCS semantics where they matter to the backend: every write creates a
//! new *generation*; `x-goog-if-generation-match: 0` means "create only",
//! `x-goog-if-generation-match: N` means "only if the live generation is N"
//! (412 otherwise); GET / HEAD return `ETag`, `x-goog-generation` and
//! `Last-Modified`; LIST is ListObjectsV2-style XML with `prefix`,
//! `start-after`, `max-keys` and `continuation-token`, in name order.
//! It is a test double for the protocol, not Google: the backend's docs say
//! GCS was checked against it only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Clone)]
struct Object {
    data: Bytes,
    generation: u64,
    modified: SystemTime,
}

#[derive(Default)]
struct Bucket {
    objects: BTreeMap<String, Object>,
    next_generation: u64,
}

type Shared = Arc<Mutex<BTreeMap<String, Bucket>>>;

pub struct Server {
    pub port: u16,
}

impl Server {
    /// Starts the server on its own thread and runtime (it outlives every
    /// test's runtime).
    pub fn start() -> Server {
        Self::start_on(0)
    }

    /// Like [`Server::start`], on loopback port `port` (0: any free port).
    pub fn start_on(port: u16) -> Server {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind GCS test server");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let state: Shared = Arc::default();
                let app = Router::new()
                    .route("/{bucket}", get(list))
                    .route(
                        "/{bucket}/{*object}",
                        get(object).head(object).put(object).delete(object),
                    )
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Server { port }
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>"),
    )
        .into_response()
}

fn object_headers(object: &Object) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let etag = format!("\"g{}\"", object.generation);
    headers.insert("etag", HeaderValue::from_str(&etag).unwrap());
    headers.insert(
        "x-goog-generation",
        HeaderValue::from_str(&object.generation.to_string()).unwrap(),
    );
    headers.insert(
        "last-modified",
        HeaderValue::from_str(&crate::dates::http_date(object.modified)).unwrap(),
    );
    headers
}

async fn object(
    method: Method,
    State(state): State<Shared>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut buckets = state.lock().unwrap();
    let bucket = buckets.entry(bucket).or_default();
    let live = bucket.objects.get(&name).cloned();
    match method {
        Method::GET | Method::HEAD => match live {
            None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
            Some(object) => {
                let headers = object_headers(&object);
                if method == Method::HEAD {
                    let mut response = (StatusCode::OK, headers).into_response();
                    response.headers_mut().insert(
                        "content-length",
                        HeaderValue::from_str(&object.data.len().to_string()).unwrap(),
                    );
                    response
                } else {
                    (StatusCode::OK, headers, object.data).into_response()
                }
            }
        },
        Method::PUT => {
            if let Some(expected) = headers.get("x-goog-if-generation-match") {
                let Some(expected) = expected.to_str().ok().and_then(|v| v.parse::<u64>().ok())
                else {
                    return error(StatusCode::BAD_REQUEST, "InvalidArgument");
                };
                let current = live.as_ref().map_or(0, |o| o.generation);
                if current != expected {
                    return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
                }
            }
            bucket.next_generation += 1;
            let object = Object {
                data: body,
                generation: 1_000 + bucket.next_generation,
                modified: SystemTime::now(),
            };
            let headers = object_headers(&object);
            bucket.objects.insert(name, object);
            (StatusCode::OK, headers).into_response()
        }
        Method::DELETE => match bucket.objects.remove(&name) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
        },
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn list(
    State(state): State<Shared>,
    Path(bucket): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let buckets = state.lock().unwrap();
    let empty = Bucket::default();
    let bucket = buckets.get(&bucket).unwrap_or(&empty);
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let after = query
        .get("continuation-token")
        .or(query.get("start-after"))
        .cloned()
        .unwrap_or_default();
    let max_keys: usize = query
        .get("max-keys")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let mut body = String::from(
        "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>",
    );
    let mut last = None;
    let mut truncated = false;
    for (count, (name, object)) in bucket
        .objects
        .range::<String, _>((
            std::ops::Bound::Excluded(&after),
            std::ops::Bound::Unbounded,
        ))
        .filter(|(name, _)| name.starts_with(&prefix))
        .enumerate()
    {
        if count == max_keys {
            truncated = true;
            break;
        }
        body.push_str(&format!(
            "<Contents><Key>{}</Key><Size>{}</Size><LastModified>{}</LastModified><ETag>\"g{}\"</ETag></Contents>",
            xml_escape(name),
            object.data.len(),
            crate::dates::rfc3339(object.modified),
            object.generation
        ));
        last = Some(name.clone());
    }
    if truncated && let Some(last) = last {
        body.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_escape(&last)
        ));
    }
    body.push_str("</ListBucketResult>");
    (StatusCode::OK, [("content-type", "application/xml")], body).into_response()
}
