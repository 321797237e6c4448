//! A backend's configuration as plain typed values keyed by environment
//! variable name: what [`crate::resolve`] produces, what [`crate::render`]
//! consumes, and what [`crate::config`] maps to and from the WIT records.

/// Where a secret lives (mirrors the WIT `secret-ref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
}

/// One setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Not set, for an optional setting without default (a WIT `none`).
    Absent,
    Bool(bool),
    Int(u64),
    Float(f64),
    Text(String),
    Secret(SecretRef),
}

/// The values of one backend's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values(Vec<(&'static str, Value)>);

static ABSENT: Value = Value::Absent;

impl Values {
    /// Sets (or replaces) the value of `name`.
    pub fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Builder form of [`Values::set`].
    pub fn with(mut self, name: &'static str, value: Value) -> Self {
        self.set(name, value);
        self
    }

    /// The value of `name` ([`Value::Absent`] when not set).
    pub fn get(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&ABSENT, |(_, v)| v)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Value::Bool(true))
    }

    pub fn u64(&self, name: &str) -> u64 {
        self.opt_u64(name).unwrap_or(0)
    }

    /// Counts that the WIT types hold as `u32` (the catalogue bounds them well
    /// below `u32::MAX`; saturate rather than trap if it ever does not).
    pub fn u32(&self, name: &str) -> u32 {
        u32::try_from(self.u64(name)).unwrap_or(u32::MAX)
    }

    pub fn opt_u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn f64(&self, name: &str) -> f64 {
        match self.get(name) {
            Value::Float(x) => *x,
            _ => 0.0,
        }
    }

    pub fn text(&self, name: &str) -> String {
        self.opt_text(name).unwrap_or_default()
    }

    pub fn opt_text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn secret(&self, name: &str) -> Option<SecretRef> {
        match self.get(name) {
            Value::Secret(s) => Some(s.clone()),
            _ => None,
        }
    }
}
