//! `lease-bench`: Orbit-RS actor leases per second through `orbit-client`'s
//! `AddressableDirectory` against orbit-server on each local backend
//! (memory, lsm_tree, cow_btree, rocksdb, default durability: `sync` for the
//! disk engines) and on `s3` with three server replicas on one SeaweedFS
//! bucket, beside etcd's lease throughput on the same machine in the same
//! run.
//!
//!     bash scripts/install-stand-ins.sh && bash scripts/install-etcd.sh
//!     cargo build --release --workspace --locked
//!     target/release/lease-bench --runs 3 --seconds 5 --concurrency 32
//!
//! Two phases per system, `--concurrency` tasks each, `--seconds` each:
//! - **acquire**: every task activates fresh actors one after the other
//!   (Orbit: one atomic batch, the lease if absent with a TTL plus the node's
//!   index entry; etcd: `LeaseGrant` then a `Txn` creating the key with
//!   that lease if absent, the pattern of etcd's own `concurrency` package);
//! - **renew**: every task renews one lease it holds, again and again
//!   (Orbit: compare-and-set on the version it holds, plus the index entry,
//!   in one batch; etcd: `LeaseKeepAlive`, and, as a second row, a `Txn`
//!   compare-and-set on the key's mod revision, the closest equivalent of
//!   Orbit's conditional renewal).
//!
//! etcd (Debian `etcd-server` 3.4, one member, its default fsync per
//! commit) is driven through its JSON gateway over HTTP/1.1 with the same
//! pooled hyper client orbit-client uses, so both sides pay the same HTTP
//! and JSON costs. Every system runs `--runs` times; the table shows the
//! median of each figure, and the ratio of the medians to etcd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orbit_bench::Latencies;
use orbit_bench::process::{Killed, free_port, start_etcd, wait_listening};
use orbit_client::types::{AddressableReference, Key, NodeId};
use orbit_client::{Acquire, AddressableDirectory, Client, ClientConfig, DirectoryConfig};
use orbit_test_support::standins::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, Weed};

#[derive(Parser, Debug)]
struct Args {
    /// Runs of every system; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent tasks (and connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Systems to run: memory, lsm_tree, cow_btree, rocksdb, s3x3, etcd.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,lsm_tree,cow_btree,rocksdb,s3x3,etcd"
    )]
    systems: Vec<String>,
    /// orbit-server binary (default: next to this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// SeaweedFS binary (default: .tools/py/bin/weed).
    #[arg(long)]
    weed: Option<PathBuf>,
    /// etcd binary (default: etcd on PATH; scripts/install-etcd.sh).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Lease duration used by both sides (long enough not to expire
    /// during a run).
    #[arg(long, default_value_t = 60)]
    lease_secs: u64,
}

/// One phase's result.
#[derive(Debug, Clone, Default)]
struct Phase {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn phase(ops: u64, secs: f64, mut lat: Latencies, errors: u64) -> Phase {
    Phase {
        ops_per_sec: ops as f64 / secs,
        p50_ms: lat.quantile_ms(0.5),
        p99_ms: lat.quantile_ms(0.99),
        errors,
    }
}

/// Runs `op(task, i)` on `concurrency` tasks for `secs`; counts successes.
async fn drive<F, Fut>(concurrency: usize, secs: u64, op: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (op, stop, errors) = (op.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    match op(t, i).await {
                        Ok(()) => lat.record(t0.elapsed()),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("  error: {e:#}");
                            }
                        }
                    }
                    i += 1;
                }
                lat
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.merge(l);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    phase(all.len() as u64, secs, all, errors.load(Ordering::Relaxed))
}

fn server_bin(args: &Args) -> anyhow::Result<PathBuf> {
    Ok(match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("orbit-server"),
    })
}

