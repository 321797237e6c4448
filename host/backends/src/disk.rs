//! Disk footprint of a backend's directory.

use std::path::Path;

/// Total size of the regular files under `dir` (recursively); `None` when
/// the directory cannot be read.
pub(crate) fn dir_size(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_size(&entry.path()).unwrap_or(0);
        } else {
            total += meta.len();
        }
    }
    Some(total)
}
