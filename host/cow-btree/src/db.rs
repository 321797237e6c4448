//! [`Db`]: the public surface of the engine (opening, reads, writes, sync,
//! compaction, statistics) and the state its parts share.
//!
//! Guarantees: `write` is atomic per batch; with [`SyncMode::PerCommit`] it
//! returns only after the `fdatasync` that makes it durable, and concurrent
//! writers queued behind a commit in flight are merged into the next commit
//! and share its `fdatasync`. Readers take a snapshot (one `Arc` clone under
//! a read lock held for nanoseconds) and never wait for the writer. A failed
//! `fdatasync` poisons the handle: every later write returns
//! [`Error::Fatal`]; reopening recovers the last durable commit.
//!
//! The machinery lives in submodules, one concept each:
//! * `commit`: group commit and the commit of one group;
//! * `durability`: `fdatasync` and the fatal rule, the deferred modes' dirty
//!   nodes and their write-out, durable points, the periodic syncer;
//! * `free_space`: page allocation and when freed pages become reusable;
//! * `compaction`: rewriting the live tree into a new, dense file.
//!
//! Opening a file (initialising it or choosing the meta slot to trust) is
//! `crate::recovery`'s.

mod commit;
mod compaction;
mod durability;
mod free_space;

pub(crate) use free_space::Alloc;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::{Op, WriteBatch};
use crate::error::{Error, Result};
use crate::io::{FileSystem, StdFs};
use crate::options::{Options, SyncMode};
use crate::page::Page;
use crate::recovery::{self, Opened};
use crate::snapshot::{RangeIter, Snapshot};
use crate::store::{META_AREA, Released, Store, Version};
use crate::write::Scratch;

use commit::Pending;
use durability::{BuildPageHasher, InFlight};
use free_space::PageBits;

/// Name of the page file inside the database directory.
pub const FILE_NAME: &str = "data.cow";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 1 << 20;
/// Longest value accepted.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// Counters and sizes, for health pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Length of the file on disk.
    pub file_bytes: u64,
    /// Bytes of the file in use (meta area plus allocated pages).
    pub used_bytes: u64,
    /// Page size of the file.
    pub page_size: usize,
    /// Pages in the used area that are free for reuse now.
    pub free_pages: u64,
    /// Freed pages still reserved for a reader or an unsynced commit.
    pub reserved_pages: u64,
    /// Keys in the latest commit.
    pub entries: u64,
    /// Latest commit number.
    pub txn: u64,
    /// Latest commit known durable.
    pub durable_txn: u64,
    /// Commits since open.
    pub commits: u64,
    /// `fdatasync` calls since open.
    pub fsyncs: u64,
    /// Bytes of nodes in the page cache (dirty nodes included).
    pub cache_bytes: u64,
    /// Bytes of nodes of non-durable commits held only in memory.
    pub dirty_bytes: u64,
    /// Bytes of page images written to the file since open (nodes, overflow
    /// runs and meta records).
    pub written_bytes: u64,
}

/// Everything the single writer owns, behind `Inner::writer`.
struct WriterState {
    store: Arc<Store>,
    /// Pages free for reuse now (`free_space`).
    free: BTreeSet<u64>,
    /// Pages of the durable tree freed by a commit that is not yet durable
    /// (`free_space`); all become reusable at the next durable point.
    waiting: Vec<u64>,
    /// Pages `[0, page_count)` are the used area.
    page_count: u64,
    /// The latest durable commit and the meta slot holding it.
    durable_txn: u64,
    durable_slot: usize,
    /// Set when the handle is poisoned (`durability`): why.
    fatal: Option<String>,
    /// Deferred modes: nodes of commits not written to the file yet, by
    /// first page (each also pinned in the page cache, where readers find
    /// it) (`durability`).
    dirty: HashMap<u64, Arc<Page>, BuildPageHasher>,
    dirty_bytes: usize,
    /// Deferred modes: pages allocated since the last durable commit. The
    /// durable tree does not use them, so once freed and out of every
    /// reader's sight they are reusable at once, without a sync.
    unsynced: PageBits,
    /// Node vectors reused from one write transaction to the next.
    scratch: Scratch,
    /// Dirty nodes being written by a background thread (memory pressure).
    in_flight: Option<InFlight>,
}

/// The state a `Db` shares with its syncer thread.
struct Inner {
    dir: PathBuf,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    opts: Options,
    current: RwLock<Arc<Version>>,
    writer: Mutex<WriterState>,
    queue: Mutex<VecDeque<Pending>>,
    released: Released,
    next_store_id: AtomicU64,
    commits: AtomicU64,
    fsyncs: AtomicU64,
    written: AtomicU64,
    /// Freed pages linked to a version some reader may still hold.
    pinned_pages: AtomicU64,
    shutdown: Mutex<bool>,
    wake: Condvar,
}

/// A database: one directory holding one page file. `Send + Sync`; share it
/// through an `Arc`.
pub struct Db {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Rejects options the engine cannot work with.
fn validate(opts: &Options) -> Result<()> {
    if !opts.page_size.is_power_of_two() || !(1024..=65536).contains(&opts.page_size) {
        return Err(Error::InvalidArgument(format!(
            "page_size {} is not a power of two between 1024 and 65536",
            opts.page_size
        )));
    }
    if opts.max_keys_per_node < 4 {
        return Err(Error::InvalidArgument(format!(
            "max_keys_per_node {} is below 4",
            opts.max_keys_per_node
        )));
    }
    if let SyncMode::Periodic(d) = opts.sync
        && d.is_zero()
    {
        return Err(Error::InvalidArgument(
            "periodic sync interval of zero".into(),
        ));
    }
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database in directory `path`; recovers
    /// the last commit whose pages all verify.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_with(path.as_ref(), options, Arc::new(StdFs))
    }

