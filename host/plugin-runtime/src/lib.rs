//! Orbit's WebAssembly plugin runtime (wasmtime 48, component model).
//!
//! Policy (which backend, how the environment becomes a typed configuration,
//! what "ready" means) lives in components that target the worlds of
//! `wit/worlds.wit`. This crate loads them, checks at load time that each
//! targets its role's world at a compatible contract version, pre-instantiates
//! them, and runs every call under a CPU deadline (epoch interruption), a
//! wall-clock timeout and a memory cap (`ResourceLimiter`). A trap, a deadline
//! or a memory overrun becomes a [`PluginError`] for that call; the host goes on.
//!
//! Layout, one concern per module: [`engine`] (engine configuration and epoch
//! ticker), [`limits`], [`plugin`] (loading and validation), [`runtime`] (the
//! call path), [`state`] (per-call store data), [`store_host`] (the `store`
//! import), [`keyvalue`] (the `wasi:keyvalue` imports), [`grants`] (what a
//! plugin may reach beyond the sandbox), [`convert`] (WIT <-> host types), [`embedded`] (default plugins).

pub mod bindings;
pub mod cache;
pub mod convert;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod grants;
mod keyvalue;
pub mod limits;
pub mod plugin;
pub mod runtime;
pub mod signature;
pub mod state;
mod store_host;

pub use bindings::types;
pub use cache::{CacheOutcome, ComponentCache};
pub use error::PluginError;
pub use grants::Grants;
pub use limits::PluginLimits;
pub use plugin::{CONTRACT_VERSION, PluginInfo, PluginSource, PluginSpec, Role};
pub use runtime::{
    CallObserver, HealthPlugin, Inspection, PluginRuntime, SelectorPlugin, Translated,
    TranslatorPlugin,
};
pub use state::StoreAccessLimits;

pub use bindings::selector_world::exports::orbit::storage::selection::Selection;
pub use bindings::translator_world::exports::orbit::storage::translation::{
    RenderedValue, RenderedVar, Translation,
};
