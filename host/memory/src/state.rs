//! The in-memory state of the memory backend and the storage contract's
//! semantics on it.
//!
//! [`State`] is plain synchronous data: the entries in a hash map (a point
//! read or write hashes the key once instead of comparing it with a dozen
//! others), an ordered set of the same keys for listings and snapshots, a
//! secondary `(expires_at, key)` index so purging touches only expired
//! entries, the store-wide version counter and a change counter that tells
//! `flush` whether a snapshot is due. The caller ([`crate::MemoryStorage`])
//! owns the lock around it and validates input first; every method here
//! takes the current time as an argument so one operation sees one instant.
//!
//! Guarantees:
//! - an expired entry (`expires_at <= now`) is treated as absent by every
//!   read and precondition, whether or not it has been purged yet;
//! - a failed operation (conflict, capacity) changes nothing;
//! - versions come from one counter that only increases, and a batch either
//!   applies every operation or none.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;

use bytes::Bytes;

use orbit_storage::rules::{self, is_live};
use orbit_storage::{
    BatchOp, Entry, KeyRange, ListPage, ListQuery, PageBuilder, Precondition, PutOptions,
    StorageError, StorageResult, UnixMillis, Version,
};

/// One stored value and its metadata (the key is the map key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub value: Bytes,
    pub version: Version,
    pub expires_at: Option<UnixMillis>,
}

impl Slot {
    fn is_live(&self, now: UnixMillis) -> bool {
        is_live(self.expires_at, now)
    }
}

/// Everything a snapshot holds: a consistent copy taken under one lock.
#[derive(Debug, Default)]
pub(crate) struct SnapshotData {
    pub next_version: Version,
    pub entries: Vec<(Bytes, Slot)>,
}

#[derive(Debug)]
pub(crate) struct State {
    entries: HashMap<Bytes, Slot>,
    /// The keys of `entries`, in order (a `Bytes` clone shares the key's
    /// allocation).
    order: BTreeSet<Bytes>,
    /// `(expires_at, key)` of every entry that has an expiry.
    expiries: BTreeSet<(UnixMillis, Bytes)>,
    /// The version the next write gets; versions start at 1.
    next_version: Version,
    /// Sum of key and value lengths over `entries`.
    bytes: u64,
    /// XOR over the entries of a keyed hash of `(key, version)`: what a
    /// snapshot holds, in eight bytes. A write and a delete that cancel out
    /// (the health canary's) leave it unchanged, so an idle store is not
    /// rewritten; the hash keys are random per process, so clients cannot
    /// steer it to collide.
    content: u64,
    hasher: RandomState,
    /// Most live keys (`ORBIT_MEMORY_MAX_ENTRIES`).
    max_entries: u64,
}

impl State {
    pub fn new(max_entries: u64) -> Self {
        State {
            entries: HashMap::new(),
            order: BTreeSet::new(),
            expiries: BTreeSet::new(),
            next_version: 1,
            bytes: 0,
            content: 0,
            hasher: RandomState::new(),
            max_entries,
        }
    }

    /// Rebuilds a state from a decoded snapshot. The snapshot decoder has
    /// already checked that keys are unique and versions below `next_version`.
    pub fn restore(max_entries: u64, snapshot: SnapshotData) -> Self {
        let mut state = State::new(max_entries);
        state.next_version = snapshot.next_version;
        for (key, slot) in snapshot.entries {
            state.insert(key, slot);
        }
        state
    }

    /// A fingerprint of the entries; compare with the value seen by the
    /// last successful snapshot to know whether a new one is needed.
    pub fn content(&self) -> u64 {
        self.content
    }

    /// The version the next write gets.
    pub fn next_version(&self) -> Version {
        self.next_version
    }

    /// Starts the counter at `floor` if it is below it (a reservation or a
    /// clock floor; see `reserve`).
    pub fn raise_next_version(&mut self, floor: Version) {
        self.next_version = self.next_version.max(floor);
    }

