//! The database: write path (log, group commit, memtables), read path, background flush and
//! compaction threads. Opening a directory is `recovery`'s job; `Inner::open` builds the
//! running state on what it returns.
//!
//! Guarantees (proven by the tests under `tests/`):
//! * a batch is applied atomically: it is one log record and becomes visible all at once;
//! * under `SyncMode::PerCommit`, `write` returns only after its log record is fsynced; writers
//!   that arrive while an fsync runs share the next one (group commit), and the writer that
//!   leads an fsync first gives the writers already inside `write` a bounded moment to reach
//!   the log (see [`Inner::gather`]);
//! * a failed log write or fsync (or a failed flush) puts the engine in the `Fatal` state:
//!   later writes are refused, reads keep working, and a reopen recovers every acknowledged write;
//! * sequence numbers never go backwards across restarts.

use crate::batch::{self, WriteBatch};
use crate::cache::BlockCache;
use crate::compaction;
use crate::error::{Error, Result};
use crate::filenames::{parse_name, wal_name};
use crate::flush::{build_options, write_memtable};
use crate::framing::encode_record;
use crate::fs::{FileLock, FileSystem, WritableFile};
use crate::iter::{InternalIter, MemIter, MergeIter, RangeIter};
use crate::memtable::{Lookup, Memtable};
use crate::options::{Options, SyncMode};
use crate::padded::Padded;
use crate::recovery::{self, Recovered};
use crate::superversion::{Current, SuperVersion, View};
use crate::version::{NUM_LEVELS, TableFile, Version, VersionEdit};
use parking_lot::{Condvar, Mutex};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// Under `SyncMode::None` and `Periodic`, log records are buffered in the process up to this
/// many bytes (or [`WAL_BUFFER_AGE`]) before they are handed to the OS.
pub const WAL_BUFFER: usize = 64 << 10;
/// Under `SyncMode::PerCommit` the log is zero-filled this far ahead of its records, so the
/// fsync of a commit writes data blocks only (an append that grows the file makes every
/// `fdatasync` commit the file size to the file system's journal as well).
const WAL_ZERO_AHEAD: u64 = 1 << 20;
/// Longest time the leader of a group fsync waits for `PerCommit` writers that are on their
/// way to the log (it also waits at most half of the last fsync's duration).
const GATHER_MAX: Duration = Duration::from_micros(1000);
/// Pause in writes after which idle maintenance (flush + level-0 compaction) runs.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// Longest time a buffered log record waits before it is handed to the OS.
pub const WAL_BUFFER_AGE: Duration = Duration::from_millis(100);

/// Counts a `PerCommit` writer inside [`Inner::write`] for [`Inner::gather`].
struct CommitWriter<'a>(&'a AtomicUsize);

impl<'a> CommitWriter<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        CommitWriter(count)
    }
}

impl Drop for CommitWriter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// State guarded by the commit lock.
struct CommitState {
    wal: Arc<dyn WritableFile>,
    wal_number: u64,
    wal_path: PathBuf,
    /// Encoded records not yet handed to the OS.
    buf: Vec<u8>,
    /// Logical log position (bytes over all logs of this process) of the start of `wal`.
    base: u64,
    /// Bytes handed to the OS in `wal`.
    written: u64,
    /// `wal` is zero-filled up to here (0: not zero-filled; see [`WAL_ZERO_AHEAD`]).
    zeroed: u64,
    /// Whether to zero-fill (`SyncMode::PerCommit`).
    zero_fill: bool,
    last_seq: u64,
    mem: Arc<Memtable>,
    scratch: Vec<u8>,
}

