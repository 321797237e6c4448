//! Free-space management: which pages a commit may write to, and when a
//! page freed by a commit may be used again (DESIGN.md, "Free-space
//! management").
//!
//! The free set lives in memory only; `recovery` rebuilds it at open as the
//! pages below `page_count` that the recovered tree does not reach, so it
//! can never disagree with the tree. A page freed by commit *t* is reusable
//! once (1) no snapshot older than *t* exists (the version chain of
//! `store.rs` hands it back through `Inner::released`) and (2) commit *t* is
//! durable, or the page was allocated after the last durable commit (the
//! durable tree, which a crash would recover, does not use it). Pages for
//! which (1) holds but not (2) are pages of the durable tree; they wait in
//! `WriterState::waiting` and all become reusable at the next durable point
//! (which makes the latest commit, hence every commit that freed them,
//! durable). So the waiting pages never exceed the durable tree: between
//! durable points the used area holds at most the durable tree, the latest
//! one and what snapshots pin. In the deferred modes a durable point is
//! forced only when the waiting pages reach half the used area (the file
//! has about doubled) and at least [`RECLAIM_SYNC_PAGES`]: each forced
//! `fdatasync` makes the kernel write back, and so count again, every page
//! the following commits dirty, where between syncs it writes a page
//! rewritten many times once.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::{Inner, WriterState};

/// In the deferred modes a durable point is forced once the freed pages
/// waiting for one are at least this many and at least half the used area.
pub(super) const RECLAIM_SYNC_PAGES: usize = 4096;

/// A set of page numbers as a bitmap: the deferred modes' "unsynced" pages,
/// allocated since the last durable commit.
#[derive(Default)]
pub(super) struct PageBits(Vec<u64>);

impl PageBits {
    pub(super) fn insert(&mut self, p: u64) {
        let w = (p / 64) as usize;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (p % 64);
    }
    /// Removes `p`; whether it was there.
    pub(super) fn remove(&mut self, p: u64) -> bool {
        match self.0.get_mut((p / 64) as usize) {
            Some(w) => {
                let bit = 1 << (p % 64);
                let was = *w & bit != 0;
                *w &= !bit;
                was
            }
            None => false,
        }
    }
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// Page allocation for one commit, undoable if the commit fails.
pub(crate) struct Alloc<'a> {
    pub(crate) free: &'a mut BTreeSet<u64>,
    pub(crate) page_count: &'a mut u64,
    start_count: u64,
    taken: Vec<u64>,
}

impl<'a> Alloc<'a> {
    pub(crate) fn new(free: &'a mut BTreeSet<u64>, page_count: &'a mut u64) -> Self {
        let start_count = *page_count;
        Alloc {
            free,
            page_count,
            start_count,
            taken: Vec::new(),
        }
    }
    /// Takes `n` contiguous pages: a single page lowest-first from the free
    /// set, a multi-page run from the end of the used area.
    pub(crate) fn alloc(&mut self, n: usize) -> u64 {
        if n == 1
            && let Some(p) = self.free.pop_first()
        {
            self.taken.push(p);
            return p;
        }
        let p = *self.page_count;
        *self.page_count += n as u64;
        p
    }
    /// Gives back everything this commit took (after a failed write).
    pub(crate) fn undo(self) {
        for p in self.taken {
            self.free.insert(p);
        }
        *self.page_count = self.start_count;
    }
}

impl WriterState {
    /// Freed pages waiting for their commit to become durable.
    pub(super) fn waiting_pages(&self) -> usize {
        self.waiting.len()
    }

    /// Deferred modes: whether so many freed pages of the durable tree wait
    /// that a durable point is due before the next commit (the file has
    /// about doubled since the last one).
    pub(super) fn reclaim_due(&self) -> bool {
        let waiting = self.waiting.len();
        waiting >= RECLAIM_SYNC_PAGES && waiting as u64 * 2 >= self.page_count
    }
}

impl Inner {
    /// Moves pages no reader can see any more into the free set: at once
    /// for pages allocated since the last durable commit (the durable tree
    /// does not use them; a dirty one is simply forgotten, never written),
    /// else once the commit that freed them is durable.
    pub(super) fn reclaim(&self, w: &mut WriterState) {
        let released = std::mem::take(&mut *self.released.lock());
        for (store_id, txn, pages) in released {
            self.pinned_pages
                .fetch_sub(pages.len() as u64, Ordering::Relaxed);
            if store_id != w.store.id {
                continue;
            }
            for p in pages {
                if w.unsynced.remove(p) {
                    let dirty = w.dirty.remove(&p);
                    if let Some(node) = &dirty {
                        w.dirty_bytes -= node.len_bytes();
                    }
                    let cached = w.store.cache.remove(p);
                    // No reader sees the node now: keep its buffer.
                    for node in [dirty, cached].into_iter().flatten() {
                        w.store.cache.recycle(node);
                    }
                    w.free.insert(p);
                } else if txn <= w.durable_txn {
                    w.store.cache.remove(p);
                    w.free.insert(p);
                } else {
                    w.waiting.push(p);
                }
            }
        }
        // Every waiting page was freed by a commit no later than the latest;
        // once that is durable (`durability::sync_locked` records it), they
        // are all reusable.
        if w.durable_txn >= self.current.read().meta.txn && !w.waiting.is_empty() {
            let WriterState {
                waiting,
                free,
                store,
                ..
            } = w;
            for p in waiting.drain(..) {
                store.cache.remove(p);
                free.insert(p);
            }
        }
        while let Some(&last) = w.free.last() {
            if last + 1 != w.page_count {
                break;
            }
            w.free.pop_last();
            w.page_count -= 1;
        }
    }
}
