//! The storage contract on top of any ordered key-value engine.
//!
//! RocksDB, the in-house LSM tree and the copy-on-write B+tree all offer the
//! same small surface: point reads, atomic multi-key writes, ordered scans
//! and a sync. [`OrderedKv`] is that surface; [`KvStorage`] adds everything
//! else the [`Storage`] contract promises, once, for all of them:
//!
//! - **versions** from one store-wide counter. Versions are handed out from a
//!   reserved block whose upper end is written (and synced) to the engine
//!   before any version of the block is used, so a restart resumes above
//!   every version ever issued, deleted keys included (no ABA);
//! - **compare-and-set**: writes to one key are serialised by a striped lock
//!   held from reading the current version to the engine's acknowledgement.
//!   Writers to different keys run concurrently, so an engine's group commit
//!   still merges their fsyncs;
//! - **TTL**: the expiry travels in the record header ([`record`]); expired
//!   records are invisible at once, and an expiry index makes a purge read
//!   only what has expired;
//! - **atomic batches**: one engine write carries every operation of a batch
//!   and its index updates, after all preconditions were checked under the
//!   locks of every key involved;
//! - **exact counts**: key and byte counts are counted once at open (one scan
//!   of the data namespace, so opening is linear in the number of keys) and
//!   kept exact by every write.
//!
//! Engine calls may block, so operations run on Tokio's blocking pool, except
//! where the engine can answer without blocking: a point read it serves from
//! memory ([`OrderedKv::try_get`]) and a single-key write it applies to memory
//! and makes durable later ([`OrderedKv::try_write`]) run in the calling task,
//! which then waits for the engine's group fsync without holding a thread
//! ([`durable`]). A key whose last write is not durable yet is not read for a
//! write until it is: the stripe remembers the log position it waits for.

mod durable;
mod record;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use crate::{
    BatchOp, EngineMetric, Entry, KeyRange, ListPage, ListQuery, PageBuilder, Precondition,
    PutOptions, Storage, StorageError, StorageResult, StorageStats, UnixMillis, Version,
    now_millis, rules, validate,
};
use record::Record;

/// One operation of an engine write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// What [`OrderedKv::try_write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied, as durable as the engine's configured durability promises.
    Durable,
    /// Applied; durable, and visible to reads, once
    /// [`OrderedKv::wait_durable`] of this log position returns.
    Pending(u64),
    /// Not applied: the write would block (use [`OrderedKv::write`] on a
    /// thread that may block).
    WouldBlock,
}

/// What [`KvStorage`] needs of an engine.
pub trait OrderedKv: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;

    /// [`OrderedKv::get`] without blocking: `None` when the answer needs a
    /// file read. Called from async tasks, so it must not touch the disk.
    fn try_get(&self, _key: &[u8]) -> StorageResult<Option<Option<Vec<u8>>>> {
        Ok(None)
    }

    /// Applies every operation or none, in order, and returns once the write
    /// is as durable as the engine's configured durability promises.
    fn write(&self, ops: Vec<KvOp>) -> StorageResult<()>;

    /// [`OrderedKv::write`] without blocking, called from async tasks: either
    /// applies the operations (leaving the fsync to
    /// [`OrderedKv::wait_durable`] if it returns [`Applied::Pending`]) or
    /// applies nothing and answers [`Applied::WouldBlock`].
    fn try_write(&self, _ops: &[KvOp]) -> StorageResult<Applied> {
        Ok(Applied::WouldBlock)
    }

    /// Whether [`OrderedKv::try_write`] can ever apply a write. When not,
    /// writes go straight to the blocking pool, without reading the key
    /// first in the task only to be refused.
    fn tries_writes(&self) -> bool {
        false
    }

    /// Blocks until the log is durable up to `position` (from
    /// [`Applied::Pending`]). A failure is fatal: the engine refuses writes
    /// from then on.
    fn wait_durable(&self, _position: u64) -> StorageResult<()> {
        Ok(())
    }

    /// Visits `lower..upper` in key order on a consistent snapshot until
    /// `visit` returns `false`.
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> StorageResult<()>;

    /// Makes every acknowledged write durable, whatever the durability mode.
    fn sync(&self) -> StorageResult<()>;

    /// Bytes the engine occupies on disk.
    fn disk_bytes(&self) -> Option<u64>;

    /// Engine-specific metrics (see [`Storage::engine_metrics`]).
    fn metrics(&self) -> Vec<EngineMetric> {
        Vec::new()
    }
}

