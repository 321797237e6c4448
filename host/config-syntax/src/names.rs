//! Name matching: "did you mean" suggestions and secret detection.

use crate::ValueKind;

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a plausible typo (distance at most a third of the name, at least 2).
pub fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// True for names whose values are secrets and must never reach a plugin, a
/// log line or an error message.
///
/// A name the catalogue knows (as an environment variable or a TOML key) is
/// secret exactly when its kind is [`ValueKind::Secret`]. Any other name is
/// judged by a conservative heuristic: it is secret if it contains `SECRET`,
/// `PASSWORD`, `TOKEN`, `_KEY` or `CREDENTIAL`, unless it ends in `_PATH` or
/// `_FILE` (a file name, not the secret). Case-insensitive, so it applies to
/// TOML keys too.
pub fn is_secret_name(name: &str) -> bool {
    let known = crate::lookup(name).or_else(|| {
        crate::settings().iter().find(|s| {
            !s.toml.is_empty() && (s.toml_key() == name || s.toml_aliases.contains(&name))
        })
    });
    if let Some(setting) = known {
        return setting.kind == ValueKind::Secret;
    }
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("_PATH") || upper.ends_with("_FILE") {
        return false;
    }
    ["SECRET", "PASSWORD", "TOKEN", "_KEY", "CREDENTIAL"]
        .iter()
        .any(|marker| upper.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_only() {
        let names = ["ORBIT_LSM_MEMTABLE_SIZE", "ORBIT_LSM_MAX_MEMTABLES"];
        assert_eq!(
            closest_name("ORBIT_LSM_MEMTABLE_SIZ", names),
            Some("ORBIT_LSM_MEMTABLE_SIZE")
        );
        assert_eq!(closest_name("ORBIT_TOTALLY_DIFFERENT", names), None);
    }

    #[test]
    fn secrets() {
        for s in [
            "ORBIT_S3_SECRET_ACCESS_KEY",
            "ORBIT_S3_ACCESS_KEY_ID",
            "ORBIT_AZURE_ACCOUNT_KEY",
            "ORBIT_GCP_SERVICE_ACCOUNT_KEY",
            "ORBIT_API_TOKEN",
            "secret_access_key",
        ] {
            assert!(is_secret_name(s), "{s}");
        }
        for s in [
            "ORBIT_GCP_CREDENTIALS_PATH",
            "ORBIT_S3_SECRET_ACCESS_KEY_FILE",
            "ORBIT_S3_BUCKET",
            "POD_NAME",
            "ORBIT_COW_MAX_KEYS_PER_NODE",
            "ORBIT_MAX_KEY_BYTES",
            "max_keys_per_node",
        ] {
            assert!(!is_secret_name(s), "{s}");
        }
    }
}
