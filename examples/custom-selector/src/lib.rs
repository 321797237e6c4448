//! A custom backend selector for the Orbit storage host (WIT world `selector`).
//!
//! Policy: an explicit `ORBIT_PERSISTENCE_BACKEND` always wins (it is what
//! operators expect). Otherwise choose `lsm_tree` when the data root (the
//! first directory the host measured) exists, is writable and has at least
//! `ORBIT_EXAMPLE_MIN_FREE_BYTES` free (default 1 GiB); else fall back to
//! `memory`. Whether the data root is a mount point (a PersistentVolume) is
//! reported in the reason but not required, so the example also works off
//! Kubernetes.
//!
//! The decision is a plain function of the context, so it is unit-tested
//! natively with `cargo test`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "selector",
});

use exports::orbit::storage::selection::{Guest, Selection};
use orbit::storage::types::{BackendKind, DeploymentContext, DirFacts, Diagnostic, EnvValue, Severity};

/// The default free-space threshold: 1 GiB.
const DEFAULT_MIN_FREE: u64 = 1 << 30;
const MIN_FREE_VAR: &str = "ORBIT_EXAMPLE_MIN_FREE_BYTES";
const BACKEND_VAR: &str = "ORBIT_PERSISTENCE_BACKEND";

const NAMES: [(&str, BackendKind); 7] = [
    ("memory", BackendKind::Memory),
    ("cow_btree", BackendKind::CowBtree),
    ("lsm_tree", BackendKind::LsmTree),
    ("rocksdb", BackendKind::Rocksdb),
    ("s3", BackendKind::S3),
    ("azure", BackendKind::Azure),
    ("gcp", BackendKind::Gcp),
];

struct CustomSelector;

impl Guest for CustomSelector {
    fn select(context: DeploymentContext) -> Result<Selection, Vec<Diagnostic>> {
        decide(&context)
    }
}

export!(CustomSelector);

/// A plain value of an environment variable (`None` if unset or withheld).
fn env<'a>(context: &'a DeploymentContext, name: &str) -> Option<&'a str> {
    context.env.iter().rev().find(|v| v.name == name).and_then(|v| match &v.value {
        EnvValue::Plain(s) => Some(s.as_str()),
        EnvValue::Withheld => None,
    })
}

fn error(variable: &str, value: &str, accepted: &str, message: String) -> Vec<Diagnostic> {
    vec![Diagnostic {
        severity: Severity::Error,
        variable: variable.to_string(),
        value: Some(value.to_string()),
        accepted: accepted.to_string(),
        message,
    }]
}

fn decide(context: &DeploymentContext) -> Result<Selection, Vec<Diagnostic>> {
    let accepted_names = format!("one of: {}", NAMES.map(|(n, _)| n).join(", "));

    // 1. The operator said so.
    if let Some(value) = env(context, BACKEND_VAR) {
        let name = value.trim();
        return match NAMES.iter().find(|(n, _)| *n == name) {
            Some((_, backend)) => Ok(Selection { backend: *backend, reason: format!("{BACKEND_VAR}={name}") }),
            None => Err(error(
                BACKEND_VAR,
                value,
                &accepted_names,
                format!("{BACKEND_VAR}={value}: not a persistence backend; expected {accepted_names}"),
            )),
        };
    }

    // 2. The threshold.
    let min_free = match env(context, MIN_FREE_VAR) {
        None => DEFAULT_MIN_FREE,
        Some(text) => match parse_bytes(text) {
            Some(n) => n,
            None => {
                let accepted = "a number of bytes, optionally with KiB, MiB, GiB or TiB, e.g. 1073741824 or 1GiB";
                return Err(error(MIN_FREE_VAR, text, accepted, format!("{MIN_FREE_VAR}={text}: expected {accepted}")));
            }
        },
    };

    // 3. The data root.
    let Some(root) = context.facts.dirs.first() else {
        return Ok(memory("the host reported no data directory".to_string()));
    };
    Ok(judge(root, min_free))
}

