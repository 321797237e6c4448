//! Opening a file: choosing the meta slot to trust and verifying its tree.
//!
//! Recovery reads every page reachable from a candidate root and checks each
//! against the checksum its parent recorded. The newest slot whose whole tree
//! verifies wins; the walk also yields the set of reachable pages, from which
//! the free list is rebuilt (the free list is not stored in the file, so it
//! can never disagree with the tree).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::page::{ValueRef, pages_for};
use crate::store::{Store, overflow_pages};

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
