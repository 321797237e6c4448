//! Atomic multi-key batches: the transaction object `P/t/<txn>`, the
//! intents written next to each key's committed state, the commit point
//! (one conditional update of the transaction object), roll-forward and
//! roll-back, aborting transactions of dead writers, and purging finished
//! transaction objects. See the crate docs for the protocol.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, UpdateVersion};
use orbit_storage::{BatchOp, StorageError, StorageResult, Version, now_millis};
use serde::{Deserialize, Serialize};

use crate::layout::{Cell, Intent, Record};
use crate::store::{
    CloudStorage, Current, Settled, WRITE_DEADLINE, backoff, check_precondition, history, inner,
    is_race, put_mode, update_version,
};

/// A batch whose transaction stays `pending` this long is presumed dead
/// and may be aborted by any writer that meets one of its intents.
pub const TXN_TIMEOUT_MS: u64 = 20_000;

/// Finished transaction objects no intent names are deleted by purge
/// once they are this old.
pub const TXN_RETENTION_MS: u64 = 600_000;

/// What a transaction object says.
#[derive(Serialize, Deserialize)]
pub(crate) struct TxnRecord {
    state: TxnPhase,
    created_at: u64,
    /// Hex keys, for people inspecting a bucket.
    keys: Vec<String>,
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
        version: UpdateVersion,
    },
    Committed,
    Aborted,
    /// The object is gone: a committed batch deletes it once its intents
    /// are rolled forward, an aborted one after rolling back. An intent
    /// still naming it is from an abort whose rollback failed, unless the
    /// key was rolled forward since it was read: readers re-read the key.
    Missing,
}

