//! The expiry index: one small object per future piece of background work,
//! named so that a name-ordered listing returns them in due order.
//!
//! Exists so that TTL purge costs requests in proportion to the work that
//! is due, not to the number of keys: purge lists `P/x/` from its start and
//! stops at the first entry that is not due yet (one LIST request on an
//! idle store). Every key-record write (`CloudStorage::put_record`) writes
//! the entries of the record it is about to write *before* the record, so a
//! crash never leaves due work unindexed; stale entries (the key was
//! rewritten since) are recognised by their version and just deleted.
//!
//! Entry name (one path segment, at most 254 bytes):
//! `<due ms, 13 decimal digits>.<kind><version, 16 hex>.<key object name>`
//! for key object names of up to 222 bytes (every key of up to
//! [`DIRECT_KEY_LEN`] bytes). Longer key object names (keys longer than
//! that) would not fit in one segment: their entry is named
//! `...h<sha256 of the name, 32 hex>` (`h` is no hex digit, so it cannot
//! start a key object name; `~` would be percent-encoded) and holds the key object name as its
//! body (one GET more when purge handles it).

use sha2::{Digest, Sha256};

use crate::layout::{DIRECT_KEY_LEN, Record};

/// Largest due time an entry name can hold (13 decimal digits, year 2286).
const MAX_DUE: u64 = 9_999_999_999_999;

/// What a due entry asks purge to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The committed cell is live with `expires_at`: turn it into a
    /// tombstone once expired.
    Expiry,
    /// The committed cell is a tombstone: delete the object once it is
    /// older than the tombstone grace.
    Tombstone,
    /// The record carries a batch intent: settle it once the batch has
    /// finished or timed out.
    Intent,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Expiry => 'e',
            Kind::Tombstone => 'g',
            Kind::Intent => 'i',
        }
    }

    fn from_letter(letter: char) -> Option<Kind> {
        match letter {
            'e' => Some(Kind::Expiry),
            'g' => Some(Kind::Tombstone),
            'i' => Some(Kind::Intent),
            _ => None,
        }
    }
}

/// One index entry: when, what, for which version of which key object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub due: u64,
    pub kind: Kind,
    /// The version of the cell (or intent) the entry was written for.
    pub version: u64,
    /// The key object's name (last segment under `P/k/`), or `None` when
    /// it is in the entry's body (long names).
    pub key_name: Option<String>,
}

/// Longest key object name that fits into an entry name.
const INLINE_NAME_LEN: usize = 2 * DIRECT_KEY_LEN;

/// The entries a record needs: what purge must do with it, and when.
/// `tombstone_grace_ms` and `txn_timeout_ms` are the store's timings.
pub fn entries_for(
    record: &Record,
    key_name: &str,
    tombstone_grace_ms: u64,
    txn_timeout_ms: u64,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut push = |due: u64, kind: Kind, version: u64| {
        out.push(Entry {
            due: due.min(MAX_DUE),
            kind,
            version,
            key_name: Some(key_name.to_string()),
        })
    };
    if record.cell.live {
        if let Some(at) = record.cell.expires_at {
            push(at, Kind::Expiry, record.cell.version);
        }
    } else {
        push(
            record.written_at.saturating_add(tombstone_grace_ms),
            Kind::Tombstone,
            record.cell.version,
        );
    }
    if let Some(intent) = &record.intent {
        push(
            record.written_at.saturating_add(txn_timeout_ms),
            Kind::Intent,
            intent.cell.version,
        );
    }
    out
}

impl Entry {
    /// The entry's object name (last segment) and, for long key names, the
    /// body that holds the key object name.
    pub fn name(&self) -> (String, Option<String>) {
        let head = format!(
            "{:013}.{}{:016x}",
            self.due,
            self.kind.letter(),
            self.version
        );
        match &self.key_name {
            Some(name) if name.len() <= INLINE_NAME_LEN => (format!("{head}.{name}"), None),
            Some(name) => {
                let digest = Sha256::digest(name.as_bytes());
                (
                    format!("{head}.h{}", hex::encode(&digest[..16])),
                    Some(name.clone()),
                )
            }
            None => (format!("{head}.h"), None),
        }
    }

