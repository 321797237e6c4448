//! The provider-independent engine: one [`CloudStorage`] over any
//! object_store backend, implementing the whole storage contract with
//! conditional writes only (see the crate docs for the protocol).
//!
//! Every mutation is read-check-conditional-write on the key's object,
//! retried from a fresh read on a lost race; batches add a transaction
//! object whose conditional flip from `pending` to `committed` is the one
//! commit point (module `batch`, specified in `DESIGN.md`). Guarantees:
//! nothing acknowledged is lost by a race (every write is conditional on
//! the object it read); an ambiguous failure is settled by looking for the
//! operation's id in the object's history.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions as OsPutOptions, UpdateVersion,
};
use orbit_storage::validate;
use orbit_storage::{
    BackendKind, BatchOp, Entry, KeyRange, ListPage, ListQuery, PageBuilder, Precondition,
    PutOptions, StorageError, StorageResult, StorageStats, Version, now_millis,
};
use sha2::{Digest, Sha256};

use crate::batch::{BatchState, TxnView};
pub use crate::batch::{TXN_RETENTION_MS, TXN_TIMEOUT_MS};
use crate::clock::VersionClock;
use crate::expiry;
use crate::layout::{Cell, Layout, NameHint, OP_HISTORY, Record, parse_name};
use crate::lease::Lease;
use crate::remote::{Counters, Scrubber, translate};
/// Tombstones younger than this are kept by purge, so that a writer that
/// read one just before cannot have its write removed by the purge's
/// unconditional delete (see the crate docs, "deletes").
pub const TOMBSTONE_GRACE_MS: u64 = 60_000;

/// A single write gives up (Unavailable) after this long of lost races or
/// waiting for a pending batch.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(90);

/// How many objects a listing, stats or purge fetches at once.
pub(crate) const FETCH_CONCURRENCY: usize = 16;

/// The two object_store clients of one store: reads (GET, HEAD, LIST)
/// use `read` with the read timeout, writes (PUT, DELETE) use `write` with
/// the write timeout.
pub struct Clients {
    pub read: Arc<dyn ObjectStore>,
    pub write: Arc<dyn ObjectStore>,
}

/// A key-value store kept in one bucket / container under one prefix.
/// Several processes may open the same prefix at once.
pub struct CloudStorage {
    pub(crate) kind: BackendKind,
    pub(crate) provider: &'static str,
    pub(crate) bucket: String,
    pub(crate) clients: Clients,
    pub(crate) layout: Layout,
    pub(crate) clock: VersionClock,
    pub(crate) counters: Arc<Counters>,
    pub(crate) scrubber: Scrubber,
    pub(crate) writer_id: String,
    pub(crate) next_op: AtomicU64,
    /// Batch settings and what this store saw of other writers' batches.
    pub(crate) batch: BatchState,
    /// Where the service is, for messages (`endpoint` of the config, or
    /// the provider's default).
    pub(crate) endpoint: String,
    /// [`TOMBSTONE_GRACE_MS`] unless a test changed it.
    pub(crate) tombstone_grace_ms: AtomicU64,
    pub(crate) lease: Lease,
    /// Whether `P/index-complete` was seen or written (see `backfill_index`).
    pub(crate) index_complete: std::sync::atomic::AtomicBool,
    /// Start and end of the last purge passes this handle ran holding the
    /// lease (tests check that two handles never overlap).
    pub(crate) purge_log: parking_lot::Mutex<std::collections::VecDeque<(Instant, Instant)>>,
}

impl std::fmt::Debug for CloudStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudStorage")
            .field("provider", &self.provider)
            .field("bucket", &self.bucket)
            .field("layout", &self.layout)
            .field("writer_id", &self.writer_id)
            .finish_non_exhaustive()
    }
}

/// A key's object as read, with the version to make a write conditional on.
pub(crate) struct Current {
    pub(crate) record: Record,
    pub(crate) version: UpdateVersion,
}

/// The committed state of a record once its intent (if any) is settled.
pub(crate) enum Settled {
    Cell(Cell),
    /// An intent of a batch still pending: `cell` is the committed state
    /// before the batch.
    Pending {
        cell: Cell,
        txn: String,
    },
}

enum Change {
    Put {
        value: Bytes,
        expires_at: Option<u64>,
    },
    Delete,
}

