//! The commit protocol (DESIGN.md, "Commit protocol"): group commit, and
//! one commit of a group.
//!
//! **Group commit.** `Db::write` queues its batch, then takes the writer
//! mutex. Whoever holds it drains the queue (up to `max_group_commit_bytes` bytes
//! of keys and values, at least one batch) into one commit, with one
//! `fdatasync` in `PerCommit` mode, and records the result for every batch
//! it took; a thread that gets the mutex and finds its own batch already
//! committed returns at once. So writers queued behind a commit in flight
//! share the next one. Each batch stays atomic; merged batches become
//! visible together.
//!
//! **One commit.** The group is applied to a write transaction on top of the
//! latest version; the new nodes and overflow runs go to free pages or the
//! end of the file. `PerCommit`: the pages and then the meta record (into
//! the slot not holding the durable commit) are written and one
//! `fdatasync` covers both; recovery trusts a meta record only if its whole
//! tree verifies, so no barrier is needed between them. Deferred modes:
//! only overflow runs are written; the nodes stay dirty in memory
//! (`durability`). Then the new version is published.
//!
//! An error while applying the group (a page that fails its checksum, say)
//! or a failed `pwrite` in `PerCommit` mode aborts the commit: the pages it
//! took are given back, the durable slot is untouched, nothing visible
//! changed, and the handle stays usable. A failed `fdatasync`, and in the
//! deferred modes any failed write, is fatal (`durability`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::batch::{Op, WriteBatch};
use crate::error::{Error, Result};
use crate::meta::META_LEN;
use crate::page::Page;
use crate::store::{Store, Version, meta_offset};
use crate::write::WriteTxn;

use super::{Alloc, Inner, WriterState};

/// Where the leader of a group commit puts a batch's result.
type Slot = Arc<Mutex<Option<Result<()>>>>;

/// A batch waiting in the queue for a group commit.
pub(super) struct Pending {
    batch: WriteBatch,
    slot: Slot,
}

