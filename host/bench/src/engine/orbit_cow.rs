//! The in-house copy-on-write B+tree (`orbit-cow-btree`) behind [`Engine`]:
//! the page cache gets `cache_bytes`; `Sync` is `SyncMode::PerCommit`
//! (concurrent writers merged into one commit and one fdatasync), otherwise
//! `SyncMode::None` and `sync` calls `Db::sync`. Other options are the
//! engine's defaults (4 KiB pages, 256 keys per node, LZ4 for compressible
//! values).

use std::ops::Bound;
use std::path::Path;

use orbit_cow_btree::{Db, Options, SyncMode, WriteBatch};

use super::{Engine, EngineError, EngineSettings, allocated_bytes, failed};

const NAME: &str = "orbit-cow";

pub struct OrbitCow {
    db: Db,
    dir: std::path::PathBuf,
}

impl OrbitCow {
    pub fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        let options = Options {
            sync: if settings.durability.sync_each_commit() {
                SyncMode::PerCommit
            } else {
                SyncMode::None
            },
            cache_size: usize::try_from(settings.cache_bytes).unwrap_or(usize::MAX),
            ..Options::default()
        };
        let db = Db::open(dir, options).map_err(failed(NAME, "open"))?;
        Ok(OrbitCow {
            db,
            dir: dir.to_path_buf(),
        })
    }
}

impl Engine for OrbitCow {
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let mut b = WriteBatch::new();
        for (k, v) in batch {
            b.put(*k, *v);
        }
        self.db.write(b).map_err(failed(NAME, "write"))
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError> {
        // Copies the value into `out`, as the redb adapter does.
        self.db.get_into(key, out).map_err(failed(NAME, "get"))
    }

    fn scan(
        &self,
        from: &[u8],
        limit: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize, EngineError> {
        // Borrowed entries (like redb's access guards): the visitor sees
        // every key and value, which it checks.
        let mut entries = self.db.range(Bound::Included(from), Bound::Unbounded);
        let mut n = 0;
        while n < limit {
            let Some(item) = entries.next_ref() else {
                break;
            };
            let (k, v) = item.map_err(failed(NAME, "scan"))?;
            visit(k, v);
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
