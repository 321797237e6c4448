//! Checks and helpers every provider module uses when opening a store.

use orbit_storage::{SecretRef, StorageError};

use crate::layout::MAX_PREFIX_LEN;
use crate::remote::Scrubber;

/// The prefix must keep object names under 1024 bytes.
pub fn check_prefix(setting: &str, prefix: &str) -> Result<(), StorageError> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(StorageError::Invalid(format!(
            "{setting} is {} bytes; at most {MAX_PREFIX_LEN} are allowed so object names stay under 1024 bytes",
            prefix.len()
        )));
    }
    if prefix.split('/').any(|part| part == "." || part == "..") {
        return Err(StorageError::Invalid(format!(
            "{setting} {prefix:?} contains a '.' or '..' segment"
        )));
    }
    Ok(())
}

/// Resolves a secret and registers it with the scrubber; the error names
/// the setting and where the secret was looked for, never its value.
pub fn secret(
    secret: &SecretRef,
    setting: &str,
    scrubber: &mut Scrubber,
) -> Result<String, StorageError> {
    let value = orbit_storage::resolve_secret(secret)
        .map_err(|reason| StorageError::Invalid(format!("{setting}: {reason}")))?;
    if value.is_empty() {
        return Err(StorageError::Invalid(format!(
            "{setting}: the secret is empty"
        )));
    }
    scrubber.add(&value);
    Ok(value)
}
