//! Arbitrary bytes as a meta slot: must decode or be rejected, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = orbit_cow_btree::fuzzing::decode_meta(data);
});
