//! `orbit-lsm`: Orbit's own log-structured merge tree.
//!
//! A plain ordered key-value store: [`Db::write`] applies a [`WriteBatch`] atomically and
//! durably (per [`SyncMode`]), [`Db::get`] and [`Db::range`] read the newest state, and
//! [`Db::snapshot`] gives a consistent view. Versions, TTL and compare-and-set are layered on
//! top by the storage adapter. The on-disk formats, the commit protocol and recovery are
//! specified in `DESIGN.md` next to this crate.
//!
//! Layering, bottom up: `fs` (all I/O, fault-injectable), `filenames` → `coding`, `framing`
//! (checksummed records) → `batch`, `memtable`, `block`, `bloom`, `cache`, `table` → `version`
//! (manifest), `iter` → `flush` (memtable to table) → `recovery` (open), `compaction` → `db`.

mod batch;
mod block;
mod bloom;
mod cache;
mod coding;
mod compaction;
mod db;
mod error;
mod filenames;
mod flush;
mod framing;
pub mod fs;
mod iter;
mod memtable;
mod options;
mod padded;
mod recovery;
mod superversion;
mod table;
mod version;

pub use batch::WriteBatch;
pub use db::{Db, Snapshot, Stats, TryWrite};
pub use error::Error;
pub use iter::RangeIter;
pub use options::{Options, SyncMode};

/// Entry points to every decoder, for the fuzz targets and the in-crate garbage-input tests.
/// Each returns an error (never panics) on malformed input. Not part of the stable API.
#[doc(hidden)]
pub mod decoders {
    use std::path::Path;
    use std::sync::Arc;

    /// Decodes a block and walks every entry, then seeks to `probe`.
    pub fn block(data: &[u8], probe: &[u8]) -> Result<usize, String> {
        let b = Arc::new(crate::block::Block::new(data.to_vec())?);
        let mut it = crate::block::BlockIter::new(b);
        it.seek_to_first()?;
        let mut n = 0;
        while it.valid() && n < 1_000_000 {
            n += 1;
            it.next()?;
        }
        it.seek(probe)?;
        Ok(n)
    }

    /// Decodes an index block: every value must be a block handle.
    pub fn index(data: &[u8]) -> Result<usize, String> {
        let b = Arc::new(crate::block::Block::new(data.to_vec())?);
        let mut it = crate::block::BlockIter::new(b);
        it.seek_to_first()?;
        let mut n = 0;
        while it.valid() {
            crate::table::decode_handle(it.value()).ok_or("bad handle")?;
            n += 1;
            it.next()?;
        }
        Ok(n)
    }

    /// Probes a bloom filter.
    pub fn filter(data: &[u8], key: &[u8]) -> bool {
        crate::bloom::may_contain(data, crate::bloom::key_hash(key))
    }

    /// Verifies a stored block (contents + 5-byte trailer), decompressing if needed.
    pub fn stored_block(data: &[u8]) -> Result<Vec<u8>, String> {
        let owned = crate::table::decode_block_owned(data.to_vec());
        let borrowed = crate::table::decode_block_contents(data);
        assert_eq!(
            owned, borrowed,
            "owned and borrowed block decoders disagree"
        );
        borrowed
    }

    /// Decodes a table footer; returns the entry count it records.
    pub fn footer(data: &[u8]) -> Result<u64, String> {
        crate::table::decode_footer(data).map(|f| f.entries)
    }

    /// Splits a log into records and validates each as a write batch.
    pub fn wal(data: &[u8]) -> Result<usize, String> {
        let log =
            crate::framing::read_log(Path::new("fuzz.log"), data).map_err(|e| e.to_string())?;
        let mut n = 0;
        for (_, p) in log.records {
            if crate::batch::validate_payload(p).is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Splits a manifest into records and decodes each version edit.
    pub fn manifest(data: &[u8]) -> Result<usize, String> {
        let log = crate::framing::read_log(Path::new("MANIFEST-fuzz"), data)
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        for (_, p) in log.records {
            crate::version::VersionEdit::decode(p)?;
            n += 1;
        }
        Ok(n)
    }

    /// Decodes a version edit payload.
    pub fn version_edit(data: &[u8]) -> Result<(), String> {
        crate::version::VersionEdit::decode(data).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn public_types_are_shareable() {
        send_sync::<crate::Db>();
        send_sync::<crate::Snapshot>();
        send_sync::<crate::Error>();
        send::<crate::RangeIter>();
    }
}