pub(crate) fn is_race(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

pub(crate) fn history(mut ops: Vec<String>, op: &str, version: u64) -> Vec<String> {
    ops.push(format!("{op}@{version}"));
    if ops.len() > OP_HISTORY {
        ops.drain(..ops.len() - OP_HISTORY);
    }
    ops
}

/// The version `op` wrote, if the record's history holds it.
pub(crate) fn applied(record: &Record, op: &str) -> Option<u64> {
    record.ops.iter().find_map(|entry| {
        let (id, version) = entry.rsplit_once('@')?;
        (id == op).then(|| version.parse().ok()).flatten()
    })
}

pub(crate) fn put_mode(version: Option<&UpdateVersion>) -> OsPutOptions {
    match version {
        None => PutMode::Create.into(),
        Some(v) => PutMode::Update(v.clone()).into(),
    }
}

pub(crate) fn same_version(a: &UpdateVersion, b: &UpdateVersion) -> bool {
    a.e_tag == b.e_tag && a.version == b.version
}

pub(crate) fn update_version(meta: &object_store::ObjectMeta) -> UpdateVersion {
    UpdateVersion {
        e_tag: meta.e_tag.clone(),
        version: meta.version.clone(),
    }
}

pub(crate) async fn backoff(attempt: u32) {
    // 10 ms doubling to 320 ms, with jitter from the clock's low bits.
    let base = 10u64 << attempt.min(5);
    let jitter = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0))
        % base;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

