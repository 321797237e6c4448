//! Opening a file: initialising a new one, or choosing the meta slot to
//! trust and verifying its tree.
//!
//! Recovery reads every page reachable from a candidate root and checks each
//! against the checksum its parent recorded. The newest slot whose whole tree
//! verifies wins; the walk also yields the set of reachable pages, from which
//! the free list is rebuilt (the free list is not stored in the file, so it
//! can never disagree with the tree).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::cache::PageCache;
use crate::error::{Error, Result};
use crate::io::{FileSystem, PageFile};
use crate::meta::{META_LEN, Meta};
use crate::options::Options;
use crate::page::{ValueRef, pages_for};
use crate::store::{META_AREA, Store, meta_offset, overflow_pages};

/// An open page file and the commit to start from.
pub(crate) struct Opened {
    pub(crate) store: Store,
    /// The commit recovered (or the empty tree of a new file).
    pub(crate) meta: Meta,
    /// The meta slot holding it: the durable one.
    pub(crate) slot: usize,
    /// Pages below `meta.page_count` that its tree does not reach.
    pub(crate) free: BTreeSet<u64>,
}

/// Initialises an empty (new) file: the meta area with the empty tree in
/// slot 0, `fdatasync`ed, then the directory `fsync`ed so the file itself
/// survives a crash.
pub(crate) fn create(
    file: Box<dyn PageFile>,
    dir: &Path,
    path: &Path,
    opts: &Options,
    fs: &dyn FileSystem,
) -> Result<Opened> {
    let meta = Meta {
        page_size: opts.page_size as u32,
        txn: 0,
        root: 0,
        root_crc: 0,
        page_count: 2,
        entries: 0,
    };
    let mut area = vec![0u8; META_AREA as usize];
    area[..META_LEN].copy_from_slice(&meta.encode());
    file.write_all_at(&area, 0)
        .map_err(|e| Error::io("write meta area", path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync new file", path, e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    let store = Store {
        file,
        path: path.to_path_buf(),
        page_size: opts.page_size,
        cache: PageCache::new(opts.cache_size, opts.page_size),
        id: 1,
    };
    Ok(Opened {
        store,
        meta,
        slot: 0,
        free: BTreeSet::new(),
    })
}

/// Opens an existing file of `len` bytes: reads both meta slots and tries
/// the valid ones newest first; the first whose whole tree verifies
/// ([`verify`]) wins, and is made durable with one `fdatasync` before any
/// page is reused. A file shorter than the meta area with no valid slot (a
/// crash during creation) is initialised afresh. If no slot verifies, the
/// error is `Corrupt` and nothing is rewritten.
pub(crate) fn open(
    file: Box<dyn PageFile>,
    len: u64,
    dir: &Path,
    path: &Path,
    opts: &Options,
    fs: &dyn FileSystem,
) -> Result<Opened> {
    let mut area = vec![0u8; META_AREA as usize];
    let n = len.min(META_AREA) as usize;
    file.read_exact_at(&mut area[..n], 0)
        .map_err(|e| Error::io("read meta area", path, e))?;
    let slots = [
        Meta::decode(&area[meta_offset(0) as usize..]),
        Meta::decode(&area[meta_offset(1) as usize..]),
    ];
    let mut candidates: Vec<(usize, Meta)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.as_ref().ok().map(|m| (i, *m)))
        .collect();
    if candidates.is_empty() {
        if len <= META_AREA {
            tracing::warn!(path = %path.display(), "file shorter than its meta area with no valid meta: creation was interrupted; initialising");
            return create(file, dir, path, opts, fs);
        }
        let why = |i: usize| slots[i].as_ref().err().cloned().unwrap_or_default();
        return Err(Error::corrupt(
            path,
            Some(0),
            format!(
                "neither meta slot is valid (slot 0: {}; slot 1: {})",
                why(0),
                why(1)
            ),
        ));
    }
    candidates.sort_by_key(|(_, m)| std::cmp::Reverse(m.txn));
    let page_size = candidates[0].1.page_size as usize;
    let store = Store {
        file,
        path: path.to_path_buf(),
        page_size,
        cache: PageCache::new(opts.cache_size, page_size),
        id: 1,
    };
    let mut first_err = None;
    for (slot, meta) in candidates {
        if meta.page_size as usize != page_size {
            continue;
        }
        match verify(&store, &meta) {
            Ok(walk) => {
                if let Some(e) = &first_err {
                    tracing::warn!(path = %path.display(), txn = meta.txn, error = %e,
                        "newest commit did not verify (torn by a crash?); recovered the previous one");
                }
                let free: BTreeSet<u64> = (2..meta.page_count)
                    .filter(|&p| !walk.reachable[p as usize])
                    .collect();
                // Make the recovered state durable before reusing any page.
                store
                    .file
                    .sync_data()
                    .map_err(|e| Error::io("fdatasync after recovery", path, e))?;
                return Ok(Opened {
                    store,
                    meta,
                    slot,
                    free,
                });
            }
            Err(e @ Error::Corrupt { .. }) => {
                store.cache.clear();
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_err
        .unwrap_or_else(|| Error::corrupt(path, Some(0), "meta slots disagree on the page size")))
}

/// What the walk found.
pub(crate) struct Walk {
    /// `reachable[p]` for every page `p < page_count`.
    pub(crate) reachable: Vec<bool>,
}

fn mark(store: &Store, reachable: &mut [bool], page: u64, n: u64) -> Result<()> {
    for p in page..page + n {
        match reachable.get_mut(p as usize) {
            Some(slot) if !*slot => *slot = true,
            Some(_) => {
                return Err(Error::corrupt(
                    store.path(),
                    Some(p),
                    "page referenced twice in one tree",
                ));
            }
            None => {
                return Err(Error::corrupt(
                    store.path(),
                    Some(p),
                    format!(
                        "page beyond the {} pages the meta page declares",
                        reachable.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Verifies the tree of `meta` and returns its reachable pages.
pub(crate) fn verify(store: &Store, meta: &Meta) -> Result<Walk> {
    let count = usize::try_from(meta.page_count)
        .ok()
        .filter(|&c| c <= (1usize << 40))
        .ok_or_else(|| {
            Error::corrupt(
                store.path(),
                None,
                format!("meta declares {} pages", meta.page_count),
            )
        })?;
    let mut reachable = vec![false; count];
    reachable[0] = true;
    reachable[1] = true;
    let mut entries = 0u64;
    if meta.root != 0 {
        let mut stack = vec![(meta.root, meta.root_crc, 0u32)];
        while let Some((page, crc, depth)) = stack.pop() {
            if depth > 64 {
                return Err(Error::corrupt(
                    store.path(),
                    Some(page),
                    "tree deeper than 64 levels (a cycle?)",
                ));
            }
            let node = store.read_uncached(page, crc, Some(meta.page_count))?;
            let n = pages_for(node.len_bytes(), store.page_size) as u64;
            mark(store, &mut reachable, page, n)?;
            if node.is_branch() {
                for i in 0..=node.count() {
                    let (p, c) = node.branch_child(i);
                    stack.push((p, c, depth + 1));
                }
            } else if node.is_leaf() {
                entries += node.count() as u64;
                for i in 0..node.count() {
                    if let ValueRef::Overflow {
                        page: op,
                        crc: oc,
                        stored_len,
                        ..
                    } = node.leaf_value(i)
                    {
                        let run = store.read_uncached(op, oc, Some(meta.page_count))?;
                        if !run.is_overflow() || run.count() != stored_len as usize {
                            return Err(Error::corrupt(
                                store.path(),
                                Some(op),
                                format!("expected an overflow run of {stored_len} bytes"),
                            ));
                        }
                        mark(
                            store,
                            &mut reachable,
                            op,
                            overflow_pages(stored_len, store.page_size) as u64,
                        )?;
                    }
                }
            } else {
                return Err(Error::corrupt(
                    store.path(),
                    Some(page),
                    "overflow run where a tree node belongs",
                ));
            }
            if !node.is_overflow() {
                store.cache.insert(page, Arc::new(node));
            }
        }
    }
    if entries != meta.entries {
        return Err(Error::corrupt(
            store.path(),
            None,
            format!(
                "meta of txn {} counts {} keys, the tree holds {entries}",
                meta.txn, meta.entries
            ),
        ));
    }
    Ok(Walk { reachable })
}
