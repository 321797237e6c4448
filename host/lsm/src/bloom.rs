//! Per-table bloom filters over user keys.
//!
//! Exists so a point lookup skips tables that cannot hold the key. Layout:
//! `bit array (n bytes) | k (1 byte, number of probes)`. Probes use double hashing of the
//! 64-bit xxh3 hash of the user key. Any byte string decodes: a filter with a reserved `k`
//! (> 30) or fewer than 2 bytes answers "may contain" for everything, so a damaged filter
//! costs reads, never correctness (filter blocks are checksummed anyway).

/// Hash used for filter probes.
pub fn key_hash(user_key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_key)
}

/// Bits per key for a target false-positive rate.
pub fn bits_per_key(fp_rate: f64) -> f64 {
    let p = fp_rate.clamp(1e-9, 0.5);
    (-p.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2)).max(1.0)
}

/// Builds a filter for the given key hashes.
pub fn build(hashes: &[u64], bits_per_key: f64) -> Vec<u8> {
    let nbits = ((hashes.len() as f64 * bits_per_key).ceil() as usize).max(64);
    let nbytes = nbits.div_ceil(8);
    let nbits = (nbytes * 8) as u64;
    let k = ((bits_per_key * std::f64::consts::LN_2).round() as u8).clamp(1, 30);
    let mut out = vec![0u8; nbytes + 1];
    for &h in hashes {
        let mut a = h;
        let delta = h.rotate_right(33) | 1;
        for _ in 0..k {
            let bit = a % nbits;
            out[(bit / 8) as usize] |= 1 << (bit % 8);
            a = a.wrapping_add(delta);
        }
    }
    out[nbytes] = k;
    out
}

/// Whether a key with this hash may be in the filter.
pub fn may_contain(filter: &[u8], h: u64) -> bool {
    if filter.len() < 2 {
        return true;
    }
    let nbytes = filter.len() - 1;
    let k = filter[nbytes];
    if k == 0 || k > 30 {
        return true;
    }
    let nbits = (nbytes * 8) as u64;
    let mut a = h;
    let delta = h.rotate_right(33) | 1;
    for _ in 0..k {
        let bit = a % nbits;
        if filter[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return false;
        }
        a = a.wrapping_add(delta);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_positive_rate_near_target() {
        let keys: Vec<u64> = (0..20_000u32).map(|i| key_hash(&i.to_le_bytes())).collect();
        let f = build(&keys, bits_per_key(0.01));
        assert!(keys.iter().all(|&h| may_contain(&f, h)));
        let fp = (100_000..200_000u32)
            .filter(|i| may_contain(&f, key_hash(&i.to_le_bytes())))
            .count();
        assert!(fp < 2_000, "fp rate {}", fp as f64 / 100_000.0);
    }
}
