//! Operation counters: calls per operation and outcome, and their time,
//! kept in the process and read as a plain snapshot (no exporter: the
//! caller puts them into whatever metrics system it runs).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Counts of one operation and outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    pub count: u64,
    /// Sum of the calls' wall-clock time, retries included.
    pub total_micros: u64,
    /// The slowest call.
    pub max_micros: u64,
}

impl OpStats {
    /// Mean time of a call.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.total_micros / self.count)
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// (operation, outcome) -> counts. Outcomes are `ok`, an error label
    /// ([`crate::Error::label`]), or a provider's own (`held_elsewhere`,
    /// `lost`, ...).
    pub operations: BTreeMap<(String, String), OpStats>,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// Ambiguous conditional writes settled by reading the key back.
    pub resolved_by_readback: u64,
}

impl MetricsSnapshot {
    /// Calls of `operation` with `outcome`.
    pub fn count(&self, operation: &str, outcome: &str) -> u64 {
        self.operations
            .get(&(operation.to_string(), outcome.to_string()))
            .map_or(0, |s| s.count)
    }

    /// Calls of `operation`, whatever the outcome.
    pub fn total(&self, operation: &str) -> u64 {
        self.operations
            .iter()
            .filter(|((op, _), _)| op == operation)
            .map(|(_, s)| s.count)
            .sum()
    }
}

/// The live counters (cheap to update from many tasks).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<MetricsSnapshot>,
}

impl Metrics {
    pub fn record(&self, operation: &str, outcome: &str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = m
            .operations
            .entry((operation.to_string(), outcome.to_string()))
            .or_default();
        s.count += 1;
        s.total_micros = s.total_micros.saturating_add(micros);
        s.max_micros = s.max_micros.max(micros);
    }

    pub(crate) fn retried(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).retries += 1;
    }

    pub(crate) fn resolved(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resolved_by_readback += 1;
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
