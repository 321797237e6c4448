//! Orphan cleanup: removing what the new manifest does not name.

use crate::filenames::parse_name;
use crate::fs::FileSystem;
use std::collections::HashSet;
use std::path::Path;

/// Deletes, among the files listed before recovery started (`names`), every table not in
/// `live`, every log numbered below `wal_number` (the engine's new log) and every manifest
/// other than `manifest_number`. Other names (`CURRENT`, `LOCK`, foreign files) are kept.
///
/// Only called after the manifest switch is durable, when these files are garbage: leftovers
/// of a failed creation, orphan tables of an interrupted flush, compaction or earlier
/// recovery, logs now covered by a table, and superseded manifests. Best effort: a file that
/// cannot be deleted is logged and left for the next open, which removes it then.
pub(super) fn remove_obsolete(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
    live: &HashSet<u64>,
    wal_number: u64,
    manifest_number: u64,
) {
    for n in names {
        let remove = match parse_name(n) {
            Some(("sst", id)) => !live.contains(&id),
            Some(("log", id)) => id < wal_number,
            Some(("manifest", id)) => id != manifest_number,
            _ => false,
        };
        if remove {
            let p = dir.join(n);
            if let Err(e) = fs.remove(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not delete obsolete file");
            }
        }
    }
}
