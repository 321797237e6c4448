//! Diagnostics as plain values (mirrors the WIT `diagnostic` record).

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration is used, but something looks wrong (typo, ignored value).
    Warning,
}

/// One finding about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    /// The environment variable or dotted TOML path at fault.
    pub variable: String,
    /// The offending value; never set for secrets.
    pub value: Option<String>,
    /// What is accepted.
    pub accepted: String,
    /// A sentence for humans.
    pub message: String,
}

impl Diag {
    pub fn error(
        variable: impl Into<String>,
        value: Option<String>,
        accepted: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diag {
            severity: Severity::Error,
            variable: variable.into(),
            value,
            accepted: accepted.into(),
            message: message.into(),
        }
    }

    pub fn warning(
        variable: impl Into<String>,
        value: Option<String>,
        accepted: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(variable, value, accepted, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
