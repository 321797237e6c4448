//! Bloom-filter probe over arbitrary filter bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.len() / 2;
    let (filter, key) = data.split_at(split);
    let _ = orbit_lsm::decoders::filter(filter, key);
});
