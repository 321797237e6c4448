//! The file layer: the only place that touches the operating system.
//!
//! The engine reaches its file through [`FileSystem`] and [`PageFile`] so
//! tests can substitute [`FaultyFs`], which fails the n-th write or fsync the
//! way a full or dying disk would. Positional I/O only (`pread`/`pwrite`), so
//! readers and the writer share one descriptor without a seek lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One open database file.
pub(crate) trait PageFile: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: data and the metadata needed to read it back (size).
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Opens, renames and removes files.
pub(crate) trait FileSystem: Send + Sync {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn PageFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
pub(crate) struct StdFs;

struct StdFile(File);

impl PageFile for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn PageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Test file system: real files, but after `fail_after` counted operations
/// (writes and fsyncs) every further counted operation fails with EIO until
/// [`FaultyFs::heal`] is called. Used by the fault-injection tests.
#[derive(Clone)]
pub(crate) struct FaultyFs {
    inner: Arc<FaultState>,
}

struct FaultState {
    ops: AtomicU64,
    fail_after: AtomicU64,
    failed: AtomicBool,
    count_writes: bool,
    count_syncs: bool,
}

impl FaultyFs {
    #[allow(dead_code)]
    pub(crate) fn new(fail_after: u64, count_writes: bool, count_syncs: bool) -> Self {
        FaultyFs {
            inner: Arc::new(FaultState {
                ops: AtomicU64::new(0),
                fail_after: AtomicU64::new(fail_after),
                failed: AtomicBool::new(false),
                count_writes,
                count_syncs,
            }),
        }
    }
    #[allow(dead_code)]
    pub(crate) fn has_failed(&self) -> bool {
        self.inner.failed.load(Ordering::SeqCst)
    }
    #[allow(dead_code)]
    pub(crate) fn heal(&self) {
        self.inner.fail_after.store(u64::MAX, Ordering::SeqCst);
    }
}

impl FaultState {
    fn tick(&self, counted: bool, what: &str) -> io::Result<()> {
        if !counted {
            return Ok(());
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if n >= self.fail_after.load(Ordering::SeqCst) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(io::Error::other(format!(
                "injected {what} failure at op {n}"
            )));
        }
        Ok(())
    }
}

struct FaultyFile {
    file: StdFile,
    state: Arc<FaultState>,
}

impl PageFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.state.tick(self.state.count_writes, "write")?;
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.state.tick(self.state.count_syncs, "fsync")?;
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.state.tick(self.state.count_writes, "set_len")?;
        self.file.set_len(len)
    }
}

impl FileSystem for FaultyFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn PageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(FaultyFile {
            file: StdFile(file),
            state: self.inner.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.tick(self.inner.count_writes, "rename")?;
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.tick(self.inner.count_syncs, "directory fsync")?;
        StdFs.sync_dir(dir)
    }
}
