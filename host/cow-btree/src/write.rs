//! The write transaction: copy-on-write edits of the tree.
//!
//! Nodes on the path to a changed key are loaded into owned, mutable form
//! ("dirty"); nothing on disk changes. At commit, dirty nodes are written
//! bottom-up to pages nobody can see (free pages, or the end of the file),
//! splitting nodes that grew past one page or `max_keys_per_node`, merging
//! nodes that shrank below a quarter page into a sibling. Every replaced page
//! goes to the `freed` list, which the caller keeps reserved until no reader
//! can see it.

use std::cmp::Ordering::Greater;
use std::sync::Arc;

use lz4_flex::block::CompressTable;

use crate::db::Alloc;
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::page::{
    BRANCH_BASE, HEADER, LeafItems, Page, SLOT, Val, ValueRef, branch_entry_len, cmp_keys,
    encode_branch_into, encode_leaf_into, encode_overflow, key_prefix, leaf_entry_len_ref,
    pages_for,
};
use crate::store::{Store, overflow_pages};

/// Values this long or longer are tried with LZ4.
const COMPRESS_MIN: usize = 64;

/// Cheap entropy probe: LZ4 is only tried when fewer than three quarters of
/// the first 128 bytes are distinct byte values (random or already
/// compressed data has about 80%, text and JSON 20-40%). Saves the LZ4 call
/// on incompressible values, at the price of missing data whose head looks
/// random but whose tail would compress.
pub(crate) fn looks_compressible(v: &[u8]) -> bool {
    let n = v.len().min(128);
    let mut seen = [0u64; 4];
    let mut distinct = 0usize;
    for &b in &v[..n] {
        let (w, bit) = ((b >> 6) as usize, 1u64 << (b & 63));
        if seen[w] & bit == 0 {
            seen[w] |= bit;
            distinct += 1;
        }
    }
    distinct * 4 < n * 3
}

enum Child {
    Clean(u64, u32),
    Dirty(Box<Node>),
}

/// A leaf entry: entry `i` of the leaf's source page (no copy made), or
/// new. 16 bytes, so inserting into a leaf's entry vector moves little.
enum Entry {
    Src(u32),
    Own(Box<(Vec<u8>, Val)>),
}

/// A dirty leaf: its entries, some still in the page it was read from
/// (held once here rather than by every entry).
struct Leaf {
    src: Option<Arc<Page>>,
    entries: Vec<Entry>,
}

