//! The one wasmtime `Engine` every plugin runs on, configured in one place,
//! and the epoch ticker that gives calls their CPU deadline.
//!
//! Epoch interruption (rather than fuel) bounds CPU: it costs a load and a
//! compare on loop back-edges instead of counting every instruction, and its
//! unit is time, which is what an operator sets. The ticker advances the
//! engine's epoch every [`EPOCH_TICK`]; a call whose deadline (in ticks)
//! passes traps with `Trap::Interrupt`.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// Resolution of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine plus the thread that ticks its epoch. The thread holds only a
/// weak reference and ends when the last clone of the engine is gone (every
/// loaded plugin holds one), so deadlines work for as long as any plugin can
/// be called.
pub struct PluginEngine {
    engine: Engine,
}

impl PluginEngine {
    pub fn new() -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // Policy plugins are small; a deep recursion is a bug, not a need.
            .max_wasm_stack(1 << 20)
            // Keep each instance's virtual reservation modest: many short-lived
            // stores are created, one per call.
            .memory_reservation(1 << 30)
            .memory_guard_size(32 << 20);
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("orbit-plugin-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(PluginEngine { engine })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
