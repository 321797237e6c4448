//! `/v1/kv`: one key at a time, and listings.
//!
//! Keys are the (percent-decoded) rest of the path and must be UTF-8.
//! Keys starting with byte 0xFF (the host's private keyspace) are refused
//! everywhere, and listings never reach them
//! ([`KeyRange::clamp_to_user_keyspace`]).
//! Versions travel as strong ETags (`"17"`); `If-Match` and `If-None-Match`
//! follow RFC 9110 (see [`super::conditional`]): `If-Match: "17"` updates or
//! deletes only that version, `If-None-Match: *` creates only if absent, a
//! failed precondition is `412` with the current version in the body, and a
//! GET whose `If-None-Match` matches is `304`. `?ttl=30s` gives a key an
//! expiry. Listings stop a page at [`LIST_PAGE_BYTES`] as well as at
//! `limit`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use orbit_storage::{
    KeyRange, ListQuery, Listed, Precondition, PutOptions, Storage, StorageError, is_private_key,
    now_millis,
};

use super::conditional::{Conditions, Failed};
use super::error::{ApiError, ErrorBody, rejection};
use super::openapi::Binary;
use super::{AppState, Limits, MAX_LIST_LIMIT};

pub(super) const KEY_DOC: &str = "The key: the rest of the path, percent-decoded, UTF-8, up to `ORBIT_MAX_KEY_BYTES` (default 1024) bytes; it may contain `/`.";
pub(super) const IF_MATCH_DOC: &str = "`*` or a comma-separated list of entity-tags (`\"17\"`): the request applies only if the key's version is one of them (strong comparison; `*`: the key exists). Malformed: 400.";
pub(super) const IF_NONE_MATCH_DOC: &str = "`*` or a comma-separated list of entity-tags: the request applies only if the key's version is none of them (weak comparison; `*`: the key does not exist). A GET that matches is 304. Malformed: 400.";
pub(super) const BAD_REQUEST_DOC: &str = "A malformed request: an empty or private key, a malformed `If-Match` or `If-None-Match`, a bad `ttl`, an unknown query parameter.";
pub(super) const PRECONDITION_DOC: &str = "A precondition does not hold; the body names the key and its `current_version` (`null`: absent).";
pub(super) const KEY_TOO_LONG_DOC: &str = "The key is longer than `ORBIT_MAX_KEY_BYTES`.";
pub(super) const TOO_LARGE_DOC: &str =
    "The key or the value is above its limit (`ORBIT_MAX_KEY_BYTES`, `ORBIT_MAX_VALUE_BYTES`).";
pub(super) const BACKEND_FAILED_DOC: &str = "The backend failed (I/O error, corrupt data).";
pub(super) const BACKEND_UNAVAILABLE_DOC: &str =
    "The backend is unavailable (object storage unreachable, shutting down).";
pub(super) const BACKEND_FULL_DOC: &str = "The backend is out of space.";

/// Validates a key from the path.
pub fn check_key(key: &str, limits: &Limits) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("the key is empty".into()));
    }
    if is_private_key(key.as_bytes()) {
        return Err(StorageError::private_key().into());
    }
    if key.len() > limits.max_key_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "the key is {} bytes; the limit is {} bytes (ORBIT_MAX_KEY_BYTES)",
            key.len(),
            limits.max_key_bytes
        )));
    }
    Ok(())
}

fn path_key(
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    limits: &Limits,
) -> Result<String, ApiError> {
    let Path(key) = path.map_err(|r| {
        // `%FF...` is not UTF-8, so the extractor refuses it; say why.
        if raw_key_is_private(uri) {
            return StorageError::private_key().into();
        }
        rejection(
            r.status(),
            format!("invalid key in the path: {}", r.body_text()),
        )
    })?;
    check_key(&key, limits)?;
    Ok(key)
}

/// Whether the key in `/v1/kv/{key}`, percent-decoded, starts with 0xFF.
fn raw_key_is_private(uri: &Uri) -> bool {
    uri.path()
        .strip_prefix("/v1/kv/")
        .and_then(|raw| raw.get(..3))
        .is_some_and(|first| first.eq_ignore_ascii_case("%ff"))
}