    /// Number of entries held, expired-but-unpurged ones included.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A consistent copy of the live entries. Cloning `Bytes` only bumps
    /// reference counts, so this is cheap enough to do under the read lock.
    pub fn snapshot(&self, now: UnixMillis) -> SnapshotData {
        let entries = self
            .ordered(Bound::Unbounded, Bound::Unbounded)
            .filter(|(_, slot)| slot.is_live(now))
            .map(|(key, slot)| (key.clone(), slot.clone()))
            .collect();
        SnapshotData {
            next_version: self.next_version,
            entries,
        }
    }

    pub fn get(&self, key: &[u8], now: UnixMillis) -> Option<Entry> {
        let (key, slot) = self.entries.get_key_value(key)?;
        slot.is_live(now).then(|| Entry {
            key: key.clone(),
            value: slot.value.clone(),
            version: slot.version,
            expires_at: slot.expires_at,
        })
    }

    pub fn put(
        &mut self,
        key: Bytes,
        value: Bytes,
        options: PutOptions,
        now: UnixMillis,
    ) -> StorageResult<Version> {
        let current = self.live_version(&key, now);
        options.precondition.check(&key, current)?;
        if current.is_none() && is_live(options.expires_at, now) {
            self.ensure_room(1, now)?;
        }
        let version = self.next_version;
        self.next_version = bump(version)?;
        self.insert(
            key,
            Slot {
                value,
                version,
                expires_at: options.expires_at,
            },
        );
        Ok(version)
    }

    pub fn delete(
        &mut self,
        key: &[u8],
        precondition: Precondition,
        now: UnixMillis,
    ) -> StorageResult<bool> {
        let current = self.live_version(key, now);
        precondition.check(key, current)?;
        // An expired entry is removed as well (it is garbage), but only a
        // live one counts as deleted.
        let removed = self.remove(key);
        Ok(removed.is_some_and(|slot| slot.is_live(now)))
    }

    /// Plans the batch by the contract's rule ([`rules::plan_batch`]:
    /// preconditions see the earlier operations, a `Conflict` carries the
    /// key's committed version), checks capacity for the net new keys, and
    /// only then applies everything.
    pub fn batch(
        &mut self,
        ops: Vec<BatchOp>,
        now: UnixMillis,
    ) -> StorageResult<Vec<Option<Version>>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut next_version = self.next_version;
        let plan = rules::plan_batch(
            &ops,
            now,
            |key| self.live_version(key, now),
            || {
                let version = next_version;
                next_version = bump(version)?;
                Ok(version)
            },
        )?;
        self.ensure_room(plan.net_new_keys(), now)?;

