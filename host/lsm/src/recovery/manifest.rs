//! The manifest at open: reading the one `CURRENT` names, opening the tables it lists, and
//! switching to a fresh manifest (the commit point of recovery).

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::filenames::{CURRENT, CURRENT_TMP, manifest_name, parse_name, table_name};
use crate::framing::{encode_record, read_log};
use crate::fs::{FileSystem, WritableFile};
use crate::table::Table;
use crate::version::{FileMeta, TableFile, Version, VersionEdit};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The fold of every edit in the manifest: what the tables hold.
pub(super) struct ManifestState {
    /// Live tables by file number.
    pub files: BTreeMap<u64, FileMeta>,
    /// Logs numbered below this are fully in tables.
    pub log_number: u64,
    /// A sequence number at or above every write in the tables.
    pub last_seq: u64,
    /// The next unused file number the manifest recorded.
    pub next_file: u64,
}

/// Reads the manifest `CURRENT` names and folds its edits, a torn final record discarded
/// (`framing::read_log`). A directory without `CURRENT` is a new database (the empty state),
/// unless it holds tables: then `CURRENT` was lost and this is `Corrupt`.
///
/// Guarantee: the state returned is exactly the one the last durable manifest edit described;
/// damage anywhere but a torn tail is reported as `Corrupt` naming the file and offset.
/// Manifests and logs without `CURRENT` are leftovers of a creation that failed (`CURRENT` is
/// written last when a database is created and never removed, so they hold no acknowledged
/// write); cleanup removes them.
pub(super) fn replay(fs: &dyn FileSystem, dir: &Path, names: &[String]) -> Result<ManifestState> {
    let current_path = dir.join(CURRENT);
    let mut state = ManifestState {
        files: BTreeMap::new(),
        log_number: 0,
        last_seq: 0,
        next_file: 1,
    };
    if names.iter().any(|n| n == CURRENT) {
        let cur = fs
            .read_all(&current_path)
            .map_err(|e| Error::io("read", &current_path, e))?;
        let mname = String::from_utf8(cur)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| parse_name(s).is_some_and(|(k, _)| k == "manifest"))
            .ok_or_else(|| {
                Error::corrupt(&current_path, Some(0), "does not name a MANIFEST file")
            })?;
        let mpath = dir.join(&mname);
        let data = fs
            .read_all(&mpath)
            .map_err(|e| Error::io("read manifest", &mpath, e))?;
        let log = read_log(&mpath, &data)?;
        for (off, payload) in log.records {
            let edit = VersionEdit::decode(payload)
                .map_err(|r| Error::corrupt(&mpath, Some(off), format!("bad version edit: {r}")))?;
            if let Some(v) = edit.log_number {
                state.log_number = state.log_number.max(v);
            }
            if let Some(v) = edit.next_file {
                state.next_file = state.next_file.max(v);
            }
            if let Some(v) = edit.last_seq {
                state.last_seq = state.last_seq.max(v);
            }
            for (_, id) in &edit.deleted {
                state.files.remove(id);
            }
            for f in edit.added {
                state.files.insert(f.id, f);
            }
        }
    } else if names
        .iter()
        .any(|n| parse_name(n).is_some_and(|(k, _)| k == "sst"))
    {
        return Err(Error::corrupt(
            &current_path,
            None,
            "CURRENT is missing but the directory holds tables",
        ));
    }
    Ok(state)
}

/// Opens every table in `files` (footer, index and filter checksums verified) and returns the
/// version holding them.
///
/// Guarantee: every table the manifest names is present and readable; a missing one is
/// `Corrupt` naming the file, never silently skipped.
pub(super) fn open_tables(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    names: &[String],
    files: BTreeMap<u64, FileMeta>,
    cache: &Arc<BlockCache>,
) -> Result<Version> {
    let mut tables = Vec::new();
    for (id, meta) in files {
        let path = dir.join(table_name(id));
        if !names.contains(&table_name(id)) {
            return Err(Error::corrupt(
                &path,
                None,
                "table named by the manifest is missing",
            ));
        }
        let table = Table::open(fs.clone(), path, id, cache.clone())?;
        tables.push(Arc::new(TableFile {
            meta,
            table: Arc::new(table),
        }));
    }
    Ok(Version::empty().apply(&[], tables))
}

/// Writes manifest `number` holding `snapshot` (one record describing the whole state),
/// fsyncs it, then points `CURRENT` at it: `CURRENT.tmp` written and fsynced, renamed over
/// `CURRENT`, directory fsynced. Returns the new manifest, open for the edits that follow.
///
/// Guarantee: this is the commit point of recovery. Until the rename is durable the
/// directory still means what the old manifest and logs say (every file written so far is
/// an orphan the next open removes); once this returns, the new manifest is in charge and
/// everything it does not name is garbage.
pub(super) fn switch(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    snapshot: &VersionEdit,
) -> Result<(Arc<dyn WritableFile>, PathBuf)> {
    let manifest_path = dir.join(manifest_name(number));
    let manifest = fs
        .create(&manifest_path)
        .map_err(|e| Error::io("create manifest", &manifest_path, e))?;
    let mut rec = Vec::new();
    encode_record(&mut rec, &snapshot.encode());
    manifest
        .append(&rec)
        .map_err(|e| Error::io("write manifest", &manifest_path, e))?;
    manifest
        .sync()
        .map_err(|e| Error::io("fsync manifest", &manifest_path, e))?;
    let tmp = dir.join(CURRENT_TMP);
    let f = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.append(format!("{}\n", manifest_name(number)).as_bytes())
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    let current_path = dir.join(CURRENT);
    fs.rename(&tmp, &current_path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok((manifest, manifest_path))
}
