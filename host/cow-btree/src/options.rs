//! Tuning knobs of a database, with the defaults the Orbit deployment
//! documents use (`ORBIT_COW_*`). DESIGN.md says exactly what each one means.

use std::time::Duration;

/// When a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every [`crate::Db::write`] returns after one `fdatasync` covering it;
    /// concurrent writers share that `fdatasync` (group commit).
    PerCommit,
    /// Commits are visible at once but kept in memory (see
    /// [`Options::dirty_limit`]); a background thread writes them to the file
    /// and calls `fdatasync` every period. A crash (of the process or the
    /// machine) loses at most the commits since the last such sync.
    Periodic(Duration),
    /// Commits are visible at once but kept in memory (see
    /// [`Options::dirty_limit`]); they reach the file durably only at
    /// [`crate::Db::sync`], when the database is dropped, or when space
    /// recycling forces a sync. A crash loses the commits since the last sync.
    None,
}

/// Options of [`crate::Db::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Durability of commits.
    pub sync: SyncMode,
    /// Most keys in one tree node (leaf or branch); nodes also split when
    /// their encoding would exceed one page. At least 4.
    pub max_keys_per_node: u32,
    /// LZ4-compress values of 64 bytes or more when their head does not look
    /// random and compression saves at least an eighth of their size.
    pub compression: bool,
    /// Most bytes of queued batches (keys plus values) merged into one group
    /// commit; one batch larger than this is still committed, alone. It caps
    /// the work (and so the latency) of one commit; nothing is buffered
    /// beyond the queued batches themselves. (The host fills it from
    /// `ORBIT_COW_WAL_BUFFER_SIZE`; the engine has no write-ahead log.)
    pub max_group_commit_bytes: u64,
    /// Page size in bytes of a *new* file (power of two, 1 KiB to 64 KiB); an
    /// existing file keeps the page size it was created with.
    pub page_size: usize,
    /// Bytes of decoded pages kept in memory, dirty nodes of non-durable
    /// commits included.
    pub cache_size: usize,
    /// `Periodic`/`None` only: most bytes of nodes written by non-durable
    /// commits and held in memory only; beyond it they are written to the
    /// file (without `fdatasync`, without making them durable). The limit
    /// used is `min(dirty_limit, cache_size / 2)`.
    pub dirty_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncMode::PerCommit,
            max_keys_per_node: 256,
            compression: true,
            max_group_commit_bytes: 1 << 20,
            page_size: 4096,
            cache_size: 256 << 20,
            dirty_limit: 64 << 20,
        }
    }
}
