//! Values that cross the storage contract.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Version of one write; see the crate docs.
pub type Version = u64;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// The current time in Unix milliseconds, as TTLs and expiry see it: the
/// wall clock read once, when the process first asks, plus the monotonic
/// time elapsed since. A step of the system's wall clock while the process
/// runs (NTP, a hypervisor resynchronising a VM's clock: steps of 1 s and
/// 32 s were seen within 90 s on the development VM) therefore neither
/// expires every key with a TTL at once nor keeps them alive longer; a
/// lease granted for 1.5 s lasts 1.5 s of elapsed time. The wall clock
/// matters again only across a restart, where stored expiry times are
/// compared with the new process's reading.
pub fn now_millis() -> UnixMillis {
    static ANCHOR: std::sync::LazyLock<(UnixMillis, std::time::Instant)> =
        std::sync::LazyLock::new(|| {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            (wall, std::time::Instant::now())
        });
    let (wall, at) = *ANCHOR;
    wall.saturating_add(at.elapsed().as_millis() as u64)
}

/// A stored value with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Bytes,
    pub value: Bytes,
    pub version: Version,
    pub expires_at: Option<UnixMillis>,
}

/// Condition a write must meet; when it holds is decided in
/// [`crate::rules`] ([`Precondition::check`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// The key must be absent (or expired).
    Absent,
    /// The key must hold exactly this version.
    Version(Version),
}

/// Options of a put.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub precondition: Precondition,
    /// Absolute expiry; `None` keeps the entry until it is overwritten or deleted.
    pub expires_at: Option<UnixMillis>,
}

/// One operation of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        key: Bytes,
        value: Bytes,
        options: PutOptions,
    },
    Delete {
        key: Bytes,
        precondition: Precondition,
    },
}

impl BatchOp {
    pub fn key(&self) -> &Bytes {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } => key,
        }
    }

    /// The condition this operation must meet.
    pub fn precondition(&self) -> Precondition {
        match self {
            BatchOp::Put { options, .. } => options.precondition,
            BatchOp::Delete { precondition, .. } => *precondition,
        }
    }
}

/// Which keys a listing covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Keys starting with this prefix (empty: every key).
    Prefix(Bytes),
    /// `start <= key < end`; `None` is unbounded on that side.
    Range {
        start: Option<Bytes>,
        end: Option<Bytes>,
    },
}

/// Whether `key` is in the host's private keyspace (starts with
/// [`PRIVATE_KEY_PREFIX`](crate::PRIVATE_KEY_PREFIX)).
pub fn is_private_key(key: &[u8]) -> bool {
    key.first() == Some(&crate::PRIVATE_KEY_PREFIX)
}

impl KeyRange {
    /// This range confined to the user keyspace (every key that does not
    /// start with [`PRIVATE_KEY_PREFIX`](crate::PRIVATE_KEY_PREFIX)), for
    /// listings on behalf of anyone but the host itself (HTTP clients,
    /// plugins):
    /// - an empty prefix becomes `[.., [0xFF])`, the whole user keyspace;
    /// - a prefix starting with 0xFF is refused;
    /// - a range's end is at most `[0xFF]` (an unbounded or larger end is
    ///   lowered to it);
    /// - a range whose start begins with 0xFF is refused.
    ///
    /// Refusals are [`StorageError::Invalid`](crate::StorageError::Invalid)
    /// ([`StorageError::private_key`](crate::StorageError::private_key)).
    pub fn clamp_to_user_keyspace(self) -> crate::StorageResult<KeyRange> {
        const USER_END: &[u8] = &[crate::PRIVATE_KEY_PREFIX];
        match self {
            KeyRange::Prefix(p) if p.is_empty() => Ok(KeyRange::Range {
                start: None,
                end: Some(Bytes::from_static(USER_END)),
            }),
            KeyRange::Prefix(p) if is_private_key(&p) => Err(crate::StorageError::private_key()),
            KeyRange::Prefix(p) => Ok(KeyRange::Prefix(p)),
            KeyRange::Range { start, .. } if start.as_deref().is_some_and(is_private_key) => {
                Err(crate::StorageError::private_key())
            }
            KeyRange::Range { start, end } => Ok(KeyRange::Range {
                start,
                end: Some(match end {
                    Some(e) if e.as_ref() <= USER_END => e,
                    _ => Bytes::from_static(USER_END),
                }),
            }),
        }
    }
}

