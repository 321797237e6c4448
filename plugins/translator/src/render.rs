//! The environment that reproduces a configuration (`render-env`): every
//! setting of the backend, written so that translating it back gives the
//! same configuration.

use orbit_config_syntax::{BackendConfig, BackendKind, SecretRef, Value, ValueKind, Values};

/// A rendered variable's value (mirrors the WIT `rendered-value`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rendered {
    Plain(String),
    /// Set the variable from this secret (a `secretKeyRef` in Kubernetes).
    Secret(SecretRef),
}

/// The variables, in catalogue order.
pub fn render(kind: BackendKind, values: &Values) -> Vec<(String, Rendered)> {
    let mut out = Vec::new();
    for setting in BackendConfig::settings(kind) {
        let name = setting.env.to_string();
        let value = values.get(setting.env);
        let rendered = match (setting.kind, value) {
            // A secret held in a file travels as `<NAME>_FILE`; an absent one
            // is simply not set.
            (ValueKind::Secret, Value::Secret(SecretRef::File(path))) => {
                out.push((format!("{name}_FILE"), Rendered::Plain(path.clone())));
                continue;
            }
            (ValueKind::Secret, Value::Absent) => continue,
            (_, Value::Secret(r @ SecretRef::Env(_))) => Rendered::Secret(r.clone()),
            // An explicitly empty value means "none" for optional settings.
            (_, v) => Rendered::Plain(setting.render(v).unwrap_or_default()),
        };
        out.push((name, rendered));
    }
    out
}
