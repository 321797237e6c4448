//! The provider-independent engine: the [`CloudStorage`] handle over any
//! object_store backend, the reading of key objects (settling a batch
//! intent by its transaction object), and the storage contract's entry
//! points, each handed to the module of its concern:
//!
//! | concern | module |
//! |---|---|
//! | single-key writes, their settling, the start-up check | `write` |
//! | listing and full scans | `list` |
//! | atomic multi-key batches | `batch` |
//! | purge wiring, index backfill, test knobs | `maintenance` (`purge`, `expiry`, `lease`) |
//!
//! The protocol is specified in `host/cloud/DESIGN.md` ("Reading" for this
//! module).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, UpdateVersion};
use orbit_storage::validate;
use orbit_storage::{
    BatchOp, Entry, ListPage, ListQuery, Precondition, PutOptions, StorageError, StorageResult,
    StorageStats, Version, now_millis,
};
use sha2::{Digest, Sha256};

use crate::batch::{BatchState, TxnView};
pub use crate::batch::{TXN_RETENTION_MS, TXN_TIMEOUT_MS};
use crate::clock::VersionClock;
use crate::layout::{Cell, Layout, Record};
use crate::lease::Lease;
use crate::remote::{Counters, Scrubber, translate};
use crate::write::{Change, update_version};

/// Tombstones younger than this are kept by purge, so that a writer that
/// read one just before cannot have its write removed by the purge's
/// unconditional delete (see `DESIGN.md`, "Deletes").
pub const TOMBSTONE_GRACE_MS: u64 = 60_000;

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
    /// Whether `P/index-complete` was seen or written (module `maintenance`).
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

impl CloudStorage {
    pub(crate) fn new(
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

    pub(crate) fn endpoint_shown(&self) -> &str {
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
    pub(crate) async fn visible_entry(
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
}

/// The message of an error without its `backend unavailable:` prefix, for
/// wrapping it in another.
pub(crate) fn inner(error: &StorageError) -> String {
    match error {
        StorageError::Unavailable(message) => message.clone(),
        other => other.to_string(),
    }
}

#[async_trait::async_trait]
impl orbit_storage::Storage for CloudStorage {
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
        self.list_page(query).await
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
    /// only (the others return 0 after one GET); see module `maintenance`.
    async fn purge_expired(&self) -> StorageResult<u64> {
        self.purge().await
    }

    /// Exact: reads every key object (O(keys) requests). The server never
    /// calls it (readiness and metrics use `health_stats`).
    async fn stats(&self) -> StorageResult<StorageStats> {
        self.count_all().await
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
