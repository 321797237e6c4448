//! The shared vocabulary of Orbit's configuration: backend names, the
//! catalogue of every setting (environment variable, TOML key, default,
//! accepted form) and strict parsers for the value syntaxes.
//!
//! It is compiled twice: into the host (for the host's own settings) and into
//! the default translator plugin (wasm32), so both sides agree on names and
//! syntax without either re-implementing them. It has no dependencies and does
//! no I/O.

mod backend;
mod backends;
mod catalogue;
mod declare;
mod names;
mod value;
mod value_types;

pub use backend::BackendKind;
pub use backends::{
    AzureConfig, BackendConfig, CowBtreeConfig, GcpConfig, LsmTreeConfig, MemoryConfig,
    RocksdbConfig, S3Config,
};
pub use catalogue::{
    DATA_DIR_PLACEHOLDER, DURABILITY, Scope, Setting, ValueKind, lookup, lookup_toml, settings,
};
pub use declare::ConfigError;
pub use names::{closest_name, is_secret_name};
pub use value::{
    ValueError, parse_bool, parse_byte_size, parse_count, parse_duration_ms, parse_duration_secs,
    parse_fraction,
};
pub use value_types::{Durability, FromValue, SecretRef, Value, Values};
