//! Versions: a hybrid logical clock per store handle.
//!
//! Exists because the contract wants versions that only increase, also
//! across restarts and delete/recreate, while many replicas write one
//! bucket and a shared counter object would be a hotspot (every write would
//! CAS the same object). A version is `max(now_ms << 16, last + 1, floor + 1)`
//! where `floor` is the highest version the writer has seen on the key(s) it
//! writes. Guarantees:
//! - strictly increasing within one process (`last + 1`);
//! - strictly increasing per key across replicas, since every write reads
//!   the key's current object (tombstones included) and passes its version
//!   as `floor`;
//! - across restarts and for recreation after a tombstone was purged: as
//!   long as wall clocks do not step back by more than the time since the
//!   last write (the `now_ms << 16` part); this is the one clock
//!   assumption, see `host/cloud/DESIGN.md`, "Versions".

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct VersionClock {
    last: AtomicU64,
    /// Added to the system clock: zero except in tests that simulate a
    /// replica whose wall clock is off (see `TestHooks`).
    offset_ms: i64,
}

impl VersionClock {
    /// A clock whose wall time is the system's plus `offset_ms`.
    pub fn with_offset(offset_ms: i64) -> Self {
        VersionClock {
            last: AtomicU64::new(0),
            offset_ms,
        }
    }

    /// This store's wall-clock milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        orbit_storage::now_millis().saturating_add_signed(self.offset_ms)
    }

    /// A fresh version above `floor` and every version this clock issued.
    pub fn next(&self, floor: u64) -> u64 {
        let physical = self.now_ms() << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical
                .max(last.saturating_add(1))
                .max(floor.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_and_respects_floor() {
        let clock = VersionClock::default();
        let a = clock.next(0);
        let b = clock.next(0);
        assert!(b > a);
        let c = clock.next(u64::MAX / 2);
        assert_eq!(c, u64::MAX / 2 + 1);
        assert!(clock.next(0) > c);
    }
}
