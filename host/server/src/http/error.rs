//! The one place errors become HTTP responses: a status and a JSON body
//! `{"error": {"code": "...", "message": "...", ...}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

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

/// The body of every error answer: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For a person: what was refused and what is accepted.
    pub message: String,
    /// `412` only: the key whose precondition failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `412` only: the key's current version, `null` when it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>, minimum = 0)]
    pub current_version: Option<Option<u64>>,
}

/// The machine-readable kind of an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a malformed request (header, query, key, TTL, cursor, JSON).
    BadRequest,
    /// 415: the batch body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed JSON that is not a batch.
    UnprocessableEntity,
    /// 401: `/v1` without the configured bearer token.
    Unauthorized,
    /// 404: no such key, or no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 412: a precondition (`If-Match`, `If-None-Match`, `if_version`,
    /// `if_absent`) does not hold.
    PreconditionFailed,
    /// 413: a key or value above its limit.
    PayloadTooLarge,
    /// 400: the storage layer refused the request (e.g. a private key).
    Invalid,
    /// 507: the backend is full.
    Capacity,
    /// 412: a storage-level conflict.
    Conflict,
    /// 500: the backend found corrupt data.
    Corrupt,
    /// 500: the backend's I/O failed.
    Io,
    /// 503: the backend is unavailable (object storage down, shutting down).
    Unavailable,
}

impl ErrorCode {
    fn of_storage(e: &StorageError) -> Self {
        match e {
            StorageError::Conflict { .. } => ErrorCode::Conflict,
            StorageError::Invalid(_) => ErrorCode::Invalid,
            StorageError::CapacityExceeded(_) => ErrorCode::Capacity,
            StorageError::Corrupt { .. } => ErrorCode::Corrupt,
            StorageError::Io { .. } => ErrorCode::Io,
            StorageError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

impl ErrorBody {
    fn new(code: ErrorCode, message: String) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message,
                key: None,
                current_version: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                ErrorBody::new(ErrorCode::BadRequest, m),
            ),
            ApiError::Rejected(status, m) => {
                let code = match status {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
                    StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::UnprocessableEntity,
                    _ => ErrorCode::BadRequest,
                };
                (status, ErrorBody::new(code, m))
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorBody::new(
                    ErrorCode::Unauthorized,
                    "this endpoint requires `Authorization: Bearer <token>` (ORBIT_API_TOKEN)"
                        .to_string(),
                ),
            ),
            ApiError::NotFound(m) => (
                StatusCode::NOT_FOUND,
                ErrorBody::new(ErrorCode::NotFound, m),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorBody::new(
                    ErrorCode::MethodNotAllowed,
                    "method not allowed on this route".to_string(),
                ),
            ),
            ApiError::PreconditionFailed {
                key,
                current_version,
            } => {
                let message = match current_version {
                    Some(v) => {
                        format!("precondition failed for key {key:?}: its current version is {v}")
                    }
                    None => format!("precondition failed for key {key:?}: it does not exist"),
                };
                let mut body = ErrorBody::new(ErrorCode::PreconditionFailed, message);
                body.error.key = Some(key);
                body.error.current_version = Some(current_version);
                (StatusCode::PRECONDITION_FAILED, body)
            }
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorBody::new(ErrorCode::PayloadTooLarge, m),
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
                (
                    status,
                    ErrorBody::new(ErrorCode::of_storage(&e), e.to_string()),
                )
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_error_codes_are_the_storage_kinds() {
        for e in [
            StorageError::conflict(b"k", Some(1)),
            StorageError::Invalid("x".into()),
            StorageError::CapacityExceeded("x".into()),
            StorageError::Unavailable("x".into()),
            StorageError::Corrupt {
                path: "/x".into(),
                reason: "x".into(),
            },
            StorageError::io("read", "/x", std::io::Error::other("x")),
        ] {
            let code = serde_json::to_value(ErrorCode::of_storage(&e)).unwrap();
            assert_eq!(code, e.kind(), "{e}");
        }
    }
}
