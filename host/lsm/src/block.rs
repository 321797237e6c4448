//! Sorted key-value blocks with prefix-compressed keys and restart points (data and index
//! blocks share this format).
//!
//! Layout: entries, then `restart offsets (u32 LE each) | restart count (u32 LE)`.
//! Entry: `varint shared | varint unshared | varint value_len | varint trailer | user-key
//! suffix | value`. Keys are internal keys; the block stores their user-key part
//! prefix-compressed (`shared` bytes are taken from the previous user key) and their 8-byte
//! trailer `(seq << 8) | kind` as a varint, so compacted entries (sequence 0) cost one byte.
//! Every [`RESTART_INTERVAL`]-th entry is a
//! restart point with `shared = 0`, so a seek binary-searches restarts and scans at most one
//! interval. Keys compare with [`compare_internal`]. Decoding validates every offset; a
//! malformed block yields an error string, never a panic.

use crate::coding::{compare_internal, get_varint, put_varint};
use std::cmp::Ordering;
use std::ops::Deref;
use std::sync::Arc;

pub const RESTART_INTERVAL: usize = 16;

/// Builds one block.
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    last_key: Vec<u8>,
    entries: usize,
    interval: usize,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        BlockBuilder::with_restart_interval(RESTART_INTERVAL)
    }
}

