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

use orbit_storage::{BatchOp, Precondition, PutOptions, Storage};

use super::error::{ApiError, rejection};
use super::kv::{check_key, expiry};
use super::{AppState, MAX_BATCH_OPS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    ops: Vec<OpRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum OpRequest {
    Put {
        key: String,
        /// The value as UTF-8 text...
        value: Option<String>,
        /// ... or as base64 bytes.
        value_base64: Option<String>,
        if_version: Option<u64>,
        #[serde(default)]
        if_absent: bool,
        ttl: Option<String>,
    },
    Delete {
        key: String,
        if_version: Option<u64>,
    },
}

#[derive(Serialize)]
pub struct BatchResponse {
    results: Vec<OpResult>,
}

#[derive(Serialize)]
struct OpResult {
    op: &'static str,
    key: String,
    /// New version of a put.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
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
                    op: "put",
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
                    op: "delete",
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
