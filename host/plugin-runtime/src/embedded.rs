//! The default plugins, built from `plugins/` by `cargo run -p
//! orbit-plugin-build` and committed under `plugins/dist/`; CI checks that the
//! committed bytes are exactly what the sources build to.

use crate::plugin::{PluginSource, Role};

pub const SELECTOR: &[u8] = include_bytes!("../../../plugins/dist/selector.wasm");
pub const TRANSLATOR: &[u8] = include_bytes!("../../../plugins/dist/translator.wasm");
pub const HEALTH: &[u8] = include_bytes!("../../../plugins/dist/health.wasm");

/// The embedded default for `role`.
pub fn default_source(role: Role) -> PluginSource {
    match role {
        Role::Selector => PluginSource::Embedded {
            name: "selector",
            bytes: SELECTOR,
        },
        Role::Translator => PluginSource::Embedded {
            name: "translator",
            bytes: TRANSLATOR,
        },
        Role::Health => PluginSource::Embedded {
            name: "health",
            bytes: HEALTH,
        },
    }
}
