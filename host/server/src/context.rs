//! The deployment context plugins decide from: the environment they may see
//! (secret values withheld), the TOML text (secret values withheld), and the
//! facts the host probes (directories, memory limit, CPUs, pod identity).
//!
//! Plugins see `ORBIT_*` variables and the pod identity variables only; the
//! rest of the process environment (which may hold unrelated credentials)
//! never crosses into a plugin.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use orbit_config_syntax::{self as syntax, Scope};
use orbit_plugin_runtime::types as wit;

use crate::settings::ConfigSource;

/// Builds the context from `src`, probing the file system now.
pub fn build(src: &ConfigSource, data_dir: &Path) -> wit::DeploymentContext {
    wit::DeploymentContext {
        env: visible_env(src),
        toml: src.redacted_toml(),
        facts: probe_facts(src, data_dir),
    }
}

fn is_visible(name: &str) -> bool {
    name.starts_with("ORBIT_") || syntax::lookup(name).is_some_and(|s| s.scope == Scope::Pod)
}

fn visible_env(src: &ConfigSource) -> Vec<wit::EnvVar> {
    src.env
        .iter()
        .filter(|(name, _)| is_visible(name))
        .map(|(name, value)| wit::EnvVar {
            name: name.clone(),
            value: if syntax::is_secret_name(name) {
                wit::EnvValue::Withheld
            } else {
                wit::EnvValue::Plain(value.clone())
            },
        })
        .collect()
}

/// The data root first, then every directory a `*_DATA_DIR` or `*_PATH`
/// setting names (for a file, its parent directory), without duplicates.
fn candidate_dirs(src: &ConfigSource, data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![data_dir.to_path_buf()];
    for setting in syntax::settings() {
        let is_dir = setting.env.ends_with("_DATA_DIR");
        let is_file = setting.env.ends_with("_BACKUP_PATH");
        if !(is_dir || is_file) {
            continue;
        }
        if let Some((_, value)) = src.raw(setting) {
            let p = PathBuf::from(value);
            let dir = if is_file {
                p.parent().map(Path::to_path_buf).unwrap_or(p)
            } else {
                p
            };
            if !dir.as_os_str().is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

fn probe_facts(src: &ConfigSource, data_dir: &Path) -> wit::HostFacts {
    let get = |name: &str| src.env.get(name).filter(|v| !v.is_empty()).cloned();
    wit::HostFacts {
        dirs: candidate_dirs(src, data_dir)
            .iter()
            .map(|d| probe_dir(d))
            .collect(),
        memory_limit_bytes: cgroup_memory_limit(),
        cpu_count: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        pod: wit::PodIdentity {
            pod_name: get("POD_NAME"),
            pod_namespace: get("POD_NAMESPACE"),
            pod_ip: get("POD_IP"),
            node_name: get("NODE_NAME"),
            hostname: get("HOSTNAME"),
        },
    }
}

/// Existence, writability, free space and mount status of one directory.
pub fn probe_dir(dir: &Path) -> wit::DirFacts {
    let exists = dir.is_dir();
    let (free_bytes, total_bytes) = if exists { statvfs(dir) } else { (None, None) };
    wit::DirFacts {
        path: dir.display().to_string(),
        exists,
        writable: exists && access_writable(dir),
        free_bytes,
        total_bytes,
        mount_point: exists && is_mount_point(dir),
    }
}

fn c_path(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

fn access_writable(dir: &Path) -> bool {
    let Some(c) = c_path(dir) else { return false };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

fn statvfs(dir: &Path) -> (Option<u64>, Option<u64>) {
    let Some(c) = c_path(dir) else {
        return (None, None);
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return (None, None);
    }
    let frsize = st.f_frsize as u64;
    (
        Some(st.f_bavail as u64 * frsize),
        Some(st.f_blocks as u64 * frsize),
    )
}

fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(canonical) = dir.canonicalize() else {
        return false;
    };
    let Some(parent) = canonical.parent() else {
        return true;
    };
    match (std::fs::metadata(&canonical), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// cgroup v2 `memory.max`, else cgroup v1 `memory.limit_in_bytes`.
fn cgroup_memory_limit() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/sys/fs/cgroup/memory.max") {
        return s.trim().parse().ok();
    }
    let v1: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // v1 reports "no limit" as a huge page-aligned number.
    (v1 < (1 << 60)).then_some(v1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_foreign_variables_never_reach_plugins() {
        let src = ConfigSource {
            env: [
                ("ORBIT_S3_SECRET_ACCESS_KEY", "s3cr3t"),
                ("ORBIT_API_TOKEN", "t0k3n"),
                ("ORBIT_S3_BUCKET", "b"),
                ("AWS_SECRET_ACCESS_KEY", "other"),
                ("POD_NAME", "orbit-0"),
                ("PATH", "/usr/bin"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            toml: None,
        };
        let ctx = build(&src, Path::new("/nonexistent-orbit-data"));
        let dump = format!("{ctx:?}");
        for secret in ["s3cr3t", "t0k3n", "other", "/usr/bin"] {
            assert!(!dump.contains(secret), "{secret} leaked: {dump}");
        }
        assert!(dump.contains("ORBIT_S3_BUCKET") && dump.contains("orbit-0"));
        assert!(
            ctx.env
                .iter()
                .any(|v| v.name == "ORBIT_S3_SECRET_ACCESS_KEY"
                    && matches!(v.value, wit::EnvValue::Withheld))
        );
        assert!(!ctx.facts.dirs[0].exists);
    }

    #[test]
    fn probes_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = probe_dir(dir.path());
        assert!(f.exists && f.writable);
        assert!(f.free_bytes.unwrap() > 0 && f.total_bytes.unwrap() >= f.free_bytes.unwrap());
    }
}