impl Leaf {
    fn new(entries: Vec<Entry>) -> Self {
        Leaf { src: None, entries }
    }
    fn src(&self) -> Option<&Page> {
        self.src.as_deref()
    }
    fn key<'s>(&'s self, e: &'s Entry) -> &'s [u8] {
        match (e, self.src()) {
            (Entry::Src(i), Some(p)) => p.leaf_key(*i as usize),
            (Entry::Own(kv), _) => &kv.0,
            (Entry::Src(_), None) => &[],
        }
    }
    fn val<'s>(&'s self, e: &'s Entry) -> ValueRef<'s> {
        match (e, self.src()) {
            (Entry::Src(i), Some(p)) => p.leaf_value(*i as usize),
            (Entry::Own(kv), _) => kv.1.as_ref(),
            (Entry::Src(_), None) => ValueRef::Inline {
                stored: &[],
                raw_len: 0,
                compressed: false,
            },
        }
    }
    fn encoded<'s>(&'s self, e: &'s Entry) -> Option<&'s [u8]> {
        match (e, self.src()) {
            (Entry::Src(i), Some(p)) => Some(p.leaf_entry_bytes(*i as usize)),
            _ => None,
        }
    }
    /// Orders entry `e`'s key against `key` (whose prefix is `kp`),
    /// touching the key bytes only when the 8-byte prefixes tie.
    fn cmp_key(&self, e: &Entry, key: &[u8], kp: u64) -> std::cmp::Ordering {
        let sp = match (e, self.src()) {
            (Entry::Src(i), Some(p)) => p.leaf_prefix(*i as usize),
            _ => key_prefix(self.key(e)),
        };
        match sp.cmp(&kp) {
            std::cmp::Ordering::Equal => cmp_keys(self.key(e), key),
            o => o,
        }
    }
    fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let kp = key_prefix(key);
        self.entries.binary_search_by(|e| self.cmp_key(e, key, kp))
    }
    fn owned_val(&self, e: Entry) -> Val {
        match e {
            Entry::Own(kv) => kv.1,
            e @ Entry::Src(_) => Val::from_ref(self.val(&e)),
        }
    }
    fn size(&self, e: &Entry) -> usize {
        match self.encoded(e) {
            Some(raw) => SLOT + raw.len(),
            None => leaf_entry_len_ref(self.key(e), self.val(e)),
        }
    }
    /// The entries from `at` on, as a leaf of their own.
    fn split_off(&mut self, at: usize) -> Leaf {
        Leaf {
            src: self.src.clone(),
            entries: self.entries.split_off(at),
        }
    }
    /// Appends the entries of `other` (its keys all greater).
    fn append(&mut self, mut other: Leaf) {
        let same_src = match (&self.src, &other.src) {
            (_, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, Some(_)) => self.entries.is_empty(),
        };
        if same_src {
            if self.src.is_none() {
                self.src = other.src.take();
            }
            self.entries.append(&mut other.entries);
            return;
        }
        // Two source pages: copy the other leaf's unchanged entries.
        let entries = std::mem::take(&mut other.entries);
        for e in entries {
            let own = match e {
                Entry::Own(kv) => Entry::Own(kv),
                Entry::Src(_) => {
                    let kv = (other.key(&e).to_vec(), Val::from_ref(other.val(&e)));
                    Entry::Own(Box::new(kv))
                }
            };
            self.entries.push(own);
        }
    }
}

/// Entries `range` of a leaf, as `encode_leaf` reads them.
struct LeafRange<'a> {
    leaf: &'a Leaf,
    range: std::ops::Range<usize>,
}

impl LeafItems for LeafRange<'_> {
    fn count(&self) -> usize {
        self.range.len()
    }
    fn key(&self, i: usize) -> &[u8] {
        self.leaf.key(&self.leaf.entries[self.range.start + i])
    }
    fn val(&self, i: usize) -> ValueRef<'_> {
        self.leaf.val(&self.leaf.entries[self.range.start + i])
    }
    fn encoded(&self, i: usize) -> Option<&[u8]> {
        self.leaf.encoded(&self.leaf.entries[self.range.start + i])
    }
}

/// A branch separator: still in the branch page it was read from (no
/// copy made), or new (from a split).
enum Sep {
    Src(Arc<Page>, u32),
    Own(Vec<u8>),
}

impl Sep {
    fn key(&self) -> &[u8] {
        match self {
            Sep::Src(p, i) => p.branch_key(*i as usize),
            Sep::Own(k) => k,
        }
    }
}

enum Node {
    Leaf(Leaf),
    Branch(Vec<Sep>, Vec<Child>),
}

impl Node {
    /// Whether the encoded node is smaller than `limit` bytes (stops
    /// counting once it is not).
    fn smaller_than(&self, limit: usize) -> bool {
        let mut size = match self {
            Node::Leaf(_) => HEADER,
            Node::Branch(..) => BRANCH_BASE,
        };
        match self {
            Node::Leaf(l) => {
                for x in &l.entries {
                    size += l.size(x);
                    if size >= limit {
                        return false;
                    }
                }
            }
            Node::Branch(k, _) => {
                for x in k {
                    size += branch_entry_len(x.key());
                    if size >= limit {
                        return false;
                    }
                }
            }
        }
        size < limit
    }
}

/// A written node as its parent refers to it: separator (None = inherit the
/// parent's), page, checksum.
type Part = (Option<Sep>, u64, u32);

