//! [`Db`]: opening, the single writer with group commit, durability modes,
//! snapshots, compaction and statistics.
//!
//! Guarantees: `write` is atomic per batch; with [`SyncMode::PerCommit`] it
//! returns only after the `fdatasync` that makes it durable, and concurrent
//! writers queued behind a commit in flight are merged into the next commit
//! and share its `fdatasync`. Readers take a snapshot (one `Arc` clone under
//! a read lock held for nanoseconds) and never wait for the writer. A failed
//! `fdatasync` poisons the handle: every later write returns
//! [`Error::Fatal`]; reopening recovers the last durable commit.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::{Op, WriteBatch};
use crate::cache::PageCache;
use crate::error::{Error, Result};
use crate::io::{FileSystem, PageFile, StdFs};
use crate::meta::{META_LEN, Meta};
use crate::options::{Options, SyncMode};
use crate::page::{
    BRANCH_BASE, HEADER, Page, Val, ValueRef, branch_entry_len, encode_branch, encode_leaf,
    encode_overflow, leaf_entry_len,
};
use crate::recovery;
use crate::snapshot::{RangeIter, Snapshot};
use crate::store::{META_AREA, Released, Store, Version, meta_offset};
use crate::write::{Alloc, Scratch, WriteTxn};

/// Name of the page file inside the database directory.
pub const FILE_NAME: &str = "data.cow";
const COMPACT_NAME: &str = "data.cow.compact";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 1 << 20;
/// Longest value accepted.
pub const MAX_VALUE_LEN: usize = 1 << 30;
/// In the non-per-commit modes, an `fdatasync` is forced once this many freed
/// pages wait for durability before they can be reused (bounds file growth).
const RECLAIM_SYNC_PAGES: usize = 4096;

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