/// A TTL such as `30`, `30s`, `500ms`, `5m`, turned into an absolute expiry.
pub fn expiry(ttl: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(ttl) = ttl else { return Ok(None) };
    let ms = orbit_config_syntax::parse_duration_ms(ttl)
        .map_err(|e| ApiError::BadRequest(format!("ttl={ttl:?}: {e}")))?;
    if ms == 0 {
        return Err(ApiError::BadRequest("ttl must be greater than zero".into()));
    }
    Ok(Some(now_millis().saturating_add(ms)))
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .expect("digits and quotes are a valid header value")
}

/// How often a conditional write that is not one storage precondition
/// re-reads after losing a race before it answers `412`.
const CONDITIONAL_ATTEMPTS: usize = 8;

/// Runs `write` under `conditions`: directly when they are exactly one
/// storage precondition; otherwise reads the key, evaluates them against its
/// version, and writes with that version (or absence) as the precondition,
/// so the write is still atomic, re-reading after a lost race. Returns the
/// write's result and the precondition it ran under.
async fn conditionally<T, F, Fut>(
    storage: &dyn Storage,
    key: &str,
    conditions: &Conditions,
    mut write: F,
) -> Result<(T, Precondition), ApiError>
where
    F: FnMut(Precondition) -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    if let Some(precondition) = conditions.as_precondition() {
        return Ok((write(precondition).await?, precondition));
    }
    let mut current = None;
    for _ in 0..CONDITIONAL_ATTEMPTS {
        current = storage.get(key.as_bytes()).await?.map(|e| e.version);
        if conditions.evaluate(current, false).is_err() {
            break;
        }
        let guard = current.map_or(Precondition::Absent, Precondition::Version);
        match write(guard).await {
            Err(StorageError::Conflict { .. }) => continue,
            result => return Ok((result?, guard)),
        }
    }
    Err(StorageError::conflict(key.as_bytes(), current).into())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// Time to live: `30` or `30s`, `500ms`, `5m`, `2h`; greater than zero.
    /// The key expires (disappears) that long after this write.
    #[param(pattern = "^0*[1-9][0-9]{0,11}(ms|s|m|h)?$")]
    ttl: Option<String>,
}

/// What a PUT wrote.
#[derive(Serialize, ToSchema)]
pub struct Written {
    key: String,
    /// The new version (also the `ETag`).
    #[schema(minimum = 1)]
    version: u64,
    /// When the key expires (Unix milliseconds), `null` without a TTL.
    expires_at_ms: Option<u64>,
}

/// Read a key.
///
/// The value as stored, with its version as a strong `ETag`.
#[utoipa::path(
    get,
    path = "/v1/kv/{key}",
    tag = "kv",
    operation_id = "get_key",
    params(
        ("key" = String, Path, min_length = 1, description = KEY_DOC),
        ("If-Match" = Option<String>, Header, nullable = false, description = IF_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = IF_NONE_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
    ),
    responses(
        (status = 200, description = "The value.", body = inline(Binary), content_type = "application/octet-stream",
            headers(
                ("ETag" = String, description = "The version, as a strong entity-tag: `\"17\"`."),
                ("x-orbit-expires-at-ms" = u64, description = "When the key expires (Unix milliseconds); absent without a TTL."),
            )),
        (status = 304, description = "`If-None-Match` matched the current version.",
            headers(("ETag" = String, description = "The version, as a strong entity-tag: `\"17\"`."))),
        (status = 400, description = BAD_REQUEST_DOC, body = ErrorBody),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 404, description = "The key does not exist (or has expired).", body = ErrorBody),
        (status = 412, description = PRECONDITION_DOC, body = ErrorBody),
        (status = 413, description = KEY_TOO_LONG_DOC, body = ErrorBody),
        (status = 500, description = BACKEND_FAILED_DOC, body = ErrorBody),
        (status = 503, description = BACKEND_UNAVAILABLE_DOC, body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = path_key(path, &uri, &state.limits)?;
    let conditions = Conditions::from_headers(&headers)?;
    let Some(entry) = state.storage.get(key.as_bytes()).await? else {
        return Err(ApiError::NotFound(format!("key {key:?} does not exist")));
    };
    match conditions.evaluate(Some(entry.version), true) {
        Ok(()) => {}
        Err(Failed::NotModified) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response
                .headers_mut()
                .insert(header::ETAG, etag(entry.version));
            return Ok(response);
        }
        Err(Failed::Precondition) => {
            return Err(StorageError::conflict(key.as_bytes(), Some(entry.version)).into());
        }
    }
    let mut response = entry.value.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ETAG, etag(entry.version));
    if let Some(exp) = entry.expires_at {
        h.insert("x-orbit-expires-at-ms", HeaderValue::from(exp));
    }
    Ok(response)
}