impl Inner {
    /// Queues `batch` and returns its commit's result, leading group commits
    /// (of whatever is queued, this batch included) while it is not done.
    pub(super) fn submit(&self, batch: WriteBatch) -> Result<()> {
        let slot: Slot = Arc::new(Mutex::new(None));
        self.queue.lock().push_back(Pending {
            batch,
            slot: slot.clone(),
        });
        let mut w = self.writer.lock();
        loop {
            if let Some(r) = slot.lock().take() {
                return r;
            }
            let mut group = self.take_group();
            if group.is_empty() {
                return Err(Error::InvalidArgument(
                    "unreachable: own batch neither queued nor committed".into(),
                ));
            }
            let r = self.commit(&mut w, &mut group);
            for p in &group {
                *p.slot.lock() = Some(match &r {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.duplicate()),
                });
            }
        }
    }

    /// One group: the queued batches in order, as long as their keys and
    /// values total at most `max_group_commit_bytes` bytes, but at least one.
    fn take_group(&self) -> Vec<Pending> {
        let mut q = self.queue.lock();
        let mut bytes = 0u64;
        let mut g = Vec::new();
        while let Some(front) = q.front() {
            if !g.is_empty() && bytes + front.batch.bytes > self.opts.max_group_commit_bytes {
                break;
            }
            bytes += front.batch.bytes;
            if let Some(p) = q.pop_front() {
                g.push(p);
            }
        }
        g
    }

    /// Commits the batches of `group` (their operations are moved out).
    fn commit(&self, w: &mut WriterState, group: &mut [Pending]) -> Result<()> {
        if let Some(e) = self.fatal_error(w) {
            return Err(e);
        }
        self.reclaim(w);
        let deferred = self.deferred();
        if deferred {
            // Bound file growth (freed pages waiting for a sync) and memory
            // (dirty nodes) before this commit adds to them.
            if w.reclaim_due() {
                self.sync_locked(w)?;
                self.reclaim(w);
            } else if w.dirty_bytes >= self.dirty_limit() {
                self.spill(w)?;
            }
            // Overflow runs are written during the commit, possibly to pages
            // a background write still covers (recycled since): let that
            // write finish first.
            let quarter = w.store.page_size / 4;
            let may_overflow = group.iter().any(|p| {
                p.batch
                    .ops
                    .iter()
                    .any(|op| matches!(op, Op::Put(_, v) if v.len() > quarter))
            });
            if may_overflow {
                self.join_in_flight(w)?;
            }
        }
        let cur = self.current.read().clone();
        let store = w.store.clone();
        let (meta, writes, freed) = {
            let alloc = Alloc::new(&mut w.free, &mut w.page_count);
            let mut t = WriteTxn::new(
                &store,
                &cur.meta,
                self.opts.max_keys_per_node,
                self.opts.compression,
                alloc,
                &mut w.scratch,
            );
            let applied: Result<()> = (|| {
                for p in group.iter_mut() {
                    for op in std::mem::take(&mut p.batch.ops) {
                        match op {
                            Op::Put(k, v) => t.put(k, v)?,
                            Op::Delete(k) => {
                                t.delete(&k)?;
                            }
                        }
                    }
                }
                Ok(())
            })();
            if let Err(e) = applied {
                t.abort().undo();
                return Err(e);
            }
            let (mut meta, writes, freed, alloc) = match t.finish() {
                Ok(f) => f,
                Err((e, alloc)) => {
                    alloc.undo();
                    return Err(e);
                }
            };
            meta.page_count = *alloc.page_count;
            let written = if deferred {
                // Only overflow runs go to the file now (values can be large;
                // nothing refers to them until the tree is written).
                write_pages(
                    &store,
                    writes
                        .iter()
                        .filter(|(_, img)| img[4] == crate::page::KIND_OVERFLOW)
                        .map(|(p, img)| (*p, img.as_slice())),
                )
            } else {
                let slot = 1 - w.durable_slot;
                write_pages(&store, writes.iter().map(|(p, img)| (*p, img.as_slice()))).and_then(
                    |()| {
                        store
                            .file
                            .write_all_at(&meta.encode(), meta_offset(slot))
                            .map_err(|e| {
                                Error::io(format!("write meta slot {slot}"), &self.path, e)
                            })
                    },
                )
            };
            if let Err(e) = written {
                // Nothing visible changed: the pages written were free and
                // the durable meta slot was not touched.
                alloc.undo();
                if deferred {
                    // Same rule as a failed write of dirty nodes.
                    return Err(self.poison(w, e.to_string()));
                }
                return Err(e);
            }
            (meta, writes, freed)
        };
        if !deferred {
            self.fsync(w, "fdatasync of commit")?;
            w.durable_txn = meta.txn;
            w.durable_slot = 1 - w.durable_slot;
        }
        let ps = store.page_size;
        for (p, img) in writes {
            let is_node = img[4] != crate::page::KIND_OVERFLOW;
            if deferred {
                for q in p..p + (img.len() / ps) as u64 {
                    w.unsynced.insert(q);
                }
                if is_node {
                    let node = Arc::new(Page::trusted(img));
                    w.dirty_bytes += node.len_bytes();
                    store.cache.insert_pinned(p, node.clone());
                    w.dirty.insert(p, node);
                } else {
                    self.written.fetch_add(img.len() as u64, Ordering::Relaxed);
                }
            } else {
                self.written.fetch_add(img.len() as u64, Ordering::Relaxed);
                if is_node {
                    store.cache.insert(p, Arc::new(Page::trusted(img)));
                }
            }
        }
        if !deferred {
            self.written.fetch_add(META_LEN as u64, Ordering::Relaxed);
        }
        let new = Arc::new(Version::new(store.clone(), meta, self.released.clone()));
        self.pinned_pages
            .fetch_add(freed.len() as u64, Ordering::Relaxed);
        cur.link(new.clone(), freed);
        *self.current.write() = new;
        drop(cur);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes page images (sorted by page), coalescing contiguous runs into
/// one `pwrite` of at most 4 MiB.
pub(super) fn write_pages<'a>(
    store: &Store,
    writes: impl Iterator<Item = (u64, &'a [u8])>,
) -> Result<()> {
    const MAX_RUN: usize = 4 << 20;
    let ps = store.page_size as u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut run: Option<(u64, u64, &[u8])> = None; // start, end, single image
    let flush = |run: Option<(u64, u64, &[u8])>, buf: &mut Vec<u8>| -> Result<()> {
        let Some((start, end, single)) = run else {
            return Ok(());
        };
        let bytes = if buf.is_empty() {
            single
        } else {
            buf.as_slice()
        };
        store
            .file
            .write_all_at(bytes, store.offset(start))
            .map_err(|e| Error::io(format!("write pages {start}..{end}"), &store.path, e))?;
        buf.clear();
        Ok(())
    };
    for (page, img) in writes {
        let n = img.len() as u64 / ps;
        match &mut run {
            Some((start, end, single))
                if *end == page && ((*end - *start) * ps) as usize + img.len() <= MAX_RUN =>
            {
                if buf.is_empty() {
                    buf.extend_from_slice(single);
                }
                buf.extend_from_slice(img);
                *end += n;
            }
            _ => {
                flush(run.take(), &mut buf)?;
                run = Some((page, page + n, img));
            }
        }
    }
    flush(run, &mut buf)
}
