//! Strict parsers for the value syntaxes settings use. Each error says what
//! was accepted, so a caller can report `VARIABLE=value: expected ...`.

use std::fmt;

/// A value that does not have the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// What is accepted, e.g. `a boolean: true or false (also 1/0, yes/no, on/off)`.
    pub accepted: String,
}

impl ValueError {
    fn new(accepted: impl Into<String>) -> Self {
        ValueError {
            accepted: accepted.into(),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.accepted)
    }
}

impl std::error::Error for ValueError {}

pub const BOOL_ACCEPTED: &str = "a boolean: true or false (also 1/0, yes/no, on/off)";
pub const SIZE_ACCEPTED: &str = "a byte size: an integer number of bytes, optionally with a unit (KiB, MiB, GiB, TiB, Ki, Mi, Gi, Ti, KB, MB, GB, TB), e.g. 67108864 or 64MiB";

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case. Nothing else:
/// `ORBIT_MEMORY_DISK_BACKUP=false` must mean off, and `flase` is an error.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ValueError::new(BOOL_ACCEPTED)),
    }
}

/// A byte count: `67108864`, `64MiB`, `64Mi`, `64MB` (decimal), `1.5GiB` is
/// refused (sizes are whole numbers).
pub fn parse_byte_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(ValueError::new(SIZE_ACCEPTED));
    }
    let n: u64 = digits.parse().map_err(|_| ValueError::new(SIZE_ACCEPTED))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "Ki" | "K" => 1 << 10,
        "MiB" | "Mi" | "M" => 1 << 20,
        "GiB" | "Gi" | "G" => 1 << 30,
        "TiB" | "Ti" | "T" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(ValueError::new(SIZE_ACCEPTED)),
    };
    n.checked_mul(mult)
        .ok_or_else(|| ValueError::new(format!("{SIZE_ACCEPTED} (at most 2^64-1 bytes)")))
}

/// An integer in `[min, max]`.
pub fn parse_count(s: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let accepted = || ValueError::new(format!("an integer from {min} to {max}"));
    let n: u64 = s.trim().parse().map_err(|_| accepted())?;
    if n < min || n > max {
        return Err(accepted());
    }
    Ok(n)
}

/// A number strictly between 0 and 1, e.g. `0.01`.
pub fn parse_fraction(s: &str) -> Result<f64, ValueError> {
    let accepted = || ValueError::new("a number strictly between 0 and 1, e.g. 0.01");
    let x: f64 = s.trim().parse().map_err(|_| accepted())?;
    if !(x > 0.0 && x < 1.0) {
        return Err(accepted());
    }
    Ok(x)
}

const DURATION_ACCEPTED: &str = "a duration: an integer number of seconds, or an integer with a unit ms, s, m or h (e.g. 30, 30s, 500ms, 5m)";

/// A duration in milliseconds: `30` (seconds), `30s`, `500ms`, `5m`, `1h`.
pub fn parse_duration_ms(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(ValueError::new(DURATION_ACCEPTED));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| ValueError::new(DURATION_ACCEPTED))?;
    let mult = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(ValueError::new(DURATION_ACCEPTED)),
    };
    n.checked_mul(mult)
        .ok_or_else(|| ValueError::new(DURATION_ACCEPTED))
}

/// A duration in whole seconds (`30`, `30s`, `5m`); sub-second values are refused.
pub fn parse_duration_secs(s: &str) -> Result<u64, ValueError> {
    let ms = parse_duration_ms(s)?;
    if ms % 1000 != 0 {
        return Err(ValueError::new(
            "a duration in whole seconds: an integer number of seconds, or with a unit s, m or h (e.g. 30, 30s, 5m)",
        ));
    }
    Ok(ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_strict() {
        assert!(!parse_bool("false").unwrap());
        assert!(!parse_bool("FALSE").unwrap());
        assert!(parse_bool(" on ").unwrap());
        assert!(parse_bool("flase").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("67108864").unwrap(), 67108864);
        assert_eq!(parse_byte_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_byte_size("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_byte_size("1GB").unwrap(), 1_000_000_000);
        for bad in ["", "MiB", "1.5GiB", "-1", "64 XB", "99999999999999999999"] {
            let e = parse_byte_size(bad).unwrap_err();
            assert!(e.accepted.contains("byte size"), "{bad}: {e}");
        }
        assert!(parse_byte_size("17000000000TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30").unwrap(), 30_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_secs("5m").unwrap(), 300);
        assert!(parse_duration_secs("500ms").is_err());
        assert!(parse_duration_ms("5 minutes").is_err());
    }

    #[test]
    fn counts_and_fractions() {
        assert_eq!(parse_count("4", 2, 64).unwrap(), 4);
        assert!(
            parse_count("1", 2, 64)
                .unwrap_err()
                .accepted
                .contains("from 2 to 64")
        );
        assert!(parse_fraction("0.01").is_ok());
        assert!(parse_fraction("1").is_err());
        assert!(parse_fraction("NaN").is_err());
    }
}
