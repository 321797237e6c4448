//! What the kernel says this process did: bytes it caused to be written to
//! storage (`/proc/self/io`) and its peak resident set (`VmHWM` in
//! `/proc/self/status`).
//!
//! Why: write amplification and memory must be measured the same way for
//! every engine, from outside the engine, including its background threads.
//! `write_bytes` is charged when a page is dirtied, so re-dirtying the tail
//! page of a log after each fsync is counted each time, as the disk sees it.
//! `cancelled_write_bytes` (dirty pages of files deleted or truncated before
//! write-back, such as a WAL deleted right after its memtable was flushed) is
//! *not* subtracted: on a machine with plenty of memory and short runs that
//! would hide the log's cost, which a sustained load pays.
//!
//! Caveat (measured 2026-12-07, Linux 6.18, ext4): the charge is per page
//! cache *folio*, and ext4 now caches files in large folios (made by large
//! `pwrite`s and by readahead). Dirtying one 4 KiB block of a 64 KiB folio
//! charges 64 KiB although write-back sends only the dirty block to the
//! device: 4000 random 4 KiB `pwrite`s into a file read sequentially just
//! before were charged 44,961 pages, into one read randomly 4061, with 16.4
//! MB reaching the device both times. Engines that rewrite single pages of a
//! file they wrote or read in large runs (the B+trees) are overcharged by up
//! to the folio size; appends (logs, SSTables) are not.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct ProcError {
    path: PathBuf,
    what: String,
}

fn read(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|e| ProcError {
        path: path.into(),
        what: e.to_string(),
    })
}

fn field(text: &str, path: &str, name: &str) -> Result<u64, ProcError> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| ProcError {
            path: path.into(),
            what: format!("no numeric field {name:?}"),
        })
}

/// Bytes this process has asked the kernel to write to storage so far.
pub fn storage_write_bytes() -> Result<u64, ProcError> {
    const P: &str = "/proc/self/io";
    field(&read(P)?, P, "write_bytes")
}

/// Peak resident set size of this process, in bytes.
pub fn peak_rss_bytes() -> Result<u64, ProcError> {
    const P: &str = "/proc/self/status";
    Ok(field(&read(P)?, P, "VmHWM")? * 1024)
}
