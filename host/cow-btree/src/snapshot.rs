//! Read views: [`Snapshot`] (point lookups and ranges over one commit) and
//! [`RangeIter`].
//!
//! A snapshot pins one [`Version`]; the pages it can reach are never
//! rewritten while it lives, so reads take no lock besides the page cache's
//! shard lock and never wait for the writer.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::page::{Page, Val, ValueRef, cmp_keys};
use crate::store::{Version, decompress_into};
use std::cmp::Ordering;

enum Step {
    Child((u64, u32)),
    /// The value was copied into the caller's buffer.
    Copied,
    /// The value lives in an overflow run (read after the cache lock).
    Overflow(Val),
    /// A compressed value that does not decode.
    Bad(String),
    Absent,
}

/// A consistent, read-only view of the database as of one commit.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) version: Arc<Version>,
}

impl Snapshot {
    /// The commit this snapshot shows (0 for a new, empty database).
    pub fn txn(&self) -> u64 {
        self.version.meta.txn
    }

    /// Number of keys in this snapshot.
    pub fn len(&self) -> u64 {
        self.version.meta.entries
    }

    /// Whether the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.version.meta.entries == 0
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        Ok(self.get_into(key, &mut out)?.then_some(out))
    }

    /// Looks `key` up; if present, its value replaces the contents of `out`
    /// (reusing its allocation) and the result is `true`. An inline value is
    /// copied straight from the cached leaf, under the cache's read lock.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        let meta = &self.version.meta;
        if meta.root == 0 {
            return Ok(false);
        }
        let store = &self.version.store;
        let (mut page, mut crc) = (meta.root, meta.root_crc);
        loop {
            let step = store.with_node(page, crc, |node| {
                if node.is_branch() {
                    return Step::Child(node.branch_child(node.branch_find(key)));
                }
                let Ok(i) = node.leaf_search(key) else {
                    return Step::Absent;
                };
                match node.leaf_value(i) {
                    ValueRef::Inline {
                        stored,
                        compressed: false,
                        ..
                    } => {
                        out.clear();
                        out.extend_from_slice(stored);
                        Step::Copied
                    }
                    ValueRef::Inline {
                        stored,
                        raw_len,
                        compressed: true,
                    } => match decompress_into(stored, raw_len, out) {
                        Ok(()) => Step::Copied,
                        Err(e) => Step::Bad(e),
                    },
                    v @ ValueRef::Overflow { .. } => Step::Overflow(Val::from_ref(v)),
                }
            })?;
            match step {
                Step::Child(next) => (page, crc) = next,
                Step::Copied => return Ok(true),
                Step::Overflow(v) => {
                    store.value_into(v.as_ref(), page, out)?;
                    return Ok(true);
                }
                Step::Bad(e) => {
                    return Err(crate::error::Error::corrupt(
                        store.path(),
                        Some(page),
                        format!("compressed value does not decode: {e}"),
                    ));
                }
                Step::Absent => return Ok(false),
            }
        }
    }

    /// Entries with keys in `(lower, upper)`, in key order.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> RangeIter {
        RangeIter::new(self.version.clone(), lower, upper)
    }
}

/// Iterator over a key range of one snapshot; yields `(key, value)` or the
/// first error, after which it ends.
pub struct RangeIter {
    version: Arc<Version>,
    /// Branches from the root to the current leaf: page, checksum, and the
    /// index of the child descended into (no reference held: the version
    /// keeps the pages from being reused).
    path: Vec<(u64, u32, usize)>,
    /// The current leaf, its page, and the next index to visit in it.
    leaf: Option<(Arc<Page>, u64, usize)>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    /// The last value that had to be decoded (compressed or overflow).
    buf: Vec<u8>,
}

