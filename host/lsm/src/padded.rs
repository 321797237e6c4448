//! A value alone on its cache lines, so that threads writing neighbouring values do not keep
//! stealing one line from each other (false sharing).

use std::ops::Deref;

/// `T` aligned (and so padded) to 128 bytes: two 64-byte lines, because the adjacent-line
/// prefetcher moves lines in pairs.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
