//! `engine-bench`: RocksDB, fjall and redb (and later Orbit's own engines)
//! side by side on db_bench- and YCSB-style workloads, one child process per
//! engine × workload. See the crate README for the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use orbit_bench::engine::{Durability, EngineKind};
use orbit_bench::harness::{self, Plan, PlannedRun, RESULT_PREFIX, RunSpec};
use orbit_bench::workload::{Workload, WorkloadParams};

/// Side-by-side storage-engine benchmark.
#[derive(Parser, Debug)]
#[command(name = "engine-bench")]
struct Args {
    /// Preset for CI: small data, every workload, finishes in under 2 minutes.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Preset for the report: 1M records, 16-byte keys, 100-byte values.
    #[arg(long)]
    full: bool,
    /// Engines, comma-separated (rocksdb, fjall, redb, orbit-lsm, orbit-cow).
    #[arg(long, value_delimiter = ',')]
    engines: Vec<EngineKind>,
    /// Workloads, comma-separated (fillseq, fillrandom, overwrite, readrandom,
    /// readseq, seekrandom, scan, readwhilewriting, ycsb-a … ycsb-f).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Keys loaded by the fill (and present for the other workloads).
    #[arg(long)]
    records: Option<u64>,
    /// Operations per non-fill workload.
    #[arg(long)]
    ops: Option<u64>,
    /// Worker threads.
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Keys per write batch in fills and overwrites.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Entries per scan (YCSB E: 1..=scan-len).
    #[arg(long, default_value_t = 100)]
    scan_len: usize,
    /// none | sync | every-N (fsync after every N writes across threads).
    #[arg(long, default_value = "none")]
    durability: Durability,
    /// Cache given to every engine, MiB.
    #[arg(long)]
    cache_mb: Option<u64>,
    /// Writers of the durable-insert run (fsync per commit); 0 skips it.
    #[arg(long)]
    sync_writers: Option<usize>,
    /// Keys written by the durable-insert run.
    #[arg(long)]
    sync_records: Option<u64>,
    /// Also run readrandom with this many threads, right after the main readrandom run, to
    /// show how reads scale; 0 skips it (4 in --full).
    #[arg(long)]
    scaling_threads: Option<usize>,
    /// Also run readwhilewriting with its writer paced at this many writes/s, right after the
    /// unthrottled run, so every engine's readers face the same write load (RocksDB's
    /// benchmark.sh paces this writer too); 0 skips it (40000 in --full).
    #[arg(long)]
    paced_write_rate: Option<u64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest wait after a writing run for background writes to stop, s.
    #[arg(long)]
    settle_secs: Option<f64>,
    /// Where the stores go (a fresh subdirectory per engine).
    #[arg(long, default_value = "target/engine-bench")]
    dir: PathBuf,
    /// Keep the stores afterwards.
    #[arg(long)]
    keep: bool,
    /// Write the results as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: run one spec and print its result line.
    #[arg(long, hide = true)]
    child: Option<String>,
}

