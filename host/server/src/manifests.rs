//! The backend variables of the raw manifests (`k8s/05-statefulset.yaml`,
//! `k8s/06-deployment-cloud.yaml`), generated from the settings catalogue
//! (see [`crate::generated`]): every setting of each backend with its
//! description, its default under `ORBIT_DATA_DIR=/app/data`, and secrets
//! from the Secret `orbit-server-secrets`.

use orbit_config_syntax::{BackendConfig, BackendKind, DATA_DIR_PLACEHOLDER, Setting, ValueKind};

/// The backends `k8s/06-deployment-cloud.yaml` can run.
pub const CLOUD: [BackendKind; 3] = [BackendKind::S3, BackendKind::Azure, BackendKind::Gcp];

/// The Secret the raw manifests read secret settings from.
const SECRET: &str = "orbit-server-secrets";

/// The data directory of the raw manifests' pods.
const DATA_DIR: &str = "/app/data";

/// Example values of the settings that have no default (the manifests are
/// meant to be edited; these show the form).
const EXAMPLES: &[(&str, &str)] = &[
    ("ORBIT_S3_BUCKET", "orbit-production-state"),
    ("ORBIT_AZURE_ACCOUNT_NAME", "myorbitaccount"),
    ("ORBIT_AZURE_CONTAINER_NAME", "orbit-data"),
    ("ORBIT_GCP_BUCKET_NAME", "orbit-production-state"),
];

/// Secret settings the manifests do not put in the environment: the GCP
/// key is mounted as a file from the same Secret key instead
/// (`ORBIT_GCP_CREDENTIALS_PATH`, volume `gcp-credentials`).
pub const MOUNTED_AS_FILES: &[&str] = &["ORBIT_GCP_SERVICE_ACCOUNT_KEY"];

/// The `env` entries of `kinds`' settings, indented for a container of a
/// pod template (12 spaces).
pub fn env_block(kinds: &[BackendKind]) -> String {
    let mut out = String::new();
    for &kind in kinds {
        let when = if kind.is_local() {
            String::new()
        } else {
            format!(" (read only when ORBIT_PERSISTENCE_BACKEND={kind})")
        };
        out.push_str(&format!("            # ---- {kind}{when} ----\n"));
        for s in BackendConfig::settings(kind) {
            if !MOUNTED_AS_FILES.contains(&s.env) {
                out.push_str(&entry(s));
            }
        }
    }
    out
}

fn entry(s: &Setting) -> String {
    let mut out = String::new();
    for line in crate::chart::wrap(s.doc, 100) {
        out.push_str(&format!("            # {line}\n"));
    }
    out.push_str(&format!("            - name: {}\n", s.env));
    if s.kind == ValueKind::Secret {
        let key = secret_key(s.env);
        out.push_str(&format!(
            "              valueFrom:\n                secretKeyRef:\n                  \
             name: {SECRET}\n                  key: {key}\n                  optional: true\n"
        ));
        return out;
    }
    let value = match EXAMPLES.iter().find(|(env, _)| *env == s.env) {
        Some((_, example)) => example.to_string(),
        None => s.default.replace(DATA_DIR_PLACEHOLDER, DATA_DIR),
    };
    out.push_str(&format!("              value: {value:?}\n"));
    out
}

/// `ORBIT_S3_ACCESS_KEY_ID` -> `s3-access-key-id`, the key in the Secret.
pub fn secret_key(env: &str) -> String {
    env.trim_start_matches("ORBIT_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_setting_has_an_example_and_secrets_come_from_the_secret() {
        for kind in BackendKind::ALL {
            for s in BackendConfig::settings(kind) {
                if s.required {
                    assert!(
                        EXAMPLES.iter().any(|(env, _)| *env == s.env),
                        "{} is required: give it an example value",
                        s.env
                    );
                }
            }
        }
        let block = env_block(&CLOUD);
        assert!(block.contains("key: s3-secret-access-key"), "{block}");
        assert!(!block.contains("ORBIT_GCP_SERVICE_ACCOUNT_KEY"), "{block}");
        assert!(!block.contains("ORBIT_MEMORY_"), "{block}");
    }
}