impl RangeIter {
    fn new(version: Arc<Version>, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Self {
        RangeIter {
            version,
            path: Vec::new(),
            leaf: None,
            lower: lower.map(|k| k.to_vec()),
            upper: upper.map(|k| k.to_vec()),
            started: false,
            done: false,
            buf: Vec::new(),
        }
    }

    fn seek(&mut self) -> Result<()> {
        let meta = self.version.meta;
        if meta.root == 0 {
            self.done = true;
            return Ok(());
        }
        let store = self.version.store.clone();
        let (mut page, mut crc) = (meta.root, meta.root_crc);
        loop {
            // Branches are searched under the cache's read lock, without
            // taking a reference (the upper levels are shared by every
            // reader; cloning their Arc would bounce its counter).
            let lower = &self.lower;
            let step = store.with_node(page, crc, |n| {
                n.is_branch().then(|| {
                    let idx = match lower {
                        Bound::Unbounded => 0,
                        Bound::Included(k) | Bound::Excluded(k) => n.branch_find(k),
                    };
                    (idx, n.branch_child(idx))
                })
            })?;
            if let Some((idx, child)) = step {
                self.path.push((page, crc, idx));
                (page, crc) = child;
                continue;
            }
            let node = store.node(page, crc)?;
            if node.is_branch() {
                return Err(crate::error::Error::corrupt(
                    store.path(),
                    Some(page),
                    "page changed kind between two reads",
                ));
            }
            let pos = match &self.lower {
                Bound::Unbounded => 0,
                Bound::Included(k) => node.leaf_search(k).unwrap_or_else(|i| i),
                Bound::Excluded(k) => match node.leaf_search(k) {
                    Ok(i) => i + 1,
                    Err(i) => i,
                },
            };
            self.leaf = Some((node, page, pos));
            return Ok(());
        }
    }

    /// Moves to the first entry of the next leaf; false at the end.
    fn next_leaf(&mut self) -> Result<bool> {
        let store = self.version.store.clone();
        self.leaf = None;
        // Climb until a branch has a next child, then take its leftmost leaf.
        loop {
            let Some(&(page, crc, idx)) = self.path.last() else {
                return Ok(false);
            };
            let next = store.with_node(page, crc, |n| {
                (idx < n.count()).then(|| n.branch_child(idx + 1))
            })?;
            let Some((mut page, mut crc)) = next else {
                self.path.pop();
                continue;
            };
            if let Some(top) = self.path.last_mut() {
                top.2 += 1;
            }
            loop {
                let child =
                    store.with_node(page, crc, |n| n.is_branch().then(|| n.branch_child(0)))?;
                match child {
                    Some(c) => {
                        self.path.push((page, crc, 0));
                        (page, crc) = c;
                    }
                    None => {
                        let n = store.node(page, crc)?;
                        self.leaf = Some((n, page, 0));
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Moves to the next entry in range: its index in the leaf on top of
    /// the stack, and whether its value was decoded into `self.buf` (else it
    /// is stored inline, uncompressed, and is borrowed from the leaf).
    fn advance(&mut self) -> Result<Option<(usize, bool)>> {
        if !self.started {
            self.started = true;
            self.seek()?;
        }
        loop {
            if self.done {
                return Ok(None);
            }
            let Some((leaf, page, pos)) = self.leaf.as_mut() else {
                return Ok(None);
            };
            if *pos < leaf.count() {
                let i = *pos;
                *pos += 1;
                let key = leaf.leaf_key(i);
                let beyond = match &self.upper {
                    Bound::Unbounded => false,
                    Bound::Included(u) => cmp_keys(key, u) == Ordering::Greater,
                    Bound::Excluded(u) => cmp_keys(key, u) != Ordering::Less,
                };
                if beyond {
                    self.done = true;
                    return Ok(None);
                }
                return match leaf.leaf_value(i) {
                    ValueRef::Inline {
                        compressed: false, ..
                    } => Ok(Some((i, false))),
                    v => {
                        self.version.store.value_into(v, *page, &mut self.buf)?;
                        Ok(Some((i, true)))
                    }
                };
            }
            if !self.next_leaf()? {
                self.done = true;
            }
        }
    }

    /// The next entry, borrowed: the key and the value (as the user wrote
    /// it) stay valid until the next call. No allocation for values stored
    /// inline and uncompressed (the slices point into the cached leaf);
    /// others are decoded into a buffer the iterator reuses. Yields the
    /// first error, after which it ends, like the [`Iterator`] impl (which
    /// copies each entry into owned vectors).
    #[allow(clippy::should_implement_trait)]
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        match self.advance() {
            Ok(Some((i, in_buf))) => {
                let (leaf, _, _) = self.leaf.as_ref()?;
                let key = leaf.leaf_key(i);
                let value = if in_buf {
                    self.buf.as_slice()
                } else {
                    match leaf.leaf_value(i) {
                        ValueRef::Inline { stored, .. } => stored,
                        ValueRef::Overflow { .. } => &[],
                    }
                };
                Some(Ok((key, value)))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for RangeIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}
