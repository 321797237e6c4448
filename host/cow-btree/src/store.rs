//! One open page file and everything readers share: the page cache, node
//! reads with checksum verification, value decoding, and the chain of
//! committed versions that tells the writer when freed pages become reusable.
//!
//! A [`Version`] is one commit's tree. Version `t` holds a reference to
//! version `t+1` together with the pages commit `t+1` freed; so when the last
//! reader that can see version `t` lets go, every older version is already
//! gone, and the pages freed by `t+1` are handed back to the writer. Readers
//! never take a lock the writer holds for longer than a pointer copy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::io::PageFile;
use crate::meta::Meta;
use crate::page::{HEADER, Page, ValueRef, pages_for};

/// Bytes before the first data page: two 4 KiB meta slots.
pub(crate) const META_AREA: u64 = 8192;
/// Byte offset of meta slot `i`.
pub(crate) fn meta_offset(slot: usize) -> u64 {
    slot as u64 * 4096
}

/// An open page file.
pub(crate) struct Store {
    pub(crate) file: Box<dyn PageFile>,
    pub(crate) path: PathBuf,
    pub(crate) page_size: usize,
    pub(crate) cache: crate::cache::PageCache,
    /// Distinguishes files across compactions (page numbers of an old file
    /// mean nothing in the new one).
    pub(crate) id: u64,
}

impl Store {
    /// Byte offset of data page `page` (pages 0 and 1 are the meta slots).
    pub(crate) fn offset(&self, page: u64) -> u64 {
        META_AREA + (page - 2) * self.page_size as u64
    }

    fn corrupt(&self, page: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(&self.path, Some(page), reason)
    }

