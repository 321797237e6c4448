//! The Helm chart's backend settings, generated from the settings catalogue
//! (`orbit-server config chart helm/orbit-rs`): the tables under
//! `persistence.<backend>` in `values.yaml` (between two marker lines) and
//! their JSON schema in `values.schema.json` (types, bounds, choices,
//! descriptions). The chart writes those tables into the server's TOML file
//! as they are (`camelCase` keys become the TOML keys), so the server's
//! bounds are the schema's and `helm install` refuses what the server would.
//! `tests/docs.rs` fails when the committed chart has drifted.

use std::path::Path;

use orbit_config_syntax::{BackendConfig, BackendKind, DURABILITY, Setting, ValueKind};
use serde_json::{Value as Json, json};

const BEGIN: &str = "  # BEGIN backend settings: generated from the settings catalogue by `orbit-server config chart helm/orbit-rs`; do not edit by hand";
const END: &str = "  # END backend settings";

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
            out.push_str(&format!("    # {doc} ({})\n", s.env));
            out.push_str(&format!(
                "    {}: {}\n",
                camel(s.toml_key()),
                default_yaml(s)
            ));
        }
    }
    out
}

/// What is wrong with the chart in `dir`, or `None` if it follows the
/// catalogue.
pub fn drift(dir: &Path) -> Result<Option<String>, String> {
    let (values, schema) = read(dir)?;
    let mut wrong = Vec::new();
    if generated_block(&values)? != values_yaml() {
        wrong.push("values.yaml's backend tables");
    }
    let properties = &schema["properties"]["persistence"]["properties"];
    if BackendKind::ALL
        .iter()
        .any(|k| properties[camel(k.name())] != backend_schema(*k))
    {
        wrong.push("values.schema.json's persistence.<backend> schemas");
    }
    Ok((!wrong.is_empty()).then(|| {
        format!(
            "{} differ from the settings catalogue; run `orbit-server config chart {}`",
            wrong.join(" and "),
            dir.display()
        )
    }))
}

/// Rewrites the generated parts of the chart in `dir`.
pub fn write(dir: &Path) -> Result<(), String> {
    let (values, mut schema) = read(dir)?;
    let old = generated_block(&values)?;
    let values = values.replacen(
        &format!("{BEGIN}\n{old}"),
        &format!("{BEGIN}\n{}", values_yaml()),
        1,
    );
    let properties = &mut schema["properties"]["persistence"]["properties"];
    for kind in BackendKind::ALL {
        properties[camel(kind.name())] = backend_schema(kind);
    }
    let schema = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())? + "\n";
    std::fs::write(dir.join("values.yaml"), values).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("values.schema.json"), schema).map_err(|e| e.to_string())
}

fn read(dir: &Path) -> Result<(String, Json), String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let schema: Json = serde_json::from_str(&read("values.schema.json")?)
        .map_err(|e| format!("values.schema.json: {e}"))?;
    Ok((read("values.yaml")?, schema))
}

/// The text between the marker lines of `values.yaml`.
fn generated_block(values: &str) -> Result<String, String> {
    let start = values
        .find(BEGIN)
        .ok_or("values.yaml has no `# BEGIN backend settings` line")?
        + BEGIN.len()
        + 1;
    let end = values[start..]
        .find(END)
        .ok_or("values.yaml has no `# END backend settings` line")?;
    Ok(values[start..start + end].to_string())
}
