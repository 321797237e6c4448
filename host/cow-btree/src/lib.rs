//! `orbit-cow-btree`: Orbit's copy-on-write B+tree storage engine.
//!
//! One directory, one page file. Readers work on immutable snapshots; one
//! writer at a time builds the next tree out of new pages and publishes it
//! by writing a checksummed meta record into one of two slots, so a commit
//! is atomic and costs one `fdatasync`. Concurrent durable writers are merged
//! into one commit (group commit). See `DESIGN.md` for the file format, the
//! commit protocol, recovery and what is assumed of the disk.
//!
//! ```no_run
//! use orbit_cow_btree::{Db, Options, WriteBatch};
//! use std::ops::Bound;
//! let db = Db::open("/tmp/example-db", Options::default())?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"k".to_vec(), b"v".to_vec());
//! db.write(batch)?;
//! assert_eq!(db.get(b"k")?, Some(b"v".to_vec()));
//! let snap = db.snapshot();
//! for kv in snap.range(Bound::Unbounded, Bound::Unbounded) {
//!     let (k, v) = kv?;
//!     println!("{k:?} = {v:?}");
//! }
//! # Ok::<(), orbit_cow_btree::Error>(())
//! ```

mod batch;
mod cache;
mod db;
mod error;
mod io;
mod meta;
mod options;
mod page;
mod recovery;
mod snapshot;
mod store;
mod write;

#[cfg(test)]
mod tests;

pub use batch::WriteBatch;
pub use db::{Db, FILE_NAME, MAX_KEY_LEN, MAX_VALUE_LEN, Stats};
pub use error::{Error, Result};
pub use options::{Options, SyncMode};
pub use snapshot::{RangeIter, Snapshot};

/// Entry points for fuzzers and decoder tests; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes a page image as the engine does when reading it from disk,
    /// then walks every entry. Returns an error string for bad input; must
    /// never panic.
    pub fn decode_page(bytes: &[u8], page_size: usize) -> Result<usize, String> {
        let page = crate::page::Page::parse(bytes.to_vec().into_boxed_slice(), page_size, None)?;
        let mut touched = (page.txn() & 1) as usize;
        if page.is_leaf() {
            for i in 0..page.count() {
                touched += page.leaf_key(i).len();
                let _ = page.leaf_value(i);
            }
            let _ = page.leaf_search(b"probe");
        } else if page.is_branch() {
            for i in 0..page.count() {
                touched += page.branch_key(i).len();
            }
            for i in 0..=page.count() {
                touched += page.branch_child(i).0 as usize & 1;
            }
            let _ = page.branch_find(b"probe");
        } else {
            touched += page.overflow_data().len();
        }
        Ok(touched)
    }

    /// Decodes a meta slot.
    pub fn decode_meta(bytes: &[u8]) -> Result<u64, String> {
        crate::meta::Meta::decode(bytes).map(|m| m.txn)
    }

    /// Encodes a small valid leaf (for mutation-based fuzzing seeds).
    pub fn sample_leaf(page_size: usize) -> Vec<u8> {
        let entries: Vec<(Vec<u8>, crate::page::Val)> = (0..20u32)
            .map(|i| {
                (
                    format!("key{i:04}").into_bytes(),
                    crate::page::Val::Inline {
                        stored: vec![i as u8; (i % 7) as usize],
                        raw_len: i % 7,
                        compressed: false,
                    },
                )
            })
            .collect();
        let view: Vec<(&[u8], crate::page::ValueRef<'_>)> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_ref()))
            .collect();
        crate::page::encode_leaf(&view[..], 1, page_size)
    }

    /// Encodes a small valid branch.
    pub fn sample_branch(page_size: usize) -> Vec<u8> {
        let keys: Vec<Vec<u8>> = (0..10u32)
            .map(|i| format!("sep{i:04}").into_bytes())
            .collect();
        let children: Vec<(u64, u32)> = (0..11u64).map(|i| (i + 2, i as u32)).collect();
        crate::page::encode_branch(&keys, &children, 1, page_size)
    }

    /// Recomputes the checksum of a page image in place (so mutated pages
    /// reach the structural checks).
    pub fn fix_checksum(bytes: &mut [u8]) {
        if bytes.len() >= 4 {
            let crc = crc32fast::hash(&bytes[4..]);
            bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        }
    }
}
