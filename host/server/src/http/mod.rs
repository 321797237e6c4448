//! The HTTP surface: routes declared in one place, thin handlers, errors
//! mapped once ([`error`]).
//!
//! | route | what |
//! |---|---|
//! | `GET/PUT/DELETE /v1/kv/{key}` | one key ([`kv`]) |
//! | `GET /v1/kv?prefix=…` or `?start=…&end=…` | listing with `limit` and `cursor` |
//! | `POST /v1/batch` | atomic batch ([`batch`]) |
//! | `GET /health`, `/health/live` | liveness |
//! | `GET /health/ready` | the health plugin's verdict (200 or 503) |
//! | `GET /health/startup` | 200 once the backend is open |
//! | `GET /openapi.json` | the OpenAPI 3.1 description of all of the above ([`openapi`]) |
//! | `GET /metrics` (metrics port) | Prometheus text |

pub mod batch;
pub mod conditional;
pub mod error;
pub mod kv;
pub mod openapi;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use orbit_storage::Storage;
use serde::Serialize;
use utoipa::ToSchema;

use crate::health::{HealthService, Readiness};
use crate::instrumented::InstrumentedStorage;
use crate::metrics::Metrics;
use crate::settings::ApiToken;
use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<InstrumentedStorage>,
    pub health: Arc<HealthService>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub token: Option<Arc<ApiToken>>,
}

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

/// Most operations in one batch.
pub use orbit_storage::MAX_BATCH_OPS;
/// Most entries in one listing page.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The API router (port 8080 by default).
pub fn router(state: AppState) -> Router {
    let value_limit = state.limits.max_value_bytes;
    // A batch carries up to MAX_BATCH_OPS values, base64 in JSON (4/3 larger).
    let batch_limit = value_limit.saturating_mul(2).max(16 << 20);
    let api = Router::new()
        .route("/v1/kv", get(kv::list))
        .route("/v1/kv/", get(kv::list))
        .route(
            "/v1/kv/{*key}",
            get(kv::get)
                .put(kv::put)
                .delete(kv::delete)
                .layer(DefaultBodyLimit::max(value_limit)),
        )
        .route(
            "/v1/batch",
            post(batch::apply).layer(DefaultBodyLimit::max(batch_limit)),
        )
        .route_layer(middleware::from_fn_with_state(
            state.token.clone(),
            require_token,
        ));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/startup", get(startup))
        .route("/health/ready", get(ready))
        .route("/openapi.json", get(openapi::serve))
        .fallback(|| async {
            ApiError::NotFound("no such route; see the README for the API".into())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .with_state(state)
}

/// The metrics router (port 9090 by default).
pub fn metrics_router(metrics: Arc<Metrics>, storage: Arc<dyn Storage>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            let engine = storage.engine_metrics();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(&engine),
                )
            }
        }),
    )
}

/// Counts and times every request by route template, method and status.
/// Every label takes a bounded set of values whatever a client sends: the
/// route is a template of the router or `unmatched`, the method a standard
/// one or `other` ([`method_label`]), the status a number. The series are
/// resolved once ([`Metrics::record_http`]), so a request allocates no
/// label.
async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.record_http(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The `method` label of a request: the standard methods by name, any
/// other token (clients may send any) as `other`, so unauthenticated
/// clients cannot grow the metrics without bound.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// `Authorization: Bearer <token>` on `/v1/*` when a token is configured.
/// Settings refuse an empty token, and a missing, malformed or empty
/// credential is refused before any comparison.
async fn require_token(
    State(token): State<Option<Arc<ApiToken>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &token {
        let accepted = bearer_token(request.headers())
            .is_some_and(|presented| tokens_match(presented.as_bytes(), token.0.as_bytes()));
        if !accepted {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// The non-empty credential of `Authorization: Bearer <token>` (the scheme
/// is case-insensitive, RFC 9110 11.1), or `None`.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// Compares SHA-256 digests without an early exit, so neither the position
/// of the first differing byte nor the token's length shows in the timing.
/// An empty side never matches.
fn tokens_match(presented: &[u8], expected: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    if presented.is_empty() || expected.is_empty() {
        return false;
    }
    let (a, b) = (Sha256::digest(presented), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// What the liveness and start-up probes answer.
#[derive(Serialize, ToSchema)]
pub struct ProbeStatus {
    status: ProbeState,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// `/health`, `/health/live`: the health plugin's last verdict is live.
    Alive,
    /// `/health`, `/health/live`: it is not.
    Unavailable,
    /// `/health/startup`: the backend is open.
    Started,
}

/// Liveness (the same as `/health/live`).
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "Live.", body = ProbeStatus),
        (status = 503, description = "Not live: restart the process.", body = ProbeStatus),
    ),
)]
pub async fn health(state: State<AppState>) -> Response {
    live(state).await
}

/// Liveness: the health plugin's last `live`.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses(
        (status = 200, description = "Live.", body = ProbeStatus),
        (status = 503, description = "Not live: restart the process.", body = ProbeStatus),
    ),
)]
pub async fn live(State(state): State<AppState>) -> Response {
    let (status, state) = if state.health.live() {
        (StatusCode::OK, ProbeState::Alive)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ProbeState::Unavailable)
    };
    (status, axum::Json(ProbeStatus { status: state })).into_response()
}

/// Start-up: the server listens only after the backend is open, so
/// answering at all means start-up is done.
#[utoipa::path(
    get,
    path = "/health/startup",
    tag = "health",
    responses(
        (status = 200, description = "Started.", body = ProbeStatus),
    ),
)]
pub async fn startup() -> Response {
    (
        StatusCode::OK,
        axum::Json(ProbeStatus {
            status: ProbeState::Started,
        }),
    )
        .into_response()
}

/// Readiness: the health plugin's verdict, with the backend's detail, the
/// canary write and read, the plugins in service and policy-plugin changes
/// waiting for the next start. Evaluated at most once a second.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "Not ready; `reasons` says why.", body = Readiness),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let r = state.health.readiness().await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(r)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        for (m, label) in [
            (Method::GET, "GET"),
            (Method::HEAD, "HEAD"),
            (Method::PUT, "PUT"),
            (Method::POST, "POST"),
            (Method::DELETE, "DELETE"),
            (Method::OPTIONS, "OPTIONS"),
            (Method::PATCH, "PATCH"),
            (Method::TRACE, "TRACE"),
            (Method::CONNECT, "CONNECT"),
        ] {
            assert_eq!(method_label(&m), label);
        }
        for token in ["get", "PROPFIND", "XYZZY123", "BREW"] {
            let m = Method::from_bytes(token.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{token}");
        }
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        assert_eq!(bearer_token(&auth("Bearer")), None);
        assert_eq!(bearer_token(&auth("Bearer ")), None);
        assert_eq!(bearer_token(&auth("Basic dXNlcjpw")), None);
        assert_eq!(bearer_token(&auth("Bearer t0k")), Some("t0k"));
        assert_eq!(bearer_token(&auth("bearer t0k")), Some("t0k"));
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_match(b"t0k3n", b"t0k3n"));
        assert!(!tokens_match(b"t0k3n", b"t0k3m"));
        assert!(!tokens_match(b"t0k", b"t0k3n"));
        assert!(!tokens_match(b"", b""));
        assert!(!tokens_match(b"", b"t0k3n"));
    }
}
