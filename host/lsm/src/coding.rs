//! Byte-level encodings shared by every on-disk format: LEB128 varints, fixed-width
//! little-endian integers, and the internal key (user key + 8-byte trailer).
//!
//! Decoders never panic: every read is bounds-checked and returns `None` on short input, which
//! callers turn into a `Corrupt` error naming the file.

use std::cmp::Ordering;

/// Kind byte stored in the low 8 bits of an internal key's trailer.
pub const KIND_DELETE: u8 = 0;
/// A live value.
pub const KIND_PUT: u8 = 1;

/// Largest sequence number (56 bits; the low byte of the trailer holds the kind).
pub const MAX_SEQ: u64 = (1 << 56) - 1;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint from the front of `buf`; returns the value and the bytes consumed.
#[inline]
pub fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    match buf.first() {
        Some(&b) if b < 0x80 => return Some((b as u64, 1)),
        None => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let part = (b & 0x7f) as u64;
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A cursor over a byte slice with checked reads.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn varint(&mut self) -> Option<u64> {
        let (v, n) = get_varint(self.buf.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    /// A varint length followed by that many bytes.
    pub fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.bytes(n)
    }
}

pub fn put_len_prefixed(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends the internal key `user_key || trailer` where trailer = (seq << 8 | kind), big-endian.
pub fn put_internal_key(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: u8) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&((seq << 8) | kind as u64).to_be_bytes());
}

pub fn internal_key(user_key: &[u8], seq: u64, kind: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(user_key.len() + 8);
    put_internal_key(&mut v, user_key, seq, kind);
    v
}

/// Splits an internal key into (user key, seq, kind). `None` if shorter than the trailer.
pub fn split_internal_key(ik: &[u8]) -> Option<(&[u8], u64, u8)> {
    if ik.len() < 8 {
        return None;
    }
    let (u, t) = ik.split_at(ik.len() - 8);
    let t = u64::from_be_bytes(t.try_into().ok()?);
    Some((u, t >> 8, t as u8))
}

/// The user-key part of an internal key (whole slice if malformed; callers validate earlier).
pub fn user_key(ik: &[u8]) -> &[u8] {
    &ik[..ik.len().saturating_sub(8)]
}

/// Internal-key order: user key ascending, then sequence number descending (newest first).
pub fn compare_internal(a: &[u8], b: &[u8]) -> Ordering {
    let (ua, ta) = a.split_at(a.len().saturating_sub(8));
    let (ub, tb) = b.split_at(b.len().saturating_sub(8));
    match ua.cmp(ub) {
        Ordering::Equal => tb.cmp(ta),
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&b), Some((v, b.len())));
        }
        assert_eq!(get_varint(&[0xff; 11]), None);
    }

    #[test]
    fn internal_order() {
        let a = internal_key(b"a", 5, KIND_PUT);
        let a_old = internal_key(b"a", 3, KIND_PUT);
        let ab = internal_key(b"ab", 9, KIND_PUT);
        assert_eq!(compare_internal(&a, &a_old), Ordering::Less);
        assert_eq!(compare_internal(&a_old, &ab), Ordering::Less);
        assert_eq!(split_internal_key(&a), Some((&b"a"[..], 5, KIND_PUT)));
    }
}
