//! Runs each (engine, workload) in its own child process and collects what
//! the kernel and the workers saw into one result per run; prints the
//! side-by-side table.
//!
//! Why a child per run: peak RSS (`VmHWM`) and `/proc/self/io` are process
//! totals, caches must start cold and equal, and one engine's background
//! threads must not run during another's measurement. The parent re-executes
//! its own binary with `--child <spec as JSON>`; the child prints one line
//! `ENGINE-BENCH-RESULT <result as JSON>` on stdout.
//!
//! Guarantees: a run whose child fails (error, crash, missing result line)
//! is reported as failed with the child's exit status and never turns into
//! numbers; stores are created under the given directory and removed after
//! each engine unless asked to keep them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{Durability, EngineError, EngineKind, EngineSettings};
use crate::procfs::{self, ProcError};
use crate::workload::{self, WorkloadParams};

/// Prefix of the child's result line.
pub const RESULT_PREFIX: &str = "ENGINE-BENCH-RESULT ";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("{engine} {label}: {what}")]
    Child {
        engine: EngineKind,
        label: String,
        what: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid parameters: {0}")]
    Params(String),
}

/// Everything a child needs for one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub engine: EngineKind,
    pub label: String,
    pub dir: PathBuf,
    pub settings: EngineSettings,
    pub params: WorkloadParams,
    /// Keys live in the store before this run (for space amplification).
    pub live_records: u64,
    /// Longest wait, after a writing run, for background writes to stop.
    pub settle_secs: f64,
}

/// The measured outcome of one run: one JSON object per engine × workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub engine: EngineKind,
    pub label: String,
    pub workload: String,
    pub durability: String,
    pub threads: usize,
    pub records: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub batch: usize,
    pub cache_bytes: u64,
    /// Operations counted for ops/s (for fills: keys; readseq: entries).
    pub ops: u64,
    pub elapsed_s: f64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub reads: u64,
    pub read_misses: u64,
    pub read_wrong: u64,
    pub entries_scanned: u64,
    pub writes: u64,
    pub inserted: u64,
    pub syncs: u64,
    pub user_bytes_written: u64,
    /// `/proc/self/io` write_bytes over the run, its final sync and the
    /// settling wait.
    pub disk_bytes_written: u64,
    /// disk_bytes_written / user_bytes_written; null for read-only runs.
    pub write_amp: Option<f64>,
    /// Allocated bytes of the store's directory after the run.
    pub disk_bytes: u64,
    pub live_bytes: u64,
    pub space_amp: f64,
    pub peak_rss_bytes: u64,
    /// Time spent after the run waiting for background writes to stop.
    pub settle_s: f64,
}

/// Rejects parameters the workloads cannot honour (keys too short to carry
/// an id, values too short to carry a tag, no records).
pub fn validate(p: &WorkloadParams) -> Result<(), HarnessError> {
    use crate::keyspace::{MIN_KEY_SIZE, MIN_VALUE_SIZE};
    if p.key_size < MIN_KEY_SIZE {
        return Err(HarnessError::Params(format!(
            "key size {} is below {MIN_KEY_SIZE} (keys carry a 64-bit id)",
            p.key_size
        )));
    }
    if p.value_size < MIN_VALUE_SIZE {
        return Err(HarnessError::Params(format!(
            "value size {} is below {MIN_VALUE_SIZE} (values carry a 64-bit tag)",
            p.value_size
        )));
    }
    if p.records == 0 {
        return Err(HarnessError::Params("records must be at least 1".into()));
    }
    Ok(())
}

