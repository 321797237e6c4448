//! How an entry's metadata travels inside an engine value, and the engine
//! keyspace the adapter lays out.
//!
//! Engine keys start with one namespace byte so the adapter's own records
//! can never collide with a user key:
//!
//! | namespace | engine key                           | engine value                      |
//! |-----------|--------------------------------------|-----------------------------------|
//! | `0x00`    | `0x00 "versions-reserved"`           | u64 LE: versions below are spent  |
//! | `0x01`    | `0x01 ++ user key`                   | record (below)                    |
//! | `0x02`    | `0x02 ++ expires_at u64 BE ++ key`   | empty: the expiry index           |
//!
//! A record is `format u8 = 1, version u64 LE, expires_at u64 LE (0: never),
//! value bytes`. Big-endian expiry keeps the index in time order, so a purge
//! reads only the expired prefix of namespace `0x02`.

use crate::{StorageError, StorageResult, UnixMillis, Version};

pub(crate) const DATA: u8 = 0x01;
pub(crate) const EXPIRY: u8 = 0x02;

/// The engine key of the version reservation (namespace `0x00`).
pub(crate) const VERSIONS_RESERVED: &[u8] = b"\x00versions-reserved";

const FORMAT: u8 = 1;
pub(crate) const HEADER_LEN: usize = 17;

/// The metadata and value of one stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub version: Version,
    pub expires_at: Option<UnixMillis>,
    pub value: Vec<u8>,
}

impl Record {
    pub fn is_live(&self, now: UnixMillis) -> bool {
        crate::rules::is_live(self.expires_at, now)
    }
}

pub(crate) fn encode(version: Version, expires_at: Option<UnixMillis>, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + value.len());
    out.push(FORMAT);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes a record; `location` and `key` name it in the error.
pub(crate) fn decode(mut bytes: Vec<u8>, location: &str, key: &[u8]) -> StorageResult<Record> {
    let (version, expires_at) = header(&bytes, location, key)?;
    bytes.drain(..HEADER_LEN);
    Ok(Record {
        version,
        expires_at,
        value: bytes,
    })
}

/// Version and expiry of an encoded record, without copying the value.
pub(crate) fn header(
    bytes: &[u8],
    location: &str,
    key: &[u8],
) -> StorageResult<(Version, Option<UnixMillis>)> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: location.to_string(),
        reason: format!("record of key {}: {reason}", printable(key)),
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte record header",
            bytes.len()
        )));
    }
    if bytes[0] != FORMAT {
        return Err(corrupt(format!(
            "record format {} (this build reads format {FORMAT})",
            bytes[0]
        )));
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let expires_at = word(9);
    Ok((word(1), (expires_at != 0).then_some(expires_at)))
}

pub(crate) fn data_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(DATA);
    out.extend_from_slice(key);
    out
}

pub(crate) fn expiry_key(expires_at: UnixMillis, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len());
    out.push(EXPIRY);
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// `(expires_at, user key)` of an expiry-index key.
pub(crate) fn parse_expiry_key(engine_key: &[u8]) -> Option<(UnixMillis, &[u8])> {
    let rest = engine_key.strip_prefix(&[EXPIRY])?;
    if rest.len() < 9 {
        return None;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&rest[..8]);
    Some((u64::from_be_bytes(w), &rest[8..]))
}

/// A key for messages: UTF-8 as text, shortened; anything else as hex.
pub(crate) fn printable(key: &[u8]) -> String {
    const MAX: usize = 64;
    let shown = &key[..key.len().min(MAX)];
    let ellipsis = if key.len() > MAX { "..." } else { "" };
    match std::str::from_utf8(shown) {
        Ok(text) => format!("{text:?}{ellipsis}"),
        Err(_) => format!("0x{}{ellipsis}", hex(shown)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let bytes = encode(7, Some(99), b"value");
        assert_eq!(
            decode(bytes.clone(), "db", b"k").unwrap(),
            Record {
                version: 7,
                expires_at: Some(99),
                value: b"value".to_vec()
            }
        );
        assert_eq!(
            header(&encode(1, None, b""), "db", b"k").unwrap(),
            (1, None)
        );
        let err = decode(bytes[..5].to_vec(), "/data/db", b"user/1").unwrap_err();
        assert!(
            err.to_string()
                .contains("/data/db: record of key \"user/1\": 5 bytes"),
            "{err}"
        );
        let mut wrong = bytes;
        wrong[0] = 9;
        assert!(
            decode(wrong, "db", &[0xff])
                .unwrap_err()
                .to_string()
                .contains("0xff")
        );
    }

    #[test]
    fn expiry_keys_sort_by_time() {
        let a = expiry_key(5, b"zzz");
        let b = expiry_key(256, b"aaa");
        assert!(a < b);
        assert_eq!(parse_expiry_key(&b), Some((256, &b"aaa"[..])));
        assert_eq!(parse_expiry_key(b"\x02short"), None);
    }
}
