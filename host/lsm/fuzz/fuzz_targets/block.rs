//! Data-block decoder: restart array validation, entry walk, seek.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let (probe, block) = data.split_at(split);
    let _ = orbit_lsm::decoders::block(block, probe);
});
