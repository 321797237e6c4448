//! The write-ahead logs at open: replaying the ones the tables do not cover, saving what they
//! held as a table, and creating the log the engine writes to next.

use super::FileNumbers;
use crate::batch;
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::filenames::{parse_name, wal_name};
use crate::flush::write_memtable;
use crate::framing::read_log;
use crate::fs::{FileSystem, WritableFile};
use crate::memtable::Memtable;
use crate::table::BuildOptions;
use crate::version::TableFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the logs held.
pub(super) struct Replayed {
    /// Every batch of every replayed log, in log order.
    pub mem: Arc<Memtable>,
    /// The highest sequence number seen: the manifest's `last_seq` or a log's, whichever is
    /// larger.
    pub last_seq: u64,
    /// How many logs were replayed.
    pub logs: usize,
}

/// Replays every log numbered `log_number` or above, in number order, into one memtable.
///
/// Guarantees: a batch is replayed whole or not at all (one batch is one checksummed record);
/// a torn final record (an interrupted write, never acknowledged under `PerCommit`) is
/// discarded with a warning, damage followed by valid records is `Corrupt` naming the file
/// and offset (`framing::read_log`), and so is a record whose checksum holds but whose batch
/// does not decode. Sequence numbers never go backwards: the result is at least `last_seq`.
/// All replayed logs go into one memtable, so this may hold up to `max_memtables ×
/// memtable_size` bytes.
pub(super) fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
    log_number: u64,
    last_seq: u64,
) -> Result<Replayed> {
    let mut wals: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_name(n))
        .filter(|(k, n)| *k == "log" && *n >= log_number)
        .map(|(_, n)| n)
        .collect();
    wals.sort_unstable();
    let recovered = Arc::new(Memtable::new(0));
    let mut last_seq = last_seq;
    for w in &wals {
        let path = dir.join(wal_name(*w));
        let data = fs
            .read_all(&path)
            .map_err(|e| Error::io("read log", &path, e))?;
        // A torn tail is discarded (and logged) by `read_log`.
        let log = read_log(&path, &data)?;
        for (off, payload) in log.records {
            let (first, count, body) = batch::validate_payload(payload).ok_or_else(|| {
                Error::corrupt(
                    &path,
                    Some(off),
                    "log record checksum is valid but its batch is malformed",
                )
            })?;
            let mut ins = recovered.inserter();
            for (i, op) in batch::ops(body).enumerate() {
                if let Some(op) = op {
                    ins.insert(op.key, first + i as u64, op.kind, op.value);
                }
            }
            drop(ins);
            last_seq = last_seq.max(first + count as u64 - 1);
        }
    }
    Ok(Replayed {
        mem: recovered,
        last_seq,
        logs: wals.len(),
    })
}

/// Writes the replayed memtable, if it holds anything, as a level-0 table (its number is
/// allocated only then) and fsyncs the directory.
///
/// Guarantee: when this returns `Some`, the table and its directory entry are durable, so the
/// manifest written next may name it. The logs it came from stay until that manifest is
/// `CURRENT`.
pub(super) fn save_replayed(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    cache: &Arc<BlockCache>,
    replayed: &Arc<Memtable>,
    numbers: &mut FileNumbers,
    bopts: BuildOptions,
) -> Result<Option<Arc<TableFile>>> {
    if replayed.is_empty() {
        return Ok(None);
    }
    let Some(t) = write_memtable(fs, dir, cache, replayed, numbers.alloc(), bopts)? else {
        return Ok(None);
    };
    fs.sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(Some(t))
}

/// Creates the empty log `number` that the engine's first memtable writes to.
///
/// Not fsynced here: the directory fsync of the manifest switch, which follows, makes its
/// entry durable before any write in it is acknowledged.
pub(super) fn create_log(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
) -> Result<(Arc<dyn WritableFile>, PathBuf)> {
    let path = dir.join(wal_name(number));
    let wal = fs
        .create(&path)
        .map_err(|e| Error::io("create log", &path, e))?;
    Ok((wal, path))
}
