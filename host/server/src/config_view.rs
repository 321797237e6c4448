//! A backend configuration as people read it (`orbit-server config show`):
//! JSON keyed by each setting's TOML key, or the TOML table that sets it.
//! Durations are written as the settings accept them (`300s`, `250ms`);
//! secrets as where they are (`env NAME`, `file PATH`), never their value.

use orbit_config_syntax::{Setting, Value};
use orbit_storage::BackendConfig;

/// `{"backend": "lsm_tree", "data_dir": "/app/data/lsm_tree", ...}`.
pub fn json(config: &BackendConfig) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("backend".into(), config.kind().name().into());
    for (setting, value) in fields(config) {
        let v = match &value {
            Value::Absent => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(n) => (*n).into(),
            Value::Float(x) => (*x).into(),
            Value::Secret(r) => r.to_string().into(),
            v => setting.render(v).unwrap_or_default().into(),
        };
        out.insert(setting.toml_key().into(), v);
    }
    out.into()
}

/// `[persistence.lsm_tree]` and one `key = value` line per setting that has
/// a value.
pub fn toml(config: &BackendConfig) -> String {
    let mut table = toml::Table::new();
    for (setting, value) in fields(config) {
        let v = match &value {
            Value::Absent => continue,
            Value::Bool(b) => toml::Value::Boolean(*b),
            Value::Int(n) => i64::try_from(*n)
                .map_or_else(|_| toml::Value::String(n.to_string()), toml::Value::Integer),
            Value::Float(x) => toml::Value::Float(*x),
            Value::Secret(r) => toml::Value::String(r.to_string()),
            v => toml::Value::String(setting.render(v).unwrap_or_default()),
        };
        table.insert(setting.toml_key().into(), v);
    }
    let table_name = config.kind().name();
    format!("[persistence.{table_name}]\n{table}")
}

fn fields(config: &BackendConfig) -> Vec<(&'static Setting, Value)> {
    let values = config.values();
    BackendConfig::settings(config.kind())
        .iter()
        .map(|s| (s, values.get(s.env).clone()))
        .collect()
}
