//! Page formats: tree leaves, tree branches and overflow runs (DESIGN.md,
//! "Pages").
//!
//! A *node* occupies one page or a run of contiguous pages. Every node starts
//! with a 24-byte header whose CRC-32 covers the whole run, and its parent
//! stores that CRC too, so a page that is valid on its own but stale (a write
//! that never reached the disk) is caught as well as a flipped bit.
//! [`Page::parse`] validates every offset and length once, when bytes come
//! from disk, so the accessors used on the hot read path cannot go out of
//! bounds on bad data; nothing here panics on untrusted input.

use std::cmp::Ordering;

/// Bytes of the node header.
pub(crate) const HEADER: usize = 24;
pub(crate) const KIND_LEAF: u8 = 1;
pub(crate) const KIND_BRANCH: u8 = 2;
pub(crate) const KIND_OVERFLOW: u8 = 3;
/// Bytes of one child reference in a branch: page (u64) + CRC (u32).
pub(crate) const CHILD_REF: usize = 12;
/// Bytes of one key slot in a leaf or branch: offset u32, key length u32,
/// first 8 key bytes (zero padded) so binary search rarely leaves the slot
/// array.
pub(crate) const SLOT: usize = 16;
const VKIND_INLINE: u8 = 0;
const VKIND_OVERFLOW: u8 = 1;
const FLAG_COMPRESSED: u8 = 1;

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn rd_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
fn checked_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The first 8 bytes of `key`, zero padded, as a big-endian number: if two
/// keys' prefixes differ, the keys compare the same way.
#[inline]
pub(crate) fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Orders two keys like `a.cmp(b)`, without a `memcmp` call for short
/// keys: 8 bytes at a time as big-endian numbers, then byte by byte.
#[inline]
pub(crate) fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    if n > 64 {
        return a.cmp(b);
    }
    let mut i = 0;
    while i + 8 <= n {
        let x = rd_u64_be(a, i);
        let y = rd_u64_be(b, i);
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

#[inline]
fn rd_u64_be(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// CRC-32 of a node image (everything after the CRC field).
pub(crate) fn node_crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(&bytes[4..])
}

/// Pages needed for `len` bytes.
pub(crate) fn pages_for(len: usize, page_size: usize) -> usize {
    len.div_ceil(page_size).max(1)
}

/// Where a value lives, as read from a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueRef<'a> {
    Inline {
        stored: &'a [u8],
        raw_len: u32,
        compressed: bool,
    },
    Overflow {
        page: u64,
        crc: u32,
        stored_len: u32,
        raw_len: u32,
        compressed: bool,
    },
}

/// An owned value in a leaf being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Inline {
        stored: Vec<u8>,
        raw_len: u32,
        compressed: bool,
    },
    Overflow {
        page: u64,
        crc: u32,
        stored_len: u32,
        raw_len: u32,
        compressed: bool,
    },
}

impl Val {
    pub(crate) fn from_ref(v: ValueRef<'_>) -> Val {
        match v {
            ValueRef::Inline {
                stored,
                raw_len,
                compressed,
            } => Val::Inline {
                stored: stored.to_vec(),
                raw_len,
                compressed,
            },
            ValueRef::Overflow {
                page,
                crc,
                stored_len,
                raw_len,
                compressed,
            } => Val::Overflow {
                page,
                crc,
                stored_len,
                raw_len,
                compressed,
            },
        }
    }
    /// Bytes this value takes in a leaf entry after the key.
    pub(crate) fn encoded_len(&self) -> usize {
        10 + match self {
            Val::Inline { stored, .. } => stored.len(),
            Val::Overflow { .. } => 12,
        }
    }
}

impl Val {
    /// Borrowed view, as if read from a leaf.
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Val::Inline {
                stored,
                raw_len,
                compressed,
            } => ValueRef::Inline {
                stored,
                raw_len: *raw_len,
                compressed: *compressed,
            },
            Val::Overflow {
                page,
                crc,
                stored_len,
                raw_len,
                compressed,
            } => ValueRef::Overflow {
                page: *page,
                crc: *crc,
                stored_len: *stored_len,
                raw_len: *raw_len,
                compressed: *compressed,
            },
        }
    }
}

/// Encoded size of one leaf entry (borrowed value), its slot included.
pub(crate) fn leaf_entry_len_ref(key: &[u8], val: ValueRef<'_>) -> usize {
    SLOT + 4
        + key.len()
        + 10
        + match val {
            ValueRef::Inline { stored, .. } => stored.len(),
            ValueRef::Overflow { .. } => 12,
        }
}

