//! Which backend, and why: environment over TOML over the default, with a
//! "did you mean" for names that are not quite right.

use orbit_config_syntax::{BackendKind, Setting, closest_name};
use orbit_plugin_common::{Diag, Env, Found, Raw, Source, TomlDoc, find};

/// The setting that names the backend (`ORBIT_PERSISTENCE_BACKEND`,
/// `[server] persistence_backend`).
const VARIABLE: &str = "ORBIT_PERSISTENCE_BACKEND";

/// A decision.
#[derive(Debug, PartialEq, Eq)]
pub struct Choice {
    pub backend: BackendKind,
    /// Which source decided, in one sentence.
    pub reason: String,
}

/// Chooses the backend from the environment and the TOML text.
pub fn select(env: &Env, toml: Option<&str>) -> Result<Choice, Vec<Diag>> {
    let doc = match toml {
        Some(text) => Some(TomlDoc::parse(text).map_err(|d| vec![d])?),
        None => None,
    };
    let Some(setting) = orbit_config_syntax::lookup(VARIABLE) else {
        // The catalogue always has it; stay total anyway.
        return Ok(Choice {
            backend: BackendKind::Memory,
            reason: "default (nothing configured)".into(),
        });
    };
    let found = find(setting, env, doc.as_ref());
    match found {
        Found {
            raw: Raw::Unset, ..
        } => Ok(Choice {
            backend: BackendKind::Memory,
            reason: "default (nothing configured)".into(),
        }),
        Found {
            raw: Raw::Text(text),
            source,
            ..
        } => match text.parse::<BackendKind>() {
            Ok(backend) => {
                let mut reason = match &source {
                    Source::Toml(_) => format!(
                        "[server] persistence_backend = {:?} in the TOML file",
                        text.trim()
                    ),
                    _ => source.show(setting, text.trim()),
                };
                if let Source::Env(_) = source
                    && let Some(overridden) = toml_value(setting, doc.as_ref())
                    && overridden != backend.name()
                {
                    reason.push_str(&format!(
                        " (overrides [server] persistence_backend = {overridden:?} in the TOML file)"
                    ));
                }
                Ok(Choice { backend, reason })
            }
            Err(_) => Err(vec![unknown_backend(setting, &source, &text)]),
        },
        Found {
            raw: Raw::NotScalar(ty),
            source,
            ..
        } => Err(vec![Diag::error(
            source.variable(setting),
            None,
            accepted(),
            format!(
                "{} in the TOML file is a {ty}; expected a backend name, {}",
                setting.toml,
                accepted()
            ),
        )]),
        Found {
            raw: Raw::Withheld,
            source,
            ..
        } => Err(vec![Diag::error(
            source.variable(setting),
            None,
            accepted(),
            format!("the host withheld the value of {VARIABLE}, so it cannot be read"),
        )]),
    }
}

fn accepted() -> String {
    format!("one of: {}", BackendKind::accepted_names())
}

/// The TOML file's backend name, if it gives one as text.
fn toml_value(setting: &Setting, doc: Option<&TomlDoc<'_>>) -> Option<String> {
    match orbit_plugin_common::toml_doc::scalar(doc?.get(setting.toml)?) {
        orbit_plugin_common::TomlScalar::Text(t) => Some(t.trim().to_string()),
        orbit_plugin_common::TomlScalar::Other(_) => None,
    }
}

fn unknown_backend(setting: &Setting, source: &Source, value: &str) -> Diag {
    let shown = source.show(setting, value);
    let message = if value.trim().is_empty() {
        format!(
            "{shown}: the backend name is empty; expected {}",
            accepted()
        )
    } else {
        match suggest(value) {
            Some(name) => format!("{shown}: not a persistence backend; did you mean {name}?"),
            None => format!(
                "{shown}: not a persistence backend; expected {}",
                accepted()
            ),
        }
    };
    Diag::error(
        source.variable(setting),
        Some(value.to_string()),
        accepted(),
        message,
    )
}

