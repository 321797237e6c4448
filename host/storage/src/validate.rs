//! Input validation shared by every backend (the object-storage backends
//! in `orbit-cloud` included): the one home of these rules.
//!
//! Bad input is refused with [`StorageError::Invalid`] before any lock is
//! taken, so a malformed request can neither change state nor panic (for
//! example `BTreeMap::range` panics on an inverted range; [`query`] rules
//! that out). Messages name the problem, never a value, and print a key only
//! when it is short enough to be useful.

use crate::{BatchOp, KeyRange, ListQuery, MAX_KEY_LEN, StorageError, StorageResult};

/// A key must be non-empty and at most [`MAX_KEY_LEN`] bytes.
pub fn key(key: &[u8]) -> StorageResult<()> {
    if key.is_empty() {
        return Err(StorageError::Invalid("key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::Invalid(format!(
            "key is {} bytes, longer than the limit of {MAX_KEY_LEN} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// A listing needs a limit of at least 1 and a range whose start is not
/// after its end (`start == end` is a valid, empty range).
pub fn query(query: &ListQuery) -> StorageResult<()> {
    if query.limit == 0 {
        return Err(StorageError::Invalid(
            "list limit must be at least 1".into(),
        ));
    }
    if let KeyRange::Range {
        start: Some(start),
        end: Some(end),
    } = &query.range
        && start > end
    {
        return Err(StorageError::Invalid(
            "list range start is after its end".into(),
        ));
    }
    Ok(())
}

/// Every key of a batch must be valid; the error names the operation index.
pub fn batch(ops: &[BatchOp]) -> StorageResult<()> {
    for (index, op) in ops.iter().enumerate() {
        key(op.key()).map_err(|e| match e {
            StorageError::Invalid(reason) => {
                StorageError::Invalid(format!("batch operation {index}: {reason}"))
            }
            other => other,
        })?;
    }
    Ok(())
}