/// Encoded size of one leaf entry, its offset slot included.
pub(crate) fn leaf_entry_len(key: &[u8], val: &Val) -> usize {
    SLOT + 4 + key.len() + val.encoded_len()
}

/// Encoded size of one branch key with its child reference and offset slot.
pub(crate) fn branch_entry_len(key: &[u8]) -> usize {
    SLOT + 4 + key.len() + CHILD_REF
}

/// A validated node image.
#[derive(Debug)]
pub(crate) struct Page {
    bytes: Box<[u8]>,
    kind: u8,
    count: usize,
}

/// Why [`Page::parse`] rejected bytes.
pub(crate) type ParseError = String;

impl Page {
    /// Validates a node image read from disk. `expected_crc` is the CRC its
    /// parent (or the meta page) recorded.
    pub(crate) fn parse(
        bytes: Box<[u8]>,
        page_size: usize,
        expected_crc: Option<u32>,
    ) -> Result<Page, ParseError> {
        if bytes.len() < HEADER || bytes.len() < page_size || !bytes.len().is_multiple_of(page_size)
        {
            return Err(format!(
                "node image of {} bytes is not a whole number of pages",
                bytes.len()
            ));
        }
        let stored = rd_u32(&bytes, 0);
        let actual = node_crc(&bytes);
        if stored != actual {
            return Err(format!(
                "page checksum mismatch: header says {stored:#010x}, content hashes to {actual:#010x}"
            ));
        }
        if let Some(exp) = expected_crc
            && exp != stored
        {
            return Err(format!(
                "stale page: parent expects checksum {exp:#010x}, page has {stored:#010x} (a write that never reached the disk?)"
            ));
        }
        let kind = bytes[4];
        let count = rd_u32(&bytes, 8) as usize;
        let npages = rd_u32(&bytes, 12) as usize;
        if npages * page_size != bytes.len() {
            return Err(format!(
                "header says {npages} pages but the run read is {} bytes",
                bytes.len()
            ));
        }
        let page = Page { bytes, kind, count };
        match kind {
            KIND_LEAF => page.validate_leaf()?,
            KIND_BRANCH => page.validate_branch()?,
            KIND_OVERFLOW => {
                if count > page.bytes.len() - HEADER {
                    return Err(format!(
                        "overflow run claims {count} bytes, holds at most {}",
                        page.bytes.len() - HEADER
                    ));
                }
            }
            k => return Err(format!("unknown node kind {k}")),
        }
        Ok(page)
    }

    /// Reads only the header fields needed to know how many pages to read.
    pub(crate) fn header_npages(first_page: &[u8]) -> Option<usize> {
        checked_u32(first_page, 12).map(|n| n as usize)
    }

