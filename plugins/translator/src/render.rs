//! The environment that reproduces a configuration (`render-env`): every
//! setting of the backend, written so that translating it back gives the
//! same configuration.

use orbit_config_syntax::{BackendKind, Scope, ValueKind, settings};

use crate::values::{SecretRef, Value, Values};

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
    for setting in settings()
        .iter()
        .filter(|s| s.scope == Scope::Backend(kind))
    {
        let name = setting.env.to_string();
        let rendered = match (setting.kind, values.get(setting.env)) {
            // A secret held in a file travels as `<NAME>_FILE`; an absent one
            // is simply not set.
            (ValueKind::Secret, Value::Secret(SecretRef::File(path))) => {
                out.push((format!("{name}_FILE"), Rendered::Plain(path.clone())));
                continue;
            }
            (ValueKind::Secret, Value::Absent) => continue,
            (_, Value::Secret(SecretRef::File(path))) => Rendered::Plain(path.clone()),
            (_, Value::Secret(r @ SecretRef::Env(_))) => Rendered::Secret(r.clone()),
            // An explicitly empty value means "none" for optional settings.
            (_, Value::Absent) => Rendered::Plain(String::new()),
            (_, Value::Bool(b)) => Rendered::Plain(b.to_string()),
            (_, Value::Int(n)) => Rendered::Plain(n.to_string()),
            // Rust prints the shortest text that parses back to the same f64.
            (_, Value::Float(x)) => Rendered::Plain(x.to_string()),
            (_, Value::Text(s)) => Rendered::Plain(s.clone()),
        };
        out.push((name, rendered));
    }
    out
}