/// A backend the user probably meant: a differently spelled name
/// (`LSM-Tree`, `lsmtree`), a prefix or part (`lsm`, `rocks`, `in_memory`),
/// or a common synonym (`minio`, `gcs`).
fn suggest(value: &str) -> Option<&'static str> {
    let norm = value
        .trim()
        .to_ascii_lowercase()
        .replace(['-', ' ', '.'], "_");
    if let Ok(kind) = norm.parse::<BackendKind>() {
        return Some(kind.name());
    }
    let names = BackendKind::ALL.map(BackendKind::name);
    let synonym = match norm.as_str() {
        "aws" | "minio" | "s3a" | "amazon" | "seaweedfs" => Some("s3"),
        "gcs" | "google" | "google_cloud_storage" => Some("gcp"),
        "blob" | "azurite" | "abs" => Some("azure"),
        "mem" | "inmem" | "in_mem" => Some("memory"),
        "lsm" | "fjall" => Some("lsm_tree"),
        "btree" | "cow" | "redb" => Some("cow_btree"),
        _ => None,
    };
    // A prefix or a part: `rocks`, `lsmtree`, `in_memory`.
    let squashed = norm.replace('_', "");
    let part = || {
        names.into_iter().find(|n| {
            let n = n.replace('_', "");
            squashed.len() >= 3 && (n.starts_with(&squashed) || squashed.contains(&n))
        })
    };
    synonym.or_else(part).or_else(|| closest_name(&norm, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_plugin_common::EnvValue;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), EnvValue::Plain(v.to_string()))),
        )
    }

    #[test]
    fn env_wins_over_toml_wins_over_default() {
        let toml = "[server]\npersistence_backend = \"rocksdb\"\n";
        let c = select(
            &env(&[("ORBIT_PERSISTENCE_BACKEND", "lsm_tree")]),
            Some(toml),
        )
        .unwrap();
        assert_eq!(c.backend, BackendKind::LsmTree);
        assert!(
            c.reason.starts_with("ORBIT_PERSISTENCE_BACKEND=lsm_tree"),
            "{}",
            c.reason
        );
        assert!(c.reason.contains("overrides"), "{}", c.reason);

        let c = select(&env(&[]), Some(toml)).unwrap();
        assert_eq!(c.backend, BackendKind::Rocksdb);
        assert_eq!(
            c.reason,
            "[server] persistence_backend = \"rocksdb\" in the TOML file"
        );

        let c = select(&env(&[]), None).unwrap();
        assert_eq!(
            c,
            Choice {
                backend: BackendKind::Memory,
                reason: "default (nothing configured)".into()
            }
        );
    }

    #[test]
    fn unknown_names_are_errors_with_suggestions() {
        for (given, meant) in [
            ("lsm", "lsm_tree"),
            ("LSM_TREE", "lsm_tree"),
            ("cow-btree", "cow_btree"),
            ("rocks", "rocksdb"),
            ("minio", "s3"),
            ("in_memory", "memory"),
            ("gcs", "gcp"),
        ] {
            let err = select(&env(&[("ORBIT_PERSISTENCE_BACKEND", given)]), None).unwrap_err();
            assert_eq!(err.len(), 1);
            let d = &err[0];
            assert!(d.is_error());
            assert_eq!(d.variable, "ORBIT_PERSISTENCE_BACKEND");
            assert_eq!(d.value.as_deref(), Some(given));
            assert_eq!(
                d.accepted,
                "one of: memory, cow_btree, lsm_tree, rocksdb, s3, azure, gcp"
            );
            assert!(
                d.message.contains(&format!("did you mean {meant}?")),
                "{given}: {}",
                d.message
            );
        }
        let err = select(&env(&[("ORBIT_PERSISTENCE_BACKEND", "")]), None).unwrap_err();
        assert!(err[0].message.contains("empty"));
        let err = select(
            &env(&[]),
            Some("[server]\npersistence_backend = 'postgres'\n"),
        )
        .unwrap_err();
        assert_eq!(err[0].variable, "server.persistence_backend");
        let err = select(&env(&[]), Some("[server]\npersistence_backend = 3\n")).unwrap_err();
        assert_eq!(err[0].value.as_deref(), Some("3"));
        let err = select(&env(&[]), Some("[server]\npersistence_backend = [1]\n")).unwrap_err();
        assert!(err[0].message.contains("array"), "{}", err[0].message);
    }

    #[test]
    fn broken_toml_is_reported() {
        let err = select(
            &env(&[("ORBIT_PERSISTENCE_BACKEND", "memory")]),
            Some("[server\n"),
        )
        .unwrap_err();
        assert_eq!(err[0].variable, "TOML file");
        assert!(
            err[0].message.contains("not valid TOML"),
            "{}",
            err[0].message
        );
    }
}
