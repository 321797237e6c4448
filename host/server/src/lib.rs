//! The Orbit storage host.
//!
//! `orbit-server` serves a key-value API over one persistence backend. Which
//! backend, how it is configured and what "ready" means are decided by
//! WebAssembly plugins (see `orbit-plugin-runtime`); this crate wires them:
//!
//! ```text
//! env + TOML ─► context ─► selector plugin ─► translator plugin ─► BackendConfig
//!                                                                     │
//!        HTTP (http/) ◄── InstrumentedStorage ◄── orbit_backends::open ◄┘
//!        /health/ready ◄── health::HealthService (canary + health plugin)
//!        /metrics      ◄── metrics::Metrics
//! ```
//!
//! One module per concern: [`cli`] (commands), [`settings`] (the host's own
//! settings and the TOML file), [`context`] (what plugins may see, secrets
//! withheld, and the facts the host probes), [`bootstrap`] (plugins ->
//! typed config), `orbit_backends` (opening a backend), [`instrumented`]
//! (metrics and the recent-operations window), [`health`], [`metrics`],
//! [`http`] (routes and handlers), [`serve`] (listeners, background tasks,
//! graceful shutdown), [`logging`]; [`generated`] writes the files that
//! follow from the settings catalogue (README table, chart, raw manifests).

pub mod bootstrap;
pub mod chart;
pub mod cli;
pub mod config_view;
pub mod context;
pub mod gate;
pub mod generated;
pub mod health;
pub mod http;
pub mod instrumented;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod plugin_cli;
pub mod policy;
pub mod reload;
pub mod secrets;
pub mod serve;
pub mod settings;
