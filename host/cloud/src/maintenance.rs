//! Maintenance: what one `purge_expired` call does, and the expiry
//! index's one-time backfill; specified in `host/cloud/DESIGN.md`,
//! "Maintenance".
//!
//! A call takes or renews the purge lease (module `lease`; a replica that
//! does not hold it returns 0 after one GET), makes sure the prefix's
//! expiry index is complete (a full scan once per prefix written by a
//! version of this crate that predates the index, then the marker
//! `P/index-complete`), runs one purge pass over the due part of the index
//! (module `purge`) and logs the pass. Also the knobs every handle of a
//! prefix must agree on (tombstone grace, lease period), for tests and
//! benchmarks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode};
use orbit_storage::StorageResult;

use crate::expiry;
use crate::list::FETCH_CONCURRENCY;
use crate::store::{CloudStorage, TXN_TIMEOUT_MS};

impl CloudStorage {
    /// One `purge_expired`: the lease, the backfill, one pass of due work.
    pub(crate) async fn purge(&self) -> StorageResult<u64> {
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

    /// Changes how long tombstones are kept before purge deletes them
    /// (default [`TOMBSTONE_GRACE_MS`]). For tests and benchmarks: every
    /// handle of a prefix should use the same value, and shorter values
    /// widen the window described in `DESIGN.md` ("Deletes").
    pub fn set_tombstone_grace(&self, grace: Duration) {
        self.tombstone_grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
    }

    /// Changes the purge lease period (default
    /// [`crate::DEFAULT_LEASE_PERIOD`]); every handle of a prefix
    /// must use the same value (see `DESIGN.md`, "Purge lease").
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

    /// A prefix with no key object yet has nothing to backfill: mark its
    /// expiry index complete at once, so the first purge does not scan
    /// what this version wrote (see `backfill_index`). Two or three
    /// requests, at open only.
    pub(crate) async fn mark_fresh_prefix_indexed(&self) -> StorageResult<()> {
        if self.index_marked().await? {
            return Ok(());
        }
        let keys = self.layout.keys();
        match self.clients.read.list(Some(keys)).next().await {
            Some(Err(e)) => return Err(self.fail("list", keys, e)),
            Some(Ok(_)) => return Ok(()), // written before: the first purge backfills
            None => {}
        }
        self.mark_index_complete().await
    }

    /// Once per prefix, by the purge lease holder: gives the records
    /// written before the expiry index existed their entries (earlier
    /// versions of this crate wrote none, so their expired keys and
    /// tombstones would never be purged). One full scan, then the marker
    /// `P/index-complete`; idempotent, so a holder that dies half-way is
    /// followed by one that starts over. Later calls cost nothing (the
    /// marker is remembered) or one HEAD (a new handle).
    async fn backfill_index(&self) -> StorageResult<()> {
        if self.index_marked().await? {
            return Ok(());
        }
        let grace = self.tombstone_grace_ms();
        let mut entries = Vec::new();
        self.for_each_record(|current, _, _| {
            let path = self.layout.key_path(&current.record.key);
            let name = path.filename().unwrap_or_default();
            entries.extend(expiry::entries_for(
                &current.record,
                name,
                grace,
                TXN_TIMEOUT_MS,
            ));
        })
        .await?;
        let written = entries.len();
        futures::stream::iter(entries)
            .map(|entry| self.put_index_entry(entry))
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.fail("put", self.layout.index(), e))?;
        self.mark_index_complete().await?;
        if written > 0 {
            tracing::info!(
                provider = self.provider,
                entries = written,
                "expiry index backfilled for records written before it existed"
            );
        }
        Ok(())
    }

    /// Whether the prefix's expiry index is complete: remembered once seen,
    /// else one HEAD of the marker `P/index-complete`.
    async fn index_marked(&self) -> StorageResult<bool> {
        if self.index_complete.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let marker = self.layout.index_complete();
        match self.clients.read.head(marker).await {
            Ok(_) => {
                self.index_complete.store(true, Ordering::Relaxed);
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("head", marker, e)),
        }
    }

    async fn mark_index_complete(&self) -> StorageResult<()> {
        let marker = self.layout.index_complete();
        self.clients
            .write
            .put_opts(marker, Bytes::new().into(), PutMode::Overwrite.into())
            .await
            .map_err(|e| self.fail("put", marker, e))?;
        self.index_complete.store(true, Ordering::Relaxed);
        Ok(())
    }
}
