//! Where things live in the bucket, and how a stored object is encoded.
//!
//! Exists so that the name scheme (which decides listing order) and the
//! byte format (which decides what a reader can trust) are written down in
//! one place. Guarantees:
//! - object names of keys sort in key order (see [`key_name`]), except among
//!   keys longer than [`DIRECT_KEY_LEN`] that share their first
//!   [`DIRECT_KEY_LEN`] bytes: those form one *group* whose names sort by
//!   hash, and the lister sorts a group by key itself;
//! - every object carries its full key, so a name is never trusted alone;
//! - decoding never panics: a bad object is a [`RecordError`] naming what is
//!   wrong and where.

use bytes::{BufMut, Bytes, BytesMut};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Keys up to this many bytes are named by their lowercase hex alone
/// (222 characters); longer keys (up to [`orbit_storage::MAX_KEY_LEN`]) by
/// the hex of their first 111 bytes, `-`, and 32 hex characters of their
/// SHA-256: 255 characters at most. A name is one path segment, because
/// SeaweedFS (like filesystem-backed S3 gateways) limits a segment to 255
/// bytes; with a prefix of at most [`MAX_PREFIX_LEN`] bytes the whole name
/// also stays under the 1024-byte limit of S3, Azure Blob and GCS.
pub const DIRECT_KEY_LEN: usize = 111;

/// Longest accepted `ORBIT_*_PREFIX`, so names stay under 1024 bytes.
pub const MAX_PREFIX_LEN: usize = 128;

/// How many recent operation ids an object remembers (see `DESIGN.md`,
/// "Ambiguous writes").
pub const OP_HISTORY: usize = 16;

const MAGIC: &[u8; 4] = b"ORBK";
const FORMAT: u8 = 1;

/// The folders under the store's prefix.
#[derive(Clone, Debug)]
pub struct Layout {
    keys: Path,
    txns: Path,
    probe: Path,
    index: Path,
    lease: Path,
    cas_probe: Path,
    index_complete: Path,
}

impl Layout {
    pub fn new(prefix: &str) -> Self {
        let root = Path::from(prefix.trim_matches('/'));
        Layout {
            keys: root.clone().join("k"),
            txns: root.clone().join("t"),
            probe: root.clone().join("probe"),
            index: root.clone().join("x"),
            lease: root.clone().join("purge-lease"),
            cas_probe: root.clone().join("probe-cas"),
            index_complete: root.clone().join("index-complete"),
        }
    }

    /// The folder holding one object per key.
    pub fn keys(&self) -> &Path {
        &self.keys
    }

    /// The folder holding batch transaction records.
    pub fn txns(&self) -> &Path {
        &self.txns
    }

    /// The object the health probe looks up (it need not exist).
    pub fn probe(&self) -> &Path {
        &self.probe
    }

    /// The folder of the expiry index (see `expiry`).
    pub fn index(&self) -> &Path {
        &self.index
    }

    /// The marker written once every record of the prefix has its expiry
    /// index entries (records from versions before the index get them by a
    /// one-time scan; see `CloudStorage::backfill_index`).
    pub fn index_complete(&self) -> &Path {
        &self.index_complete
    }

    /// The purge lease object (see `lease`).
    pub fn lease(&self) -> &Path {
        &self.lease
    }

    /// The folder where the start-up check of conditional writes puts its
    /// probe objects (one per writer id, deleted afterwards).
    pub fn cas_probe(&self) -> &Path {
        &self.cas_probe
    }

    pub fn key_path(&self, key: &[u8]) -> Path {
        self.keys.clone().join(key_name(key))
    }

    /// Exclusive listing offset that lets every key `>= key` through.
    pub fn offset_before(&self, key: &[u8]) -> Path {
        let direct = &key[..key.len().min(DIRECT_KEY_LEN)];
        let mut name = hex::encode(direct);
        // The greatest string below hex(direct) that no name falls between:
        // decrement the last hex digit and append 'z' (above every hex
        // digit); a last digit '0' becomes '-' (below '0'; names have an
        // even number of hex digits before any '-').
        match name.pop() {
            Some('0') | None => name.push('-'),
            Some(digit) => {
                let lower = match digit {
                    'a' => '9',
                    d => (d as u8 - 1) as char,
                };
                name.push(lower);
                name.push('z');
            }
        }
        self.keys.clone().join(name)
    }

    /// Exclusive listing offset after which every key `> key` appears.
    pub fn offset_after(&self, key: &[u8]) -> Path {
        if key.len() <= DIRECT_KEY_LEN {
            self.keys.clone().join(hex::encode(key))
        } else {
            // Start of the key's group; members `<= key` are filtered out.
            self.keys.clone().join(hex::encode(&key[..DIRECT_KEY_LEN]))
        }
    }
}