/// Most bytes of keys and values a listing page holds unless the caller asks
/// for fewer ([`ListQuery::max_bytes`]): 8 MiB.
pub const MAX_LIST_PAGE_BYTES: usize = 8 << 20;

/// A listing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub range: KeyRange,
    /// Most entries in the page (at least 1).
    pub limit: usize,
    /// Resume strictly after this key.
    pub cursor: Option<Bytes>,
    /// Return values. Without them a page carries keys, versions, expiries
    /// and value sizes, and backends do not copy values.
    pub values: bool,
    /// Most bytes of keys (and values, when returned) in the page: a page
    /// ends early, with a cursor, before the entry that would pass it, but
    /// always holds at least one entry.
    pub max_bytes: usize,
}

impl ListQuery {
    /// The first page of `range`, up to `limit` entries with their values
    /// and at most [`MAX_LIST_PAGE_BYTES`].
    pub fn new(range: KeyRange, limit: usize) -> Self {
        ListQuery {
            range,
            limit,
            cursor: None,
            values: true,
            max_bytes: MAX_LIST_PAGE_BYTES,
        }
    }
}

/// One entry of a listing page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: Bytes,
    pub version: Version,
    pub expires_at: Option<UnixMillis>,
    /// Length of the value in bytes.
    pub size: u64,
    /// The value, when the query asked for values.
    pub value: Option<Bytes>,
}

/// A page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<Listed>,
    /// The key to pass as the next query's cursor; `None` when the listing is
    /// complete.
    pub next_cursor: Option<Bytes>,
}

/// Builds a page the way every backend must: live entries in key order are
/// offered one by one until one does not fit (by count or by bytes); the
/// page then ends with a cursor at its last key. The one home of the paging
/// rule, so backends cannot disagree on it.
#[derive(Debug)]
pub struct PageBuilder<'q> {
    query: &'q ListQuery,
    entries: Vec<Listed>,
    bytes: usize,
    full: bool,
}

impl<'q> PageBuilder<'q> {
    pub fn new(query: &'q ListQuery) -> Self {
        PageBuilder {
            query,
            entries: Vec::new(),
            bytes: 0,
            full: false,
        }
    }

    /// Offers the next live entry in key order. Returns `false`, taking
    /// nothing, once the page is full: stop scanning and call
    /// [`PageBuilder::finish`]. `value` is called only when the query asks
    /// for values.
    pub fn offer(
        &mut self,
        key: &[u8],
        version: Version,
        expires_at: Option<UnixMillis>,
        value_len: usize,
        value: impl FnOnce() -> Bytes,
    ) -> bool {
        let cost = key.len() + if self.query.values { value_len } else { 0 };
        if self.entries.len() >= self.query.limit
            || (!self.entries.is_empty() && self.bytes.saturating_add(cost) > self.query.max_bytes)
        {
            self.full = true;
            return false;
        }
        self.bytes += cost;
        self.entries.push(Listed {
            key: Bytes::copy_from_slice(key),
            version,
            expires_at,
            size: value_len as u64,
            value: self.query.values.then(value),
        });
        true
    }

    /// Entries taken so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the page is full (the last offer was refused).
    pub fn is_full(&self) -> bool {
        self.full
    }

    pub fn finish(self) -> ListPage {
        let next_cursor = if self.full {
            self.entries.last().map(|e| e.key.clone())
        } else {
            None
        };
        ListPage {
            entries: self.entries,
            next_cursor,
        }
    }
}

/// Sizes and counts of a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    /// Entries not yet purged (expired ones may be included until purged).
    pub keys: u64,
    /// Bytes of keys and values of those entries.
    pub bytes: u64,
    /// `false`: `keys` and `bytes` were not counted and mean nothing (an
    /// object-storage backend answering `health_stats`, which would have to
    /// read every object to count). The server then reports them as unknown.
    pub sizes_known: bool,
    /// Bytes on disk, for backends with a disk footprint.
    pub disk_bytes: Option<u64>,
    /// Request counters of a backend that talks to a remote service.
    pub remote: Option<RemoteStats>,
}