    pub(crate) fn open_with(dir: &Path, opts: Options, fs: Arc<dyn FileSystem>) -> Result<Db> {
        validate(&opts)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let path = dir.join(FILE_NAME);
        compaction::remove_unfinished(dir)?;
        let file = fs
            .open(&path, true)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let released: Released = Arc::new(Mutex::new(Vec::new()));
        let Opened {
            store,
            meta,
            slot,
            free,
        } = if len == 0 {
            recovery::create(file, dir, &path, &opts, fs.as_ref())?
        } else {
            recovery::open(file, len, dir, &path, &opts, fs.as_ref())?
        };
        let store = Arc::new(store);
        let version = Arc::new(Version::new(store.clone(), meta, released.clone()));
        tracing::info!(path = %path.display(), txn = meta.txn, keys = meta.entries, pages = meta.page_count, "opened cow-btree");
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            path,
            fs,
            opts: opts.clone(),
            current: RwLock::new(version),
            writer: Mutex::new(WriterState {
                store,
                free,
                waiting: Vec::new(),
                page_count: meta.page_count,
                durable_txn: meta.txn,
                durable_slot: slot,
                fatal: None,
                dirty: HashMap::default(),
                dirty_bytes: 0,
                unsynced: PageBits::default(),
                scratch: Scratch::default(),
                in_flight: None,
            }),
            queue: Mutex::new(VecDeque::new()),
            released,
            next_store_id: AtomicU64::new(2),
            commits: AtomicU64::new(0),
            fsyncs: AtomicU64::new(1),
            written: AtomicU64::new(0),
            pinned_pages: AtomicU64::new(0),
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
        });
        let syncer = durability::spawn_syncer(&inner, dir)?;
        Ok(Db { inner, syncer })
    }

    /// The value of `key` in the latest commit.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snapshot().get(key)
    }

    /// Looks `key` up in the latest commit; if present, its value replaces
    /// the contents of `out` (reusing its allocation) and the result is
    /// `true`.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        self.snapshot().get_into(key, out)
    }

    /// A consistent view of the latest commit; it keeps the pages it can see
    /// from being reused until dropped.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.inner.current.read().clone(),
        }
    }

    /// Entries of the latest commit in `(lower, upper)`, in key order.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> RangeIter {
        self.snapshot().range(lower, upper)
    }

    /// Applies `batch` atomically; returns once durable as [`SyncMode`] says.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        for op in &batch.ops {
            let (k, v) = match op {
                Op::Put(k, v) => (k, Some(v)),
                Op::Delete(k) => (k, None),
            };
            if k.len() > MAX_KEY_LEN {
                return Err(Error::InvalidArgument(format!(
                    "key of {} bytes exceeds {MAX_KEY_LEN}",
                    k.len()
                )));
            }
            if let Some(v) = v
                && v.len() > MAX_VALUE_LEN
            {
                return Err(Error::InvalidArgument(format!(
                    "value of {} bytes exceeds {MAX_VALUE_LEN}",
                    v.len()
                )));
            }
        }
        self.inner.submit(batch)
    }

    /// Makes every commit so far durable (one `fdatasync`, if any is pending).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_now()
    }

    /// Rewrites the live tree, densely packed, into a new file that replaces
    /// the old one (atomic rename), so the file shrinks to what it holds.
    /// Writers wait meanwhile; readers do not (old snapshots keep reading
    /// the old, unlinked file).
    pub fn compact(&self) -> Result<()> {
        self.inner.compact()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let w = inner.writer.lock();
        let cur = inner.current.read().clone();
        let reserved = w.waiting_pages() as u64 + inner.pinned_pages.load(Ordering::Relaxed);
        Stats {
            file_bytes: w.store.file.len().unwrap_or(0),
            used_bytes: META_AREA + (w.page_count - 2) * w.store.page_size as u64,
            page_size: w.store.page_size,
            free_pages: w.free.len() as u64,
            reserved_pages: reserved,
            entries: cur.meta.entries,
            txn: cur.meta.txn,
            durable_txn: w.durable_txn,
            commits: inner.commits.load(Ordering::Relaxed),
            fsyncs: inner.fsyncs.load(Ordering::Relaxed),
            cache_bytes: w.store.cache.bytes() as u64,
            dirty_bytes: w.dirty_bytes as u64,
            written_bytes: inner.written.load(Ordering::Relaxed),
        }
    }

    /// The page file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

#[cfg(test)]
impl Db {
    /// Tests: `(oldest commit among the dirty nodes kept in memory, newest
    /// among those a background write covers)`.
    pub(crate) fn dirty_ages(&self) -> (Option<u64>, Option<u64>) {
        self.inner.dirty_ages()
    }

    /// Tests: gives the handle up the way a crash would (no final sync),
    /// once the background write of dirty nodes, if one runs, has finished.
    /// A crashed process's threads die with it; a leaked handle's writer
    /// thread would go on writing into pages the next handle reuses, and
    /// the next handle would read them as corrupt.
    pub(crate) fn simulate_crash(self) {
        self.inner.wait_in_flight();
        std::mem::forget(self);
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        *self.inner.shutdown.lock() = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        if self.inner.writer.lock().fatal.is_none()
            && let Err(e) = self.inner.sync_now()
        {
            tracing::error!(error = %e, "fdatasync on close failed");
        }
    }
}
