//! The memory backend's snapshot file: its format, and how it is written
//! and read.
//!
//! # Format (v1)
//! ```text
//! ORBIT-MEMORY-SNAPSHOT v1 len=<body bytes> crc32=<8 lowercase hex>\n
//! {"next_version":N,"entries":[{"k":"<base64>","v":"<base64>","ver":N,"exp":ms|null},...]}
//! ```
//! - The first line is an ASCII header; the body follows the `\n` directly
//!   and is exactly `len` bytes (no trailing newline).
//! - `crc32` is the CRC-32 (IEEE, as computed by `crc32fast`; *not* CRC-32C)
//!   of the body bytes.
//! - The body is JSON: `next_version` is the version the next write gets, so
//!   versions never go backwards across a restart; `k` and `v` are the key
//!   and value in standard padded base64; `ver` is the entry's version and
//!   `exp` its expiry in Unix milliseconds (`null`: none).
//!
//! The default file name is `orbit_backup.json` for compatibility with the
//! deployment docs, but because of the header line the file is *not* pure
//! JSON: strip the first line to feed the body to a JSON tool.
//!
//! # Guarantees
//! - Writing is atomic: a temporary file in the same directory is written,
//!   fsynced, renamed over the target and the directory is fsynced. A crash
//!   at any point leaves either the old or the new snapshot, never a mix
//!   (a stale `.<name>.tmp` may remain; it is overwritten by the next flush).
//! - Any failure (including a failed fsync) is returned, never retried here.
//! - Reading never trusts the file: a missing or malformed header, a
//!   truncated or over-long body, a checksum mismatch, invalid JSON or
//!   base64, an empty, over-long or duplicate key, or a version not below
//!   `next_version` is [`StorageError::Corrupt`] naming the file. Entries
//!   already expired at load are skipped.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use crate::state::{Slot, SnapshotData};
use orbit_storage::{MAX_KEY_LEN, StorageError, StorageResult, UnixMillis, Version};

const MAGIC: &str = "ORBIT-MEMORY-SNAPSHOT";
const FORMAT_VERSION: &str = "v1";
/// A valid header is about 60 bytes; anything without a newline this early
/// is not a snapshot.
const MAX_HEADER_LEN: usize = 128;

/// Serialises a snapshot: header line plus JSON body.
pub(crate) fn encode(path: &Path, data: &SnapshotData) -> StorageResult<Vec<u8>> {
    let body = serde_json::to_vec(&BodyOut {
        next_version: data.next_version,
        entries: EntriesOut(&data.entries),
    })
    .map_err(|e| StorageError::io("encode snapshot", path, e.into()))?;
    let header = format!(
        "{MAGIC} {FORMAT_VERSION} len={} crc32={:08x}\n",
        body.len(),
        crc32fast::hash(&body)
    );
    let mut file = Vec::with_capacity(header.len() + body.len());
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&body);
    Ok(file)
}

/// A decoded snapshot and how many expired entries it skipped.
#[derive(Debug)]
pub(crate) struct Restored {
    pub data: SnapshotData,
    pub skipped_expired: usize,
}

/// Parses and verifies a snapshot read from `path`.
pub(crate) fn decode(path: &Path, file: &[u8], now: UnixMillis) -> StorageResult<Restored> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.display().to_string(),
        reason,
    };

    if file.is_empty() {
        return Err(corrupt("empty file (no snapshot header)".into()));
    }
    let newline = file
        .iter()
        .take(MAX_HEADER_LEN)
        .position(|&b| b == b'\n')
        .ok_or_else(|| {
            corrupt(format!(
                "no snapshot header line (expected it to start with {MAGIC})"
            ))
        })?;
    let header = std::str::from_utf8(&file[..newline])
        .map_err(|_| corrupt("snapshot header is not ASCII".into()))?;
    let (len, crc) = parse_header(header).map_err(corrupt)?;

    let body = &file[newline + 1..];
    if body.len() < len {
        return Err(corrupt(format!(
            "truncated: expected {len} bytes, found {}",
            body.len()
        )));
    }
    if body.len() > len {
        return Err(corrupt(format!(
            "trailing data: expected {len} bytes, found {}",
            body.len()
        )));
    }
    let actual = crc32fast::hash(body);
    if actual != crc {
        return Err(corrupt(format!(
            "checksum mismatch: header says crc32 {crc:08x}, body has {actual:08x}"
        )));
    }

    // serde_json messages may quote input; report only where it failed.
    let parsed: BodyIn = serde_json::from_slice(body).map_err(|e| {
        corrupt(format!(
            "invalid JSON body ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if parsed.next_version == 0 {
        return Err(corrupt("next_version is 0 (versions start at 1)".into()));
    }

    let mut seen = HashSet::with_capacity(parsed.entries.len());
    let mut entries = Vec::with_capacity(parsed.entries.len());
    let mut skipped_expired = 0;
    for (index, entry) in parsed.entries.into_iter().enumerate() {
        let key = decode_base64(&entry.k)
            .ok_or_else(|| corrupt(format!("entry {index}: key is not valid base64")))?;
        let value = decode_base64(&entry.v)
            .ok_or_else(|| corrupt(format!("entry {index}: value is not valid base64")))?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(corrupt(format!(
                "entry {index}: key length {} is out of range",
                key.len()
            )));
        }
        if entry.ver == 0 || entry.ver >= parsed.next_version {
            return Err(corrupt(format!(
                "entry {index}: version {} is not in 1..{} (next_version)",
                entry.ver, parsed.next_version
            )));
        }
        if !seen.insert(key.clone()) {
            return Err(corrupt(format!("entry {index}: duplicate key")));
        }
        if !orbit_storage::rules::is_live(entry.exp, now) {
            skipped_expired += 1;
            continue;
        }
        entries.push((
            key,
            Slot {
                value,
                version: entry.ver,
                expires_at: entry.exp,
            },
        ));
    }
    Ok(Restored {
        data: SnapshotData {
            next_version: parsed.next_version,
            entries,
        },
        skipped_expired,
    })
}

/// Reads the snapshot file; `None` if it does not exist.
pub(crate) fn read(path: &Path) -> StorageResult<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("read snapshot", path, e)),
    }
}