/// Runs `spec` in this process (the child side).
pub fn run_child(spec: &RunSpec) -> Result<RunResult, HarnessError> {
    validate(&spec.params)?;
    let engine = spec.engine.open(&spec.dir, &spec.settings)?;
    let io_before = procfs::storage_write_bytes()?;
    let m = workload::run(engine.as_ref(), &spec.params)?;
    let mut settle = Duration::ZERO;
    if m.tally.writes > 0 {
        let start = Instant::now();
        engine.sync()?;
        settle_writes(Duration::from_secs_f64(spec.settle_secs))?;
        settle = start.elapsed();
    }
    let io_after = procfs::storage_write_bytes()?;
    let disk_bytes = engine.disk_bytes()?;
    drop(engine);
    let p = &spec.params;
    let entry = (p.key_size + p.value_size) as u64;
    let live_records = spec.live_records.max(p.records + m.tally.inserted);
    let live_bytes = live_records * entry;
    let t = m.tally;
    let secs = m.elapsed.as_secs_f64();
    let us = |q: f64| m.latency.quantile_nanos(q) as f64 / 1000.0;
    let disk_bytes_written = io_after.saturating_sub(io_before);
    Ok(RunResult {
        engine: spec.engine,
        label: spec.label.clone(),
        workload: p.workload.name().to_string(),
        durability: p.durability.to_string(),
        threads: p.threads,
        records: p.records,
        key_size: p.key_size,
        value_size: p.value_size,
        batch: p.batch,
        cache_bytes: spec.settings.cache_bytes,
        ops: t.ops,
        elapsed_s: secs,
        ops_per_sec: if secs > 0.0 { t.ops as f64 / secs } else { 0.0 },
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: m.latency.max_nanos() as f64 / 1000.0,
        reads: t.reads,
        read_misses: t.read_misses,
        read_wrong: t.read_wrong,
        entries_scanned: t.entries_scanned,
        writes: t.writes,
        inserted: t.inserted,
        syncs: t.syncs,
        user_bytes_written: t.user_bytes_written,
        disk_bytes_written,
        write_amp: (t.user_bytes_written > 0)
            .then(|| disk_bytes_written as f64 / t.user_bytes_written as f64),
        disk_bytes,
        live_bytes,
        space_amp: if live_bytes > 0 {
            disk_bytes as f64 / live_bytes as f64
        } else {
            0.0
        },
        peak_rss_bytes: procfs::peak_rss_bytes()?,
        settle_s: settle.as_secs_f64(),
    })
}

/// Waits until the process has written nothing for two seconds, or `cap`.
///
/// Two seconds, not one: an engine may start maintenance (a flush and a compaction) after a
/// pause in writes of about a second (orbit-lsm does), and a one-second window ended just
/// before it, so that work then ran during the next run's measurement instead.
fn settle_writes(cap: Duration) -> Result<(), HarnessError> {
    const POLL: Duration = Duration::from_millis(250);
    const QUIET_POLLS: u32 = 8;
    let start = Instant::now();
    let mut last = procfs::storage_write_bytes()?;
    let mut quiet = 0;
    while quiet < QUIET_POLLS && start.elapsed() < cap {
        std::thread::sleep(POLL);
        let now = procfs::storage_write_bytes()?;
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
    Ok(())
}

/// One run of a plan, done for every engine.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub label: String,
    pub params: WorkloadParams,
    pub durability: Durability,
    /// A fill that leaves the store later non-fill runs use.
    pub loads_base: bool,
}

/// The runs to do, for which engines, where.
#[derive(Debug, Clone)]
pub struct Plan {
    pub engines: Vec<EngineKind>,
    pub runs: Vec<PlannedRun>,
    pub cache_bytes: u64,
    pub dir: PathBuf,
    pub settle_secs: f64,
    pub keep: bool,
}

