//! The Helm chart's backend settings, generated from the settings catalogue
//! (`orbit-server config generate`, see [`crate::generated`]): the tables under
//! `persistence.<backend>` in `values.yaml` (between two marker lines) and
//! their JSON schema in `values.schema.json` (types, bounds, choices,
//! descriptions). The chart writes those tables into the server's TOML file
//! as they are (`camelCase` keys become the TOML keys), so the server's
//! bounds are the schema's and `helm install` refuses what the server would.

use orbit_config_syntax::{BackendConfig, BackendKind, DURABILITY, Setting, ValueKind};
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

/// The settings a values file may set for a backend: all but secrets, which
/// come from a Kubernetes Secret.
fn chart_settings(kind: BackendKind) -> impl Iterator<Item = &'static Setting> {
    BackendConfig::settings(kind)
        .iter()
        .filter(|s| s.kind != ValueKind::Secret)
}

/// The JSON schema of one setting's value.
fn value_schema(s: &Setting) -> Json {
    let mut schema = match s.kind {
        ValueKind::Bool => json!({"type": "boolean"}),
        ValueKind::ByteSize => json!({"$ref": "#/$defs/byteSize"}),
        ValueKind::Count { min, max } if max == u64::MAX => {
            json!({"type": "integer", "minimum": min})
        }
        ValueKind::Count { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        ValueKind::DurationSecs => json!({"$ref": "#/$defs/seconds"}),
        ValueKind::DurationMs => json!({"$ref": "#/$defs/duration"}),
        ValueKind::Fraction => json!({
            "type": ["number", "string"],
            "pattern": "^0?\\.[0-9]*[1-9][0-9]*$",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 1,
        }),
        ValueKind::Url => json!({"type": "string", "pattern": "^(|https?://\\S+)$"}),
        ValueKind::Durability => json!({"enum": DURABILITY}),
        ValueKind::Choice(choices) => json!({"enum": choices}),
        _ => json!({"type": "string"}),
    };
    let mut doc = s.doc.to_string();
    if matches!(s.kind, ValueKind::Fraction) {
        doc.push_str(" A decimal string is accepted too, as `--set` passes decimals as strings.");
    }
    if s.kind == ValueKind::SecretFile {
        doc.push_str(" Empty: no key file (for example with GKE Workload Identity).");
    }
    let nullable = json!({"anyOf": [schema.take(), {"type": "null"}]});
    let mut out = nullable;
    out["description"] = Json::String(format!("{doc} ({}; null: the default)", s.env));
    out
}

/// The schema of `persistence.<backend>`: every setting under its TOML key
/// in camelCase, and the older TOML names still read.
pub fn backend_schema(kind: BackendKind) -> Json {
    let mut properties = serde_json::Map::new();
    for s in chart_settings(kind) {
        properties.insert(camel(s.toml_key()), value_schema(s));
        for alias in s.toml_aliases {
            let mut old = value_schema(s);
            old["description"] = Json::String(format!("Older name of {}.", camel(s.toml_key())));
            properties.insert(camel(alias), old);
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

/// A default as it is written in `values.yaml`.
fn default_yaml(s: &Setting) -> String {
    if s.default.is_empty()
        || s.default
            .contains(orbit_config_syntax::DATA_DIR_PLACEHOLDER)
    {
        return match s.kind {
            ValueKind::Text | ValueKind::Path | ValueKind::Url | ValueKind::SecretFile => {
                "\"\"".into()
            }
            _ => "null".into(),
        };
    }
    let plain = s.default.parse::<f64>().is_ok()
        || matches!(s.default, "true" | "false")
        || matches!(s.kind, ValueKind::Durability);
    if plain {
        s.default.to_string()
    } else {
        format!("{:?}", s.default)
    }
}

/// The generated part of `values.yaml`: one table per backend, each key
/// with its description and default.
pub fn values_yaml() -> String {
    let mut out = String::new();
    for kind in BackendKind::ALL {
        out.push_str(&format!("  {}:\n", camel(kind.name())));
        for s in chart_settings(kind) {
            let mut doc = s.doc.to_string();
            if s.required {
                doc.push_str(&format!(" Required with the {kind} backend."));
            }
            if s.default
                .contains(orbit_config_syntax::DATA_DIR_PLACEHOLDER)
            {
                doc.push_str(&format!(
                    " Default: {}.",
                    s.default
                        .replace(orbit_config_syntax::DATA_DIR_PLACEHOLDER, "/app/data")
                ));
            }
            for line in wrap(&format!("{doc} ({})", s.env), 110) {
                out.push_str(&format!("    # {line}\n"));
            }
            out.push_str(&format!(
                "    {}: {}\n",
                camel(s.toml_key()),
                default_yaml(s)
            ));
        }
    }
    out
}

/// `text` in lines of at most `width` characters (yamllint's limit is 120).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// `values.schema.json` (its text) with the `persistence.<backend>`
/// schemas replaced by the catalogue's.
pub fn schema_json(text: &str) -> Result<String, String> {
    let mut schema: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let properties = schema
        .pointer_mut("/properties/persistence/properties")
        .ok_or("no `properties.persistence.properties` object")?;
    for kind in BackendKind::ALL {
        properties[camel(kind.name())] = backend_schema(kind);
    }
    Ok(serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())? + "\n")
}