impl CloudStorage {
    pub(crate) fn new(
        kind: BackendKind,
        provider: &'static str,
        bucket: String,
        clients: Clients,
        prefix: &str,
        counters: Arc<Counters>,
        scrubber: Scrubber,
    ) -> Self {
        let mut seed = Sha256::new();
        seed.update(std::process::id().to_le_bytes());
        seed.update(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        let local = 0u8;
        seed.update((&local as *const u8 as usize).to_le_bytes());
        let writer_id = hex::encode(&seed.finalize()[..8]);
        let layout = Layout::new(prefix);
        let lease = Lease::new(layout.lease().clone(), writer_id.clone());
        CloudStorage {
            kind,
            provider,
            bucket,
            clients,
            layout,
            clock: VersionClock::default(),
            counters,
            scrubber,
            writer_id,
            next_op: AtomicU64::new(0),
            batch: BatchState::new(Duration::from_millis(TXN_TIMEOUT_MS)),
            endpoint: String::new(),
            tombstone_grace_ms: AtomicU64::new(TOMBSTONE_GRACE_MS),
            lease,
            index_complete: std::sync::atomic::AtomicBool::new(false),
            purge_log: parking_lot::Mutex::new(Default::default()),
        }
    }

    /// Names the service's address in messages (set by the provider
    /// modules before the store is shared).
    pub(crate) fn with_endpoint(mut self, endpoint: String) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Changes how long tombstones are kept before purge deletes them
    /// (default [`TOMBSTONE_GRACE_MS`]). For tests and benchmarks: every
    /// handle of a prefix should use the same value, and shorter values
    /// widen the window described in the crate docs ("deletes").
    pub fn set_tombstone_grace(&self, grace: Duration) {
        self.tombstone_grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
    }

    /// Changes the purge lease period (default
    /// [`crate::DEFAULT_LEASE_PERIOD`]); every handle of a prefix
    /// must use the same value (see the crate docs, "purge lease").
    pub fn set_purge_lease_period(&self, period: Duration) {
        self.lease.set_period(period);
    }

    /// Start and end (this process's monotonic clock) of the last 256
    /// purge passes this handle ran while holding the purge lease.
    pub fn purge_passes(&self) -> Vec<(Instant, Instant)> {
        self.purge_log.lock().iter().copied().collect()
    }

    pub(crate) fn tombstone_grace_ms(&self) -> u64 {
        self.tombstone_grace_ms.load(Ordering::Relaxed)
    }

    /// The random id of this handle, written into every object it changes.
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Request counters since open (also part of [`orbit_storage::Storage::stats`]).
    pub fn remote_stats(&self) -> orbit_storage::RemoteStats {
        self.counters.snapshot()
    }

    /// A cheap health check: one HEAD request for an object that need not
    /// exist. Ok when the service answers and accepts the credentials
    /// (absent is fine); the error says what failed otherwise.
    pub async fn probe(&self) -> StorageResult<()> {
        match self.clients.read.head(self.layout.probe()).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("probe", self.layout.probe(), e)),
        }
    }

    /// Proves that the store honours conditional writes, which are this
    /// backend's only coordination: on a probe object of its own
    /// (`P/probe-cas/<writer id>`, deleted afterwards) a create
    /// (`PutMode::Create`) over an existing object must fail, an update
    /// (`PutMode::Update`) on the current ETag / generation must succeed, and
    /// one on a stale ETag / generation must fail. Five requests (plus two
    /// or three to mark a fresh prefix's expiry index complete). A store
    /// that ignores `If-None-Match` / `If-Match` (older MinIO, some
    /// gateways) would silently lose updates; this returns `Invalid` naming
    /// the provider, the endpoint, what was tested and what failed, and the
    /// server refuses to start (see `open_checked`). A request that fails
    /// is `Unavailable` with the provider's error.
    pub async fn check_conditional_writes(&self) -> StorageResult<()> {
        let path = self
            .layout
            .cas_probe()
            .clone()
            .join(self.writer_id.as_str());
        let result = self.conditional_write_steps(&path).await;
        // Best effort: a leftover probe object is a few bytes under a name
        // nothing else reads.
        self.clients.write.delete(&path).await.ok();
        result?;
        self.mark_fresh_prefix_indexed().await
    }

    async fn conditional_write_steps(&self, path: &Path) -> StorageResult<()> {
        let lying = |what: &str| {
            StorageError::Invalid(format!(
                "{} at {} (bucket {}) does not honour conditional writes, which orbit-cloud needs to keep replicas from losing each other's updates: {what}; tested on {}/{path}. Use a store that supports If-None-Match: * and If-Match on PUT (AWS S3 since 2024, Azure Blob Storage and Google Cloud Storage do)",
                self.provider,
                self.endpoint_shown(),
                self.bucket,
                self.bucket
            ))
        };
        let put = |body: &'static [u8], mode: OsPutOptions| {
            let path = path.clone();
            async move {
                self.clients
                    .write
                    .put_opts(&path, Bytes::from_static(body).into(), mode)
                    .await
            }
        };
        let first: UpdateVersion = put(b"1", PutMode::Overwrite.into())
            .await
            .map_err(|e| self.fail("put (conditional-write check)", path, e))?
            .into();
        match put(b"2", PutMode::Create.into()).await {
            Err(e) if is_race(&e) => {}
            Ok(_) => {
                return Err(lying(
                    "a conditional create (PutMode::Create, If-None-Match: *) of an object that exists succeeded instead of failing with \"already exists\"",
                ));
            }
            Err(e) => return Err(self.fail("put (conditional create check)", path, e)),
        }
        let second: UpdateVersion = match put(b"3", PutMode::Update(first.clone()).into()).await {
            Ok(result) => result.into(),
            Err(e) if is_race(&e) => {
                return Err(lying(&format!(
                    "a conditional update (PutMode::Update, If-Match) on the current version was refused: {}",
                    self.scrubber.scrub(&e.to_string())
                )));
            }
            Err(e) => return Err(self.fail("put (conditional update check)", path, e)),
        };
        if same_version(&first, &second) {
            return Err(lying(
                "two writes of different content returned the same ETag / generation, so a stale version cannot be told from the current one",
            ));
        }
        match put(b"4", PutMode::Update(first).into()).await {
            Err(e) if is_race(&e) => Ok(()),
            Ok(_) => Err(lying(
                "a conditional update (PutMode::Update, If-Match) on a stale ETag / generation succeeded instead of failing with \"precondition failed\"",
            )),
            Err(e) => Err(self.fail("put (conditional update check)", path, e)),
        }
    }

    fn endpoint_shown(&self) -> &str {
        if self.endpoint.is_empty() {
            "the provider's default endpoint"
        } else {
            &self.endpoint
        }
    }

    pub(crate) fn op_id(&self) -> String {
        format!(
            "{}.{}",
            self.writer_id,
            self.next_op.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(crate) fn fail(&self, op: &str, path: &Path, error: object_store::Error) -> StorageError {
        let shown = format!("{}/{}", self.bucket, path);
        let error = translate(self.provider, op, &shown, &error, &self.scrubber);
        self.counters.failure(&error.to_string());
        tracing::warn!(provider = self.provider, %error, "object storage request failed");
        error
    }

    pub(crate) fn corrupt(&self, path: &Path, reason: String) -> StorageError {
        StorageError::Corrupt {
            path: format!("{} {}/{}", self.provider, self.bucket, path),
            reason,
        }
    }

    // ---- reading -----------------------------------------------------------

    pub(crate) async fn read_path(
        &self,
        path: &Path,
        key: Option<&[u8]>,
    ) -> StorageResult<Option<Current>> {
        let result = match self.clients.read.get(path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail("get", path, e)),
        };
        let version = update_version(&result.meta);
        let bytes = match result.bytes().await {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail("get", path, e)),
        };
        let record = Record::decode(&bytes).map_err(|e| self.corrupt(path, e.to_string()))?;
        if let Some(key) = key
            && record.key != key
        {
            return Err(self.corrupt(
                path,
                format!(
                    "object holds key {} instead of the key it is named after",
                    hex::encode(&record.key)
                ),
            ));
        }
        Ok(Some(Current { record, version }))
    }

    pub(crate) async fn read_key(&self, key: &[u8]) -> StorageResult<Option<Current>> {
        self.read_path(&self.layout.key_path(key), Some(key)).await
    }

    pub(crate) async fn settle(
        &self,
        record: &Record,
        cache: &mut HashMap<String, TxnView>,
    ) -> StorageResult<Settled> {
        let Some(intent) = &record.intent else {
            return Ok(Settled::Cell(record.cell.clone()));
        };
        let view = self.txn_view_cached(&intent.txn, cache).await?;
        Ok(match view {
            TxnView::Committed => Settled::Cell(intent.cell.clone()),
            TxnView::Aborted | TxnView::Missing => Settled::Cell(record.cell.clone()),
            TxnView::Pending { .. } => Settled::Pending {
                cell: record.cell.clone(),
                txn: intent.txn.clone(),
            },
        })
    }

    /// The state a reader sees: a pending batch is not yet visible.
    async fn visible_entry(
        &self,
        record: &Record,
        cache: &mut HashMap<String, TxnView>,
        now: u64,
    ) -> StorageResult<Option<Entry>> {
        let reread;
        let mut record = record;
        if let Some(intent) = &record.intent
            && matches!(
                self.txn_view_cached(&intent.txn, cache).await?,
                TxnView::Missing
            )
        {
            // The batch may have committed and cleaned up after we read
            // the key: the key's object now tells.
            match self.read_key(&record.key).await? {
                Some(current) => {
                    reread = current.record;
                    record = &reread;
                }
                None => return Ok(None),
            }
        }
        let cell = match self.settle(record, cache).await? {
            Settled::Cell(cell) | Settled::Pending { cell, .. } => cell,
        };
        Ok(cell.visible(now).then(|| Entry {
            key: record.key.clone(),
            value: cell.value.clone(),
            version: cell.version,
            expires_at: cell.expires_at,
        }))
    }

    // ---- single writes -----------------------------------------------------
    /// Writes one key's record object. Every write of a key record goes
    /// through here, so whatever must accompany a record (an index entry,
    /// a request counter) has one home.
    pub(crate) async fn put_record(
        &self,
        path: &Path,
        record: &Record,
        mode: OsPutOptions,
    ) -> Result<object_store::PutResult, object_store::Error> {
        // The expiry index first: a crash between the two leaves an entry
        // whose version the key object does not hold, which purge deletes
        // as stale; never a due record without an entry.
        let name = path.filename().unwrap_or_default();
        for entry in expiry::entries_for(record, name, self.tombstone_grace_ms(), TXN_TIMEOUT_MS) {
            self.put_index_entry(entry).await?;
        }
        self.clients
            .write
            .put_opts(path, record.encode().into(), mode)
            .await
    }

    /// Put or delete one key. Returns the version written, or `None` for a
    /// delete that found nothing live.
    async fn write_one(
        &self,
        key: &[u8],
        change: Change,
        pre: Precondition,
    ) -> StorageResult<Option<Version>> {
        let path = self.layout.key_path(key);
        let op = self.op_id();
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut tried = false;
        let mut give_up: Option<StorageError> = None;
        loop {
            if started.elapsed() > WRITE_DEADLINE {
                return Err(StorageError::Unavailable(format!(
                    "{} write of {}/{path}: gave up after {:?} of lost races or waiting for a pending batch",
                    self.provider, self.bucket, WRITE_DEADLINE
                )));
            }
            let current = match self.read_key(key).await {
                Ok(current) => current,
                Err(e) if tried => {
                    return Err(StorageError::Unavailable(format!(
                        "outcome unknown: a write of {}/{path} failed and re-reading it failed too: {}",
                        self.bucket,
                        inner(&e)
                    )));
                }
                Err(e) => return Err(e),
            };
            if tried && let Some(version) = current.as_ref().and_then(|c| applied(&c.record, &op)) {
                return Ok(Some(version));
            }
            if let Some(error) = give_up.take() {
                // Re-read: our write is not there, so it was not applied.
                return Err(StorageError::Unavailable(format!(
                    "{} (not applied: the object does not hold this write)",
                    inner(&error)
                )));
            }
            let (base, floor, ops, object_version) = match current {
                None => (None, 0, Vec::new(), None),
                // A missing transaction re-reads the key (see batch.rs).
                Some(current) => match self.settle_for_write(key, current).await? {
                    None => (None, 0, Vec::new(), None),
                    Some((current, settled)) => {
                        let floor = current
                            .record
                            .cell
                            .version
                            .max(current.record.intent.as_ref().map_or(0, |i| i.cell.version));
                        match settled {
                            Settled::Pending { txn, .. } => {
                                self.wait_or_abort(&txn, attempt).await?;
                                attempt += 1;
                                continue;
                            }
                            Settled::Cell(cell) => {
                                (Some(cell), floor, current.record.ops, Some(current.version))
                            }
                        }
                    }
                },
            };
            let now = self.clock.now_ms();
            let visible = base.as_ref().and_then(|c| c.live_version(now));
            pre.check(key, visible)?;
            let version = self.clock.next(floor);
            let cell = match &change {
                Change::Put { value, expires_at } => Cell {
                    version,
                    live: true,
                    expires_at: *expires_at,
                    value: value.clone(),
                },
                Change::Delete => {
                    if visible.is_none() {
                        return Ok(None);
                    }
                    Cell::tombstone(version)
                }
            };
            let record = Record {
                key: Bytes::copy_from_slice(key),
                cell,
                intent: None,
                ops: history(ops, &op, version),
                written_at: now,
            };
            tried = true;
            match self
                .put_record(&path, &record, put_mode(object_version.as_ref()))
                .await
            {
                Ok(_) => return Ok(Some(version)),
                Err(e) if is_race(&e) => {
                    // Lost a race, or an earlier attempt of ours landed
                    // (object_store retried it): the next read tells.
                    backoff(attempt).await;
                }
                Err(e) => {
                    let error = self.fail("put", &path, e);
                    // Ambiguous: the request may have been applied. The
                    // loop re-reads; our op id in the history means it was.
                    tracing::info!(provider = self.provider, %error, "write failed; re-reading to settle its outcome");
                    if attempt >= 2 {
                        give_up = Some(error);
                    }
                }
            }
            attempt += 1;
        }
    }

    // ---- scanning ----------------------------------------------------------

    /// Every key object's name and record, in name order, from `offset`.
    async fn scan_names(
        &self,
        offset: Option<&Path>,
    ) -> StorageResult<
        futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
    > {
        let folder = self.layout.keys().clone();
        Ok(match offset {
            Some(offset) => self.clients.read.list_with_offset(Some(&folder), offset),
            None => self.clients.read.list(Some(&folder)),
        })
    }

    async fn fetch_all(&self, paths: Vec<Path>) -> StorageResult<Vec<Option<Current>>> {
        futures::stream::iter(paths)
            .map(|path| async move { self.read_path(&path, None).await })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn list_impl(&self, query: &ListQuery) -> StorageResult<ListPage> {
        validate::query(query)?;
        let (start, end, prefix): Bounds<'_> = match &query.range {
            KeyRange::Prefix(p) => (
                Some(p.as_ref()).filter(|p| !p.is_empty()),
                None,
                Some(p.as_ref()),
            ),
            KeyRange::Range { start, end } => (start.as_deref(), end.as_deref(), None),
        };
        let cursor = query.cursor.as_deref();
        let mut offset = start.map(|s| self.layout.offset_before(s));
        if let Some(c) = cursor {
            let after = self.layout.offset_after(c);
            if offset.as_ref().is_none_or(|o| after > *o) {
                offset = Some(after);
            }
        }
        let in_range = |key: &[u8]| {
            prefix.is_none_or(|p| key.starts_with(p))
                && start.is_none_or(|s| key >= s)
                && end.is_none_or(|e| key < e)
                && cursor.is_none_or(|c| key > c)
        };
        // Whether nothing at or after this name can be in range.
        let past_end = |hint: &NameHint| -> bool {
            let head: &[u8] = match hint {
                NameHint::Exact(k) | NameHint::Group(k) => k,
            };
            if let Some(e) = end
                && head >= e
            {
                return true;
            }
            if let Some(p) = prefix {
                let n = p.len().min(head.len());
                if head[..n] > p[..n] {
                    return true;
                }
            }
            false
        };
        let mut names = self.scan_names(offset.as_ref()).await?;
        let mut page = PageBuilder::new(query);
        let mut cache = HashMap::new();
        let mut last_name: Option<String> = None;
        let mut exhausted = false;
        let mut carry: Option<Path> = None;
        'pages: while !exhausted || carry.is_some() {
            // Gather a chunk of candidate names, never splitting a group.
            let mut chunk: Vec<Path> = carry.take().into_iter().collect();
            let want = (query.limit + 1 - page.len().min(query.limit)).clamp(4, 256);
            while !exhausted {
                let meta = match names.next().await {
                    None => {
                        exhausted = true;
                        break;
                    }
                    Some(Ok(meta)) => meta,
                    Some(Err(e)) => return Err(self.fail("list", self.layout.keys(), e)),
                };
                let Some(name) = meta.location.filename().map(str::to_string) else {
                    continue;
                };
                if let Some(prev) = &last_name
                    && name <= *prev
                {
                    return Err(self.corrupt(
                        self.layout.keys(),
                        format!("listing is not in name order ({name} after {prev}); key order cannot be guaranteed"),
                    ));
                }
                let Some(hint) = parse_name(&name) else {
                    continue;
                };
                let group_continues = matches!(&hint, NameHint::Group(_))
                    && last_name.as_deref().and_then(parse_name) == Some(hint_clone(&hint));
                last_name = Some(name);
                if past_end(&hint) {
                    exhausted = true;
                    break;
                }
                if let NameHint::Exact(key) = &hint
                    && !in_range(key)
                {
                    continue;
                }
                if chunk.len() >= want && !group_continues {
                    // This name starts the next chunk.
                    carry = Some(meta.location);
                    break;
                }
                chunk.push(meta.location);
            }
            let mut records: Vec<Record> = self
                .fetch_all(chunk)
                .await?
                .into_iter()
                .flatten()
                .map(|c| c.record)
                .collect();
            // Name order is key order except inside a group.
            records.sort_by(|a, b| a.key.cmp(&b.key));
            let now = now_millis();
            for record in &records {
                if !in_range(&record.key) {
                    continue;
                }
                if let Some(entry) = self.visible_entry(record, &mut cache, now).await?
                    && !page.offer(
                        &entry.key,
                        entry.version,
                        entry.expires_at,
                        entry.value.len(),
                        || entry.value.clone(),
                    )
                {
                    break 'pages;
                }
            }
        }
        Ok(page.finish())
    }

    /// Every key object, settled, in batches (stats and purge).
    pub(crate) async fn for_each_record<F>(&self, mut f: F) -> StorageResult<()>
    where
        F: FnMut(Current, Cell, bool),
    {
        let mut names = self.scan_names(None).await?;
        let mut cache = HashMap::new();
        let mut done = false;
        while !done {
            let mut chunk = Vec::new();
            while chunk.len() < 256 {
                match names.next().await {
                    None => {
                        done = true;
                        break;
                    }
                    Some(Ok(meta)) => {
                        if meta.location.filename().and_then(parse_name).is_some() {
                            chunk.push(meta.location);
                        }
                    }
                    Some(Err(e)) => return Err(self.fail("list", self.layout.keys(), e)),
                }
            }
            for current in self.fetch_all(chunk).await?.into_iter().flatten() {
                let (cell, pending) = match self.settle(&current.record, &mut cache).await? {
                    Settled::Cell(cell) => (cell, false),
                    Settled::Pending { cell, .. } => (cell, true),
                };
                f(current, cell, pending);
            }
        }
        Ok(())
    }
}

