//! Read views: [`Snapshot`] (point lookups and ranges over one commit) and
//! [`RangeIter`].
//!
//! A snapshot pins one [`Version`]; the pages it can reach are never
//! rewritten while it lives, so reads take no lock besides the page cache's
//! shard lock and never wait for the writer.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::page::{Page, Val};
use crate::store::Version;

enum Step {
    Child((u64, u32)),
    Found(Val),
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
        let meta = &self.version.meta;
        if meta.root == 0 {
            return Ok(None);
        }
        let store = &self.version.store;
        let (mut page, mut crc) = (meta.root, meta.root_crc);
        loop {
            let step = store.with_node(page, crc, |node| {
                if node.is_branch() {
                    Step::Child(node.branch_child(node.branch_find(key)))
                } else {
                    match node.leaf_search(key) {
                        Ok(i) => Step::Found(Val::from_ref(node.leaf_value(i))),
                        Err(_) => Step::Absent,
                    }
                }
            })?;
            match step {
                Step::Child(next) => (page, crc) = next,
                Step::Found(v) => return Ok(Some(store.owned_value(v, page)?)),
                Step::Absent => return Ok(None),
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
    /// Path from the root: node, and the next index to visit (for a branch,
    /// the child currently descended into).
    stack: Vec<(Arc<Page>, u64, usize)>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    started: bool,
    done: bool,
}

impl RangeIter {
    fn new(version: Arc<Version>, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Self {
        RangeIter {
            version,
            stack: Vec::new(),
            lower: lower.map(|k| k.to_vec()),
            upper: upper.map(|k| k.to_vec()),
            started: false,
            done: false,
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
            let node = store.node(page, crc)?;
            if node.is_branch() {
                let idx = match &self.lower {
                    Bound::Unbounded => 0,
                    Bound::Included(k) | Bound::Excluded(k) => node.branch_find(k),
                };
                (page, crc) = node.branch_child(idx);
                self.stack.push((node, page, idx));
                continue;
            }
            let pos = match &self.lower {
                Bound::Unbounded => 0,
                Bound::Included(k) => node.leaf_search(k).unwrap_or_else(|i| i),
                Bound::Excluded(k) => match node.leaf_search(k) {
                    Ok(i) => i + 1,
                    Err(i) => i,
                },
            };
            self.stack.push((node, page, pos));
            return Ok(());
        }
    }

    /// Moves to the first entry of the next leaf; false at the end.
    fn next_leaf(&mut self) -> Result<bool> {
        let store = self.version.store.clone();
        // Pop the exhausted leaf, then climb until a branch has a next child.
        self.stack.pop();
        loop {
            let Some((node, _, idx)) = self.stack.last_mut() else {
                return Ok(false);
            };
            if *idx < node.count() {
                *idx += 1;
                let (mut page, mut crc) = node.branch_child(*idx);
                loop {
                    let n = store.node(page, crc)?;
                    if n.is_branch() {
                        let child = n.branch_child(0);
                        self.stack.push((n, page, 0));
                        (page, crc) = child;
                    } else {
                        self.stack.push((n, page, 0));
                        return Ok(true);
                    }
                }
            }
            self.stack.pop();
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.started {
            self.started = true;
            self.seek()?;
        }
        loop {
            if self.done {
                return Ok(None);
            }
            let Some((leaf, page, pos)) = self.stack.last_mut() else {
                return Ok(None);
            };
            if *pos < leaf.count() {
                let i = *pos;
                *pos += 1;
                let key = leaf.leaf_key(i);
                let beyond = match &self.upper {
                    Bound::Unbounded => false,
                    Bound::Included(u) => key > u.as_slice(),
                    Bound::Excluded(u) => key >= u.as_slice(),
                };
                if beyond {
                    self.done = true;
                    return Ok(None);
                }
                let value = self.version.store.value(leaf.leaf_value(i), *page)?;
                return Ok(Some((key.to_vec(), value)));
            }
            if !self.next_leaf()? {
                self.done = true;
            }
        }
    }
}

impl Iterator for RangeIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