struct WriterState {
    store: Arc<Store>,
    free: BTreeSet<u64>,
    /// Pages freed by a commit that is not yet durable: (txn, pages).
    waiting: Vec<(u64, Vec<u64>)>,
    page_count: u64,
    durable_txn: u64,
    durable_slot: usize,
    fatal: Option<String>,
    /// Deferred modes: nodes of commits not written to the file yet, by
    /// first page (each also pinned in the page cache, where readers find
    /// it).
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

/// A background write of dirty nodes. Its nodes stay pinned in the cache
/// until it is joined; it is always joined before the next write of dirty
/// nodes, before a meta record is written, and before compaction, so a
/// page it writes cannot be written again (with newer content) before it.
struct InFlight {
    handle: JoinHandle<std::result::Result<(), String>>,
    nodes: Arc<Vec<(u64, Arc<Page>)>>,
    bytes: usize,
}

/// Hasher for page numbers (dense integers; no need for SipHash).
#[derive(Default, Clone, Copy)]
struct PageHasher(u64);

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

type BuildPageHasher = std::hash::BuildHasherDefault<PageHasher>;

/// A set of page numbers as a bitmap.
#[derive(Default)]
struct PageBits(Vec<u64>);

impl PageBits {
    fn insert(&mut self, p: u64) {
        let w = (p / 64) as usize;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (p % 64);
    }
    /// Removes `p`; whether it was there.
    fn remove(&mut self, p: u64) -> bool {
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
    fn clear(&mut self) {
        self.0.clear();
    }
}

type Slot = Arc<Mutex<Option<Result<()>>>>;

struct Pending {
    batch: WriteBatch,
    slot: Slot,
}

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
        let leftover = dir.join(COMPACT_NAME);
        match std::fs::remove_file(&leftover) {
            Ok(()) => {
                tracing::info!(path = %leftover.display(), "removed an unfinished compaction")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove unfinished compaction", &leftover, e)),
        }
        let file = fs
            .open(&path, true)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let released: Released = Arc::new(Mutex::new(Vec::new()));
        let (store, meta, slot, free) = if len == 0 {
            Self::init(file, dir, &path, &opts, fs.as_ref())?
        } else {
            Self::recover(file, len, dir, &path, &opts, fs.as_ref())?
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
        let syncer = match opts.sync {
            SyncMode::Periodic(period) => {
                let inner = inner.clone();
                Some(
                    std::thread::Builder::new()
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
                        .map_err(|e| Error::io("spawn sync thread", dir, e))?,
                )
            }
            _ => None,
        };
        Ok(Db { inner, syncer })
    }

    fn init(
        file: Box<dyn PageFile>,
        dir: &Path,
        path: &Path,
        opts: &Options,
        fs: &dyn FileSystem,
    ) -> Result<(Store, Meta, usize, BTreeSet<u64>)> {
        let meta = Meta {
            page_size: opts.page_size as u32,
            txn: 0,
            root: 0,
            root_crc: 0,
            page_count: 2,
            entries: 0,
        };
        let mut area = vec![0u8; META_AREA as usize];
        area[..META_LEN].copy_from_slice(&meta.encode());
        file.write_all_at(&area, 0)
            .map_err(|e| Error::io("write meta area", path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync new file", path, e))?;
        fs.sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
        let store = Store {
            file,
            path: path.to_path_buf(),
            page_size: opts.page_size,
            cache: PageCache::new(opts.cache_size, opts.page_size),
            id: 1,
        };
        Ok((store, meta, 0, BTreeSet::new()))
    }

    fn recover(
        file: Box<dyn PageFile>,
        len: u64,
        dir: &Path,
        path: &Path,
        opts: &Options,
        fs: &dyn FileSystem,
    ) -> Result<(Store, Meta, usize, BTreeSet<u64>)> {
        let mut area = vec![0u8; META_AREA as usize];
        let n = len.min(META_AREA) as usize;
        file.read_exact_at(&mut area[..n], 0)
            .map_err(|e| Error::io("read meta area", path, e))?;
        let slots = [
            Meta::decode(&area[meta_offset(0) as usize..]),
            Meta::decode(&area[meta_offset(1) as usize..]),
        ];
        let mut candidates: Vec<(usize, Meta)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().ok().map(|m| (i, *m)))
            .collect();
        if candidates.is_empty() {
            if len <= META_AREA {
                tracing::warn!(path = %path.display(), "file shorter than its meta area with no valid meta: creation was interrupted; initialising");
                return Self::init(file, dir, path, opts, fs);
            }
            let why = |i: usize| slots[i].as_ref().err().cloned().unwrap_or_default();
            return Err(Error::corrupt(
                path,
                Some(0),
                format!(
                    "neither meta slot is valid (slot 0: {}; slot 1: {})",
                    why(0),
                    why(1)
                ),
            ));
        }
        candidates.sort_by_key(|(_, m)| std::cmp::Reverse(m.txn));
        let page_size = candidates[0].1.page_size as usize;
        let store = Store {
            file,
            path: path.to_path_buf(),
            page_size,
            cache: PageCache::new(opts.cache_size, page_size),
            id: 1,
        };
        let mut first_err = None;
        for (slot, meta) in candidates {
            if meta.page_size as usize != page_size {
                continue;
            }
            match recovery::verify(&store, &meta) {
                Ok(walk) => {
                    if let Some(e) = &first_err {
                        tracing::warn!(path = %path.display(), txn = meta.txn, error = %e,
                            "newest commit did not verify (torn by a crash?); recovered the previous one");
                    }
                    let free: BTreeSet<u64> = (2..meta.page_count)
                        .filter(|&p| !walk.reachable[p as usize])
                        .collect();
                    // Make the recovered state durable before reusing any page.
                    store
                        .file
                        .sync_data()
                        .map_err(|e| Error::io("fdatasync after recovery", path, e))?;
                    return Ok((store, meta, slot, free));
                }
                Err(e @ Error::Corrupt { .. }) => {
                    store.cache.clear();
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.unwrap_or_else(|| {
            Error::corrupt(path, Some(0), "meta slots disagree on the page size")
        }))
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
        let inner = &self.inner;
        let slot: Slot = Arc::new(Mutex::new(None));
        inner.queue.lock().push_back(Pending {
            batch,
            slot: slot.clone(),
        });
        let mut w = inner.writer.lock();
        loop {
            if let Some(r) = slot.lock().take() {
                return r;
            }
            // Lead one group commit: everything queued, up to wal_buffer_size.
            let mut group: Vec<Pending> = {
                let mut q = inner.queue.lock();
                let mut bytes = 0u64;
                let mut g = Vec::new();
                while let Some(front) = q.front() {
                    if !g.is_empty() && bytes + front.batch.bytes > inner.opts.wal_buffer_size {
                        break;
                    }
                    bytes += front.batch.bytes;
                    if let Some(p) = q.pop_front() {
                        g.push(p);
                    }
                }
                g
            };
            if group.is_empty() {
                return Err(Error::InvalidArgument(
                    "unreachable: own batch neither queued nor committed".into(),
                ));
            }
            let r = inner.commit(&mut w, &mut group);
            for p in &group {
                *p.slot.lock() = Some(match &r {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.duplicate()),
                });
            }
        }
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
        let reserved = w.waiting.iter().map(|(_, p)| p.len()).sum::<usize>() as u64
            + inner.pinned_pages.load(Ordering::Relaxed);
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

impl Inner {
    fn fatal_error(&self, w: &WriterState) -> Option<Error> {
        w.fatal.as_ref().map(|reason| Error::Fatal {
            path: self.path.clone(),
            reason: reason.clone(),
        })
    }

    /// Whether commits are kept in memory until a sync (`Periodic`, `None`).
    fn deferred(&self) -> bool {
        self.opts.sync != SyncMode::PerCommit
    }

    /// Most bytes of dirty nodes held in memory before they are written.
    fn dirty_limit(&self) -> usize {
        self.opts.dirty_limit.min(self.opts.cache_size / 2)
    }

    /// Moves pages no reader can see any more into the free set: at once
    /// for pages allocated since the last durable commit (the durable tree
    /// does not use them; a dirty one is simply forgotten, never written),
    /// else once the commit that freed them is durable.
    fn reclaim(&self, w: &mut WriterState) {
        let released = std::mem::take(&mut *self.released.lock());
        for (store_id, txn, pages) in released {
            self.pinned_pages
                .fetch_sub(pages.len() as u64, Ordering::Relaxed);
            if store_id != w.store.id {
                continue;
            }
            let mut wait = Vec::new();
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
                } else {
                    wait.push(p);
                }
            }
            if !wait.is_empty() {
                w.waiting.push((txn, wait));
            }
        }
        let durable = w.durable_txn;
        let WriterState {
            waiting,
            free,
            store,
            ..
        } = w;
        waiting.retain(|(txn, pages)| {
            if *txn <= durable {
                for &p in pages {
                    store.cache.remove(p);
                    free.insert(p);
                }
                false
            } else {
                true
            }
        });
        while let Some(&last) = w.free.last() {
            if last + 1 != w.page_count {
                break;
            }
            w.free.pop_last();
            w.page_count -= 1;
        }
    }

    /// Marks the handle unusable for writes and returns the error to report.
    fn poison(&self, w: &mut WriterState, reason: String) -> Error {
        tracing::error!(path = %self.path.display(), %reason, "write or fdatasync failed; refusing further writes");
        w.fatal = Some(reason.clone());
        Error::Fatal {
            path: self.path.clone(),
            reason,
        }
    }

    fn fsync(&self, w: &mut WriterState, what: &str) -> Result<()> {
        if let Err(e) = w.store.file.sync_data() {
            return Err(self.poison(w, format!("{what}: {e}")));
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync_now(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.sync_locked(&mut w)
    }

    /// Writes the dirty nodes to the file (no `fdatasync`) and unpins them
    /// from the cache. A failure is fatal: the nodes stay pinned (readers
    /// still see them) but the handle accepts no more writes.
    fn write_dirty(&self, w: &mut WriterState) -> Result<()> {
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
    fn join_in_flight(&self, w: &mut WriterState) -> Result<()> {
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

    /// Memory pressure: hands the dirty nodes to a background thread that
    /// writes them (no `fdatasync`), so the writer goes on with the next
    /// commit; the previous such write is joined first.
    fn spill(&self, w: &mut WriterState) -> Result<()> {
        self.join_in_flight(w)?;
        if w.dirty.is_empty() {
            return Ok(());
        }
        let mut nodes: Vec<(u64, Arc<Page>)> = w.dirty.drain().collect();
        nodes.sort_unstable_by_key(|(p, _)| *p);
        let nodes = Arc::new(nodes);
        let bytes = std::mem::take(&mut w.dirty_bytes);
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
                w.dirty_bytes = bytes;
                self.write_dirty(w)
            }
        }
    }

    /// Makes the latest commit durable. Deferred modes: writes the dirty
    /// nodes, then the meta record into the slot not holding the durable
    /// commit, then one `fdatasync`. Any failure is fatal.
    fn sync_locked(&self, w: &mut WriterState) -> Result<()> {
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
            let waiting: usize = w.waiting.iter().map(|(_, p)| p.len()).sum();
            if waiting >= RECLAIM_SYNC_PAGES {
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

    fn compact(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.sync_locked(&mut w)?;
        let cur = self.current.read().clone();
        let tmp = self.dir.join(COMPACT_NAME);
        let file = self
            .fs
            .open(&tmp, true)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let built = (|| -> Result<(Store, Meta)> {
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &tmp, e))?;
            let store = Store {
                file,
                path: self.path.clone(),
                page_size: cur.store.page_size,
                cache: PageCache::new(self.opts.cache_size, cur.store.page_size),
                id: self.next_store_id.fetch_add(1, Ordering::Relaxed),
            };
            let meta = bulk_copy(&cur, &store, self.opts.max_keys_per_node as usize)?;
            let mut area = vec![0u8; META_AREA as usize];
            area[..META_LEN].copy_from_slice(&meta.encode());
            store
                .file
                .write_all_at(&area, 0)
                .map_err(|e| Error::io("write meta area", &tmp, e))?;
            store
                .file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &tmp, e))?;
            Ok((store, meta))
        })();
        let (store, meta) = match built {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.fs.rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("rename compacted file", &self.path, e));
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            // Whether the rename is durable is now unknown; later commits
            // could vanish with it. Same rule as a failed fdatasync.
            w.fatal = Some(format!("fsync of directory after compaction: {e}"));
            return Err(self
                .fatal_error(&w)
                .unwrap_or_else(|| Error::io("fsync directory", &self.dir, e)));
        }
        let before = w.page_count;
        let store = Arc::new(store);
        let new = Arc::new(Version::new(store.clone(), meta, self.released.clone()));
        cur.link(new.clone(), Vec::new());
        *self.current.write() = new;
        w.store = store;
        w.free.clear();
        w.waiting.clear();
        w.page_count = meta.page_count;
        w.durable_txn = meta.txn;
        w.durable_slot = 0;
        w.unsynced.clear();
        tracing::info!(path = %self.path.display(), pages_before = before, pages_after = meta.page_count, "compacted");
        Ok(())
    }
}

/// Writes page images (sorted by page), coalescing contiguous runs into
/// one `pwrite` of at most 4 MiB.
fn write_pages<'a>(store: &Store, writes: impl Iterator<Item = (u64, &'a [u8])>) -> Result<()> {
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

/// Sequential writer of page images into a fresh file.
struct Appender<'a> {
    store: &'a Store,
    next: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl Appender<'_> {
    fn push(&mut self, img: Vec<u8>) -> Result<(u64, u32)> {
        let page = self.next;
        self.next += (img.len() / self.store.page_size) as u64;
        let crc = u32::from_le_bytes([img[0], img[1], img[2], img[3]]);
        self.buf.extend_from_slice(&img);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok((page, crc))
    }
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.store
                .file
                .write_all_at(&self.buf, self.store.offset(self.buf_start))
                .map_err(|e| Error::io("write compacted pages", &self.store.path, e))?;
            self.buf.clear();
        }
        self.buf_start = self.next;
        Ok(())
    }
}