/// What a finished transaction hands back: the new meta (page_count still
/// to be set), the page images sorted by page, the freed pages, and the
/// allocator (to undo if writing fails).
pub(crate) type Finished<'a> = (Meta, Vec<(u64, Vec<u8>)>, Vec<u64>, Alloc<'a>);

/// One write transaction.
pub(crate) struct WriteTxn<'a> {
    store: &'a Store,
    txn: u64,
    max_keys: usize,
    compression: bool,
    root: Option<Child>,
    entries: u64,
    pub(crate) freed: Vec<u64>,
    writes: Vec<(u64, Vec<u8>)>,
    alloc: Alloc<'a>,
    /// LZ4 hash table, reused for every value of the transaction.
    lz4: Option<CompressTable>,
    scratch: &'a mut Scratch,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn new(
        store: &'a Store,
        base: &Meta,
        max_keys: u32,
        compression: bool,
        alloc: Alloc<'a>,
        scratch: &'a mut Scratch,
    ) -> Self {
        WriteTxn {
            store,
            txn: base.txn + 1,
            max_keys: max_keys.max(4) as usize,
            compression,
            root: if base.root == 0 {
                None
            } else {
                Some(Child::Clean(base.root, base.root_crc))
            },
            entries: base.entries,
            freed: Vec::new(),
            writes: Vec::new(),
            alloc,
            lz4: None,
            scratch,
        }
    }

    fn page_size(&self) -> usize {
        self.store.page_size
    }

    /// A page buffer to encode into: a recycled one when there is one.
    fn buffer(&mut self) -> Vec<u8> {
        self.store.cache.take_buffer()
    }

    /// Loads a clean child into owned form, freeing its page.
    fn dirty<'c>(&mut self, child: &'c mut Child) -> Result<&'c mut Node> {
        if let Child::Clean(page, crc) = *child {
            let p = self.store.node(page, crc)?;
            let node = decode(p.clone(), self.scratch);
            let n = pages_for(p.len_bytes(), self.page_size()) as u64;
            self.freed.extend(page..page + n);
            *child = Child::Dirty(Box::new(node));
        }
        match child {
            Child::Dirty(n) => Ok(n),
            Child::Clean(..) => Err(Error::InvalidArgument(
                "unreachable: child still clean".into(),
            )),
        }
    }

    fn make_val(&mut self, value: Vec<u8>) -> Result<Val> {
        let raw_len = u32::try_from(value.len())
            .map_err(|_| Error::InvalidArgument("value longer than 4 GiB".into()))?;
        let mut stored = value;
        let mut compressed = false;
        if self.compression && stored.len() >= COMPRESS_MIN && looks_compressible(&stored) {
            // One hash table per transaction: `compress` would allocate
            // and zero 8 KiB per value.
            let table = self.lz4.get_or_insert_with(CompressTable::default);
            let mut c = vec![0u8; lz4_flex::block::get_maximum_output_size(stored.len())];
            if let Ok(n) = lz4_flex::block::compress_into_with_table(&stored, &mut c, table)
                && n <= stored.len() - stored.len() / 8
            {
                c.truncate(n);
                stored = c;
                compressed = true;
            }
        }
        if stored.len() <= self.page_size() / 4 {
            return Ok(Val::Inline {
                stored,
                raw_len,
                compressed,
            });
        }
        let img = encode_overflow(&stored, self.txn, self.page_size());
        let n = img.len() / self.page_size();
        let page = self.alloc.alloc(n);
        let crc = u32::from_le_bytes([img[0], img[1], img[2], img[3]]);
        self.writes.push((page, img));
        Ok(Val::Overflow {
            page,
            crc,
            stored_len: stored.len() as u32,
            raw_len,
            compressed,
        })
    }

    fn free_val(&mut self, v: &Val) {
        if let Val::Overflow {
            page, stored_len, ..
        } = v
        {
            let n = overflow_pages(*stored_len, self.page_size()) as u64;
            self.freed.extend(*page..*page + n);
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        let val = self.make_val(value)?;
        let mut root = self
            .root
            .take()
            .unwrap_or_else(|| Child::Dirty(Box::new(Node::Leaf(Leaf::new(Vec::new())))));
        let r = self.put_in(&mut root, key, val);
        let r = match r {
            Ok((old, split)) => {
                if let Some((sep, right)) = split {
                    root = Child::Dirty(Box::new(Node::Branch(
                        vec![Sep::Own(sep)],
                        vec![root, right],
                    )));
                }
                Ok(old)
            }
            Err(e) => Err(e),
        };
        self.root = Some(root);
        if let Some(old) = r? {
            self.free_val(&old);
        } else {
            self.entries += 1;
        }
        Ok(())
    }

    /// Inserts into the subtree; returns the replaced value and, when the
    /// dirty node grew past twice `max_keys_per_node`, its new right half
    /// (separator, node) for the parent. Splitting here keeps big batches
    /// linear; the byte-size splits happen at flush.
    #[allow(clippy::type_complexity)]
    fn put_in(
        &mut self,
        child: &mut Child,
        key: Vec<u8>,
        val: Val,
    ) -> Result<(Option<Val>, Option<(Vec<u8>, Child)>)> {
        let limit = 2 * self.max_keys;
        let node = self.dirty(child)?;
        match node {
            Node::Leaf(leaf) => {
                let old = match leaf.search(&key) {
                    Ok(i) => {
                        let new = Entry::Own(Box::new((key, val)));
                        let e = std::mem::replace(&mut leaf.entries[i], new);
                        Some(leaf.owned_val(e))
                    }
                    Err(i) => {
                        leaf.entries.insert(i, Entry::Own(Box::new((key, val))));
                        None
                    }
                };
                if leaf.entries.len() > limit {
                    let right = leaf.split_off(leaf.entries.len() / 2);
                    let sep = right.key(&right.entries[0]).to_vec();
                    return Ok((old, Some((sep, Child::Dirty(Box::new(Node::Leaf(right)))))));
                }
                Ok((old, None))
            }
            Node::Branch(keys, children) => {
                let idx = keys.partition_point(|k| cmp_keys(k.key(), &key) != Greater);
                let r = self.put_in(&mut children[idx], key, val);
                let (old, split) = r?;
                if let Some((sep, right)) = split {
                    keys.insert(idx, Sep::Own(sep));
                    children.insert(idx + 1, right);
                    if keys.len() > limit {
                        let mid = keys.len() / 2;
                        let right_keys = keys.split_off(mid + 1);
                        let up = match keys.pop() {
                            Some(k) => k.key().to_vec(),
                            None => Vec::new(),
                        };
                        let right_children = children.split_off(mid + 1);
                        return Ok((
                            old,
                            Some((
                                up,
                                Child::Dirty(Box::new(Node::Branch(right_keys, right_children))),
                            )),
                        ));
                    }
                }
                Ok((old, None))
            }
        }
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let Some(mut root) = self.root.take() else {
            return Ok(false);
        };
        // Look first, so deleting an absent key rewrites nothing.
        let present = self.contains(&root, key)?;
        let r = if present {
            self.delete_in(&mut root, key)
        } else {
            Ok(None)
        };
        self.root = Some(root);
        match r? {
            Some(old) => {
                self.free_val(&old);
                self.entries -= 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn contains(&self, child: &Child, key: &[u8]) -> Result<bool> {
        match child {
            Child::Clean(page, crc) => {
                let mut p = self.store.node(*page, *crc)?;
                while p.is_branch() {
                    let (pg, c) = p.branch_child(p.branch_find(key));
                    p = self.store.node(pg, c)?;
                }
                Ok(p.leaf_search(key).is_ok())
            }
            Child::Dirty(n) => match n.as_ref() {
                Node::Leaf(leaf) => Ok(leaf.search(key).is_ok()),
                Node::Branch(keys, children) => {
                    let idx = keys.partition_point(|k| cmp_keys(k.key(), key) != Greater);
                    self.contains(&children[idx], key)
                }
            },
        }
    }

    fn delete_in(&mut self, child: &mut Child, key: &[u8]) -> Result<Option<Val>> {
        let mut node = self.dirty(child)?;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    return Ok(match leaf.search(key) {
                        Ok(i) => {
                            let e = leaf.entries.remove(i);
                            Some(leaf.owned_val(e))
                        }
                        Err(_) => None,
                    });
                }
                Node::Branch(keys, children) => {
                    let idx = keys.partition_point(|k| cmp_keys(k.key(), key) != Greater);
                    node = self.dirty(&mut children[idx])?;
                }
            }
        }
    }

    /// Gives up; returns the allocator so its pages can be given back.
    pub(crate) fn abort(self) -> Alloc<'a> {
        self.alloc
    }

    /// Writes every dirty node; returns the new meta (page_count excluded)
    /// and the page images to write, sorted by page.
    /// On error the allocator comes back, so the caller can undo.
    pub(crate) fn finish(mut self) -> std::result::Result<Finished<'a>, (Error, Alloc<'a>)> {
        match self.build() {
            Ok(meta) => {
                self.writes.sort_unstable_by_key(|(p, _)| *p);
                Ok((meta, self.writes, self.freed, self.alloc))
            }
            Err(e) => Err((e, self.alloc)),
        }
    }

    fn build(&mut self) -> Result<Meta> {
        let mut root = match self.root.take() {
            None => None,
            Some(Child::Clean(p, c)) => Some((p, c)),
            Some(Child::Dirty(node)) => {
                let mut parts = self.flush(*node)?;
                loop {
                    match parts.len() {
                        0 => break None,
                        1 => break Some((parts[0].1, parts[0].2)),
                        _ => {
                            let mut keys = Vec::with_capacity(parts.len() - 1);
                            let mut children = Vec::with_capacity(parts.len());
                            for (i, (sep, p, c)) in parts.into_iter().enumerate() {
                                if i > 0 {
                                    keys.push(sep.unwrap_or(Sep::Own(Vec::new())));
                                }
                                children.push(Child::Clean(p, c));
                            }
                            parts = self.flush(Node::Branch(keys, children))?;
                        }
                    }
                }
            }
        };
        // Collapse a root branch left with a single child.
        while let Some((p, c)) = root {
            let node = match self.writes.iter().find(|(pg, _)| *pg == p) {
                Some((_, img)) => Arc::new(Page::trusted(img.clone())),
                None => self.store.node(p, c)?,
            };
            if node.is_branch() && node.count() == 0 {
                let n = pages_for(node.len_bytes(), self.page_size()) as u64;
                self.freed.extend(p..p + n);
                self.writes.retain(|(pg, _)| *pg != p);
                root = Some(node.branch_child(0));
            } else {
                break;
            }
        }
        let (root, root_crc) = root.unwrap_or((0, 0));
        let meta = Meta {
            page_size: self.page_size() as u32,
            txn: self.txn,
            root,
            root_crc,
            page_count: 0,
            entries: self.entries,
        };
        Ok(meta)
    }

    fn write_node(&mut self, img: Vec<u8>) -> (u64, u32) {
        let n = img.len() / self.page_size();
        let page = self.alloc.alloc(n);
        let crc = u32::from_le_bytes([img[0], img[1], img[2], img[3]]);
        self.writes.push((page, img));
        (page, crc)
    }

    fn flush(&mut self, node: Node) -> Result<Vec<Part>> {
        let ps = self.page_size();
        match node {
            Node::Leaf(leaf) => {
                if leaf.entries.is_empty() {
                    return Ok(Vec::new());
                }
                let sizes: Vec<usize> = leaf.entries.iter().map(|e| leaf.size(e)).collect();
                let cuts = chunks(&sizes, ps - HEADER, self.max_keys, 1);
                let mut images = Vec::with_capacity(cuts.len());
                for (i, w) in cuts.windows(2).enumerate() {
                    let sep = if i == 0 {
                        None
                    } else {
                        Some(Sep::Own(leaf.key(&leaf.entries[w[0]]).to_vec()))
                    };
                    let buf = self.buffer();
                    let range = LeafRange {
                        leaf: &leaf,
                        range: w[0]..w[1],
                    };
                    images.push((sep, encode_leaf_into(buf, &range, self.txn, ps)));
                }
                give(&mut self.scratch.entries, leaf.entries);
                let mut out = Vec::with_capacity(images.len());
                for (sep, img) in images {
                    let (p, c) = self.write_node(img);
                    out.push((sep, p, c));
                }
                Ok(out)
            }
            Node::Branch(keys, children) => {
                let (mut keys, mut children) = self.merge_small(keys, children)?;
                // Flush children; collect (separator, page, crc).
                let mut refs: Vec<Part> = take(&mut self.scratch.parts);
                refs.reserve(children.len());
                let mut seps = std::iter::once(None).chain(keys.drain(..).map(Some));
                for child in children.drain(..) {
                    let mut sep = seps.next().flatten();
                    match child {
                        Child::Clean(p, c) => refs.push((sep, p, c)),
                        Child::Dirty(n) => {
                            let parts = self.flush(*n)?;
                            for (j, (psep, p, c)) in parts.into_iter().enumerate() {
                                refs.push((if j == 0 { sep.take() } else { psep }, p, c));
                            }
                        }
                    }
                }
                drop(seps);
                give(&mut self.scratch.seps, keys);
                give(&mut self.scratch.children, children);
                if refs.is_empty() {
                    give(&mut self.scratch.parts, refs);
                    return Ok(Vec::new());
                }
                let sizes: Vec<usize> = refs
                    .iter()
                    .map(|(s, _, _)| branch_entry_len(s.as_ref().map_or(&[][..], Sep::key)))
                    .collect();
                let cuts = chunks(&sizes, ps - BRANCH_BASE, self.max_keys + 1, 2);
                let mut ks: Vec<&[u8]> = Vec::new();
                let mut cs: Vec<(u64, u32)> = Vec::new();
                let mut images = Vec::with_capacity(cuts.len() - 1);
                for w in cuts.windows(2) {
                    let group = &refs[w[0]..w[1]];
                    ks.clear();
                    ks.extend(
                        group[1..]
                            .iter()
                            .map(|(s, _, _)| s.as_ref().map_or(&[][..], Sep::key)),
                    );
                    cs.clear();
                    cs.extend(group.iter().map(|(_, p, c)| (*p, *c)));
                    let buf = self.buffer();
                    images.push(encode_branch_into(buf, &ks, &cs, self.txn, ps));
                }
                drop(ks);
                let mut out = Vec::with_capacity(images.len());
                for (w, img) in cuts.windows(2).zip(images) {
                    let (p, c) = self.write_node(img);
                    out.push((refs[w[0]].0.take(), p, c));
                }
                give(&mut self.scratch.parts, refs);
                // The first part inherits the parent's separator.
                if let Some(first) = out.first_mut() {
                    first.0 = None;
                }
                Ok(out)
            }
        }
    }

    /// Merges dirty children smaller than a quarter page into a neighbour.
    fn merge_small(
        &mut self,
        mut keys: Vec<Sep>,
        mut children: Vec<Child>,
    ) -> Result<(Vec<Sep>, Vec<Child>)> {
        let small = self.page_size() / 4;
        let mut i = 0;
        while i < children.len() && children.len() > 1 {
            let is_small = matches!(&children[i], Child::Dirty(n) if n.smaller_than(small));
            if !is_small {
                i += 1;
                continue;
            }
            // Merge child i with its right neighbour (or left, for the last).
            let (l, r) = if i + 1 < children.len() {
                (i, i + 1)
            } else {
                (i - 1, i)
            };
            self.dirty(&mut children[l])?;
            self.dirty(&mut children[r])?;
            let right = children.remove(r);
            let sep = keys.remove(l);
            let (Child::Dirty(left), Child::Dirty(right)) = (&mut children[l], right) else {
                return Err(Error::InvalidArgument(
                    "unreachable: merge of clean nodes".into(),
                ));
            };
            match (left.as_mut(), *right) {
                (Node::Leaf(a), Node::Leaf(b)) => a.append(b),
                (Node::Branch(ak, ac), Node::Branch(bk, bc)) => {
                    ak.push(sep);
                    ak.extend(bk);
                    ac.extend(bc);
                }
                _ => {
                    return Err(Error::corrupt(
                        self.store.path(),
                        None,
                        "siblings of different kinds (leaf and branch)",
                    ));
                }
            }
            // A merged node larger than a page is split again at flush; do
            // not merge it further.
            i = l + 1;
        }
        Ok((keys, children))
    }
}

