//! Write batches: the unit of atomicity.
//!
//! A batch is encoded once, and the same bytes are the write-ahead-log payload, so what is
//! replayed at recovery is exactly what was applied. Payload layout (little-endian):
//! `first_seq u64 | count u32 | count × (kind u8 | varint key_len | key | [varint val_len | val])`
//! where kind 1 = put (has a value) and 0 = delete (no value). Entry *i* gets sequence number
//! `first_seq + i`; a key that appears twice in one batch resolves to its last write.

use crate::coding::{KIND_DELETE, KIND_PUT, Reader, put_len_prefixed};

/// An atomic group of puts and deletes.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) rep: Vec<u8>,
    pub(crate) count: u32,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.rep.push(KIND_PUT);
        put_len_prefixed(&mut self.rep, key.as_ref());
        put_len_prefixed(&mut self.rep, value.as_ref());
        self.count += 1;
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.rep.push(KIND_DELETE);
        put_len_prefixed(&mut self.rep, key.as_ref());
        self.count += 1;
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch holds no operations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size in bytes (approximate memory and log cost).
    pub fn size_bytes(&self) -> usize {
        self.rep.len()
    }

    pub(crate) fn encode_payload(&self, first_seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.rep);
    }
}

/// One decoded operation.
pub(crate) struct Op<'a> {
    pub kind: u8,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Iterates the operations of a batch body; `None` item means malformed bytes.
pub(crate) fn ops(rep: &[u8]) -> impl Iterator<Item = Option<Op<'_>>> {
    let mut r = Reader::new(rep);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.is_empty() {
            return None;
        }
        let op = (|| {
            let kind = r.u8()?;
            let key = r.len_prefixed()?;
            let value = match kind {
                KIND_PUT => r.len_prefixed()?,
                KIND_DELETE => &[][..],
                _ => return None,
            };
            Some(Op { kind, key, value })
        })();
        failed = op.is_none();
        Some(op)
    })
}

/// Decodes a WAL payload header: (first_seq, count, body).
pub(crate) fn decode_payload(p: &[u8]) -> Option<(u64, u32, &[u8])> {
    let mut r = Reader::new(p);
    let seq = r.u64()?;
    let count = r.u32()?;
    Some((seq, count, &p[r.pos..]))
}

/// Fully validates a WAL payload: header, every op, and the declared count.
pub(crate) fn validate_payload(p: &[u8]) -> Option<(u64, u32, &[u8])> {
    let (seq, count, body) = decode_payload(p)?;
    let mut n = 0u32;
    for op in ops(body) {
        op?;
        n += 1;
    }
    (n == count && count > 0 && seq.checked_add(count as u64)? <= crate::coding::MAX_SEQ)
        .then_some((seq, count, body))
}
