//! A setting's value once parsed: what the translator produces from text,
//! what travels in the WIT `config` interface, and what the typed backend
//! configurations are built from. Parsing by value kind lives here too, so
//! the translator (reading text) and the host (filling a default a plugin
//! left out, checking what a plugin returned) apply the same rules.

use std::time::Duration;

use crate::catalogue::{Setting, ValueKind};
use crate::value::{
    parse_bool, parse_byte_size, parse_count, parse_duration_ms, parse_duration_secs,
    parse_fraction,
};
use crate::{BackendKind, DURABILITY};

/// Where a secret lives. Plugins only ever name it; the host reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (for example a mounted Kubernetes Secret).
    File(String),
}

impl std::fmt::Display for SecretRef {
    /// `env NAME` or `file PATH`: where the secret is, never what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::File(path) => write!(f, "file {path}"),
        }
    }
}

/// When a local engine acknowledges a write (`ORBIT_<ENGINE>_DURABILITY`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// After fsync; concurrent writers share one fsync (group commit).
    #[default]
    Sync,
    /// At once; an fsync runs every sync interval, so a crash loses at most
    /// that interval.
    Periodic,
    /// At once; the operating system writes back when it likes.
    None,
}

impl Durability {
    pub const fn name(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Periodic => "periodic",
            Durability::None => "none",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sync" => Some(Durability::Sync),
            "periodic" => Some(Durability::Periodic),
            "none" => Some(Durability::None),
            _ => None,
        }
    }
}

/// One setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Not set, for an optional setting without default.
    Absent,
    Bool(bool),
    /// Counts and byte sizes.
    Int(u64),
    Float(f64),
    /// Durations, in milliseconds whatever unit the setting is written in.
    Millis(u64),
    /// Text, paths, URLs and choices.
    Text(String),
    Secret(SecretRef),
}

/// The values of one backend's settings, keyed by environment name.
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

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| *n == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(n, v)| (*n, v))
    }
}

