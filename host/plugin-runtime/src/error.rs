//! What can go wrong with a plugin, named so an operator knows what to fix.

use std::time::Duration;

/// A plugin failed to load or a call failed. A failed call never takes the
/// host down: every variant is an ordinary error for that one call.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read, or is not a valid component.
    #[error("plugin {plugin}: cannot load {source_name}: {reason}")]
    Load {
        plugin: String,
        source_name: String,
        reason: String,
    },
    /// The component's sha256 is not the pinned one.
    #[error(
        "plugin {plugin} ({source_name}) is refused: its sha256 is {actual}, but {expected} is pinned"
    )]
    Pinned {
        plugin: String,
        source_name: String,
        expected: String,
        actual: String,
    },
    /// A public key is configured and the file's detached signature is
    /// missing, malformed or does not verify.
    #[error("plugin {plugin} ({source_name}) is refused: {reason}")]
    Signature {
        plugin: String,
        source_name: String,
        reason: String,
    },
    /// The component does not export the role's interface at a compatible version.
    #[error("plugin {plugin} ({source_name}) is not a {role} plugin: {reason}")]
    WrongWorld {
        plugin: String,
        source_name: String,
        role: &'static str,
        reason: String,
    },
    /// The component imports something this host does not provide.
    #[error("plugin {plugin} ({source_name}) cannot be instantiated: {reason}")]
    Link {
        plugin: String,
        source_name: String,
        reason: String,
    },
    /// The call ran past its CPU deadline (epoch interruption).
    #[error(
        "plugin {plugin}: call {function} exceeded its CPU deadline of {limit:?} and was stopped"
    )]
    CpuDeadline {
        plugin: String,
        function: &'static str,
        limit: Duration,
    },
    /// The call tried to grow memory past the cap.
    #[error(
        "plugin {plugin}: call {function} exceeded its memory limit of {limit_bytes} bytes and was stopped"
    )]
    MemoryLimit {
        plugin: String,
        function: &'static str,
        limit_bytes: usize,
    },
    /// The call did not return in wall-clock time (for example, blocked in a host import).
    #[error("plugin {plugin}: call {function} timed out after {limit:?}")]
    Timeout {
        plugin: String,
        function: &'static str,
        limit: Duration,
    },
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    #[error("plugin {plugin}: call {function} trapped: {message}")]
    Trap {
        plugin: String,
        function: &'static str,
        message: String,
    },
    /// The call returned something the host cannot use.
    #[error("plugin {plugin}: call {function} returned invalid output: {reason}")]
    InvalidOutput {
        plugin: String,
        function: &'static str,
        reason: String,
    },
}

impl PluginError {
    /// Metrics label: `load`, `wrong_world`, `link`, `cpu_deadline`,
    /// `memory_limit`, `timeout`, `trap`, `invalid_output`.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Load { .. } => "load",
            PluginError::Pinned { .. } => "pinned",
            PluginError::Signature { .. } => "signature",
            PluginError::WrongWorld { .. } => "wrong_world",
            PluginError::Link { .. } => "link",
            PluginError::CpuDeadline { .. } => "cpu_deadline",
            PluginError::MemoryLimit { .. } => "memory_limit",
            PluginError::Timeout { .. } => "timeout",
            PluginError::Trap { .. } => "trap",
            PluginError::InvalidOutput { .. } => "invalid_output",
        }
    }
}
