//! Capabilities granted to one plugin beyond the deny-by-default sandbox.
//!
//! A plugin starts with nothing: no `wasi:keyvalue` bucket, no environment,
//! no directory, no network. The operator grants each plugin what it needs in
//! one comma-separated list (`ORBIT_PLUGIN_<ROLE>_GRANTS`):
//!
//! | grant | gives |
//! |---|---|
//! | `keyvalue:NAME` | `wasi:keyvalue/store.open("NAME")` succeeds (health plugins) |
//! | `env:NAME` | the environment variable NAME, through `wasi:cli/environment` |
//! | `dir:/ABS/PATH` | that directory, read-only, preopened at the same path |
//! | `network` | outbound TCP and UDP to any address, and name lookup |
//!
//! Secret-named variables can never be granted: the check is made by the
//! server, which knows the secret names, before a [`Grants`] exists.

use std::path::{Path, PathBuf};

/// What one plugin may reach. `Default` is the empty sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Bucket identifiers `wasi:keyvalue/store.open` accepts.
    pub keyvalue_buckets: Vec<String>,
    /// Environment variables (name, value) the plugin sees.
    pub env: Vec<(String, String)>,
    /// Directories preopened read-only at their own path.
    pub dirs: Vec<PathBuf>,
    /// Outbound sockets and name lookup.
    pub network: bool,
}

/// One parsed item of a grant list, before the server resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantItem {
    KeyValue(String),
    Env(String),
    Dir(PathBuf),
    Network,
}

/// The accepted forms, for error messages.
pub const GRANT_FORMS: &str =
    "keyvalue:BUCKET, env:NAME, dir:/absolute/path (read-only) or network, separated by commas";

/// Bucket identifiers: what `open` accepts and how a bucket maps to keys.
pub fn valid_bucket_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Directories no `dir:` grant may open, nor any directory above them: the
/// kernel's views of processes (`/proc/self/environ` holds every secret
/// variable), devices and system state, and where Kubernetes mounts
/// service-account tokens and secrets.
pub const FORBIDDEN_DIRS: &[&str] = &["/proc", "/sys", "/dev", "/run/secrets", "/var/run/secrets"];

/// Why `dir` cannot be granted, if it cannot: it is (or lies under, or
/// above) a [`FORBIDDEN_DIRS`] entry, or it holds one of `secret_files`
/// (each with the setting that names it). Symbolic links are resolved
/// first, so a link to `/proc` is refused like `/proc` itself.
pub fn dir_grant_refusal<'a>(
    dir: &Path,
    secret_files: impl IntoIterator<Item = (&'a str, &'a Path)>,
) -> Option<String> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) => return Some(format!("cannot resolve the directory: {e}")),
    };
    for forbidden in FORBIDDEN_DIRS {
        let f = real(Path::new(forbidden));
        if dir.starts_with(&f) || f.starts_with(&dir) {
            return Some(format!(
                "it would let the plugin read {forbidden} (processes' environments and memory, devices, mounted service-account tokens); grant a directory that holds only what the plugin needs"
            ));
        }
    }
    for (setting, file) in secret_files {
        if real(file).starts_with(&dir) || file.starts_with(&dir) {
            return Some(format!(
                "it holds the secret file {} named by {setting}; plugins never see secrets",
                file.display()
            ));
        }
    }
    None
}

/// Parses a grant list; an error names the item and the accepted forms.
pub fn parse_grants(text: &str) -> Result<Vec<GrantItem>, String> {
    let mut items = Vec::new();
    for raw in text.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        let parsed = match item.split_once(':') {
            Some(("keyvalue", name)) if valid_bucket_name(name) => {
                GrantItem::KeyValue(name.to_string())
            }
            Some(("keyvalue", name)) => {
                return Err(format!(
                    "`{item}`: bucket name {name:?} must be 1-64 characters of letters, digits, `-`, `_` or `.`"
                ));
            }
            Some(("env", name))
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                GrantItem::Env(name.to_string())
            }
            Some(("env", name)) => {
                return Err(format!(
                    "`{item}`: {name:?} is not an environment variable name (letters, digits, `_`)"
                ));
            }
            Some(("dir", path)) if path.starts_with('/') => GrantItem::Dir(PathBuf::from(path)),
            Some(("dir", path)) => {
                return Err(format!("`{item}`: {path:?} must be an absolute path"));
            }
            None if item == "network" => GrantItem::Network,
            _ => return Err(format!("`{item}` is not a grant; expected {GRANT_FORMS}")),
        };
        if !items.contains(&parsed) {
            items.push(parsed);
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_names_what_is_wrong() {
        assert_eq!(parse_grants("").unwrap(), vec![]);
        assert_eq!(
            parse_grants(" keyvalue:canary , env:POD_NAME,dir:/etc/orbit,network,network").unwrap(),
            vec![
                GrantItem::KeyValue("canary".into()),
                GrantItem::Env("POD_NAME".into()),
                GrantItem::Dir("/etc/orbit".into()),
                GrantItem::Network,
            ]
        );
        for (bad, says) in [
            ("keyvalue:", "bucket name"),
            ("keyvalue:a/b", "bucket name"),
            ("env:A-B", "not an environment variable name"),
            ("dir:relative", "absolute path"),
            ("filesystem", "is not a grant; expected keyvalue:BUCKET"),
            ("net:all", "is not a grant"),
        ] {
            let e = parse_grants(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn dir_grants_refuse_kernel_views_and_secret_files() {
        let none = std::iter::empty::<(&str, &Path)>;
        for forbidden in ["/proc", "/proc/self", "/sys", "/dev", "/"] {
            let why = dir_grant_refusal(Path::new(forbidden), none());
            assert!(
                why.is_some_and(|w| w.contains("would let the plugin read")),
                "{forbidden}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        assert!(
            dir_grant_refusal(&link, none()).is_some(),
            "a link to /proc"
        );

        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        let key = secrets.join("s3-key");
        std::fs::write(&key, "k").unwrap();
        let files = [("ORBIT_S3_SECRET_ACCESS_KEY", key.as_path())];
        let why = dir_grant_refusal(dir.path(), files).unwrap();
        assert!(why.contains("ORBIT_S3_SECRET_ACCESS_KEY"), "{why}");
        let other = dir.path().join("config");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(dir_grant_refusal(&other, files), None);
    }
}
