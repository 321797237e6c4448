//! `http-bench`: drives orbit-server's HTTP API over loopback (memory
//! backend, no disk backup) with N concurrent connections doing GET and PUT,
//! and measures redis-server GET/SET with `redis-benchmark` in the same run
//! with the same concurrency, value size and key space. Prints a markdown
//! table with the ratio to Redis.
//!
//!     cargo build --release --bins
//!     target/release/http-bench --connections 64 --seconds 10
//!
//! Needs `redis-server` and `redis-benchmark` on PATH (apt-get install
//! redis-server redis-tools).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use orbit_bench::process::{Killed, free_port, wait_listening};
use orbit_bench::{Latencies, Row};

#[derive(Parser, Debug)]
struct Args {
    /// Concurrent connections (and redis-benchmark clients).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per operation for orbit-server.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// orbit-server binary (default: next to this program).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

fn start_orbit(args: &Args) -> anyhow::Result<(Killed, u16)> {
    let bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("orbit-server"),
    };
    let port = free_port()?;
    let metrics = free_port()?;
    let dir = std::env::temp_dir().join(format!("orbit-http-bench-{}", std::process::id()));
    let child = Command::new(&bin)
        .env("ORBIT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ORBIT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .env("ORBIT_DATA_DIR", &dir)
        .env("ORBIT_PERSISTENCE_BACKEND", "memory")
        .env("ORBIT_MEMORY_DISK_BACKUP", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (build it: cargo build --release --bin orbit-server)",
                bin.display()
            )
        })?;
    let child = Killed(child);
    wait_listening(port)?;
    Ok((child, port))
}

/// A small xorshift so every connection walks the key space differently.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn drive(port: u16, args: &Args, put: bool) -> anyhow::Result<Row> {
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..args.connections {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let stop = stop.clone();
        let value = value.clone();
        let keys = args.keys as u64;
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                let key = next(&mut rng) % keys;
                let req = hyper::Request::builder()
                    .method(if put { "PUT" } else { "GET" })
                    .uri(format!("/v1/kv/bench/{key:08}"))
                    .header("host", "localhost")
                    .body(Full::new(if put { value.clone() } else { Bytes::new() }))?;
                let t = Instant::now();
                let res = sender.send_request(req).await?;
                let status = res.status();
                res.into_body().collect().await?;
                lat.record(t.elapsed());
                if !status.is_success() {
                    bail!("unexpected status {status}");
                }
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Row {
        system: "orbit-server (HTTP, memory)".into(),
        operation: if put { "PUT" } else { "GET" }.into(),
        ops_per_sec: all.len() as f64 / elapsed,
        p50_ms: all.quantile_ms(0.50),
        p99_ms: all.quantile_ms(0.99),
    })
}

fn redis(args: &Args, requests: u64) -> anyhow::Result<Vec<Row>> {
    let port = free_port()?;
    let server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start redis-server (apt-get install redis-server)")?;
    let _server = Killed(server);
    wait_listening(port)?;
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            &args.connections.to_string(),
        ])
        .args([
            "-n",
            &requests.to_string(),
            "-d",
            &args.value_size.to_string(),
        ])
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
    let mut rows = Vec::new();
    for line in lines {
        let f: Vec<String> = line
            .split(',')
            .map(|x| x.trim_matches('"').to_string())
            .collect();
        let num = |i: usize| {
            f.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        rows.push(Row {
            system: "redis-server (redis-benchmark)".into(),
            operation: f[0].clone(),
            ops_per_sec: num(rps),
            p50_ms: num(p50),
            p99_ms: num(p99),
        });
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (_orbit, port) = start_orbit(&args)?;
    // Fill the key space first so GETs hit.
    let fill = Args {
        seconds: 2,
        ..Args::parse()
    };
    drive(port, &fill, true).await?;
    let put = drive(port, &args, true).await?;
    let get = drive(port, &args, false).await?;
    // Give Redis about as many requests as orbit served, so both run similarly long.
    let requests =
        ((put.ops_per_sec.max(get.ops_per_sec) * args.seconds as f64) as u64).max(100_000);
    let redis_rows = redis(&args, requests)?;
    let find = |op: &str| redis_rows.iter().find(|r| r.operation == op).cloned();

    println!(
        "\n{} connections, {} keys, {}-byte values, {} s per orbit operation, {} redis requests per operation\n",
        args.connections, args.keys, args.value_size, args.seconds, requests
    );
    println!("| system | operation | ops/s | p50 ms | p99 ms | ops/s vs Redis |");
    println!("|---|---|---:|---:|---:|---:|");
    for (row, peer) in [(&put, find("SET")), (&get, find("GET"))] {
        let ratio = peer
            .as_ref()
            .map_or(f64::NAN, |p| row.ops_per_sec / p.ops_per_sec);
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.2}x |",
            row.system, row.operation, row.ops_per_sec, row.p50_ms, row.p99_ms, ratio
        );
        if let Some(p) = peer {
            println!(
                "| {} | {} | {:.0} | {:.3} | {:.3} | 1.00x |",
                p.system, p.operation, p.ops_per_sec, p.p50_ms, p.p99_ms
            );
        }
    }
    Ok(())
}
