//! The WIT `config.backend-config` to and from [`Values`]: one entry per
//! setting, named by its environment variable (`unset` where it has no
//! value). Nothing here names a
//! setting; the catalogue (`orbit-config-syntax`) says which exist.

use orbit_config_syntax::{BackendConfig, BackendKind, SecretRef, Value, Values};

use crate::glue;
use crate::orbit::storage::config as wit;
use crate::orbit::storage::types::SecretRef as WitSecretRef;

/// The configuration of `kind` from resolved values.
pub fn to_wit(kind: BackendKind, values: &Values) -> wit::BackendConfig {
    wit::BackendConfig {
        backend: glue::wit_kind(kind),
        settings: values
            .iter()
            .map(|(name, value)| wit::Setting {
                name: name.to_string(),
                value: value_to_wit(value),
            })
            .collect(),
    }
}

/// The backend and the values of a configuration; names that are not
/// settings of that backend are dropped (the host sends only its own).
pub fn from_wit(config: &wit::BackendConfig) -> (BackendKind, Values) {
    let kind = glue::kind(config.backend);
    let settings = BackendConfig::settings(kind);
    let mut values = Values::default();
    for s in &config.settings {
        if let Some(setting) = settings.iter().find(|c| c.env == s.name) {
            values.set(setting.env, value_from_wit(&s.value));
        }
    }
    (kind, values)
}

pub fn secret_to_wit(r: &SecretRef) -> WitSecretRef {
    match r {
        SecretRef::Env(n) => WitSecretRef::Env(n.clone()),
        SecretRef::File(p) => WitSecretRef::File(p.clone()),
    }
}

fn value_to_wit(v: &Value) -> wit::SettingValue {
    match v {
        Value::Absent => wit::SettingValue::Unset,
        Value::Bool(b) => wit::SettingValue::Flag(*b),
        Value::Int(n) => wit::SettingValue::Number(*n),
        Value::Float(x) => wit::SettingValue::Fraction(*x),
        Value::Millis(ms) => wit::SettingValue::DurationMs(*ms),
        Value::Text(t) => wit::SettingValue::Text(t.clone()),
        Value::Secret(r) => wit::SettingValue::Secret(secret_to_wit(r)),
    }
}

fn value_from_wit(v: &wit::SettingValue) -> Value {
    match v {
        wit::SettingValue::Unset => Value::Absent,
        wit::SettingValue::Flag(b) => Value::Bool(*b),
        wit::SettingValue::Number(n) => Value::Int(*n),
        wit::SettingValue::Fraction(x) => Value::Float(*x),
        wit::SettingValue::DurationMs(ms) => Value::Millis(*ms),
        wit::SettingValue::Text(t) => Value::Text(t.clone()),
        wit::SettingValue::Secret(WitSecretRef::Env(n)) => Value::Secret(SecretRef::Env(n.clone())),
        wit::SettingValue::Secret(WitSecretRef::File(p)) => {
            Value::Secret(SecretRef::File(p.clone()))
        }
    }
}
