//! Manifest framing and version-edit decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbit_lsm::decoders::manifest(data);
    let _ = orbit_lsm::decoders::version_edit(data);
});
