//! Atomic multi-key batches: the transaction object `P/t/<txn>`, the
//! intents written next to each key's committed state, the commit point
//! (one conditional update of the transaction object), roll-forward and
//! roll-back, the writer's lease on its transaction, aborting transactions
//! of dead writers, and purging finished transaction objects.
//!
//! Exists so the whole commit protocol is in one place; the protocol and
//! its guarantees are specified in `host/cloud/DESIGN.md`. In short:
//! - the only commit point is the conditional update of the transaction
//!   object from `pending` to `committed`; an abort is the conditional
//!   update from `pending` to `aborted`, so exactly one of them wins;
//! - an ambiguous outcome of any write of the protocol (a race error that
//!   may be object_store's retry meeting our own first attempt, or a
//!   transport error) is settled by reading back what was written, never
//!   by re-running a batch that may have committed;
//! - the writer renews its pending transaction object every
//!   `timeout / 5` (a heartbeat); another writer aborts a transaction only
//!   after seeing its object unchanged for the whole timeout on its own
//!   monotonic clock, so wall-clock skew between replicas never aborts a
//!   live batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, UpdateVersion};
use orbit_storage::{BatchOp, StorageError, StorageResult, Version, rules};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::layout::{Cell, Intent, Record};
use crate::store::{CloudStorage, Current, Settled, inner};
use crate::write::{WRITE_DEADLINE, applied, backoff, history, is_race, put_mode, update_version};

/// A pending transaction whose object another writer has seen unchanged
/// (same ETag / generation) for this long, measured on that writer's own
/// monotonic clock, is presumed dead and may be aborted. The live writer
/// renews its transaction object every fifth of this.
pub const TXN_TIMEOUT_MS: u64 = 20_000;

/// Finished transaction objects no intent names are deleted by purge
/// once they are this old.
pub const TXN_RETENTION_MS: u64 = 600_000;

/// How many intents (and roll-forward writes, and reads) of one batch are
/// in flight at once.
const BATCH_CONCURRENCY: usize = 32;

/// How often an ambiguous write of the transaction object is settled by
/// reading it back and trying again before the outcome is reported unknown.
const SETTLE_TRIES: usize = 3;

/// What a transaction object says.
#[derive(Serialize, Deserialize)]
pub(crate) struct TxnRecord {
    state: TxnPhase,
    created_at: u64,
    /// Hex keys, for people inspecting a bucket (the first write only).
    #[serde(default)]
    keys: Vec<String>,
    /// How often the writer renewed its lease (each renewal changes the
    /// object, and so its ETag / generation).
    #[serde(default)]
    renewals: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TxnPhase {
    Pending,
    Committed,
    Aborted,
}

/// A transaction's phase as last read, with what is needed to change it.
#[derive(Clone)]
pub(crate) enum TxnView {
    Pending {
        created_at: u64,
        renewals: u64,
        version: UpdateVersion,
    },
    Committed,
    Aborted,
    /// The object is gone: a committed batch deletes it once its intents
    /// are rolled forward, an aborted one after rolling back. An intent
    /// still naming it is from an abort whose rollback failed, unless the
    /// key was rolled forward since it was read: readers and writers
    /// re-read the key.
    Missing,
}

/// Per-store batch settings and what this store saw of other writers'
/// pending transactions.
pub(crate) struct BatchState {
    timeout: Duration,
    watched: Mutex<HashMap<String, Watched>>,
}

/// A pending transaction object as this store last saw it.
struct Watched {
    /// ETag and version of the object.
    tag: UpdateVersion,
    /// When this store first saw the object with `tag` (monotonic).
    since: Instant,
    /// When this store last looked (for forgetting old entries).
    seen: Instant,
}

impl BatchState {
    pub(crate) fn new(timeout: Duration) -> Self {
        BatchState {
            timeout,
            watched: Mutex::new(HashMap::new()),
        }
    }

    fn heartbeat(&self) -> Duration {
        self.timeout / 5
    }

