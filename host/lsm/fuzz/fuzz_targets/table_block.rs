//! Stored-block trailer (checksum, LZ4) and table footer decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbit_lsm::decoders::stored_block(data);
    let _ = orbit_lsm::decoders::footer(data);
    if data.len() >= 52 {
        let _ = orbit_lsm::decoders::footer(&data[data.len() - 52..]);
    }
});
