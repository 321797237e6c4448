//! The in-house LSM tree (`orbit-lsm`) behind [`Engine`]: the block cache
//! gets `cache_bytes`; `Sync` is `SyncMode::PerCommit` (group commit across
//! writers), otherwise `SyncMode::None` and `sync` calls `Db::sync`. Other
//! options are the engine's defaults (64 MiB memtables, 1% bloom filters,
//! LZ4 when it saves an eighth).

use std::ops::Bound;
use std::path::Path;

use orbit_lsm::{Db, Options, SyncMode, WriteBatch};

use super::{Engine, EngineError, EngineSettings, allocated_bytes, failed};

const NAME: &str = "orbit-lsm";

pub struct OrbitLsm {
    db: Db,
    dir: std::path::PathBuf,
}

impl OrbitLsm {
    pub fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        let options = Options {
            sync: if settings.durability.sync_each_commit() {
                SyncMode::PerCommit
            } else {
                SyncMode::None
            },
            block_cache_size: settings.cache_bytes,
            ..Options::default()
        };
        let db = Db::open(dir, options).map_err(failed(NAME, "open"))?;
        Ok(OrbitLsm {
            db,
            dir: dir.to_path_buf(),
        })
    }
}

impl Engine for OrbitLsm {
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let mut b = WriteBatch::new();
        for (k, v) in batch {
            b.put(k, v);
        }
        self.db.write(b).map_err(failed(NAME, "write"))
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError> {
        match self.db.get(key).map_err(failed(NAME, "get"))? {
            Some(v) => {
                *out = v;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        from: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, EngineError> {
        let mut n = 0;
        for item in self
            .db
            .range(Bound::Included(from), Bound::Unbounded)
            .take(limit)
        {
            let (k, v) = item.map_err(failed(NAME, "scan"))?;
            visit(&k, &v);
            n += 1;
        }
        Ok(n)
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.db.sync().map_err(failed(NAME, "sync"))
    }

    fn disk_bytes(&self) -> Result<u64, EngineError> {
        allocated_bytes(&self.dir)
    }
}
