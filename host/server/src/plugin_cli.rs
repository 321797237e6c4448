//! `orbit-server plugin ...`: the plugin author's tools.
//!
//! - `inspect FILE`: size, digest, the role it fits, exports and imports.
//! - `check FILE`: loads it exactly as the server would (world, version,
//!   link, limits) and makes one call with the current environment.
//! - `run FILE --input JSON`: one call with a context the author gives
//!   (environment, TOML, backend, health report, store contents); prints
//!   the plugin's answer as JSON. The plugin author's test harness.
//! - `bench FILE`: compile, cache-load, instantiate and call latencies.
//! - `keygen --out KEY`, `sign FILE --key KEY`: detached ed25519 signatures
//!   for `ORBIT_PLUGIN_PUBLIC_KEY`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbit_memory::MemoryStorage;
use orbit_plugin_runtime::signature;
use orbit_plugin_runtime::{
    PluginRuntime, PluginSource, PluginSpec, Role, StoreAccessLimits, convert, types as wit,
};
use orbit_storage::{BackendKind, MemoryConfig, Storage};
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
    /// One call with the context given in `--input` (JSON, or @FILE); prints
    /// the plugin's answer as JSON. Input fields, all optional: `env`
    /// (object of variables the plugin sees, instead of this process's),
    /// `config` (path of a TOML file), `backend` (translator: which backend
    /// to translate for; default memory), `report` (health: fields of the
    /// host's report to change from a healthy memory backend: backend_open,
    /// canary_ok, canary_error, live_keys, operations, errors, uptime_secs),
    /// `store` (health: object of keys and UTF-8 values the store holds) and
    /// `grants` (the plugin's grant list, as in ORBIT_PLUGIN_<ROLE>_GRANTS).
    Run {
        file: PathBuf,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Make an ed25519 key pair for signing plugins: writes the private key
    /// (PKCS#8, mode 0600) to `--out` and prints the public key for
    /// ORBIT_PLUGIN_PUBLIC_KEY.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a plugin file: writes FILE.sig (hex) with the private key from
    /// `plugin keygen`.
    Sign {
        file: PathBuf,
        #[arg(long)]
        key: PathBuf,
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

fn runtime(settings: &ServerSettings) -> Result<PluginRuntime, String> {
    PluginRuntime::new(
        StoreAccessLimits::default(),
        None,
        None,
        settings.max_plugin_memory(),
    )
    .map_err(|e| format!("{e:#}"))
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

fn sample_storage() -> Result<Arc<dyn Storage>, String> {
    let config = MemoryConfig {
        max_entries: 1000,
        disk_backup: false,
        ..MemoryConfig::defaults("/unused").expect("the memory defaults")
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
    let rt = runtime(settings)?;
    let ctx = context::build(src, &settings.data_dir);
    let secrets = crate::secrets::bindings(src);
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
                        .translate(wit::BackendKind::Memory, &ctx, &secrets)
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
                        .evaluate(
                            &ctx,
                            &convert::sample_health_report(),
                            Some(sample_storage()?),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "ok: health verdict on a healthy memory backend: ready={} live={} status={} reasons={:?}",
                        v.ready,
                        v.live,
                        v.status.name(),
                        v.reasons
                    );
                }
            }
            Ok(())
        }
        PluginCommand::Keygen { out } => {
            let (private, public) = signature::generate()?;
            write_private(&out, &private)?;
            println!("private key: {} (keep it secret)", out.display());
            println!("public key:  {}", public.to_hex());
            println!("set ORBIT_PLUGIN_PUBLIC_KEY={}", public.to_hex());
            Ok(())
        }
        PluginCommand::Sign { file, key } => {
            let bytes = read(&file)?;
            let private = std::fs::read(&key)
                .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
            let (sig, public) =
                signature::sign(&private, &bytes).map_err(|e| format!("{}: {e}", key.display()))?;
            let path = signature::signature_path(&file);
            std::fs::write(&path, format!("{sig}\n"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!(
                "wrote {} (verifies with public key {})",
                path.display(),
                public.to_hex()
            );
            Ok(())
        }
        PluginCommand::Run { file, role, input } => {
            let bytes = read(&file)?;
            let role = role_of(&rt, &bytes, role.as_deref())?;
            let out = run_once(&rt, role, file, &input).await?;
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
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
            println!("instance allocator:      {}", rt.allocator());
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
                settings.max_plugin_memory(),
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
                    let t = Instant::now();
                    let again = cached.load_selector(&spec).map_err(|e| e.to_string())?;
                    print_start(t.elapsed(), again.info());
                    for _ in 0..n {
                        let t = Instant::now();
                        let _ = p.select(&ctx).await.map_err(|e| e.to_string())?;
                        fresh.push(t.elapsed());
                    }
                }
                Role::Translator => {
                    let p = cached.load_translator(&spec).map_err(|e| e.to_string())?;
                    let t = Instant::now();
                    let again = cached.load_translator(&spec).map_err(|e| e.to_string())?;
                    print_start(t.elapsed(), again.info());
                    for _ in 0..n {
                        let t = Instant::now();
                        p.translate(wit::BackendKind::Memory, &ctx, &secrets)
                            .await
                            .map_err(|e| e.to_string())?;
                        fresh.push(t.elapsed());
                    }
                }
                Role::Health => {
                    let p = cached.load_health(&spec).map_err(|e| e.to_string())?;
                    let t = Instant::now();
                    let again = cached.load_health(&spec).map_err(|e| e.to_string())?;
                    print_start(t.elapsed(), again.info());
                    let report = convert::sample_health_report();
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

/// The input of `plugin run`; unknown fields are refused by name.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunInput {
    env: Option<std::collections::BTreeMap<String, String>>,
    config: Option<PathBuf>,
    backend: Option<String>,
    #[serde(default)]
    report: ReportInput,
    #[serde(default)]
    store: std::collections::BTreeMap<String, String>,
    grants: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportInput {
    backend_open: Option<bool>,
    canary_ok: Option<bool>,
    canary_error: Option<String>,
    live_keys: Option<u64>,
    operations: Option<u64>,
    errors: Option<u64>,
    uptime_secs: Option<u64>,
}

fn parse_input(text: &str) -> Result<RunInput, String> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--input @{path}: cannot read the file: {e}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "--input is not valid: {e}; expected a JSON object with any of env, config, backend, report, store, grants (see `plugin run --help`)"
        )
    })
}

/// `plugin run`: one call of `role` with the context described by `input`.
async fn run_once(
    rt: &PluginRuntime,
    role: Role,
    file: PathBuf,
    input: &str,
) -> Result<serde_json::Value, String> {
    let input = parse_input(input)?;
    let env = match input.env {
        Some(env) => env,
        None => {
            ConfigSource::from_process(None)
                .map_err(|e| e.to_string())?
                .env
        }
    };
    let mut env = env;
    if let Some(grants) = &input.grants {
        env.insert(
            format!("ORBIT_PLUGIN_{}_GRANTS", role.name().to_ascii_uppercase()),
            grants.clone(),
        );
    }
    let src = ConfigSource::new(env, input.config.as_deref()).map_err(|e| e.to_string())?;
    let settings = ServerSettings::from_source(&src).map_err(|e| e.to_string())?;
    let ctx = context::build(&src, &settings.data_dir);
    let secrets = crate::secrets::bindings(&src);
    let spec = PluginSpec {
        source: PluginSource::File(file),
        ..settings.plugin_spec(role)
    };
    let failed = |e: orbit_plugin_runtime::PluginError| format!("the call failed: {e}");
    Ok(match role {
        Role::Selector => {
            let p = rt.load_selector(&spec).map_err(|e| e.to_string())?;
            match p.select(&ctx).await.map_err(failed)? {
                Ok(s) => serde_json::json!({
                    "backend": convert::backend_kind_from_wit(s.backend).name(),
                    "reason": s.reason,
                }),
                Err(d) => serde_json::json!({
                    "refused": d.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            }
        }
        Role::Translator => {
            let name = input.backend.as_deref().unwrap_or("memory");
            let kind: BackendKind = name.parse().map_err(|e| format!("backend: {e}"))?;
            let p = rt.load_translator(&spec).map_err(|e| e.to_string())?;
            let t = p
                .translate(convert::backend_kind_to_wit(kind), &ctx, &secrets)
                .await
                .map_err(failed)?;
            serde_json::json!({
                "config": t.config.as_ref().map(crate::config_view::json),
                "diagnostics": t.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        }
        Role::Health => {
            let mut report = convert::sample_health_report();
            let r = &input.report;
            report.backend_open = r.backend_open.unwrap_or(report.backend_open);
            report.canary.ok = r.canary_ok.unwrap_or(report.canary.ok);
            report.canary.error = r.canary_error.clone().or(report.canary.error);
            report.stats.live_keys = r.live_keys.unwrap_or(report.stats.live_keys);
            report.operations = r.operations.unwrap_or(report.operations);
            report.errors = r.errors.unwrap_or(report.errors);
            report.uptime_secs = r.uptime_secs.unwrap_or(report.uptime_secs);
            let storage = sample_storage()?;
            for (k, v) in &input.store {
                storage
                    .put(
                        k.as_bytes(),
                        bytes::Bytes::from(v.clone()),
                        Default::default(),
                    )
                    .await
                    .map_err(|e| format!("store: cannot put {k:?}: {e}"))?;
            }
            let p = rt.load_health(&spec).map_err(|e| e.to_string())?;
            let v = p
                .evaluate(&ctx, &report, Some(storage))
                .await
                .map_err(failed)?;
            serde_json::json!({
                "live": v.live,
                "ready": v.ready,
                "status": v.status.name(),
                "reasons": v.reasons,
            })
        }
    })
}

/// The second load of a component: read, hash, take from the cache, link.
fn print_start(total: Duration, info: &orbit_plugin_runtime::PluginInfo) {
    println!(
        "start from cache:        {total:?} (read + sha256 + cache {}: {:?}; then link and pre-instantiate)",
        info.cache.label(),
        info.load_time
    );
}

/// Writes a private key readable by its owner only, refusing to overwrite.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
