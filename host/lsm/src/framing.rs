//! The checksummed record log shared by the write-ahead log and the manifest.
//!
//! Record layout (all little-endian):
//! `crc32 (4 bytes, over the length field and the payload) | length (4 bytes) | payload`.
//!
//! Torn-tail policy, applied by [`read_log`]: a record that is incomplete or fails its checksum
//! is a *torn tail* — discarded together with everything after it — only if no valid record
//! starts anywhere after it. If a valid record follows a bad one, the log is corrupt (data the
//! engine acknowledged may sit behind the bad bytes), and the error names the file and the
//! offset of the bad record.
//!
//! Zeros after the last record are not a torn tail: the write-ahead log is zero-filled ahead of
//! its appends (`SyncMode::PerCommit`), and a zero length is never a valid record.

use crate::error::{Error, Result};
use std::path::Path;

/// Bytes in a record header.
pub const HEADER: usize = 8;
/// Largest payload accepted when reading (guards allocations on garbage lengths).
pub const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(payload);
}

/// Checks whether a valid record starts at `pos`; returns its payload length.
fn valid_at(data: &[u8], pos: usize) -> Option<usize> {
    let hdr = data.get(pos..pos.checked_add(HEADER)?)?;
    let crc = u32::from_le_bytes(hdr[0..4].try_into().ok()?);
    let len = u32::from_le_bytes(hdr[4..8].try_into().ok()?) as usize;
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let payload = data.get(pos + HEADER..(pos + HEADER).checked_add(len)?)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&hdr[4..8]);
    h.update(payload);
    (h.finalize() == crc).then_some(len)
}

/// The outcome of reading a log.
#[derive(Debug)]
pub struct LogContents<'a> {
    /// (offset, payload) of every valid record, in order.
    pub records: Vec<(u64, &'a [u8])>,
}

/// Splits a whole log into records, applying the torn-tail policy described above.
pub fn read_log<'a>(path: &Path, data: &'a [u8]) -> Result<LogContents<'a>> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        match valid_at(data, pos) {
            Some(len) => {
                records.push((pos as u64, &data[pos + HEADER..pos + HEADER + len]));
                pos += HEADER + len;
            }
            None => {
                if let Some(later) = (pos + 1..data.len()).find(|&p| valid_at(data, p).is_some()) {
                    return Err(Error::corrupt(
                        path,
                        Some(pos as u64),
                        format!(
                            "bad record (checksum or length mismatch) followed by a valid record at offset {later}"
                        ),
                    ));
                }
                if data[pos..].iter().any(|&b| b != 0) {
                    tracing::warn!(
                        path = %path.display(),
                        offset = pos,
                        discarded = data.len() - pos,
                        "discarding torn tail of log"
                    );
                }
                break;
            }
        }
    }
    Ok(LogContents { records })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the last valid record ends.
    fn valid_len(log: &LogContents) -> usize {
        log.records
            .last()
            .map_or(0, |(at, payload)| *at as usize + HEADER + payload.len())
    }

    fn log(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_record(&mut out, p);
        }
        out
    }

    #[test]
    fn zeros_after_the_last_record_end_the_log() {
        let records = log(&[b"one", b"two"]);
        let mut zero_filled = records.clone();
        zero_filled.resize(records.len() + 4096, 0);
        let got = read_log(Path::new("x"), &zero_filled).unwrap();
        assert_eq!(got.records.len(), 2);
        assert_eq!(valid_len(&got), records.len());
        // A record torn by a crash in the zero-filled region is discarded like any torn tail.
        let mut torn = records.clone();
        let mut third = Vec::new();
        encode_record(&mut third, b"three");
        torn.extend_from_slice(&third[..third.len() - 2]);
        torn.resize(records.len() + 4096, 0);
        let got = read_log(Path::new("x"), &torn).unwrap();
        assert_eq!(got.records.len(), 2);
        // Zeros in the middle, where a valid record follows, are corruption.
        let mut holed = vec![0u8; 64];
        holed.extend_from_slice(&records);
        assert!(read_log(Path::new("wal-9.log"), &holed).is_err());
    }

    #[test]
    fn torn_tail_is_discarded() {
        let full = log(&[b"one", b"two", b"three"]);
        for cut in 0..full.len() {
            let got = read_log(Path::new("x"), &full[..cut]).unwrap();
            assert!(got.records.len() <= 3);
            assert!(valid_len(&got) <= cut);
        }
    }

    #[test]
    fn bad_record_before_valid_is_corrupt() {
        let mut full = log(&[b"one", b"two", b"three"]);
        full[HEADER + 1] ^= 0xff; // inside payload of record 0
        let err = read_log(Path::new("wal-7.log"), &full).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("wal-7.log") && msg.contains("offset 0"),
            "{msg}"
        );
    }
}
