//! `http-bench`: orbit-server's HTTP API over loopback against its own floor,
//! Redis and etcd, in the same run.
//!
//! - **floor**: the same router shape (axum, the same middleware minus the
//!   work) answering from a map, in a child process of this program
//!   (`orbit_bench::floor`); orbit-server's GET and PUT as a fraction of it.
//! - **orbit-server** on `memory` (no snapshot): GET and PUT, against Redis
//!   (`redis-benchmark`, GET and SET) and the floor.
//! - **orbit-server** on `lsm_tree`, `rocksdb`, `cow_btree` with
//!   `durability = sync` (every acknowledged write fsynced; concurrent
//!   writers share one fsync): PUT, GET and compare-and-set (`PUT` with
//!   `If-Match: "<version>"`), against single-node etcd (Debian's
//!   `etcd-server`, its default fsync per commit) through its JSON gateway:
//!   `/v3/kv/put`, `/v3/kv/range` (linearizable, etcd's default) and
//!   `/v3/kv/txn` comparing `mod_revision`.
//!
//! The load generator is `wrk` (one Lua script per request type) for every
//! HTTP server and `redis-benchmark` for Redis, both one thread by default;
//! client and server share the machine's cores. Every figure is the median
//! of `--runs` runs; ratios are taken within a run, then the median.
//!
//!     apt-get install -y wrk redis-server redis-tools && bash scripts/install-etcd.sh
//!     cargo build --release --locked --workspace --bins
//!     target/release/http-bench --runs 3 --seconds 10 --json http.json
//!     target/release/http-bench --quick            # CI: every system, short runs

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orbit_bench::process::{Killed, free_port, start_etcd, wait_listening};
use orbit_bench::wrk::{self, Request};
use serde::Serialize;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Concurrent connections (wrk and redis-benchmark).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// wrk threads (redis-benchmark runs one).
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    /// Seconds per measured operation.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runs; every figure is the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// orbit-server backends: memory, lsm_tree, rocksdb, cow_btree.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,lsm_tree,rocksdb,cow_btree"
    )]
    backends: Vec<String>,
    /// Peers: redis, etcd (the floor always runs).
    #[arg(long, value_delimiter = ',', default_value = "redis,etcd")]
    peers: Vec<String>,
    /// CI: one run of 1 s per operation over 1 000 keys.
    #[arg(long)]
    quick: bool,
    /// Write the report as JSON here (scripts/bench-tables.py reads it).
    #[arg(long)]
    json: Option<PathBuf>,
    /// orbit-server binary (default: next to this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// etcd binary (scripts/install-etcd.sh).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Internal: serve the floor on this port.
    #[arg(long, hide = true)]
    floor_server: Option<u16>,
}

const FLOOR: &str = "floor (axum + map)";
const REDIS: &str = "redis-server (redis-benchmark)";
const ETCD: &str = "etcd 3.4 (JSON gateway)";

fn orbit_name(backend: &str) -> String {
    if backend == "memory" {
        "orbit-server memory".into()
    } else {
        format!("orbit-server {backend} (sync)")
    }
}

/// One measured figure of one run.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Compare-and-set: answers that were a conflict (412, or a txn that
    /// did not succeed), counted in ops/s.
    conflicts: u64,
}

impl From<&wrk::Outcome> for Sample {
    fn from(o: &wrk::Outcome) -> Self {
        Sample {
            ops_per_sec: o.ops_per_sec(),
            p50_ms: o.p50_us / 1000.0,
            p99_ms: o.p99_us / 1000.0,
            conflicts: o.conflicts,
        }
    }
}

/// (system, operation) -> one sample per run.
type Results = BTreeMap<(String, String), Vec<Sample>>;

fn start_orbit(args: &Args, backend: &str, dir: &Path) -> anyhow::Result<(Killed, String)> {
    let bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("orbit-server"),
    };
    let port = free_port()?;
    let metrics = free_port()?;
    // An existing data directory, so the plugins' precompiled cache is used.
    std::fs::create_dir_all(dir)?;
    let child = Command::new(&bin)
        .env("ORBIT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ORBIT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .env("ORBIT_DATA_DIR", dir)
        .env("ORBIT_PERSISTENCE_BACKEND", backend)
        .env("ORBIT_MEMORY_DISK_BACKUP", "false")
        .env("ORBIT_LSM_DURABILITY", "sync")
        .env("ORBIT_ROCKSDB_DURABILITY", "sync")
        .env("ORBIT_COW_DURABILITY", "sync")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (cargo build --release --locked --workspace --bins)",
                bin.display()
            )
        })?;
    let child = Killed(child);
    wait_listening(port)?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

