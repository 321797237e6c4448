//! Which secret each backend setting may name, from the host's own sources.
//!
//! The translator plugin returns secret *references*; the host resolves them
//! when it opens the backend. Without a binding, a hostile translator could
//! return `access_key_id = env ORBIT_API_TOKEN` (or any readable file) with
//! an endpoint of its own and have the host send that value out. So each
//! secret field accepts only what the operator configured for that very
//! setting, read here from the environment and the TOML file, not from the
//! plugin:
//!
//! | setting kind | accepted references |
//! |---|---|
//! | secret (`ORBIT_S3_SECRET_ACCESS_KEY`, ...) | `env NAME`; `file P` where `P` is the value of `NAME_FILE` or of the TOML key `<key>_file` |
//! | secret file (`ORBIT_GCP_CREDENTIALS_PATH`) | `file P` where `P` is the setting's value (environment, TOML key or alias) or its default |

use orbit_config_syntax::{self as syntax, ValueKind};
use orbit_storage::{SecretBindings, SecretRef};

use crate::settings::{ConfigSource, lookup_path};

/// The references the translator may use for each secret setting.
pub fn bindings(src: &ConfigSource) -> SecretBindings {
    let mut b = SecretBindings::default();
    let env = |name: &str| {
        src.env
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let toml = |path: &str| {
        src.toml
            .as_ref()
            .and_then(|t| lookup_path(&t.table, path))
            .and_then(toml::Value::as_str)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    for s in syntax::settings() {
        match s.kind {
            ValueKind::Secret => {
                b.allow(s.env, SecretRef::Env(s.env.to_string()));
                let files = [
                    env(&format!("{}_FILE", s.env)),
                    toml(&format!("{}_file", s.toml)),
                ];
                for path in files.into_iter().flatten() {
                    b.allow(s.env, SecretRef::File(path));
                }
            }
            ValueKind::SecretFile => {
                let toml_paths = std::iter::once(s.toml).chain(s.toml_aliases.iter().copied());
                let configured = std::iter::once(env(s.env)).chain(toml_paths.map(toml));
                let default = (!s.default.is_empty()).then(|| s.default.to_string());
                for path in configured.chain([default]).flatten() {
                    b.allow(s.env, SecretRef::File(path));
                }
            }
            _ => {}
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_storage::{BackendConfig, S3Config};

    fn s3(access: SecretRef, secret: Option<SecretRef>) -> BackendConfig {
        BackendConfig::S3(S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
            bucket: "b".into(),
            access_key_id: Some(access),
            secret_access_key: secret,
            prefix: String::new(),
            enable_ssl: false,
            connection_timeout: std::time::Duration::from_secs(1),
            read_timeout: None,
            write_timeout: None,
            retry_count: 0,
        })
    }

    fn source(env: &[(&str, &str)], toml: Option<&str>) -> ConfigSource {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orbit.toml");
        if let Some(t) = toml {
            std::fs::write(&path, t).unwrap();
        }
        ConfigSource::new(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            toml.map(|_| path.as_path()),
        )
        .unwrap()
    }

    #[test]
    fn each_secret_field_accepts_only_its_own_setting() {
        let src = source(
            &[
                ("ORBIT_S3_SECRET_ACCESS_KEY_FILE", "/run/s3/secret\n"),
                ("ORBIT_API_TOKEN", "t"),
            ],
            Some("[persistence.s3]\naccess_key_id_file = \"/run/s3/id\"\n"),
        );
        let b = bindings(&src);
        let env = |n: &str| SecretRef::Env(n.into());
        let file = |p: &str| SecretRef::File(p.into());
        // What the operator configured.
        for ok in [
            s3(
                env("ORBIT_S3_ACCESS_KEY_ID"),
                Some(env("ORBIT_S3_SECRET_ACCESS_KEY")),
            ),
            s3(file("/run/s3/id"), Some(file("/run/s3/secret"))),
        ] {
            assert_eq!(b.check(&ok), Ok(()), "{ok:?}");
        }
        // Another setting's variable, another file, or a swapped field.
        for (bad, says) in [
            (
                s3(env("ORBIT_API_TOKEN"), None),
                "refers to env ORBIT_API_TOKEN",
            ),
            (
                s3(
                    file("/var/run/secrets/kubernetes.io/serviceaccount/token"),
                    None,
                ),
                "refers to file /var/run/secrets/kubernetes.io/serviceaccount/token",
            ),
            (s3(file("/run/s3/secret"), None), "ORBIT_S3_ACCESS_KEY_ID"),
            (
                s3(env("HOME"), None),
                "accepts env ORBIT_S3_ACCESS_KEY_ID or file /run/s3/id",
            ),
        ] {
            let e = b.check(&bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_credentials_file_is_the_configured_path_or_the_default() {
        let gcp = |p: &str| {
            BackendConfig::Gcp(orbit_storage::GcpConfig {
                project_id: None,
                bucket_name: "b".into(),
                credentials_path: Some(SecretRef::File(p.into())),
                service_account_key: None,
                prefix: String::new(),
                connection_timeout: std::time::Duration::from_secs(1),
                retry_count: 0,
            })
        };
        let b = bindings(&source(&[], None));
        assert_eq!(b.check(&gcp("/app/gcp/credentials.json")), Ok(()));
        assert!(b.check(&gcp("/etc/shadow")).is_err());
        let b = bindings(&source(
            &[("ORBIT_GCP_CREDENTIALS_PATH", "/k/sa.json")],
            None,
        ));
        assert_eq!(b.check(&gcp("/k/sa.json")), Ok(()));
    }
}
