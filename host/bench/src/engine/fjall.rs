//! fjall behind [`Engine`]: one keyspace, `cache_size(cache_bytes)`, fjall's
//! defaults otherwise (LZ4, Bloom filters, leveled compaction). Writes are
//! fjall write batches; `Sync` sets `PersistMode::SyncAll` on each batch.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Engine, EngineError, EngineSettings, allocated_bytes, failed};

const NAME: &str = "fjall";

pub struct Fjall {
    db: Database,
    keyspace: Keyspace,
    sync_each_commit: bool,
    dir: PathBuf,
}

impl Fjall {
    pub fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        let db = Database::builder(dir)
            .cache_size(settings.cache_bytes)
            .open()
            .map_err(failed(NAME, "open"))?;
        let keyspace = db
            .keyspace("bench", KeyspaceCreateOptions::default)
            .map_err(failed(NAME, "open keyspace"))?;
        Ok(Fjall {
            db,
            keyspace,
            sync_each_commit: settings.durability.sync_each_commit(),
            dir: dir.to_path_buf(),
        })
    }
}

impl Engine for Fjall {
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let mut wb = self.db.batch();
        if self.sync_each_commit {
            wb = wb.durability(Some(PersistMode::SyncAll));
        }
        for (k, v) in batch {
            wb.insert(&self.keyspace, *k, *v);
        }
        wb.commit().map_err(failed(NAME, "write"))
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError> {
        match self.keyspace.get(key).map_err(failed(NAME, "get"))? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
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
        for guard in self.keyspace.range(from..).take(limit) {
            let (k, v) = guard.into_inner().map_err(failed(NAME, "scan"))?;
            visit(&k, &v);
            n += 1;
        }
        Ok(n)
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(failed(NAME, "sync"))
    }

    fn disk_bytes(&self) -> Result<u64, EngineError> {
        allocated_bytes(&self.dir)
    }
}
