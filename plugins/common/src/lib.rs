//! Plain-Rust helpers shared by Orbit's default plugins.
//!
//! Each plugin crate generates its own WIT bindings, so the types the host
//! hands over differ from crate to crate. The logic that reads the
//! configuration should not care: the plugins convert the host's types into
//! the small plain types here at their edges, which also lets the logic be
//! unit-tested natively (`cargo test`) without a WebAssembly runtime.

pub mod diag;
pub mod env;
mod glue;
pub mod human;
pub mod setting;
pub mod toml_doc;

pub use diag::{Diag, Severity};
pub use env::{Env, EnvValue};
pub use human::{Tenths, human_bytes, human_duration_us};
pub use orbit_config_syntax::BackendKind;
pub use setting::{Found, Raw, Source, find};
pub use toml_doc::{TomlDoc, TomlScalar};
