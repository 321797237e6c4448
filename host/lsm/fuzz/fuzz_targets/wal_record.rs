//! Write-ahead-log framing (torn-tail policy) and batch payload decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbit_lsm::decoders::wal(data);
});
