//! `/v1/kv`: one key at a time, and listings.
//!
//! Keys are the (percent-decoded) rest of the path and must be UTF-8.
//! Keys starting with byte 0xFF (the host's private keyspace) are refused
//! everywhere, and listings never reach them
//! ([`KeyRange::clamp_to_user_keyspace`]).
//! Versions travel as ETags (`"17"`); `If-Match: "17"` updates or deletes
//! only that version, `If-None-Match: *` creates only if absent; a failed
//! precondition is `412` with the current version in the body. `?ttl=30s`
//! gives a key an expiry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use orbit_storage::{
    Entry, KeyRange, ListQuery, Precondition, PutOptions, Storage, StorageError, is_private_key,
    now_millis,
};

use super::error::{ApiError, rejection};
use super::{AppState, Limits, MAX_LIST_LIMIT};

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

fn parse_etag(value: &str) -> Option<u64> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').parse().ok()
}

/// `If-Match` / `If-None-Match` as a precondition.
fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: header::HeaderName| -> Result<Option<String>, ApiError> {
        headers
            .get(&name)
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| ApiError::BadRequest(format!("header {name} is not valid ASCII")))
            })
            .transpose()
    };
    match (text(header::IF_MATCH)?, text(header::IF_NONE_MATCH)?) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest("give If-Match or If-None-Match, not both".into())),
        (None, Some(v)) if v.trim() == "*" => Ok(Precondition::Absent),
        (None, Some(v)) => Err(ApiError::BadRequest(format!(
            "If-None-Match: {v:?} is not supported; only If-None-Match: * (create if absent) is"
        ))),
        (Some(v), None) => parse_etag(&v).map(Precondition::Version).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "If-Match: {v:?} is not a version; expected the ETag of a previous response, e.g. If-Match: \"17\""
            ))
        }),
        (None, None) => Ok(Precondition::None),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    ttl: Option<String>,
}

#[derive(Serialize)]
struct Written {
    key: String,
    version: u64,
    expires_at_ms: Option<u64>,
}

pub async fn get(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = path_key(path, &uri, &state.limits)?;
    let Some(entry) = state.storage.get(key.as_bytes()).await? else {
        return Err(ApiError::NotFound(format!("key {key:?} does not exist")));
    };
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
    let options = PutOptions {
        precondition: precondition(&headers)?,
        expires_at: expiry(params.ttl.as_deref())?,
    };
    let version = state.storage.put(key.as_bytes(), value, options).await?;
    let status = if options.precondition == Precondition::Absent {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        Json(Written {
            key,
            version,
            expires_at_ms: options.expires_at,
        }),
    )
        .into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

pub async fn delete(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = path_key(path, &uri, &state.limits)?;
    let precondition = match precondition(&headers)? {
        Precondition::Absent => {
            return Err(ApiError::BadRequest(
                "If-None-Match: * makes no sense on DELETE; use If-Match".into(),
            ));
        }
        p => p,
    };
    if state.storage.delete(key.as_bytes(), precondition).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("key {key:?} does not exist")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Include values (base64) in the listing.
    #[serde(default)]
    values: bool,
}

#[derive(Serialize)]
struct ListItem {
    key: String,
    /// Present when the key is not UTF-8 (written through the WIT store).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    version: u64,
    expires_at_ms: Option<u64>,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

#[derive(Serialize)]
struct ListResponse {
    items: Vec<ListItem>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

fn item(e: Entry, values: bool) -> ListItem {
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
        size: e.value.len(),
        value_base64: values.then(|| STANDARD.encode(&e.value)),
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
            range,
            limit,
            cursor: cursor.map(Into::into),
        })
        .await?;
    Ok(Json(ListResponse {
        items: page
            .entries
            .into_iter()
            .map(|e| item(e, p.values))
            .collect(),
        next_cursor: page.next_cursor.map(|c| URL_SAFE_NO_PAD.encode(&c)),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(parse_etag("\"17\""), Some(17));
        assert_eq!(parse_etag("W/\"17\""), Some(17));
        assert_eq!(parse_etag("17"), Some(17));
        assert_eq!(parse_etag("\"abc\""), None);
    }

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
