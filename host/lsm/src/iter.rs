//! Iteration: a common cursor trait over memtables and tables, a merging cursor, and the
//! public range iterator that turns internal versions into the user-visible view.
//!
//! Range iterators own everything they read (memtable `Arc`s, table `Arc`s, decoded blocks), so
//! they stay valid after the call that created them returns, and they read one consistent
//! snapshot: entries newer than the snapshot's sequence number are skipped.

use crate::coding::{KIND_PUT, MAX_SEQ, internal_key, split_internal_key};
use crate::error::{Error, Result};
use crate::memtable::{Copied, Memtable};
use std::ops::Bound;
use std::sync::Arc;

/// A cursor over internal keys in [`crate::coding::compare_internal`] order.
pub trait InternalIter: Send {
    fn valid(&self) -> bool;
    fn key(&self) -> &[u8];
    fn value(&self) -> &[u8];
    fn next(&mut self) -> Result<()>;
    /// Positions at the first entry >= `target`.
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    fn seek_to_first(&mut self) -> Result<()>;
}

/// Entries a memtable cursor copies at a time: the first chunk is small (a short scan should
/// not copy hundreds of entries), each next one twice the last, up to [`CHUNK`].
const FIRST_CHUNK: usize = 16;
const CHUNK: usize = 256;

/// Iterates a memtable by copying chunks of entries, so it owns its data.
pub struct MemIter {
    mem: Arc<Memtable>,
    buf: Copied,
    idx: usize,
    more: bool,
    chunk: usize,
}

impl MemIter {
    pub fn new(mem: Arc<Memtable>) -> MemIter {
        MemIter {
            mem,
            buf: Copied::default(),
            idx: 0,
            more: false,
            chunk: FIRST_CHUNK,
        }
    }
    fn fill(&mut self, from: Bound<&[u8]>) {
        self.buf.clear();
        self.mem.scan(from, self.chunk, &mut self.buf);
        self.more = self.buf.len() == self.chunk;
        self.idx = 0;
    }
}

impl InternalIter for MemIter {
    fn valid(&self) -> bool {
        self.idx < self.buf.len()
    }
    fn key(&self) -> &[u8] {
        self.buf.key(self.idx)
    }
    fn value(&self) -> &[u8] {
        self.buf.value(self.idx)
    }
    fn next(&mut self) -> Result<()> {
        self.idx += 1;
        if self.idx >= self.buf.len() && self.more {
            let last = self.buf.key(self.buf.len() - 1).to_vec();
            self.chunk = (self.chunk * 2).min(CHUNK);
            self.fill(Bound::Excluded(&last));
        }
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.chunk = FIRST_CHUNK;
        self.fill(Bound::Included(target));
        Ok(())
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.chunk = FIRST_CHUNK;
        self.fill(Bound::Unbounded);
        Ok(())
    }
}

/// Merge order: user key ascending, then sequence descending, ignoring the kind byte; on a tie
/// the earlier child wins. Children are passed newest source first (memtables, level 0 newest
/// first, then levels 1..6), and a tie only happens between compacted entries, whose sequence
/// numbers are zeroed (see `compaction`), so the newer level's version comes first.
fn merge_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (ua, ta) = a.split_at(a.len().saturating_sub(8));
    let (ub, tb) = b.split_at(b.len().saturating_sub(8));
    let seq = |t: &[u8]| t.try_into().map(u64::from_be_bytes).unwrap_or(0) >> 8;
    ua.cmp(ub).then_with(|| seq(tb).cmp(&seq(ta)))
}

/// Merges child cursors (see [`merge_order`]).
pub struct MergeIter {
    children: Vec<Box<dyn InternalIter>>,
    cur: Option<usize>,
}

impl MergeIter {
    pub fn new(children: Vec<Box<dyn InternalIter>>) -> MergeIter {
        MergeIter {
            children,
            cur: None,
        }
    }
    fn find_min(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if merge_order(self.children[b].key(), c.key()).is_le() => Some(b),
                _ => Some(i),
            };
        }
        self.cur = best;
    }
}

impl InternalIter for MergeIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }
    fn key(&self) -> &[u8] {
        self.cur.map(|i| self.children[i].key()).unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.cur.map(|i| self.children[i].value()).unwrap_or(&[])
    }
    fn next(&mut self) -> Result<()> {
        if let Some(i) = self.cur {
            self.children[i].next()?;
        }
        self.find_min();
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        for c in &mut self.children {
            c.seek(target)?;
        }
        self.find_min();
        Ok(())
    }
    fn seek_to_first(&mut self) -> Result<()> {
        for c in &mut self.children {
            c.seek_to_first()?;
        }
        self.find_min();
        Ok(())
    }
}

/// The public range iterator: yields live `(key, value)` pairs in key order at one snapshot.
pub struct RangeIter {
    merge: MergeIter,
    seq: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    last_user: Option<Vec<u8>>,
    /// Keeps the memtables and tables this iterator reads alive.
    _pin: Box<dyn Send + Sync>,
}

impl RangeIter {
    pub(crate) fn new(
        merge: MergeIter,
        seq: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        pin: Box<dyn Send + Sync>,
    ) -> RangeIter {
        RangeIter {
            merge,
            seq,
            lower: lower.map(|b| b.to_vec()),
            upper: upper.map(|b| b.to_vec()),
            started: false,
            done: false,
            last_user: None,
            _pin: pin,
        }
    }

    fn start(&mut self) -> Result<()> {
        match &self.lower {
            Bound::Unbounded => self.merge.seek_to_first(),
            Bound::Included(k) => self.merge.seek(&internal_key(k, MAX_SEQ, KIND_PUT)),
            Bound::Excluded(k) => {
                self.last_user = Some(k.clone());
                self.merge.seek(&internal_key(k, MAX_SEQ, KIND_PUT))
            }
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.started {
            self.started = true;
            self.start()?;
        }
        while self.merge.valid() {
            let (u, seq, kind) = split_internal_key(self.merge.key()).ok_or_else(|| {
                Error::corrupt("<iterator>", None, "internal key without trailer")
            })?;
            if self.last_user.as_deref() == Some(u) || seq > self.seq {
                self.merge.next()?;
                continue;
            }
            let past = match &self.upper {
                Bound::Unbounded => false,
                Bound::Included(h) => u > h.as_slice(),
                Bound::Excluded(h) => u >= h.as_slice(),
            };
            if past {
                return Ok(None);
            }
            self.last_user = Some(u.to_vec());
            let out = (kind == KIND_PUT).then(|| (u.to_vec(), self.merge.value().to_vec()));
            self.merge.next()?;
            if out.is_some() {
                return Ok(out);
            }
        }
        Ok(None)
    }
}

impl Iterator for RangeIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