/// A listing's start, end and prefix.
type Bounds<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

/// The message of an error without its `backend unavailable:` prefix, for
/// wrapping it in another.
pub(crate) fn inner(error: &StorageError) -> String {
    match error {
        StorageError::Unavailable(message) => message.clone(),
        other => other.to_string(),
    }
}

fn hint_clone(hint: &NameHint) -> NameHint {
    match hint {
        NameHint::Exact(k) => NameHint::Exact(k.clone()),
        NameHint::Group(k) => NameHint::Group(k.clone()),
    }
}

#[async_trait::async_trait]
impl orbit_storage::Storage for CloudStorage {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        validate::key(key)?;
        match self.read_key(key).await? {
            None => Ok(None),
            Some(current) => {
                self.visible_entry(&current.record, &mut HashMap::new(), now_millis())
                    .await
            }
        }
    }

    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version> {
        validate::key(key)?;
        let change = Change::Put {
            value,
            expires_at: options.expires_at,
        };
        match self.write_one(key, change, options.precondition).await? {
            Some(version) => Ok(version),
            None => Err(StorageError::Unavailable("put wrote no version".into())),
        }
    }

    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        validate::key(key)?;
        Ok(self
            .write_one(key, Change::Delete, precondition)
            .await?
            .is_some())
    }

    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        self.list_impl(query).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        validate::batch(&ops)?;
        match ops.len() {
            0 => Ok(Vec::new()),
            1 => {
                let Some(op) = ops.into_iter().next() else {
                    return Ok(Vec::new());
                };
                match op {
                    BatchOp::Put {
                        key,
                        value,
                        options,
                    } => Ok(vec![Some(self.put(&key, value, options).await?)]),
                    BatchOp::Delete { key, precondition } => {
                        self.delete(&key, precondition).await?;
                        Ok(vec![None])
                    }
                }
            }
            _ => self.batch_many(ops).await,
        }
    }

    /// Due work from the expiry index, by the holder of the purge lease
    /// only (the others return 0 after one GET); see the crate docs.
    async fn purge_expired(&self) -> StorageResult<u64> {
        let held = self
            .lease
            .acquire(&self.clients.read, &self.clients.write)
            .await
            .map_err(|e| self.fail("put", self.lease.path(), e))?;
        if !held {
            return Ok(0);
        }
        self.backfill_index().await?;
        let started = Instant::now();
        let result = self.purge_due().await;
        let mut log = self.purge_log.lock();
        if log.len() >= 256 {
            log.pop_front();
        }
        log.push_back((started, Instant::now()));
        result
    }

    /// Exact: reads every key object (O(keys) requests). The server never
    /// calls it (readiness and metrics use `health_stats`).
    async fn stats(&self) -> StorageResult<StorageStats> {
        let mut keys = 0u64;
        let mut bytes = 0u64;
        self.for_each_record(|current, cell, _pending| {
            if cell.live {
                keys += 1;
                bytes += (current.record.key.len() + cell.value.len()) as u64;
            }
        })
        .await?;
        Ok(StorageStats {
            keys,
            bytes,
            sizes_known: true,
            disk_bytes: None,
            remote: Some(self.counters.snapshot()),
        })
    }

    /// No request: counting keys would read every object, and replicas
    /// keep no shared counter, so keys and bytes are reported as unknown
    /// (`sizes_known: false`); the request counters are live.
    async fn health_stats(&self) -> StorageResult<StorageStats> {
        Ok(StorageStats {
            keys: 0,
            bytes: 0,
            sizes_known: false,
            disk_bytes: None,
            remote: Some(self.counters.snapshot()),
        })
    }

    async fn flush(&self) -> StorageResult<()> {
        // Every acknowledged write is already in the object store.
        Ok(())
    }
}
