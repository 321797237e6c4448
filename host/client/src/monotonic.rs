//! The system-wide monotonic clock (`CLOCK_MONOTONIC`) as nanoseconds, so
//! that processes on one machine can compare their timestamps (the
//! lease-contention test compares the logs of several node processes).
//! [`std::time::Instant`] reads the same clock on Linux but cannot be
//! printed or sent.

/// Nanoseconds of `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on
    // every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}
