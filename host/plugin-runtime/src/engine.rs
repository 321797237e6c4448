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

/// Concurrent plugin calls the pooling allocator has slots for; a call beyond
/// this fails (and is counted) instead of allocating without bound.
pub const POOL_INSTANCES: u32 = 32;

/// The engine plus the thread that ticks its epoch. The thread holds only a
/// weak reference and ends when the last clone of the engine is gone (every
/// loaded plugin holds one), so deadlines work for as long as any plugin can
/// be called.
pub struct PluginEngine {
    engine: Engine,
    allocator: String,
}

/// Bytes of a freed linear memory slot kept resident and reset in place
/// rather than handed back to the kernel. The default health plugin touches
/// about 1.1 MiB (its 1 MiB shadow stack plus data).
pub const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
/// The same for a table slot.
pub const KEEP_RESIDENT_TABLE: usize = 256 << 10;

/// Instance strategy: a fresh instance per call (see `runtime`), whose
/// memories, tables and fiber stacks come from a pre-reserved pool, so an
/// instantiation reuses warm slots instead of mapping and unmapping memory.
///
/// A freed slot is reset by asking the kernel which pages the instance
/// touched (`PAGEMAP_SCAN`, Linux 6.7+; without it wasmtime falls back to
/// `madvise`) and restoring only those with `memset`, up to
/// [`KEEP_RESIDENT_MEMORY`]; the pages stay mapped, so the next instance
/// takes no page faults on them. Measured with `orbit-server plugin bench
/// plugins/dist/health.wasm` on 2 cores, instantiate + call p50: 51 us on
/// demand, 31 us pooled with `madvise` resets, 16 us with scanned resets. The
/// price is resident memory: at most `KEEP_RESIDENT_MEMORY` per warm slot,
/// and only slots that were used are warm.
///
/// If the address space cannot be reserved (a `ulimit -v`, a small
/// 32-bit-like sandbox), the engine falls back to on-demand allocation, and
/// says so.
fn pooling(max_memory_bytes: usize) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 16)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 16)
        .total_stacks(POOL_INSTANCES)
        // Every plugin's own cap is enforced by its `ResourceLimiter`; a
        // slot must fit the largest.
        .max_memory_size(max_memory_bytes)
        // componentize-py output (CPython plus its libraries) is the largest
        // component seen: about a dozen core instances and tables.
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(64)
        .table_elements(100_000)
        .max_core_instance_size(16 << 20)
        .max_component_instance_size(16 << 20);
    pool
}

impl PluginEngine {
    /// `max_memory_bytes`: the largest memory cap of any plugin.
    pub fn new(max_memory_bytes: usize) -> anyhow::Result<Self> {
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
        let pool_config = {
            let mut c = config.clone();
            c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling(
                max_memory_bytes,
            )));
            c
        };
        let (engine, allocator) = match Engine::new(&pool_config) {
            Ok(engine) => (
                engine,
                format!(
                    "pooling ({POOL_INSTANCES} concurrent instances, memories up to {} MiB)",
                    max_memory_bytes >> 20
                ),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "plugin pooling allocator unavailable; allocating instances on demand");
                (
                    Engine::new(&config)?,
                    format!("on-demand (pooling unavailable: {e})"),
                )
            }
        };
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
        Ok(PluginEngine { engine, allocator })
    }

    /// Which instance allocator is in use, for logs and `plugin bench`.
    pub fn allocator(&self) -> &str {
        &self.allocator
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
