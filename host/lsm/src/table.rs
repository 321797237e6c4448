//! Sorted string tables: immutable files of internal keys, written once by a flush or a
//! compaction and then only read.
//!
//! File layout (see DESIGN.md for the byte-level description):
//! `data block* | filter block | index block | footer (52 bytes)`.
//! Every block is followed by a 5-byte trailer `type u8 (0 raw, 1 lz4) | crc32 u32 LE` where the
//! checksum covers the stored block bytes and the type byte. The index block (same format as a
//! data block) maps the last internal key of each data block to `varint offset | varint size`.
//! Footer: `index_offset u64 | index_size u64 | filter_offset u64 | filter_size u64 |
//! entry_count u64 | magic u64 | crc32 u32` (all LE; the checksum covers the first 48 bytes).
//!
//! A table is deleted from disk when the last reader holding it drops it after compaction
//! marked it obsolete, so iterators and snapshots never see a file vanish under them.

use crate::block::{Block, BlockBuilder, BlockIter};
use crate::bloom;
use crate::cache::BlockCache;
use crate::coding::{KIND_PUT, Reader, put_varint, split_internal_key};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, RandomAccessFile, WritableFile};
use crate::iter::InternalIter;
use crate::memtable::Lookup;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const FOOTER_LEN: usize = 52;
pub const MAGIC: u64 = 0x4d53_4c54_4942_524f; // "ORBITLSM" little-endian
pub const BLOCK_TRAILER: usize = 5;
const MAX_BLOCK: usize = 64 << 20;

/// Settings for building a table.
#[derive(Clone, Copy)]
pub struct BuildOptions {
    pub block_size: usize,
    pub bits_per_key: f64,
    pub compression: bool,
}

/// Summary of a finished table.
pub struct Built {
    pub size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub entries: u64,
}

/// Writes one table file.
pub struct TableBuilder {
    file: Arc<dyn WritableFile>,
    path: PathBuf,
    opts: BuildOptions,
    offset: u64,
    pending: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    hashes: Vec<u64>,
    last_user_key: Vec<u8>,
    smallest: Option<Vec<u8>>,
    entries: u64,
}

impl TableBuilder {
    pub fn new(fs: &dyn FileSystem, path: &Path, opts: BuildOptions) -> Result<TableBuilder> {
        let file = fs
            .create(path)
            .map_err(|e| Error::io("create table", path, e))?;
        Ok(TableBuilder {
            file,
            path: path.to_path_buf(),
            opts,
            offset: 0,
            pending: Vec::with_capacity(1 << 20),
            data: BlockBuilder::default(),
            index: BlockBuilder::with_restart_interval(1),
            hashes: Vec::new(),
            last_user_key: Vec::new(),
            smallest: None,
            entries: 0,
        })
    }

