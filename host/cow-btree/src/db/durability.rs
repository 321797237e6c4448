//! Durability: when commits reach the disk, and what a failure to get them
//! there means (DESIGN.md, "Commit protocol" and "Deferred writes").
//!
//! * `fdatasync` goes through [`Inner::fsync`]; a failure poisons the
//!   handle ([`Inner::poison`]): every later write returns `Error::Fatal`
//!   and the sync is never retried, because the kernel may have dropped the
//!   dirty pages. Reopening recovers the last commit that verifies.
//! * In the deferred modes (`Periodic`, `None`) a commit's tree nodes stay
//!   in memory, pinned in the page cache ("dirty"), until a write-out:
//!   under memory pressure a background thread writes them ([`Inner::spill`],
//!   joined by [`Inner::join_in_flight`] before any later write could touch
//!   the same pages), and at a durable point ([`Inner::sync_locked`]: `sync`,
//!   the periodic thread, close, or too many freed pages waiting) they are
//!   written followed by the meta record and one `fdatasync`. In these modes
//!   any failed write is fatal too.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::meta::{META_LEN, Meta};
use crate::options::SyncMode;
use crate::page::Page;
use crate::store::meta_offset;

use super::commit::write_pages;
use super::{Inner, WriterState};

/// A background write of dirty nodes. Its nodes stay pinned in the cache
/// until it is joined; it is always joined before the next write of dirty
/// nodes, before a commit that may write an overflow run, before a meta
/// record is written, and before compaction, so a page it writes cannot be
/// written again (with newer content) before it.
pub(super) struct InFlight {
    handle: JoinHandle<std::result::Result<(), String>>,
    nodes: Arc<Vec<(u64, Arc<Page>)>>,
    bytes: usize,
}

/// Hasher for page numbers (dense integers; no need for SipHash).
#[derive(Default, Clone, Copy)]
pub(super) struct PageHasher(u64);

impl std::hash::Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Hasher of the dirty-node map (`WriterState::dirty`), keyed by page.
pub(super) type BuildPageHasher = std::hash::BuildHasherDefault<PageHasher>;

/// Starts the `Periodic(period)` thread: a durable point every `period`
/// until the `Db` is dropped. `None` in the other modes.
pub(super) fn spawn_syncer(inner: &Arc<Inner>, dir: &Path) -> Result<Option<JoinHandle<()>>> {
    let SyncMode::Periodic(period) = inner.opts.sync else {
        return Ok(None);
    };
    let inner = inner.clone();
    let handle = std::thread::Builder::new()
        .name("cow-btree-sync".into())
        .spawn(move || {
            loop {
                {
                    let mut stop = inner.shutdown.lock();
                    if *stop {
                        break;
                    }
                    inner.wake.wait_for(&mut stop, period);
                    if *stop {
                        break;
                    }
                }
                if let Err(e) = inner.sync_now() {
                    tracing::error!(error = %e, "periodic fdatasync failed");
                }
            }
        })
        .map_err(|e| Error::io("spawn sync thread", dir, e))?;
    Ok(Some(handle))
}

impl Inner {
    /// The `Error::Fatal` to return if the handle is poisoned.
    pub(super) fn fatal_error(&self, w: &WriterState) -> Option<Error> {
        w.fatal.as_ref().map(|reason| Error::Fatal {
            path: self.path.clone(),
            reason: reason.clone(),
        })
    }

    /// Whether commits are kept in memory until a sync (`Periodic`, `None`).
    pub(super) fn deferred(&self) -> bool {
        self.opts.sync != SyncMode::PerCommit
    }

    /// Most bytes of dirty nodes held in memory before they are written.
    pub(super) fn dirty_limit(&self) -> usize {
        self.opts.dirty_limit.min(self.opts.cache_size / 2)
    }

    /// Marks the handle unusable for writes and returns the error to report.
    pub(super) fn poison(&self, w: &mut WriterState, reason: String) -> Error {
        tracing::error!(path = %self.path.display(), %reason, "write or fdatasync failed; refusing further writes");
        w.fatal = Some(reason.clone());
        Error::Fatal {
            path: self.path.clone(),
            reason,
        }
    }

