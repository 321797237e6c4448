//! Figures for humans: sizes, durations and percentages in the sentences
//! plugins write.
//!
//! Everything here is integer arithmetic. Rust's `{:.1}` on an `f64` takes
//! the exact (bignum) formatting path: 166 ns a figure natively, when the
//! whole default health policy took 661 ns with two such figures.

use std::fmt;

/// A quotient to one decimal, rounded half up: `Tenths::ratio(25, 2)` shows
/// as `12.5`. A zero denominator shows as `0.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenths {
    whole: u64,
    tenth: u64,
}

impl Tenths {
    /// `num / den`.
    pub fn ratio(num: u64, den: u64) -> Self {
        if den == 0 {
            return Tenths { whole: 0, tenth: 0 };
        }
        let (whole, rem) = (num / den, num % den);
        // round(10 * rem / den), in 0..=10. `rem < den`, so `rem * 20`
        // overflows only for denominators above 2^59, where a float is
        // exact enough for one decimal.
        let tenth = match rem.checked_mul(20) {
            Some(r) => (r / den).div_ceil(2),
            None => (rem as f64 * 10.0 / den as f64).round() as u64,
        };
        if tenth == 10 {
            Tenths {
                whole: whole.saturating_add(1),
                tenth: 0,
            }
        } else {
            Tenths { whole, tenth }
        }
    }

    /// `part` as a percentage of `total`: `Tenths::percent(1, 8)` is `12.5`.
    pub fn percent(part: u64, total: u64) -> Self {
        match part.checked_mul(100) {
            Some(p) => Self::ratio(p, total),
            // Only for nonsense counters; the float is close enough.
            None => Self::percent_of_fraction(part as f64 / total as f64),
        }
    }

    /// A fraction `x` (like `0.05`) as a percentage, `5.0`. Negative and NaN
    /// inputs show as `0.0`.
    pub fn percent_of_fraction(x: f64) -> Self {
        // `as` saturates: NaN and negatives become 0.
        let tenths = (x * 1000.0).round() as u64;
        Tenths {
            whole: tenths / 10,
            tenth: tenths % 10,
        }
    }

    pub fn is_whole(self) -> bool {
        self.tenth == 0
    }
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.whole, self.tenth)
    }
}

/// `12 MiB`, `1.5 GiB`, `512 B`: binary units, at most one decimal.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && n >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    let t = Tenths::ratio(n, 1 << (10 * unit));
    if t.is_whole() {
        format!("{} {}", t.whole, UNITS[unit])
    } else {
        format!("{t} {}", UNITS[unit])
    }
}

/// `35 us`, `12.5 ms`, `2.0 s`.
pub fn human_duration_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} us")
    } else if us < 1_000_000 {
        format!("{} ms", Tenths::ratio(us, 1_000))
    } else {
        format!("{} s", Tenths::ratio(us, 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(100 << 20), "100 MiB");
        assert_eq!(human_bytes(12 << 20), "12 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        // Rounds up to the next whole number, still in the smaller unit.
        assert_eq!(human_bytes((1 << 20) - 1), "1024 KiB");
        assert_eq!(human_bytes(u64::MAX), "16384 PiB");
        assert_eq!(human_duration_us(35), "35 us");
        assert_eq!(human_duration_us(12_500), "12.5 ms");
        assert_eq!(human_duration_us(1_000), "1.0 ms");
        assert_eq!(human_duration_us(2_049_999), "2.0 s");
        assert_eq!(human_duration_us(2_050_000), "2.1 s");
    }

    /// The same text as `{:.1}` wherever that is not a tie.
    #[test]
    fn tenths_match_float_formatting() {
        for den in [1u64, 3, 7, 20, 100, 1_000, 123_457] {
            for num in [0u64, 1, 2, 5, 8, 19, 99, 1_000, 65_432, 1 << 40] {
                let ours = Tenths::percent(num, den).to_string();
                let float = format!("{:.1}", num as f64 * 100.0 / den as f64);
                assert_eq!(ours, float, "{num}/{den}");
            }
        }
        assert_eq!(Tenths::ratio(1, 0).to_string(), "0.0");
        assert_eq!(
            Tenths::ratio(u64::MAX, 1).to_string(),
            format!("{}.0", u64::MAX)
        );
        assert_eq!(Tenths::ratio(u64::MAX - 1, u64::MAX).to_string(), "1.0");
        // Nonsense counters give a large figure, never a panic.
        assert!(Tenths::percent(u64::MAX, 20).to_string().len() > 10);
        assert_eq!(Tenths::percent_of_fraction(0.05).to_string(), "5.0");
        assert_eq!(Tenths::percent_of_fraction(0.123).to_string(), "12.3");
        assert_eq!(Tenths::percent_of_fraction(0.99999).to_string(), "100.0");
        assert_eq!(Tenths::percent_of_fraction(f64::NAN).to_string(), "0.0");
    }
}