/// The object name of a key (without folder).
pub fn key_name(key: &[u8]) -> String {
    if key.len() <= DIRECT_KEY_LEN {
        hex::encode(key)
    } else {
        let digest = Sha256::digest(key);
        format!(
            "{}-{}",
            hex::encode(&key[..DIRECT_KEY_LEN]),
            hex::encode(&digest[..16])
        )
    }
}

/// What a listed object name says about its key: the key itself (direct
/// names) or the first [`DIRECT_KEY_LEN`] bytes of it (group names).
#[derive(Debug, PartialEq, Eq)]
pub enum NameHint {
    Exact(Vec<u8>),
    Group(Vec<u8>),
}

/// Parses the last segment of a listed key object; `None` for a name this
/// layout never writes (it is skipped by listings and stats).
pub fn parse_name(name: &str) -> Option<NameHint> {
    match name.split_once('-') {
        None => hex::decode(name).ok().map(NameHint::Exact),
        Some((head, hash)) if hash.len() == 32 => {
            let head = hex::decode(head).ok()?;
            (head.len() == DIRECT_KEY_LEN).then_some(NameHint::Group(head))
        }
        Some(_) => None,
    }
}

/// The state of a key as one write left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Version of the write that produced this state (tombstones too).
    pub version: u64,
    /// `false`: a tombstone (deleted, or an expired entry after purge).
    pub live: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(skip)]
    pub value: Bytes,
}

impl Cell {
    pub fn tombstone(version: u64) -> Self {
        Cell {
            version,
            live: false,
            expires_at: None,
            value: Bytes::new(),
        }
    }

    /// Live and not expired at `now` (the contract's TTL rule,
    /// [`orbit_storage::rules::is_live`]).
    pub fn visible(&self, now: u64) -> bool {
        self.live && orbit_storage::rules::is_live(self.expires_at, now)
    }

    /// The version a precondition sees at `now`: `None` for a tombstone or
    /// an expired entry.
    pub fn live_version(&self, now: u64) -> Option<u64> {
        self.visible(now).then_some(self.version)
    }
}

/// A pending batch's planned state for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Name (last segment) of the transaction object under `t/`.
    pub txn: String,
    pub cell: Cell,
}

/// One key object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Bytes,
    /// The committed state.
    pub cell: Cell,
    /// A batch's planned state, valid once its transaction commits.
    pub intent: Option<Intent>,
    /// Ids of the last [`OP_HISTORY`] operations that wrote this object,
    /// oldest first.
    pub ops: Vec<String>,
    /// Wall-clock milliseconds of the write (tombstone age for purge).
    pub written_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    cell: CellHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intent: Option<IntentHeader>,
    ops: Vec<String>,
    written_at: u64,
}

#[derive(Serialize, Deserialize)]
struct CellHeader {
    version: u64,
    live: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    value_len: u64,
}

#[derive(Serialize, Deserialize)]
struct IntentHeader {
    txn: String,
    cell: CellHeader,
}

fn cell_header(cell: &Cell) -> CellHeader {
    CellHeader {
        version: cell.version,
        live: cell.live,
        expires_at: cell.expires_at,
        value_len: cell.value.len() as u64,
    }
}

/// Why a stored object could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("at byte {offset}: {what}")]
pub struct RecordError {
    pub offset: usize,
    pub what: String,
}

fn bad(offset: usize, what: impl Into<String>) -> RecordError {
    RecordError {
        offset,
        what: what.into(),
    }
}

impl Record {
    /// Whether this record carries an intent of transaction `txn`.
    pub fn has_intent_of(&self, txn: &str) -> bool {
        self.intent.as_ref().is_some_and(|intent| intent.txn == txn)
    }

    /// `MAGIC | format u8 | header_len u32 LE | header JSON | committed value | intent value`.
    pub fn encode(&self) -> Bytes {
        let header = Header {
            key: hex::encode(&self.key),
            cell: cell_header(&self.cell),
            intent: self.intent.as_ref().map(|i| IntentHeader {
                txn: i.txn.clone(),
                cell: cell_header(&i.cell),
            }),
            ops: self.ops.clone(),
            written_at: self.written_at,
        };
        // Serializing plain structs of strings and integers cannot fail.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let intent_len = self.intent.as_ref().map_or(0, |i| i.cell.value.len());
        let mut out = BytesMut::with_capacity(9 + json.len() + self.cell.value.len() + intent_len);
        out.put_slice(MAGIC);
        out.put_u8(FORMAT);
        out.put_u32_le(json.len() as u32);
        out.put_slice(&json);
        out.put_slice(&self.cell.value);
        if let Some(intent) = &self.intent {
            out.put_slice(&intent.cell.value);
        }
        out.freeze()
    }

