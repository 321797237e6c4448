//! Feeds arbitrary bytes to the page decoder, both as they come (checksum
//! almost always wrong) and with the checksum fixed so the structural
//! checks are reached. The decoder must return an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orbit_cow_btree::fuzzing::{decode_page, fix_checksum};

fuzz_target!(|data: &[u8]| {
    for page_size in [1024usize, 4096] {
        let mut page = data.to_vec();
        page.resize(page_size.max(page.len().div_ceil(page_size) * page_size), 0);
        let _ = decode_page(&page, page_size);
        fix_checksum(&mut page);
        let _ = decode_page(&page, page_size);
    }
});
