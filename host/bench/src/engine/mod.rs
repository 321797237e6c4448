//! One storage-engine interface for the side-by-side benchmark, and the
//! adapters that put RocksDB, fjall and redb behind it.
//!
//! Why: every engine exposes different knobs and transaction shapes; the
//! benchmark needs each one opened with the *same* settings (durability,
//! cache size) and driven through the *same* operations, so that a difference
//! in the numbers is a difference between engines, not between harness paths.
//!
//! Guarantees of every adapter:
//! - [`Engine::write`] applies a batch atomically; when the settings ask for
//!   [`Durability::Sync`] the batch is on stable storage when it returns
//!   (each engine's own fsync-on-commit mode, so group commit is the engine's).
//! - [`Engine::get`] copies the stored value into the caller's buffer, so the
//!   harness can check what came back (size and tag) instead of trusting it.
//! - [`Engine::sync`] makes every acknowledged write durable.
//!
//! Adding an engine: one file with a type implementing [`Engine`], one variant
//! in [`EngineKind`] and one arm in [`EngineKind::open`].

mod fjall;
mod orbit_cow;
mod orbit_lsm;
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// When a write reaches stable storage, made equal across engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Commits go to the engine's log without fsync; one sync at the end.
    None,
    /// Every commit is fsynced before it is acknowledged (RocksDB
    /// `WriteOptions::set_sync(true)`, fjall `PersistMode::SyncAll`, redb
    /// `Durability::Immediate`).
    Sync,
    /// Commits without fsync, and [`Engine::sync`] after every N operations
    /// (counted across all threads).
    EveryN(u64),
}

impl Durability {
    /// Whether each commit must itself be durable.
    pub fn sync_each_commit(self) -> bool {
        self == Durability::Sync
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::None => f.write_str("none"),
            Durability::Sync => f.write_str("sync"),
            Durability::EveryN(n) => write!(f, "every-{n}"),
        }
    }
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Durability::None),
            "sync" => Ok(Durability::Sync),
            other => {
                let n = other
                    .strip_prefix("every-")
                    .or_else(|| other.strip_prefix("every-n:"))
                    .ok_or_else(|| {
                        format!(
                            "durability {other:?}: expected none, sync or every-N (e.g. every-1000)"
                        )
                    })?;
                match n.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Durability::EveryN(n)),
                    _ => Err(format!(
                        "durability {other:?}: N must be a positive integer"
                    )),
                }
            }
        }
    }
}

/// Settings every engine is opened with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EngineSettings {
    pub durability: Durability,
    /// Bytes of block/page cache given to the engine (RocksDB LRU block cache,
    /// fjall `cache_size`, redb `set_cache_size`).
    pub cache_bytes: u64,
}

/// A failed engine operation, naming the engine and what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{engine}: {op} failed: {source}")]
    Backend {
        engine: &'static str,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Builds the error mapper for `engine` doing `op`.
pub(crate) fn failed<E>(engine: &'static str, op: &'static str) -> impl FnOnce(E) -> EngineError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |e| EngineError::Backend {
        engine,
        op,
        source: e.into(),
    }
}

/// The operations the benchmark drives. Implementations are shared by all
/// worker threads.
pub trait Engine: Send + Sync {
    /// Applies `batch` atomically (durably when the settings say `Sync`).
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError>;

    /// Looks `key` up; on a hit the value replaces the contents of `out`.
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError>;

    /// Visits up to `limit` entries in key order starting at the first key
    /// `>= from`; returns how many were visited.
    fn scan(
        &self,
        from: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, EngineError>;

    /// Makes every acknowledged write durable.
    fn sync(&self) -> Result<(), EngineError>;

    /// Bytes the engine occupies on disk (allocated blocks of its directory).
    fn disk_bytes(&self) -> Result<u64, EngineError>;
}

/// The engines the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    RocksDb,
    Fjall,
    Redb,
    /// The in-house LSM tree.
    #[serde(rename = "orbit-lsm")]
    OrbitLsm,
    /// The in-house copy-on-write B+tree.
    #[serde(rename = "orbit-cow")]
    OrbitCow,
}

impl EngineKind {
    pub const ALL: [EngineKind; 5] = [
        EngineKind::RocksDb,
        EngineKind::Fjall,
        EngineKind::Redb,
        EngineKind::OrbitLsm,
        EngineKind::OrbitCow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::RocksDb => "rocksdb",
            EngineKind::Fjall => "fjall",
            EngineKind::Redb => "redb",
            EngineKind::OrbitLsm => "orbit-lsm",
            EngineKind::OrbitCow => "orbit-cow",
        }
    }

    /// Opens (creating if missing) this engine's store in `dir`.
    pub fn open(
        self,
        dir: &Path,
        settings: &EngineSettings,
    ) -> Result<Box<dyn Engine>, EngineError> {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(match self {
            #[cfg(feature = "rocksdb")]
            EngineKind::RocksDb => Box::new(rocksdb::RocksDb::open(dir, settings)?),
            #[cfg(not(feature = "rocksdb"))]
            EngineKind::RocksDb => {
                return Err(EngineError::Backend {
                    engine: "rocksdb",
                    op: "open",
                    source: "engine-bench was built without the `rocksdb` feature".into(),
                });
            }
            EngineKind::Fjall => Box::new(fjall::Fjall::open(dir, settings)?),
            EngineKind::Redb => Box::new(redb::Redb::open(dir, settings)?),
            EngineKind::OrbitLsm => Box::new(orbit_lsm::OrbitLsm::open(dir, settings)?),
            EngineKind::OrbitCow => Box::new(orbit_cow::OrbitCow::open(dir, settings)?),
        })
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown engine {s:?}; known: rocksdb, fjall, redb, orbit-lsm, orbit-cow")
            })
    }
}

/// Allocated bytes (st_blocks × 512) of every file under `dir`.
pub fn allocated_bytes(dir: &Path) -> Result<u64, EngineError> {
    use std::os::unix::fs::MetadataExt;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io { path, source }
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = entry.path();
            // A file deleted by compaction between listing and stat is fine.
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            };
            if meta.is_dir() {
                stack.push(path);
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}