fn start_floor() -> anyhow::Result<(Killed, String)> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["--floor-server", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    let child = Killed(child);
    wait_listening(port)?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

fn key(i: usize) -> String {
    format!("bench/{i:08}")
}

/// Writes every key once (so GETs hit) and returns each key's version
/// (orbit: the ETag's version; etcd: the key's mod_revision) as the data
/// file the compare-and-set scripts start from.
async fn fill(base: &str, etcd: bool, args: &Args, data: &Path) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HyperClient<_, Full<Bytes>> = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build(connector);
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let value_b64 = STANDARD.encode(&value);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, next, value, value_b64) = (
            client.clone(),
            next.clone(),
            value.clone(),
            value_b64.clone(),
        );
        let (base, keys) = (base.to_string(), args.keys);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= keys {
                    return anyhow::Ok(out);
                }
                let k = key(i);
                let req = if etcd {
                    let body = serde_json::json!({"key": STANDARD.encode(&k), "value": value_b64});
                    hyper::Request::post(format!("{base}/v3/kv/put"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?
                } else {
                    hyper::Request::put(format!("{base}/v1/kv/{k}"))
                        .body(Full::new(value.clone()))?
                };
                let res = client.request(req).await?;
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    bail!("fill {k}: {status}: {}", String::from_utf8_lossy(&body));
                }
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                let version = if etcd {
                    v["header"]["revision"].as_str().map(str::to_string)
                } else {
                    v["version"].as_u64().map(|v| v.to_string())
                }
                .with_context(|| format!("fill {k}: no version in {v}"))?;
                out.push((i, version, STANDARD.encode(&k)));
            }
        }));
    }
    let mut lines = Vec::with_capacity(args.keys);
    for t in tasks {
        lines.extend(t.await??);
    }
    lines.sort();
    let text: String = lines
        .iter()
        .map(|(i, v, k)| format!("{i} {v} {k}\n"))
        .collect();
    std::fs::write(data, text)?;
    Ok(())
}

fn load<'a>(
    args: &Args,
    url: &'a str,
    request: Request,
    value: &'a [u8],
    data: &'a Path,
    dir: &'a Path,
) -> wrk::Load<'a> {
    wrk::Load {
        url,
        request,
        threads: args.wrk_threads,
        connections: args.connections,
        seconds: args.seconds,
        keys: args.keys,
        value,
        data: Some(data),
        dir,
    }
}

/// Measures an HTTP server: PUT, GET (after a fill), and, when `cas` is
/// set, compare-and-set from freshly read versions.
async fn http_system(
    args: &Args,
    system: &str,
    url: &str,
    etcd: bool,
    cas: bool,
    dir: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    let value = vec![b'v'; args.value_size];
    let data = dir.join("versions.txt");
    fill(url, etcd, args, &data).await?;
    let (put, get, cas_req) = if etcd {
        (Request::EtcdPut, Request::EtcdGet, Request::EtcdCas)
    } else {
        (Request::OrbitPut, Request::OrbitGet, Request::OrbitCas)
    };
    let mut ops = vec![("PUT", put), ("GET", get)];
    if cas {
        ops.push(("CAS", cas_req));
    }
    for (op, req) in ops {
        if op == "CAS" {
            // The versions the PUTs left.
            fill(url, etcd, args, &data).await?;
        }
        let o = wrk::run(&load(args, url, req, &value, &data, dir))?;
        let s = Sample::from(&o);
        eprintln!(
            "  {system:34} {op:4} {:>9.0} ops/s  p50 {:.3} ms  p99 {:.3} ms{}",
            s.ops_per_sec,
            s.p50_ms,
            s.p99_ms,
            if op == "CAS" {
                format!("  ({} conflicts of {})", o.conflicts, o.requests)
            } else {
                String::new()
            }
        );
        results
            .entry((system.to_string(), op.to_string()))
            .or_default()
            .push(s);
    }
    Ok(())
}