    /// Adds an entry; internal keys must be strictly increasing.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        if self.smallest.is_none() {
            self.smallest = Some(ikey.to_vec());
        }
        let uk = crate::coding::user_key(ikey);
        if self.entries == 0 || uk != self.last_user_key.as_slice() {
            self.hashes.push(bloom::key_hash(uk));
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(uk);
        }
        self.data.add(ikey, value);
        self.entries += 1;
        if self.data.estimated_size() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far (approximate file size).
    pub fn file_size(&self) -> u64 {
        self.offset + self.data.estimated_size() as u64
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last = self.data.last_key().to_vec();
        let raw = self.data.finish();
        let (off, size) = self.write_block(&raw, self.opts.compression)?;
        let mut handle = Vec::with_capacity(10);
        put_varint(&mut handle, off);
        put_varint(&mut handle, size);
        self.index.add(&last, &handle);
        Ok(())
    }

    fn write_block(&mut self, raw: &[u8], compress: bool) -> Result<(u64, u64)> {
        let compressed;
        let (contents, kind) = if compress {
            compressed = lz4_flex::block::compress_prepend_size(raw);
            if compressed.len() < raw.len() - raw.len() / 8 {
                (&compressed[..], 1u8)
            } else {
                (raw, 0u8)
            }
        } else {
            (raw, 0u8)
        };
        let off = self.offset;
        let mut h = crc32fast::Hasher::new();
        h.update(contents);
        h.update(&[kind]);
        self.pending.extend_from_slice(contents);
        self.pending.push(kind);
        self.pending.extend_from_slice(&h.finalize().to_le_bytes());
        self.offset += (contents.len() + BLOCK_TRAILER) as u64;
        if self.pending.len() >= 1 << 20 {
            self.flush_pending()?;
        }
        Ok((off, contents.len() as u64))
    }

    fn flush_pending(&mut self) -> Result<()> {
        self.file
            .append(&self.pending)
            .map_err(|e| Error::io("write table", &self.path, e))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes filter, index and footer, and fsyncs the file.
    pub fn finish(mut self) -> Result<Built> {
        self.flush_data_block()?;
        let largest = self.index.last_key().to_vec();
        let filter = bloom::build(&self.hashes, self.opts.bits_per_key);
        let (filter_off, filter_size) = self.write_block(&filter, false)?;
        let index = self.index.finish();
        let (index_off, index_size) = self.write_block(&index, false)?;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        for v in [
            index_off,
            index_size,
            filter_off,
            filter_size,
            self.entries,
            MAGIC,
        ] {
            footer.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        self.pending.extend_from_slice(&footer);
        self.offset += FOOTER_LEN as u64;
        self.flush_pending()?;
        self.file
            .sync()
            .map_err(|e| Error::io("fsync table", &self.path, e))?;
        Ok(Built {
            size: self.offset,
            smallest: self.smallest.unwrap_or_default(),
            largest,
            entries: self.entries,
        })
    }
}

/// Decoded footer.
#[derive(Debug, Clone, Copy)]
pub struct Footer {
    pub index: (u64, u64),
    pub filter: (u64, u64),
    pub entries: u64,
}

/// Decodes and verifies a footer.
pub fn decode_footer(b: &[u8]) -> Result<Footer, String> {
    if b.len() != FOOTER_LEN {
        return Err(format!(
            "footer is {} bytes, expected {FOOTER_LEN}",
            b.len()
        ));
    }
    let mut r = Reader::new(b);
    let vals: Vec<u64> = (0..6).filter_map(|_| r.u64()).collect();
    let crc = r.u32().ok_or("short footer")?;
    if crc32fast::hash(&b[..48]) != crc {
        return Err("footer checksum mismatch".into());
    }
    if vals[5] != MAGIC {
        return Err(format!("bad magic {:#x}", vals[5]));
    }
    Ok(Footer {
        index: (vals[0], vals[1]),
        filter: (vals[2], vals[3]),
        entries: vals[4],
    })
}

/// Verifies a stored block (contents + trailer) and returns the uncompressed bytes.
pub fn decode_block_contents(stored: &[u8]) -> Result<Vec<u8>, String> {
    if stored.len() < BLOCK_TRAILER {
        return Err("block shorter than its trailer".into());
    }
    let n = stored.len() - BLOCK_TRAILER;
    let kind = stored[n];
    let crc = u32::from_le_bytes(stored[n + 1..].try_into().map_err(|_| "short trailer")?);
    if crc32fast::hash(&stored[..=n]) != crc {
        return Err("block checksum mismatch".into());
    }
    match kind {
        0 => Ok(stored[..n].to_vec()),
        1 => {
            let declared = stored
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("compressed block without size prefix")?;
            if declared > MAX_BLOCK {
                return Err(format!("compressed block claims {declared} bytes"));
            }
            lz4_flex::block::decompress_size_prepended(&stored[..n])
                .map_err(|e| format!("lz4 decompression failed: {e}"))
        }
        k => Err(format!("unknown block type {k}")),
    }
}

/// Like [`decode_block_contents`] but takes ownership, so a raw block is not copied.
pub fn decode_block_owned(mut stored: Vec<u8>) -> Result<Vec<u8>, String> {
    if stored.len() >= BLOCK_TRAILER && stored[stored.len() - BLOCK_TRAILER] == 0 {
        let n = stored.len() - BLOCK_TRAILER;
        let crc = u32::from_le_bytes(stored[n + 1..].try_into().map_err(|_| "short trailer")?);
        if crc32fast::hash(&stored[..=n]) != crc {
            return Err("block checksum mismatch".into());
        }
        stored.truncate(n);
        return Ok(stored);
    }
    decode_block_contents(&stored)
}

/// Decodes an index entry value into a block handle.
pub fn decode_handle(v: &[u8]) -> Option<(u64, u64)> {
    let mut r = Reader::new(v);
    Some((r.varint()?, r.varint()?))
}

/// An open table.
pub struct Table {
    pub id: u64,
    pub path: PathBuf,
    file: Arc<dyn RandomAccessFile>,
    file_len: u64,
    index: Arc<Block>,
    filter: Vec<u8>,
    cache: Arc<BlockCache>,
    fs: Arc<dyn FileSystem>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.path.display())
    }
}