fn judge(root: &DirFacts, min_free: u64) -> Selection {
    let path = &root.path;
    if !root.exists {
        return memory(format!("data root {path} does not exist"));
    }
    if !root.writable {
        return memory(format!("data root {path} is not writable"));
    }
    let Some(free) = root.free_bytes else {
        return memory(format!("free space on data root {path} cannot be measured"));
    };
    let volume = if root.mount_point { "a writable mount point" } else { "writable (not a mount point)" };
    if free < min_free {
        return memory(format!(
            "data root {path} is {volume} but has {} free, below {MIN_FREE_VAR}={}",
            gib(free),
            gib(min_free)
        ));
    }
    Selection {
        backend: BackendKind::LsmTree,
        reason: format!(
            "data root {path} is {volume} with {} free (at least {MIN_FREE_VAR}={}): lsm_tree",
            gib(free),
            gib(min_free)
        ),
    }
}

fn memory(why: String) -> Selection {
    Selection { backend: BackendKind::Memory, reason: format!("{why}: memory (data is not kept across restarts)") }
}

/// `12.50 GiB`, or `512.0 MiB` below 1 GiB.
fn gib(n: u64) -> String {
    if n < 1 << 30 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64)
    }
}

/// `1073741824`, `1GiB`, `512 MiB`.
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit::storage::types::{EnvVar, HostFacts, PodIdentity};

    fn ctx(env: &[(&str, &str)], dirs: Vec<DirFacts>) -> DeploymentContext {
        DeploymentContext {
            env: env
                .iter()
                .map(|(n, v)| EnvVar { name: n.to_string(), value: EnvValue::Plain(v.to_string()) })
                .collect(),
            toml: None,
            facts: HostFacts {
                dirs,
                memory_limit_bytes: None,
                cpu_count: 1,
                pod: PodIdentity { pod_name: None, pod_namespace: None, pod_ip: None, node_name: None, hostname: None },
            },
        }
    }

    fn dir(free: u64) -> DirFacts {
        DirFacts {
            path: "/app/data".into(),
            exists: true,
            writable: true,
            free_bytes: Some(free),
            total_bytes: None,
            mount_point: true,
        }
    }

    #[test]
    fn chooses_by_the_data_root() {
        let s = decide(&ctx(&[], vec![dir(10 << 30)])).unwrap();
        assert!(matches!(s.backend, BackendKind::LsmTree), "{}", s.reason);
        assert!(s.reason.contains("10.00 GiB free"), "{}", s.reason);
        let s = decide(&ctx(&[], vec![dir(10 << 20)])).unwrap();
        assert!(matches!(s.backend, BackendKind::Memory), "{}", s.reason);
        let s = decide(&ctx(&[(MIN_FREE_VAR, "1MiB")], vec![dir(10 << 20)])).unwrap();
        assert!(matches!(s.backend, BackendKind::LsmTree), "{}", s.reason);
        let s = decide(&ctx(&[], vec![DirFacts { writable: false, ..dir(10 << 30) }])).unwrap();
        assert!(s.reason.contains("not writable"), "{}", s.reason);
        assert!(matches!(decide(&ctx(&[], vec![])).unwrap().backend, BackendKind::Memory));
    }

    #[test]
    fn the_operator_wins_and_bad_values_are_errors() {
        let s = decide(&ctx(&[(BACKEND_VAR, "rocksdb")], vec![dir(0)])).unwrap();
        assert!(matches!(s.backend, BackendKind::Rocksdb));
        assert_eq!(decide(&ctx(&[(BACKEND_VAR, "lsm")], vec![])).unwrap_err()[0].variable, BACKEND_VAR);
        assert_eq!(decide(&ctx(&[(MIN_FREE_VAR, "lots")], vec![])).unwrap_err()[0].variable, MIN_FREE_VAR);
        assert_eq!(parse_bytes("99999999999TiB"), None);
    }
}
