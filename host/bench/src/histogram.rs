//! A log-linear latency histogram (HDR-style, 64 sub-buckets per power of
//! two, so any reported quantile is within 1/64 ≈ 1.6 % of the true value).
//!
//! Why: per-operation latencies of millions of operations must be recorded
//! by every worker thread without allocation or locking; each thread owns one
//! histogram and they are merged at the end.

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB + 2 * SUB;

/// Counts of nanosecond latencies.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < (2 * SUB) as u64 {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (shift as usize) * SUB + (v >> shift) as usize
}

/// Midpoint of bucket `i`.
fn value_of(i: usize) -> u64 {
    if i < 2 * SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let top = (i % SUB + SUB) as u64;
    (top << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_nanos(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (0..=1) in nanoseconds; 0 when empty.
    pub fn quantile_nanos(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        for v in (0..1_000_000u64).chain([u64::MAX / 3, 1 << 40]) {
            let i = index(v);
            assert!(i < BUCKETS);
            let mid = value_of(i);
            let err = mid.abs_diff(v) as f64 / (v.max(1) as f64);
            assert!(err <= 1.0 / 64.0, "v={v} mid={mid}");
        }
        assert_eq!(index(127) + 1, index(128));
    }

    #[test]
    fn quantiles_of_uniform_values() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile_nanos(0.5) as f64;
        let p99 = h.quantile_nanos(0.99) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(h.quantile_nanos(1.0), 10_000_000);
    }
}
