//! Compaction (DESIGN.md, "Free-space management"): rewriting the live tree,
//! densely packed, into a new file that replaces the old one.
//!
//! The tree is copied (leaves packed full, values copied as stored) into
//! `data.cow.compact`, whose meta area is written and `fdatasync`ed; the
//! file is renamed over `data.cow` and the directory `fsync`ed. A crash
//! before the rename leaves the old file untouched (the leftover is deleted
//! at the next open, [`remove_unfinished`]); after the directory `fsync`
//! the new file is the database. A failed directory `fsync` is fatal, like
//! a failed `fdatasync`. Writers wait meanwhile; readers do not (old
//! snapshots keep reading the old, unlinked file).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cache::PageCache;
use crate::error::{Error, Result};
use crate::meta::{META_LEN, Meta};
use crate::page::{
    BRANCH_BASE, HEADER, Val, ValueRef, branch_entry_len, encode_branch, encode_leaf,
    encode_overflow, leaf_entry_len,
};
use crate::store::{META_AREA, Store, Version};

use super::Inner;

/// The file a compaction builds, next to `FILE_NAME`.
const COMPACT_NAME: &str = "data.cow.compact";

/// Deletes the file of a compaction a crash interrupted, if any (called by
/// open, before the page file is opened). Such a file was never renamed
/// over the page file, so it holds nothing the database needs.
pub(super) fn remove_unfinished(dir: &Path) -> Result<()> {
    let leftover = dir.join(COMPACT_NAME);
    match std::fs::remove_file(&leftover) {
        Ok(()) => {
            tracing::info!(path = %leftover.display(), "removed an unfinished compaction")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove unfinished compaction", &leftover, e)),
    }
    Ok(())
}

impl Inner {
    /// Compacts under the writer lock, after a durable point (see the module
    /// docs); the writer state then describes the new file.
    pub(super) fn compact(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.sync_locked(&mut w)?;
        let cur = self.current.read().clone();
        let tmp = self.dir.join(COMPACT_NAME);
        let file = self
            .fs
            .open(&tmp, true)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let built = (|| -> Result<(Store, Meta)> {
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &tmp, e))?;
            let store = Store {
                file,
                path: self.path.clone(),
                page_size: cur.store.page_size,
                cache: PageCache::new(self.opts.cache_size, cur.store.page_size),
                id: self.next_store_id.fetch_add(1, Ordering::Relaxed),
            };
            let meta = bulk_copy(&cur, &store, self.opts.max_keys_per_node as usize)?;
            let mut area = vec![0u8; META_AREA as usize];
            area[..META_LEN].copy_from_slice(&meta.encode());
            store
                .file
                .write_all_at(&area, 0)
                .map_err(|e| Error::io("write meta area", &tmp, e))?;
            store
                .file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &tmp, e))?;
            Ok((store, meta))
        })();
        let (store, meta) = match built {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.fs.rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("rename compacted file", &self.path, e));
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            // Whether the rename is durable is now unknown; later commits
            // could vanish with it. Same rule as a failed fdatasync.
            w.fatal = Some(format!("fsync of directory after compaction: {e}"));
            return Err(self
                .fatal_error(&w)
                .unwrap_or_else(|| Error::io("fsync directory", &self.dir, e)));
        }
        let before = w.page_count;
        let store = Arc::new(store);
        let new = Arc::new(Version::new(store.clone(), meta, self.released.clone()));
        cur.link(new.clone(), Vec::new());
        *self.current.write() = new;
        w.store = store;
        w.free.clear();
        w.waiting.clear();
        w.page_count = meta.page_count;
        w.durable_txn = meta.txn;
        w.durable_slot = 0;
        w.unsynced.clear();
        tracing::info!(path = %self.path.display(), pages_before = before, pages_after = meta.page_count, "compacted");
        Ok(())
    }
}

/// Sequential writer of page images into a fresh file.
struct Appender<'a> {
    store: &'a Store,
    next: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl Appender<'_> {
    fn push(&mut self, img: Vec<u8>) -> Result<(u64, u32)> {
        let page = self.next;
        self.next += (img.len() / self.store.page_size) as u64;
        let crc = u32::from_le_bytes([img[0], img[1], img[2], img[3]]);
        self.buf.extend_from_slice(&img);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok((page, crc))
    }
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.store
                .file
                .write_all_at(&self.buf, self.store.offset(self.buf_start))
                .map_err(|e| Error::io("write compacted pages", &self.store.path, e))?;
            self.buf.clear();
        }
        self.buf_start = self.next;
        Ok(())
    }
}

