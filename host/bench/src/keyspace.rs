//! The data the benchmark writes and how it is chosen: fixed-size keys that
//! sort like their ids, values that carry a tag of their key so every read is
//! checked, and the request distributions of db_bench and YCSB (uniform,
//! scrambled zipfian, latest), all from fixed seeds.
//!
//! Why: "reads find what was written" must be a measured fact. A value's
//! first 8 bytes are a hash of its key id; the rest is taken from a 1 MiB
//! pool of half-random, half-repeated bytes (like db_bench's
//! `compression_ratio = 0.5`), at an offset chosen per write, so compressing
//! engines see realistic, not trivially repetitive, data.

/// SplitMix64: small, fast, and good enough to drive request choices.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The tag stored in the first 8 bytes of the value of key `id`.
pub fn tag(id: u64) -> [u8; 8] {
    mix(id ^ 0x005E_ED0F_0B17).to_le_bytes()
}

/// Shape of keys and values.
#[derive(Clone)]
pub struct DataShape {
    pub key_size: usize,
    pub value_size: usize,
    pool: Vec<u8>,
}

/// Bytes a value needs besides its filler.
pub const MIN_VALUE_SIZE: usize = 8;
/// Keys carry the id big-endian in their last 8 bytes.
pub const MIN_KEY_SIZE: usize = 8;
const POOL: usize = 1 << 20;

impl DataShape {
    pub fn new(key_size: usize, value_size: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x9001);
        let mut pool = Vec::with_capacity(POOL + value_size);
        while pool.len() < POOL + value_size {
            let piece: Vec<u8> = (0..16).map(|_| (rng.next_u64() & 0xff) as u8).collect();
            pool.extend_from_slice(&piece);
            pool.extend_from_slice(&piece);
        }
        DataShape {
            key_size,
            value_size,
            pool,
        }
    }

    pub fn entry_bytes(&self) -> u64 {
        (self.key_size + self.value_size) as u64
    }

    /// Writes the key of `id` into `out`.
    pub fn key(&self, id: u64, out: &mut Vec<u8>) {
        out.clear();
        out.resize(self.key_size - 8, 0);
        out.extend_from_slice(&id.to_be_bytes());
    }

    /// The id a key encodes.
    pub fn id_of(&self, key: &[u8]) -> Option<u64> {
        let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
        Some(u64::from_be_bytes(tail))
    }

    /// Writes a value for `id` into `out`; `salt` varies the filler between
    /// writes of the same key.
    pub fn value(&self, id: u64, salt: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&tag(id));
        let filler = self.value_size - 8;
        let at = (mix(id.wrapping_add(salt.wrapping_mul(0x1234_5677))) % POOL as u64) as usize;
        out.extend_from_slice(&self.pool[at..at + filler]);
    }

    /// Whether `value` is a value this shape wrote for `id`.
    pub fn value_matches(&self, id: u64, value: &[u8]) -> bool {
        value.len() == self.value_size && value[..8] == tag(id)
    }
}

/// YCSB's `ZipfianGenerator` (Gray et al., "Quickly generating billion-record
/// synthetic databases"), constant 0.99, with the incremental zeta update
/// YCSB uses when the item count grows.
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    zeta2: f64,
}

pub const ZIPFIAN_CONSTANT: f64 = 0.99;

fn zeta(from: u64, to: u64, theta: f64, initial: f64) -> f64 {
    let mut sum = initial;
    for i in from..to {
        sum += 1.0 / ((i + 1) as f64).powf(theta);
    }
    sum
}

impl Zipfian {
    pub fn new(items: u64) -> Self {
        Self::with_zeta(items, zeta(0, items, ZIPFIAN_CONSTANT, 0.0))
    }

    fn with_zeta(items: u64, zetan: f64) -> Self {
        let theta = ZIPFIAN_CONSTANT;
        let zeta2 = zeta(0, 2, theta, 0.0);
        let mut z = Zipfian {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: 0.0,
            zeta2,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// A value in `0..items`, small values most popular. `items` may only grow.
    pub fn next(&mut self, rng: &mut Rng, items: u64) -> u64 {
        if items > self.items {
            self.zetan = zeta(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.eta_for(items);
        }
        let u = rng.unit();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let v = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.items - 1)
    }
}

/// YCSB's `ScrambledZipfianGenerator`: zipfian popularity over 10^10 items
/// (with YCSB's precomputed zeta), hashed with FNV-1a 64 onto `0..items`, so
/// popular keys are spread over the key space.
pub struct ScrambledZipfian {
    inner: Zipfian,
    items: u64,
}

const SCRAMBLED_ITEMS: u64 = 10_000_000_000;
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

impl ScrambledZipfian {
    pub fn new(items: u64) -> Self {
        ScrambledZipfian {
            inner: Zipfian::with_zeta(SCRAMBLED_ITEMS, SCRAMBLED_ZETAN),
            items,
        }
    }

    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        let r = self.inner.next(rng, SCRAMBLED_ITEMS);
        fnv1a64(r) % self.items
    }
}

/// YCSB's `Utils.fnvhash64` (FNV-1a over the 8 little-endian bytes, made
/// non-negative like Java's `Math.abs`).
pub fn fnv1a64(mut v: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for _ in 0..8 {
        h ^= v & 0xff;
        h = h.wrapping_mul(1_099_511_628_211);
        v >>= 8;
    }
    (h as i64).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_ids_and_values_verify() {
        let shape = DataShape::new(16, 100, 7);
        let (mut a, mut b, mut v) = (Vec::new(), Vec::new(), Vec::new());
        shape.key(255, &mut a);
        shape.key(256, &mut b);
        assert!(a < b);
        assert_eq!(a.len(), 16);
        assert_eq!(shape.id_of(&b), Some(256));
        shape.value(9, 1, &mut v);
        assert!(shape.value_matches(9, &v));
        assert!(!shape.value_matches(10, &v));
        assert!(!shape.value_matches(9, &v[..99]));
    }

    #[test]
    fn zipfian_is_skewed_towards_small_values() {
        let mut rng = Rng::new(1);
        let mut z = Zipfian::new(1000);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.next(&mut rng, 1000) as usize] += 1;
        }
        // Item 0 gets about 1/zeta(1000) ≈ 13 % of requests under theta 0.99.
        assert!(counts[0] > 10_000 && counts[0] < 16_000, "{}", counts[0]);
        assert!(counts[0] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn scrambled_zipfian_stays_in_range() {
        let mut rng = Rng::new(2);
        let mut z = ScrambledZipfian::new(777);
        let mut hot = std::collections::HashMap::new();
        for _ in 0..50_000 {
            let v = z.next(&mut rng);
            assert!(v < 777);
            *hot.entry(v).or_insert(0u32) += 1;
        }
        // Item 0 of the underlying zipfian gets 1/zeta(10^10) ≈ 3.8 % of
        // requests (1 889 of 50 000); uniform would give about 64.
        let top = hot.values().max().copied().unwrap_or(0);
        assert!(top > 1_500, "the hottest key should be hot: {top}");
    }
}
