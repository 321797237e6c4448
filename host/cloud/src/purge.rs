//! Purge: one pass over the due part of the expiry index, done by the one
//! replica holding the purge lease (module `maintenance` calls it);
//! specified in `host/cloud/DESIGN.md`, "Purge" and "Expiry index".

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use orbit_storage::{StorageError, StorageResult, now_millis};

use crate::batch::TxnView;
use crate::expiry;
use crate::layout::{Cell, parse_name};
use crate::list::FETCH_CONCURRENCY;
use crate::store::{CloudStorage, TXN_TIMEOUT_MS};
use crate::write::{is_race, put_mode, same_version, update_version};

/// Most index entries one purge pass handles (the next pass goes on).
const PURGE_MAX_ENTRIES: usize = 10_000;

/// How far the wall clocks of writers and of the object store may be
/// apart before purge could delete a transaction object an unsettled
/// intent still names (see `purge_due`).
const CLOCK_MARGIN_MS: u64 = 300_000;

/// What purge did with one index entry.
enum Handled {
    /// Delete the entry; `purged`: an expired entry became a tombstone.
    Done { purged: bool },
    /// Leave it for a later pass.
    Keep,
}

impl CloudStorage {
    /// One purge pass while holding the lease: lists the expiry index from
    /// its start, handles the entries that are due (at most
    /// [`PURGE_MAX_ENTRIES`], [`FETCH_CONCURRENCY`] at a time), stops at
    /// the first entry that is not, then tidies transaction objects.
    pub(crate) async fn purge_due(&self) -> StorageResult<u64> {
        let now = now_millis();
        let folder = self.layout.index().clone();
        let mut listing = self.clients.read.list(Some(&folder));
        let mut purged = 0u64;
        // Due time of the oldest entry this pass leaves in the index.
        let mut oldest_left = u64::MAX;
        let mut handled = 0usize;
        let mut last_name: Option<String> = None;
        let mut done = false;
        while !done {
            let mut chunk: Vec<(expiry::Entry, Path)> = Vec::new();
            while chunk.len() < 4 * FETCH_CONCURRENCY {
                let meta = match listing.next().await {
                    None => {
                        done = true;
                        break;
                    }
                    Some(Ok(meta)) => meta,
                    Some(Err(e)) => return Err(self.fail("list", &folder, e)),
                };
                let Some(name) = meta.location.filename().map(str::to_string) else {
                    continue;
                };
                if let Some(prev) = &last_name
                    && name <= *prev
                {
                    return Err(self.corrupt(
                        &folder,
                        format!("listing is not in name order ({name} after {prev}); purge needs name-ordered listings"),
                    ));
                }
                last_name = Some(name.clone());
                let Some(entry) = expiry::Entry::parse(&name) else {
                    continue;
                };
                if entry.due > now || handled >= PURGE_MAX_ENTRIES {
                    oldest_left = oldest_left.min(entry.due);
                    done = true;
                    break;
                }
                handled += 1;
                chunk.push((entry, meta.location));
            }
            if chunk.is_empty() {
                break;
            }
            if !self.lease.valid().await
                && !self
                    .lease
                    .acquire(&self.clients.read, &self.clients.write)
                    .await
                    .map_err(|e| self.fail("put", self.lease.path(), e))?
            {
                // Lost the lease mid-pass: whoever holds it carries on.
                tracing::info!(provider = self.provider, "purge lease lost during a pass");
                return Ok(purged);
            }
            let outcomes: Vec<(expiry::Entry, StorageResult<Handled>)> =
                futures::stream::iter(chunk)
                    .map(|(entry, path)| async move {
                        let outcome = self.purge_entry(&entry, &path, now).await;
                        let outcome = match outcome {
                            Ok(Handled::Done { purged }) => {
                                match self.clients.write.delete(&path).await {
                                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                                        Ok(Handled::Done { purged })
                                    }
                                    Err(e) => Err(self.fail("delete", &path, e)),
                                }
                            }
                            other => other,
                        };
                        (entry, outcome)
                    })
                    .buffer_unordered(FETCH_CONCURRENCY)
                    .collect()
                    .await;
            let mut first_error = None;
            for (entry, outcome) in outcomes {
                match outcome {
                    Ok(Handled::Done { purged: true }) => purged += 1,
                    Ok(Handled::Done { purged: false }) => {}
                    Ok(Handled::Keep) => oldest_left = oldest_left.min(entry.due),
                    Err(StorageError::Corrupt { path, reason }) => {
                        // One bad object must not stop the purge of others.
                        oldest_left = oldest_left.min(entry.due);
                        tracing::warn!(provider = self.provider, %path, %reason, "purge skipped an unreadable key object");
                    }
                    Err(e) => {
                        oldest_left = oldest_left.min(entry.due);
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        drop(listing);
        // Every intent has an index entry due TXN_TIMEOUT_MS after its
        // batch started, deleted only once the intent is settled: no entry
        // due before `oldest_left` is left, so no unsettled intent names a
        // transaction that finished before this bound (with a margin for
        // the clocks of writers and of the store).
        let settled_before = oldest_left.saturating_sub(TXN_TIMEOUT_MS + CLOCK_MARGIN_MS);
        self.purge_txns(now, settled_before).await?;
        Ok(purged)
    }

    /// The key object name an index entry is about.
    async fn entry_key_name(
        &self,
        entry: &expiry::Entry,
        path: &Path,
    ) -> StorageResult<Option<String>> {
        if let Some(name) = &entry.key_name {
            return Ok(Some(name.clone()));
        }
        let bytes = match self.clients.read.get(path).await {
            Ok(result) => match result.bytes().await {
                Ok(bytes) => bytes,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.fail("get", path, e)),
            },
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail("get", path, e)),
        };
        match String::from_utf8(bytes.to_vec()) {
            Ok(name) if parse_name(&name).is_some() => Ok(Some(name)),
            _ => Err(self.corrupt(path, "index entry body is not a key object name".into())),
        }
    }

    /// Handles one due index entry: `Done` when the entry can go (the work
    /// is done, or the key was rewritten since and its newer record has
    /// entries of its own), `Keep` when it must be looked at again.
    async fn purge_entry(
        &self,
        entry: &expiry::Entry,
        path: &Path,
        now: u64,
    ) -> StorageResult<Handled> {
        let done = Handled::Done { purged: false };
        let Some(name) = self.entry_key_name(entry, path).await? else {
            return Ok(done);
        };
        let key_path = self.layout.keys().clone().join(name);
        let Some(current) = self.read_path(&key_path, None).await? else {
            return Ok(done);
        };
        let record = &current.record;
        let this_cell = record.cell.version == entry.version;
        match entry.kind {
            expiry::Kind::Expiry => {
                if !(this_cell && record.cell.live) {
                    return Ok(done);
                }
                if record.intent.is_some() {
                    // The intent's own entry settles it first.
                    return Ok(Handled::Keep);
                }
                if record.cell.visible(now) {
                    return Ok(done);
                }
                // Conditional on the object we read: a concurrent rewrite wins.
                let mut tombstone = record.clone();
                tombstone.cell = Cell::tombstone(record.cell.version);
                tombstone.written_at = now;
                match self
                    .put_record(&key_path, &tombstone, put_mode(Some(&current.version)))
                    .await
                {
                    Ok(_) => Ok(Handled::Done { purged: true }),
                    Err(e) if is_race(&e) => Ok(Handled::Keep),
                    Err(e) => Err(self.fail("put", &key_path, e)),
                }
            }
            expiry::Kind::Tombstone => {
                if !this_cell || record.cell.live {
                    return Ok(done);
                }
                if record.intent.is_some()
                    || record.written_at.saturating_add(self.tombstone_grace_ms()) >= now
                {
                    return Ok(Handled::Keep);
                }
                // object_store has no conditional delete: re-check just before.
                match self.clients.read.head(&key_path).await {
                    Ok(meta) if same_version(&update_version(&meta), &current.version) => {
                        match self.clients.write.delete(&key_path).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(done),
                            Err(e) => Err(self.fail("delete", &key_path, e)),
                        }
                    }
                    Ok(_) => Ok(Handled::Keep),
                    Err(object_store::Error::NotFound { .. }) => Ok(done),
                    Err(e) => Err(self.fail("head", &key_path, e)),
                }
            }
            expiry::Kind::Intent => {
                let Some(intent) = record
                    .intent
                    .as_ref()
                    .filter(|i| i.cell.version == entry.version)
                else {
                    return Ok(done);
                };
                let view = self.txn_view_aborting_stale(&intent.txn).await?;
                let cell = match view {
                    TxnView::Committed => intent.cell.clone(),
                    TxnView::Aborted | TxnView::Missing => record.cell.clone(),
                    TxnView::Pending { .. } => return Ok(Handled::Keep),
                };
                let mut settled = record.clone();
                settled.cell = cell;
                settled.intent = None;
                match self
                    .put_record(&key_path, &settled, put_mode(Some(&current.version)))
                    .await
                {
                    Ok(_) => Ok(done),
                    Err(e) if is_race(&e) => Ok(Handled::Keep),
                    Err(e) => Err(self.fail("put", &key_path, e)),
                }
            }
        }
    }
}
