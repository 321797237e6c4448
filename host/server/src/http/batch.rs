//! `POST /v1/batch`: several puts and deletes applied atomically, with
//! per-operation preconditions. If any precondition fails nothing is written
//! and the answer is `412` naming the key.
//!
//! ```json
//! {"ops": [
//!   {"op": "put", "key": "lease/a", "value": "node-1", "if_absent": true, "ttl": "30s"},
//!   {"op": "put", "key": "blob", "value_base64": "AAEC"},
//!   {"op": "delete", "key": "lease/b", "if_version": 17}
//! ]}
//! ```

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use orbit_storage::{BatchOp, Precondition, PutOptions, Storage};

use super::error::{ApiError, ErrorBody, rejection};
use super::kv::{
    BACKEND_FAILED_DOC, BACKEND_FULL_DOC, BACKEND_UNAVAILABLE_DOC, PRECONDITION_DOC, check_key,
    expiry,
};
use super::{AppState, MAX_BATCH_OPS};

/// Operations applied atomically: all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[schema(min_items = 1, max_items = 1000)]
    ops: Vec<OpRequest>,
}

/// One operation of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpRequest {
    /// Write a key; exactly one of `value` and `value_base64`.
    Put {
        #[schema(min_length = 1)]
        key: String,
        /// The value as UTF-8 text...
        value: Option<String>,
        /// ... or as base64 bytes.
        #[schema(pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]
        value_base64: Option<String>,
        /// Only if the key is at this version (not with `if_absent`).
        if_version: Option<u64>,
        /// Only if the key does not exist.
        #[serde(default)]
        if_absent: bool,
        /// Time to live, as for `PUT /v1/kv/{key}?ttl=`.
        #[schema(pattern = "^0*[1-9][0-9]{0,11}(ms|s|m|h)?$")]
        ttl: Option<String>,
    },
    /// Delete a key (deleting an absent key is not an error).
    Delete {
        #[schema(min_length = 1)]
        key: String,
        /// Only if the key is at this version.
        if_version: Option<u64>,
    },
}

/// What each operation did, in request order.
#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    results: Vec<OpResult>,
}

/// What one operation did.
#[derive(Serialize, ToSchema)]
pub struct OpResult {
    op: OpKind,
    key: String,
    /// New version of a put.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

/// The kind of a batch operation.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Put,
    Delete,
}

fn precondition(
    i: usize,
    if_version: Option<u64>,
    if_absent: bool,
) -> Result<Precondition, ApiError> {
    match (if_version, if_absent) {
        (Some(_), true) => Err(ApiError::BadRequest(format!(
            "ops[{i}]: give if_version or if_absent, not both"
        ))),
        (Some(v), false) => Ok(Precondition::Version(v)),
        (None, true) => Ok(Precondition::Absent),
        (None, false) => Ok(Precondition::None),
    }
}

/// Apply a batch.
///
/// Up to 1000 puts and deletes, each with its own precondition, applied
/// atomically: if any precondition fails, nothing is written.
#[utoipa::path(
    post,
    path = "/v1/batch",
    tag = "batch",
    operation_id = "apply_batch",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Every operation applied.", body = BatchResponse),
        (status = 400, description = "Malformed JSON, or an operation the server refuses: an empty or private key, no or both values, bad base64, both `if_version` and `if_absent`, a bad `ttl`, no or more than 1000 operations.", body = ErrorBody),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 412, description = PRECONDITION_DOC, body = ErrorBody),
        (status = 413, description = "The body, a key or a value is above its limit.", body = ErrorBody),
        (status = 415, description = "The body is not `Content-Type: application/json`.", body = ErrorBody),
        (status = 422, description = "JSON that is not a batch (a missing or unknown field, a wrong type).", body = ErrorBody),
        (status = 500, description = BACKEND_FAILED_DOC, body = ErrorBody),
        (status = 503, description = BACKEND_UNAVAILABLE_DOC, body = ErrorBody),
        (status = 507, description = BACKEND_FULL_DOC, body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn apply(
    State(state): State<AppState>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    let Json(request) = body.map_err(|r| rejection(r.status(), r.body_text()))?;
    if request.ops.is_empty() || request.ops.len() > MAX_BATCH_OPS {
        return Err(ApiError::BadRequest(format!(
            "a batch holds 1 to {MAX_BATCH_OPS} operations; this one has {}",
            request.ops.len()
        )));
    }
    let mut ops = Vec::with_capacity(request.ops.len());
    let mut results = Vec::with_capacity(request.ops.len());
    for (i, op) in request.ops.into_iter().enumerate() {
        match op {
            OpRequest::Put {
                key,
                value,
                value_base64,
                if_version,
                if_absent,
                ttl,
            } => {
                check_key(&key, &state.limits).map_err(|e| prefix_error(i, e))?;
                let value = match (value, value_base64) {
                    (Some(v), None) => Bytes::from(v),
                    (None, Some(b)) => Bytes::from(STANDARD.decode(b.as_bytes()).map_err(|e| {
                        ApiError::BadRequest(format!(
                            "ops[{i}].value_base64 is not valid base64: {e}"
                        ))
                    })?),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "ops[{i}]: a put needs exactly one of value (text) or value_base64"
                        )));
                    }
                };
                if value.len() > state.limits.max_value_bytes {
                    return Err(ApiError::PayloadTooLarge(format!(
                        "ops[{i}]: the value is {} bytes; the limit is {} bytes (ORBIT_MAX_VALUE_BYTES)",
                        value.len(),
                        state.limits.max_value_bytes
                    )));
                }
                let options = PutOptions {
                    precondition: precondition(i, if_version, if_absent)?,
                    expires_at: expiry(ttl.as_deref()).map_err(|e| prefix_error(i, e))?,
                };
                ops.push(BatchOp::Put {
                    key: Bytes::from(key.clone()),
                    value,
                    options,
                });
                results.push(OpResult {
                    op: OpKind::Put,
                    key,
                    version: None,
                });
            }
            OpRequest::Delete { key, if_version } => {
                check_key(&key, &state.limits).map_err(|e| prefix_error(i, e))?;
                ops.push(BatchOp::Delete {
                    key: Bytes::from(key.clone()),
                    precondition: precondition(i, if_version, false)?,
                });
                results.push(OpResult {
                    op: OpKind::Delete,
                    key,
                    version: None,
                });
            }
        }
    }
    let versions = state.storage.batch(ops).await?;
    for (r, v) in results.iter_mut().zip(versions) {
        r.version = v;
    }
    Ok((StatusCode::OK, Json(BatchResponse { results })))
}

fn prefix_error(i: usize, e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!("ops[{i}]: {m}")),
        ApiError::PayloadTooLarge(m) => ApiError::PayloadTooLarge(format!("ops[{i}]: {m}")),
        other => other,
    }
}