fn view(entries: &[(Vec<u8>, Val)]) -> Vec<(&[u8], ValueRef<'_>)> {
    entries
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_ref()))
        .collect()
}

/// Copies the tree of `from` into the empty `to`, leaves packed full.
fn bulk_copy(from: &Version, to: &Store, max_keys: usize) -> Result<Meta> {
    let ps = to.page_size;
    let txn = from.meta.txn + 1;
    let mut out = Appender {
        store: to,
        next: 2,
        buf: Vec::new(),
        buf_start: 2,
    };
    let mut level: Vec<(Vec<u8>, u64, u32)> = Vec::new();
    let mut leaf: Vec<(Vec<u8>, Val)> = Vec::new();
    let mut leaf_bytes = HEADER;
    // Depth-first walk of the old tree, leaves in key order.
    if from.meta.root != 0 {
        let mut stack = vec![(from.meta.root, from.meta.root_crc)];
        while let Some((page, crc)) = stack.pop() {
            let node = from.store.node(page, crc)?;
            if node.is_branch() {
                for i in (0..=node.count()).rev() {
                    stack.push(node.branch_child(i));
                }
                continue;
            }
            for i in 0..node.count() {
                let key = node.leaf_key(i).to_vec();
                let v = node.leaf_value(i);
                let val = match v {
                    ValueRef::Inline { .. } => Val::from_ref(v),
                    ValueRef::Overflow {
                        stored_len,
                        raw_len,
                        compressed,
                        ..
                    } => {
                        let data = from.store.stored_value(v)?;
                        let (p, c) = out.push(encode_overflow(&data, txn, ps))?;
                        Val::Overflow {
                            page: p,
                            crc: c,
                            stored_len,
                            raw_len,
                            compressed,
                        }
                    }
                };
                let size = leaf_entry_len(&key, &val);
                if !leaf.is_empty() && (leaf_bytes + size > ps || leaf.len() >= max_keys) {
                    let first = leaf[0].0.clone();
                    let (p, c) = out.push(encode_leaf(&view(&leaf)[..], txn, ps))?;
                    level.push((first, p, c));
                    leaf.clear();
                    leaf_bytes = HEADER;
                }
                leaf_bytes += size;
                leaf.push((key, val));
            }
        }
    }
    if !leaf.is_empty() {
        let first = leaf[0].0.clone();
        let (p, c) = out.push(encode_leaf(&view(&leaf)[..], txn, ps))?;
        level.push((first, p, c));
    }
    while level.len() > 1 {
        let mut next_level = Vec::new();
        let mut group: Vec<(Vec<u8>, u64, u32)> = Vec::new();
        let mut bytes = BRANCH_BASE;
        let emit = |group: &mut Vec<(Vec<u8>, u64, u32)>,
                    out: &mut Appender<'_>,
                    next_level: &mut Vec<(Vec<u8>, u64, u32)>|
         -> Result<()> {
            let keys: Vec<Vec<u8>> = group[1..].iter().map(|(k, _, _)| k.clone()).collect();
            let children: Vec<(u64, u32)> = group.iter().map(|(_, p, c)| (*p, *c)).collect();
            let (p, c) = out.push(encode_branch(&keys, &children, txn, ps))?;
            next_level.push((group[0].0.clone(), p, c));
            group.clear();
            Ok(())
        };
        for entry in level {
            let size = branch_entry_len(&entry.0);
            if group.len() >= 2 && (bytes + size > ps || group.len() > max_keys) {
                emit(&mut group, &mut out, &mut next_level)?;
                bytes = BRANCH_BASE;
            }
            bytes += size;
            group.push(entry);
        }
        if !group.is_empty() {
            emit(&mut group, &mut out, &mut next_level)?;
        }
        level = next_level;
    }
    out.flush()?;
    let (root, root_crc) = level.first().map(|(_, p, c)| (*p, *c)).unwrap_or((0, 0));
    Ok(Meta {
        page_size: ps as u32,
        txn,
        root,
        root_crc,
        page_count: out.next,
        entries: from.meta.entries,
    })
}
