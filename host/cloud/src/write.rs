//! Single-key writes on conditional writes alone, and the settling of
//! their ambiguous outcomes; specified in `host/cloud/DESIGN.md`,
//! "Conditional writes and their settling".
//!
//! Every put and delete reads the key's object, checks the precondition
//! (the contract's rule, [`orbit_storage::Precondition::check`]) against
//! the settled live state, and writes the new object conditional on what it
//! read (`PutMode::Create` or `PutMode::Update` on the ETag / generation);
//! a lost race re-reads and re-checks. Each write carries a unique op id
//! into the object's history, so a write whose outcome is unknown (a
//! transport error, or a retry answered "precondition failed" because the
//! first attempt landed) is settled by reading the object back. Every
//! key-record write goes through [`CloudStorage::put_record`], which writes
//! the record's expiry-index entries first. The start-up check that the
//! store honours conditional writes at all is here too.

use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions as OsPutOptions, UpdateVersion};
use orbit_storage::{Precondition, StorageError, StorageResult, Version};

use crate::expiry;
use crate::layout::{Cell, OP_HISTORY, Record};
use crate::store::{CloudStorage, Settled, TXN_TIMEOUT_MS, inner};

/// A single write gives up (Unavailable) after this long of lost races or
/// waiting for a pending batch.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(90);

/// What a single write does to its key.
pub(crate) enum Change {
    Put {
        value: Bytes,
        expires_at: Option<u64>,
    },
    Delete,
}

/// Whether a conditional write failed because the object was not as
/// expected: a lost race, or object_store's retry meeting our own write.
pub(crate) fn is_race(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// `ops` with `op@version` appended, keeping the last [`OP_HISTORY`].
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

/// A create (no object read) or an update on the version read.
pub(crate) fn put_mode(version: Option<&UpdateVersion>) -> OsPutOptions {
    match version {
        None => PutMode::Create.into(),
        Some(v) => PutMode::Update(v.clone()).into(),
    }
}

/// Whether two object versions are the same (ETag and generation).
pub(crate) fn same_version(a: &UpdateVersion, b: &UpdateVersion) -> bool {
    a.e_tag == b.e_tag && a.version == b.version
}

/// The version of a listed or read object, to write conditionally on it.
pub(crate) fn update_version(meta: &object_store::ObjectMeta) -> UpdateVersion {
    UpdateVersion {
        e_tag: meta.e_tag.clone(),
        version: meta.version.clone(),
    }
}

/// Waits before the next attempt after a lost race or a pending batch.
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
    pub(crate) async fn write_one(
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

    /// Writes one expiry-index entry (unconditional: entries are
    /// idempotent).
    pub(crate) async fn put_index_entry(
        &self,
        entry: expiry::Entry,
    ) -> Result<object_store::PutResult, object_store::Error> {
        let (entry_name, body) = entry.name();
        let entry_path = self.layout.index().clone().join(entry_name);
        self.clients
            .write
            .put_opts(
                &entry_path,
                Bytes::from(body.unwrap_or_default()).into(),
                PutMode::Overwrite.into(),
            )
            .await
    }
}
