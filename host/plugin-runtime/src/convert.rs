//! Conversions between the WIT contract's types and the host's own.
//!
//! The configuration a translator returns (setting name -> value) becomes
//! [`orbit_storage::BackendConfig`], checked against the settings catalogue;
//! nothing else in the host handles WIT types for configuration, and nothing
//! here names a setting.

use std::fmt;

use orbit_config_syntax::Value;
use orbit_storage as st;

use crate::bindings::config;
use crate::bindings::types as wit;

pub fn backend_kind_to_wit(k: st::BackendKind) -> wit::BackendKind {
    use st::BackendKind as K;
    match k {
        K::Memory => wit::BackendKind::Memory,
        K::CowBtree => wit::BackendKind::CowBtree,
        K::LsmTree => wit::BackendKind::LsmTree,
        K::Rocksdb => wit::BackendKind::Rocksdb,
        K::S3 => wit::BackendKind::S3,
        K::Azure => wit::BackendKind::Azure,
        K::Gcp => wit::BackendKind::Gcp,
    }
}

pub fn backend_kind_from_wit(k: wit::BackendKind) -> st::BackendKind {
    use st::BackendKind as K;
    match k {
        wit::BackendKind::Memory => K::Memory,
        wit::BackendKind::CowBtree => K::CowBtree,
        wit::BackendKind::LsmTree => K::LsmTree,
        wit::BackendKind::Rocksdb => K::Rocksdb,
        wit::BackendKind::S3 => K::S3,
        wit::BackendKind::Azure => K::Azure,
        wit::BackendKind::Gcp => K::Gcp,
    }
}

fn secret_from_wit(s: wit::SecretRef) -> st::SecretRef {
    match s {
        wit::SecretRef::Env(n) => st::SecretRef::Env(n),
        wit::SecretRef::File(p) => st::SecretRef::File(p),
    }
}

fn secret_to_wit(s: &st::SecretRef) -> wit::SecretRef {
    match s {
        st::SecretRef::Env(n) => wit::SecretRef::Env(n.clone()),
        st::SecretRef::File(p) => wit::SecretRef::File(p.clone()),
    }
}

fn value_from_wit(v: config::SettingValue) -> Value {
    match v {
        config::SettingValue::Unset => Value::Absent,
        config::SettingValue::Flag(b) => Value::Bool(b),
        config::SettingValue::Number(n) => Value::Int(n),
        config::SettingValue::Fraction(x) => Value::Float(x),
        config::SettingValue::DurationMs(ms) => Value::Millis(ms),
        config::SettingValue::Text(t) => Value::Text(t),
        config::SettingValue::Secret(r) => Value::Secret(secret_from_wit(r)),
    }
}

fn value_to_wit(v: &Value) -> config::SettingValue {
    match v {
        Value::Absent => config::SettingValue::Unset,
        Value::Bool(b) => config::SettingValue::Flag(*b),
        Value::Int(n) => config::SettingValue::Number(*n),
        Value::Float(x) => config::SettingValue::Fraction(*x),
        Value::Millis(ms) => config::SettingValue::DurationMs(*ms),
        Value::Text(t) => config::SettingValue::Text(t.clone()),
        Value::Secret(r) => config::SettingValue::Secret(secret_to_wit(r)),
    }
}

/// The translator's configuration, as backends take it: every value is
/// checked against the settings catalogue (name, form, bounds) and the
/// defaults of settings the translator left out are filled in, with
/// `{data_dir}` standing for `data_dir`. The error names each setting at
/// fault and what it accepts.
pub fn config_from_wit(
    c: config::BackendConfig,
    data_dir: &str,
) -> Result<st::BackendConfig, String> {
    let given = c
        .settings
        .into_iter()
        .map(|s| (s.name, value_from_wit(s.value)));
    st::BackendConfig::from_plugin(backend_kind_from_wit(c.backend), given, data_dir).map_err(
        |errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        },
    )
}

/// The inverse of [`config_from_wit`] (for `render-env`).
pub fn config_to_wit(c: &st::BackendConfig) -> config::BackendConfig {
    config::BackendConfig {
        backend: backend_kind_to_wit(c.kind()),
        settings: c
            .values()
            .iter()
            .map(|(name, value)| config::Setting {
                name: name.to_string(),
                value: value_to_wit(value),
            })
            .collect(),
    }
}

impl fmt::Display for wit::Diagnostic {
    /// `error: ORBIT_X="value": message (accepted: ...)`; secrets never carry a value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            wit::Severity::Error => "error",
            wit::Severity::Warning => "warning",
        };
        write!(f, "{level}: ")?;
        // Messages usually name the variable themselves; do not say it twice.
        if !self.message.contains(&self.variable) {
            write!(f, "{}", self.variable)?;
            if let Some(v) = &self.value {
                write!(f, "={v:?}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.accepted.is_empty() && !self.message.contains(&self.accepted) {
            write!(f, " (accepted: {})", self.accepted)?;
        }
        Ok(())
    }
}

impl wit::Diagnostic {
    pub fn is_error(&self) -> bool {
        matches!(self.severity, wit::Severity::Error)
    }
}

impl wit::HealthStatus {
    /// The word `/health` shows: `ok`, `degraded` or `unavailable`.
    pub fn name(self) -> &'static str {
        match self {
            wit::HealthStatus::Ok => "ok",
            wit::HealthStatus::Degraded => "degraded",
            wit::HealthStatus::Unavailable => "unavailable",
        }
    }
}

/// The report of a healthy memory backend whose canary passed: what
/// `orbit-server plugin test` sends a health plugin, and a starting point
/// for tests.
pub fn sample_health_report() -> wit::HealthReport {
    wit::HealthReport {
        backend: wit::BackendKind::Memory,
        backend_open: true,
        stats: wit::BackendStats {
            live_keys: 0,
            live_bytes: 0,
            disk_bytes: None,
            remote: None,
        },
        canary: wit::CanaryResult {
            ok: true,
            latency_us: 40,
            error: None,
        },
        window_secs: 60,
        operations: 100,
        errors: 0,
        recent_errors: Vec::new(),
        latencies: Vec::new(),
        uptime_secs: 120,
    }
}