/// Vectors of nodes that earlier transactions flushed, kept for reuse:
/// every commit turns thousands of nodes into vectors of 1-2 KiB, too big
/// for the allocator's fast path. At most `SCRATCH_VECS` of each kind, of
/// at most `SCRATCH_ITEMS` items each (so a few MiB).
#[derive(Default)]
pub(crate) struct Scratch {
    entries: Vec<Vec<Entry>>,
    seps: Vec<Vec<Sep>>,
    children: Vec<Vec<Child>>,
    parts: Vec<Vec<Part>>,
}

const SCRATCH_VECS: usize = 4096;
const SCRATCH_ITEMS: usize = 128;

fn take<T>(pool: &mut Vec<Vec<T>>) -> Vec<T> {
    pool.pop().unwrap_or_default()
}

fn give<T>(pool: &mut Vec<Vec<T>>, mut v: Vec<T>) {
    v.clear();
    if pool.len() < SCRATCH_VECS && v.capacity() > 0 && v.capacity() <= SCRATCH_ITEMS {
        pool.push(v);
    }
}

fn decode(p: Arc<Page>, scratch: &mut Scratch) -> Node {
    if p.is_leaf() {
        let mut entries = take(&mut scratch.entries);
        // Room for a few inserts without growing.
        entries.reserve(p.count() + 4);
        entries.extend((0..p.count() as u32).map(Entry::Src));
        Node::Leaf(Leaf {
            src: Some(p),
            entries,
        })
    } else {
        let mut keys = take(&mut scratch.seps);
        keys.reserve(p.count() + 2);
        keys.extend((0..p.count() as u32).map(|i| Sep::Src(p.clone(), i)));
        let mut children = take(&mut scratch.children);
        children.reserve(p.count() + 3);
        children.extend((0..=p.count()).map(|i| {
            let (pg, c) = p.branch_child(i);
            Child::Clean(pg, c)
        }));
        Node::Branch(keys, children)
    }
}

/// Cut points splitting items of `sizes` into runs of at most `cap` bytes
/// (an item larger than `cap` gets a run of its own) and `max_items` items,
/// balanced so the last run is not left nearly empty, and with at least
/// `min_items` per run (a branch needs two children to make progress).
/// Returns `[0, .., len]`.
fn chunks(sizes: &[usize], cap: usize, max_items: usize, min_items: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let k = total
        .div_ceil(cap)
        .max(sizes.len().div_ceil(max_items))
        .max(1);
    let target = total.div_ceil(k);
    let mut cuts = vec![0];
    let (mut bytes, mut items) = (0usize, 0usize);
    for (i, &s) in sizes.iter().enumerate() {
        if items >= min_items && (bytes + s > cap || items >= max_items || bytes >= target) {
            cuts.push(i);
            bytes = 0;
            items = 0;
        }
        bytes += s;
        items += 1;
    }
    if items < min_items && cuts.len() > 1 {
        let n = cuts.len();
        if cuts[n - 1] - cuts[n - 2] > min_items {
            // Borrow one item from the previous run.
            cuts[n - 1] -= 1;
        } else {
            cuts.pop();
        }
    }
    cuts.push(sizes.len());
    cuts
}