/// How many versions one reservation covers.
const VERSION_BLOCK: u64 = 1 << 20;

/// Stripes of the per-key write lock.
const LOCK_STRIPES: usize = 1024;

/// A [`Storage`] over an [`OrderedKv`] engine.
pub struct KvStorage<E: OrderedKv> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    engine: E,
    /// Names the database in errors (its directory or file).
    location: String,
    /// The per-key write locks. Each holds the log position its stripe's last
    /// write waits for (0: none), which must be durable before a key of the
    /// stripe is read for a write.
    locks: Box<[Mutex<u64>]>,
    syncer: Arc<durable::Syncer>,
    hasher: std::collections::hash_map::RandomState,
    versions: Mutex<Versions>,
    keys: AtomicU64,
    bytes: AtomicU64,
}

struct Versions {
    next: Version,
    /// Versions below this are covered by the durable reservation.
    reserved: Version,
}

impl<E: OrderedKv> KvStorage<E> {
    /// Wraps an open engine: reads the version reservation, counts the keys
    /// and reserves the first block of versions. Blocks (call it on a
    /// blocking thread); linear in the number of keys.
    pub fn open(engine: E, location: impl Into<String>) -> StorageResult<Self> {
        let location = location.into();
        let reserved = match engine.get(record::VERSIONS_RESERVED)? {
            None => 1,
            Some(bytes) => {
                let word: [u8; 8] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt {
                            path: location.clone(),
                            reason: format!(
                                "version reservation is {} bytes, expected 8",
                                bytes.len()
                            ),
                        })?;
                u64::from_le_bytes(word)
            }
        };
        let (mut keys, mut bytes, mut failure) = (0u64, 0u64, None);
        engine.scan(
            Bound::Included(&[record::DATA]),
            Bound::Excluded(&[record::DATA + 1]),
            &mut |key, value| match record::header(value, &location, &key[1..]) {
                Ok(_) => {
                    keys += 1;
                    bytes += (key.len() - 1 + value.len() - record::HEADER_LEN) as u64;
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        let inner = Inner {
            engine,
            location,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(0)).collect(),
            syncer: durable::Syncer::new(),
            hasher: Default::default(),
            // Start at the reservation: versions below it may have been used.
            versions: Mutex::new(Versions {
                next: reserved,
                reserved,
            }),
            keys: AtomicU64::new(keys),
            bytes: AtomicU64::new(bytes),
        };
        inner.reserve(&mut inner.versions.lock(), 0)?;
        Ok(KvStorage {
            inner: Arc::new(inner),
        })
    }

    /// The engine, for engine-specific reporting.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }

    async fn run<T, F>(&self, what: &'static str, f: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner<E>) -> StorageResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Unavailable(format!("{what} did not complete: {e}")))?
    }

    /// A single-key write: in this task while the engine can take it without
    /// blocking, on the blocking pool otherwise.
    async fn write_key<T, F>(&self, what: &'static str, step: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: Fn(&Inner<E>, Mode) -> StorageResult<Step<T>> + Send + 'static,
    {
        let syncer = &self.inner.syncer;
        while self.inner.engine.tries_writes() {
            match step(&self.inner, Mode::Async)? {
                Step::Done(value) => return Ok(value),
                Step::Pending(value, position) => {
                    syncer.wait(&self.inner, position).await?;
                    return Ok(value);
                }
                Step::Wait(position) => syncer.wait(&self.inner, position).await?,
                Step::Blocking => break,
            }
        }
        self.run(what, move |s| match step(s, Mode::Blocking)? {
            Step::Done(value) => Ok(value),
            _ => Err(StorageError::Unavailable(format!(
                "{what} did not complete on a blocking thread"
            ))),
        })
        .await
    }
}

impl<E> Drop for Inner<E> {
    fn drop(&mut self) {
        self.syncer.stop();
    }
}

/// Where an engine call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In an async task: nothing may block.
    Async,
    /// On the blocking pool.
    Blocking,
}

/// What a single-key write's plan decided.
enum Plan<T> {
    /// Apply the planned operations, then answer this; the key then holds a
    /// value of this many bytes (`None`: nothing).
    Write(T, Option<usize>),
    /// Nothing to write: answer at once.
    Answer(T),
    /// Would block: run it on the blocking pool.
    Blocking,
}

/// What the locked part of a single-key write came to.
enum Step<T> {
    /// Done, as durable as the engine promises.
    Done(T),
    /// Done; durable and visible once the log is durable up to the position.
    Pending(T, u64),
    /// The stripe's last write waits for this position: wait, then retry.
    Wait(u64),
    /// Would block: run it on the blocking pool.
    Blocking,
}

impl<E: OrderedKv> Inner<E> {
    /// Makes `next + wanted` versions available, writing a new reservation
    /// (synced) when the current one does not cover them.
    fn reserve(&self, versions: &mut MutexGuard<'_, Versions>, wanted: u64) -> StorageResult<()> {
        let needed = versions
            .next
            .checked_add(wanted)
            .ok_or_else(|| StorageError::CapacityExceeded("version counter exhausted".into()))?;
        if needed < versions.reserved {
            return Ok(());
        }
        let reserved = needed.saturating_add(VERSION_BLOCK);
        self.engine.write(vec![KvOp::Put {
            key: record::VERSIONS_RESERVED.to_vec(),
            value: reserved.to_le_bytes().to_vec(),
        }])?;
        self.engine.sync()?;
        versions.reserved = reserved;
        Ok(())
    }

