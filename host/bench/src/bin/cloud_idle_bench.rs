//! `cloud-idle-bench`: what an idle object-storage store costs in the
//! background. Starts SeaweedFS (credentials enforced), fills a fresh prefix
//! with N keys whose TTLs are spread over one hour (by default the hour
//! after the next one, so that no key falls due while measuring and every
//! request counted is overhead), then runs R store handles ("replicas") on
//! that prefix, each calling `purge_expired` every purge interval (the
//! server's default, 10 s) as orbit-server's background task does, and
//! `health_stats` as readiness does, for a fixed period. Prints the
//! requests per minute each replica sent (counted by the store's own HTTP
//! counters, retries included). The goal: a number that does not grow with
//! N.
//!
//!     bash scripts/install-stand-ins.sh
//!     cargo build --release --workspace --locked --bin cloud-idle-bench
//!     target/release/cloud-idle-bench --keys 10000,100000 --secs 120
//!
//! `--scan` also times one `stats()` (the full scan every purge used to
//! do, once per replica per interval) for comparison.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use orbit_cloud::CloudStorage;
use orbit_storage::{Precondition, PutOptions, S3Config, SecretRef, Storage, now_millis};

use orbit_test_support::standins::{
    S3_ACCESS_KEY as ACCESS_KEY, S3_BUCKET as BUCKET, S3_SECRET_KEY as SECRET_KEY, Weed,
};

#[derive(Parser, Debug)]
struct Args {
    /// Key counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    keys: Vec<usize>,
    /// How long the replicas run, in seconds, per key count.
    #[arg(long, default_value_t = 120)]
    secs: u64,
    /// Store handles purging the prefix at once.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Purge interval in seconds (orbit-server's ORBIT_TTL_PURGE_INTERVAL default).
    #[arg(long, default_value_t = 10)]
    purge_interval_secs: u64,
    /// The TTLs are spread over one hour starting this many seconds after
    /// the fill (0: keys start expiring at once, so purge has real work).
    #[arg(long, default_value_t = 3600)]
    ttl_start_secs: u64,
    /// Concurrent writes while filling.
    #[arg(long, default_value_t = 32)]
    fill_concurrency: usize,
    /// Also run one full `stats()` scan for comparison.
    #[arg(long)]
    scan: bool,
    /// SeaweedFS binary (default: ORBIT_WEED_BIN, else .tools/py/bin/weed in the
    /// repository, from scripts/install-stand-ins.sh).
    #[arg(long)]
    weed: Option<PathBuf>,
}

fn config(port: u16, prefix: &str, secrets: &std::path::Path) -> anyhow::Result<S3Config> {
    let key = secrets.join("key");
    let secret = secrets.join("secret");
    std::fs::write(&key, ACCESS_KEY)?;
    std::fs::write(&secret, SECRET_KEY)?;
    Ok(S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        bucket: BUCKET.into(),
        access_key_id: Some(SecretRef::File(key.display().to_string())),
        secret_access_key: Some(SecretRef::File(secret.display().to_string())),
        prefix: prefix.into(),
        enable_ssl: false,
        connection_timeout: std::time::Duration::from_secs(5),
        read_timeout: Some(std::time::Duration::from_secs(30)),
        write_timeout: Some(std::time::Duration::from_secs(30)),
        retry_count: 3,
    })
}

async fn wait_ready(store: &CloudStorage) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.check_conditional_writes().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn fill(store: &Arc<CloudStorage>, args: &Args, keys: usize) -> anyhow::Result<()> {
    let start = now_millis() + args.ttl_start_secs * 1000;
    let hour = 3_600_000u64;
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..keys)
        .map(|i| {
            let store = store.clone();
            async move {
                let expires_at = start + (i as u64 * hour) / keys as u64;
                store
                    .put(
                        format!("idle/{i:08}").as_bytes(),
                        Bytes::from_static(b"value-of-an-idle-key"),
                        PutOptions {
                            precondition: Precondition::None,
                            expires_at: Some(expires_at),
                        },
                    )
                    .await
                    .with_context(|| format!("fill key {i}"))?;
                Ok(())
            }
        })
        .buffer_unordered(args.fill_concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    eprintln!(
        "filled {keys} keys in {:.0?} ({:.0} keys/s)",
        started.elapsed(),
        keys as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Per replica: requests per minute and purged keys during the period.
async fn run_replicas(
    args: &Args,
    port: u16,
    prefix: &str,
    secrets: &std::path::Path,
) -> anyhow::Result<Vec<(f64, u64, usize)>> {
    let mut stores = Vec::new();
    for _ in 0..args.replicas {
        stores.push(orbit_cloud::open_s3(&config(port, prefix, secrets)?)?);
    }
    let period = Duration::from_secs(args.secs);
    let every = Duration::from_secs(args.purge_interval_secs.max(1));
    let tasks: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| {
            tokio::spawn(async move {
                let before = store.remote_stats().requests;
                let started = Instant::now();
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut purged = 0u64;
                interval.tick().await;
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            match store.purge_expired().await {
                                Ok(n) => purged += n,
                                Err(e) => eprintln!("purge failed: {e}"),
                            }
                            // What readiness asks for (no request).
                            let _ = store.health_stats().await;
                        }
                        _ = tokio::time::sleep(period.saturating_sub(started.elapsed())) => break,
                    }
                }
                let requests = store.remote_stats().requests - before;
                let minutes = started.elapsed().as_secs_f64() / 60.0;
                (
                    requests as f64 / minutes,
                    purged,
                    store.purge_passes().len(),
                )
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await?);
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("orbit-cloud-idle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let weed = Weed::start_in(args.weed.as_deref(), &dir).map_err(anyhow::Error::msg)?;
    let port = weed.s3_port;
    let mut rows = Vec::new();
    for &keys in &args.keys {
        let prefix = format!("idle-bench-{keys}-{}", std::process::id());
        let store = orbit_cloud::open_s3(&config(port, &prefix, &dir)?)?;
        wait_ready(&store).await?;
        fill(&store, &args, keys).await?;
        let scan = if args.scan {
            let before = store.remote_stats().requests;
            let started = Instant::now();
            let stats = store.stats().await?;
            Some((
                store.remote_stats().requests - before,
                started.elapsed(),
                stats.keys,
            ))
        } else {
            None
        };
        eprintln!(
            "running {} replicas for {} s, purge every {} s ...",
            args.replicas, args.secs, args.purge_interval_secs
        );
        let replicas = run_replicas(&args, port, &prefix, &dir).await?;
        rows.push((keys, scan, replicas));
    }
    println!(
        "replicas={} purge_interval={}s period={}s ttl spread over [{}s, {}s] after the fill",
        args.replicas,
        args.purge_interval_secs,
        args.secs,
        args.ttl_start_secs,
        args.ttl_start_secs + 3600
    );
    println!(
        "{:>8}  {:>34}  {:>8}  {:>6}  full stats() scan",
        "keys", "requests/min per replica", "purged", "passes"
    );
    for (keys, scan, replicas) in rows {
        let per: Vec<String> = replicas.iter().map(|r| format!("{:.1}", r.0)).collect();
        let purged: u64 = replicas.iter().map(|r| r.1).sum();
        let passes: Vec<String> = replicas.iter().map(|r| r.2.to_string()).collect();
        let scan = scan.map_or("-".to_string(), |(requests, took, counted)| {
            format!("{requests} requests in {took:.1?} ({counted} keys)")
        });
        println!(
            "{keys:>8}  {:>34}  {purged:>8}  {:>6}  {scan}",
            per.join(" / "),
            passes.join("/")
        );
    }
    Ok(())
}
