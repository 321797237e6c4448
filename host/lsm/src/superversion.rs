//! The super version: what a reader needs (the memtables and the table version), and how it is
//! published to readers without a memory location that every reader writes.
//!
//! Writers (a memtable switch, a flush, a compaction) replace it under one lock. Readers used
//! to take that lock's read side and clone the `Arc` on every `get`: four atomic writes to two
//! cache lines shared by every reading thread, which is what kept two reader threads from
//! scaling. Now the current super version is also published in [`SLOTS`] padded slots, each
//! holding its own `Arc` (so its own reference count); a thread always reads the same slot,
//! assigned round-robin, so concurrent readers mostly write only to lines of their own. A
//! replacement writes every slot under that slot's write lock before it returns.
//!
//! Consistency with the published sequence number (see `Inner::read_view`) is unchanged: the
//! reader loads the sequence number while holding its slot's read lock, and a writer that
//! switches the memtable replaces every slot before any write can go into the new memtable,
//! so a write the reader's sequence number covers is always inside the super version it got.

use crate::memtable::Memtable;
use crate::padded::Padded;
use crate::version::Version;
use parking_lot::RwLock;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Slots readers are spread over (a power of two; more than the cores of the machines this
/// runs on is cheap: a replacement costs one small allocation per slot).
pub(crate) const SLOTS: usize = 16;

/// What a reader needs: the memtables and the table version, swapped atomically.
pub(crate) struct SuperVersion {
    pub mem: Arc<Memtable>,
    /// Immutable memtables, newest first.
    pub imms: Vec<Arc<Memtable>>,
    pub version: Arc<Version>,
}

type SlotRef = Arc<Padded<Arc<SuperVersion>>>;

/// A reader's hold on a super version (through its slot's reference count).
#[derive(Clone)]
pub(crate) struct View(SlotRef);

impl View {
    /// The super version itself, for a holder that outlives many replacements (an iterator).
    pub fn shared(&self) -> Arc<SuperVersion> {
        Arc::clone(&self.0)
    }
}

impl Deref for View {
    type Target = SuperVersion;
    fn deref(&self) -> &SuperVersion {
        &self.0
    }
}

/// The current super version.
pub(crate) struct Current {
    /// The authoritative copy; its write lock serializes replacements.
    current: RwLock<Arc<SuperVersion>>,
    slots: Box<[Padded<RwLock<SlotRef>>]>,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
}

impl Current {
    pub fn new(sv: SuperVersion) -> Current {
        let sv = Arc::new(sv);
        Current {
            slots: (0..SLOTS)
                .map(|_| Padded(RwLock::new(Arc::new(Padded(sv.clone())))))
                .collect(),
            current: RwLock::new(sv),
        }
    }

    /// The current super version (for background work and stats; not the hot read path).
    pub fn get(&self) -> Arc<SuperVersion> {
        self.current.read().clone()
    }

    /// Replaces the super version with `f(current)` and publishes it to every slot before
    /// returning.
    pub fn replace(&self, f: impl FnOnce(&SuperVersion) -> SuperVersion) {
        let mut cur = self.current.write();
        let next = Arc::new(f(&cur));
        for slot in self.slots.iter() {
            let fresh = Arc::new(Padded(next.clone()));
            let old = std::mem::replace(&mut *slot.write(), fresh);
            drop(old); // outside the slot lock: it may be the last reference to a table
        }
        *cur = next;
    }

    /// The super version and `seq` loaded while it is current (see the module comment).
    pub fn read_view(&self, seq: &AtomicU64) -> (View, u64) {
        let i = MY_SLOT.with(|i| *i);
        let g = self.slots[i].read();
        let s = seq.load(Ordering::Acquire);
        (View(g.clone()), s)
    }
}