impl CloudStorage {
    pub(crate) async fn txn_view(&self, txn: &str) -> StorageResult<TxnView> {
        let path = self.layout.txns().clone().join(txn);
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

    /// A writer met an intent of a pending batch: wait for it, or abort it
    /// once it is older than [`TXN_TIMEOUT_MS`].
    pub(crate) async fn wait_or_abort(
        &self,
        txn: &str,
        created_at: u64,
        attempt: u32,
    ) -> StorageResult<()> {
        if now_millis() < created_at.saturating_add(TXN_TIMEOUT_MS) {
            backoff(attempt).await;
            return Ok(());
        }
        if let TxnView::Pending {
            version,
            created_at,
        } = self.txn_view(txn).await?
        {
            self.set_txn_phase(txn, created_at, TxnPhase::Aborted, &version)
                .await
                .ok();
            tracing::warn!(
                provider = self.provider,
                txn,
                "aborted a batch transaction left pending past its timeout"
            );
        }
        Ok(())
    }

    async fn set_txn_phase(
        &self,
        txn: &str,
        created_at: u64,
        phase: TxnPhase,
        version: &UpdateVersion,
    ) -> Result<UpdateVersion, object_store::Error> {
        let body = serde_json::to_vec(&TxnRecord {
            state: phase,
            created_at,
            keys: Vec::new(),
        })
        .unwrap_or_default();
        let path = self.layout.txns().clone().join(txn);
        let result = self
            .clients
            .write
            .put_opts(&path, Bytes::from(body).into(), put_mode(Some(version)))
            .await?;
        Ok(result.into())
    }

    // ---- batches -----------------------------------------------------------

    pub(crate) async fn batch_many(
        &self,
        ops: Vec<BatchOp>,
    ) -> StorageResult<Vec<Option<Version>>> {
        let op = self.op_id();
        let started = Instant::now();
        let mut attempt = 0u32;
        'attempt: loop {
            if started.elapsed() > WRITE_DEADLINE {
                return Err(StorageError::Unavailable(format!(
                    "{} batch: gave up after {:?} of lost races",
                    self.provider, WRITE_DEADLINE
                )));
            }
            attempt += 1;
            // 1. Read every key, settled.
            let mut slots: BTreeMap<Bytes, (Option<Cell>, Option<Current>)> = BTreeMap::new();
            let mut floor = 0u64;
            for batch_op in &ops {
                let key = batch_op.key().clone();
                if slots.contains_key(&key) {
                    continue;
                }
                let current = self.read_key(&key).await?;
                let base = match &current {
                    None => None,
                    Some(c) => {
                        floor = floor
                            .max(c.record.cell.version)
                            .max(c.record.intent.as_ref().map_or(0, |i| i.cell.version));
                        match self.settle(&c.record, &mut HashMap::new()).await? {
                            Settled::Pending {
                                txn, created_at, ..
                            } => {
                                self.wait_or_abort(&txn, created_at, attempt).await?;
                                continue 'attempt;
                            }
                            Settled::Cell(cell) => Some(cell),
                        }
                    }
                };
                slots.insert(key, (base, current));
            }
            // 2. Apply the operations to a model of those keys.
            let now = now_millis();
            let mut state: BTreeMap<Bytes, Option<Version>> = slots
                .iter()
                .map(|(k, (base, _))| {
                    (
                        k.clone(),
                        base.as_ref().filter(|c| c.visible(now)).map(|c| c.version),
                    )
                })
                .collect();
            let mut finals: BTreeMap<Bytes, Cell> = BTreeMap::new();
            let mut results = Vec::with_capacity(ops.len());
            for batch_op in &ops {
                let key = batch_op.key();
                let current = state.get(key).copied().flatten();
                match batch_op {
                    BatchOp::Put { value, options, .. } => {
                        check_precondition(key, options.precondition, current)?;
                        let version = self.clock.next(floor);
                        let cell = Cell {
                            version,
                            live: true,
                            expires_at: options.expires_at,
                            value: value.clone(),
                        };
                        state.insert(key.clone(), cell.visible(now).then_some(version));
                        finals.insert(key.clone(), cell);
                        results.push(Some(version));
                    }
                    BatchOp::Delete { precondition, .. } => {
                        check_precondition(key, *precondition, current)?;
                        state.insert(key.clone(), None);
                        finals.insert(key.clone(), Cell::tombstone(self.clock.next(floor)));
                        results.push(None);
                    }
                }
            }
            // 3. The transaction object, pending.
            let txn = format!("{:016x}-{}", now, op.replace('.', "-"));
            let txn = format!("{txn}-{attempt}");
            let txn_path = self.layout.txns().clone().join(txn.as_str());
            let body = serde_json::to_vec(&TxnRecord {
                state: TxnPhase::Pending,
                created_at: now,
                keys: finals.keys().map(hex::encode).collect(),
            })
            .unwrap_or_default();
            let txn_version: UpdateVersion = match self
                .clients
                .write
                .put_opts(&txn_path, Bytes::from(body).into(), PutMode::Create.into())
                .await
            {
                Ok(result) => result.into(),
                Err(e) => return Err(self.fail("put", &txn_path, e)),
            };
            // 4. Intents, in key order.
            let mut written: Vec<(Bytes, Record, UpdateVersion)> = Vec::new();
            for (key, cell) in &finals {
                let (base, current) = &slots[key];
                let record = Record {
                    key: key.clone(),
                    cell: base.clone().unwrap_or_else(|| Cell::tombstone(0)),
                    intent: Some(Intent {
                        txn: txn.clone(),
                        cell: cell.clone(),
                    }),
                    ops: history(
                        current
                            .as_ref()
                            .map(|c| c.record.ops.clone())
                            .unwrap_or_default(),
                        &op,
                        cell.version,
                    ),
                    written_at: now,
                };
                let path = self.layout.key_path(key);
                match self
                    .put_record(
                        &path,
                        &record,
                        put_mode(current.as_ref().map(|c| &c.version)),
                    )
                    .await
                {
                    Ok(result) => written.push((key.clone(), record, result.into())),
                    Err(e) => {
                        let race = is_race(&e);
                        let error = if race {
                            None
                        } else {
                            Some(self.fail("put", &path, e))
                        };
                        self.abandon(&txn, now, &txn_version, &written).await;
                        match error {
                            None => {
                                backoff(attempt).await;
                                continue 'attempt;
                            }
                            Some(error) => {
                                return Err(StorageError::Unavailable(format!(
                                    "batch not applied (rolled back): {}",
                                    inner(&error)
                                )));
                            }
                        }
                    }
                }
            }
            // 5. Commit point.
            match self
                .set_txn_phase(&txn, now, TxnPhase::Committed, &txn_version)
                .await
            {
                Ok(_) => {}
                Err(e) if is_race(&e) => {
                    // A writer aborted us (we were too slow).
                    self.abandon(&txn, now, &txn_version, &written).await;
                    backoff(attempt).await;
                    continue 'attempt;
                }
                Err(e) => {
                    let error = self.fail("put", &txn_path, e);
                    match self.txn_view(&txn).await {
                        Ok(TxnView::Committed) => {}
                        Ok(_) => {
                            self.abandon(&txn, now, &txn_version, &written).await;
                            return Err(StorageError::Unavailable(format!(
                                "batch not applied (rolled back): {}",
                                inner(&error)
                            )));
                        }
                        Err(e2) => {
                            return Err(StorageError::Unavailable(format!(
                                "batch outcome unknown: committing transaction {txn} failed ({}) and re-reading it failed ({}); readers settle it from the transaction object once the store answers",
                                inner(&error),
                                inner(&e2)
                            )));
                        }
                    }
                }
            }
            // 6. Roll intents forward; readers do it themselves if this fails.
            let mut all_settled = true;
            for (key, mut record, version) in written {
                if let Some(intent) = record.intent.take() {
                    record.cell = intent.cell;
                }
                let path = self.layout.key_path(&key);
                match self
                    .put_record(&path, &record, put_mode(Some(&version)))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_race(&e) => {} // someone settled or overwrote it
                    Err(e) => {
                        all_settled = false;
                        tracing::warn!(provider = self.provider, error = %self.fail("put", &path, e), "committed batch: intent left for readers to settle");
                    }
                }
            }
            if all_settled {
                self.clients.write.delete(&txn_path).await.ok();
            }
            return Ok(results);
        }
    }

    /// Aborts a transaction and rolls its intents back (best effort: a
    /// rollback that fails leaves an intent of an aborted transaction,
    /// which every reader and writer treats as absent).
    async fn abandon(
        &self,
        txn: &str,
        created_at: u64,
        txn_version: &UpdateVersion,
        written: &[(Bytes, Record, UpdateVersion)],
    ) {
        match self
            .set_txn_phase(txn, created_at, TxnPhase::Aborted, txn_version)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(provider = self.provider, txn, error = %self.scrubber.scrub(&e.to_string()), "could not mark a batch aborted; it times out instead");
                return;
            }
        }
        for (key, record, version) in written {
            let mut record = record.clone();
            record.intent = None;
            let path = self.layout.key_path(key);
            self.put_record(&path, &record, put_mode(Some(version)))
                .await
                .ok();
        }
        self.clients
            .write
            .delete(&self.layout.txns().clone().join(txn))
            .await
            .ok();
    }

    /// Transaction objects left behind by crashed or failed batches:
    /// pending past [`TXN_TIMEOUT_MS`] -> aborted (conditional); aborted,
    /// or committed and referenced by no intent, and older than
    /// [`TXN_RETENTION_MS`] -> deleted. After a commit no new intent can
    /// name a transaction, so "no intent seen by this full scan" stays true.
    pub(crate) async fn purge_txns(
        &self,
        now: u64,
        referenced: &std::collections::HashSet<String>,
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
            let created_at = meta.last_modified.timestamp_millis().max(0) as u64;
            match self.txn_view(&txn).await? {
                TxnView::Pending {
                    created_at,
                    version,
                } if created_at.saturating_add(TXN_TIMEOUT_MS) < now => {
                    self.set_txn_phase(&txn, created_at, TxnPhase::Aborted, &version)
                        .await
                        .ok();
                }
                TxnView::Aborted | TxnView::Committed
                    if !referenced.contains(&txn)
                        && created_at.saturating_add(TXN_RETENTION_MS) < now =>
                {
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
