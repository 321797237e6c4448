//! Names of the files in a database directory (DESIGN.md, "Files in the directory").
//!
//! Logs, tables and manifests are numbered from one counter (`Inner::alloc_file`), so a
//! number names exactly one file and is never reused; recovery starts the counter above every
//! number it finds, leftovers included.

/// Names the live manifest (its contents: the manifest's file name and `\n`).
pub(crate) const CURRENT: &str = "CURRENT";
/// The next `CURRENT`, written and fsynced before it is renamed over `CURRENT`.
pub(crate) const CURRENT_TMP: &str = "CURRENT.tmp";
/// Locked while a `Db` has the directory open.
pub(crate) const LOCK: &str = "LOCK";

/// `000123.sst`: a sorted table.
pub(crate) fn table_name(id: u64) -> String {
    format!("{id:06}.sst")
}

/// `000123.log`: the write-ahead log of one memtable.
pub(crate) fn wal_name(id: u64) -> String {
    format!("{id:06}.log")
}

/// `MANIFEST-000123`: a log of version edits.
pub(crate) fn manifest_name(id: u64) -> String {
    format!("MANIFEST-{id:06}")
}

/// Parses `000123.sst` / `000123.log` / `MANIFEST-000123` into (kind, number), kind being
/// `"sst"`, `"log"` or `"manifest"`; `None` for any other name.
pub(crate) fn parse_name(name: &str) -> Option<(&'static str, u64)> {
    if let Some(n) = name.strip_suffix(".sst") {
        return n.parse().ok().map(|n| ("sst", n));
    }
    if let Some(n) = name.strip_suffix(".log") {
        return n.parse().ok().map(|n| ("log", n));
    }
    if let Some(n) = name.strip_prefix("MANIFEST-") {
        return n.parse().ok().map(|n| ("manifest", n));
    }
    None
}
