//! Per-call limits: CPU deadline, wall-clock timeout, memory cap.
//!
//! The memory cap bounds what one call of a plugin can make *anyone* hold:
//! - its linear memories: [`CallLimiter`], a wasmtime `ResourceLimiter`,
//!   refuses growth beyond the cap and remembers that it did, so the
//!   resulting trap is reported as a memory-cap error rather than a generic
//!   one;
//! - what the host copies out of it: every transfer from guest to host (an
//!   export's result, an import's arguments) may copy at most the cap
//!   (wasmtime's hostcall fuel, set per store), so a result whose list
//!   repeats one large string a million times fails instead of making the
//!   host allocate a million copies;
//! - what the host keeps for it between imports (`wasi:keyvalue` CAS handles
//!   and the values they hold): charged to the same cap as its linear
//!   memory through [`CallLimiter::charge_host`].

use std::time::Duration;

/// Limits applied to every call of a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// CPU deadline (epoch interruption) and wall-clock timeout of one call,
    /// instantiation included.
    pub timeout: Duration,
    /// Largest total linear memory of one instance, in bytes.
    pub memory_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            timeout: Duration::from_secs(2),
            memory_bytes: 64 << 20,
        }
    }
}

/// The `ResourceLimiter` of one call's store.
#[derive(Debug)]
pub struct CallLimiter {
    memory_cap: usize,
    memory_in_use: usize,
    /// Bytes the host holds on the plugin's behalf (see [`Self::charge_host`]).
    host_retained: usize,
    /// Set when growth beyond the cap was refused.
    pub memory_cap_hit: bool,
}

impl CallLimiter {
    pub fn new(limits: &PluginLimits) -> Self {
        CallLimiter {
            memory_cap: limits.memory_bytes,
            memory_in_use: 0,
            host_retained: 0,
            memory_cap_hit: false,
        }
    }

    /// Charges `bytes` the host keeps for the plugin until the call ends or
    /// [`Self::release_host`] gives them back. Refused (and remembered, so
    /// the call fails as over its memory limit whatever the guest does
    /// next) if linear memory plus retained bytes would pass the cap.
    pub fn charge_host(&mut self, bytes: usize) -> bool {
        let after = self
            .memory_in_use
            .saturating_add(self.host_retained)
            .saturating_add(bytes);
        if after > self.memory_cap {
            self.memory_cap_hit = true;
            return false;
        }
        self.host_retained += bytes;
        true
    }

    /// The most one answer of an import may carry back to the plugin (a
    /// listing page, a `get-many`): a quarter of the memory cap, so that the
    /// plugin has room to receive it.
    pub fn answer_budget(&self) -> usize {
        self.memory_cap / 4
    }

    pub fn release_host(&mut self, bytes: usize) {
        self.host_retained = self.host_retained.saturating_sub(bytes);
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.memory_in_use - current.min(self.memory_in_use) + desired;
        let after_with_host = after.saturating_add(self.host_retained);
        if after_with_host > self.memory_cap {
            self.memory_cap_hit = true;
            // An error (rather than `Ok(false)`) traps at once: a guest that
            // ignores a failed `memory.grow` cannot limp on.
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes reached (wanted {desired} bytes)",
                self.memory_cap
            )));
        }
        self.memory_in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}
