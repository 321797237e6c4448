//! Writing a memtable as a level-0 table: the step shared by the flush thread (`db`) and by
//! recovery, which writes the replayed logs out the same way.
//!
//! Guarantee: the table holds the newest version of each user key in the memtable (tombstones
//! kept, since older versions may live in deeper levels), is fdatasynced by the builder, and
//! is open (footer, index and filter verified) when returned. The caller fsyncs the directory
//! and records the table in the manifest; until then the file is an orphan that the next
//! recovery deletes.

use crate::cache::BlockCache;
use crate::coding::{KIND_DELETE, KIND_PUT, split_internal_key};
use crate::error::{Error, Result};
use crate::filenames::table_name;
use crate::fs::FileSystem;
use crate::iter::{InternalIter, MemIter};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::table::{BuildOptions, Table, TableBuilder};
use crate::version::{FileMeta, TableFile};
use std::path::Path;
use std::sync::Arc;

/// How flush, recovery and compaction build tables, from the engine options.
pub(crate) fn build_options(o: &Options) -> BuildOptions {
    BuildOptions {
        block_size: o.block_size,
        bits_per_key: crate::bloom::bits_per_key(o.bloom_fp_rate),
        compression: o.compression,
    }
}

/// Writes a memtable (newest version of each key only) as level-0 table `id` and opens it;
/// `None`, leaving no file, when the memtable holds nothing.
pub(crate) fn write_memtable(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    cache: &Arc<BlockCache>,
    mem: &Arc<Memtable>,
    id: u64,
    bopts: BuildOptions,
) -> Result<Option<Arc<TableFile>>> {
    let path = dir.join(table_name(id));
    let mut b = TableBuilder::new(&**fs, &path, bopts)?;
    let mut it = MemIter::new(mem.clone());
    it.seek_to_first()?;
    let mut last: Option<Vec<u8>> = None;
    while it.valid() {
        let k = it.key();
        let (u, _, kind) = split_internal_key(k)
            .ok_or_else(|| Error::Fatal("memtable key without trailer".into()))?;
        debug_assert!(kind == KIND_PUT || kind == KIND_DELETE);
        if last.as_deref() != Some(u) {
            last = Some(u.to_vec());
            b.add(k, it.value())?;
        }
        it.next()?;
    }
    if b.entries() == 0 {
        drop(b);
        let _ = fs.remove(&path);
        return Ok(None);
    }
    let built = b.finish()?;
    let table = Table::open(fs.clone(), path, id, cache.clone())?;
    Ok(Some(Arc::new(TableFile {
        meta: FileMeta {
            level: 0,
            id,
            size: built.size,
            entries: built.entries,
            smallest: built.smallest,
            largest: built.largest,
        },
        table: Arc::new(table),
    })))
}