/// Outcome of a plan: results, and the runs that failed.
#[derive(Debug, Default)]
pub struct PlanOutcome {
    pub results: Vec<RunResult>,
    pub failures: Vec<HarnessError>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn remove_dir(path: &Path) -> Result<(), HarnessError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Runs every planned run for every engine, each in a child process of
/// `exe` (this binary). `progress` is told about each finished run.
pub fn run_plan(plan: &Plan, exe: &Path, mut progress: impl FnMut(&RunResult)) -> PlanOutcome {
    let mut out = PlanOutcome::default();
    for &engine in &plan.engines {
        if let Err(e) = run_engine(plan, engine, exe, &mut out, &mut progress) {
            out.failures.push(e);
        }
    }
    out
}

fn run_engine(
    plan: &Plan,
    engine: EngineKind,
    exe: &Path,
    out: &mut PlanOutcome,
    progress: &mut impl FnMut(&RunResult),
) -> Result<(), HarnessError> {
    let root = plan.dir.join(engine.name());
    remove_dir(&root)?;
    let base = root.join("base");
    let mut base_records: Option<u64> = None;
    let mut extra_live = 0;
    for run in &plan.runs {
        let starts_empty = run.params.workload.starts_empty();
        let dir = if !starts_empty || run.loads_base {
            base.clone()
        } else {
            root.join(run.label.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
        };
        let live_records = if starts_empty {
            remove_dir(&dir)?;
            0
        } else {
            match base_records {
                Some(n) if n == run.params.records => n + extra_live,
                _ => {
                    out.failures.push(HarnessError::Child {
                        engine,
                        label: run.label.clone(),
                        what: format!(
                            "needs a store of {} records left by an earlier fill in the plan",
                            run.params.records
                        ),
                    });
                    continue;
                }
            }
        };
        let spec = RunSpec {
            engine,
            label: run.label.clone(),
            dir: dir.clone(),
            settings: EngineSettings {
                durability: run.durability,
                cache_bytes: plan.cache_bytes,
            },
            params: run.params.clone(),
            live_records,
            settle_secs: plan.settle_secs,
        };
        match spawn_child(exe, &spec) {
            Ok(r) => {
                if run.loads_base {
                    base_records = Some(run.params.records);
                    extra_live = 0;
                } else if starts_empty && !plan.keep {
                    remove_dir(&dir)?;
                }
                extra_live = extra_live.max(r.inserted);
                progress(&r);
                out.results.push(r);
            }
            Err(e) => {
                if run.loads_base {
                    base_records = None;
                }
                out.failures.push(e);
            }
        }
    }
    if !plan.keep {
        remove_dir(&root)?;
    }
    Ok(())
}

/// Runs one spec in a child process and reads its result line.
pub fn spawn_child(exe: &Path, spec: &RunSpec) -> Result<RunResult, HarnessError> {
    let fail = |what: String| HarnessError::Child {
        engine: spec.engine,
        label: spec.label.clone(),
        what,
    };
    let json = serde_json::to_string(spec).map_err(|e| fail(format!("encoding spec: {e}")))?;
    let output = Command::new(exe)
        .arg("--child")
        .arg(json)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("starting {}: {e}", exe.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(fail(format!("child exited with {}", output.status)));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| fail("child printed no result line".into()))?;
    serde_json::from_str(line).map_err(|e| fail(format!("child result is not valid JSON: {e}")))
}

/// The markdown table: one row per run and engine, ops/s relative to RocksDB
/// on the same run.
pub fn markdown_table(results: &[RunResult]) -> String {
    let reference: HashMap<&str, f64> = results
        .iter()
        .filter(|r| r.engine == EngineKind::RocksDb)
        .map(|r| (r.label.as_str(), r.ops_per_sec))
        .collect();
    let mut s = String::new();
    s.push_str(
        "| run | engine | ops/s | vs RocksDB | p50 µs | p99 µs | p99.9 µs | write amp | space amp | peak RSS MiB | misses/wrong |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut labels: Vec<&str> = Vec::new();
    for r in results {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    for label in labels {
        for r in results.iter().filter(|r| r.label == label) {
            let ratio = match reference.get(label) {
                Some(&base) if base > 0.0 => format!("{:.2}×", r.ops_per_sec / base),
                _ => "–".into(),
            };
            let wa = r.write_amp.map_or("–".into(), |w| format!("{w:.2}"));
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {:.0} | {}/{} |",
                r.label,
                r.engine,
                r.ops_per_sec,
                ratio,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                wa,
                r.space_amp,
                r.peak_rss_bytes as f64 / (1 << 20) as f64,
                r.read_misses,
                r.read_wrong,
            );
        }
    }
    s
}