fn start_server(
    args: &Args,
    dir: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<(Killed, String)> {
    let port = free_port()?;
    let metrics = free_port()?;
    std::fs::create_dir_all(dir)?;
    let bin = server_bin(args)?;
    let mut cmd = Command::new(&bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("ORBIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ORBIT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ORBIT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .env("ORBIT_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Killed(cmd.spawn().with_context(|| {
        format!(
            "cannot start {} (cargo build --release --workspace)",
            bin.display()
        )
    })?);
    wait_listening(port)?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// Orbit: acquire and renew through the directory, tasks spread over
/// `endpoints` (one replica first per task).
async fn bench_orbit(
    args: &Args,
    endpoints: &[String],
    tag: &str,
) -> anyhow::Result<(Phase, Phase)> {
    let dirs: Vec<AddressableDirectory> = (0..endpoints.len())
        .map(|i| {
            let mut eps = endpoints.to_vec();
            eps.rotate_left(i);
            let client = Client::new(ClientConfig::new("").with_endpoints(eps))?;
            Ok(AddressableDirectory::new(
                client,
                DirectoryConfig {
                    prefix: format!("bench-{tag}/"),
                    lease_duration: Duration::from_secs(args.lease_secs),
                    safety_margin: Duration::from_secs(1),
                },
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let dirs = Arc::new(dirs);
    let node = NodeId::new("bench", "default");
    // Wait until the store answers (object storage proves itself first).
    let probe = AddressableReference::new("Probe", Key::NoKey);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match dirs[0].acquire(&probe, &node).await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => bail!("{tag}: not answering: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let (d, n) = (dirs.clone(), node.clone());
    let acquire = drive(args.concurrency, args.seconds, move |t, i| {
        let (d, n) = (d.clone(), n.clone());
        async move {
            let r = AddressableReference::new("Bench", Key::string(format!("acq-{t}-{i}")));
            match d[t % d.len()].acquire(&r, &n).await? {
                Acquire::Acquired(_) => Ok(()),
                Acquire::HeldElsewhere { .. } => bail!("fresh actor held elsewhere"),
            }
        }
    })
    .await;
    // One lease per task, renewed in a chain.
    let mut held = Vec::new();
    for t in 0..args.concurrency {
        let r = AddressableReference::new("Bench", Key::string(format!("renew-{t}")));
        match dirs[t % dirs.len()].acquire(&r, &node).await? {
            Acquire::Acquired(h) => held.push(tokio::sync::Mutex::new(h)),
            Acquire::HeldElsewhere { .. } => bail!("renew actor held elsewhere"),
        }
    }
    let held = Arc::new(held);
    let d = dirs.clone();
    let renew = drive(args.concurrency, args.seconds, move |t, _| {
        let (d, held) = (d.clone(), held.clone());
        async move {
            let mut h = held[t].lock().await;
            *h = d[t % d.len()].renew(&h).await?;
            Ok(())
        }
    })
    .await;
    Ok((acquire, renew))
}

/// etcd's JSON gateway.
#[derive(Clone)]
struct Etcd {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Etcd {
    async fn call(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let req = hyper::Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let res = self.http.request(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("etcd {path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn grant(&self, ttl: u64) -> anyhow::Result<String> {
        let r = self
            .call("/v3/lease/grant", serde_json::json!({ "TTL": ttl }))
            .await?;
        r["ID"]
            .as_str()
            .map(String::from)
            .context("lease grant without an ID")
    }

    /// Creates `key` with `lease` if absent; returns its mod revision.
    async fn create(&self, key: &str, lease: &str) -> anyhow::Result<String> {
        let k = STANDARD.encode(key);
        let r = self
            .call(
                "/v3/kv/txn",
                serde_json::json!({
                    "compare": [{"key": k, "target": "CREATE", "create_revision": "0"}],
                    "success": [{"request_put": {"key": k, "value": STANDARD.encode("bench-node"), "lease": lease}}],
                }),
            )
            .await?;
        if r["succeeded"] != true {
            bail!("txn create of {key} did not succeed: {r}");
        }
        r["header"]["revision"]
            .as_str()
            .map(String::from)
            .context("txn without a revision")
    }
}

async fn bench_etcd(args: &Args, base: String) -> anyhow::Result<(Phase, Phase, Phase)> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let etcd = Etcd {
        http: HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.concurrency * 2)
            .build(connector),
        base,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while etcd.grant(5).await.is_err() {
        if Instant::now() > deadline {
            bail!("etcd does not answer");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ttl = args.lease_secs;
    let e = etcd.clone();
    let acquire = drive(args.concurrency, args.seconds, move |t, i| {
        let e = e.clone();
        async move {
            let lease = e.grant(ttl).await?;
            e.create(&format!("bench/acq-{t}-{i}"), &lease).await?;
            Ok(())
        }
    })
    .await;
    let mut held = Vec::new();
    for t in 0..args.concurrency {
        let lease = etcd.grant(ttl).await?;
        let rev = etcd.create(&format!("bench/renew-{t}"), &lease).await?;
        held.push((lease, tokio::sync::Mutex::new(rev)));
    }
    let held = Arc::new(held);
    let (e, h) = (etcd.clone(), held.clone());
    let keepalive = drive(args.concurrency, args.seconds, move |t, _| {
        let (e, h) = (e.clone(), h.clone());
        async move {
            let r = e
                .call("/v3/lease/keepalive", serde_json::json!({ "ID": h[t].0 }))
                .await?;
            if r["result"]["TTL"].as_str().unwrap_or("0") == "0" {
                bail!("keepalive of an expired lease: {r}");
            }
            Ok(())
        }
    })
    .await;
    let (e, h) = (etcd.clone(), held.clone());
    let cas = drive(args.concurrency, args.seconds, move |t, _| {
        let (e, h) = (e.clone(), h.clone());
        async move {
            let (lease, rev) = &h[t];
            let mut rev = rev.lock().await;
            let k = STANDARD.encode(format!("bench/renew-{t}"));
            let r = e
                .call(
                    "/v3/kv/txn",
                    serde_json::json!({
                        "compare": [{"key": k, "target": "MOD", "mod_revision": *rev}],
                        "success": [{"request_put": {"key": k, "value": STANDARD.encode("bench-node"), "lease": lease}}],
                    }),
                )
                .await?;
            if r["succeeded"] != true {
                bail!("txn compare-and-set lost: {r}");
            }
            *rev = r["header"]["revision"]
                .as_str()
                .context("no revision")?
                .to_string();
            Ok(())
        }
    })
    .await;
    Ok((acquire, keepalive, cas))
}

/// The results of one system over the runs.
#[derive(Default)]
struct Rows {
    name: String,
    acquire: Vec<Phase>,
    renew: Vec<Phase>,
    renew_label: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn med(p: &[Phase], f: impl Fn(&Phase) -> f64) -> f64 {
    median(p.iter().map(f).collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = std::env::temp_dir().join(format!("orbit-lease-bench-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(tmp.clone());
    let mut table: Vec<Rows> = Vec::new();
    let row = |table: &mut Vec<Rows>, name: &str, label: &'static str| -> usize {
        if let Some(i) = table.iter().position(|r| r.name == name) {
            return i;
        }
        table.push(Rows {
            name: name.to_string(),
            renew_label: label,
            ..Default::default()
        });
        table.len() - 1
    };
    let mut skipped = Vec::new();
    for run in 1..=args.runs {
        for system in &args.systems {
            let dir = tmp.join(format!("{system}-{run}"));
            std::fs::create_dir_all(&dir)?;
            eprintln!("run {run}/{}: {system}", args.runs);
            match system.as_str() {
                "memory" | "lsm_tree" | "cow_btree" | "rocksdb" => {
                    let mut env = vec![("ORBIT_PERSISTENCE_BACKEND", system.clone())];
                    if system == "memory" {
                        env.push(("ORBIT_MEMORY_DISK_BACKUP", "false".into()));
                    }
                    let (_server, url) = start_server(&args, &dir, &env)?;
                    let (a, r) = bench_orbit(&args, &[url], system).await?;
                    let i = row(&mut table, &format!("orbit-server, {system}"), "CAS renew");
                    table[i].acquire.push(a);
                    table[i].renew.push(r);
                }
                "s3x3" => {
                    let weed =
                        Weed::start_in(args.weed.as_deref(), &dir).map_err(anyhow::Error::msg)?;
                    let s3 = weed.s3_port;
                    let key = dir.join("key");
                    let secret = dir.join("secret");
                    std::fs::write(&key, S3_ACCESS_KEY)?;
                    std::fs::write(&secret, S3_SECRET_KEY)?;
                    let env = vec![
                        ("ORBIT_PERSISTENCE_BACKEND", "s3".to_string()),
                        ("ORBIT_S3_ENDPOINT", format!("http://127.0.0.1:{s3}")),
                        ("ORBIT_S3_BUCKET", S3_BUCKET.to_string()),
                        ("ORBIT_S3_PREFIX", format!("lease-bench-{run}")),
                        ("ORBIT_S3_ENABLE_SSL", "false".to_string()),
                        ("ORBIT_S3_ACCESS_KEY_ID_FILE", key.display().to_string()),
                        (
                            "ORBIT_S3_SECRET_ACCESS_KEY_FILE",
                            secret.display().to_string(),
                        ),
                    ];
                    let mut servers = Vec::new();
                    let mut urls = Vec::new();
                    for r in 0..3 {
                        let (s, u) = start_server(&args, &dir.join(format!("replica{r}")), &env)?;
                        servers.push(s);
                        urls.push(u);
                    }
                    let (a, r) = bench_orbit(&args, &urls, system).await?;
                    let i = row(
                        &mut table,
                        "orbit-server, s3 x3 replicas (SeaweedFS)",
                        "CAS renew",
                    );
                    table[i].acquire.push(a);
                    table[i].renew.push(r);
                }
                "etcd" => match start_etcd(&args.etcd, &dir) {
                    Ok((_etcd, base)) => {
                        let (a, k, c) = bench_etcd(&args, base).await?;
                        let i = row(&mut table, "etcd 3.4 (keepalive renew)", "keepalive");
                        table[i].acquire.push(a.clone());
                        table[i].renew.push(k);
                        let i = row(&mut table, "etcd 3.4 (txn CAS renew)", "txn CAS");
                        table[i].acquire.push(a);
                        table[i].renew.push(c);
                    }
                    Err(e) => {
                        if run == 1 {
                            skipped.push(format!("etcd: {e:#}"));
                        }
                    }
                },
                other => bail!("unknown system {other:?}"),
            }
        }
    }
    let etcd = table
        .iter()
        .find(|r| r.name.starts_with("etcd 3.4 (keepalive"));
    let etcd_cas = table.iter().find(|r| r.name.starts_with("etcd 3.4 (txn"));
    let etcd_acq = etcd.map(|r| med(&r.acquire, |p| p.ops_per_sec));
    let etcd_renew = etcd.map(|r| med(&r.renew, |p| p.ops_per_sec));
    let etcd_cas_renew = etcd_cas.map(|r| med(&r.renew, |p| p.ops_per_sec));
    println!(
        "lease-bench: {} runs x {} s per phase, {} concurrent tasks, median of the runs, {}",
        args.runs,
        args.seconds,
        args.concurrency,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!();
    println!(
        "| system | acquire/s | p50 ms | p99 ms | renew | renew/s | p50 ms | p99 ms | acquire vs etcd | renew vs etcd keepalive / txn CAS |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    let ratio = |x: f64, base: Option<f64>| match base {
        Some(b) if b > 0.0 => format!("{:.2}x", x / b),
        _ => "-".into(),
    };
    for r in &table {
        let acq = med(&r.acquire, |p| p.ops_per_sec);
        let ren = med(&r.renew, |p| p.ops_per_sec);
        let errors: u64 = r.acquire.iter().chain(&r.renew).map(|p| p.errors).sum();
        println!(
            "| {}{} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.2} | {:.2} | {} | {} / {} |",
            r.name,
            if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            },
            acq,
            med(&r.acquire, |p| p.p50_ms),
            med(&r.acquire, |p| p.p99_ms),
            r.renew_label,
            ren,
            med(&r.renew, |p| p.p50_ms),
            med(&r.renew, |p| p.p99_ms),
            ratio(acq, etcd_acq),
            ratio(ren, etcd_renew),
            ratio(ren, etcd_cas_renew),
        );
    }
    for s in skipped {
        println!("\nskipped {s}");
    }
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