/// Write a key.
///
/// Stores the request body as the value. Without conditions it overwrites;
/// `If-Match: "<version>"` updates only that version (compare-and-set),
/// `If-None-Match: *` creates only if absent.
#[utoipa::path(
    put,
    path = "/v1/kv/{key}",
    tag = "kv",
    operation_id = "put_key",
    params(
        ("key" = String, Path, min_length = 1, description = KEY_DOC),
        PutParams,
        ("If-Match" = Option<String>, Header, nullable = false, description = IF_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = IF_NONE_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
    ),
    request_body(content = inline(Binary), content_type = "application/octet-stream",
        description = "The value: any bytes, up to `ORBIT_MAX_VALUE_BYTES` (default 4 MiB)."),
    responses(
        (status = 200, description = "Written.", body = Written,
            headers(("ETag" = String, description = "The version, as a strong entity-tag: `\"17\"`.")),
            links(
                ("GetWritten" = (operation_id = "get_key", parameters(("key" = "$response.body#/key")),
                    description = "Read what was written.")),
                ("GetUnchanged" = (operation_id = "get_key", parameters(("key" = "$response.body#/key"), ("header.If-None-Match" = "$response.header.ETag")),
                    description = "Read it only if it changed (304 if not).")),
                ("UpdateWritten" = (operation_id = "put_key", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")),
                    description = "Compare-and-set on the version written.")),
                ("DeleteWritten" = (operation_id = "delete_key", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")),
                    description = "Delete the version written.")),
            )),
        (status = 201, description = "Created: written under a condition that required the key to be absent.", body = Written,
            headers(("ETag" = String, description = "The version, as a strong entity-tag: `\"17\"`.")),
            links(
                ("GetWritten" = (operation_id = "get_key", parameters(("key" = "$response.body#/key")),
                    description = "Read what was written.")),
                ("GetUnchanged" = (operation_id = "get_key", parameters(("key" = "$response.body#/key"), ("header.If-None-Match" = "$response.header.ETag")),
                    description = "Read it only if it changed (304 if not).")),
                ("UpdateWritten" = (operation_id = "put_key", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")),
                    description = "Compare-and-set on the version written.")),
                ("DeleteWritten" = (operation_id = "delete_key", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")),
                    description = "Delete the version written.")),
            )),
        (status = 400, description = BAD_REQUEST_DOC, body = ErrorBody),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 412, description = PRECONDITION_DOC, body = ErrorBody),
        (status = 413, description = TOO_LARGE_DOC, body = ErrorBody),
        (status = 500, description = BACKEND_FAILED_DOC, body = ErrorBody),
        (status = 503, description = BACKEND_UNAVAILABLE_DOC, body = ErrorBody),
        (status = 507, description = BACKEND_FULL_DOC, body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn put(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PutParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = path_key(path, &uri, &state.limits)?;
    let Query(params) = query.map_err(|r| rejection(r.status(), r.body_text()))?;
    let value = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the value is larger than {} bytes (ORBIT_MAX_VALUE_BYTES)",
                state.limits.max_value_bytes
            ))
        } else {
            rejection(r.status(), r.body_text())
        }
    })?;
    let conditions = Conditions::from_headers(&headers)?;
    let expires_at = expiry(params.ttl.as_deref())?;
    let storage = state.storage.as_ref();
    let (version, precondition) = conditionally(storage, &key, &conditions, |precondition| {
        storage.put(
            key.as_bytes(),
            value.clone(),
            PutOptions {
                precondition,
                expires_at,
            },
        )
    })
    .await?;
    let status = if precondition == Precondition::Absent {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        Json(Written {
            key,
            version,
            expires_at_ms: expires_at,
        }),
    )
        .into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