    /// A short read means the page lies beyond the end of the file: a torn
    /// extension (the meta reached the disk, the file growth did not), which
    /// recovery must treat like any other damaged page.
    fn read_error(&self, page: u64, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            self.corrupt(page, "page lies beyond the end of the file")
        } else {
            Error::io(format!("read page {page}"), &self.path, e)
        }
    }

    /// Reads a node (not cached) and validates it against `crc`.
    pub(crate) fn read_uncached(
        &self,
        page: u64,
        crc: u32,
        file_pages: Option<u64>,
    ) -> Result<Page> {
        if page < 2 {
            return Err(self.corrupt(page, "reference to a meta page as a node"));
        }
        let ps = self.page_size;
        // A recycled page buffer when there is one (read over entirely).
        let mut first = self.cache.take_buffer();
        first.resize(ps, 0);
        self.file
            .read_exact_at(&mut first, self.offset(page))
            .map_err(|e| self.read_error(page, e))?;
        let npages = Page::header_npages(&first).unwrap_or(0);
        let limit = file_pages
            .map(|fp| fp.saturating_sub(page))
            .unwrap_or(u64::MAX);
        if npages == 0 || npages as u64 > limit || npages > (1usize << 31) / ps {
            // Let the checksum check name the problem when the header is junk.
            let why = match Page::parse(first.into_boxed_slice(), ps, Some(crc)) {
                Err(e) => e,
                Ok(_) => format!("node claims {npages} pages, beyond the end of the file"),
            };
            return Err(self.corrupt(page, why));
        }
        let mut buf = first;
        if npages > 1 {
            buf.resize(npages * ps, 0);
            self.file
                .read_exact_at(&mut buf[ps..], self.offset(page + 1))
                .map_err(|e| self.read_error(page, e))?;
        }
        Page::parse(buf.into_boxed_slice(), ps, Some(crc)).map_err(|e| self.corrupt(page, e))
    }

    /// Reads a tree node through the cache.
    pub(crate) fn node(&self, page: u64, crc: u32) -> Result<Arc<Page>> {
        if let Some(p) = self.cache.get(page) {
            if p.crc() == crc {
                return Ok(p);
            }
            return Err(self.corrupt(
                page,
                format!(
                    "cached page has checksum {:#010x}, parent expects {crc:#010x}",
                    p.crc()
                ),
            ));
        }
        let p = self.read_uncached(page, crc, None)?;
        if p.is_overflow() {
            return Err(self.corrupt(page, "tree points at an overflow run where a node belongs"));
        }
        let p = Arc::new(p);
        self.cache.insert(page, p.clone());
        Ok(p)
    }

    /// Runs `f` on a tree node: under the cache's read lock on a hit, else
    /// after reading and caching it.
    pub(crate) fn with_node<R>(
        &self,
        page: u64,
        crc: u32,
        f: impl FnOnce(&Page) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        let hit = self.cache.with(page, |p| {
            if p.crc() == crc {
                f.take().map(|f| f(p))
            } else {
                None
            }
        });
        if let Some(Some(r)) = hit {
            return Ok(r);
        }
        let node = self.node(page, crc)?;
        match f.take() {
            Some(f) => Ok(f(&node)),
            None => Err(self.corrupt(page, "unreachable: node callback already used")),
        }
    }

    /// The stored (possibly compressed) bytes of a value.
    pub(crate) fn stored_value(&self, v: ValueRef<'_>) -> Result<Vec<u8>> {
        match v {
            ValueRef::Inline { stored, .. } => Ok(stored.to_vec()),
            ValueRef::Overflow {
                page,
                crc,
                stored_len,
                ..
            } => {
                let p = self.read_uncached(page, crc, None)?;
                if !p.is_overflow() || p.count() != stored_len as usize {
                    return Err(self.corrupt(
                        page,
                        format!("expected an overflow run of {stored_len} bytes"),
                    ));
                }
                Ok(p.overflow_data().to_vec())
            }
        }
    }

    /// The value as the user wrote it, into `out` (replacing its contents,
    /// reusing its allocation).
    pub(crate) fn value_into(
        &self,
        v: ValueRef<'_>,
        page_hint: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let (compressed, raw_len) = match v {
            ValueRef::Inline {
                compressed,
                raw_len,
                ..
            }
            | ValueRef::Overflow {
                compressed,
                raw_len,
                ..
            } => (compressed, raw_len),
        };
        let stored = match v {
            ValueRef::Inline { stored, .. } => std::borrow::Cow::Borrowed(stored),
            _ => std::borrow::Cow::Owned(self.stored_value(v)?),
        };
        out.clear();
        if !compressed {
            out.extend_from_slice(&stored);
            return Ok(());
        }
        decompress_into(&stored, raw_len, out)
            .map_err(|e| self.corrupt(page_hint, format!("compressed value does not decode: {e}")))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Decompresses an LZ4 block that must expand to exactly `raw_len` bytes
/// into `out` (cleared first).
pub(crate) fn decompress_into(
    stored: &[u8],
    raw_len: u32,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    out.clear();
    out.resize(raw_len as usize, 0);
    match lz4_flex::block::decompress_into(stored, out) {
        Ok(n) if n == raw_len as usize => Ok(()),
        Ok(n) => {
            out.clear();
            Err(format!("decodes to {n} bytes, expected {raw_len}"))
        }
        Err(e) => {
            out.clear();
            Err(e.to_string())
        }
    }
}

/// Pages of an overflow run of `stored_len` payload bytes.
pub(crate) fn overflow_pages(stored_len: u32, page_size: usize) -> usize {
    pages_for(HEADER + stored_len as usize, page_size)
}

/// Pages handed back when a version is released: (store id, freeing txn, pages).
pub(crate) type Released = Arc<Mutex<Vec<(u64, u64, Vec<u64>)>>>;

/// One committed tree.
pub(crate) struct Version {
    pub(crate) store: Arc<Store>,
    pub(crate) meta: Meta,
    /// The next version and the pages its commit freed.
    next: OnceLock<(Arc<Version>, Vec<u64>)>,
    released: Released,
}

impl Version {
    pub(crate) fn new(store: Arc<Store>, meta: Meta, released: Released) -> Self {
        Version {
            store,
            meta,
            next: OnceLock::new(),
            released,
        }
    }
    /// Links the successor; called once by the writer when it publishes it.
    pub(crate) fn link(&self, next: Arc<Version>, freed: Vec<u64>) {
        let _ = self.next.set((next, freed));
    }
}

impl Drop for Version {
    fn drop(&mut self) {
        // Iterative, so a snapshot held across a million commits does not
        // overflow the stack when it is finally dropped.
        let mut link = self.next.take();
        while let Some((next, freed)) = link {
            if !freed.is_empty() {
                self.released
                    .lock()
                    .push((next.store.id, next.meta.txn, freed));
            }
            match Arc::try_unwrap(next) {
                Ok(mut v) => link = v.next.take(),
                Err(_) => break,
            }
        }
    }
}