impl BlockBuilder {
    /// A builder with a restart point every `interval` entries (index blocks use 1, so a seek
    /// is a pure binary search).
    pub fn with_restart_interval(interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::with_capacity(8 << 10),
            restarts: vec![0],
            counter: 0,
            last_key: Vec::new(),
            entries: 0,
            interval: interval.max(1),
        }
    }

    /// Adds an entry; keys must arrive in increasing internal-key order.
    /// `key` must be an internal key (at least 8 bytes).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let (user, trailer) = key.split_at(key.len().saturating_sub(8));
        let trailer = trailer
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or_default();
        let mut shared = 0;
        if self.counter < self.interval {
            let last_user = &self.last_key[..self.last_key.len().saturating_sub(8)];
            shared = last_user
                .iter()
                .zip(user)
                .take_while(|(a, b)| a == b)
                .count();
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (user.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        put_varint(&mut self.buf, trailer);
        self.buf.extend_from_slice(&user[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        self.entries += 1;
    }

    pub fn estimated_size(&self) -> usize {
        self.buf.len() + self.restarts.len() * 4 + 4
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block and resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        *self = BlockBuilder::with_restart_interval(self.interval);
        out
    }
}

/// A decoded (uncompressed, checksum-verified) block.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    restarts_at: usize,
    num_restarts: usize,
}

impl Block {
    /// Validates the restart array and wraps the bytes.
    pub fn new(data: Vec<u8>) -> Result<Block, String> {
        if data.len() < 4 {
            return Err(format!("block of {} bytes is too short", data.len()));
        }
        let n =
            u32::from_le_bytes(data[data.len() - 4..].try_into().map_err(|_| "short")?) as usize;
        let restarts_bytes = n
            .checked_mul(4)
            .and_then(|b| b.checked_add(4))
            .ok_or("restart count overflows")?;
        if n == 0 || restarts_bytes > data.len() {
            return Err(format!(
                "restart count {n} does not fit a block of {} bytes",
                data.len()
            ));
        }
        let restarts_at = data.len() - restarts_bytes;
        let b = Block {
            data,
            restarts_at,
            num_restarts: n,
        };
        for i in 0..n {
            if b.restart(i) > restarts_at {
                return Err(format!("restart point {i} points past the entries"));
            }
        }
        Ok(b)
    }

    fn restart(&self, i: usize) -> usize {
        let p = self.restarts_at + 4 * i;
        u32::from_le_bytes([
            self.data[p],
            self.data[p + 1],
            self.data[p + 2],
            self.data[p + 3],
        ]) as usize
    }

    /// Memory charged to the cache.
    pub fn charge(&self) -> usize {
        self.data.len() + 64
    }

    /// Decodes the entry at `pos` given the previous key; returns (shared, suffix range, value range, next pos).
    #[inline]
    fn entry_at(&self, pos: usize, prev_len: usize) -> Result<Entry, String> {
        let limit = self.restarts_at;
        let entries = self.data.get(..limit).unwrap_or(&[]);
        let varint = |p: &mut usize| -> Result<u64, String> {
            let (v, n) = get_varint(entries.get(*p..).unwrap_or(&[]))
                .ok_or_else(|| format!("bad varint at block offset {p}"))?;
            *p += n;
            Ok(v)
        };
        let size = |v: u64| usize::try_from(v).map_err(|_| "varint too large".to_string());
        let mut p = pos;
        // Shared, unshared and value lengths are single bytes for keys and values under 128
        // bytes (RocksDB's `DecodeEntry` takes the same shortcut).
        let (shared, unshared, vlen) = match entries.get(pos..pos + 3) {
            Some(&[a, b, c]) if (a | b | c) < 0x80 => {
                p += 3;
                (a as usize, b as usize, c as usize)
            }
            _ => (
                size(varint(&mut p)?)?,
                size(varint(&mut p)?)?,
                size(varint(&mut p)?)?,
            ),
        };
        let trailer = varint(&mut p)?;
        if shared > prev_len {
            return Err(format!(
                "entry at block offset {pos} shares {shared} bytes with a {prev_len}-byte key"
            ));
        }
        let kend = p.checked_add(unshared).ok_or("length overflow")?;
        let vend = kend.checked_add(vlen).ok_or("length overflow")?;
        if vend > limit {
            return Err(format!("entry at block offset {pos} runs past the entries"));
        }
        Ok(Entry {
            shared,
            key: (p, kend),
            trailer,
            value: (kend, vend),
        })
    }
}

struct Entry {
    shared: usize,
    key: (usize, usize),
    trailer: u64,
    value: (usize, usize),
}

impl Block {
    /// The key of restart point `i` as (user key, trailer), read in place: a restart entry
    /// shares nothing with the previous key, so its user key is contiguous in the block.
    fn restart_key(&self, i: usize) -> Result<(&[u8], u64), String> {
        let e = self.entry_at(self.restart(i), 0)?;
        Ok((&self.data[e.key.0..e.key.1], e.trailer))
    }
}

/// `compare_internal(user || trailer, target)` without assembling the left key.
fn compare_split(user: &[u8], trailer: u64, target: &[u8]) -> Ordering {
    let (tu, tt) = target.split_at(target.len().saturating_sub(8));
    user.cmp(tu)
        .then_with(|| tt.cmp(&trailer.to_be_bytes()[..]))
}

/// A cursor over a block. `B` is `Arc<Block>` for a cursor that must outlive the caller's
/// borrow (range iterators) or `&Block` for a point lookup, which then touches no reference
/// count shared with other threads.
pub struct BlockIter<B: Deref<Target = Block> = Arc<Block>> {
    block: B,
    next_pos: usize,
    key: Vec<u8>,
    value: (usize, usize),
    valid: bool,
}

impl<B: Deref<Target = Block>> BlockIter<B> {
    pub fn new(block: B) -> BlockIter<B> {
        BlockIter::with_key_buffer(block, Vec::new())
    }

    /// A cursor that decodes keys into `key` (cleared first), so a caller doing many lookups
    /// can reuse one allocation; [`BlockIter::into_key_buffer`] hands it back.
    pub fn with_key_buffer(block: B, mut key: Vec<u8>) -> BlockIter<B> {
        key.clear();
        BlockIter {
            block,
            next_pos: 0,
            key,
            value: (0, 0),
            valid: false,
        }
    }

    pub fn into_key_buffer(self) -> Vec<u8> {
        self.key
    }

    pub fn valid(&self) -> bool {
        self.valid
    }
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    pub fn value(&self) -> &[u8] {
        &self.block.data[self.value.0..self.value.1]
    }

    /// Advances; afterwards `valid()` is false at the end.
    pub fn next(&mut self) -> Result<(), String> {
        if self.next_pos >= self.block.restarts_at {
            self.valid = false;
            return Ok(());
        }
        let prev_user = self.key.len().saturating_sub(8);
        let e = self.block.entry_at(self.next_pos, prev_user)?;
        self.key.truncate(e.shared);
        self.key
            .extend_from_slice(&self.block.data[e.key.0..e.key.1]);
        self.key.extend_from_slice(&e.trailer.to_be_bytes());
        self.value = e.value;
        self.next_pos = e.value.1;
        self.valid = true;
        Ok(())
    }

    pub fn seek_to_first(&mut self) -> Result<(), String> {
        self.next_pos = 0;
        self.key.clear();
        self.next()
    }

    fn seek_restart(&mut self, i: usize) -> Result<(), String> {
        self.next_pos = self.block.restart(i);
        self.key.clear();
        self.next()
    }

    /// Positions at the first entry with key >= target.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), String> {
        // Last restart whose key is < target; restart keys are compared where they lie.
        let (mut lo, mut hi) = (0usize, self.block.num_restarts);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            // A restart at the very end holds no entry (only a malformed block has one); it
            // counts as not less, as an invalid cursor did.
            let less = self.block.restart(mid) < self.block.restarts_at && {
                let (user, trailer) = self.block.restart_key(mid)?;
                compare_split(user, trailer, target) == Ordering::Less
            };
            if less {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.seek_restart(lo)?;
        while self.valid && compare_internal(&self.key, target) == Ordering::Less {
            self.next()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::{KIND_PUT, internal_key};

    #[test]
    fn build_seek_scan() {
        let mut b = BlockBuilder::default();
        let keys: Vec<Vec<u8>> = (0..100u32)
            .map(|i| internal_key(format!("key{:05}", i * 2).as_bytes(), 7, KIND_PUT))
            .collect();
        for k in &keys {
            b.add(k, b"value");
        }
        let block = Arc::new(Block::new(b.finish()).unwrap());
        let mut it = BlockIter::new(block);
        it.seek_to_first().unwrap();
        let mut n = 0;
        while it.valid() {
            assert_eq!(it.key(), &keys[n][..]);
            assert_eq!(it.value(), b"value");
            n += 1;
            it.next().unwrap();
        }
        assert_eq!(n, 100);
        it.seek(&internal_key(b"key00051", 9, KIND_PUT)).unwrap();
        assert_eq!(it.key(), &keys[26][..]);
        it.seek(&internal_key(b"zzz", 9, KIND_PUT)).unwrap();
        assert!(!it.valid());
    }
}