    /// One `fdatasync` of the page file; a failure poisons the handle.
    pub(super) fn fsync(&self, w: &mut WriterState, what: &str) -> Result<()> {
        if let Err(e) = w.store.file.sync_data() {
            return Err(self.poison(w, format!("{what}: {e}")));
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A durable point: [`Inner::sync_locked`] under the writer lock.
    pub(super) fn sync_now(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.sync_locked(&mut w)
    }

    /// Writes the dirty nodes to the file (no `fdatasync`) and unpins them
    /// from the cache. A failure is fatal: the nodes stay pinned (readers
    /// still see them) but the handle accepts no more writes.
    pub(super) fn write_dirty(&self, w: &mut WriterState) -> Result<()> {
        if w.dirty.is_empty() {
            return Ok(());
        }
        let mut nodes: Vec<(u64, Arc<Page>)> =
            w.dirty.iter().map(|(&p, n)| (p, n.clone())).collect();
        nodes.sort_unstable_by_key(|(p, _)| *p);
        let store = w.store.clone();
        if let Err(e) = write_pages(&store, nodes.iter().map(|(p, n)| (*p, n.image()))) {
            return Err(self.poison(w, format!("writing non-durable commits: {e}")));
        }
        self.written
            .fetch_add(w.dirty_bytes as u64, Ordering::Relaxed);
        for (p, _) in &nodes {
            store.cache.unpin(*p);
        }
        w.dirty.clear();
        w.dirty_bytes = 0;
        Ok(())
    }

    /// Waits for the background write of dirty nodes, if any, and unpins
    /// them. Its failure is fatal (reported here, at the next write-out).
    pub(super) fn join_in_flight(&self, w: &mut WriterState) -> Result<()> {
        let Some(f) = w.in_flight.take() else {
            return Ok(());
        };
        let result = f
            .handle
            .join()
            .unwrap_or_else(|_| Err("background writer panicked".into()));
        if let Err(e) = result {
            // The nodes stay pinned: readers keep seeing them.
            return Err(self.poison(w, format!("writing non-durable commits: {e}")));
        }
        self.written.fetch_add(f.bytes as u64, Ordering::Relaxed);
        for (p, node) in f.nodes.iter() {
            w.store.cache.unpin_if(*p, node);
        }
        Ok(())
    }

    /// Tests: the oldest commit among the dirty nodes kept in memory and
    /// the newest among those the background write covers, if any.
    #[cfg(test)]
    pub(super) fn dirty_ages(&self) -> (Option<u64>, Option<u64>) {
        let w = self.writer.lock();
        let kept = w.dirty.values().map(|n| n.txn()).min();
        let written = w
            .in_flight
            .as_ref()
            .and_then(|f| f.nodes.iter().map(|(_, n)| n.txn()).max());
        (kept, written)
    }

    /// Tests: waits for the background write of dirty nodes, if one runs,
    /// without touching anything else (see `Db::simulate_crash`).
    #[cfg(test)]
    pub(super) fn wait_in_flight(&self) {
        if let Some(f) = self.writer.lock().in_flight.take() {
            let _ = f.handle.join();
        }
    }

    /// Memory pressure: hands the dirty nodes least recently changed (the
    /// oldest commit's first), down to half the dirty budget, to a
    /// background thread that writes them (no `fdatasync`), so the writer
    /// goes on with the next commit; the previous such write is joined
    /// first. The nodes changed most recently stay in memory: a node that
    /// commits keep changing (the upper branches, the leaves of hot keys) is
    /// rewritten there rather than written at every write-out.
    pub(super) fn spill(&self, w: &mut WriterState) -> Result<()> {
        self.join_in_flight(w)?;
        if w.dirty.is_empty() {
            return Ok(());
        }
        let keep = self.dirty_limit() / 2;
        let mut by_age: Vec<(u64, u64)> = w.dirty.iter().map(|(&p, n)| (n.txn(), p)).collect();
        by_age.sort_unstable();
        let mut nodes: Vec<(u64, Arc<Page>)> = Vec::new();
        let mut bytes = 0;
        for (_, p) in by_age {
            if w.dirty_bytes <= keep {
                break;
            }
            if let Some(node) = w.dirty.remove(&p) {
                w.dirty_bytes -= node.len_bytes();
                bytes += node.len_bytes();
                nodes.push((p, node));
            }
        }
        nodes.sort_unstable_by_key(|(p, _)| *p);
        let nodes = Arc::new(nodes);
        let (store, batch) = (w.store.clone(), nodes.clone());
        let spawned = std::thread::Builder::new()
            .name("cow-btree-spill".into())
            .spawn(move || {
                write_pages(&store, batch.iter().map(|(p, n)| (*p, n.image())))
                    .map_err(|e| e.to_string())
            });
        match spawned {
            Ok(handle) => {
                w.in_flight = Some(InFlight {
                    handle,
                    nodes,
                    bytes,
                });
                Ok(())
            }
            Err(_) => {
                // No thread: write them here.
                for (p, n) in nodes.iter() {
                    w.dirty.insert(*p, n.clone());
                }
                w.dirty_bytes += bytes;
                self.write_dirty(w)
            }
        }
    }

    /// Makes the latest commit durable. Deferred modes: writes the dirty
    /// nodes, then the meta record into the slot not holding the durable
    /// commit, then one `fdatasync`. Any failure is fatal.
    pub(super) fn sync_locked(&self, w: &mut WriterState) -> Result<()> {
        if let Some(e) = self.fatal_error(w) {
            return Err(e);
        }
        self.join_in_flight(w)?;
        let cur = self.current.read().clone();
        if w.durable_txn >= cur.meta.txn {
            return Ok(());
        }
        // Forget dirty nodes no reader can see before writing the rest.
        self.reclaim(w);
        self.write_dirty(w)?;
        let slot = 1 - w.durable_slot;
        let meta = Meta {
            page_count: w.page_count.max(cur.meta.page_count),
            ..cur.meta
        };
        if let Err(e) = w.store.file.write_all_at(&meta.encode(), meta_offset(slot)) {
            return Err(self.poison(w, format!("write meta slot {slot}: {e}")));
        }
        self.written.fetch_add(META_LEN as u64, Ordering::Relaxed);
        self.fsync(w, "fdatasync")?;
        w.durable_txn = meta.txn;
        w.durable_slot = slot;
        w.unsynced.clear();
        Ok(())
    }
}
