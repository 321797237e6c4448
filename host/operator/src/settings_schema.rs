//! The CRD schema of the settings tables (`spec.persistence.<backend>`,
//! `spec.server`, `spec.health`), generated from the settings catalogue of
//! `orbit-config-syntax`: every key, kind, bound, choice and description
//! comes from the catalogue line that declares the setting, so the operator
//! re-types none of them. Keys are the TOML keys in camelCase (as in the Helm
//! chart's values); the operator writes them back as TOML keys for the
//! translator.

use orbit_config_syntax::{BackendConfig, BackendKind, DURABILITY, Scope, Setting, ValueKind};
use serde_json::{Value as Json, json};

/// `lsm_tree` -> `lsmTree`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Host settings the operator sets itself (they follow from the resource:
/// the backend, the data volume, the ports, the plugin files), so they are
/// not part of `spec.server` / `spec.plugins`.
pub const OWNED_BY_OPERATOR: &[&str] = &[
    "server.persistence_backend",
    "server.data_dir",
    "server.http_addr",
    "server.metrics_addr",
    "plugins.selector",
    "plugins.translator",
    "plugins.health",
    "plugins.selector_sha256",
    "plugins.translator_sha256",
    "plugins.health_sha256",
    "plugins.selector_grants",
    "plugins.translator_grants",
    "plugins.health_grants",
    "plugins.public_key",
    "plugins.cache_dir",
];

/// The catalogue settings of a table (`server`, `health`, `plugins`) a
/// resource may set, or of a backend.
pub fn table_settings(table: Table) -> Vec<&'static Setting> {
    match table {
        Table::Backend(kind) => BackendConfig::settings(kind)
            .iter()
            .filter(|s| !matches!(s.kind, ValueKind::Secret))
            .collect(),
        Table::Host(scope, prefix) => orbit_config_syntax::settings()
            .iter()
            .filter(|s| s.scope == scope && s.toml.starts_with(prefix))
            .filter(|s| !s.toml.is_empty() && !OWNED_BY_OPERATOR.contains(&s.toml))
            .filter(|s| !matches!(s.kind, ValueKind::Secret))
            .collect(),
    }
}

/// A settings table of the resource.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Table {
    Backend(BackendKind),
    /// Scope and TOML table prefix (`server.`).
    Host(Scope, &'static str),
}

pub const SERVER: Table = Table::Host(Scope::Server, "server.");
pub const HEALTH: Table = Table::Host(Scope::Health, "health.");
pub const PLUGINS: Table = Table::Host(Scope::Plugins, "plugins.");

/// The camelCase keys of `table` and the setting each stands for (aliases
/// included).
pub fn keys(table: Table) -> Vec<(String, &'static Setting)> {
    let mut out = Vec::new();
    for s in table_settings(table) {
        out.push((camel(s.toml_key()), s));
        for alias in s.toml_aliases {
            out.push((camel(alias), s));
        }
    }
    out
}

/// The structural OpenAPI schema of one setting's value.
pub fn value_schema(s: &Setting) -> Json {
    let int_or_string = || json!({"x-kubernetes-int-or-string": true});
    let mut schema = match s.kind {
        ValueKind::Bool => json!({"type": "boolean"}),
        ValueKind::ByteSize | ValueKind::DurationSecs | ValueKind::DurationMs => int_or_string(),
        ValueKind::Count { min, max } if max == u64::MAX => {
            json!({"type": "integer", "minimum": min})
        }
        ValueKind::Count { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        ValueKind::Fraction => json!({
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": true,
            "maximum": 1,
            "exclusiveMaximum": true,
        }),
        ValueKind::Url => json!({"type": "string", "pattern": "^(|https?://\\S+)$"}),
        ValueKind::Durability => json!({"type": "string", "enum": DURABILITY}),
        ValueKind::Choice(choices) => json!({"type": "string", "enum": choices}),
        ValueKind::BackendName => json!({"type": "string", "enum": backend_names()}),
        _ => json!({"type": "string"}),
    };
    let mut doc = s.doc.to_string();
    if !s.default.is_empty() {
        doc.push_str(&format!(
            " Default: {}.",
            s.default
                .replace(orbit_config_syntax::DATA_DIR_PLACEHOLDER, "/app/data")
        ));
    }
    if s.required {
        doc.push_str(" Required with this backend.");
    }
    schema["description"] = Json::String(format!("{doc} ({})", s.env));
    schema
}

/// The schema of a settings table: every key typed, nothing else accepted.
pub fn table_schema(table: Table, description: &str) -> Json {
    let mut properties = serde_json::Map::new();
    for (key, s) in keys(table) {
        let mut schema = value_schema(s);
        if key != camel(s.toml_key()) {
            schema["description"] = Json::String(format!(
                "Older name of {}, still read. {}",
                camel(s.toml_key()),
                schema["description"].as_str().unwrap_or_default()
            ));
        }
        properties.insert(key, schema);
    }
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
    })
}

/// The seven backend names, from the catalogue.
pub fn backend_names() -> Vec<&'static str> {
    BackendKind::ALL.iter().map(|k| k.name()).collect()
}

/// The names of the local backends (StatefulSet with a volume).
pub fn local_backend_names() -> Vec<&'static str> {
    BackendKind::ALL
        .iter()
        .filter(|k| k.is_local())
        .map(|k| k.name())
        .collect()
}
