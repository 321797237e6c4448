//! Warnings for names Orbit does not know: `ORBIT_*` variables and TOML keys
//! outside the catalogue, each with the closest known name. They are
//! warnings, not errors: the configuration is still used, but a typo such as
//! `ORBIT_LSM_MEMTABLE_SIZ` would otherwise be silently ignored.

use orbit_config_syntax::{
    BackendKind, Setting, ValueKind, closest_name, is_secret_name, settings,
};
use orbit_plugin_common::toml_doc::{DeTable, DeValue};
use orbit_plugin_common::toml_doc::{TomlScalar, entries, scalar};
use orbit_plugin_common::{Diag, Env, TomlDoc};

/// The top-level TOML tables Orbit reads.
const TABLES: [&str; 4] = ["server", "plugins", "health", "persistence"];

/// Adds the warnings for `env` and `doc` to `diags`.
pub fn warn(backend: BackendKind, env: &Env, doc: Option<&TomlDoc<'_>>, diags: &mut Vec<Diag>) {
    unknown_env(env, diags);
    if let Some(doc) = doc {
        unknown_toml(backend, doc, diags);
    }
}

/// Every variable name the catalogue knows, including `<NAME>_FILE` for secrets.
fn known_env_names() -> Vec<String> {
    let mut names: Vec<String> = settings()
        .iter()
        .flat_map(|s| std::iter::once(s.env).chain(s.env_aliases.iter().copied()))
        .map(str::to_string)
        .collect();
    names.extend(
        settings()
            .iter()
            .filter(|s| s.kind == ValueKind::Secret)
            .map(|s| format!("{}_FILE", s.env)),
    );
    names
}

fn unknown_env(env: &Env, diags: &mut Vec<Diag>) {
    let known = known_env_names();
    for name in env.names() {
        if !name.starts_with("ORBIT_") || known.iter().any(|k| k == name) || is_service_link(name) {
            continue;
        }
        let value = if is_secret_name(name) {
            None
        } else {
            env.plain(name).map(str::to_string)
        };
        let message = match closest_name(name, known.iter().map(String::as_str)) {
            Some(s) => format!("{name} is not an Orbit setting and is ignored; did you mean {s}?"),
            None => format!(
                "{name} is not an Orbit setting and is ignored (see the settings table in the README)"
            ),
        };
        diags.push(Diag::warning(
            name,
            value,
            "a variable from Orbit's settings catalogue",
            message,
        ));
    }
}

/// Variables the kubelet injects for a Service named `orbit-*` (service
/// links): `ORBIT_SERVER_SERVICE_HOST`, `ORBIT_SERVER_SERVICE_PORT_HEALTH`,
/// `ORBIT_SERVER_PORT`, `ORBIT_SERVER_PORT_8080_TCP_ADDR`, ... They are not
/// settings and must not raise warnings.
fn is_service_link(name: &str) -> bool {
    if name.contains("_SERVICE_HOST") || name.contains("_SERVICE_PORT") {
        return true;
    }
    if let Some(i) = name.rfind("_PORT") {
        let rest = &name[i + "_PORT".len()..];
        // `X_PORT` (tcp://ip:port) or `X_PORT_<n>_<PROTO>[_ADDR|_PORT|_PROTO]`.
        return rest.is_empty()
            || rest
                .strip_prefix('_')
                .and_then(|r| r.split('_').next())
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    }
    false
}

/// The keys Orbit reads in the TOML table at `table` (e.g. `persistence.s3`).
fn known_keys(table: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for s in settings_in(table) {
        keys.push(s.toml_key().to_string());
        keys.extend(s.toml_aliases.iter().map(|a| (*a).to_string()));
        if s.kind == ValueKind::Secret {
            keys.push(format!("{}_file", s.toml_key()));
        }
    }
    keys
}

fn settings_in(table: &str) -> impl Iterator<Item = &'static Setting> {
    settings()
        .iter()
        .filter(move |s| s.toml.rsplit_once('.').is_some_and(|(t, _)| t == table))
}

