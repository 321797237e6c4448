//! The file-system layer the engine performs all I/O through.
//!
//! Exists so tests can inject failures: [`StdFs`] is the real implementation (plain files,
//! `fdatasync`, directory fsync), and [`FaultFs`] wraps it and fails the N-th write or fsync,
//! optionally leaving a torn (half-written) buffer behind, exactly like a full disk or a dying
//! device would. The engine never retries a failed fsync (see `Error::Fatal`). The directory
//! lock goes through here too, so a fault test can fail it like any other file creation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A file opened for appending.
pub trait WritableFile: Send + Sync {
    /// Appends the whole buffer.
    fn append(&self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// Writes zeros from the file's current end to `len` bytes, leaving the append position
    /// where it is: later appends overwrite blocks that are already allocated and inside the
    /// file, so their `fdatasync` has no file size or extent to commit. A reader sees zeros
    /// after the last record.
    fn zero_fill_to(&self, len: u64) -> io::Result<()>;
}

/// A file opened for positional reads.
pub trait RandomAccessFile: Send + Sync {
    /// Fills `buf` from `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// An exclusive advisory lock taken by [`FileSystem::lock`]. Dropping it releases the lock;
/// the kernel also releases it when the process dies.
pub trait FileLock: Send + Sync {}

/// Everything the engine asks of a file system.
pub trait FileSystem: Send + Sync {
    /// Creates (or truncates) a file for appending.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>>;
    /// Opens a file for reading.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Atomically renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Deletes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes creations, renames and deletions in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` if needed (never truncating it) and takes an exclusive advisory lock on
    /// it without waiting: an error of kind `WouldBlock` if another holder (this process or
    /// another) has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdWritable(File);
struct StdReadable(File);
/// Holds the open lock file; closing it releases the `flock`.
struct StdLock {
    _file: File,
}

impl FileLock for StdLock {}

impl WritableFile for StdWritable {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        (&self.0).write_all(buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn zero_fill_to(&self, len: u64) -> io::Result<()> {
        // One page per write: the page cache sizes a folio by the write that creates it, and
        // a record later written into a large folio dirties (and writes back) all of it. Zeros
        // written 64 KiB at a time made every commit's fsync write 64 KiB.
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut at = self.0.metadata()?.len();
        while at < len {
            let n = (len - at).min(ZEROS.len() as u64) as usize;
            // Positional: the file cursor, where appends go, does not move.
            FileExt::write_all_at(&self.0, &ZEROS[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
}

impl RandomAccessFile for StdReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileSystem for StdFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(StdWritable(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(StdReadable(File::open(path)?)))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match f.try_lock() {
            Ok(()) => Ok(Box::new(StdLock { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Which operations a [`FaultFs`] counts and fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Appends (the failing append writes the first half of its buffer, then errors), file
    /// creations, renames and taking the directory lock.
    Write,
    /// File and directory fsyncs.
    Sync,
    /// Both.
    Any,
}

/// A [`FileSystem`] that fails the `fail_after`-th counted operation and every later one.
pub struct FaultFs {
    inner: StdFs,
    kind: FaultKind,
    fail_after: u64,
    ops: AtomicU64,
    tripped: AtomicBool,
}

impl FaultFs {
    /// Fails the operation numbered `fail_after` (1-based) of the given kind, and all after it.
    pub fn new(kind: FaultKind, fail_after: u64) -> Arc<FaultFs> {
        Arc::new(FaultFs {
            inner: StdFs,
            kind,
            fail_after,
            ops: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
        })
    }

    /// Counted operations so far (run once with `u64::MAX` to learn how many a workload does).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Whether a failure has been injected yet.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    fn check(&self, kind: FaultKind) -> io::Result<()> {
        if self.kind != FaultKind::Any && self.kind != kind {
            return Ok(());
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_after {
            self.tripped.store(true, Ordering::SeqCst);
            return Err(io::Error::other(format!(
                "injected {kind:?} failure (op {n})"
            )));
        }
        Ok(())
    }
}

struct FaultWritable {
    inner: Arc<dyn WritableFile>,
    fs: Arc<FaultFs>,
}

impl WritableFile for FaultWritable {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        if let Err(e) = self.fs.check(FaultKind::Write) {
            // Leave a torn write behind, as a crash or a full disk would.
            let _ = self.inner.append(&buf[..buf.len() / 2]);
            return Err(e);
        }
        self.inner.append(buf)
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.check(FaultKind::Sync)?;
        self.inner.sync()
    }
    fn zero_fill_to(&self, len: u64) -> io::Result<()> {
        self.fs.check(FaultKind::Write)?;
        self.inner.zero_fill_to(len)
    }
}

/// Wrapper so an `Arc<FaultFs>` can hand out files that keep a handle on it.
pub struct FaultFsHandle(pub Arc<FaultFs>);

impl FileSystem for FaultFsHandle {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        self.0.check(FaultKind::Write)?;
        Ok(Arc::new(FaultWritable {
            inner: self.0.inner.create(path)?,
            fs: self.0.clone(),
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.0.inner.open(path)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.inner.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.check(FaultKind::Write)?;
        self.0.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.check(FaultKind::Sync)?;
        self.0.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.0.check(FaultKind::Write)?;
        self.0.inner.lock(path)
    }
}
