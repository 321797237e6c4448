//! Version reservations: why the memory backend never hands out a version
//! twice, even after `kill -9`.
//!
//! A snapshot records the next version, but a crash loses every write (and
//! every version handed out) since the last snapshot; restarting from the
//! snapshot's counter would give those versions again, and a client still
//! holding `If-Match: "<v>"` from a lost write could overwrite a new value.
//!
//! With `disk_backup` on, the backend therefore *reserves* versions ahead,
//! the way the local engines do: before a version at or above the reserved
//! limit is handed out, a new limit ([`STEP`] further on) is written to the
//! reservation file next to the snapshot (`<snapshot>.versions`) and made
//! durable (temporary file, fsync, rename, directory fsync). At open the
//! counter starts at the larger of the snapshot's next version and the
//! reserved limit, so after a crash versions resume above anything the dead
//! process could have given out. The cost is one small fsync per [`STEP`]
//! versions; a crash skips at most [`STEP`] versions.
//!
//! A failed reservation write is fatal for writes: the backend refuses every
//! later write (reads go on) until it is restarted, because a reservation
//! whose durability is unknown cannot be built on.
//!
//! With `disk_backup` off nothing is on disk, so the counter starts from a
//! clock floor instead: the current Unix time in microseconds. A restarted
//! process starts above every version the previous one gave out unless that
//! one averaged more than a million writes a second over its whole life, or
//! the clock was set back between the two.
//!
//! # File format (v1)
//! One ASCII line: `ORBIT-MEMORY-VERSIONS v1 reserved=<decimal> crc32=<8 hex>\n`,
//! where the CRC-32 (IEEE) covers the decimal digits. Anything else is
//! [`StorageError::Corrupt`] naming the file: the backend does not start on
//! a reservation it cannot read, since guessing could reuse versions.

use std::path::{Path, PathBuf};

use crate::snapshot;
use orbit_storage::{StorageError, StorageResult, Version};

/// Versions reserved per write of the reservation file.
pub(crate) const STEP: Version = 1 << 20;

const MAGIC: &str = "ORBIT-MEMORY-VERSIONS v1";

/// The reservation file of one memory store and the limit it holds.
#[derive(Debug)]
pub(crate) struct Reservation {
    path: PathBuf,
    /// Versions below this may be handed out.
    limit: Version,
    /// Set when a reservation write failed; every later write is refused.
    failed: bool,
}

impl Reservation {
    /// The reservation file that belongs to the snapshot at `snapshot_path`.
    pub fn path_for(snapshot_path: &Path) -> PathBuf {
        let mut name = snapshot_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".versions");
        snapshot_path.with_file_name(name)
    }

    /// Reads the reservation next to `snapshot_path` (absent: nothing
    /// reserved yet) and returns it with the version the counter must start
    /// at, at least `snapshot_next`. Blocking.
    pub fn open(snapshot_path: &Path, snapshot_next: Version) -> StorageResult<(Self, Version)> {
        let path = Self::path_for(snapshot_path);
        let limit = match std::fs::read(&path) {
            Ok(bytes) => decode(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(StorageError::io("read version reservation", &path, e)),
        };
        let start = snapshot_next.max(limit).max(1);
        Ok((
            Reservation {
                path,
                limit,
                failed: false,
            },
            start,
        ))
    }

    /// Makes sure versions `next .. next + count` are reserved, writing a new
    /// limit durably if they are not. Blocking (one fsync per [`STEP`]).
    pub fn cover(&mut self, next: Version, count: u64) -> StorageResult<()> {
        if self.failed {
            return Err(StorageError::Unavailable(format!(
                "the memory backend refuses writes: reserving versions in {} failed earlier; restart the server",
                self.path.display()
            )));
        }
        let end = next.checked_add(count).ok_or_else(exhausted)?;
        if end <= self.limit {
            return Ok(());
        }
        let limit = end.checked_add(STEP).ok_or_else(exhausted)?;
        if let Err(error) = snapshot::write_atomic(&self.path, &encode(limit)) {
            self.failed = true;
            tracing::error!(%error, "version reservation failed; the memory backend refuses writes until restarted");
            return Err(error);
        }
        self.limit = limit;
        Ok(())
    }
}

/// The clock floor used without a reservation file: Unix microseconds.
pub(crate) fn clock_floor() -> Version {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as Version)
        .max(1)
}

fn exhausted() -> StorageError {
    StorageError::Unavailable("the memory backend's version counter is exhausted".into())
}

fn encode(limit: Version) -> Vec<u8> {
    let digits = limit.to_string();
    format!(
        "{MAGIC} reserved={digits} crc32={:08x}\n",
        crc32fast::hash(digits.as_bytes())
    )
    .into_bytes()
}

fn decode(path: &Path, bytes: &[u8]) -> StorageResult<Version> {
    let corrupt = |reason: &str| StorageError::Corrupt {
        path: path.display().to_string(),
        reason: format!(
            "{reason}; expected one line `{MAGIC} reserved=<n> crc32=<hex>` (delete the file only if versions may repeat: clients holding old ETags could overwrite newer values)"
        ),
    };
    let line = std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .ok_or_else(|| corrupt("not one line of text"))?;
    let rest = line
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(" reserved="))
        .ok_or_else(|| corrupt("missing header"))?;
    let (digits, crc) = rest
        .split_once(" crc32=")
        .ok_or_else(|| corrupt("missing checksum"))?;
    let expected = u32::from_str_radix(crc, 16).map_err(|_| corrupt("malformed checksum"))?;
    if crc.len() != 8 || crc32fast::hash(digits.as_bytes()) != expected {
        return Err(corrupt("checksum mismatch"));
    }
    digits
        .parse::<Version>()
        .map_err(|_| corrupt("malformed reserved version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("orbit_backup.json");
        let (mut r, start) = Reservation::open(&snap, 7).unwrap();
        assert_eq!(start, 7);
        r.cover(7, 1).unwrap();
        let path = Reservation::path_for(&snap);
        assert_eq!(path, dir.path().join("orbit_backup.json.versions"));
        let (_, start) = Reservation::open(&snap, 7).unwrap();
        assert_eq!(start, 8 + STEP, "a restart resumes above the reservation");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Reservation::open(&snap, 7).unwrap_err().to_string();
        assert!(err.contains("orbit_backup.json.versions"), "{err}");
        std::fs::write(&path, b"").unwrap();
        assert!(Reservation::open(&snap, 7).is_err());
    }

    #[test]
    fn a_failed_reservation_refuses_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("gone").join("orbit_backup.json");
        let (mut r, start) = Reservation::open(&snap, 1).unwrap();
        assert!(r.cover(start, 1).is_err(), "the directory does not exist");
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        let err = r.cover(start, 1).unwrap_err().to_string();
        assert!(err.contains("restart"), "{err}");
    }
}