        for (op, version) in ops.into_iter().zip(&plan.versions) {
            match (op, version) {
                (
                    BatchOp::Put {
                        key,
                        value,
                        options,
                    },
                    Some(version),
                ) => self.insert(
                    key,
                    Slot {
                        value,
                        version: *version,
                        expires_at: options.expires_at,
                    },
                ),
                (op, _) => {
                    self.remove(op.key());
                }
            }
        }
        self.next_version = next_version;
        Ok(plan.versions)
    }

    /// One page of live entries; `query` has been validated.
    pub fn list(&self, query: &ListQuery, now: UnixMillis) -> ListPage {
        let (start, end, prefix): (&[u8], Option<&[u8]>, Option<&[u8]>) = match &query.range {
            KeyRange::Prefix(prefix) => (prefix, None, Some(prefix)),
            KeyRange::Range { start, end } => {
                (start.as_deref().unwrap_or_default(), end.as_deref(), None)
            }
        };
        let lower = match query.cursor.as_deref() {
            Some(cursor) if cursor >= start => Bound::Excluded(cursor),
            _ => Bound::Included(start),
        };
        // `BTreeSet::range` panics on an empty range written with an
        // excluded start; such a page is simply empty.
        if let (Bound::Excluded(cursor), Some(end)) = (lower, end)
            && cursor >= end
        {
            return ListPage::default();
        }
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);

        let live = self
            .ordered(lower, upper)
            .take_while(|(key, _)| prefix.is_none_or(|prefix| key.starts_with(prefix)))
            .filter(|(_, slot)| slot.is_live(now));
        let mut page = PageBuilder::new(query);
        for (key, slot) in live {
            if !page.offer(key, slot.version, slot.expires_at, slot.value.len(), || {
                slot.value.clone()
            }) {
                break;
            }
        }
        page.finish()
    }

    /// Removes every entry expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: UnixMillis) -> u64 {
        let mut purged = 0;
        while let Some((expires_at, _)) = self.expiries.first() {
            if is_live(Some(*expires_at), now) {
                break;
            }
            let Some((_, key)) = self.expiries.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&key) {
                self.order.remove(&key);
                self.bytes -= entry_bytes(&key, &slot);
                self.content ^= self.hasher.hash_one((&key, slot.version));
                purged += 1;
            }
        }
        purged
    }

    /// The entries with keys in `(lower, upper)`, in key order.
    fn ordered<'a>(
        &'a self,
        lower: Bound<&'a [u8]>,
        upper: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Slot)> + 'a {
        self.order
            .range::<[u8], _>((lower, upper))
            .filter_map(|key| self.entries.get_key_value(key))
    }

    fn live_version(&self, key: &[u8], now: UnixMillis) -> Option<Version> {
        self.entries
            .get(key)
            .filter(|slot| slot.is_live(now))
            .map(|slot| slot.version)
    }

    /// Makes room for `new_keys` more live keys: purges expired entries if
    /// the store looks full, then refuses if it still is. Never evicts.
    fn ensure_room(&mut self, new_keys: u64, now: UnixMillis) -> StorageResult<()> {
        if new_keys == 0 || self.len().saturating_add(new_keys) <= self.max_entries {
            return Ok(());
        }
        self.purge_expired(now);
        if self.len().saturating_add(new_keys) <= self.max_entries {
            return Ok(());
        }
        Err(StorageError::CapacityExceeded(format!(
            "the memory backend holds {} live keys and ORBIT_MEMORY_MAX_ENTRIES is {}; \
             delete keys or raise the limit (entries are never evicted)",
            self.len(),
            self.max_entries
        )))
    }

    /// Inserts or replaces an entry, keeping the expiry index and the byte
    /// count and the content fingerprint in step. Does not touch versions.
    fn insert(&mut self, key: Bytes, slot: Slot) {
        let added = entry_bytes(&key, &slot);
        self.content ^= self.hasher.hash_one((&key, slot.version));
        if let Some(at) = slot.expires_at {
            self.expiries.insert((at, key.clone()));
        }
        match self.entries.entry(key) {
            MapEntry::Occupied(mut occupied) => {
                let old = occupied.insert(slot);
                self.bytes -= entry_bytes(occupied.key(), &old);
                self.content ^= self.hasher.hash_one((occupied.key(), old.version));
                if let Some(at) = old.expires_at
                    && Some(at) != occupied.get().expires_at
                {
                    self.expiries.remove(&(at, occupied.key().clone()));
                }
            }
            MapEntry::Vacant(vacant) => {
                self.order.insert(vacant.key().clone());
                vacant.insert(slot);
            }
        }
        self.bytes += added;
    }

    fn remove(&mut self, key: &[u8]) -> Option<Slot> {
        let (key, slot) = self.entries.remove_entry(key)?;
        self.order.remove(&key);
        self.bytes -= entry_bytes(&key, &slot);
        self.content ^= self.hasher.hash_one((&key, slot.version));
        if let Some(at) = slot.expires_at {
            self.expiries.remove(&(at, key));
        }
        Some(slot)
    }
}

fn entry_bytes(key: &[u8], slot: &Slot) -> u64 {
    (key.len() + slot.value.len()) as u64
}

/// The version after `version`. Only a hand-made snapshot can bring the
/// counter near `u64::MAX`; refuse rather than wrap around.
fn bump(version: Version) -> StorageResult<Version> {
    version.checked_add(1).ok_or_else(|| {
        StorageError::Unavailable("the memory backend's version counter is exhausted".into())
    })
}