    fn validate_leaf(&self) -> Result<(), ParseError> {
        let b = &self.bytes;
        let offs_end = self
            .count
            .checked_mul(SLOT)
            .and_then(|x| x.checked_add(HEADER))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("leaf claims {} entries, too many for its size", self.count))?;
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.count {
            let slot = HEADER + i * SLOT;
            let off = rd_u32(b, slot) as usize;
            if off < offs_end {
                return Err(format!(
                    "leaf entry {i} offset {off} points into the header"
                ));
            }
            let klen = checked_u32(b, off)
                .ok_or_else(|| format!("leaf entry {i} offset {off} out of bounds"))?
                as usize;
            let kstart = off + 4;
            let kend = kstart
                .checked_add(klen)
                .filter(|&e| e + 10 <= b.len())
                .ok_or_else(|| format!("leaf entry {i}: key of {klen} bytes runs past the node"))?;
            let key = &b[kstart..kend];
            if let Some(p) = prev
                && p >= key
            {
                return Err(format!("leaf keys out of order at entry {i}"));
            }
            if !check_slot(b, slot, key) {
                return Err(format!(
                    "key slot {i} disagrees with its key (length or prefix)"
                ));
            }
            prev = Some(key);
            let vkind = b[kend];
            let flags = b[kend + 1];
            if flags & !FLAG_COMPRESSED != 0 {
                return Err(format!("leaf entry {i}: unknown value flags {flags:#x}"));
            }
            let stored_len = rd_u32(b, kend + 2) as usize;
            let vend = match vkind {
                VKIND_INLINE => kend + 10 + stored_len,
                VKIND_OVERFLOW => kend + 10 + 12,
                v => return Err(format!("leaf entry {i}: unknown value kind {v}")),
            };
            if vend > b.len() {
                return Err(format!("leaf entry {i}: value runs past the node"));
            }
            if flags & FLAG_COMPRESSED == 0 && vkind == VKIND_INLINE {
                let raw = rd_u32(b, kend + 6) as usize;
                if raw != stored_len {
                    return Err(format!(
                        "leaf entry {i}: uncompressed value with raw length {raw} != stored {stored_len}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_branch(&self) -> Result<(), ParseError> {
        let b = &self.bytes;
        let n = self.count;
        let refs_end = n
            .checked_add(1)
            .and_then(|c| c.checked_mul(CHILD_REF))
            .and_then(|x| x.checked_add(HEADER))
            .and_then(|x| x.checked_add(n * SLOT))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("branch claims {n} keys, too many for its size"))?;
        let offs_start = HEADER + (n + 1) * CHILD_REF;
        let mut prev: Option<&[u8]> = None;
        for i in 0..n {
            let slot = offs_start + i * SLOT;
            let off = rd_u32(b, slot) as usize;
            if off < refs_end {
                return Err(format!(
                    "branch key {i} offset {off} points into the header"
                ));
            }
            let klen = checked_u32(b, off)
                .ok_or_else(|| format!("branch key {i} offset {off} out of bounds"))?
                as usize;
            let key = b
                .get(off + 4..(off + 4).saturating_add(klen))
                .filter(|k| k.len() == klen)
                .ok_or_else(|| format!("branch key {i} of {klen} bytes runs past the node"))?;
            if let Some(p) = prev
                && p >= key
            {
                return Err(format!("branch keys out of order at key {i}"));
            }
            if !check_slot(b, slot, key) {
                return Err(format!(
                    "key slot {i} disagrees with its key (length or prefix)"
                ));
            }
            prev = Some(key);
        }
        for i in 0..=n {
            let (page, _) = self.branch_child(i);
            if page < 2 {
                return Err(format!("branch child {i} points at meta page {page}"));
            }
        }
        Ok(())
    }

    pub(crate) fn is_leaf(&self) -> bool {
        self.kind == KIND_LEAF
    }
    pub(crate) fn is_branch(&self) -> bool {
        self.kind == KIND_BRANCH
    }
    pub(crate) fn is_overflow(&self) -> bool {
        self.kind == KIND_OVERFLOW
    }
    pub(crate) fn count(&self) -> usize {
        self.count
    }
    pub(crate) fn len_bytes(&self) -> usize {
        self.bytes.len()
    }
    /// The whole node image, as written to the file.
    pub(crate) fn image(&self) -> &[u8] {
        &self.bytes
    }
    pub(crate) fn txn(&self) -> u64 {
        rd_u64(&self.bytes, 16)
    }
    pub(crate) fn crc(&self) -> u32 {
        rd_u32(&self.bytes, 0)
    }

    /// Payload of an overflow run.
    pub(crate) fn overflow_data(&self) -> &[u8] {
        &self.bytes[HEADER..HEADER + self.count]
    }

    fn leaf_entry(&self, i: usize) -> (usize, usize) {
        let slot = HEADER + i * SLOT;
        let off = rd_u32(&self.bytes, slot) as usize;
        let klen = rd_u32(&self.bytes, slot + 4) as usize;
        (off + 4, off + 4 + klen)
    }
    pub(crate) fn leaf_key(&self, i: usize) -> &[u8] {
        let (s, e) = self.leaf_entry(i);
        &self.bytes[s..e]
    }
    pub(crate) fn leaf_value(&self, i: usize) -> ValueRef<'_> {
        let (_, kend) = self.leaf_entry(i);
        let b = &self.bytes;
        let compressed = b[kend + 1] & FLAG_COMPRESSED != 0;
        let stored_len = rd_u32(b, kend + 2);
        let raw_len = rd_u32(b, kend + 6);
        if b[kend] == VKIND_INLINE {
            ValueRef::Inline {
                stored: &b[kend + 10..kend + 10 + stored_len as usize],
                raw_len,
                compressed,
            }
        } else {
            ValueRef::Overflow {
                page: rd_u64(b, kend + 10),
                crc: rd_u32(b, kend + 18),
                stored_len,
                raw_len,
                compressed,
            }
        }
    }
    /// The encoded bytes of leaf entry `i`: key length, key, value header
    /// and the inline value or overflow reference (bounds checked by
    /// `parse`).
    pub(crate) fn leaf_entry_bytes(&self, i: usize) -> &[u8] {
        let (kstart, kend) = self.leaf_entry(i);
        let b = &self.bytes;
        let vend = if b[kend] == VKIND_INLINE {
            kend + 10 + rd_u32(b, kend + 2) as usize
        } else {
            kend + 22
        };
        &b[kstart - 4..vend]
    }
    /// The 8-byte key prefix stored in leaf slot `i` (see [`key_prefix`]).
    pub(crate) fn leaf_prefix(&self, i: usize) -> u64 {
        rd_u64_be(&self.bytes, HEADER + i * SLOT + 8)
    }

    /// Binary search among leaf keys.
    pub(crate) fn leaf_search(&self, key: &[u8]) -> Result<usize, usize> {
        let kp = key_prefix(key);
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let sp = rd_u64_be(&self.bytes, HEADER + mid * SLOT + 8);
            let ord = match sp.cmp(&kp) {
                Ordering::Equal => cmp_keys(self.leaf_key(mid), key),
                o => o,
            };
            match ord {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub(crate) fn branch_key(&self, i: usize) -> &[u8] {
        let slot = HEADER + (self.count + 1) * CHILD_REF + i * SLOT;
        let off = rd_u32(&self.bytes, slot) as usize;
        let klen = rd_u32(&self.bytes, slot + 4) as usize;
        &self.bytes[off + 4..off + 4 + klen]
    }
    pub(crate) fn branch_child(&self, i: usize) -> (u64, u32) {
        let at = HEADER + i * CHILD_REF;
        (rd_u64(&self.bytes, at), rd_u32(&self.bytes, at + 8))
    }
    /// Index of the child that may hold `key`: keys `< key[i]` live left of
    /// separator `i`, keys `>= key[i]` right of it.
    pub(crate) fn branch_find(&self, key: &[u8]) -> usize {
        let kp = key_prefix(key);
        let offs_start = HEADER + (self.count + 1) * CHILD_REF;
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let sp = rd_u64_be(&self.bytes, offs_start + mid * SLOT + 8);
            let le = match sp.cmp(&kp) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => cmp_keys(self.branch_key(mid), key) != Ordering::Greater,
            };
            if le {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn write_slot(buf: &mut [u8], at: usize, off: u32, key: &[u8]) {
    buf[at..at + 4].copy_from_slice(&off.to_le_bytes());
    buf[at + 4..at + 8].copy_from_slice(&(key.len() as u32).to_le_bytes());
    buf[at + 8..at + 16].copy_from_slice(&key_prefix(key).to_be_bytes());
}

/// Checks that a slot's length and prefix agree with the key it points at.
fn check_slot(b: &[u8], slot: usize, key: &[u8]) -> bool {
    rd_u32(b, slot + 4) as usize == key.len() && rd_u64_be(b, slot + 8) == key_prefix(key)
}

fn finish(mut buf: Vec<u8>, kind: u8, count: usize, txn: u64, page_size: usize) -> Vec<u8> {
    let npages = pages_for(buf.len(), page_size);
    buf.resize(npages * page_size, 0);
    buf[4] = kind;
    buf[8..12].copy_from_slice(&(count as u32).to_le_bytes());
    buf[12..16].copy_from_slice(&(npages as u32).to_le_bytes());
    buf[16..24].copy_from_slice(&txn.to_le_bytes());
    let crc = node_crc(&buf);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// What [`encode_leaf`] needs of the entries of a leaf.
pub(crate) trait LeafItems {
    fn count(&self) -> usize;
    fn key(&self, i: usize) -> &[u8];
    fn val(&self, i: usize) -> ValueRef<'_>;
    /// Entry `i`'s encoded bytes (key length to the end of the value), when
    /// it is already encoded in a validated page: copied in one piece.
    fn encoded(&self, _i: usize) -> Option<&[u8]> {
        None
    }
}

impl LeafItems for [(&[u8], ValueRef<'_>)] {
    fn count(&self) -> usize {
        self.len()
    }
    fn key(&self, i: usize) -> &[u8] {
        self[i].0
    }
    fn val(&self, i: usize) -> ValueRef<'_> {
        self[i].1
    }
}

/// Encodes a leaf; the result is padded to whole pages and checksummed.
pub(crate) fn encode_leaf<E: LeafItems + ?Sized>(
    entries: &E,
    txn: u64,
    page_size: usize,
) -> Vec<u8> {
    encode_leaf_into(Vec::new(), entries, txn, page_size)
}

/// [`encode_leaf`] into `buf` (cleared first; its allocation is reused).
pub(crate) fn encode_leaf_into<E: LeafItems + ?Sized>(
    mut buf: Vec<u8>,
    entries: &E,
    txn: u64,
    page_size: usize,
) -> Vec<u8> {
    let n = entries.count();
    // Usually one page; a node of several pages grows the buffer.
    buf.clear();
    buf.reserve_exact(page_size);
    buf.resize(HEADER + n * SLOT, 0);
    for i in 0..n {
        let off = buf.len() as u32;
        let k = entries.key(i);
        write_slot(&mut buf, HEADER + i * SLOT, off, k);
        if let Some(raw) = entries.encoded(i) {
            buf.extend_from_slice(raw);
            continue;
        }
        buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
        buf.extend_from_slice(k);
        match entries.val(i) {
            ValueRef::Inline {
                stored,
                raw_len,
                compressed,
            } => {
                buf.push(VKIND_INLINE);
                buf.push(if compressed { FLAG_COMPRESSED } else { 0 });
                buf.extend_from_slice(&(stored.len() as u32).to_le_bytes());
                buf.extend_from_slice(&raw_len.to_le_bytes());
                buf.extend_from_slice(stored);
            }
            ValueRef::Overflow {
                page,
                crc,
                stored_len,
                raw_len,
                compressed,
            } => {
                buf.push(VKIND_OVERFLOW);
                buf.push(if compressed { FLAG_COMPRESSED } else { 0 });
                buf.extend_from_slice(&stored_len.to_le_bytes());
                buf.extend_from_slice(&raw_len.to_le_bytes());
                buf.extend_from_slice(&page.to_le_bytes());
                buf.extend_from_slice(&crc.to_le_bytes());
            }
        }
    }
    finish(buf, KIND_LEAF, n, txn, page_size)
}

/// Encodes a branch with `keys.len() + 1` children.
pub(crate) fn encode_branch<K: AsRef<[u8]>>(
    keys: &[K],
    children: &[(u64, u32)],
    txn: u64,
    page_size: usize,
) -> Vec<u8> {
    encode_branch_into(Vec::new(), keys, children, txn, page_size)
}

/// [`encode_branch`] into `buf` (cleared first; its allocation is reused).
pub(crate) fn encode_branch_into<K: AsRef<[u8]>>(
    mut buf: Vec<u8>,
    keys: &[K],
    children: &[(u64, u32)],
    txn: u64,
    page_size: usize,
) -> Vec<u8> {
    debug_assert_eq!(keys.len() + 1, children.len());
    let total = HEADER
        + children.len() * CHILD_REF
        + keys
            .iter()
            .map(|k| SLOT + 4 + k.as_ref().len())
            .sum::<usize>();
    buf.clear();
    buf.reserve_exact(pages_for(total, page_size) * page_size);
    buf.resize(HEADER, 0);
    for (p, c) in children {
        buf.extend_from_slice(&p.to_le_bytes());
        buf.extend_from_slice(&c.to_le_bytes());
    }
    let offs_start = buf.len();
    buf.resize(offs_start + keys.len() * SLOT, 0);
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_ref();
        let off = buf.len() as u32;
        write_slot(&mut buf, offs_start + i * SLOT, off, k);
        buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
        buf.extend_from_slice(k);
    }
    finish(buf, KIND_BRANCH, keys.len(), txn, page_size)
}

/// Encodes an overflow run holding `data`.
pub(crate) fn encode_overflow(data: &[u8], txn: u64, page_size: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(pages_for(HEADER + data.len(), page_size) * page_size);
    buf.resize(HEADER, 0);
    buf.extend_from_slice(data);
    finish(buf, KIND_OVERFLOW, data.len(), txn, page_size)
}

/// Size of an encoded branch header plus its extra child reference.
pub(crate) const BRANCH_BASE: usize = HEADER + CHILD_REF;

impl Page {
    /// The image's buffer back (for reuse), if this is a single page.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.bytes.into_vec()
    }

    /// Wraps an image this process just encoded (skips validation).
    pub(crate) fn trusted(bytes: Vec<u8>) -> Page {
        let kind = bytes[4];
        let count = rd_u32(&bytes, 8) as usize;
        Page {
            bytes: bytes.into_boxed_slice(),
            kind,
            count,
        }
    }
}
