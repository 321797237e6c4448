//! The one place errors become HTTP responses: a status and a JSON body
//! `{"error": {"code": "...", "message": "...", ...}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use orbit_storage::StorageError;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// An extractor refused the request; its status (415, 422, ...) is kept.
    Rejected(StatusCode, String),
    Unauthorized,
    NotFound(String),
    MethodNotAllowed,
    PreconditionFailed {
        key: String,
        current_version: Option<u64>,
    },
    PayloadTooLarge(String),
    Storage(StorageError),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict { key, current } => ApiError::PreconditionFailed {
                key,
                current_version: current,
            },
            other => ApiError::Storage(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, extra) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m, json!({})),
            ApiError::Rejected(status, m) => {
                let code = match status {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
                    _ => "bad_request",
                };
                (status, code, m, json!({}))
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint requires `Authorization: Bearer <token>` (ORBIT_API_TOKEN)"
                    .to_string(),
                json!({}),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, json!({})),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route".to_string(),
                json!({}),
            ),
            ApiError::PreconditionFailed {
                key,
                current_version,
            } => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                match current_version {
                    Some(v) => {
                        format!("precondition failed for key {key:?}: its current version is {v}")
                    }
                    None => format!("precondition failed for key {key:?}: it does not exist"),
                },
                json!({ "key": key, "current_version": current_version }),
            ),
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m,
                json!({}),
            ),
            ApiError::Storage(e) => {
                let status = match &e {
                    StorageError::Invalid(_) => StatusCode::BAD_REQUEST,
                    StorageError::CapacityExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
                    StorageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    StorageError::Conflict { .. } => StatusCode::PRECONDITION_FAILED,
                    StorageError::Corrupt { .. } | StorageError::Io { .. } => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                if status.is_server_error() {
                    tracing::error!(error = %e, "backend error");
                }
                (status, e.kind(), e.to_string(), json!({}))
            }
        };
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let (Some(obj), Some(extra)) = (body["error"].as_object_mut(), extra.as_object()) {
            obj.extend(extra.clone());
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Maps an extractor rejection (bad path, query, body or JSON) to a JSON
/// error, keeping its status (400, 413, 415, 422) and message.
pub fn rejection(status: StatusCode, message: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(message),
        s if s.is_client_error() => ApiError::Rejected(s, message),
        _ => ApiError::BadRequest(message),
    }
}