fn unknown_toml(backend: BackendKind, doc: &TomlDoc<'_>, diags: &mut Vec<Diag>) {
    for (key, value) in entries(doc.root()) {
        if !TABLES.contains(&key) {
            let hint = closest_name(key, TABLES)
                .map(|t| format!("; did you mean [{t}]?"))
                .unwrap_or_default();
            diags.push(Diag::warning(
                key,
                shown(key, value),
                "one of the tables [server], [plugins], [health], [persistence.<backend>]",
                format!("{key} in the TOML file is not an Orbit setting and is ignored{hint}"),
            ));
            continue;
        }
        let Some(table) = value.as_table() else {
            diags.push(not_a_table(key, value));
            continue;
        };
        if key != "persistence" {
            check_table(key, table, None, diags);
            continue;
        }
        for (name, value) in entries(table) {
            let path = format!("persistence.{name}");
            let Ok(kind) = name.parse::<BackendKind>() else {
                let hint = match name {
                    "backend" | "backend_type" | "type" | "provider" => {
                        "; the backend is chosen by [server] persistence_backend (or ORBIT_PERSISTENCE_BACKEND)".to_string()
                    }
                    _ => closest_name(name, BackendKind::ALL.map(BackendKind::name))
                        .map(|b| format!("; did you mean [persistence.{b}]?"))
                        .unwrap_or_default(),
                };
                diags.push(Diag::warning(
                    path.clone(),
                    shown(name, value),
                    format!(
                        "a backend table: [persistence.<backend>] with <backend> one of {}",
                        BackendKind::accepted_names()
                    ),
                    format!("{path} in the TOML file is not an Orbit setting and is ignored{hint}"),
                ));
                continue;
            };
            match value.as_table() {
                Some(t) => check_table(&path, t, Some((kind, kind == backend)), diags),
                None => diags.push(not_a_table(&path, value)),
            }
        }
    }
}

/// Warns about unknown keys in the table at `path`. For a backend table,
/// `backend` says which one and whether it is the selected one: secrets
/// written in the selected backend's table are errors reported by the
/// resolver; in another backend's table they are ignored, but still worth a
/// warning (the file is usually a ConfigMap, readable by many).
fn check_table(
    path: &str,
    table: &DeTable<'_>,
    backend: Option<(BackendKind, bool)>,
    diags: &mut Vec<Diag>,
) {
    let known = known_keys(path);
    for (key, value) in entries(table) {
        let full = format!("{path}.{key}");
        if known.iter().any(|k| k == key) {
            if let Some((kind, false)) = backend
                && let Some(secret) =
                    settings_in(path).find(|s| s.kind == ValueKind::Secret && s.toml_key() == key)
            {
                diags.push(Diag::warning(
                    full.clone(),
                    None,
                    format!("{} from a Kubernetes Secret, or {key}_file", secret.env),
                    format!(
                        "{full}: secrets are not accepted in the TOML file (ignored: the {kind} backend is not selected); use {} from a Kubernetes Secret or {key}_file",
                        secret.env
                    ),
                ));
            }
            continue;
        }
        let hint = closest_name(key, known.iter().map(String::as_str))
            .map(|k| format!("; did you mean {path}.{k}?"))
            .unwrap_or_default();
        diags.push(Diag::warning(
            full.clone(),
            shown(key, value),
            format!("a key of [{path}]: {}", known.join(", ")),
            format!("{full} in the TOML file is not an Orbit setting and is ignored{hint}"),
        ));
    }
}

fn not_a_table(path: &str, value: &DeValue<'_>) -> Diag {
    Diag::warning(
        path,
        shown(path, value),
        format!("a table: [{path}]"),
        format!(
            "{path} in the TOML file should be a table ([{path}]) but is a {}; it is ignored",
            value.type_str()
        ),
    )
}

/// The value to show in a warning: scalars only, never for secret-looking keys.
fn shown(key: &str, value: &DeValue<'_>) -> Option<String> {
    match scalar(value) {
        TomlScalar::Text(t) if !is_secret_name(key) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod service_link_tests {
    use super::is_service_link;

    #[test]
    fn kubelet_service_links_are_recognised() {
        for n in [
            "ORBIT_SERVER_SERVICE_HOST",
            "ORBIT_SERVER_SERVICE_PORT",
            "ORBIT_SERVER_SERVICE_PORT_HEALTH",
            "ORBIT_SERVER_PORT",
            "ORBIT_SERVER_PORT_8080_TCP",
            "ORBIT_SERVER_METRICS_PORT_9090_TCP_ADDR",
        ] {
            assert!(is_service_link(n), "{n}");
        }
        for n in [
            "ORBIT_LSM_MEMTABLE_SIZE",
            "ORBIT_S3_REGOIN",
            "ORBIT_HTTP_ADDR",
            "ORBIT_PORT_X",
        ] {
            assert!(!is_service_link(n), "{n}");
        }
    }
}