    /// Records that `txn`'s object was seen pending at `version`; true
    /// once this store has seen that same version for the whole timeout.
    fn unchanged_for_timeout(&self, txn: &str, version: &UpdateVersion) -> bool {
        let now = Instant::now();
        let mut watched = self.watched.lock();
        if watched.len() > 4096 {
            let keep = self.timeout * 4;
            watched.retain(|_, w| now.duration_since(w.seen) < keep);
        }
        match watched.get_mut(txn) {
            Some(w) if w.tag == *version => {
                w.seen = now;
                now.duration_since(w.since) >= self.timeout
            }
            _ => {
                watched.insert(
                    txn.to_string(),
                    Watched {
                        tag: version.clone(),
                        since: now,
                        seen: now,
                    },
                );
                false
            }
        }
    }

    fn forget(&self, txn: &str) {
        self.watched.lock().remove(txn);
    }
}

/// What one attempt of a batch came to.
enum Attempt {
    Done(Vec<Option<Version>>),
    /// Not applied; run again from a fresh read (after a backoff).
    Retry,
    /// Not applied; run again at once (a batch in the way just finished).
    Again,
}

/// One intent as written: the key, the record written, and the object
/// version to make the roll-forward / roll-back conditional on.
struct Written {
    key: Bytes,
    record: Record,
    version: UpdateVersion,
}

/// How an intent write ended.
enum IntentOutcome {
    Written(Box<Written>),
    /// Another writer changed the key first: retry the batch.
    Lost,
    Failed(StorageError),
    /// Not attempted: an earlier intent failed.
    Skipped,
}

/// How the commit write ended, after settling any ambiguity.
enum CommitOutcome {
    Committed,
    /// Definitely not committed (aborted by another writer, or by us).
    Aborted,
    Unknown(String),
}

/// The record with `op`'s entries removed from its history.
fn without_op(mut ops: Vec<String>, op: &str) -> Vec<String> {
    let prefix = format!("{op}@");
    ops.retain(|entry| !entry.starts_with(&prefix));
    ops
}

impl CloudStorage {
    fn txn_path(&self, txn: &str) -> object_store::path::Path {
        self.layout.txns().clone().join(txn)
    }

    pub(crate) async fn txn_view(&self, txn: &str) -> StorageResult<TxnView> {
        let path = self.txn_path(txn);
        let result = match self.clients.read.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(TxnView::Missing),
            Err(e) => return Err(self.fail("get", &path, e)),
        };
        let version = update_version(&result.meta);
        let bytes = match result.bytes().await {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(TxnView::Missing),
            Err(e) => return Err(self.fail("get", &path, e)),
        };
        let record: TxnRecord = serde_json::from_slice(&bytes).map_err(|e| {
            self.corrupt(&path, format!("transaction record is not valid JSON: {e}"))
        })?;
        Ok(match record.state {
            TxnPhase::Pending => TxnView::Pending {
                created_at: record.created_at,
                renewals: record.renewals,
                version,
            },
            TxnPhase::Committed => TxnView::Committed,
            TxnPhase::Aborted => TxnView::Aborted,
        })
    }

    pub(crate) async fn txn_view_cached(
        &self,
        txn: &str,
        cache: &mut HashMap<String, TxnView>,
    ) -> StorageResult<TxnView> {
        if let Some(view) = cache.get(txn) {
            return Ok(view.clone());
        }
        let view = self.txn_view(txn).await?;
        cache.insert(txn.to_string(), view.clone());
        Ok(view)
    }

