//! Recovery: turning a database directory into the state a `Db` starts from (`Db::open`).
//!
//! The steps, in order (DESIGN.md, "Recovery (open)"):
//!
//! 1. [`lock::lock_directory`]: one `Db` per directory.
//! 2. [`list_directory`]: the files present and the highest file number among them.
//! 3. [`manifest::replay`]: the table set, log number and last sequence number the manifest
//!    named by `CURRENT` records.
//! 4. [`manifest::open_tables`]: every table it names, opened and verified.
//! 5. [`wal::replay`]: the logs the tables do not cover, into one memtable.
//! 6. [`wal::save_replayed`]: that memtable as a level-0 table.
//! 7. [`wal::create_log`], then [`manifest::switch`]: a fresh log, a fresh manifest describing
//!    everything, then `CURRENT`. This is the commit point.
//! 8. [`cleanup::remove_obsolete`]: every file the new manifest does not need.
//!
//! Nothing before the rename of `CURRENT` in step 7 changes what the directory means: a crash
//! or an error anywhere before it leaves the old manifest and logs in charge, and the files
//! written so far are orphans that step 8 of the next open deletes. From the rename on, the
//! new manifest (complete and fsynced by then) is in charge. Either way the next open finds
//! a consistent directory.

mod cleanup;
mod lock;
mod manifest;
mod wal;

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::filenames::parse_name;
use crate::flush::build_options;
use crate::fs::{FileLock, FileSystem, WritableFile};
use crate::options::Options;
use crate::version::{Version, VersionEdit};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The state a `Db` starts from.
pub(crate) struct Recovered {
    /// The directory lock, held for the engine's lifetime.
    pub lock: Box<dyn FileLock>,
    pub cache: Arc<BlockCache>,
    /// Every table, the replayed logs included; the new manifest describes exactly these.
    pub version: Version,
    /// The highest sequence number ever assigned (manifest or logs).
    pub last_seq: u64,
    /// The next unused file number.
    pub next_file: u64,
    /// The fresh, empty log the first memtable writes to.
    pub wal: Arc<dyn WritableFile>,
    pub wal_number: u64,
    pub wal_path: PathBuf,
    /// The new manifest, open for appending edits.
    pub manifest: Arc<dyn WritableFile>,
    pub manifest_path: PathBuf,
}

/// The file-number counter while recovering; `Recovered::next_file` afterwards.
struct FileNumbers(u64);

impl FileNumbers {
    fn alloc(&mut self) -> u64 {
        let n = self.0;
        self.0 += 1;
        n
    }
}

/// Runs the recovery steps (module docs) on `dir`, creating it if needed.
pub(crate) fn recover(dir: &Path, opts: &Options) -> Result<Recovered> {
    let fs = opts.fs.clone();
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    let lock = lock::lock_directory(&*fs, dir)?;
    let (names, max_number) = list_directory(&*fs, dir)?;
    let cache = Arc::new(BlockCache::new(opts.block_cache_size));

    let state = manifest::replay(&*fs, dir, &names)?;
    let mut numbers = FileNumbers(state.next_file.max(max_number + 1));
    let version = manifest::open_tables(&fs, dir, &names, state.files, &cache)?;

    let replayed = wal::replay(&*fs, dir, &names, state.log_number, state.last_seq)?;
    let last_seq = replayed.last_seq;
    let saved = wal::save_replayed(
        &fs,
        dir,
        &cache,
        &replayed.mem,
        &mut numbers,
        build_options(opts),
    )?;
    let version = version.apply(&[], saved.into_iter().collect());

    let wal_number = numbers.alloc();
    let (wal, wal_path) = wal::create_log(&*fs, dir, wal_number)?;
    let manifest_number = numbers.alloc();
    let snapshot = VersionEdit {
        log_number: Some(wal_number),
        next_file: Some(numbers.0),
        last_seq: Some(last_seq),
        added: version.all_tables().map(|t| t.meta.clone()).collect(),
        deleted: Vec::new(),
    };
    let (manifest, manifest_path) = manifest::switch(&*fs, dir, manifest_number, &snapshot)?;

    let live: HashSet<u64> = version.all_tables().map(|t| t.meta.id).collect();
    cleanup::remove_obsolete(&*fs, dir, &names, &live, wal_number, manifest_number);
    tracing::info!(dir = %dir.display(), last_seq, tables = live.len(), logs_replayed = replayed.logs, "opened LSM database");

    Ok(Recovered {
        lock,
        cache,
        version,
        last_seq,
        next_file: numbers.0,
        wal,
        wal_number,
        wal_path,
        manifest,
        manifest_path,
    })
}

/// Lists the directory: every file name, and the highest number among the log, table and
/// manifest names (0 if none).
///
/// Guarantee: the file-number counter starts above that number, so no file created from now
/// on can collide with one already there, leftovers of a crash included.
fn list_directory(fs: &dyn FileSystem, dir: &Path) -> Result<(Vec<String>, u64)> {
    let names = fs
        .list(dir)
        .map_err(|e| Error::io("list directory", dir, e))?;
    let max_number = names
        .iter()
        .filter_map(|n| parse_name(n))
        .map(|(_, num)| num)
        .max()
        .unwrap_or(0);
    Ok((names, max_number))
}