/// Replaces `path` with `contents` atomically and durably (see the module
/// docs). Nothing is retried: the first failure is returned.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> StorageResult<()> {
    let tmp = temp_path(path);
    let written = write_and_rename(&tmp, path, contents);
    if written.is_err() {
        // Best effort: the next flush truncates a leftover anyway.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(parent_dir(path))
}

fn write_and_rename(tmp: &Path, path: &Path, contents: &[u8]) -> StorageResult<()> {
    let mut file = File::create(tmp).map_err(|e| StorageError::io("create", tmp, e))?;
    file.write_all(contents)
        .map_err(|e| StorageError::io("write", tmp, e))?;
    file.sync_all()
        .map_err(|e| StorageError::io("fsync", tmp, e))?;
    drop(file);
    fs::rename(tmp, path).map_err(|e| StorageError::io("rename temporary snapshot over", path, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> StorageResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Directories cannot be opened for fsync on this platform; the rename is
/// as durable as the filesystem makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> StorageResult<()> {
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `dir/.<name>.tmp`: same directory, so the rename stays on one filesystem.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    parent_dir(path).join(name)
}

/// `(len, crc32)` of a header line, or why it is not one.
fn parse_header(header: &str) -> Result<(usize, u32), String> {
    let bad = || {
        format!("bad snapshot header (expected \"{MAGIC} {FORMAT_VERSION} len=<n> crc32=<8 hex>\")")
    };
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, len, crc] = fields.as_slice() else {
        return Err(bad());
    };
    if *magic != MAGIC {
        return Err(bad());
    }
    if *version != FORMAT_VERSION {
        return Err(format!(
            "unsupported snapshot format version {version:.16} (this build reads {FORMAT_VERSION})"
        ));
    }
    let len = len
        .strip_prefix("len=")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(bad)?;
    let crc = crc
        .strip_prefix("crc32=")
        .filter(|hex| hex.len() == 8)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(bad)?;
    Ok((len, crc))
}

fn decode_base64(text: &str) -> Option<Bytes> {
    STANDARD.decode(text).ok().map(Bytes::from)
}

#[derive(Serialize)]
struct BodyOut<'a> {
    next_version: Version,
    entries: EntriesOut<'a>,
}

/// Serialises entries straight from the copied map, without building an
/// intermediate list of base64 strings.
struct EntriesOut<'a>(&'a [(Bytes, Slot)]);

impl Serialize for EntriesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(key, slot)| EntryOut {
            k: Base64(key),
            v: Base64(&slot.value),
            ver: slot.version,
            exp: slot.expires_at,
        }))
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    k: Base64<'a>,
    v: Base64<'a>,
    ver: Version,
    exp: Option<UnixMillis>,
}

struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

#[derive(Deserialize)]
struct BodyIn {
    next_version: Version,
    entries: Vec<EntryIn>,
}