/// Delete a key.
///
/// `If-Match: "<version>"` deletes only that version.
#[utoipa::path(
    delete,
    path = "/v1/kv/{key}",
    tag = "kv",
    operation_id = "delete_key",
    params(
        ("key" = String, Path, min_length = 1, description = KEY_DOC),
        ("If-Match" = Option<String>, Header, nullable = false, description = IF_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = IF_NONE_MATCH_DOC,
            pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#),
    ),
    responses(
        (status = 204, description = "Deleted.",
            links(("GetDeleted" = (operation_id = "get_key", parameters(("key" = "$request.path.key")),
                description = "Read the deleted key (404).")))),
        (status = 400, description = BAD_REQUEST_DOC, body = ErrorBody),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 404, description = "The key does not exist (or has expired).", body = ErrorBody),
        (status = 412, description = PRECONDITION_DOC, body = ErrorBody),
        (status = 413, description = KEY_TOO_LONG_DOC, body = ErrorBody),
        (status = 500, description = BACKEND_FAILED_DOC, body = ErrorBody),
        (status = 503, description = BACKEND_UNAVAILABLE_DOC, body = ErrorBody),
        (status = 507, description = BACKEND_FULL_DOC, body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = path_key(path, &uri, &state.limits)?;
    let conditions = Conditions::from_headers(&headers)?;
    let storage = state.storage.as_ref();
    let (deleted, _) = conditionally(storage, &key, &conditions, |precondition| {
        storage.delete(key.as_bytes(), precondition)
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("key {key:?} does not exist")))
    }
}

/// Most bytes of keys and values in one listing page (before base64): a
/// page with values stops early, with a cursor, rather than build a response
/// of gigabytes from `limit=1000` large values.
pub const LIST_PAGE_BYTES: usize = 4 << 20;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The keys that start with this (not with `start` or `end`).
    prefix: Option<String>,
    /// The first key of the range (inclusive).
    start: Option<String>,
    /// The end of the range (exclusive); not before `start`.
    end: Option<String>,
    /// Most entries in the page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// Include values (base64) in the listing.
    #[serde(default)]
    values: bool,
}

/// One key of a listing.
#[derive(Serialize, ToSchema)]
pub struct ListItem {
    /// The key (with U+FFFD for bytes that are not UTF-8).
    key: String,
    /// Present when the key is not UTF-8 (written through the WIT store).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    #[schema(minimum = 1)]
    version: u64,
    /// When the key expires (Unix milliseconds), `null` without a TTL.
    expires_at_ms: Option<u64>,
    /// The value's size in bytes.
    size: u64,
    /// The value, with `values=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

/// One page of a listing, in key order.
#[derive(Serialize, ToSchema)]
pub struct ListResponse {
    items: Vec<ListItem>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

fn item(e: Listed) -> ListItem {
    let (key, key_base64) = match std::str::from_utf8(&e.key) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(&e.key).into_owned(),
            Some(STANDARD.encode(&e.key)),
        ),
    };
    ListItem {
        key,
        key_base64,
        version: e.version,
        expires_at_ms: e.expires_at,
        size: e.size,
        value_base64: e.value.map(|v| STANDARD.encode(&v)),
    }
}

/// The exact bytes of query parameter `name`: percent-decoded with `+` as a
/// space, like form decoding but without its lossy UTF-8 step, so `%FF` is
/// the byte 0xFF (not U+FFFD) and non-UTF-8 keys can be listed by range.
fn query_bytes(raw: Option<&str>, name: &str) -> Option<Vec<u8>> {
    let decode = |s: &str| -> Vec<u8> {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
    };
    raw?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name.as_bytes()).then(|| decode(v))
    })
}

