//! The two meta slots (pages 0 and 1) that make a commit atomic.
//!
//! A commit writes its new tree to pages no reader can see, then one meta
//! record naming the new root into the slot that does *not* hold the last
//! durable commit. The record carries its own CRC; recovery takes the newest
//! slot whose CRC holds and whose tree verifies, else the other one. So a
//! torn meta write can only ever lose the commit that was being written.

/// Magic bytes at the start of each meta slot.
pub(crate) const MAGIC: &[u8; 8] = b"ORBCOW01";
/// On-disk format version.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes of a meta record (the rest of the page is zero).
pub(crate) const META_LEN: usize = 64;

/// One commit's root record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub page_size: u32,
    pub txn: u64,
    /// Root node page, 0 for an empty tree.
    pub root: u64,
    pub root_crc: u32,
    /// Pages in use: the file's pages `[0, page_count)`.
    pub page_count: u64,
    /// Number of keys in the tree.
    pub entries: u64,
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.txn.to_le_bytes());
        b[24..32].copy_from_slice(&self.root.to_le_bytes());
        b[32..36].copy_from_slice(&self.root_crc.to_le_bytes());
        b[40..48].copy_from_slice(&self.page_count.to_le_bytes());
        b[48..56].copy_from_slice(&self.entries.to_le_bytes());
        let crc = crc32fast::hash(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a slot; `Err` says why it is not a valid record.
    pub(crate) fn decode(b: &[u8]) -> Result<Meta, String> {
        if b.len() < META_LEN {
            return Err(format!(
                "meta slot is {} bytes, expected {META_LEN}",
                b.len()
            ));
        }
        if b.iter().take(META_LEN).all(|&x| x == 0) {
            return Err("meta slot is empty (all zero)".into());
        }
        if &b[0..8] != MAGIC {
            return Err(format!(
                "bad magic {:02x?}, expected {:02x?}",
                &b[0..8],
                MAGIC
            ));
        }
        let crc = u32::from_le_bytes([b[60], b[61], b[62], b[63]]);
        let actual = crc32fast::hash(&b[..60]);
        if crc != actual {
            return Err(format!(
                "meta checksum mismatch: stored {crc:#010x}, computed {actual:#010x}"
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            ));
        }
        let m = Meta {
            page_size: u32_at(12),
            txn: u64_at(16),
            root: u64_at(24),
            root_crc: u32_at(32),
            page_count: u64_at(40),
            entries: u64_at(48),
        };
        if !m.page_size.is_power_of_two() || !(1024..=65536).contains(&m.page_size) {
            return Err(format!(
                "page size {} is not a power of two in 1 KiB..64 KiB",
                m.page_size
            ));
        }
        if m.page_count < 2 || (m.root != 0 && (m.root < 2 || m.root >= m.page_count)) {
            return Err(format!(
                "root page {} outside the {} pages in use",
                m.root, m.page_count
            ));
        }
        Ok(m)
    }
}
