//! Test hooks: what the fault-injection tests change in a store.
//!
//! Exists so tests can run the real protocol against the real stand-ins
//! with faults injected between the store and its object_store clients
//! (lost responses, delays, objects deleted between two reads), a skewed
//! wall clock, and a short batch timeout. Production code never builds a
//! [`TestHooks`]; `open_s3` passes none.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::batch::BatchState;
use crate::clock::VersionClock;
use crate::store::CloudStorage;

/// Wraps one of a store's object_store clients.
pub type WrapClient = Arc<dyn Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> + Send + Sync>;

/// Changes to a store for tests (see the module docs).
#[derive(Clone, Default)]
pub struct TestHooks {
    /// Applied to the read client and to the write client.
    pub wrap: Option<WrapClient>,
    /// Added to this store's wall clock (versions, `created_at`, TTL
    /// checks of writes), to simulate a replica whose clock is off.
    pub clock_offset_ms: i64,
    /// Replaces [`crate::store::TXN_TIMEOUT_MS`] (the heartbeat is a fifth
    /// of it).
    pub txn_timeout: Option<Duration>,
}

impl fmt::Debug for TestHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHooks")
            .field("wrap", &self.wrap.is_some())
            .field("clock_offset_ms", &self.clock_offset_ms)
            .field("txn_timeout", &self.txn_timeout)
            .finish()
    }
}

impl CloudStorage {
    /// The store with `hooks` applied (tests only).
    pub(crate) fn with_test_hooks(mut self, hooks: TestHooks) -> Self {
        if let Some(wrap) = &hooks.wrap {
            self.clients.read = wrap(self.clients.read.clone());
            self.clients.write = wrap(self.clients.write.clone());
        }
        self.clock = VersionClock::with_offset(hooks.clock_offset_ms);
        if let Some(timeout) = hooks.txn_timeout {
            self.batch = BatchState::new(timeout);
        }
        self
    }
}
