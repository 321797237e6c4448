//! The memory backend: every entry lives in an ordered in-process map, and
//! with `disk_backup` on, [`Storage::flush`] writes a checksummed snapshot
//! that [`MemoryStorage::open`] restores.
//!
//! Why it exists: the zero-dependency default for development, tests and
//! small deployments that can afford to lose the writes since the last
//! snapshot.
//!
//! Guarantees:
//! - the full storage contract of `orbit-storage` (checked by the
//!   `orbit-conformance` suite in `tests/conformance.rs`), with its rules
//!   applied from [`orbit_storage::rules`] and [`orbit_storage::validate`];
//! - durability up to the last successful `flush` only: the server calls it
//!   every `backup_interval` and on SIGTERM; a crash loses later writes
//!   but never corrupts the snapshot (see module `snapshot` for the format and the
//!   atomic write);
//! - a corrupt or truncated snapshot fails `open` with
//!   [`StorageError::Corrupt`] instead of silently starting empty;
//! - a version is never handed out twice, across restarts and crashes
//!   included: with `disk_backup` on, versions are reserved ahead in a
//!   small file next to the snapshot; with it off, the counter starts from
//!   the clock (see module `reserve`);
//! - at most `max_entries` live keys (`ORBIT_MEMORY_MAX_ENTRIES`): a write
//!   that would add one more fails with [`StorageError::CapacityExceeded`];
//!   nothing is ever evicted.
//!
//! Concurrency: one `parking_lot::RwLock` around the `state::State`;
//! reads take it shared, writes exclusively and briefly. A flush copies the
//! live entries under the read lock (cheap `Bytes` clones) and serialises
//! and writes them on a blocking thread without holding it. Flushes are
//! serialised among themselves so an older copy never overwrites a newer
//! snapshot.

mod reserve;
mod snapshot;
mod state;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::reserve::Reservation;
use crate::state::State;
use orbit_storage::{
    BatchOp, Entry, ListPage, ListQuery, MemoryConfig, Precondition, PutOptions, Storage,
    StorageError, StorageResult, StorageStats, Version, now_millis, validate,
};

/// The memory backend. Cheap to share: wrap it in an `Arc` (for example
/// `Arc<dyn Storage>`).
pub struct MemoryStorage {
    shared: Arc<Shared>,
}

struct Shared {
    state: RwLock<State>,
    backup: Option<Backup>,
}

/// Where and how the snapshot is kept (`disk_backup` on).
struct Backup {
    path: PathBuf,
    /// Held for a whole flush, so flushes never interleave.
    flushed: Mutex<Flushed>,
    /// Versions reserved ahead; taken inside the state's write lock.
    reservation: Mutex<Reservation>,
    /// Size of the snapshot file, for `stats`; separate from `flushed` so
    /// `stats` never waits for a flush in progress.
    disk_bytes: Mutex<Option<u64>>,
}

struct Flushed {
    /// `State::content` captured by the last successful snapshot (or the
    /// restore): the state is clean while the two are equal.
    content: u64,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage")
            .field(
                "backup_path",
                &self.shared.backup.as_ref().map(|backup| &backup.path),
            )
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// Opens the memory backend. Returns `Self`; wrap it in an `Arc` to share
    /// it (`Arc::new(MemoryStorage::open(&config)?)`).
    ///
    /// With `disk_backup` off nothing on disk is touched and the store starts
    /// empty. With it on, the snapshot's directory is created if missing, and
    /// the snapshot at `backup_path` is restored if it exists (an absent file
    /// is an empty start; a corrupt or truncated one is
    /// [`StorageError::Corrupt`]). Entries already expired are skipped. If the
    /// snapshot holds more live keys than `max_entries`, it is still restored
    /// (with a warning) and new keys are refused until enough are deleted.
    ///
    /// Blocking: reads the snapshot synchronously; call it at startup.
    pub fn open(config: &MemoryConfig) -> StorageResult<Self> {
        let mut state = State::new(config.max_entries);
        let backup = if config.disk_backup {
            let path = PathBuf::from(&config.backup_path);
            if config.backup_path.is_empty() || path.file_name().is_none() {
                return Err(StorageError::Invalid(format!(
                    "ORBIT_MEMORY_BACKUP_PATH {:?} does not name a file",
                    config.backup_path
                )));
            }
            let dir = snapshot::parent_dir(&path);
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::io("create snapshot directory", dir, e))?;
            // Find out now, not at the first snapshot, if snapshots cannot be
            // written there (a volume without the right fsGroup, say).
            let probe = dir.join(format!(".orbit-write-probe-{}", std::process::id()));
            std::fs::write(&probe, b"probe")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| StorageError::io("write a file in the snapshot directory", dir, e))?;

