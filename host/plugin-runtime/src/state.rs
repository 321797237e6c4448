//! What one plugin call's wasmtime `Store` carries: its limiter, its
//! deadline, and (for roles that import `orbit:storage/store`) the backend.

use std::sync::Arc;
use std::time::Instant;

use orbit_storage::Storage;

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
}

impl CallState {
    pub(crate) fn new(
        limits: &PluginLimits,
        storage: Option<Arc<dyn Storage>>,
        store_limits: StoreAccessLimits,
    ) -> Self {
        CallState {
            limiter: CallLimiter::new(limits),
            deadline: Instant::now() + limits.timeout,
            storage,
            store_limits,
        }
    }
}