/// Counters of a remote backend (object storage) since it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RemoteStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// Operations that failed after their last retry.
    pub failures: u64,
    /// The last failure's message (never a secret), if any.
    pub last_error: Option<String>,
}

/// One engine-specific metric, exported as `orbit_engine_<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineMetric {
    /// Snake-case name, e.g. `rocksdb_block_cache_hit_total`.
    pub name: String,
    pub help: &'static str,
    pub value: u64,
    /// A monotonic counter (otherwise a gauge).
    pub counter: bool,
}

impl EngineMetric {
    /// A gauge: a value that goes up and down.
    pub fn gauge(name: impl Into<String>, help: &'static str, value: u64) -> Self {
        EngineMetric {
            name: name.into(),
            help,
            value,
            counter: false,
        }
    }

    /// A monotonic counter; `name` ends in `_total`.
    pub fn counter(name: impl Into<String>, help: &'static str, value: u64) -> Self {
        EngineMetric {
            name: name.into(),
            help,
            value,
            counter: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PRIVATE_KEY_PREFIX, StorageError};

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    fn range(start: Option<&[u8]>, end: Option<&[u8]>) -> KeyRange {
        KeyRange::Range {
            start: start.map(b),
            end: end.map(b),
        }
    }

    fn refused(r: KeyRange) -> String {
        match r.clone().clamp_to_user_keyspace() {
            Err(e @ StorageError::Invalid(_)) => e.to_string(),
            other => panic!("{r:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn private_keys_are_those_starting_with_0xff() {
        assert!(is_private_key(&[PRIVATE_KEY_PREFIX]));
        assert!(is_private_key(b"\xFForbit/canary/x"));
        assert!(!is_private_key(b""));
        assert!(!is_private_key(b"\xFEz"));
        assert!(!is_private_key("\u{FFFF}".as_bytes()));
    }

    #[test]
    fn empty_prefix_becomes_the_user_keyspace() {
        assert_eq!(
            KeyRange::Prefix(Bytes::new())
                .clamp_to_user_keyspace()
                .unwrap(),
            range(None, Some(&[0xFF]))
        );
    }

    #[test]
    fn user_prefixes_are_kept() {
        for p in [&b"a"[..], b"\xFE", b"\x00", b"actors/\xFF"] {
            assert_eq!(
                KeyRange::Prefix(b(p)).clamp_to_user_keyspace().unwrap(),
                KeyRange::Prefix(b(p))
            );
        }
    }

    #[test]
    fn private_prefixes_are_refused() {
        for p in [&[0xFF][..], &[0xFF, 0xFF], b"\xFForbit/canary/"] {
            let e = refused(KeyRange::Prefix(b(p)));
            assert!(e.contains("0xFF") && e.contains("reserved"), "{e}");
        }
    }

    #[test]
    fn range_ends_stop_at_the_private_keyspace() {
        let clamp = |r: KeyRange| r.clamp_to_user_keyspace().unwrap();
        let user_end = Some(&[0xFF][..]);
        assert_eq!(clamp(range(None, None)), range(None, user_end));
        assert_eq!(clamp(range(Some(b"a"), None)), range(Some(b"a"), user_end));
        assert_eq!(clamp(range(None, Some(&[0xFF]))), range(None, user_end));
        assert_eq!(clamp(range(None, Some(&[0xFF, 0]))), range(None, user_end));
        assert_eq!(
            clamp(range(Some(b""), Some(&[0xFF, 0xFF]))),
            range(Some(b""), user_end)
        );
        // Ends inside the user keyspace are untouched.
        assert_eq!(
            clamp(range(Some(b"a"), Some(b"m"))),
            range(Some(b"a"), Some(b"m"))
        );
        assert_eq!(
            clamp(range(None, Some(&[0xFE, 0xFF, 0xFF]))),
            range(None, Some(&[0xFE, 0xFF, 0xFF]))
        );
    }

    #[test]
    fn range_starts_in_the_private_keyspace_are_refused() {
        for start in [&[0xFF][..], &[0xFF, 0], b"\xFForbit"] {
            refused(range(Some(start), None));
            refused(range(Some(start), Some(&[0xFF, 0xFF])));
        }
    }
}