            let disk_bytes = match snapshot::read(&path)? {
                Some(file) => {
                    let restored = snapshot::decode(&path, &file, now_millis())?;
                    let live = restored.data.entries.len();
                    tracing::info!(
                        path = %path.display(),
                        entries = live,
                        skipped_expired = restored.skipped_expired,
                        next_version = restored.data.next_version,
                        "memory backend restored its snapshot"
                    );
                    if live as u64 > config.max_entries {
                        tracing::warn!(
                            entries = live,
                            max_entries = config.max_entries,
                            "snapshot holds more keys than ORBIT_MEMORY_MAX_ENTRIES; new keys are refused until enough are deleted"
                        );
                    }
                    state = State::restore(config.max_entries, restored.data);
                    Some(file.len() as u64)
                }
                None => {
                    tracing::info!(path = %path.display(), "no memory snapshot yet; starting empty");
                    None
                }
            };
            let (reservation, start) = Reservation::open(&path, state.next_version())?;
            state.raise_next_version(start);
            Some(Backup {
                path,
                flushed: Mutex::new(Flushed {
                    content: state.content(),
                }),
                reservation: Mutex::new(reservation),
                disk_bytes: Mutex::new(disk_bytes),
            })
        } else {
            state.raise_next_version(reserve::clock_floor());
            None
        };
        Ok(MemoryStorage {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                backup,
            }),
        })
    }
}

impl Shared {
    /// Makes sure the next `count` versions are reserved (`disk_backup`
    /// on); called with the state's write lock held, so reservations follow
    /// the counter. Blocking once per `reserve::STEP` versions.
    fn reserve(&self, state: &State, count: u64) -> StorageResult<()> {
        match &self.backup {
            Some(backup) => backup.reservation.lock().cover(state.next_version(), count),
            None => Ok(()),
        }
    }

    /// Writes a snapshot if anything changed since the last one. Blocking.
    fn flush_blocking(&self) -> StorageResult<()> {
        let Some(backup) = &self.backup else {
            return Ok(());
        };
        let mut flushed = backup.flushed.lock();
        let (content, data) = {
            let state = self.state.read();
            if state.content() == flushed.content {
                return Ok(());
            }
            (state.content(), state.snapshot(now_millis()))
        };
        let file = snapshot::encode(&backup.path, &data)?;
        snapshot::write_atomic(&backup.path, &file)?;
        flushed.content = content;
        *backup.disk_bytes.lock() = Some(file.len() as u64);
        tracing::debug!(
            path = %backup.path.display(),
            entries = data.entries.len(),
            bytes = file.len(),
            "memory snapshot written"
        );
        Ok(())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &[u8]) -> StorageResult<Option<Entry>> {
        validate::key(key)?;
        let now = now_millis();
        Ok(self.shared.state.read().get(key, now))
    }

    async fn put(&self, key: &[u8], value: Bytes, options: PutOptions) -> StorageResult<Version> {
        validate::key(key)?;
        let key = Bytes::copy_from_slice(key);
        let now = now_millis();
        let mut state = self.shared.state.write();
        self.shared.reserve(&state, 1)?;
        state.put(key, value, options, now)
    }

    async fn delete(&self, key: &[u8], precondition: Precondition) -> StorageResult<bool> {
        validate::key(key)?;
        let now = now_millis();
        let mut state = self.shared.state.write();
        self.shared.reserve(&state, 1)?;
        state.delete(key, precondition, now)
    }

    async fn list(&self, query: &ListQuery) -> StorageResult<ListPage> {
        validate::query(query)?;
        let now = now_millis();
        Ok(self.shared.state.read().list(query, now))
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> StorageResult<Vec<Option<Version>>> {
        validate::batch(&ops)?;
        let now = now_millis();
        let mut state = self.shared.state.write();
        self.shared.reserve(&state, ops.len() as u64)?;
        state.batch(ops, now)
    }

    async fn purge_expired(&self) -> StorageResult<u64> {
        let now = now_millis();
        Ok(self.shared.state.write().purge_expired(now))
    }

    async fn stats(&self) -> StorageResult<StorageStats> {
        let (keys, bytes) = {
            let state = self.shared.state.read();
            (state.len(), state.bytes())
        };
        let disk_bytes = self
            .shared
            .backup
            .as_ref()
            .and_then(|backup| *backup.disk_bytes.lock());
        Ok(StorageStats {
            keys,
            bytes,
            sizes_known: true,
            disk_bytes,
            remote: None,
        })
    }

    /// Writes a snapshot when `disk_backup` is on and something changed since
    /// the last one; otherwise does nothing. The work runs on a Tokio
    /// blocking thread (so this needs a Tokio runtime). On failure the state stays dirty, so the next call tries again
    /// from scratch.
    async fn flush(&self) -> StorageResult<()> {
        if self.shared.backup.is_none() {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.flush_blocking())
            .await
            .map_err(|e| StorageError::Unavailable(format!("memory snapshot task failed: {e}")))?
    }
}