    /// Parses an entry name; `None` for a name this module never writes.
    pub fn parse(name: &str) -> Option<Entry> {
        let mut parts = name.splitn(3, '.');
        let due = parts.next()?;
        let tagged = parts.next()?;
        let rest = parts.next()?;
        if due.len() != 13 || !due.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut chars = tagged.chars();
        let kind = Kind::from_letter(chars.next()?)?;
        let version = chars.as_str();
        if version.len() != 16 {
            return None;
        }
        Some(Entry {
            due: due.parse().ok()?,
            kind,
            version: u64::from_str_radix(version, 16).ok()?,
            key_name: (!rest.starts_with('h')).then(|| rest.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Cell, Intent, key_name};
    use bytes::Bytes;

    fn record(cell: Cell, intent: Option<Intent>) -> Record {
        Record {
            key: Bytes::from_static(b"k"),
            cell,
            intent,
            ops: Vec::new(),
            written_at: 1_000,
        }
    }

    #[test]
    fn names_sort_by_due_time_and_round_trip() {
        let mut names = Vec::new();
        for (due, version) in [(5u64, 9u64), (1_700_000_000_000, 1), (40, u64::MAX)] {
            let entry = Entry {
                due,
                kind: Kind::Expiry,
                version,
                key_name: Some(key_name(b"some key")),
            };
            let (name, body) = entry.name();
            assert!(body.is_none());
            assert!(name.len() <= 255);
            assert_eq!(Entry::parse(&name), Some(entry));
            names.push((due, name));
        }
        let mut by_name = names.clone();
        by_name.sort_by(|a, b| a.1.cmp(&b.1));
        names.sort();
        assert_eq!(names, by_name);
    }

    #[test]
    fn long_key_names_go_to_the_body() {
        let long = key_name(&[7u8; 500]);
        let entry = Entry {
            due: 1,
            kind: Kind::Tombstone,
            version: 3,
            key_name: Some(long.clone()),
        };
        let (name, body) = entry.name();
        assert!(name.len() <= 255, "{}", name.len());
        assert_eq!(body, Some(long));
        let parsed = Entry::parse(&name).unwrap();
        assert_eq!(parsed.key_name, None);
        assert_eq!((parsed.due, parsed.version), (1, 3));
        // The longest direct name fits inline.
        let direct = key_name(&[0xab; DIRECT_KEY_LEN]);
        let (name, body) = Entry {
            key_name: Some(direct),
            ..entry
        }
        .name();
        assert!(body.is_none() && name.len() <= 255, "{}", name.len());
    }

    #[test]
    fn records_get_the_entries_they_need() {
        let plain = Cell {
            version: 2,
            live: true,
            expires_at: None,
            value: Bytes::new(),
        };
        assert!(entries_for(&record(plain.clone(), None), "6b", 60, 20).is_empty());
        let expiring = Cell {
            expires_at: Some(5_000),
            ..plain.clone()
        };
        let e = entries_for(&record(expiring, None), "6b", 60, 20);
        assert_eq!((e.len(), e[0].due, e[0].kind), (1, 5_000, Kind::Expiry));
        let e = entries_for(&record(Cell::tombstone(4), None), "6b", 60, 20);
        assert_eq!(
            (e[0].due, e[0].kind, e[0].version),
            (1_060, Kind::Tombstone, 4)
        );
        let intent = Intent {
            txn: "t".into(),
            cell: Cell {
                version: 9,
                ..plain.clone()
            },
        };
        let e = entries_for(&record(plain, Some(intent)), "6b", 60, 20);
        assert_eq!(
            (e.len(), e[0].due, e[0].kind, e[0].version),
            (1, 1_020, Kind::Intent, 9)
        );
        assert_eq!(Entry::parse("junk"), None);
        assert_eq!(Entry::parse("0000000000001.x0000000000000001.ab"), None);
    }
}