/// List keys.
///
/// By `prefix`, or by range (`start` and/or `end`), in key order, a page at
/// a time: a page ends at `limit` entries or before 4 MiB of keys and
/// values, with a `next_cursor` to continue.
#[utoipa::path(
    get,
    path = "/v1/kv",
    tag = "kv",
    operation_id = "list_keys",
    params(ListParams),
    responses(
        (status = 200, description = "One page of the listing.", body = ListResponse),
        (status = 400, description = "A malformed query: an unknown parameter, `limit` out of range, both `prefix` and a range, `start` after `end`, a cursor this API did not return.", body = ErrorBody),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 500, description = BACKEND_FAILED_DOC, body = ErrorBody),
        (status = 503, description = BACKEND_UNAVAILABLE_DOC, body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = query.map_err(|r| rejection(r.status(), r.body_text()))?;
    let exact = |name: &str, lossy: Option<String>| -> Option<Bytes> {
        lossy.map(|s| {
            query_bytes(raw.as_deref(), name)
                .unwrap_or_else(|| s.into_bytes())
                .into()
        })
    };
    let (prefix, start, end) = (
        exact("prefix", p.prefix),
        exact("start", p.start),
        exact("end", p.end),
    );
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit={limit}: expected 1 to {MAX_LIST_LIMIT}"
        )));
    }
    let range = match (prefix, start, end) {
        (Some(prefix), None, None) => KeyRange::Prefix(prefix),
        (None, start, end) => {
            if let (Some(s), Some(e)) = (&start, &end)
                && s > e
            {
                return Err(ApiError::BadRequest(format!(
                    "start={:?} is after end={:?}",
                    String::from_utf8_lossy(s),
                    String::from_utf8_lossy(e)
                )));
            }
            KeyRange::Range { start, end }
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either prefix, or start and/or end, not both".into(),
            ));
        }
    };
    // Never into the host's private keyspace: an empty prefix or no end
    // stops before it, an end past it is lowered, a 0xFF prefix is refused.
    let range = range.clamp_to_user_keyspace()?;
    let cursor = p
        .cursor
        .map(|c| {
            URL_SAFE_NO_PAD.decode(&c).map_err(|_| {
                ApiError::BadRequest(format!("cursor={c:?} is not a cursor returned by this API"))
            })
        })
        .transpose()?;
    let page = state
        .storage
        .list(&ListQuery {
            cursor: cursor.map(Into::into),
            values: p.values,
            max_bytes: LIST_PAGE_BYTES,
            ..ListQuery::new(range, limit)
        })
        .await?;
    Ok(Json(ListResponse {
        items: page.entries.into_iter().map(item).collect(),
        next_cursor: page.next_cursor.map(|c| URL_SAFE_NO_PAD.encode(&c)),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_their_exact_bytes() {
        let raw = Some("limit=5&prefix=%FFa&end=%ff%FF&start=a+b%2Bc&x");
        assert_eq!(query_bytes(raw, "prefix"), Some(vec![0xFF, b'a']));
        assert_eq!(query_bytes(raw, "end"), Some(vec![0xFF, 0xFF]));
        assert_eq!(query_bytes(raw, "start"), Some(b"a b+c".to_vec()));
        assert_eq!(query_bytes(raw, "x"), Some(vec![]));
        assert_eq!(query_bytes(raw, "cursor"), None);
        assert_eq!(query_bytes(None, "prefix"), None);
        assert_eq!(query_bytes(Some("pre%66ix="), "prefix"), Some(vec![]));
    }

    #[test]
    fn private_path_keys_are_recognised_before_decoding() {
        for (uri, private) in [
            ("/v1/kv/%FFanything", true),
            ("/v1/kv/%ff", true),
            ("/v1/kv/%FE", false),
            ("/v1/kv/a%FF", false),
            ("/v1/kv/", false),
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(raw_key_is_private(&uri), private, "{uri}");
        }
    }
}
