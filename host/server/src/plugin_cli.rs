//! `orbit-server plugin ...`: the plugin author's tools.
//!
//! - `inspect FILE`: size, digest, the role it fits, exports and imports.
//! - `check FILE`: loads it exactly as the server would (world, version,
//!   link, limits) and makes one call with the current environment.
//! - `bench FILE`: compile, cache-load, instantiate and call latencies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbit_plugin_runtime::{
    PluginRuntime, PluginSource, PluginSpec, Role, StoreAccessLimits, convert, types as wit,
};
use orbit_storage::{BackendKind, MemoryConfig, MemoryStorage, Storage};
use sha2::Digest;

use crate::context;
use crate::settings::{ConfigSource, ServerSettings};

#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Size, sha256, the role it fits, exports and imports.
    Inspect { file: PathBuf },
    /// Load the component as the server would and make one call with the
    /// current environment.
    Check {
        file: PathBuf,
        /// selector, translator or health (default: the role it exports).
        #[arg(long)]
        role: Option<String>,
    },
    /// Measure compile, cache load, instantiate+call and (health) call latency.
    Bench {
        file: PathBuf,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
    },
}

pub async fn run(cmd: PluginCommand, src: &ConfigSource, settings: &ServerSettings) -> ExitCode {
    match execute(cmd, src, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<PluginRuntime, String> {
    PluginRuntime::new(StoreAccessLimits::default(), None, None).map_err(|e| format!("{e:#}"))
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

fn role_of(rt: &PluginRuntime, bytes: &[u8], flag: Option<&str>) -> Result<Role, String> {
    if let Some(name) = flag {
        return Role::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| format!("--role {name:?}: expected selector, translator or health"));
    }
    rt.inspect(bytes)?
        .role
        .ok_or_else(|| "the component exports no orbit:storage role interface; pass --role to see why it does not fit".into())
}

/// A report as the server would send with a healthy memory backend.
fn sample_report() -> wit::HealthReport {
    wit::HealthReport {
        backend: convert::backend_kind_to_wit(BackendKind::Memory),
        backend_open: true,
        stats: wit::BackendStats {
            live_keys: 0,
            live_bytes: 0,
            disk_bytes: None,
            remote: None,
        },
        canary: wit::CanaryResult {
            ok: true,
            latency_us: 40,
            error: None,
        },
        window_secs: 60,
        operations: 100,
        errors: 0,
        recent_errors: Vec::new(),
        latencies: Vec::new(),
        uptime_secs: 120,
    }
}

fn sample_storage() -> Result<Arc<dyn Storage>, String> {
    let config = MemoryConfig {
        max_entries: 1000,
        disk_backup: false,
        backup_path: String::new(),
        backup_interval_secs: 60,
    };
    Ok(Arc::new(
        MemoryStorage::open(&config).map_err(|e| e.to_string())?,
    ))
}

fn quantiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!("p50 {:?}, p99 {:?} ({} samples)", q(0.5), q(0.99), v.len())
}

async fn execute(
    cmd: PluginCommand,
    src: &ConfigSource,
    settings: &ServerSettings,
) -> Result<(), String> {
    let rt = runtime()?;
    let ctx = context::build(src, &settings.data_dir);
    match cmd {
        PluginCommand::Inspect { file } => {
            let bytes = read(&file)?;
            let i = rt.inspect(&bytes)?;
            println!("file:    {}", file.display());
            println!("size:    {} bytes", bytes.len());
            println!("sha256:  {}", hex_digest(&bytes));
            println!(
                "role:    {}",
                i.role.map_or(
                    "none (exports no orbit:storage role interface)".into(),
                    |r| format!("{r} (world {})", r.world())
                )
            );
            println!("exports: {}", i.exports.join(", "));
            println!(
                "imports: {}",
                if i.imports.is_empty() {
                    "none".to_string()
                } else {
                    i.imports.join(", ")
                }
            );
            Ok(())
        }
        PluginCommand::Check { file, role } => {
            let bytes = read(&file)?;
            let role = role_of(&rt, &bytes, role.as_deref())?;
            let spec = PluginSpec {
                source: PluginSource::File(file.clone()),
                ..settings.plugin_spec(role)
            };
            match role {
                Role::Selector => {
                    let p = rt.load_selector(&spec).map_err(|e| e.to_string())?;
                    match p.select(&ctx).await.map_err(|e| e.to_string())? {
                        Ok(s) => println!(
                            "ok: selector chose {} ({})",
                            convert::backend_kind_from_wit(s.backend),
                            s.reason
                        ),
                        Err(d) => println!(
                            "ok: selector refused this environment: {}",
                            d.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    }
                }
                Role::Translator => {
                    let p = rt.load_translator(&spec).map_err(|e| e.to_string())?;
                    let t = p
                        .translate(wit::BackendKind::Memory, &ctx)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "ok: translator answered for memory with {} diagnostic(s); config {}",
                        t.diagnostics.len(),
                        if t.config.is_some() {
                            "present"
                        } else {
                            "absent"
                        }
                    );
                }
                Role::Health => {
                    let p = rt.load_health(&spec).map_err(|e| e.to_string())?;
                    let v = p
                        .evaluate(&ctx, &sample_report(), Some(sample_storage()?))
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "ok: health verdict on a healthy memory backend: ready={} live={} status={} reasons={:?}",
                        v.ready, v.live, v.status, v.reasons
                    );
                }
            }
            Ok(())
        }
        PluginCommand::Bench {
            file,
            role,
            iterations,
        } => {
            let bytes = read(&file)?;
            let role = role_of(&rt, &bytes, role.as_deref())?;
            let engine = rt.engine();
            let t = Instant::now();
            wasmtime::component::Component::new(engine, &bytes).map_err(|e| e.to_string())?;
            println!("compile:                 {:?}", t.elapsed());
            let artifact = engine
                .precompile_component(&bytes)
                .map_err(|e| e.to_string())?;
            let mut loads = Vec::new();
            for _ in 0..20 {
                let t = Instant::now();
                // SAFETY: produced by this engine just above.
                unsafe { wasmtime::component::Component::deserialize(engine, &artifact) }
                    .map_err(|e| e.to_string())?;
                loads.push(t.elapsed());
            }
            println!("load from cache:         {}", quantiles(loads));
            let dir = tempfile_dir()?;
            let cached = PluginRuntime::new(
                StoreAccessLimits::default(),
                None,
                Some(orbit_plugin_runtime::ComponentCache::new(&dir).map_err(|e| e.to_string())?),
            )
            .map_err(|e| format!("{e:#}"))?;
            let spec = PluginSpec {
                source: PluginSource::File(file.clone()),
                ..settings.plugin_spec(role)
            };
            let n = iterations.max(10);
            let mut fresh = Vec::with_capacity(n);
            match role {
                Role::Selector => {
                    let p = cached.load_selector(&spec).map_err(|e| e.to_string())?;
                    let again = cached.load_selector(&spec).map_err(|e| e.to_string())?;
                    print_start(again.info());
                    for _ in 0..n {
                        let t = Instant::now();
                        let _ = p.select(&ctx).await.map_err(|e| e.to_string())?;
                        fresh.push(t.elapsed());
                    }
                }
                Role::Translator => {
                    let p = cached.load_translator(&spec).map_err(|e| e.to_string())?;
                    let again = cached.load_translator(&spec).map_err(|e| e.to_string())?;
                    print_start(again.info());
                    for _ in 0..n {
                        let t = Instant::now();
                        p.translate(wit::BackendKind::Memory, &ctx)
                            .await
                            .map_err(|e| e.to_string())?;
                        fresh.push(t.elapsed());
                    }
                }
                Role::Health => {
                    let p = cached.load_health(&spec).map_err(|e| e.to_string())?;
                    let again = cached.load_health(&spec).map_err(|e| e.to_string())?;
                    print_start(again.info());
                    let report = sample_report();
                    for _ in 0..n {
                        let t = Instant::now();
                        p.evaluate(&ctx, &report, None)
                            .await
                            .map_err(|e| e.to_string())?;
                        fresh.push(t.elapsed());
                    }
                    let reused = p
                        .bench_reused(&ctx, &report, n)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("call, reused instance:   {}", quantiles(reused));
                }
            }
            println!(
                "instantiate + call:      {}  (what the server does per call)",
                quantiles(fresh)
            );
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        }
    }
}

/// The second load of a component: read, hash, take from the cache, link.
fn print_start(info: &orbit_plugin_runtime::PluginInfo) {
    println!(
        "start from cache:        {:?} (load, link, pre-instantiate)",
        info.load_time
    );
}

fn hex_digest(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("orbit-plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
