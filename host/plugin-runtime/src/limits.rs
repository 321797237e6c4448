//! Per-call limits: CPU deadline, wall-clock timeout, memory cap.
//!
//! The memory cap is enforced by [`CallLimiter`], a wasmtime
//! `ResourceLimiter` that refuses linear-memory growth beyond the cap and
//! remembers that it did, so the resulting trap is reported as a memory-cap
//! error rather than a generic one.

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
    /// Set when growth beyond the cap was refused.
    pub memory_cap_hit: bool,
}

impl CallLimiter {
    pub fn new(limits: &PluginLimits) -> Self {
        CallLimiter {
            memory_cap: limits.memory_bytes,
            memory_in_use: 0,
            memory_cap_hit: false,
        }
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
        if after > self.memory_cap {
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
