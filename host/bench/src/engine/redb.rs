//! redb behind [`Engine`]: one table in `bench.redb`, `set_cache_size(cache_bytes)`.
//! Every batch is one write transaction (`Durability::Immediate` under `Sync`,
//! `Durability::None` otherwise); `sync` commits an empty `Immediate`
//! transaction, which makes all earlier non-durable commits durable. redb
//! admits one writer at a time, so concurrent writers queue for it.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::{Engine, EngineError, EngineSettings, allocated_bytes, failed};

const NAME: &str = "redb";
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

pub struct Redb {
    db: Database,
    sync_each_commit: bool,
    dir: PathBuf,
}

impl Redb {
    pub fn open(dir: &Path, settings: &EngineSettings) -> Result<Self, EngineError> {
        let db = Database::builder()
            .set_cache_size(usize::try_from(settings.cache_bytes).unwrap_or(usize::MAX))
            .create(dir.join("bench.redb"))
            .map_err(failed(NAME, "open"))?;
        let this = Redb {
            db,
            sync_each_commit: settings.durability.sync_each_commit(),
            dir: dir.to_path_buf(),
        };
        // Create the table so that readers of a fresh store find it.
        this.commit(Durability::Immediate, &[])?;
        Ok(this)
    }

    fn commit(&self, durability: Durability, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let mut tx = self.db.begin_write().map_err(failed(NAME, "begin write"))?;
        tx.set_durability(durability)
            .map_err(failed(NAME, "set durability"))?;
        {
            let mut table = tx.open_table(TABLE).map_err(failed(NAME, "open table"))?;
            for (k, v) in batch {
                table.insert(*k, *v).map_err(failed(NAME, "insert"))?;
            }
        }
        tx.commit().map_err(failed(NAME, "commit"))
    }
}

impl Engine for Redb {
    fn write(&self, batch: &[(&[u8], &[u8])]) -> Result<(), EngineError> {
        let durability = if self.sync_each_commit {
            Durability::Immediate
        } else {
            Durability::None
        };
        self.commit(durability, batch)
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool, EngineError> {
        let tx = self.db.begin_read().map_err(failed(NAME, "begin read"))?;
        let table = tx.open_table(TABLE).map_err(failed(NAME, "open table"))?;
        match table.get(key).map_err(failed(NAME, "get"))? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(v.value());
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
        let tx = self.db.begin_read().map_err(failed(NAME, "begin read"))?;
        let table = tx.open_table(TABLE).map_err(failed(NAME, "open table"))?;
        let mut n = 0;
        for entry in table
            .range(from..)
            .map_err(failed(NAME, "scan"))?
            .take(limit)
        {
            let (k, v) = entry.map_err(failed(NAME, "scan"))?;
            visit(k.value(), v.value());
            n += 1;
        }
        Ok(n)
    }

    fn sync(&self) -> Result<(), EngineError> {
        self.commit(Durability::Immediate, &[])
    }

    fn disk_bytes(&self) -> Result<u64, EngineError> {
        allocated_bytes(&self.dir)
    }
}