impl Setting {
    /// Parses `text` by the setting's kind. `Err` carries what is accepted.
    /// Empty text means "none" where none is allowed.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        let t = text.trim();
        if t.is_empty() && !self.required {
            if self.default.is_empty() {
                return Ok(Value::Absent);
            }
            match self.kind {
                ValueKind::Text => return Ok(Value::Text(String::new())),
                // `ORBIT_GCP_CREDENTIALS_PATH=""`: no credentials file.
                ValueKind::SecretFile => return Ok(Value::Absent),
                _ => {}
            }
        }
        let value = match self.kind {
            ValueKind::Bool => parse_bool(t).map(Value::Bool),
            ValueKind::ByteSize => parse_byte_size(t).map(Value::Int),
            ValueKind::Count { min, max } => parse_count(t, min, max).map(Value::Int),
            ValueKind::DurationSecs => parse_duration_secs(t).map(|s| Value::Millis(s * 1000)),
            ValueKind::DurationMs => parse_duration_ms(t).map(Value::Millis),
            ValueKind::Fraction => parse_fraction(t).map(Value::Float),
            ValueKind::Text => Ok(Value::Text(t.to_string())),
            ValueKind::Path if !t.is_empty() && !t.contains('\0') => Ok(Value::Text(t.to_string())),
            ValueKind::Path => return Err("a non-empty path".into()),
            ValueKind::Url if is_url(t) => Ok(Value::Text(t.to_string())),
            ValueKind::Url => return Err(URL_ACCEPTED.into()),
            ValueKind::SocketAddr if t.contains(':') => Ok(Value::Text(t.to_string())),
            ValueKind::SocketAddr => return Err("host:port, e.g. 0.0.0.0:8080".into()),
            ValueKind::BackendName => match t.parse::<BackendKind>() {
                Ok(b) => Ok(Value::Text(b.name().to_string())),
                Err(_) => return Err(format!("one of: {}", BackendKind::accepted_names())),
            },
            ValueKind::Choice(choices) if choices.contains(&t) => Ok(Value::Text(t.to_string())),
            ValueKind::Choice(choices) => return Err(format!("one of: {}", choices.join(", "))),
            ValueKind::Durability if DURABILITY.contains(&t) => Ok(Value::Text(t.to_string())),
            ValueKind::Durability => return Err(format!("one of: {}", DURABILITY.join(", "))),
            ValueKind::SecretFile if !t.is_empty() && !t.contains('\0') => {
                Ok(Value::Secret(SecretRef::File(t.to_string())))
            }
            ValueKind::SecretFile => return Err("a file path".into()),
            ValueKind::Secret => return Err("a reference to a secret, never its value".into()),
        };
        value.map_err(|e| e.accepted)
    }

    /// What the setting accepts, in words.
    pub fn accepted(&self) -> String {
        if matches!(self.kind, ValueKind::Text) {
            return if self.required {
                "a non-empty text".into()
            } else {
                "a text".into()
            };
        }
        // The parsers say it best: ask them about a value that never parses.
        let strict = Setting {
            default: "x",
            required: true,
            ..*self
        };
        match strict.parse("\u{0}") {
            Err(accepted) => accepted,
            Ok(_) => "a value".into(),
        }
    }

    /// The value written as this setting's text, so that [`Setting::parse`]
    /// gives it back (`None` for an absent value or a secret, which is
    /// written by reference, not as text).
    pub fn render(&self, value: &Value) -> Option<String> {
        Some(match value {
            Value::Absent | Value::Secret(SecretRef::Env(_)) => return None,
            Value::Secret(SecretRef::File(path)) => path.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            // Rust prints the shortest text that parses back to the same f64.
            Value::Float(x) => x.to_string(),
            Value::Millis(ms) if matches!(self.kind, ValueKind::DurationSecs) => {
                (ms / 1000).to_string()
            }
            Value::Millis(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
            Value::Millis(ms) => format!("{ms}ms"),
            Value::Text(t) => t.clone(),
        })
    }

    /// True when the setting can have no value: it is not required, and has
    /// no default or refers to a secret (`ORBIT_GCP_CREDENTIALS_PATH` has a
    /// default file, yet an inline key leaves it unset).
    pub fn may_be_absent(&self) -> bool {
        !self.required
            && (self.default.is_empty()
                || matches!(self.kind, ValueKind::Secret | ValueKind::SecretFile))
    }

    /// Checks a value that did not come from text (a plugin's output): its
    /// form must be the one this setting's kind parses to, within the same
    /// bounds. `Err` says what is accepted.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let ok = match (self.kind, value) {
            (_, Value::Absent) => self.may_be_absent(),
            (ValueKind::Bool, Value::Bool(_)) => true,
            (ValueKind::ByteSize, Value::Int(_)) => true,
            (ValueKind::Count { min, max }, Value::Int(n)) => (min..=max).contains(n),
            (ValueKind::DurationSecs, Value::Millis(ms)) => ms % 1000 == 0,
            (ValueKind::DurationMs, Value::Millis(_)) => true,
            (ValueKind::Fraction, Value::Float(x)) => *x > 0.0 && *x < 1.0,
            (ValueKind::Text, Value::Text(t)) => !self.required || !t.trim().is_empty(),
            (ValueKind::Path, Value::Text(t)) => !t.is_empty() && !t.contains('\0'),
            (ValueKind::Url, Value::Text(t)) => is_url(t),
            (ValueKind::SocketAddr, Value::Text(t)) => t.contains(':'),
            (ValueKind::BackendName, Value::Text(t)) => t.parse::<BackendKind>().is_ok(),
            (ValueKind::Choice(choices), Value::Text(t)) => choices.contains(&t.as_str()),
            (ValueKind::Durability, Value::Text(t)) => DURABILITY.contains(&t.as_str()),
            (ValueKind::Secret, Value::Secret(_)) => true,
            (ValueKind::SecretFile, Value::Secret(SecretRef::File(p))) => {
                !p.is_empty() && !p.contains('\0')
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else if matches!(value, Value::Absent) {
            Err(format!("a value ({})", self.accepted()))
        } else {
            Err(self.accepted())
        }
    }
}

const URL_ACCEPTED: &str = "a URL starting with http:// or https://, e.g. https://s3.eu-west-1.amazonaws.com or http://minio:9000";

fn is_url(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    matches!(rest, Some(host) if !host.is_empty() && !t.chars().any(char::is_whitespace))
}

/// A Rust type a setting's value converts to (the field types of the typed
/// configurations). `None` when the value has another form.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
    fn to_value(&self) -> Value;
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
}

impl FromValue for Duration {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Millis(ms) => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Millis(u64::try_from(self.as_millis()).unwrap_or(u64::MAX))
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromValue for Durability {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Durability::parse(t),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Text(self.name().to_string())
    }
}

impl FromValue for SecretRef {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Secret(r) => Some(r.clone()),
            _ => None,
        }
    }
    fn to_value(&self) -> Value {
        Value::Secret(self.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Absent => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Absent, T::to_value)
    }
}