#[derive(Deserialize)]
struct EntryIn {
    k: String,
    v: String,
    ver: Version,
    exp: Option<UnixMillis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotData {
        SnapshotData {
            next_version: 9,
            entries: vec![
                (
                    Bytes::from_static(b"a"),
                    Slot {
                        value: Bytes::from_static(b"\x00\xff"),
                        version: 3,
                        expires_at: None,
                    },
                ),
                (
                    Bytes::from_static(b"\xff\x00"),
                    Slot {
                        value: Bytes::new(),
                        version: 8,
                        expires_at: Some(u64::MAX),
                    },
                ),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let path = Path::new("snap");
        let file = encode(path, &sample()).expect("encode");
        let restored = decode(path, &file, 0).expect("decode");
        assert_eq!(restored.data.next_version, 9);
        assert_eq!(restored.data.entries, sample().entries);
        assert_eq!(restored.skipped_expired, 0);
    }

    #[test]
    fn header_is_one_ascii_line() {
        let file = encode(Path::new("snap"), &sample()).expect("encode");
        let text = String::from_utf8(file).expect("utf8");
        let (header, body) = text.split_once('\n').expect("header line");
        assert!(
            header.starts_with("ORBIT-MEMORY-SNAPSHOT v1 len="),
            "{header}"
        );
        assert_eq!(
            header,
            format!(
                "ORBIT-MEMORY-SNAPSHOT v1 len={} crc32={:08x}",
                body.len(),
                crc32fast::hash(body.as_bytes())
            )
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("body is JSON");
        assert_eq!(json["next_version"], 9);
        assert_eq!(json["entries"][0]["k"], "YQ==");
        assert_eq!(json["entries"][0]["exp"], serde_json::Value::Null);
    }

    fn corrupt_reason(file: &[u8]) -> String {
        match decode(Path::new("snap"), file, 0) {
            Err(StorageError::Corrupt { path, reason }) => {
                assert_eq!(path, "snap");
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    fn with_body(body: &str) -> Vec<u8> {
        format!(
            "ORBIT-MEMORY-SNAPSHOT v1 len={} crc32={:08x}\n{body}",
            body.len(),
            crc32fast::hash(body.as_bytes())
        )
        .into_bytes()
    }

    #[test]
    fn rejects_bad_files() {
        assert!(corrupt_reason(b"").contains("empty"));
        assert!(corrupt_reason(b"{\"next_version\":1,\"entries\":[]}").contains("header"));
        assert!(
            corrupt_reason(b"ORBIT-MEMORY-SNAPSHOT v2 len=0 crc32=00000000\n")
                .contains("version v2")
        );
        assert!(
            corrupt_reason(b"ORBIT-MEMORY-SNAPSHOT v1 len=x crc32=00000000\n")
                .contains("bad snapshot header")
        );
        let good = encode(Path::new("snap"), &sample()).expect("encode");
        let reason = corrupt_reason(&good[..good.len() - 3]);
        assert!(reason.starts_with("truncated: expected "), "{reason}");
        let mut long = good.clone();
        long.push(b'\n');
        assert!(corrupt_reason(&long).starts_with("trailing data"));
        assert!(corrupt_reason(&with_body("{")).contains("invalid JSON"));
        assert!(
            corrupt_reason(&with_body(r#"{"next_version":0,"entries":[]}"#))
                .contains("next_version is 0")
        );
        let bad_b64 = r#"{"next_version":5,"entries":[{"k":"!!","v":"","ver":1,"exp":null}]}"#;
        assert!(corrupt_reason(&with_body(bad_b64)).contains("not valid base64"));
        let empty_key = r#"{"next_version":5,"entries":[{"k":"","v":"","ver":1,"exp":null}]}"#;
        assert!(corrupt_reason(&with_body(empty_key)).contains("key length 0"));
        let future = r#"{"next_version":5,"entries":[{"k":"YQ==","v":"","ver":5,"exp":null}]}"#;
        assert!(corrupt_reason(&with_body(future)).contains("version 5"));
        let dup = r#"{"next_version":5,"entries":[{"k":"YQ==","v":"","ver":1,"exp":null},{"k":"YQ==","v":"","ver":2,"exp":null}]}"#;
        assert!(corrupt_reason(&with_body(dup)).contains("duplicate key"));
    }

    #[test]
    fn skips_expired_entries() {
        let body = r#"{"next_version":5,"entries":[{"k":"YQ==","v":"","ver":1,"exp":10},{"k":"Yg==","v":"","ver":2,"exp":11}]}"#;
        let restored = decode(Path::new("snap"), &with_body(body), 10).expect("decode");
        assert_eq!(restored.skipped_expired, 1);
        assert_eq!(restored.data.entries.len(), 1);
        assert_eq!(restored.data.next_version, 5);
    }

    #[test]
    fn temp_file_is_a_hidden_sibling() {
        assert_eq!(
            temp_path(Path::new("/d/orbit_backup.json")),
            Path::new("/d/.orbit_backup.json.tmp")
        );
        assert_eq!(
            temp_path(Path::new("orbit_backup.json")),
            Path::new("./.orbit_backup.json.tmp")
        );
    }
}