fn view(entries: &[(Vec<u8>, Val)]) -> Vec<(&[u8], ValueRef<'_>)> {
    entries
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_ref()))
        .collect()
}

/// Copies the tree of `from` into the empty `to`, leaves packed full.
fn bulk_copy(from: &Version, to: &Store, max_keys: usize) -> Result<Meta> {
    let ps = to.page_size;
    let txn = from.meta.txn + 1;
    let mut out = Appender {
        store: to,
        next: 2,
        buf: Vec::new(),
        buf_start: 2,
    };
    let mut level: Vec<(Vec<u8>, u64, u32)> = Vec::new();
    let mut leaf: Vec<(Vec<u8>, Val)> = Vec::new();
    let mut leaf_bytes = HEADER;
    // Depth-first walk of the old tree, leaves in key order.
    if from.meta.root != 0 {
        let mut stack = vec![(from.meta.root, from.meta.root_crc)];
        while let Some((page, crc)) = stack.pop() {
            let node = from.store.node(page, crc)?;
            if node.is_branch() {
                for i in (0..=node.count()).rev() {
                    stack.push(node.branch_child(i));
                }
                continue;
            }
            for i in 0..node.count() {
                let key = node.leaf_key(i).to_vec();
                let v = node.leaf_value(i);
                let val = match v {
                    ValueRef::Inline { .. } => Val::from_ref(v),
                    ValueRef::Overflow {
                        stored_len,
                        raw_len,
                        compressed,
                        ..
                    } => {
                        let data = from.store.stored_value(v)?;
                        let (p, c) = out.push(encode_overflow(&data, txn, ps))?;
                        Val::Overflow {
                            page: p,
                            crc: c,
                            stored_len,
                            raw_len,
                            compressed,
                        }
                    }
                };
                let size = leaf_entry_len(&key, &val);
                if !leaf.is_empty() && (leaf_bytes + size > ps || leaf.len() >= max_keys) {
                    let first = leaf[0].0.clone();
                    let (p, c) = out.push(encode_leaf(&view(&leaf)[..], txn, ps))?;
                    level.push((first, p, c));
                    leaf.clear();
                    leaf_bytes = HEADER;
                }
                leaf_bytes += size;
                leaf.push((key, val));
            }
        }
    }
    if !leaf.is_empty() {
        let first = leaf[0].0.clone();
        let (p, c) = out.push(encode_leaf(&view(&leaf)[..], txn, ps))?;
        level.push((first, p, c));
    }
    while level.len() > 1 {
        let mut next_level = Vec::new();
        let mut group: Vec<(Vec<u8>, u64, u32)> = Vec::new();
        let mut bytes = BRANCH_BASE;
        let emit = |group: &mut Vec<(Vec<u8>, u64, u32)>,
                    out: &mut Appender<'_>,
                    next_level: &mut Vec<(Vec<u8>, u64, u32)>|
         -> Result<()> {
            let keys: Vec<Vec<u8>> = group[1..].iter().map(|(k, _, _)| k.clone()).collect();
            let children: Vec<(u64, u32)> = group.iter().map(|(_, p, c)| (*p, *c)).collect();
            let (p, c) = out.push(encode_branch(&keys, &children, txn, ps))?;
            next_level.push((group[0].0.clone(), p, c));
            group.clear();
            Ok(())
        };
        for entry in level {
            let size = branch_entry_len(&entry.0);
            if group.len() >= 2 && (bytes + size > ps || group.len() > max_keys) {
                emit(&mut group, &mut out, &mut next_level)?;
                bytes = BRANCH_BASE;
            }
            bytes += size;
            group.push(entry);
        }
        if !group.is_empty() {
            emit(&mut group, &mut out, &mut next_level)?;
        }
        level = next_level;
    }
    out.flush()?;
    let (root, root_crc) = level.first().map(|(_, p, c)| (*p, *c)).unwrap_or((0, 0));
    Ok(Meta {
        page_size: ps as u32,
        txn,
        root,
        root_crc,
        page_count: out.next,
        entries: from.meta.entries,
    })
}