impl Table {
    pub fn open(
        fs: Arc<dyn FileSystem>,
        path: PathBuf,
        id: u64,
        cache: Arc<BlockCache>,
    ) -> Result<Table> {
        let file = fs
            .open(&path)
            .map_err(|e| Error::io("open table", &path, e))?;
        let file_len = file.len().map_err(|e| Error::io("stat table", &path, e))?;
        if file_len < FOOTER_LEN as u64 {
            return Err(Error::corrupt(
                &path,
                Some(0),
                format!("table is {file_len} bytes, shorter than its footer"),
            ));
        }
        let mut fb = [0u8; FOOTER_LEN];
        let foff = file_len - FOOTER_LEN as u64;
        file.read_exact_at(&mut fb, foff)
            .map_err(|e| Error::io("read table footer", &path, e))?;
        let footer = decode_footer(&fb).map_err(|r| Error::corrupt(&path, Some(foff), r))?;
        let filter = read_stored(&*file, &path, file_len, footer.filter)?;
        let index = read_stored(&*file, &path, file_len, footer.index)?;
        let index = Block::new(index).map_err(|r| {
            Error::corrupt(&path, Some(footer.index.0), format!("index block: {r}"))
        })?;
        let pinned = (index.charge() + filter.len()) as u64;
        cache.pin(pinned);
        Ok(Table {
            id,
            path,
            file,
            file_len,
            index: Arc::new(index),
            filter,
            cache,
            fs,
            obsolete: AtomicBool::new(false),
        })
    }

    /// Bytes pinned in memory by this table (index and filter).
    pub fn pinned_bytes(&self) -> u64 {
        (self.index.charge() + self.filter.len()) as u64
    }

    /// Marks the file for deletion once the last reader drops it.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }

    fn read_block(&self, handle: (u64, u64), fill_cache: bool) -> Result<Arc<Block>> {
        match self.cache.get(self.id, handle.0) {
            Some(b) => Ok(b),
            None => self.load_block(handle, fill_cache),
        }
    }

    /// Reads a block from the file (a cache miss).
    fn load_block(&self, handle: (u64, u64), fill_cache: bool) -> Result<Arc<Block>> {
        let raw = read_stored(&*self.file, &self.path, self.file_len, handle)?;
        let block =
            Arc::new(Block::new(raw).map_err(|r| {
                Error::corrupt(&self.path, Some(handle.0), format!("data block: {r}"))
            })?);
        if fill_cache {
            self.cache.insert(self.id, handle.0, block.clone());
        }
        Ok(block)
    }

    fn corrupt_index(&self, r: String) -> Error {
        Error::corrupt(&self.path, None, format!("index block: {r}"))
    }

    /// Newest version of `user_key` at or below the sequence number in `target` (the internal
    /// key `user_key || (seq << 8 | put)`). `hash` is the bloom hash of `user_key`; `scratch` is
    /// reused for decoded keys. Reads the index and a cached block through plain borrows, so a
    /// lookup writes no memory shared with other readers except the cache shard's lock. With
    /// `cache_only`, a data block missing from the cache ends the lookup with
    /// [`Lookup::Uncached`] instead of a file read.
    pub fn get(
        &self,
        user_key: &[u8],
        hash: u64,
        target: &[u8],
        scratch: &mut Vec<u8>,
        cache_only: bool,
    ) -> Result<Lookup> {
        if !bloom::may_contain(&self.filter, hash) {
            return Ok(Lookup::Absent);
        }
        let mut idx = BlockIter::with_key_buffer(&*self.index, std::mem::take(scratch));
        idx.seek(target).map_err(|r| self.corrupt_index(r))?;
        if !idx.valid() {
            *scratch = idx.into_key_buffer();
            return Ok(Lookup::Absent);
        }
        let handle = decode_handle(idx.value())
            .ok_or_else(|| self.corrupt_index("bad block handle".into()))?;
        let block = match self.cache.get(self.id, handle.0) {
            Some(block) => block,
            None if cache_only => {
                *scratch = idx.into_key_buffer();
                return Ok(Lookup::Uncached);
            }
            None => self.load_block(handle, true)?,
        };
        let mut it = BlockIter::with_key_buffer(&*block, idx.into_key_buffer());
        it.seek(target)
            .map_err(|r| Error::corrupt(&self.path, Some(handle.0), format!("data block: {r}")))?;
        let found = if !it.valid() {
            Ok(Lookup::Absent)
        } else {
            match split_internal_key(it.key()) {
                Some((u, _, kind)) if u == user_key => Ok(if kind == KIND_PUT {
                    Lookup::Found(it.value().to_vec())
                } else {
                    Lookup::Deleted
                }),
                Some(_) => Ok(Lookup::Absent),
                None => Err(Error::corrupt(
                    &self.path,
                    Some(handle.0),
                    "key shorter than its 8-byte trailer",
                )),
            }
        };
        *scratch = it.into_key_buffer();
        found
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        self.cache.unpin(self.pinned_bytes());
        if self.obsolete.load(Ordering::SeqCst)
            && let Err(e) = self.fs.remove(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not delete obsolete table");
        }
    }
}

