//! The default configuration translator (WIT world `translator`).
//!
//! It turns the environment and the TOML file into the typed configuration
//! of the selected backend, using the settings catalogue of
//! `orbit-config-syntax` (names, aliases, defaults, strict parsers), and back
//! (`render-env`). The logic is plain Rust in [`resolve`], [`unknown`] and
//! [`render`]; this file and [`config`] hold the WIT types.

mod config;
mod render;
mod resolve;
mod unknown;

wit_bindgen::generate!({
    path: "../../wit",
    world: "translator",
    additional_derives: [PartialEq],
});

orbit_plugin_common::wit_glue!();

use exports::orbit::storage::translation::{Guest, RenderedValue, RenderedVar, Translation};
use orbit::storage::config::BackendConfig;
use orbit::storage::types::{BackendKind, DeploymentContext};

struct Translator;

impl Guest for Translator {
    fn translate(backend: BackendKind, context: DeploymentContext) -> Translation {
        let env = glue::env(&context.env);
        let kind = glue::kind(backend);
        let resolution = resolve::resolve(kind, &env, context.toml.as_deref());
        let config = (!resolution.has_errors()).then(|| config::to_wit(kind, &resolution.values));
        Translation {
            config,
            diagnostics: resolution
                .diagnostics
                .into_iter()
                .map(glue::diagnostic)
                .collect(),
        }
    }

    fn render_env(config: BackendConfig) -> Vec<RenderedVar> {
        let (kind, values) = config::from_wit(&config);
        render::render(kind, &values)
            .into_iter()
            .map(|(name, value)| RenderedVar {
                name,
                value: match value {
                    render::Rendered::Plain(s) => RenderedValue::Plain(s),
                    render::Rendered::Secret(r) => RenderedValue::Secret(config::secret_to_wit(&r)),
                },
            })
            .collect()
    }
}

export!(Translator);

#[cfg(test)]
mod tests;
