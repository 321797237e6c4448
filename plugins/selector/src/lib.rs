//! The default backend selector (WIT world `selector`).
//!
//! It decides which persistence backend the host opens, the way the Orbit-RS
//! deployment documents promise: `ORBIT_PERSISTENCE_BACKEND`, else
//! `[server] persistence_backend` in the TOML file, else `memory`. The logic
//! lives in [`select`] as plain Rust; this file only converts the WIT types.

mod select;

wit_bindgen::generate!({
    path: "../../wit",
    world: "selector",
});

orbit_plugin_common::wit_glue!();

use exports::orbit::storage::selection::{Guest, Selection};
use orbit::storage::types::{DeploymentContext, Diagnostic};

struct Selector;

impl Guest for Selector {
    fn select(context: DeploymentContext) -> Result<Selection, Vec<Diagnostic>> {
        let env = glue::env(&context.env);
        match select::select(&env, context.toml.as_deref()) {
            Ok(choice) => Ok(Selection {
                backend: glue::wit_kind(choice.backend),
                reason: choice.reason,
            }),
            Err(diags) => Err(diags.into_iter().map(glue::diagnostic).collect()),
        }
    }
}

export!(Selector);