fn redis(args: &Args, requests: u64, results: &mut Results) -> anyhow::Result<()> {
    let port = free_port()?;
    let server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start redis-server (apt-get install redis-server)")?;
    let _server = Killed(server);
    wait_listening(port)?;
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &args.connections.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-d", &args.value_size.to_string()])
        .args(["-r", &args.keys.to_string(), "-t", "set,get", "--csv"])
        .output()
        .context("cannot run redis-benchmark (apt-get install redis-tools)")?;
    if !out.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name} column in {text}"))
    };
    let (rps, p50, p99) = (col("rps")?, col("p50_latency_ms")?, col("p99_latency_ms")?);
    for line in lines {
        let f: Vec<&str> = line.split(',').map(|x| x.trim_matches('"')).collect();
        let num = |i: usize| {
            f.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let s = Sample {
            ops_per_sec: num(rps),
            p50_ms: num(p50),
            p99_ms: num(p99),
            conflicts: 0,
        };
        eprintln!(
            "  {REDIS:34} {:4} {:>9.0} ops/s  p50 {:.3} ms  p99 {:.3} ms",
            f[0], s.ops_per_sec, s.p50_ms, s.p99_ms
        );
        results
            .entry((REDIS.to_string(), f[0].to_string()))
            .or_default()
            .push(s);
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct ReportRow {
    system: String,
    operation: String,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Median over runs of the ratio to the peer in the same run.
    vs_floor: Option<f64>,
    vs_redis: Option<f64>,
    vs_etcd: Option<f64>,
    runs: Vec<Sample>,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    command: String,
    date: String,
    load_average_before: String,
    load_average_after: String,
    cores: usize,
    connections: usize,
    wrk_threads: usize,
    seconds: f64,
    runs: usize,
    keys: usize,
    value_size: usize,
    notes: Vec<String>,
    rows: Vec<ReportRow>,
}

/// The peer a row is compared with: (system, operation).
fn peer_of(system: &str, op: &str, peer: &str) -> Option<(String, String)> {
    let orbit = system.starts_with("orbit-server");
    let durable = orbit && system.ends_with("(sync)");
    match peer {
        "floor" if orbit && (op == "GET" || op == "PUT") => Some((FLOOR.into(), op.into())),
        "redis" if (system == FLOOR || system == "orbit-server memory") => {
            let op = if op == "PUT" { "SET" } else { op };
            Some((REDIS.into(), op.into()))
        }
        "etcd" if durable => Some((ETCD.into(), op.into())),
        _ => None,
    }
}

fn report(args: &Args, results: &Results, before: String) -> Report {
    let ratio = |system: &str, op: &str, peer: &str| -> Option<f64> {
        let (ps, po) = peer_of(system, op, peer)?;
        let mine = results.get(&(system.to_string(), op.to_string()))?;
        let theirs = results.get(&(ps, po))?;
        median(
            mine.iter()
                .zip(theirs)
                .map(|(a, b)| a.ops_per_sec / b.ops_per_sec)
                .collect(),
        )
    };
    let mut systems = vec![FLOOR.to_string()];
    systems.extend(args.backends.iter().map(|b| orbit_name(b)));
    systems.push(REDIS.into());
    systems.push(ETCD.into());
    let mut rows = Vec::new();
    for op in ["GET", "PUT", "SET", "CAS"] {
        for system in &systems {
            let Some(samples) = results.get(&(system.clone(), op.to_string())) else {
                continue;
            };
            let m =
                |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect()).unwrap_or(f64::NAN);
            rows.push(ReportRow {
                system: system.clone(),
                operation: op.into(),
                ops_per_sec: m(|s| s.ops_per_sec),
                p50_ms: m(|s| s.p50_ms),
                p99_ms: m(|s| s.p99_ms),
                vs_floor: ratio(system, op, "floor"),
                vs_redis: ratio(system, op, "redis"),
                vs_etcd: ratio(system, op, "etcd"),
                runs: samples.clone(),
            });
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    Report {
        bench: "http",
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        load_average_before: before,
        load_average_after: load_average(),
        cores,
        connections: args.connections,
        wrk_threads: args.wrk_threads,
        seconds: args.seconds,
        runs: args.runs,
        keys: args.keys,
        value_size: args.value_size,
        notes: vec![
            format!(
                "loopback; client and servers share the machine's {cores} cores (wrk -t{} -c{}, redis-benchmark -c{}, one thread each)",
                args.wrk_threads, args.connections, args.connections
            ),
            "floor: axum with orbit-server's router shape and middleware, answering from a map".into(),
            "orbit-server durable backends: durability = sync (fsync before the answer; concurrent writes share one fsync); CAS = PUT with If-Match: \"<version>\"".into(),
            "etcd: single member, default fsync per commit, through its JSON gateway (grpc-gateway over HTTP/1.1, not gRPC): PUT /v3/kv/put, GET /v3/kv/range (linearizable), CAS /v3/kv/txn comparing mod_revision".into(),
            "medians of the runs; ratios taken within a run, then the median".into(),
        ],
        rows,
    }
}

fn markdown(r: &Report) -> String {
    let f = |x: Option<f64>| x.map_or("".to_string(), |x| format!("{x:.2}x"));
    let mut out = String::new();
    out.push_str(
        "| system | operation | ops/s | p50 ms | p99 ms | vs floor | vs Redis | vs etcd |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for row in &r.rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} |\n",
            row.system,
            row.operation,
            row.ops_per_sec,
            row.p50_ms,
            row.p99_ms,
            f(row.vs_floor),
            f(row.vs_redis),
            f(row.vs_etcd)
        ));
    }
    out
}

async fn one_run(args: &Args, dir: &Path, results: &mut Results) -> anyhow::Result<()> {
    {
        let (_floor, url) = start_floor()?;
        http_system(args, FLOOR, &url, false, false, dir, results).await?;
    }
    for backend in &args.backends {
        let data = dir.join(format!("orbit-{backend}"));
        let (orbit, url) = start_orbit(args, backend, &data)?;
        http_system(
            args,
            &orbit_name(backend),
            &url,
            false,
            backend != "memory",
            dir,
            results,
        )
        .await?;
        drop(orbit);
        let _ = std::fs::remove_dir_all(&data);
    }
    if args.peers.iter().any(|p| p == "redis") {
        // About as many requests as the floor served, so it runs as long.
        let floor = results
            .get(&(FLOOR.to_string(), "GET".to_string()))
            .and_then(|v| v.last())
            .map_or(0.0, |s| s.ops_per_sec);
        let requests =
            ((floor * args.seconds) as u64).max(if args.quick { 20_000 } else { 100_000 });
        redis(args, requests, results)?;
    }
    if args.peers.iter().any(|p| p == "etcd") {
        let (etcd, url) = start_etcd(&args.etcd, dir)?;
        // The gateway answers once the member has elected itself.
        let mut waited = 0;
        while fill_probe(&url).await.is_err() {
            waited += 1;
            if waited > 100 {
                bail!("etcd does not answer");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        http_system(args, ETCD, &url, true, true, dir, results).await?;
        drop(etcd);
        let _ = std::fs::remove_dir_all(dir.join("etcd"));
    }
    Ok(())
}

async fn fill_probe(url: &str) -> anyhow::Result<()> {
    let client: HyperClient<_, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = hyper::Request::post(format!("{url}/v3/kv/range"))
        .body(Full::new(Bytes::from_static(b"{\"key\":\"cHJvYmU=\"}")))?;
    let res = client.request(req).await?;
    if !res.status().is_success() {
        bail!("{}", res.status());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(port) = args.floor_server {
        return orbit_bench::floor::serve(port);
    }
    if args.quick {
        args.seconds = 1.0;
        args.runs = 1;
        args.keys = args.keys.min(1_000);
    }
    for peer in &args.peers {
        if peer != "redis" && peer != "etcd" {
            bail!("unknown peer {peer:?}: expected redis, etcd");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let before = load_average();
    let dir = std::env::temp_dir().join(format!("orbit-http-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut results = Results::new();
    let outcome = rt.block_on(async {
        for run in 1..=args.runs {
            eprintln!(
                "http-bench: run {run} of {} (load average {})",
                args.runs,
                load_average()
            );
            one_run(&args, &dir, &mut results).await?;
        }
        anyhow::Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    outcome?;
    let r = report(&args, &results, before);
    println!();
    for n in &r.notes {
        println!("- {n}");
    }
    println!(
        "- {} keys, {}-byte values, {} s per operation, {} run(s); load average {} before, {} after\n",
        r.keys, r.value_size, r.seconds, r.runs, r.load_average_before, r.load_average_after
    );
    print!("{}", markdown(&r));
    for row in r.rows.iter().filter(|r| r.operation == "CAS") {
        let conflicts: u64 = row.runs.iter().map(|s| s.conflicts).sum();
        println!("\n{} CAS conflicts over all runs: {conflicts}", row.system);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| path.display().to_string())?;
    }
    Ok(())
}
