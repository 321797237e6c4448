//! What one plugin call's wasmtime `Store` carries: its limiter, its
//! deadline, and (for roles that import `orbit:storage/store`) the backend.

use std::sync::Arc;
use std::time::Instant;

use orbit_storage::Storage;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::grants::Grants;
use crate::limits::{CallLimiter, PluginLimits};

/// Limits the `store` import applies to what a plugin writes, the same as the
/// HTTP API's.
#[derive(Clone, Copy, Debug)]
pub struct StoreAccessLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for StoreAccessLimits {
    fn default() -> Self {
        StoreAccessLimits {
            max_key_bytes: 1024,
            max_value_bytes: 4 << 20,
        }
    }
}

/// The data of one call's `Store`. A fresh one is made for every call, so no
/// state leaks from one call to the next.
pub struct CallState {
    pub(crate) limiter: CallLimiter,
    /// CPU deadline: when the epoch callback sees this instant passed, the call traps.
    pub(crate) deadline: Instant,
    /// The backend, for plugins that import `orbit:storage/store`.
    pub(crate) storage: Option<Arc<dyn Storage>>,
    pub(crate) store_limits: StoreAccessLimits,
    /// `role source`, tagging the plugin's log lines.
    pub(crate) plugin: Arc<str>,
    /// Log lines still allowed in this call.
    pub(crate) log_budget: u32,
    /// What this plugin was granted beyond the sandbox.
    pub(crate) grants: Arc<Grants>,
    /// WASI 0.2 for components that import it (componentize-py and
    /// componentize-js output does): deny-by-default plus the plugin's grants.
    wasi: WasiCtx,
    /// Resources handed to the guest (WASI streams, keyvalue buckets).
    pub(crate) table: ResourceTable,
}

/// The WASI context a plugin gets. Without grants: no arguments, no
/// environment, no preopened directories, no network (TCP, UDP and name
/// lookup denied), empty stdin, stdout and stderr discarded. Clocks and
/// random are available (they grant nothing). Each grant opens exactly one
/// thing: a variable, a read-only directory, or outbound sockets.
fn wasi_context(grants: &Grants) -> wasmtime::Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    for (name, value) in &grants.env {
        b.env(name, value);
    }
    for dir in &grants.dirs {
        let guest = dir.to_str().ok_or_else(|| {
            wasmtime::Error::msg(format!("granted directory {} is not UTF-8", dir.display()))
        })?;
        b.preopened_dir(dir, guest, FsPerms::ReadOnly)
            .map_err(|e| {
                wasmtime::Error::msg(format!(
                    "cannot open granted directory {}: {e}",
                    dir.display()
                ))
            })?;
    }
    if grants.network {
        b.inherit_network().allow_ip_name_lookup(true);
    } else {
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
    }
    Ok(b.build())
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Most log lines one call may write; more are dropped (and counted once).
pub const LOG_LINES_PER_CALL: u32 = 64;
/// Longest logged message; longer ones are cut.
pub const LOG_LINE_MAX: usize = 1024;

impl CallState {
    pub(crate) fn new(
        limits: &PluginLimits,
        storage: Option<Arc<dyn Storage>>,
        store_limits: StoreAccessLimits,
        plugin: Arc<str>,
        grants: Arc<Grants>,
    ) -> wasmtime::Result<Self> {
        Ok(CallState {
            limiter: CallLimiter::new(limits),
            deadline: Instant::now() + limits.timeout,
            storage,
            store_limits,
            plugin,
            log_budget: LOG_LINES_PER_CALL,
            wasi: wasi_context(&grants)?,
            grants,
            table: ResourceTable::new(),
        })
    }
}
