//! Index-block decoder: every value must decode as a block handle.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbit_lsm::decoders::index(data);
});