    pub fn decode(bytes: &Bytes) -> Result<Record, RecordError> {
        if bytes.len() < 9 {
            return Err(bad(
                0,
                format!(
                    "object of {} bytes is shorter than the 9-byte record header",
                    bytes.len()
                ),
            ));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad(0, "missing ORBK magic: not an Orbit record"));
        }
        if bytes[4] != FORMAT {
            return Err(bad(
                4,
                format!("unknown record format {}, expected {FORMAT}", bytes[4]),
            ));
        }
        let header_len = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
        let body = 9usize
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                bad(
                    5,
                    format!(
                        "header length {header_len} runs past the end ({} bytes)",
                        bytes.len()
                    ),
                )
            })?;
        let header: Header = serde_json::from_slice(&bytes[9..body])
            .map_err(|e| bad(9, format!("header is not valid JSON: {e}")))?;
        let key = hex::decode(&header.key).map_err(|e| bad(9, format!("key is not hex: {e}")))?;
        let mut at = body;
        let mut take = |len: u64, what: &str| -> Result<Bytes, RecordError> {
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| at.checked_add(len))
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| {
                    bad(
                        at,
                        format!(
                            "{what} of {len} bytes runs past the end ({} bytes)",
                            bytes.len()
                        ),
                    )
                })?;
            let slice = bytes.slice(at..end);
            at = end;
            Ok(slice)
        };
        let value = take(header.cell.value_len, "committed value")?;
        let intent = match header.intent {
            Some(i) => {
                let value = take(i.cell.value_len, "intent value")?;
                Some(Intent {
                    txn: i.txn,
                    cell: Cell {
                        version: i.cell.version,
                        live: i.cell.live,
                        expires_at: i.cell.expires_at,
                        value,
                    },
                })
            }
            None => None,
        };
        if at != bytes.len() {
            return Err(bad(
                at,
                format!("{} trailing bytes after the values", bytes.len() - at),
            ));
        }
        Ok(Record {
            key: Bytes::from(key),
            cell: Cell {
                version: header.cell.version,
                live: header.cell.live,
                expires_at: header.cell.expires_at,
                value,
            },
            intent,
            ops: header.ops,
            written_at: header.written_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_keys() {
        let mut keys: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![0, 255],
            vec![1],
            vec![255],
            vec![255, 0],
            vec![b'a'; DIRECT_KEY_LEN],
        ];
        keys.retain(|k| !k.is_empty());
        keys.sort();
        let names: Vec<String> = keys.iter().map(|k| key_name(k)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // A group sorts after its direct head and before the next key.
        let head = vec![b'a'; DIRECT_KEY_LEN];
        let mut long = head.clone();
        long.push(0);
        let mut next = head.clone();
        next[DIRECT_KEY_LEN - 1] = b'b';
        assert!(key_name(&head) < key_name(&long));
        assert!(key_name(&long) < key_name(&next));
        assert_eq!(parse_name(&key_name(&long)), Some(NameHint::Group(head)));
    }

    #[test]
    fn offsets_bracket_keys() {
        let layout = Layout::new("p");
        for key in [&b"a"[..], b"ab", &[0u8][..], &[0xff, 0][..]] {
            let name = layout.key_path(key);
            assert!(layout.offset_before(key) < name);
            assert_eq!(layout.offset_after(key), name);
        }
    }

    /// Random corruption of a valid record never panics: it decodes to an
    /// error naming an offset, or (for flips inside value bytes) to a
    /// record with the same key.
    #[test]
    fn random_corruption_never_panics() {
        let record = Record {
            key: Bytes::from_static(b"key"),
            cell: Cell {
                version: 1,
                live: true,
                expires_at: None,
                value: Bytes::from(vec![7u8; 64]),
            },
            intent: None,
            ops: vec!["w.1@1".into()],
            written_at: 1,
        };
        let good = record.encode().to_vec();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            match Record::decode(&Bytes::from(bytes)) {
                Ok(decoded) => assert!(decoded.cell.value.len() <= 64 + 8),
                Err(e) => assert!(!e.what.is_empty()),
            }
        }
    }

    #[test]
    fn record_round_trip_and_corruption() {
        let record = Record {
            key: Bytes::from_static(b"k\x00\xff"),
            cell: Cell {
                version: 7,
                live: true,
                expires_at: Some(9),
                value: Bytes::from_static(b"value"),
            },
            intent: Some(Intent {
                txn: "t1".into(),
                cell: Cell::tombstone(8),
            }),
            ops: vec!["a".into()],
            written_at: 5,
        };
        let bytes = record.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.to_vec();
        flipped[0] = b'X';
        let err = Record::decode(&Bytes::from(flipped)).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