impl CommitState {
    fn end(&self) -> u64 {
        self.base + self.written + self.buf.len() as u64
    }
    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.written + self.buf.len() as u64;
        if self.zero_fill && end > self.zeroed {
            let zeroed = end.next_multiple_of(WAL_ZERO_AHEAD) + WAL_ZERO_AHEAD;
            self.wal
                .zero_fill_to(zeroed)
                .map_err(|e| Error::io("zero-fill log", &self.wal_path, e))?;
            self.zeroed = zeroed;
        }
        self.wal
            .append(&self.buf)
            .map_err(|e| Error::io("write log", &self.wal_path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

struct SyncState {
    syncing: bool,
    /// Writers parked until the running fsync ends, with the log position each needs. The
    /// leader unparks them all when it ends; each checks [`Inner::synced`] without taking this
    /// mutex, so they wake in parallel (a condition variable would requeue them onto the mutex
    /// and wake them one after another: a convoy that made the next group start half empty).
    waiters: Vec<(u64, Thread)>,
}

pub(crate) struct VersionSet {
    pub current: Arc<Version>,
    manifest: Arc<dyn WritableFile>,
    manifest_path: PathBuf,
    /// Round-robin compaction cursor per level (user key of the last compacted file's end).
    pub cursors: Vec<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_bytes_read: AtomicU64,
    pub compaction_bytes_written: AtomicU64,
    pub flush_bytes_written: AtomicU64,
    pub stall_micros: AtomicU64,
    pub slowdown_micros: AtomicU64,
}

pub(crate) struct Inner {
    /// The directory lock (`recovery::lock`), released when the engine is dropped.
    _lock: Box<dyn FileLock>,
    pub dir: PathBuf,
    pub opts: Options,
    pub fs: Arc<dyn FileSystem>,
    pub cache: Arc<BlockCache>,
    commit: Mutex<CommitState>,
    sync: Mutex<SyncState>,
    /// The log is durable up to here. Advanced under the sync mutex (after `visible_seq`),
    /// read without it by writers checking their position.
    synced: Padded<AtomicU64>,
    /// Read by every lookup; on a line of its own, away from the commit state that every
    /// write changes.
    visible_seq: Padded<AtomicU64>,
    /// `PerCommit` writers inside [`Inner::write`], and the `PerCommit` records appended since
    /// the last fsync took its log position: what [`Inner::gather`] compares.
    commit_writers: Padded<AtomicUsize>,
    unsynced_records: Padded<AtomicUsize>,
    /// How long the last log fsync took, ns.
    last_sync_nanos: AtomicU64,
    sv: Current,
    pub versions: Mutex<VersionSet>,
    pub compaction_lock: Mutex<()>,
    next_file: AtomicU64,
    fatal: Mutex<Option<String>>,
    fatal_flag: AtomicBool,
    bg: Mutex<bool>,
    bg_cv: Condvar,
    stall_cv: Condvar,
    shutdown: AtomicBool,
    imm_count: AtomicU64,
    l0_count: AtomicU64,
    pub counters: Counters,
}

/// Counters and sizes for metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Bytes of all files in the database directory (tables, logs, manifest).
    pub disk_bytes: u64,
    /// Bytes of live tables.
    pub table_bytes: u64,
    /// Number of tables per level.
    pub tables_per_level: Vec<usize>,
    /// Bytes held by memtables (active and immutable).
    pub memtable_bytes: u64,
    /// Immutable memtables waiting to be flushed.
    pub immutable_memtables: u64,
    /// Index and filter bytes pinned by open tables.
    pub pinned_bytes: u64,
    /// Bytes in the block cache.
    pub block_cache_bytes: u64,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    /// Batches written since open.
    pub writes: u64,
    /// Log fsyncs since open (fewer than PerCommit writes when group commit works).
    pub wal_syncs: u64,
    pub flushes: u64,
    pub compactions: u64,
    pub flush_bytes_written: u64,
    pub compaction_bytes_read: u64,
    pub compaction_bytes_written: u64,
    /// Time writers spent blocked (all memtables full or too many level-0 tables).
    pub stall_micros: u64,
    /// Time writers spent in graduated slowdown delays.
    pub slowdown_micros: u64,
    /// Newest sequence number visible to readers.
    pub last_sequence: u64,
}

/// What [`Db::try_write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryWrite {
    /// Applied, as durable as `Options::sync` promises (not `PerCommit`).
    Applied,
    /// Applied; durable and visible once [`Db::wait_durable`] of this log position returns.
    Pending(u64),
    /// Not applied: the write would have to wait (a stall or slowdown, a memtable switch).
    WouldBlock,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pressure {
    None,
    Slow(Duration),
    Stop,
}

/// An embedded LSM-tree key-value store. `Send + Sync`; share it through an `Arc`.
pub struct Db {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

/// A consistent read-only view at one sequence number.
pub struct Snapshot {
    sv: View,
    seq: u64,
}

/// The newest value of `key` at `seq`: `Ok(None)` when a cache-only lookup (`cache_only`) would
/// have to read a block from a file.
fn lookup_layers(
    sv: &SuperVersion,
    key: &[u8],
    seq: u64,
    cache_only: bool,
) -> Result<Option<Option<Vec<u8>>>> {
    let mut r = sv.mem.get(key, seq);
    if r == Lookup::Absent {
        for m in &sv.imms {
            r = m.get(key, seq);
            if r != Lookup::Absent {
                break;
            }
        }
    }
    if r == Lookup::Absent {
        r = sv.version.get(key, seq, cache_only)?;
    }
    Ok(match r {
        Lookup::Found(v) => Some(Some(v)),
        Lookup::Uncached => None,
        Lookup::Deleted | Lookup::Absent => Some(None),
    })
}

/// The newest value of `key` at `seq`, reading files where needed.
fn lookup(sv: &SuperVersion, key: &[u8], seq: u64) -> Result<Option<Vec<u8>>> {
    Ok(lookup_layers(sv, key, seq, false)?.flatten())
}

fn range_over(
    sv: Arc<SuperVersion>,
    seq: u64,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> RangeIter {
    let mut children: Vec<Box<dyn InternalIter>> = vec![Box::new(MemIter::new(sv.mem.clone()))];
    for m in &sv.imms {
        children.push(Box::new(MemIter::new(m.clone())));
    }
    let lo = match lower {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    let hi = match upper {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    children.extend(sv.version.iters(lo, hi));
    RangeIter::new(MergeIter::new(children), seq, lower, upper, Box::new(sv))
}

impl Snapshot {
    /// The value of `key` as of this snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        lookup(&self.sv, key, self.seq)
    }
    /// Live pairs in `[lower, upper]` in key order, as of this snapshot.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> RangeIter {
        range_over(self.sv.shared(), self.seq, lower, upper)
    }
    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`, replaying its write-ahead logs.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Db> {
        options.validate()?;
        let inner = Arc::new(Inner::open(dir.as_ref(), options)?);
        let mut threads = Vec::new();
        let spawn = |name: &str, f: fn(&Inner)| {
            let i = inner.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(&i))
                .map_err(|e| Error::io("spawn thread", &inner.dir, e))
        };
        threads.push(spawn("orbit-lsm-flush", Inner::flush_loop)?);
        threads.push(spawn("orbit-lsm-compact", Inner::compaction_loop)?);
        if let SyncMode::Periodic(_) = inner.opts.sync {
            threads.push(spawn("orbit-lsm-sync", Inner::periodic_sync_loop)?);
        }
        inner.wake_bg();
        Ok(Db { inner, threads })
    }

    /// The newest value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (sv, seq) = self.inner.read_view();
        lookup(&sv, key, seq)
    }

    /// [`Db::get`] from memory only: `Ok(None)` when the answer needs a block that is not in
    /// the block cache (the caller then reads on a thread that may block). Never touches a file,
    /// so an async task can call it in place.
    pub fn get_cached(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>> {
        let (sv, seq) = self.inner.read_view();
        lookup_layers(&sv, key, seq, true)
    }

    /// Applies `batch` atomically; returns once it is durable as `Options::sync` promises.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(&batch, self.inner.opts.sync)
    }

    /// Applies `batch` with a durability choice for this write only. `PerCommit` returns after
    /// the record is fsynced (sharing the fsync with concurrent writers); `None` and
    /// `Periodic` return once it is buffered (it becomes durable at the next fsync: the
    /// periodic one if the database was opened with `SyncMode::Periodic`, a later `PerCommit`
    /// write, `sync()`, or a memtable switch).
    pub fn write_with(&self, batch: WriteBatch, sync: SyncMode) -> Result<()> {
        self.inner.write(&batch, sync)
    }

    /// [`Db::write`] for a caller that must not block (an async task): applies `batch` unless
    /// that would wait for background work or a memtable switch ([`TryWrite::WouldBlock`]:
    /// use [`Db::write`] on a thread that may block). Under `SyncMode::PerCommit` the batch is
    /// neither durable nor visible until [`Db::wait_durable`] of the returned position.
    pub fn try_write(&self, batch: &WriteBatch) -> Result<TryWrite> {
        self.inner.try_write(batch)
    }

    /// Blocks until the log is durable up to `position` (from [`TryWrite::Pending`]), leading
    /// or joining a group fsync; the writes it covers become visible.
    pub fn wait_durable(&self, position: u64) -> Result<()> {
        self.inner.wait_durable(position, false)
    }

    /// Shorthand for a one-entry batch.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b)
    }

    /// Shorthand for a one-entry delete batch.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b)
    }

    /// A consistent view of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let (sv, seq) = self.inner.read_view();
        Snapshot { sv, seq }
    }

    /// Live pairs in the bounds, in key order, on a snapshot taken now. The iterator owns what
    /// it reads and may outlive this borrow.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> RangeIter {
        let s = self.snapshot();
        range_over(s.sv.shared(), s.seq, lower, upper)
    }

    /// Makes every write acknowledged so far durable.
    pub fn sync(&self) -> Result<()> {
        let target = self.inner.commit.lock().end();
        self.inner.wait_durable(target, true)
    }

    /// Switches the active memtable and waits until every memtable is flushed to a table.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_fatal()?;
        {
            let mut c = self.inner.commit.lock();
            if !c.mem.is_empty() {
                self.inner.rotate(&mut c)?;
            }
        }
        let mut g = self.inner.bg.lock();
        while self.inner.imm_count.load(Ordering::Acquire) > 0 {
            self.inner.check_fatal()?;
            self.inner
                .stall_cv
                .wait_for(&mut g, Duration::from_millis(20));
        }
        Ok(())
    }

    /// Flushes, then merges every table into the bottom level (dropping overwritten versions
    /// and tombstones). Useful before measuring space or after a bulk load.
    pub fn compact_all(&self) -> Result<()> {
        self.flush()?;
        compaction::compact_all(&self.inner)
    }

    /// Sizes and counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The directory this database lives in.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        self.inner.wake_bg();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Hand buffered log bytes to the OS so `SyncMode::None` writes survive a clean close.
        let mut c = self.inner.commit.lock();
        if !self.inner.fatal_flag.load(Ordering::SeqCst)
            && let Err(e) = c.flush_buf()
        {
            tracing::error!(error = %e, "could not write the log tail at close");
        }
    }
}

impl Inner {
    /// Recovers `dir` (see `recovery`) and sets up the engine state on top of it: the
    /// recovered tables as the current version, an empty memtable writing to the fresh log.
    fn open(dir: &Path, opts: Options) -> Result<Inner> {
        let Recovered {
            lock,
            cache,
            version,
            last_seq,
            next_file,
            wal,
            wal_number,
            wal_path,
            manifest,
            manifest_path,
        } = recovery::recover(dir, &opts)?;
        let mem = Arc::new(Memtable::new(wal_number));
        let l0 = version.levels[0].len() as u64;
        let version = Arc::new(version);
        Ok(Inner {
            _lock: lock,
            dir: dir.to_path_buf(),
            fs: opts.fs.clone(),
            cache,
            commit: Mutex::new(CommitState {
                wal,
                wal_number,
                wal_path,
                buf: Vec::with_capacity(1 << 16),
                base: 0,
                written: 0,
                zeroed: 0,
                zero_fill: opts.sync == SyncMode::PerCommit,
                last_seq,
                mem: mem.clone(),
                scratch: Vec::new(),
            }),
            sync: Mutex::new(SyncState {
                syncing: false,
                waiters: Vec::new(),
            }),
            synced: Padded(AtomicU64::new(0)),
            visible_seq: Padded(AtomicU64::new(last_seq)),
            commit_writers: Padded(AtomicUsize::new(0)),
            unsynced_records: Padded(AtomicUsize::new(0)),
            last_sync_nanos: AtomicU64::new(0),
            sv: Current::new(SuperVersion {
                mem,
                imms: Vec::new(),
                version: version.clone(),
            }),
            versions: Mutex::new(VersionSet {
                current: version,
                manifest,
                manifest_path,
                cursors: vec![Vec::new(); NUM_LEVELS],
            }),
            compaction_lock: Mutex::new(()),
            next_file: AtomicU64::new(next_file),
            fatal: Mutex::new(None),
            fatal_flag: AtomicBool::new(false),
            bg: Mutex::new(false),
            bg_cv: Condvar::new(),
            stall_cv: Condvar::new(),
            shutdown: AtomicBool::new(false),
            imm_count: AtomicU64::new(0),
            l0_count: AtomicU64::new(l0),
            counters: Counters::default(),
            opts,
        })
    }

    /// The super version and the published sequence number, read together.
    ///
    /// The sequence number is loaded while the super-version lock is held, so no memtable
    /// switch, flush or compaction can be installed in between: every write with a sequence
    /// <= `seq` is in this super version's memtables or tables. (Flush and compaction keep
    /// only the newest version of each key; a reader whose `seq` predated the super version
    /// could otherwise miss the version it should see.)
    fn read_view(&self) -> (View, u64) {
        self.sv.read_view(&self.visible_seq)
    }

    pub fn check_fatal(&self) -> Result<()> {
        if self.fatal_flag.load(Ordering::Acquire) {
            let why = self.fatal.lock().clone().unwrap_or_default();
            return Err(Error::Fatal(why));
        }
        Ok(())
    }

    /// Enters the fatal state (first cause wins) and returns the error to report.
    pub fn set_fatal(&self, e: Error) -> Error {
        let mut f = self.fatal.lock();
        if f.is_none() {
            tracing::error!(error = %e, "LSM engine entering fatal state; writes are refused from now on");
            *f = Some(e.to_string());
        }
        self.fatal_flag.store(true, Ordering::Release);
        drop(f);
        let waiters = std::mem::take(&mut self.sync.lock().waiters);
        for (_, t) in waiters {
            t.unpark();
        }
        self.stall_cv.notify_all();
        e
    }

    pub fn wake_bg(&self) {
        let mut g = self.bg.lock();
        *g = true;
        self.bg_cv.notify_all();
    }

    pub fn next_file_hint(&self) -> u64 {
        self.next_file.load(Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn alloc_file(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::SeqCst)
    }

    /// How far background work (flushes, level-0 compaction) is behind the writers.
    fn pressure(&self) -> Pressure {
        let max_imm = (self.opts.max_memtables as u64).saturating_sub(1).max(1);
        let slow_imm = (max_imm / 2).max(1);
        let t = self.opts.compaction_threshold as u64;
        let (l0_slow, l0_stop) = (3 * t, 5 * t);
        let compaction = self.opts.enable_compaction;
        let imms = self.imm_count.load(Ordering::Acquire);
        let l0 = self.l0_count.load(Ordering::Acquire);
        if imms >= max_imm || (compaction && l0 >= l0_stop) {
            return Pressure::Stop;
        }
        // Graduated delay: grows linearly from 0 to 1 ms across the slowdown zone.
        let mut frac: f64 = 0.0;
        if imms >= slow_imm && max_imm > slow_imm {
            frac = frac.max((imms - slow_imm + 1) as f64 / (max_imm - slow_imm + 1) as f64);
        }
        if compaction && l0 >= l0_slow {
            frac = frac.max((l0 - l0_slow + 1) as f64 / (l0_stop - l0_slow + 1) as f64);
        }
        if frac > 0.0 {
            Pressure::Slow(Duration::from_micros((1000.0 * frac) as u64))
        } else {
            Pressure::None
        }
    }

    /// Delays or blocks the writer while background work is behind.
    fn throttle(&self) -> Result<()> {
        let started = Instant::now();
        let mut stalled = false;
        loop {
            self.check_fatal()?;
            match self.pressure() {
                Pressure::Stop => {
                    stalled = true;
                    let mut g = self.bg.lock();
                    self.stall_cv.wait_for(&mut g, Duration::from_millis(10));
                    continue;
                }
                _ if stalled => {
                    self.counters
                        .stall_micros
                        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                Pressure::Slow(d) => {
                    std::thread::sleep(d);
                    self.counters
                        .slowdown_micros
                        .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
                }
                Pressure::None => {}
            }
            return Ok(());
        }
    }

    fn write(&self, batch: &WriteBatch, sync: SyncMode) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        Self::check_size(batch)?;
        self.check_fatal()?;
        let per_commit = sync == SyncMode::PerCommit;
        let _writer = per_commit.then(|| CommitWriter::enter(&self.commit_writers));
        self.throttle()?;
        let target = {
            let mut c = self.commit.lock();
            self.check_fatal()?;
            if c.mem.size() as u64 >= self.opts.memtable_size {
                self.rotate(&mut c)?;
            }
            self.append(&mut c, batch, per_commit)?
        };
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        if per_commit {
            self.wait_durable(target, false)?;
        }
        Ok(())
    }

    /// [`Inner::write`] that never blocks on the disk: refused with [`TryWrite::WouldBlock`]
    /// when the writer would be slowed or the memtable must be switched first, and with the
    /// fsync left to [`Inner::wait_durable`] under `PerCommit`.
    fn try_write(&self, batch: &WriteBatch) -> Result<TryWrite> {
        if batch.is_empty() {
            return Ok(TryWrite::Applied);
        }
        Self::check_size(batch)?;
        self.check_fatal()?;
        if self.pressure() != Pressure::None {
            return Ok(TryWrite::WouldBlock);
        }
        let per_commit = self.opts.sync == SyncMode::PerCommit;
        let target = {
            let mut c = self.commit.lock();
            self.check_fatal()?;
            if c.mem.size() as u64 >= self.opts.memtable_size {
                return Ok(TryWrite::WouldBlock);
            }
            self.append(&mut c, batch, per_commit)?
        };
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(if per_commit {
            TryWrite::Pending(target)
        } else {
            TryWrite::Applied
        })
    }

    /// A log record must stay readable by recovery, which caps record size.
    fn check_size(batch: &WriteBatch) -> Result<()> {
        if batch.size_bytes() + 12 > crate::framing::MAX_RECORD {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes exceeds the {}-byte log record limit",
                batch.size_bytes(),
                crate::framing::MAX_RECORD
            )));
        }
        Ok(())
    }

    /// Logs `batch` (buffered) and inserts it into the memtable; returns the log position
    /// that must be durable before the batch may be acknowledged. Unless `per_commit`, the
    /// batch is visible at once (and durable at the next fsync).
    fn append(&self, c: &mut CommitState, batch: &WriteBatch, per_commit: bool) -> Result<u64> {
        let first = c.last_seq + 1;
        let mut scratch = std::mem::take(&mut c.scratch);
        scratch.clear();
        batch.encode_payload(first, &mut scratch);
        encode_record(&mut c.buf, &scratch);
        c.scratch = scratch;
        let mut ins = c.mem.inserter();
        for (i, op) in batch::ops(&batch.rep).enumerate() {
            // The batch was built through `put`/`delete`, so it always decodes.
            if let Some(op) = op {
                ins.insert(op.key, first + i as u64, op.kind, op.value);
            }
        }
        drop(ins);
        c.last_seq += batch.count as u64;
        if per_commit {
            self.unsynced_records.fetch_add(1, Ordering::AcqRel);
        } else {
            if c.buf.len() >= WAL_BUFFER
                && let Err(e) = c.flush_buf()
            {
                return Err(self.set_fatal(e));
            }
            self.visible_seq.fetch_max(c.last_seq, Ordering::AcqRel);
        }
        Ok(c.end())
    }

    /// Waits until the log is durable up to `target`, leading an fsync if none is running.
    /// With `force`, an fsync that starts after the call must end first.
    fn wait_durable(&self, target: u64, force: bool) -> Result<()> {
        let mut forced = !force;
        loop {
            self.check_fatal()?;
            if forced && self.synced.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let mut s = self.sync.lock();
            if forced && self.synced.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            if s.syncing {
                s.waiters.push((target, std::thread::current()));
                drop(s);
                // Unparked when the running fsync ends (or the engine turns fatal); a
                // spurious return just goes round again.
                std::thread::park();
                continue;
            }
            s.syncing = true;
            drop(s);
            self.gather();
            let r = self.sync_once();
            let mut s = self.sync.lock();
            s.syncing = false;
            let waiters = std::mem::take(&mut s.waiters);
            let r = match r {
                Ok((pos, seq)) => {
                    // Visible before durable is published: a writer that sees its position
                    // durable (in the atomic, without this mutex) returns, and its caller
                    // must then read its own write.
                    self.visible_seq.fetch_max(seq, Ordering::AcqRel);
                    self.synced.fetch_max(pos, Ordering::AcqRel);
                    forced = true;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            drop(s);
            // A failed fsync is fatal before anyone wakes: no waiter may retry it.
            let r = r.map_err(|e| self.set_fatal(e));
            // Those whose position is now durable return; the others find no fsync
            // running and one of them leads the next (or find the engine fatal).
            for (_, t) in waiters {
                t.unpark();
            }
            r?;
        }
    }

    /// Group commit, before the leader's fsync: while fewer records wait for it than there
    /// are `PerCommit` writers inside `write`, some writer is on its way to the log (most
    /// often one the previous fsync just released, about to append its next record), so the
    /// leader yields the CPU to it instead of fsyncing without it and making it wait for a
    /// whole further fsync. With N writers and an fsync of T, N writes then share each fsync
    /// instead of two alternating halves of N/2. Bounded by half of the last fsync's
    /// duration and [`GATHER_MAX`]; a lone writer, and writes made through
    /// [`Inner::try_write`] (which never count as writers here), never wait.
    fn gather(&self) {
        if self.commit_writers.load(Ordering::Acquire) <= 1 {
            return;
        }
        let last = Duration::from_nanos(self.last_sync_nanos.load(Ordering::Relaxed));
        let bound = GATHER_MAX.min(last / 2);
        let start = Instant::now();
        while self.unsynced_records.load(Ordering::Acquire)
            < self.commit_writers.load(Ordering::Acquire)
            && start.elapsed() < bound
        {
            std::thread::yield_now();
        }
    }

    /// Hands buffered records to the OS and fsyncs the current log.
    fn sync_once(&self) -> Result<(u64, u64)> {
        let (wal, path, pos, seq) = {
            let mut c = self.commit.lock();
            c.flush_buf()?;
            self.unsynced_records.store(0, Ordering::Release);
            (c.wal.clone(), c.wal_path.clone(), c.end(), c.last_seq)
        };
        let started = Instant::now();
        wal.sync().map_err(|e| Error::io("fsync log", &path, e))?;
        self.last_sync_nanos
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        Ok((pos, seq))
    }

    /// Switches to a fresh memtable and log. Called with the commit lock held.
    fn rotate(&self, c: &mut CommitState) -> Result<()> {
        let r = (|| {
            c.flush_buf()?;
            c.wal
                .sync()
                .map_err(|e| Error::io("fsync log", &c.wal_path, e))?;
            let number = self.alloc_file();
            let path = self.dir.join(wal_name(number));
            let wal = self
                .fs
                .create(&path)
                .map_err(|e| Error::io("create log", &path, e))?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync directory", &self.dir, e))?;
            Ok((number, path, wal))
        })();
        let (number, path, wal) = match r {
            Ok(x) => x,
            Err(e) => return Err(self.set_fatal(e)),
        };
        self.unsynced_records.store(0, Ordering::Release);
        {
            let mut s = self.sync.lock();
            self.visible_seq.fetch_max(c.last_seq, Ordering::AcqRel);
            let synced = self
                .synced
                .fetch_max(c.end(), Ordering::AcqRel)
                .max(c.end());
            s.waiters.retain(|(target, t)| {
                let done = *target <= synced;
                if done {
                    t.unpark();
                }
                !done
            });
        }
        c.base = c.end();
        c.written = 0;
        c.zeroed = 0;
        c.wal = wal;
        c.wal_number = number;
        c.wal_path = path;
        let mem = Arc::new(Memtable::new(number));
        let old = std::mem::replace(&mut c.mem, mem.clone());
        self.sv.replace(|sv| {
            let mut imms = Vec::with_capacity(sv.imms.len() + 1);
            imms.push(old);
            imms.extend(sv.imms.iter().cloned());
            SuperVersion {
                mem,
                imms,
                version: sv.version.clone(),
            }
        });
        self.imm_count.fetch_add(1, Ordering::AcqRel);
        self.wake_bg();
        Ok(())
    }

    fn bg_wait(&self, timeout: Duration) {
        let mut g = self.bg.lock();
        if !*g && !self.shutdown.load(Ordering::SeqCst) {
            self.bg_cv.wait_for(&mut g, timeout);
        }
        *g = false;
    }

    fn flush_loop(&self) {
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            let oldest = self.sv.get().imms.last().cloned();
            match oldest {
                Some(mem) if !self.fatal_flag.load(Ordering::Acquire) => {
                    if let Err(e) = self.flush_memtable(&mem) {
                        self.set_fatal(e);
                    }
                }
                _ => {
                    self.bg_wait(WAL_BUFFER_AGE);
                    self.write_out_log_buffer();
                }
            }
        }
    }

    /// Hands buffered log records to the OS (bounds how long `SyncMode::None` writes wait).
    fn write_out_log_buffer(&self) {
        if self.fatal_flag.load(Ordering::Acquire) {
            return;
        }
        let mut c = self.commit.lock();
        if let Err(e) = c.flush_buf() {
            self.set_fatal(e);
        }
    }

    /// Writes the oldest immutable memtable to a level-0 table and installs it.
    fn flush_memtable(&self, mem: &Arc<Memtable>) -> Result<()> {
        let id = self.alloc_file();
        let built = write_memtable(
            &self.fs,
            &self.dir,
            &self.cache,
            mem,
            id,
            build_options(&self.opts),
        )?;
        if built.is_some() {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync directory", &self.dir, e))?;
        }
        let mut vs = self.versions.lock();
        let next_log = {
            let sv = self.sv.get();
            let pos = sv.imms.iter().position(|m| Arc::ptr_eq(m, mem));
            match pos {
                Some(0) => sv.mem.wal_number,
                Some(i) => sv.imms[i - 1].wal_number,
                None => return Err(Error::Fatal("flushed memtable vanished".into())),
            }
        };
        let edit = VersionEdit {
            log_number: Some(next_log),
            next_file: Some(self.next_file.load(Ordering::SeqCst)),
            last_seq: Some(mem.max_seq()),
            added: built.iter().map(|t| t.meta.clone()).collect(),
            deleted: Vec::new(),
        };
        if let Some(t) = &built {
            self.counters
                .flush_bytes_written
                .fetch_add(t.meta.size, Ordering::Relaxed);
        }
        self.log_and_install(&mut vs, &edit, built.into_iter().collect(), Some(mem))?;
        drop(vs);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.imm_count.fetch_sub(1, Ordering::AcqRel);
        self.stall_cv.notify_all();
        // Logs older than the oldest unflushed memtable are no longer needed.
        if let Ok(names) = self.fs.list(&self.dir) {
            for n in names {
                if let Some(("log", num)) = parse_name(&n)
                    && num < next_log
                {
                    let _ = self.fs.remove(&self.dir.join(n));
                }
            }
        }
        self.wake_bg();
        Ok(())
    }

    /// Appends `edit` to the manifest (fsynced), then installs the new version for readers.
    /// With `flushed`, that memtable leaves the immutable list in the same swap.
    pub fn log_and_install(
        &self,
        vs: &mut VersionSet,
        edit: &VersionEdit,
        added: Vec<Arc<TableFile>>,
        flushed: Option<&Arc<Memtable>>,
    ) -> Result<()> {
        let mut rec = Vec::new();
        encode_record(&mut rec, &edit.encode());
        let r = vs
            .manifest
            .append(&rec)
            .map_err(|e| Error::io("write manifest", &vs.manifest_path, e))
            .and_then(|_| {
                vs.manifest
                    .sync()
                    .map_err(|e| Error::io("fsync manifest", &vs.manifest_path, e))
            });
        if let Err(e) = r {
            return Err(self.set_fatal(e));
        }
        let version = Arc::new(vs.current.apply(&edit.deleted, added));
        for (level, id) in &edit.deleted {
            if edit.added.iter().any(|a| a.id == *id) {
                continue; // moved, not deleted
            }
            if let Some(t) = vs.current.levels[*level as usize]
                .iter()
                .find(|t| t.meta.id == *id)
            {
                t.table.mark_obsolete();
            }
        }
        vs.current = version.clone();
        self.l0_count
            .store(version.levels[0].len() as u64, Ordering::Release);
        self.sv.replace(|sv| SuperVersion {
            mem: sv.mem.clone(),
            imms: sv
                .imms
                .iter()
                .filter(|m| flushed.is_none_or(|f| !Arc::ptr_eq(m, f)))
                .cloned()
                .collect(),
            version,
        });
        self.stall_cv.notify_all();
        Ok(())
    }

    fn compaction_loop(&self) {
        let mut last_writes = u64::MAX;
        let mut idle_since = Instant::now();
        let (mut idle_flushed, mut idle_done) = (false, false);
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            if self.opts.enable_compaction && !self.fatal_flag.load(Ordering::Acquire) {
                let r = compaction::run_one(self).and_then(|worked| {
                    if worked {
                        return Ok(true);
                    }
                    // Idle maintenance: once writes have paused for IDLE_AFTER, flush a
                    // sizeable memtable (its log goes away) and fold level 0 into level 1, so
                    // space amplification settles near 1 instead of waiting for more writes.
                    let w = self.counters.writes.load(Ordering::Relaxed);
                    if w != last_writes {
                        (last_writes, idle_since) = (w, Instant::now());
                        (idle_flushed, idle_done) = (false, false);
                    } else if !idle_done
                        && idle_since.elapsed() >= IDLE_AFTER
                        && self.imm_count.load(Ordering::Acquire) == 0
                    {
                        if !idle_flushed {
                            idle_flushed = true;
                            if self.idle_flush()? {
                                return Ok(true); // wait for the flush first
                            }
                        }
                        idle_done = true;
                        return compaction::idle_compaction(self);
                    }
                    Ok(false)
                });
                match r {
                    Ok(true) => continue,
                    Ok(false) => {}
                    // A compaction abandoned for shutdown left only unreferenced outputs.
                    Err(_) if self.is_shutting_down() => return,
                    Err(e) => {
                        self.set_fatal(e);
                    }
                }
            }
            self.bg_wait(Duration::from_millis(200));
        }
    }

    /// Switches a memtable holding at least 1/8 of `memtable_size` so it gets flushed.
    fn idle_flush(&self) -> Result<bool> {
        let mut c = self.commit.lock();
        if (c.mem.size() as u64) < self.opts.memtable_size / 8 {
            return Ok(false);
        }
        self.rotate(&mut c)?;
        Ok(true)
    }

    fn periodic_sync_loop(&self) {
        let SyncMode::Periodic(every) = self.opts.sync else {
            return;
        };
        let mut last = Instant::now();
        loop {
            if self.shutdown.load(Ordering::SeqCst) || self.fatal_flag.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10).min(every));
            if last.elapsed() >= every {
                last = Instant::now();
                let target = self.commit.lock().end();
                if let Err(e) = self.wait_durable(target, false) {
                    tracing::error!(error = %e, "periodic log sync failed");
                    return;
                }
            }
        }
    }

    fn stats(&self) -> Stats {
        let sv = self.sv.get();
        let mut disk = 0;
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                disk += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            disk_bytes: disk,
            table_bytes: sv.version.all_tables().map(|t| t.meta.size).sum(),
            tables_per_level: sv.version.levels.iter().map(|l| l.len()).collect(),
            memtable_bytes: (sv.mem.size() + sv.imms.iter().map(|m| m.size()).sum::<usize>())
                as u64,
            immutable_memtables: sv.imms.len() as u64,
            pinned_bytes: sv
                .version
                .all_tables()
                .map(|t| t.table.pinned_bytes())
                .sum(),
            block_cache_bytes: self.cache.used(),
            block_cache_hits: self.cache.hits(),
            block_cache_misses: self.cache.misses(),
            writes: l(&c.writes),
            wal_syncs: l(&c.wal_syncs),
            flushes: l(&c.flushes),
            compactions: l(&c.compactions),
            flush_bytes_written: l(&c.flush_bytes_written),
            compaction_bytes_read: l(&c.compaction_bytes_read),
            compaction_bytes_written: l(&c.compaction_bytes_written),
            stall_micros: l(&c.stall_micros),
            slowdown_micros: l(&c.slowdown_micros),
            last_sequence: self.visible_seq.load(Ordering::Acquire),
        }
    }
}
