//! The directory lock: one `Db` per directory.

use crate::error::{Error, Result};
use crate::filenames::LOCK;
use crate::fs::{FileLock, FileSystem};
use std::path::Path;

/// Takes the exclusive advisory lock on `LOCK` (creating the file) through the engine's
/// file system, so fault tests can fail it like any other file creation.
///
/// Guarantee: while the returned guard lives, no other `Db`, in this process or another,
/// opens the directory; it is held for the engine's lifetime and released by the kernel if
/// the process dies, so a crash never leaves the directory locked. Fails with an `Io` error
/// naming `LOCK` if the lock is held.
pub(super) fn lock_directory(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn FileLock>> {
    let path = dir.join(LOCK);
    fs.lock(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::io(
                "lock (another Db or process has this directory open)",
                &path,
                e,
            )
        } else {
            Error::io("lock", &path, e)
        }
    })
}