    /// Settles a key's object as a writer must: an intent whose transaction
    /// object is gone may have been rolled forward (and the transaction
    /// deleted) after the key was read, so the key is read again; only if
    /// it is unchanged does the missing transaction mean "not applied".
    /// `None`: the key's object is gone.
    pub(crate) async fn settle_for_write(
        &self,
        key: &[u8],
        mut current: Current,
    ) -> StorageResult<Option<(Current, Settled)>> {
        for _ in 0..SETTLE_TRIES {
            let mut cache = HashMap::new();
            if let Some(intent) = &current.record.intent
                && matches!(
                    self.txn_view_cached(&intent.txn, &mut cache).await?,
                    TxnView::Missing
                )
            {
                match self.read_key(key).await? {
                    None => return Ok(None),
                    Some(again) if again.version != current.version => {
                        current = again;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            let settled = self.settle(&current.record, &mut cache).await?;
            return Ok(Some((current, settled)));
        }
        Err(StorageError::Unavailable(format!(
            "{} write of {}/{}: the key kept changing while its batch transaction was being cleaned up; try again",
            self.provider,
            self.bucket,
            self.layout.key_path(key)
        )))
    }

    /// A writer met an intent of a pending batch: wait for it (a backoff),
    /// or abort it once this store has seen its transaction object
    /// unchanged for the timeout (the batch's writer stopped renewing it).
    pub(crate) async fn wait_or_abort(&self, txn: &str, attempt: u32) -> StorageResult<()> {
        if !self.observe_or_abort(txn).await? {
            backoff(attempt).await;
        }
        Ok(())
    }

    /// Looks at a pending transaction once: aborts it if this store has
    /// seen its object unchanged for the timeout. True when it is no
    /// longer pending (finished, or aborted now).
    async fn observe_or_abort(&self, txn: &str) -> StorageResult<bool> {
        let TxnView::Pending {
            version,
            created_at,
            renewals,
        } = self.txn_view(txn).await?
        else {
            self.batch.forget(txn);
            return Ok(true);
        };
        if !self.batch.unchanged_for_timeout(txn, &version) {
            return Ok(false);
        }
        let aborted = self
            .set_txn_phase(txn, created_at, renewals, TxnPhase::Aborted, &version)
            .await
            .is_ok();
        self.batch.forget(txn);
        if aborted {
            tracing::warn!(
                provider = self.provider,
                txn,
                "aborted a batch transaction whose writer stopped renewing it"
            );
        }
        Ok(true)
    }

    async fn set_txn_phase(
        &self,
        txn: &str,
        created_at: u64,
        renewals: u64,
        phase: TxnPhase,
        version: &UpdateVersion,
    ) -> Result<UpdateVersion, object_store::Error> {
        let body = serde_json::to_vec(&TxnRecord {
            state: phase,
            created_at,
            keys: Vec::new(),
            renewals,
        })
        .unwrap_or_default();
        let path = self.txn_path(txn);
        let result = self
            .clients
            .write
            .put_opts(&path, Bytes::from(body).into(), put_mode(Some(version)))
            .await?;
        Ok(result.into())
    }

    // ---- the batch ---------------------------------------------------------

    pub(crate) async fn batch_many(
        &self,
        ops: Vec<BatchOp>,
    ) -> StorageResult<Vec<Option<Version>>> {
        let op = self.op_id();
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            if started.elapsed() > WRITE_DEADLINE {
                return Err(StorageError::Unavailable(format!(
                    "{} batch: gave up after {:?} of lost races or waiting for other batches",
                    self.provider, WRITE_DEADLINE
                )));
            }
            attempt += 1;
            match self.batch_attempt(&ops, &op, attempt).await? {
                Attempt::Done(results) => return Ok(results),
                Attempt::Retry => backoff(attempt).await,
                Attempt::Again => {}
            }
        }
    }

    /// Reads every key of the batch (concurrently), settled. `Err(txns)`:
    /// keys hold intents of these pending transactions.
    #[allow(clippy::type_complexity)]
    async fn read_batch_keys(
        &self,
        ops: &[BatchOp],
    ) -> StorageResult<Result<BTreeMap<Bytes, (Option<Cell>, Option<Current>)>, Vec<String>>> {
        let mut keys: Vec<Bytes> = ops.iter().map(|o| o.key().clone()).collect();
        keys.sort();
        keys.dedup();
        let reads: Vec<(Bytes, Option<(Current, Settled)>)> = futures::stream::iter(keys)
            .map(|key| async move {
                let settled = match self.read_key(&key).await? {
                    None => None,
                    Some(current) => self.settle_for_write(&key, current).await?,
                };
                Ok::<_, StorageError>((key, settled))
            })
            .buffered(BATCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut slots = BTreeMap::new();
        let mut pending = Vec::new();
        for (key, read) in reads {
            let slot = match read {
                None => (None, None),
                Some((_, Settled::Pending { txn, .. })) => {
                    if !pending.contains(&txn) {
                        pending.push(txn);
                    }
                    continue;
                }
                Some((current, Settled::Cell(cell))) => (Some(cell), Some(current)),
            };
            slots.insert(key, slot);
        }
        Ok(if pending.is_empty() {
            Ok(slots)
        } else {
            Err(pending)
        })
    }

    async fn batch_attempt(
        &self,
        ops: &[BatchOp],
        op: &str,
        attempt: u32,
    ) -> StorageResult<Attempt> {
        // 1. Read every key, settled.
        let slots = match self.read_batch_keys(ops).await? {
            Ok(slots) => slots,
            Err(pending) => {
                // Watch all of them, so their timeouts run together.
                let mut finished = 0;
                for txn in &pending {
                    finished += usize::from(self.observe_or_abort(txn).await?);
                }
                return Ok(if finished > 0 {
                    Attempt::Again
                } else {
                    Attempt::Retry
                });
            }
        };
        let floor = slots
            .values()
            .filter_map(|(_, current)| current.as_ref())
            .map(|c| {
                c.record
                    .cell
                    .version
                    .max(c.record.intent.as_ref().map_or(0, |i| i.cell.version))
            })
            .max()
            .unwrap_or(0);
        // 2. Apply the operations to a model of those keys, by the
        // contract's batch rule; a failing precondition writes nothing.
        let now = self.clock.now_ms();
        let plan = rules::plan_batch(
            ops,
            now,
            |key| {
                slots
                    .get(key)
                    .and_then(|(base, _)| base.as_ref())
                    .and_then(|cell| cell.live_version(now))
            },
            || Ok(self.clock.next(floor)),
        )?;
        let mut finals: BTreeMap<Bytes, Cell> = BTreeMap::new();
        for (batch_op, version) in ops.iter().zip(&plan.versions) {
            let cell = match (batch_op, version) {
                (BatchOp::Put { value, options, .. }, Some(version)) => Cell {
                    version: *version,
                    live: true,
                    expires_at: options.expires_at,
                    value: value.clone(),
                },
                _ => Cell::tombstone(self.clock.next(floor)),
            };
            finals.insert(batch_op.key().clone(), cell);
        }
        let results = plan.versions;
        // 3. The transaction object, pending.
        let txn = format!("{:016x}-{}-{attempt}", now, op.replace('.', "-"));
        let txn_path = self.txn_path(&txn);
        let body = serde_json::to_vec(&TxnRecord {
            state: TxnPhase::Pending,
            created_at: now,
            keys: finals.keys().map(hex::encode).collect(),
            renewals: 0,
        })
        .unwrap_or_default();
        let txn_version: UpdateVersion = match self
            .clients
            .write
            .put_opts(&txn_path, Bytes::from(body).into(), PutMode::Create.into())
            .await
        {
            Ok(result) => result.into(),
            Err(e) => {
                // The name is unique to this attempt: if the object exists
                // and is pending, it is ours (object_store's retry met our
                // own first attempt, or the response was lost).
                let error = self.fail("put", &txn_path, e);
                match self.txn_view(&txn).await {
                    Ok(TxnView::Pending { version, .. }) => version,
                    _ => {
                        return Err(StorageError::Unavailable(format!(
                            "batch not applied (nothing was written to its keys): {}",
                            inner(&error)
                        )));
                    }
                }
            }
        };
        // 4. Intents, concurrently, while a heartbeat renews the lease.
        let lease = Lease {
            txn: &txn,
            created_at: now,
            version: Mutex::new(txn_version),
            renewals: Mutex::new(0),
            aborted: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
        };
        let intents = async {
            let outcomes = self
                .write_intents(&txn, op, now, &slots, &finals, &lease)
                .await;
            lease.done.notify_one();
            outcomes
        };
        let (outcomes, ()) = futures::join!(intents, self.heartbeat(&lease));
        let mut written = Vec::new();
        let mut lost = false;
        let mut failure = None;
        for outcome in outcomes {
            match outcome {
                IntentOutcome::Written(w) => written.push(*w),
                IntentOutcome::Lost => lost = true,
                IntentOutcome::Failed(e) => failure = failure.or(Some(e)),
                IntentOutcome::Skipped => {}
            }
        }
        if lost || failure.is_some() || lease.aborted.load(Ordering::Relaxed) {
            let aborted = self.abort_own(&lease).await;
            if aborted {
                self.roll_back(&txn, op, &written).await;
            }
            return match failure {
                Some(error) => Err(StorageError::Unavailable(format!(
                    "batch not applied ({}): {}",
                    if aborted {
                        "rolled back"
                    } else {
                        "its transaction stays pending until another writer aborts it"
                    },
                    inner(&error)
                ))),
                None if aborted => Ok(Attempt::Retry),
                None => Err(StorageError::Unavailable(format!(
                    "batch not applied: a key changed under it, and marking its transaction {txn} aborted failed; it stays pending until another writer aborts it"
                ))),
            };
        }
        // 5. Commit point.
        match self.commit(&lease, op, &written).await {
            CommitOutcome::Committed => {}
            CommitOutcome::Aborted => {
                // Another writer aborted us (we were presumed dead): the
                // batch is definitely not applied, so it may run again.
                self.roll_back(&txn, op, &written).await;
                return Ok(Attempt::Retry);
            }
            CommitOutcome::Unknown(reason) => {
                return Err(StorageError::Unavailable(format!(
                    "batch outcome unknown: {reason}; readers settle it from transaction object {txn} once the store answers"
                )));
            }
        }
        // 6. Roll intents forward; readers do it themselves if this fails.
        let all_settled = futures::stream::iter(written)
            .map(|w| async move {
                let mut record = w.record;
                if let Some(intent) = record.intent.take() {
                    record.cell = intent.cell;
                }
                let path = self.layout.key_path(&w.key);
                match self
                    .put_record(&path, &record, put_mode(Some(&w.version)))
                    .await
                {
                    Ok(_) => true,
                    Err(e) if is_race(&e) => true, // someone settled or overwrote it
                    Err(e) => {
                        tracing::warn!(provider = self.provider, error = %self.fail("put", &path, e), "committed batch: intent left for readers to settle");
                        false
                    }
                }
            })
            .buffer_unordered(BATCH_CONCURRENCY)
            .fold(true, |all, ok| async move { all && ok })
            .await;
        if all_settled {
            self.clients.write.delete(&txn_path).await.ok();
        }
        Ok(Attempt::Done(results))
    }

    /// Writes the intents, at most [`BATCH_CONCURRENCY`] at once; stops
    /// starting new ones after a failure or once the lease is lost.
    async fn write_intents(
        &self,
        txn: &str,
        op: &str,
        now: u64,
        slots: &BTreeMap<Bytes, (Option<Cell>, Option<Current>)>,
        finals: &BTreeMap<Bytes, Cell>,
        lease: &Lease<'_>,
    ) -> Vec<IntentOutcome> {
        let planned: Vec<(Record, Option<UpdateVersion>)> = finals
            .iter()
            .map(|(key, cell)| {
                let (base, current) = &slots[key];
                let record = Record {
                    key: key.clone(),
                    cell: base.clone().unwrap_or_else(|| Cell::tombstone(0)),
                    intent: Some(Intent {
                        txn: txn.to_string(),
                        cell: cell.clone(),
                    }),
                    ops: history(
                        current
                            .as_ref()
                            .map(|c| c.record.ops.clone())
                            .unwrap_or_default(),
                        op,
                        cell.version,
                    ),
                    written_at: now,
                };
                (record, current.as_ref().map(|c| c.version.clone()))
            })
            .collect();
        let stop = AtomicBool::new(false);
        let stop = &stop;
        futures::stream::iter(planned)
            .map(|(record, version)| async move {
                if stop.load(Ordering::Relaxed) || lease.aborted.load(Ordering::Relaxed) {
                    return IntentOutcome::Skipped;
                }
                let outcome = self.write_intent(txn, record, version.as_ref()).await;
                if !matches!(outcome, IntentOutcome::Written(_)) {
                    stop.store(true, Ordering::Relaxed);
                }
                outcome
            })
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await
    }

    /// One intent write. An error is ambiguous (a race error can be
    /// object_store's retry meeting our own first attempt; a transport
    /// error may hide a write that landed): the key is read back, and an
    /// intent naming our transaction (unique to this attempt) means it
    /// landed.
    async fn write_intent(
        &self,
        txn: &str,
        record: Record,
        version: Option<&UpdateVersion>,
    ) -> IntentOutcome {
        let path = self.layout.key_path(&record.key);
        let error = match self.put_record(&path, &record, put_mode(version)).await {
            Ok(result) => {
                return IntentOutcome::Written(Box::new(Written {
                    key: record.key.clone(),
                    record,
                    version: result.into(),
                }));
            }
            Err(e) => e,
        };
        let race = is_race(&error);
        let error = if race {
            None
        } else {
            Some(self.fail("put", &path, error))
        };
        match self.read_key(&record.key).await {
            Ok(Some(current)) if current.record.has_intent_of(txn) => {
                IntentOutcome::Written(Box::new(Written {
                    key: record.key.clone(),
                    record,
                    version: current.version,
                }))
            }
            // Not there: a lost race, or a failed write. Should a failed
            // request still land later, it names a transaction that will
            // be aborted, which every reader treats as "not applied".
            Ok(_) => match error {
                None => IntentOutcome::Lost,
                Some(error) => IntentOutcome::Failed(error),
            },
            Err(read_error) => IntentOutcome::Failed(error.unwrap_or(read_error)),
        }
    }

    /// Renews the lease every [`BatchState::heartbeat`] until `lease.done`:
    /// a conditional update of the pending transaction object, which
    /// changes its ETag, so that waiting writers see the batch is alive.
    async fn heartbeat(&self, lease: &Lease<'_>) {
        loop {
            tokio::select! {
                _ = lease.done.notified() => return,
                _ = tokio::time::sleep(self.batch.heartbeat()) => {}
            }
            let version = lease.version.lock().clone();
            let renewals = *lease.renewals.lock() + 1;
            match self
                .set_txn_phase(
                    lease.txn,
                    lease.created_at,
                    renewals,
                    TxnPhase::Pending,
                    &version,
                )
                .await
            {
                Ok(version) => {
                    *lease.version.lock() = version;
                    *lease.renewals.lock() = renewals;
                }
                Err(e) => {
                    // Ambiguous or lost: only we write `pending`, so a
                    // pending object read back is ours to renew further.
                    tracing::info!(provider = self.provider, txn = lease.txn, error = %self.scrubber.scrub(&e.to_string()), "renewing a batch lease failed; reading it back");
                    match self.txn_view(lease.txn).await {
                        Ok(TxnView::Pending {
                            version, renewals, ..
                        }) => {
                            *lease.version.lock() = version;
                            *lease.renewals.lock() = renewals;
                        }
                        Ok(_) => {
                            lease.aborted.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// The commit point, with every ambiguity settled by reading the
    /// transaction object back: committed -> committed; aborted -> not
    /// applied; still pending -> the write did not land, and nobody
    /// aborted us, so commit again on the version read; unreadable ->
    /// unknown.
    async fn commit(&self, lease: &Lease<'_>, op: &str, written: &[Written]) -> CommitOutcome {
        let mut version = lease.version.lock().clone();
        let mut renewals = *lease.renewals.lock();
        let mut last_error = String::new();
        for _ in 0..SETTLE_TRIES {
            let error = match self
                .set_txn_phase(
                    lease.txn,
                    lease.created_at,
                    renewals,
                    TxnPhase::Committed,
                    &version,
                )
                .await
            {
                Ok(_) => return CommitOutcome::Committed,
                Err(e) => e,
            };
            last_error = if is_race(&error) {
                format!(
                    "committing transaction {} met a precondition failure",
                    lease.txn
                )
            } else {
                inner(&self.fail("put", &self.txn_path(lease.txn), error))
            };
            match self.txn_view(lease.txn).await {
                Ok(TxnView::Committed) => return CommitOutcome::Committed,
                Ok(TxnView::Aborted) => return CommitOutcome::Aborted,
                Ok(TxnView::Pending {
                    version: v,
                    renewals: r,
                    ..
                }) => {
                    version = v;
                    renewals = r;
                }
                Ok(TxnView::Missing) => {
                    return self.commit_of_missing(lease.txn, op, written).await;
                }
                Err(e) => {
                    return CommitOutcome::Unknown(format!(
                        "committing transaction {} failed ({last_error}) and re-reading it failed ({})",
                        lease.txn,
                        inner(&e)
                    ));
                }
            }
        }
        CommitOutcome::Unknown(format!(
            "committing transaction {} failed {SETTLE_TRIES} times ({last_error})",
            lease.txn
        ))
    }

    /// The transaction object vanished during the commit: our keys tell.
    /// An intent of ours still in place means readers see the batch as not
    /// applied (they treat a missing transaction as aborted); our op id in
    /// a key's history without our intent means it was rolled forward.
    async fn commit_of_missing(&self, txn: &str, op: &str, written: &[Written]) -> CommitOutcome {
        let Some(first) = written.first() else {
            return CommitOutcome::Aborted;
        };
        match self.read_key(&first.key).await {
            Ok(Some(current)) if current.record.has_intent_of(txn) => CommitOutcome::Aborted,
            Ok(Some(current)) if applied(&current.record, op).is_some() => CommitOutcome::Committed,
            Ok(_) => CommitOutcome::Unknown(format!(
                "transaction {txn} disappeared during its commit and key {} no longer shows its intent",
                hex::encode(&first.key)
            )),
            Err(e) => CommitOutcome::Unknown(format!(
                "transaction {txn} disappeared during its commit and re-reading a key failed ({})",
                inner(&e)
            )),
        }
    }

    /// Marks our own pending transaction aborted, settling ambiguity by
    /// reading it back. True when it is certainly not committed.
    async fn abort_own(&self, lease: &Lease<'_>) -> bool {
        let mut version = lease.version.lock().clone();
        let mut renewals = *lease.renewals.lock();
        for _ in 0..SETTLE_TRIES {
            let error = match self
                .set_txn_phase(
                    lease.txn,
                    lease.created_at,
                    renewals,
                    TxnPhase::Aborted,
                    &version,
                )
                .await
            {
                Ok(_) => return true,
                Err(e) => e,
            };
            match self.txn_view(lease.txn).await {
                // Only the writer commits, and it has not.
                Ok(TxnView::Aborted | TxnView::Missing | TxnView::Committed) => return true,
                Ok(TxnView::Pending {
                    version: v,
                    renewals: r,
                    ..
                }) => {
                    version = v;
                    renewals = r;
                }
                Err(_) => {
                    tracing::warn!(provider = self.provider, txn = lease.txn, error = %self.scrubber.scrub(&error.to_string()), "could not mark a batch aborted; it times out instead");
                    return false;
                }
            }
        }
        false
    }

    /// Rolls the intents of an aborted transaction back (best effort: an
    /// intent left behind names an aborted transaction, which every reader
    /// and writer treats as absent) and deletes the transaction object.
    async fn roll_back(&self, txn: &str, op: &str, written: &[Written]) {
        let undo: Vec<(object_store::path::Path, Record, UpdateVersion)> = written
            .iter()
            .map(|w| {
                let mut record = w.record.clone();
                record.intent = None;
                record.ops = without_op(record.ops, op);
                (self.layout.key_path(&w.key), record, w.version.clone())
            })
            .collect();
        let all = futures::stream::iter(undo)
            .map(|(path, record, version)| async move {
                match self
                    .put_record(&path, &record, put_mode(Some(&version)))
                    .await
                {
                    Ok(_) => true,
                    Err(e) => is_race(&e),
                }
            })
            .buffer_unordered(BATCH_CONCURRENCY)
            .fold(true, |all, ok| async move { all && ok })
            .await;
        if all {
            self.clients.write.delete(&self.txn_path(txn)).await.ok();
        }
    }

    /// Transaction objects left behind by crashed or failed batches:
    /// pending and seen unchanged by this store for the timeout (over
    /// several purges) -> aborted (conditional); aborted, or committed and
    /// referenced by no intent, and older than [`TXN_RETENTION_MS`] ->
    /// deleted. After a commit no new intent can name a transaction, so
    /// "no intent seen by this full scan" stays true.
    /// The transaction's state, after aborting it if it is pending and this
    /// store has seen it unchanged for the timeout (its writer stopped
    /// renewing it). For purge, which settles intents it finds in the
    /// expiry index.
    pub(crate) async fn txn_view_aborting_stale(&self, txn: &str) -> StorageResult<TxnView> {
        let view = self.txn_view(txn).await?;
        if let TxnView::Pending {
            created_at,
            renewals,
            version,
        } = &view
            && self.batch.unchanged_for_timeout(txn, version)
        {
            self.set_txn_phase(txn, *created_at, *renewals, TxnPhase::Aborted, version)
                .await
                .ok();
            self.batch.forget(txn);
            return self.txn_view(txn).await;
        }
        Ok(view)
    }

    /// Aborts pending transactions seen unchanged for the timeout, and
    /// deletes finished ones older than [`TXN_RETENTION_MS`] once no intent
    /// can still name them (the expiry index holds no intent entry that old;
    /// see `purge_due`). After a commit no new intent can name a
    /// transaction, so that stays true.
    pub(crate) async fn purge_txns(
        &self,
        now: u64,
        intents_settled_before: u64,
    ) -> StorageResult<()> {
        let folder = self.layout.txns().clone();
        let metas: Vec<object_store::ObjectMeta> =
            match self.clients.read.list(Some(&folder)).try_collect().await {
                Ok(metas) => metas,
                Err(e) => return Err(self.fail("list", &folder, e)),
            };
        for meta in metas {
            let Some(txn) = meta.location.filename().map(str::to_string) else {
                continue;
            };
            let modified_at = meta.last_modified.timestamp_millis().max(0) as u64;
            match self.txn_view(&txn).await? {
                TxnView::Pending {
                    created_at,
                    renewals,
                    version,
                } if self.batch.unchanged_for_timeout(&txn, &version) => {
                    self.set_txn_phase(&txn, created_at, renewals, TxnPhase::Aborted, &version)
                        .await
                        .ok();
                    self.batch.forget(&txn);
                }
                TxnView::Aborted | TxnView::Committed
                    if modified_at < intents_settled_before
                        && modified_at.saturating_add(TXN_RETENTION_MS) < now =>
                {
                    self.batch.forget(&txn);
                    match self.clients.write.delete(&meta.location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(self.fail("delete", &meta.location, e)),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The writer's hold on its pending transaction while it writes intents.
struct Lease<'a> {
    txn: &'a str,
    created_at: u64,
    /// The transaction object's version after our last write of it.
    version: Mutex<UpdateVersion>,
    renewals: Mutex<u64>,
    /// A renewal found the transaction no longer pending.
    aborted: AtomicBool,
    done: tokio::sync::Notify,
}