    /// The first of `n` consecutive fresh versions.
    fn allocate(&self, n: u64) -> StorageResult<Version> {
        let mut versions = self.versions.lock();
        self.reserve(&mut versions, n)?;
        let first = versions.next;
        versions.next += n;
        Ok(first)
    }

    /// [`Inner::allocate`] in `mode`: `None` when a new reservation must be
    /// written and `mode` may not block.
    fn allocate_in(&self, n: u64, mode: Mode) -> StorageResult<Option<Version>> {
        let mut versions = self.versions.lock();
        let covered = versions
            .next
            .checked_add(n)
            .is_some_and(|end| end < versions.reserved);
        if !covered && mode == Mode::Async {
            return Ok(None);
        }
        self.reserve(&mut versions, n)?;
        let first = versions.next;
        versions.next += n;
        Ok(Some(first))
    }

    fn stripe(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) % LOCK_STRIPES
    }

    /// Locks the stripes of `keys` (in stripe order, so lockers cannot
    /// deadlock), each settled ([`Inner::settle`]).
    fn lock_keys<'a>(
        &'a self,
        keys: impl Iterator<Item = &'a [u8]>,
    ) -> StorageResult<Vec<MutexGuard<'a, u64>>> {
        let mut stripes: Vec<usize> = keys.map(|k| self.stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            let mut guard = self.locks[s].lock();
            self.settle(&mut guard, Mode::Blocking)?;
            guards.push(guard);
        }
        Ok(guards)
    }

    /// Makes sure the stripe's last write is durable, so its keys read
    /// current: blocks for it (`Mode::Blocking`), or returns the position to
    /// wait for (`Mode::Async`).
    fn settle(&self, pending: &mut u64, mode: Mode) -> StorageResult<Option<u64>> {
        if *pending == 0 || *pending <= self.syncer.durable() {
            *pending = 0;
            return Ok(None);
        }
        if mode == Mode::Async {
            return Ok(Some(*pending));
        }
        self.engine.wait_durable(*pending)?;
        *pending = 0;
        Ok(None)
    }

    fn read(&self, key: &[u8]) -> StorageResult<Option<Record>> {
        self.decode(key, self.engine.get(&record::data_key(key))?)
    }

    /// [`Inner::read`] in `mode`: `None` when the engine would have to block.
    fn read_in(&self, key: &[u8], mode: Mode) -> StorageResult<Option<Option<Record>>> {
        match mode {
            Mode::Blocking => self.read(key).map(Some),
            Mode::Async => match self.engine.try_get(&record::data_key(key))? {
                Some(stored) => self.decode(key, stored).map(Some),
                None => Ok(None),
            },
        }
    }

    fn decode(&self, key: &[u8], stored: Option<Vec<u8>>) -> StorageResult<Option<Record>> {
        stored
            .map(|bytes| record::decode(bytes, &self.location, key))
            .transpose()
    }

    /// The live entry at `key`; `None` when `mode` may not block and the
    /// engine would.
    fn get(&self, key: &[u8], mode: Mode) -> StorageResult<Option<Option<Entry>>> {
        let now = now_millis();
        Ok(self
            .read_in(key, mode)?
            .map(|r| r.filter(|r| r.is_live(now)).map(|r| entry(key, r))))
    }

    /// Applies a single-key write's operations under its stripe lock.
    fn apply(&self, pending: &mut u64, ops: Vec<KvOp>, mode: Mode) -> StorageResult<Applied> {
        match mode {
            Mode::Blocking => self.engine.write(ops).map(|()| Applied::Durable),
            Mode::Async => {
                let applied = self.engine.try_write(&ops)?;
                if let Applied::Pending(position) = applied {
                    *pending = position;
                }
                Ok(applied)
            }
        }
    }

    /// A single-key write's locked part: settles the key's stripe, reads its
    /// record, lets `plan` check the precondition and add the engine
    /// operations, applies them and keeps the counts.
    fn write_one<T>(
        &self,
        key: &[u8],
        mode: Mode,
        plan: impl FnOnce(&Option<Record>, &mut Vec<KvOp>) -> StorageResult<Plan<T>>,
    ) -> StorageResult<Step<T>> {
        let mut pending = self.locks[self.stripe(key)].lock();
        if let Some(position) = self.settle(&mut pending, mode)? {
            return Ok(Step::Wait(position));
        }
        let Some(old) = self.read_in(key, mode)? else {
            return Ok(Step::Blocking);
        };
        let mut ops = Vec::with_capacity(3);
        let (answer, value_len) = match plan(&old, &mut ops)? {
            Plan::Write(answer, value_len) => (answer, value_len),
            Plan::Answer(answer) => return Ok(Step::Done(answer)),
            Plan::Blocking => return Ok(Step::Blocking),
        };
        let applied = self.apply(&mut pending, ops, mode)?;
        if applied != Applied::WouldBlock {
            self.count(&old, value_len, key.len());
        }
        Ok(match applied {
            Applied::Durable => Step::Done(answer),
            Applied::Pending(position) => Step::Pending(answer, position),
            Applied::WouldBlock => Step::Blocking,
        })
    }

    fn put(
        &self,
        key: &[u8],
        value: &[u8],
        options: PutOptions,
        mode: Mode,
    ) -> StorageResult<Step<Version>> {
        self.write_one(key, mode, |old, ops| {
            options
                .precondition
                .check(key, live_version(old, now_millis()))?;
            let Some(version) = self.allocate_in(1, mode)? else {
                return Ok(Plan::Blocking);
            };
            plan_put(ops, key, value, version, options.expires_at, old);
            Ok(Plan::Write(version, Some(value.len())))
        })
    }

    fn delete(
        &self,
        key: &[u8],
        precondition: Precondition,
        mode: Mode,
    ) -> StorageResult<Step<bool>> {
        self.write_one(key, mode, |old, ops| {
            let live = live_version(old, now_millis());
            precondition.check(key, live)?;
            if old.is_none() {
                return Ok(Plan::Answer(false));
            }
            plan_delete(ops, key, old);
            Ok(Plan::Write(live.is_some(), None))
        })
    }

    fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        let _guards = self.lock_keys(ops.iter().map(|op| op.key().as_ref()))?;
        let now = now_millis();
        // The stored record of every key involved, read once.
        let mut stored: HashMap<Bytes, Option<Record>> = HashMap::new();
        for op in &ops {
            if !stored.contains_key(op.key()) {
                stored.insert(op.key().clone(), self.read(op.key())?);
            }
        }
        // Versions first (reserving them may write to the engine), so the
        // plan hands out `first..`; a conflict leaves them unused, which is
        // harmless: versions are unique, not dense.
        let puts = ops
            .iter()
            .filter(|op| matches!(op, BatchOp::Put { .. }))
            .count() as u64;
        let mut next = self.allocate(puts)?;
        let plan = rules::plan_batch(
            &ops,
            now,
            |key| live_version(&stored[key], now),
            || {
                next += 1;
                Ok(next - 1)
            },
        )?;
        // The last operation on a key decides what is stored.
        let mut last: HashMap<&Bytes, (&BatchOp, Option<Version>)> = HashMap::new();
        for (op, version) in ops.iter().zip(&plan.versions) {
            last.insert(op.key(), (op, *version));
        }
        let mut writes = Vec::with_capacity(last.len() * 2);
        let mut counts = Vec::with_capacity(last.len());
        for (key, (op, version)) in &last {
            let old = &stored[*key];
            match (op, version) {
                (BatchOp::Put { value, options, .. }, Some(version)) => {
                    plan_put(&mut writes, key, value, *version, options.expires_at, old);
                    counts.push((old, Some(value.len()), key.len()));
                }
                _ => {
                    if old.is_some() {
                        plan_delete(&mut writes, key, old);
                        counts.push((old, None, key.len()));
                    }
                }
            }
        }
        if !writes.is_empty() {
            self.engine.write(writes)?;
        }
        for (old, value_len, key_len) in counts {
            self.count(old, value_len, key_len);
        }
        Ok(plan.versions)
    }

    fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        let now = now_millis();
        let (start, end): (Vec<u8>, Option<Vec<u8>>) = match &query.range {
            KeyRange::Prefix(prefix) => (record::data_key(prefix), prefix_end(prefix)),
            KeyRange::Range { start, end } => (
                record::data_key(start.as_deref().unwrap_or_default()),
                end.as_deref().map(record::data_key),
            ),
        };
        let cursor = query.cursor.as_deref().map(record::data_key);
        let lower = match &cursor {
            Some(cursor) if *cursor >= start => Bound::Excluded(cursor.as_slice()),
            _ => Bound::Included(start.as_slice()),
        };
        let namespace_end = [record::DATA + 1];
        let upper = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Excluded(&namespace_end[..]),
        };
        if let (Bound::Excluded(low), Bound::Excluded(high)) = (lower, upper)
            && low >= high
        {
            return Ok(ListPage::default());
        }
        let mut page = PageBuilder::new(query);
        let mut failure = None;
        self.engine.scan(lower, upper, &mut |key, value| {
            let user_key = &key[1..];
            match record::header(value, &self.location, user_key) {
                Ok((_, expires_at)) if !rules::is_live(expires_at, now) => true,
                Ok((version, expires_at)) => {
                    let body = &value[record::HEADER_LEN..];
                    page.offer(user_key, version, expires_at, body.len(), || {
                        Bytes::copy_from_slice(body)
                    })
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(page.finish())
    }

    /// Reads the expired part of the expiry index and deletes each entry
    /// that still carries that expiry (a newer write may have replaced it).
    fn purge_expired(&self) -> StorageResult<u64> {
        let now = now_millis();
        let mut due: Vec<(UnixMillis, Vec<u8>)> = Vec::new();
        let upper = record::expiry_key(now.saturating_add(1), b"");
        self.engine.scan(
            Bound::Included(&[record::EXPIRY]),
            Bound::Excluded(&upper),
            &mut |key, _| {
                if let Some((at, user_key)) = record::parse_expiry_key(key) {
                    due.push((at, user_key.to_vec()));
                }
                true
            },
        )?;
        let mut purged = 0;
        for (at, key) in due {
            let _guard = self.lock_keys(std::iter::once(key.as_slice()))?;
            let old = self.read(&key)?;
            let mut ops = Vec::with_capacity(2);
            match &old {
                Some(r) if r.expires_at == Some(at) => {
                    plan_delete(&mut ops, &key, &old);
                    self.engine.write(ops)?;
                    self.count(&old, None, key.len());
                    purged += 1;
                }
                // A stale index entry: the key was rewritten or deleted.
                _ => {
                    ops.push(KvOp::Delete {
                        key: record::expiry_key(at, &key),
                    });
                    self.engine.write(ops)?;
                }
            }
        }
        Ok(purged)
    }

    /// Adjusts the counts for a key that held `old` and now holds a value of
    /// `value_len` bytes (`None`: nothing).
    fn count(&self, old: &Option<Record>, value_len: Option<usize>, key_len: usize) {
        let before = old.as_ref().map(|r| (key_len + r.value.len()) as u64);
        let after = value_len.map(|v| (key_len + v) as u64);
        match (before, after) {
            (None, Some(a)) => {
                self.keys.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(a, Ordering::Relaxed);
            }
            (Some(b), None) => {
                self.keys.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(b, Ordering::Relaxed);
            }
            (Some(b), Some(a)) => {
                self.bytes.fetch_add(a, Ordering::Relaxed);
                self.bytes.fetch_sub(b, Ordering::Relaxed);
            }
            (None, None) => {}
        }
    }
}

/// Engine operations that store `value` at `key` and keep the expiry index.
fn plan_put(
    ops: &mut Vec<KvOp>,
    key: &[u8],
    value: &[u8],
    version: Version,
    expires_at: Option<UnixMillis>,
    old: &Option<Record>,
) {
    if let Some(at) = old.as_ref().and_then(|r| r.expires_at)
        && Some(at) != expires_at
    {
        ops.push(KvOp::Delete {
            key: record::expiry_key(at, key),
        });
    }
    if let Some(at) = expires_at {
        ops.push(KvOp::Put {
            key: record::expiry_key(at, key),
            value: Vec::new(),
        });
    }
    ops.push(KvOp::Put {
        key: record::data_key(key),
        value: record::encode(version, expires_at, value),
    });
}

/// Engine operations that remove `key` and its expiry-index entry.
fn plan_delete(ops: &mut Vec<KvOp>, key: &[u8], old: &Option<Record>) {
    if let Some(at) = old.as_ref().and_then(|r| r.expires_at) {
        ops.push(KvOp::Delete {
            key: record::expiry_key(at, key),
        });
    }
    ops.push(KvOp::Delete {
        key: record::data_key(key),
    });
}

fn live_version(record: &Option<Record>, now: UnixMillis) -> Option<Version> {
    record
        .as_ref()
        .filter(|r| r.is_live(now))
        .map(|r| r.version)
}

/// The first data key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = record::data_key(prefix);
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn entry(key: &[u8], r: Record) -> Entry {
    Entry {
        key: Bytes::copy_from_slice(key),
        value: Bytes::from(r.value),
        version: r.version,
        expires_at: r.expires_at,
    }
}

#[async_trait]
impl<E: OrderedKv> Storage for KvStorage<E> {
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        validate::key(key)?;
        if let Some(found) = self.inner.get(key, Mode::Async)? {
            return Ok(found);
        }
        let key = key.to_vec();
        self.run("get", move |s| s.get(&key, Mode::Blocking))
            .await?
            .ok_or_else(|| StorageError::Unavailable("get did not complete".into()))
    }

    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version> {
        validate::key(key)?;
        let key = key.to_vec();
        self.write_key("put", move |s, mode| s.put(&key, &value, options, mode))
            .await
    }

    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        validate::key(key)?;
        let key = key.to_vec();
        self.write_key("delete", move |s, mode| s.delete(&key, precondition, mode))
            .await
    }

    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        validate::query(query)?;
        let query = query.clone();
        self.run("list", move |s| s.list(&query)).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        validate::batch(&ops)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.run("batch", move |s| s.batch(ops)).await
    }

    async fn purge_expired(&self) -> StorageResult<u64> {
        self.run("purge", |s| s.purge_expired()).await
    }

    async fn stats(&self) -> StorageResult<StorageStats> {
        let inner = &self.inner;
        Ok(StorageStats {
            keys: inner.keys.load(Ordering::Relaxed),
            bytes: inner.bytes.load(Ordering::Relaxed),
            sizes_known: true,
            disk_bytes: inner.engine.disk_bytes(),
            remote: None,
        })
    }

    async fn flush(&self) -> StorageResult<()> {
        self.run("flush", |s| s.engine.sync()).await
    }

    fn engine_metrics(&self) -> Vec<EngineMetric> {
        self.inner.engine.metrics()
    }
}