struct Preset {
    records: u64,
    ops: u64,
    threads: usize,
    cache_mb: u64,
    sync_writers: usize,
    sync_records: u64,
    scaling_threads: usize,
    paced_write_rate: u64,
    settle_secs: f64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(spec) = &args.child {
        return child(spec);
    }
    match parent(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("engine-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn child(spec: &str) -> ExitCode {
    let spec: RunSpec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("engine-bench --child: bad spec: {e}");
            return ExitCode::FAILURE;
        }
    };
    match harness::run_child(&spec).and_then(|r| {
        serde_json::to_string(&r).map_err(|e| harness::HarnessError::Params(e.to_string()))
    }) {
        Ok(line) => {
            println!("{RESULT_PREFIX}{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("engine-bench child {} {}: {e}", spec.engine, spec.label);
            ExitCode::FAILURE
        }
    }
}

fn parent(args: Args) -> Result<ExitCode, String> {
    let preset = if args.full {
        Preset {
            records: 1_000_000,
            ops: 200_000,
            threads: 2,
            cache_mb: 64,
            sync_writers: 16,
            sync_records: 40_000,
            scaling_threads: 4,
            paced_write_rate: 40_000,
            settle_secs: 10.0,
        }
    } else if args.quick {
        Preset {
            records: 20_000,
            ops: 20_000,
            threads: 2,
            cache_mb: 8,
            sync_writers: 4,
            sync_records: 400,
            scaling_threads: 0,
            paced_write_rate: 5_000,
            settle_secs: 2.0,
        }
    } else {
        Preset {
            records: 100_000,
            ops: 100_000,
            threads: 1,
            cache_mb: 64,
            sync_writers: 0,
            sync_records: 1_000,
            scaling_threads: 0,
            paced_write_rate: 0,
            settle_secs: 10.0,
        }
    };
    let engines = if args.engines.is_empty() {
        EngineKind::ALL.to_vec()
    } else {
        args.engines.clone()
    };
    let mut workloads = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    // Non-fill workloads need a store; fillrandom makes it.
    if workloads.iter().any(|w| !w.starts_empty()) && !workloads.contains(&Workload::FillRandom) {
        workloads.insert(0, Workload::FillRandom);
    }
    // Fills first, then read-only runs, then runs that change the store.
    workloads.sort_by_key(|w| {
        (
            !w.starts_empty(),
            w.writes(),
            Workload::ALL.iter().position(|x| x == w),
        )
    });
    let records = args.records.unwrap_or(preset.records);
    let params =
        |workload: Workload, records: u64, threads: usize, durability: Durability| WorkloadParams {
            workload,
            records,
            ops: args.ops.unwrap_or(preset.ops),
            threads,
            key_size: args.key_size,
            value_size: args.value_size,
            batch: args.batch,
            scan_len: args.scan_len,
            durability,
            seed: args.seed,
            write_rate: 0,
        };
    let threads = args.threads.unwrap_or(preset.threads);
    let suffix = match args.durability {
        Durability::None => String::new(),
        d => format!(" ({d})"),
    };
    let mut runs: Vec<PlannedRun> = workloads
        .iter()
        .map(|&w| PlannedRun {
            label: format!("{w}{suffix}"),
            params: params(w, records, threads, args.durability),
            durability: args.durability,
            loads_base: w == Workload::FillRandom,
        })
        .collect();
    let scaling_threads = args.scaling_threads.unwrap_or(preset.scaling_threads);
    if scaling_threads > 0
        && scaling_threads != threads
        && let Some(i) = workloads.iter().position(|&w| w == Workload::ReadRandom)
    {
        runs.insert(
            i + 1,
            PlannedRun {
                label: format!("readrandom{suffix} ({scaling_threads} threads)"),
                params: params(
                    Workload::ReadRandom,
                    records,
                    scaling_threads,
                    args.durability,
                ),
                durability: args.durability,
                loads_base: false,
            },
        );
    }
    let rate = args.paced_write_rate.unwrap_or(preset.paced_write_rate);
    if rate > 0
        && let Some(i) = runs
            .iter()
            .position(|r| r.params.workload == Workload::ReadWhileWriting)
    {
        runs.insert(
            i + 1,
            PlannedRun {
                label: format!("readwhilewriting{suffix} (writer {rate}/s)"),
                params: WorkloadParams {
                    write_rate: rate,
                    ..params(
                        Workload::ReadWhileWriting,
                        records,
                        threads,
                        args.durability,
                    )
                },
                durability: args.durability,
                loads_base: false,
            },
        );
    }
    let sync_writers = args.sync_writers.unwrap_or(preset.sync_writers);
    if sync_writers > 0 {
        let n = args.sync_records.unwrap_or(preset.sync_records);
        runs.push(PlannedRun {
            label: format!("fillrandom (sync, {sync_writers} writers)"),
            params: params(Workload::FillRandom, n, sync_writers, Durability::Sync),
            durability: Durability::Sync,
            loads_base: false,
        });
    }
    for run in &runs {
        harness::validate(&run.params).map_err(|e| e.to_string())?;
    }
    let plan = Plan {
        engines,
        runs,
        cache_bytes: args.cache_mb.unwrap_or(preset.cache_mb) << 20,
        dir: args.dir.clone(),
        settle_secs: args.settle_secs.unwrap_or(preset.settle_secs),
        keep: args.keep,
    };
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    eprintln!(
        "engine-bench: {} engines × {} runs, {} records, {} B keys, {} B values, cache {} MiB each, dir {}",
        plan.engines.len(),
        plan.runs.len(),
        records,
        args.key_size,
        args.value_size,
        plan.cache_bytes >> 20,
        plan.dir.display()
    );
    let outcome = harness::run_plan(&plan, &exe, |r| {
        eprintln!(
            "  {:8} {:40} {:>12.0} ops/s  p99 {:>9.1} µs  ({:.1} s)",
            r.engine.name(),
            r.label,
            r.ops_per_sec,
            r.p99_us,
            r.elapsed_s
        );
    });
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&outcome.results).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print!("{}", harness::markdown_table(&outcome.results));
    for f in &outcome.failures {
        eprintln!("engine-bench: FAILED: {f}");
    }
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
