//! The floor of orbit-server's HTTP path, for `http-bench`: the same router
//! shape (axum, the `/v1/kv/{*key}` route with its body limit, the token
//! check as a route layer, the request-tracking middleware around
//! everything, the same extractors and the same response headers and JSON)
//! with the work taken out: no metrics, no storage contract, no backend; the
//! handler answers from a map. orbit-server as a fraction of this is what
//! its own layers cost.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

#[derive(Clone, Default)]
struct Floor {
    map: Arc<RwLock<HashMap<String, (Bytes, u64)>>>,
    token: Option<Arc<String>>,
}

#[derive(Serialize)]
struct Written {
    key: String,
    version: u64,
    expires_at_ms: Option<u64>,
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes")
}

async fn get_key(
    State(s): State<Floor>,
    path: Result<Path<String>, PathRejection>,
    _headers: HeaderMap,
) -> Response {
    let Ok(Path(key)) = path else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let found = s.map.read().expect("not poisoned").get(&key).cloned();
    match found {
        Some((value, version)) => {
            let mut response = value.into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(header::ETAG, etag(version));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn put_key(
    State(s): State<Floor>,
    path: Result<Path<String>, PathRejection>,
    _headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (Ok(Path(key)), Ok(value)) = (path, body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let version = {
        let mut map = s.map.write().expect("not poisoned");
        let e = map.entry(key.clone()).or_insert((Bytes::new(), 0));
        e.0 = value;
        e.1 += 1;
        e.1
    };
    let mut response = axum::Json(Written {
        key,
        version,
        expires_at_ms: None,
    })
    .into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

/// The shape of orbit-server's request tracking, without the metrics.
async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().is_some();
    let started = Instant::now();
    let response = next.run(request).await;
    std::hint::black_box((route, response.status(), started.elapsed()));
    response
}

/// The shape of orbit-server's token check, with no token configured.
async fn require_token(State(s): State<Floor>, request: Request, next: Next) -> Response {
    if s.token.is_some() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(request).await
}

/// The floor router.
pub fn router() -> Router {
    let state = Floor::default();
    let api = Router::new()
        .route(
            "/v1/kv/{*key}",
            get(get_key)
                .put(put_key)
                .layer(DefaultBodyLimit::max(1 << 20)),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        .layer(middleware::from_fn(track))
        .with_state(state)
}

/// Serves the floor on `port` (loopback) until the process is killed, on a
/// multi-threaded runtime as orbit-server's.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, router()).await?;
        anyhow::Ok(())
    })
}