fn read_stored(
    file: &dyn RandomAccessFile,
    path: &Path,
    file_len: u64,
    (off, size): (u64, u64),
) -> Result<Vec<u8>> {
    let end = off
        .checked_add(size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER as u64));
    match end {
        Some(end) if end <= file_len && size as usize <= MAX_BLOCK => {}
        _ => {
            return Err(Error::corrupt(
                path,
                Some(off),
                format!("block handle ({off}, {size}) outside a {file_len}-byte file"),
            ));
        }
    }
    let mut buf = vec![0u8; size as usize + BLOCK_TRAILER];
    file.read_exact_at(&mut buf, off)
        .map_err(|e| Error::io("read table block", path, e))?;
    decode_block_owned(buf).map_err(|r| Error::corrupt(path, Some(off), r))
}

/// Iterates a whole table in internal-key order.
pub struct TableIter {
    table: Arc<Table>,
    index: BlockIter,
    data: Option<BlockIter>,
    fill_cache: bool,
}

impl TableIter {
    pub fn new(table: Arc<Table>, fill_cache: bool) -> TableIter {
        TableIter {
            index: BlockIter::new(table.index.clone()),
            table,
            data: None,
            fill_cache,
        }
    }

    fn load_block(&mut self) -> Result<bool> {
        if !self.index.valid() {
            self.data = None;
            return Ok(false);
        }
        let handle = decode_handle(self.index.value())
            .ok_or_else(|| self.table.corrupt_index("bad block handle".into()))?;
        let block = self.table.read_block(handle, self.fill_cache)?;
        self.data = Some(BlockIter::new(block));
        Ok(true)
    }

    fn data_err(&self, r: String) -> Error {
        Error::corrupt(&self.table.path, None, format!("data block: {r}"))
    }

    /// Moves forward over empty blocks until positioned on an entry or at the end.
    fn skip_exhausted(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.index.next().map_err(|r| self.table.corrupt_index(r))?;
            if !self.load_block()? {
                return Ok(());
            }
            let r = self.data.as_mut().map(|d| d.seek_to_first());
            if let Some(Err(r)) = r {
                return Err(self.data_err(r));
            }
        }
        Ok(())
    }
}

impl InternalIter for TableIter {
    fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.valid())
    }
    fn key(&self) -> &[u8] {
        self.data.as_ref().map(|d| d.key()).unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.data.as_ref().map(|d| d.value()).unwrap_or(&[])
    }
    fn next(&mut self) -> Result<()> {
        if let Some(d) = self.data.as_mut()
            && let Err(r) = d.next()
        {
            return Err(self.data_err(r));
        }
        self.skip_exhausted()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.index
            .seek(target)
            .map_err(|r| self.table.corrupt_index(r))?;
        if !self.load_block()? {
            return Ok(());
        }
        if let Some(Err(r)) = self.data.as_mut().map(|d| d.seek(target)) {
            return Err(self.data_err(r));
        }
        self.skip_exhausted()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.index
            .seek_to_first()
            .map_err(|r| self.table.corrupt_index(r))?;
        if !self.load_block()? {
            return Ok(());
        }
        if let Some(Err(r)) = self.data.as_mut().map(|d| d.seek_to_first()) {
            return Err(self.data_err(r));
        }
        self.skip_exhausted()
    }
}
