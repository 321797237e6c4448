//! `cloud-bench`: what the S3 backend costs on top of object_store. Starts
//! SeaweedFS (credentials enforced) and orbit-server on the `s3` backend,
//! then, one request at a time against the same SeaweedFS:
//!
//! - PUT and GET of a value through orbit-server's HTTP API;
//! - the same put and get done directly with object_store;
//! - a direct read followed by a conditional put (the least a
//!   compare-and-set write can cost on object storage).
//!
//! Prints a table with each one's latency and the backend's overhead.
//!
//!     bash scripts/install-stand-ins.sh
//!     cargo build --release --bins
//!     target/release/cloud-bench --ops 500

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, UpdateVersion};
use orbit_bench::Latencies;
use orbit_bench::process::{Killed, free_port, wait_listening};

use orbit_test_support::standins::{
    S3_ACCESS_KEY as ACCESS_KEY, S3_BUCKET as BUCKET, S3_SECRET_KEY as SECRET_KEY, Weed,
};

#[derive(Parser, Debug)]
struct Args {
    /// Operations of each kind.
    #[arg(long, default_value_t = 500)]
    ops: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// SeaweedFS binary (default: ORBIT_WEED_BIN, else .tools/py/bin/weed in the
    /// repository, from scripts/install-stand-ins.sh).
    #[arg(long)]
    weed: Option<PathBuf>,
    /// orbit-server binary (default: next to this program).
    #[arg(long)]
    server: Option<PathBuf>,
}

fn start_orbit(args: &Args, dir: &std::path::Path, s3_port: u16) -> anyhow::Result<(Killed, u16)> {
    let bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("orbit-server"),
    };
    let port = free_port()?;
    let metrics = free_port()?;
    let child = Command::new(&bin)
        .env("ORBIT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ORBIT_METRICS_ADDR", format!("127.0.0.1:{metrics}"))
        .env("ORBIT_DATA_DIR", dir)
        .env("ORBIT_PERSISTENCE_BACKEND", "s3")
        .env("ORBIT_S3_ENDPOINT", format!("http://127.0.0.1:{s3_port}"))
        .env("ORBIT_S3_ENABLE_SSL", "false")
        .env("ORBIT_S3_BUCKET", BUCKET)
        .env("ORBIT_S3_PREFIX", "bench-http")
        .env("ORBIT_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("ORBIT_S3_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let child = Killed(child);
    wait_listening(port)?;
    Ok((child, port))
}

/// Sequential PUTs then GETs of distinct keys through the HTTP API.
async fn through_http(port: u16, args: &Args) -> anyhow::Result<(Latencies, Latencies)> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let (mut puts, mut gets) = (Latencies::default(), Latencies::default());
    for put in [true, false] {
        for i in 0..args.ops {
            let req = hyper::Request::builder()
                .method(if put { "PUT" } else { "GET" })
                .uri(format!("/v1/kv/bench/{i:08}"))
                .header("host", "localhost")
                .body(Full::new(if put { value.clone() } else { Bytes::new() }))?;
            sender
                .ready()
                .await
                .context("orbit-server closed the connection")?;
            let t = Instant::now();
            let res = sender.send_request(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            let elapsed = t.elapsed();
            if !status.is_success() || (!put && body.len() != args.value_size) {
                bail!("HTTP {status} for key {i}");
            }
            if put { &mut puts } else { &mut gets }.record(elapsed);
        }
    }
    Ok((puts, gets))
}

/// The same puts and gets with object_store, plus read-then-conditional-put.
async fn direct(s3_port: u16, args: &Args) -> anyhow::Result<[Latencies; 3]> {
    let store = AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{s3_port}"))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()?;
    let value = Bytes::from(vec![b'v'; args.value_size]);
    let (mut puts, mut gets, mut cas) = (
        Latencies::default(),
        Latencies::default(),
        Latencies::default(),
    );
    for i in 0..args.ops {
        let path = Path::from(format!("bench-direct/{i:08}"));
        let t = Instant::now();
        store.put(&path, value.clone().into()).await?;
        puts.record(t.elapsed());
    }
    for i in 0..args.ops {
        let path = Path::from(format!("bench-direct/{i:08}"));
        let t = Instant::now();
        let got = store.get(&path).await?.bytes().await?;
        gets.record(t.elapsed());
        if got.len() != args.value_size {
            bail!("object_store returned {} bytes for {i}", got.len());
        }
    }
    for i in 0..args.ops {
        let path = Path::from(format!("bench-direct/{i:08}"));
        let t = Instant::now();
        let meta = store.head(&path).await?;
        let mode = PutMode::Update(UpdateVersion {
            e_tag: meta.e_tag,
            version: meta.version,
        });
        store
            .put_opts(&path, value.clone().into(), mode.into())
            .await?;
        cas.record(t.elapsed());
    }
    Ok([puts, gets, cas])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("orbit-cloud-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let weed = Weed::start_in(args.weed.as_deref(), &dir).map_err(anyhow::Error::msg)?;
    let s3_port = weed.s3_port;
    let (_orbit, port) = start_orbit(&args, &dir, s3_port)?;
    // Warm both paths (connections, bucket) before measuring.
    let warm = Args {
        ops: 20,
        ..Args::parse()
    };
    through_http(port, &warm).await?;
    direct(s3_port, &warm).await?;

    let [mut dput, mut dget, mut dcas] = direct(s3_port, &args).await?;
    let (mut hput, mut hget) = through_http(port, &args).await?;
    println!("| path | operation | p50 ms | p99 ms | mean ms | vs direct put / get (mean) |");
    println!("|---|---|---:|---:|---:|---:|");
    let (put_base, get_base) = (dput.mean_ms(), dget.mean_ms());
    let rows = [
        ("object_store, direct", "put", &mut dput, put_base),
        (
            "object_store, direct",
            "head + conditional put",
            &mut dcas,
            put_base,
        ),
        ("orbit-server HTTP, s3 backend", "PUT", &mut hput, put_base),
        ("object_store, direct", "get", &mut dget, get_base),
        ("orbit-server HTTP, s3 backend", "GET", &mut hget, get_base),
    ];
    for (path, op, lat, base) in rows {
        let mean = lat.mean_ms();
        println!(
            "| {path} | {op} | {:.3} | {:.3} | {mean:.3} | {:+.0} % |",
            lat.quantile_ms(0.5),
            lat.quantile_ms(0.99),
            (mean / base - 1.0) * 100.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
